"""A synchronous facade over ResendClient, for callers without an event loop (Pulumi
providers run in a gRPC thread pool).

The async client lives on a private event loop in a daemon thread; each method submits
its coroutine there and waits. Calls from many threads share one client, one limiter
and one connection pool. Not picklable (it holds the key): build it where it is used.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Collection
from typing import Any

from resend_iac.client.http import ResendClient
from resend_iac.client.reader import Progress, read_live
from resend_iac.model import State

# Methods of ResendClient exposed synchronously, with the same names and arguments.
_METHODS = (
    "request",
    "create_contact",
    "get_contact",
    "update_contact",
    "delete_contact",
    "list_contacts",
    "add_contact_segment",
    "remove_contact_segment",
    "list_contact_topics",
    "update_contact_topics",
    "create_property",
    "update_property",
    "delete_property",
    "list_properties",
    "create_segment",
    "rename_segment",
    "delete_segment",
    "list_segments",
    "list_segment_contacts",
    "create_topic",
    "update_topic",
    "delete_topic",
    "list_topics",
    "create_import",
    "get_import",
)


def _stop(loop: asyncio.AbstractEventLoop, client: ResendClient, thread: threading.Thread) -> None:
    if loop.is_closed():
        return
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=5)
        except Exception:  # pragma: no cover - best effort at shutdown
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout=5)
    if not loop.is_running():
        loop.close()


class SyncResendClient:
    """Same constructor and methods as ResendClient, synchronous."""

    def __init__(self, api_key: str, base_url: str = "https://api.resend.com", **kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="resend-iac-client", daemon=True)
        self._thread.start()

        async def build() -> ResendClient:
            return ResendClient(api_key, base_url, **kw)

        try:
            self._client = asyncio.run_coroutine_threadsafe(build(), self._loop).result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
            raise
        self._finalizer = weakref.finalize(self, _stop, self._loop, self._client, self._thread)

    @classmethod
    def from_env(
        cls, api_key: str | None = None, base_url: str | None = None, **kw: Any
    ) -> "SyncResendClient":
        import os

        key = api_key or os.environ.get("RESEND_API_KEY", "")
        url = base_url or os.environ.get("RESEND_API_URL") or "https://api.resend.com"
        return cls(key, url, **kw)

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __reduce__(self):
        raise TypeError("SyncResendClient is not picklable (it holds the API key); build it where it is used")

    def __enter__(self) -> "SyncResendClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._finalizer()

    @property
    def requests_sent(self) -> int:
        return self._client.requests_sent

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def async_client(self) -> ResendClient:
        """The underlying async client (only use it on this object's loop)."""
        return self._client

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the client's loop and return its result."""
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("the client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a SyncResendClient cannot be called from its own loop "
                "(e.g. from a progress callback): use the async client there"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def paginate(self, path: str, params: dict | None = None) -> list[dict]:
        """Every item of a list endpoint (as a list)."""

        async def collect() -> list[dict]:
            return [item async for item in self._client.paginate(path, params)]

        return self.run(collect())

    def read_live(
        self,
        *,
        property_emails: Collection[str] = (),
        topic_emails: Collection[str] = (),
        progress: Progress | None = None,
        warnings: list[str] | None = None,
    ) -> State:
        """``read_live`` on this client (progress is called from the client's thread)."""
        return self.run(
            read_live(
                self._client,
                property_emails=property_emails,
                topic_emails=topic_emails,
                progress=progress,
                warnings=warnings,
            )
        )


def _make(name: str):
    target = getattr(ResendClient, name)

    @functools.wraps(target)
    def method(self: SyncResendClient, *args: Any, **kwargs: Any) -> Any:
        return self.run(getattr(self._client, name)(*args, **kwargs))

    return method


for _name in _METHODS:
    setattr(SyncResendClient, _name, _make(_name))
del _name
