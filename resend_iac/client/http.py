"""The async Resend API client: httpx, rate limiting, retries, pagination, typed errors.

Retries (bounded by ``max_retries`` per kind):

- 429: wait ``retry-after``; every request pauses, not only the one that got it. A 429
  was rejected before processing: safe for any method. A ``retry-after`` over
  ``MAX_RETRY_AFTER`` (60 s) and the daily/monthly quota errors are raised, not waited.
- 500/502/503/504 and connection/read errors: exponential backoff with full jitter.
  GET/PATCH/DELETE and adding a contact to a segment are idempotent and simply retried
  (a DELETE that finds nothing after an ambiguous attempt counts as done).
- A create (POST) whose outcome is unknown (5xx, lost response) is never repeated
  blindly: ``create_contact`` re-reads the contact by email, ``create_segment`` /
  ``create_topic`` / ``create_property`` re-read the list by name/key, and return the
  existing id if the first attempt went through. Errors where the request surely did
  not reach the server (connect errors, 429) are retried directly.
- ``create_import`` is re-posted after an ambiguous failure too: an import is keyed by
  email on the server (one contact per email per team) and ``skip`` (the default here,
  always sent explicitly: the API's own default is documented both ways) leaves the
  contacts the first attempt made alone, so the worst case is a second import job
  record, never a duplicate or overwritten contact.

Key hygiene: the key lives only in a private auth object whose repr hides it; errors
are built from status/name/message only; headers are never logged.
"""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from resend_iac import __version__
from resend_iac.client.answers import id_of, page_of
from resend_iac.client.endpoint import endpoint_problem, redirect_message
from resend_iac.client.errors import (
    AUTH_ERROR_NAMES,
    QUOTA_ERRORS,
    AuthError,
    EndpointError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ResendAPIError,
    ValidationError,
    api_error,
)
from resend_iac.client.limiter import RateLimiter

__all__ = [  # the errors are defined in client/errors.py; importable from here as before
    "AUTH_ERROR_NAMES",
    "QUOTA_ERRORS",
    "AuthError",
    "EndpointError",
    "InvalidResponseError",
    "NotFoundError",
    "RateLimitedError",
    "ResendAPIError",
    "ResendClient",
    "ValidationError",
    "api_error",
]

log = logging.getLogger("resend_iac.client")

DEFAULT_BASE_URL = "https://api.resend.com"
USER_AGENT = f"resend-iac/{__version__}"
PAGE_LIMIT = 100
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Transport errors where the request surely never reached the server.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class _Ambiguous(Exception):
    """A non-idempotent request failed in a way that may or may not have applied it."""

    def __init__(self, error: ResendAPIError) -> None:
        super().__init__(str(error))
        self.error = error


class _BearerAuth(httpx.Auth):
    """Holds the key; adds it to each request; shows nothing of it."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key}"
        yield request

    def __repr__(self) -> str:
        return "<bearer auth: key hidden>"

    def __reduce__(self):
        raise TypeError("the API key is not picklable; build the client where it is used")


def _ref(ref: str) -> str:
    """A contact id or email as a path segment (percent-encoded like the Python SDK)."""
    return quote(str(ref), safe="")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 asks us to wait; None if longer than we are willing to."""
    value = headers.get("retry-after")
    seconds: float | None = None
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
    if seconds is None:
        try:
            seconds = float(headers.get("ratelimit-reset", "1"))
        except ValueError:
            seconds = 1.0
    if seconds > MAX_RETRY_AFTER:
        return None
    return max(seconds, 0.0)


def _error_from(response: httpx.Response, method: str, path: str) -> ResendAPIError:
    name, message = "http_error", response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        name = str(body.get("name") or body.get("type") or name)
        message = str(body.get("message") or message)
    return api_error(response.status_code, name, message, method=method, path=path)


class ResendClient:
    """Async client for the Resend contacts API. Use as ``async with ResendClient(...)``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit: float | None = 5.0,
        max_retries: int = 6,
        timeout: float = 30.0,
        max_concurrency: int = 16,
        backoff_base: float = 0.1,
        backoff_cap: float = 10.0,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not api_key:
            raise AuthError(0, "missing_api_key", "no API key: set RESEND_API_KEY or pass one")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if transport is None or isinstance(transport, httpx.AsyncHTTPTransport):  # on the wire
            problem = endpoint_problem(self.base_url)
            if problem:
                raise EndpointError(0, *problem)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.limiter = RateLimiter(rate_limit)
        self.requests_sent = 0
        self._concurrency = max_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=_BearerAuth(api_key),
            transport=transport,
            follow_redirects=False,  # never: the key would go wherever a Location points
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=max(max_concurrency, 1) * 2),
        )

    @classmethod
    def from_env(cls, api_key: str | None = None, base_url: str | None = None, **kw: Any) -> "ResendClient":
        """Connection settings as the official SDK has them: ``RESEND_API_KEY`` and
        ``RESEND_API_URL`` (default https://api.resend.com); arguments win."""
        key = api_key or os.environ.get("RESEND_API_KEY", "")
        url = base_url or os.environ.get("RESEND_API_URL") or DEFAULT_BASE_URL
        return cls(key, url, **kw)

    def __repr__(self) -> str:
        return f"ResendClient(base_url={self.base_url!r}, limiter={self.limiter!r})"

    def __reduce__(self):
        raise TypeError("ResendClient is not picklable (it holds the API key); build it where it is used")

    async def __aenter__(self) -> "ResendClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the one request path -----------------------------------------------------------

    def _sem(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        return self._semaphore

    async def _backoff(self, attempt: int) -> None:
        """Exponential backoff with full jitter (attempt 1, 2, ...)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        await asyncio.sleep(random.uniform(0, ceiling))

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
        idempotent: bool = True,
    ) -> Any:
        faults = throttles = 0
        ambiguous_before = False
        while True:
            error: ResendAPIError
            surely_not_applied = False
            async with self._sem():
                async with self.limiter.slot() as slot:
                    self.requests_sent += 1
                    try:
                        response = await self._http.request(
                            method, path, json=json, params=params, files=files, data=data
                        )
                    except httpx.UnsupportedProtocol:
                        raise EndpointError(
                            0,
                            "invalid_url",
                            f"the API URL {self.base_url!r} is not http(s)://host[:port]",
                            method=method,
                            path=path,
                        ) from None
                    except httpx.TransportError as exc:
                        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
                        error = ResendAPIError(
                            0,
                            kind,
                            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                            method=method,
                            path=path,
                        )
                        surely_not_applied = isinstance(exc, NOT_SENT_ERRORS)
                        log.debug("%s %s -> %s", method, path, type(exc).__name__)
                        response = None
                    else:
                        slot.observe(response.status_code, response.headers)  # type: ignore[union-attr]
            if response is not None:
                status = response.status_code
                log.debug("%s %s -> %d", method, path, status)
                if 200 <= status < 300:
                    return self._body(response, method, path)
                if status < 400:
                    raise EndpointError(
                        status, "redirect", redirect_message(response), method=method, path=path
                    )
                if status == 404 and method == "DELETE" and ambiguous_before:
                    return {}  # an earlier attempt went through
                error = _error_from(response, method, path)
                if status == 429:
                    throttles += 1
                    if throttles > self.max_retries or error.name in QUOTA_ERRORS:
                        raise error
                    wait = _retry_after(response.headers)
                    if wait is None:
                        raise RateLimitedError(
                            429,
                            error.name,
                            f"{error.message} (the API asks to wait longer than "
                            f"{MAX_RETRY_AFTER:g}s before retrying; try again later)",
                            method=method,
                            path=path,
                        )
                    self.limiter.block(wait)
                    log.info("rate limited on %s %s; waiting %.2fs", method, path, wait)
                    continue
                if status not in RETRY_STATUSES:
                    raise error
            # A 5xx or a transport error.
            faults += 1
            if not idempotent and not surely_not_applied:
                raise _Ambiguous(error)
            if not surely_not_applied:
                ambiguous_before = True
            if faults > self.max_retries:
                raise error
            log.info("%s %s failed (%s); retry %d", method, path, error.name, faults)
            await self._backoff(faults)

    @staticmethod
    def _body(response: httpx.Response, method: str, path: str) -> dict:
        """A 2xx answer's JSON object (every route answers one; empty: ``{}``)."""
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = ValueError
        if not isinstance(body, dict):
            what = "not JSON" if body is ValueError else f"JSON {type(body).__name__}, not an object"
            raise InvalidResponseError(
                response.status_code, "invalid_response", f"the answer is {what}", method=method, path=path
            )
        return body

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Any = None,
    ) -> dict:
        """One API call with rate limiting and retries. A POST is treated as not
        idempotent: an ambiguous failure is raised, not retried."""
        method = method.upper()
        try:
            return await self._send(
                method,
                path,
                json=json,
                params=params,
                files=files,
                data=data,
                idempotent=method != "POST",
            )
        except _Ambiguous as amb:
            raise amb.error from None

    async def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[dict]:
        """Every item of a list endpoint: pages of 100, following the ``after`` cursor.

        Every page request sends ``limit`` and the walk follows ``has_more``: the "newer"
        list endpoints page at 20 without ``limit`` (which ones is not documented), the
        "existing" ones return everything; either way nothing is missed."""
        query = dict(params or {})
        query["limit"] = PAGE_LIMIT
        seen_cursors: set[str] = set()
        while True:
            page = await self._send("GET", path, params=query)
            items, has_more = page_of(page, path)
            for item in items:
                yield item
            if not has_more or not items:
                return
            cursor = items[-1].get("id")
            if not cursor or cursor in seen_cursors:
                raise ResendAPIError(
                    0,
                    "pagination_error",
                    f"the list did not advance past {cursor!r}",
                    method="GET",
                    path=path,
                )
            seen_cursors.add(cursor)
            query["after"] = cursor

    async def _list(self, path: str) -> list[dict]:
        return [item async for item in self.paginate(path)]

    async def _create(
        self, path: str, body: Any, find_existing: Callable[[], Awaitable[str | None]], **kw: Any
    ) -> dict:
        """POST a create; after an ambiguous failure, look for what it would have made
        before posting again."""
        attempts = 0
        while True:
            try:
                return await self._send("POST", path, json=body, idempotent=False, **kw)
            except _Ambiguous as amb:
                attempts += 1
                existing = await find_existing()
                if existing is not None:
                    log.info("POST %s: the lost create had gone through (id %s)", path, existing)
                    return {"id": existing}
                if attempts > self.max_retries:
                    raise amb.error from None
                await self._backoff(attempts)

    @staticmethod
    def _finder(
        list_all: Callable[[], Awaitable[list[dict]]], field: str, value: Any
    ) -> Callable[[], Awaitable[str | None]]:
        """For ``_create``: the id of the listed object whose ``field`` is ``value``, if any."""

        async def find() -> str | None:
            for item in await list_all():
                if item.get(field) == value:
                    return item.get("id")
            return None

        return find

    # -- contacts -------------------------------------------------------------------------

    async def create_contact(self, payload: dict) -> str:
        email_addr = payload.get("email")

        async def find() -> str | None:
            if not email_addr:
                return None
            try:
                return (await self.get_contact(email_addr)).get("id")
            except NotFoundError:
                return None

        return id_of(await self._create("/contacts", payload, find), "POST", "/contacts")

    async def get_contact(self, ref: str) -> dict:
        return await self._send("GET", f"/contacts/{_ref(ref)}")

    async def update_contact(self, ref: str, payload: dict) -> None:
        await self._send("PATCH", f"/contacts/{_ref(ref)}", json=payload)

    async def delete_contact(self, ref: str) -> None:
        await self._send("DELETE", f"/contacts/{_ref(ref)}")

    async def list_contacts(self) -> list[dict]:
        return await self._list("/contacts")

    async def add_contact_segment(self, ref: str, segment_id: str) -> None:
        # Adding a member twice is harmless: idempotent.
        await self._send("POST", f"/contacts/{_ref(ref)}/segments/{_ref(segment_id)}")

    async def remove_contact_segment(self, ref: str, segment_id: str) -> None:
        await self._send("DELETE", f"/contacts/{_ref(ref)}/segments/{_ref(segment_id)}")

    async def list_contact_segments(self, ref: str) -> list[dict]:
        return await self._list(f"/contacts/{_ref(ref)}/segments")

    async def list_contact_topics(self, ref: str) -> list[dict]:
        return await self._list(f"/contacts/{_ref(ref)}/topics")

    async def update_contact_topics(self, ref: str, topics: list[dict]) -> None:
        await self._send("PATCH", f"/contacts/{_ref(ref)}/topics", json=list(topics))

    # -- contact properties -----------------------------------------------------------------

    async def create_property(self, payload: dict) -> str:
        find = self._finder(self.list_properties, "key", payload.get("key"))
        return id_of(await self._create("/contact-properties", payload, find), "POST", "/contact-properties")

    async def update_property(self, id: str, payload: dict) -> None:
        await self._send("PATCH", f"/contact-properties/{_ref(id)}", json=payload)

    async def delete_property(self, id: str) -> None:
        await self._send("DELETE", f"/contact-properties/{_ref(id)}")

    async def list_properties(self) -> list[dict]:
        return await self._list("/contact-properties")

    # -- segments ---------------------------------------------------------------------------

    async def create_segment(self, name: str) -> str:
        find = self._finder(self.list_segments, "name", name)
        return id_of(await self._create("/segments", {"name": name}, find), "POST", "/segments")

    async def rename_segment(self, id: str, name: str) -> None:
        await self._send("PATCH", f"/segments/{_ref(id)}", json={"name": name})

    async def delete_segment(self, id: str) -> None:
        await self._send("DELETE", f"/segments/{_ref(id)}")

    async def list_segments(self) -> list[dict]:
        return await self._list("/segments")

    async def list_segment_contacts(self, segment_id: str) -> list[dict]:
        return await self._list(f"/segments/{_ref(segment_id)}/contacts")

    # -- topics -----------------------------------------------------------------------------

    async def create_topic(self, payload: dict) -> str:
        find = self._finder(self.list_topics, "name", payload.get("name"))
        return id_of(await self._create("/topics", payload, find), "POST", "/topics")

    async def update_topic(self, id: str, payload: dict) -> None:
        await self._send("PATCH", f"/topics/{_ref(id)}", json=payload)

    async def delete_topic(self, id: str) -> None:
        await self._send("DELETE", f"/topics/{_ref(id)}")

    async def list_topics(self) -> list[dict]:
        return await self._list("/topics")

    # -- imports ----------------------------------------------------------------------------

    async def create_import(
        self,
        csv_bytes: bytes,
        column_map: dict,
        *,
        on_conflict: str = "skip",
        segment_ids: list[str] = (),  # type: ignore[assignment]
        topics: list[dict] = (),  # type: ignore[assignment]
    ) -> str:
        """Start an async CSV import; returns its id. Re-posted after an ambiguous
        failure (see the module docstring: imports converge, contacts are keyed by email)."""
        files = {"file": ("contacts.csv", bytes(csv_bytes), "text/csv")}
        data = {
            "column_map": jsonlib.dumps(column_map),
            "on_conflict": on_conflict,
            "segments": jsonlib.dumps([{"id": s} for s in segment_ids]),
            "topics": jsonlib.dumps(list(topics)),
        }
        result = await self._send("POST", "/contacts/imports", files=files, data=data)
        return id_of(result, "POST", "/contacts/imports")

    async def get_import(self, id: str) -> dict:
        return await self._send("GET", f"/contacts/imports/{_ref(id)}")
