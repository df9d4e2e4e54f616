"""A transport whose network goes down mid-apply (the interrupted-apply tests)."""

from __future__ import annotations

import httpx


class FlakyTransport(httpx.AsyncBaseTransport):
    """Passes ``budget`` requests to the app, then the network goes down. With ``lost=True``
    the request that exhausts the budget reaches the server but its response is lost."""

    def __init__(self, app, budget: int, lost: bool = False):
        self.inner = httpx.ASGITransport(app=app)
        self.budget = budget
        self.lost = lost

    async def handle_async_request(self, request):
        self.budget -= 1
        if self.budget < 0:
            raise httpx.ConnectError("network down", request=request)
        response = await self.inner.handle_async_request(request)
        if self.budget == 0 and self.lost:
            raise httpx.ReadError("connection reset", request=request)
        return response
