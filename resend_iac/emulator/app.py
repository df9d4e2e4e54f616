"""The emulator's ASGI app: a faithful local Resend API for contacts, contact properties,
segments, topics and contact imports (behaviour and sources: docs/emulator.md).

``create_app(...)`` builds it; it needs no lifespan, so it also runs in-process under
``httpx.ASGITransport``. Wire behaviour, in the order a request meets it:

0. ``Host`` must name this emulator (its address, ``localhost``, ``127.0.0.1``, ``::1`` or
   an ``allowed_hosts`` name), else 403: DNS rebinding (guard.py), for every route.
1. ``/_emulator/*`` admin routes (stats, reset, advance, ui): no auth, not counted, not
   limited; a foreign ``Origin`` or a form body type refused (CSRF, guard.py).
2. ``User-Agent`` required (403, like Cloudflare's "error code: 1010").
3. ``Authorization: Bearer <key>`` required (401 ``missing_api_key``); when ``api_keys``
   are given, another key gets 400 ``validation_error`` "API key is invalid" (current docs).
4. Rate limit per team (all keys together): a fixed window of one second; over it, 429
   ``rate_limit_exceeded`` with ``retry-after``. ``ratelimit-*`` headers on every answer.
5. Faults: ``fail_rate`` of requests get a 500 ``application_error`` or 503
   ``service_unavailable`` before anything is changed; ``latency_ms`` delays every answer.
6. Routing (404 ``not_found`` for unknown paths, 405 ``method_not_allowed`` with ``Allow``),
   then the handler, its body bounded: 413 past ``max_body`` (``max_upload`` for imports);
   JSON nested too deep 400, non-finite numbers 422 (guard.py). Every error is ``{"statusCode", "message", "name"}``; nothing raises a 500
   with a traceback (an unexpected exception becomes 500 ``application_error``).

Behaviour, with sources and the two profiles, is tabled in docs/emulator.md. In short:
- ``POST /contacts`` with an existing email is an upsert that resets omitted fields to their
  defaults (``unsubscribed`` false): reported from the live API; both profiles.
- ``unknowns="benign"`` (default) takes the harmless reading of what is unknown;
  ``unknowns="hostile"`` the harmful one: imports without ``on_conflict`` upsert and an
  upsert resets the fields its CSV lacks; the newer small lists (properties, topics, a
  contact's segments and topics, imports) page at 20 without ``limit``; emails are
  case-sensitive keys.
- ``list_lag`` seconds: contact and segment-member lists leave out contacts written in the
  last ``list_lag`` seconds (reads by id or email are immediate).
- ``DELETE`` of an unknown contact or segment: 200 ``deleted: true`` (HAR, legacy path);
  of an unknown contact property or topic: 404 ``not_found``.
- Unknown property keys or type mismatches in contact ``properties``: 422
  ``validation_error``; duplicate property key: 422 ``validation_error``.
- Non-UUID ids of segments, topics, properties and imports: 404 ``not_found``.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from resend_iac.emulator import (
    audiences,
    broadcasts,
    contacts,
    control,
    guard,
    imports,
    properties,
    segments,
    topics,
)
from resend_iac.emulator.errors import APIError
from resend_iac.emulator.store import Store
from resend_iac.emulator.wire import Handler, Response, RouteTable, error_response, route_regex

# The route tables of the resource modules. Adding a resource: write its module with a
# ``ROUTES`` table (``[(path template, {method: async handler(app, request)})]``; the
# handlers raise ``APIError`` for error answers; helpers in wire.py), add it here, and, if it
# keeps state, add its ``StoreCore`` subclass (``SCHEMA``, ``TABLES``, methods) to the bases
# of ``store.Store``. Order does not matter: literal path segments win over ``{params}``.
RESOURCES: tuple[RouteTable, ...] = (
    contacts.ROUTES,
    imports.ROUTES,
    properties.ROUTES,
    segments.ROUTES,
    audiences.ROUTES,
    topics.ROUTES,
    broadcasts.ROUTES,
)


def _specificity(template: str) -> tuple[int, ...]:
    """Sort key: per path segment, literal (0) before ``{param}`` (1)."""
    return tuple(1 if part.startswith("{") else 0 for part in template.strip("/").split("/"))


class EmulatorApp:
    """ASGI callable. Attributes ``store``, ``stats`` and ``importer`` are for tests."""

    def __init__(
        self,
        db_path: str = ":memory:",
        *,
        rate_limit: float = 5.0,
        api_keys: Sequence[str] = (),
        fail_rate: float = 0.0,
        latency_ms: float = 0.0,
        seed: int | None = None,
        unknowns: str = "benign",
        list_lag: float = 0.0,
        allowed_hosts: Sequence[str] = (),
        max_body: int = guard.MAX_BODY,
        max_upload: int = guard.MAX_UPLOAD,
    ) -> None:
        self.allowed_hosts = frozenset(h.strip().lower().strip("[]") for h in allowed_hosts)
        self.max_body = int(max_body)
        self.max_upload = int(max_upload)
        self.store = Store(db_path, unknowns=unknowns, list_lag=list_lag)
        self.unknowns = unknowns
        self.api_keys = frozenset(api_keys)
        self.fail_rate = float(fail_rate)
        self.latency = float(latency_ms) / 1000.0
        self.rng = random.Random(seed)
        self.rate_limit = float(rate_limit)  # may be changed on a live app (0 = off)
        self.window_start = 0.0
        self.window_count = 0
        self.importer = imports.Importer(self.store)
        self.importer.resume()
        self.reset_stats()
        self.ui: Any = None
        self.routes: list[tuple[re.Pattern[str], str, dict[str, Handler]]] = []
        table = [route for resource in RESOURCES for route in resource]
        for path, methods in sorted(table, key=lambda route: _specificity(route[0])):
            self.routes.append((route_regex(path), path, methods))

    # -- counters -----------------------------------------------------------------------

    def reset_stats(self) -> None:
        self.total = 0
        self.rate_limited = 0
        self.by_route: dict[str, int] = {}
        self.recent: collections.deque = collections.deque(maxlen=200)  # for the web view

    def stats(self) -> dict[str, Any]:
        return {"total": self.total, "rate_limited": self.rate_limited, "by_route": dict(self.by_route)}

    # -- rate limit ---------------------------------------------------------------------

    @property
    def window(self) -> float:
        """Length of the fixed rate-limit window: one second, longer below 1 req/s."""
        return 1.0 if self.rate_limit >= 1 else 1.0 / self.rate_limit

    @property
    def limit(self) -> int:
        return max(1, int(self.rate_limit * self.window))

    def _rate_headers(self, now: float) -> list[tuple[str, str]]:
        if self.rate_limit <= 0:
            return []
        reset = max(1, math.ceil(self.window_start + self.window - now))
        remaining = max(0, self.limit - self.window_count)
        return [
            ("ratelimit-limit", str(self.limit)),
            ("ratelimit-remaining", str(remaining)),
            ("ratelimit-reset", str(reset)),
            ("ratelimit-policy", f"{self.limit};w={max(1, round(self.window))}"),
        ]

    def _take_token(self, now: float) -> bool:
        if now >= self.window_start + self.window:
            self.window_start = now - ((now - self.window_start) % self.window if self.window_start else 0.0)
            self.window_count = 0
        if self.window_count >= self.limit:
            return False
        self.window_count += 1
        return True

    # -- one request --------------------------------------------------------------------

    def _match(self, scope: dict) -> tuple[str, Handler | None, dict, bool]:
        """(route template, handler or None, path params, path matched).

        Matched on the raw (still percent-encoded) path, each parameter decoded after, so
        an email with an encoded ``/`` stays one segment; ``+`` stays ``+``."""
        raw = scope.get("raw_path")
        path = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
        if len(path) > 1 and path.endswith("/"):  # the Rust SDK sends /contacts/{id}/segments/
            path = path.rstrip("/") or "/"
        for regex, template, methods in self.routes:
            m = regex.match(path)
            if m is not None:
                params = {k: unquote(v) if "%" in v else v for k, v in m.groupdict().items()}
                return template, methods.get(scope["method"]), params, True
        return "", None, {}, False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # nothing to do: the app needs no lifespan
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        refused = guard.check_host(scope, self.allowed_hosts)
        if refused is not None:  # DNS rebinding: neither the API nor the control routes
            await error_response(refused)(scope, receive, send)
            return
        if scope["path"].startswith("/_emulator/"):
            await control.handle(self, scope, receive, send)
            return
        now = time.monotonic()
        template, handler, params, matched = self._match(scope)
        key = f"{scope['method']} {template or scope['path']}"
        self.total += 1
        self.by_route[key] = self.by_route.get(key, 0) + 1
        extra: list[tuple[str, str]] = []
        response = self._gate(dict(scope["headers"]), now, extra)
        if response is None:
            if not matched:
                response = error_response(
                    APIError(404, "not_found", "The requested endpoint does not exist.")
                )
            elif handler is None:
                response = error_response(APIError(405, "method_not_allowed", "Method Not Allowed"))
                extra.append(("allow", ", ".join(self._methods(template))))
            else:
                response = await self._handle(handler, dict(scope, path_params=params), receive)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.rate_limit > 0:
            extra = self._rate_headers(time.monotonic()) + extra
        for name, value in extra:
            response.add_header(name, value)
        self.recent.append(
            (time.time(), scope["method"], scope["path"], scope.get("query_string"), response.status_code)
        )
        await response(scope, receive, send)

    def _gate(self, headers: dict[bytes, bytes], now: float, extra: list[tuple[str, str]]) -> Response | None:
        """The answer of the checks before routing (User-Agent, key, rate limit, injected
        faults), or None to go on. Headers to add go to ``extra``."""
        if not headers.get(b"user-agent"):
            return error_response(
                APIError(
                    403,
                    "invalid_access",
                    "error code: 1010. A User-Agent header is required on every API request.",
                )
            )
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return error_response(
                APIError(
                    401,
                    "missing_api_key",
                    "Missing API key in the authorization header. Include the following header "
                    "in the request: Authorization: Bearer YOUR_API_KEY",
                )
            )
        if self.api_keys and token not in self.api_keys:
            return error_response(APIError(400, "validation_error", "API key is invalid"))
        if self.rate_limit > 0 and not self._take_token(now):
            self.rate_limited += 1
            retry = max(1, math.ceil(self.window_start + self.window - now))
            extra.append(("retry-after", str(retry)))
            return error_response(
                APIError(
                    429,
                    "rate_limit_exceeded",
                    f"Too many requests. You can only make {self.limit} requests per "
                    f"{'second' if self.window == 1 else f'{self.window:g} seconds'}. "
                    "See rate limit response headers for more information.",
                )
            )
        if self.fail_rate > 0 and self.rng.random() < self.fail_rate:
            if self.rng.random() < 0.5:
                return error_response(
                    APIError(500, "application_error", "An unexpected error occurred (injected).")
                )
            return error_response(
                APIError(503, "service_unavailable", "The service is unavailable (injected).")
            )
        return None

    def _methods(self, template: str) -> list[str]:
        return next(list(methods) for _, path, methods in self.routes if path == template)

    async def _handle(self, handler: Handler, scope: dict, receive: Any) -> Response:
        """Run a route's handler with its body bounded (413 past ``max_body``, or
        ``max_upload`` for an upload); an APIError is its answer, anything else a bare 500."""
        limit = self.max_upload if getattr(handler, "upload", False) else self.max_body
        declared = guard.declared_length(scope)
        if declared is not None and declared > limit:
            await guard.drain(receive)
            return error_response(guard.too_large(limit))
        try:
            return await handler(self, Request(scope, guard.limited(receive, limit)))
        except APIError as err:
            return error_response(err)
        except Exception as exc:  # never a traceback on the wire
            return error_response(
                APIError(500, "application_error", f"An unexpected error occurred: {type(exc).__name__}")
            )


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    db_path: str = ":memory:",
    *,
    rate_limit: float = 5.0,
    api_keys: Sequence[str] = (),
    fail_rate: float = 0.0,
    latency_ms: float = 0.0,
    seed: int | None = None,
    unknowns: str = "benign",
    list_lag: float = 0.0,
    allowed_hosts: Sequence[str] = (),
    max_body: int = guard.MAX_BODY,
    max_upload: int = guard.MAX_UPLOAD,
) -> EmulatorApp:
    """Build the emulator app (an ASGI callable; state in SQLite at ``db_path``).

    ``unknowns``: ``"benign"`` or ``"hostile"`` (the harmful reading of every behaviour of
    the real API that is unknown; see docs/emulator.md). ``list_lag``: seconds during which
    contact and segment-member lists leave out a contact just written. ``allowed_hosts``:
    ``Host`` names accepted besides the address served on and localhost. ``max_body`` and
    ``max_upload``: the largest request body (bytes) of a JSON route and of an import."""
    return EmulatorApp(
        db_path,
        rate_limit=rate_limit,
        api_keys=api_keys,
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        seed=seed,
        unknowns=unknowns,
        list_lag=list_lag,
        allowed_hosts=allowed_hosts,
        max_body=max_body,
        max_upload=max_upload,
    )
