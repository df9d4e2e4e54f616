"""The emulator's ASGI app: a faithful local Resend API for contacts, contact properties,
segments, topics and contact imports (behaviour and sources: docs/emulator.md).

``create_app(...)`` builds it; it needs no lifespan, so it also runs in-process under
``httpx.ASGITransport``. Wire behaviour, in the order a request meets it:

1. ``/_emulator/*`` admin routes (stats, reset): no auth, not counted, not limited.
2. ``User-Agent`` required (403, like Cloudflare's "error code: 1010").
3. ``Authorization: Bearer <key>`` required (401 ``missing_api_key``); when ``api_keys``
   are given, another key gets 400 ``validation_error`` "API key is invalid" (current docs).
4. Rate limit per team (all keys together): a fixed window of one second; over it, 429
   ``rate_limit_exceeded`` with ``retry-after``. ``ratelimit-*`` headers on every answer.
5. Faults: ``fail_rate`` of requests get a 500 ``application_error`` or 503
   ``service_unavailable`` before anything is changed; ``latency_ms`` delays every answer.
6. Routing (404 ``not_found`` for unknown paths, 405 ``method_not_allowed``), then the
   handler. Every error is ``{"statusCode", "message", "name"}``; nothing raises a 500
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
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from resend_iac.emulator import imports as imports_mod
from resend_iac.emulator.store import (
    PROPERTY_KEY_RE,
    PROPERTY_TYPES,
    SUBSCRIPTIONS,
    VISIBILITIES,
    APIError,
    Store,
    check_fallback,
    invalid,
    missing,
    valid_email,
)

JSON_TYPE = b"application/json; charset=utf-8"


class Response:
    """A JSON answer, sent as two raw ASGI messages (the hot path stays small)."""

    __slots__ = ("status_code", "body", "headers")

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.headers: list[tuple[bytes, bytes]] = [(b"content-type", JSON_TYPE)]

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), status)


def error_response(err: APIError) -> Response:
    return json_response(err.body(), err.status)


def list_body(data: list, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "has_more": has_more, "data": data}


def json_list_response(items: list[str], has_more: bool) -> Response:
    """A list whose items are JSON texts already (serialised by SQLite)."""
    body = f'{{"object":"list","has_more":{"true" if has_more else "false"},"data":[' + ",".join(items) + "]}"
    return Response(body.encode())


# -- request parsing ---------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity: Python accepts them, JSON doesn't


async def json_body(request: Request, *, allow_list: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "validation_error", "The request body is not valid JSON.") from None
    if isinstance(body, dict) or (allow_list and isinstance(body, list)):
        return body
    raise APIError(422, "validation_error", "The request body must be a JSON object.")


NEWER_DEFAULT_LIMIT = 20  # "newer" list endpoints without `limit` (pagination docs)


def page_params(request: Request, default_limit: int | None = None) -> dict[str, Any]:
    """Pagination parameters; ``default_limit`` applies when ``limit`` is absent."""
    q = request.query_params
    page: dict[str, Any] = {"limit": None, "after": q.get("after") or None, "before": q.get("before") or None}
    if page["after"] and page["before"]:
        raise invalid("The `after` and `before` parameters cannot be used together.")
    raw = q.get("limit")
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise invalid("The `limit` parameter must be an integer between 1 and 100.")
        page["limit"] = limit
    elif default_limit is not None:
        page["limit"] = default_limit
    return page


def opt_str(body: dict, field: str, *, max_len: int | None = None, nullable: bool = True) -> Any:
    value = body[field]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(f"The `{field}` field must be a string.")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"The `{field}` field must be at most {max_len} characters.")
    return value


def req_str(body: dict, field: str, *, max_len: int | None = None) -> str:
    if body.get(field) is None:
        raise missing(field)
    value = opt_str(body, field, max_len=max_len, nullable=False)
    if not value.strip():
        raise missing(field)
    return value


def parse_properties(body: dict) -> dict[str, Any]:
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise invalid("The `properties` field must be an object of property keys to values.")
    for key, value in props.items():  # booleans only fit boolean properties (made by imports)
        if value is not None and not isinstance(value, (str, int, float)):
            raise invalid(f"The value of property `{key}` must be a string or a number.")
    return props


def parse_contact_fields(body: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        if name in body:
            fields[name] = opt_str(body, name)
    if "unsubscribed" in body:
        if not isinstance(body["unsubscribed"], bool):
            raise invalid("The `unsubscribed` field must be a boolean.")
        fields["unsubscribed"] = body["unsubscribed"]
    return fields


def parse_segment_refs(value: Any) -> list[str]:
    """``[{"id": …}]`` (what the SDKs send) or ``["…"]`` (what the OAS says)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("The `segments` field must be an array.")
    out = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("id")
        if not isinstance(item, str) or not item:
            raise invalid('Each item of `segments` must be a segment id or {"id": …}.')
        out.append(item)
    return out


def parse_topic_refs(value: Any, field: str = "topics") -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"The `{field}` field must be an array.")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid(f"Each item of `{field}` must be an object with `id` and `subscription`.")
        tid, sub = item.get("id"), item.get("subscription")
        if not isinstance(tid, str) or not tid:
            raise missing("id")
        if sub not in SUBSCRIPTIONS:
            raise invalid("The `subscription` must be `opt_in` or `opt_out`.")
        out.append((tid, sub))
    return out


def _route_regex(template: str) -> re.Pattern[str]:
    """``/contacts/{id}`` -> ``^/contacts/(?P<id>[^/]+)$``."""
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


async def _read_body(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _read_upload(scope: dict, body: bytes) -> tuple[bytes, dict[str, Any]]:
    """(the CSV ``file``'s bytes, the other import fields) of a multipart body read whole."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive).form(max_part_size=64 * 1024 * 1024)
    except Exception:
        raise invalid("The multipart body could not be parsed.") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise missing("file")
        data = await upload.read()
        fields = {k: form.get(k) for k in ("column_map", "on_conflict", "segments", "topics")}
    finally:
        await form.close()
    return data, fields


# -- the app -----------------------------------------------------------------------------


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
    ) -> None:
        self.store = Store(db_path, unknowns=unknowns, list_lag=list_lag)
        self.unknowns = unknowns
        self.api_keys = frozenset(api_keys)
        self.fail_rate = float(fail_rate)
        self.latency = float(latency_ms) / 1000.0
        self.rng = random.Random(seed)
        self.rate_limit = float(rate_limit)  # may be changed on a live app (0 = off)
        self.window_start = 0.0
        self.window_count = 0
        self.importer = imports_mod.Importer(self.store)
        self.importer.resume()
        self.reset_stats()
        self.ui: Any = None
        self.routes: list[tuple[re.Pattern[str], str, dict[str, Handler]]] = []
        self._build_routes()

    # -- admin --------------------------------------------------------------------------

    def reset_stats(self) -> None:
        self.total = 0
        self.rate_limited = 0
        self.by_route: dict[str, int] = {}
        self.recent: collections.deque = collections.deque(maxlen=200)  # for the web view

    def stats(self) -> dict[str, Any]:
        return {"total": self.total, "rate_limited": self.rate_limited, "by_route": dict(self.by_route)}

    async def _admin(self, scope: dict, receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/_emulator/ui" or path.startswith("/_emulator/ui/"):  # read-only web view
            from resend_iac.emulator.ui import UI

            self.ui = self.ui or UI(self)
            await self.ui(scope, receive, send)
            return
        if path == "/_emulator/stats" and method == "GET":
            response = json_response(self.stats())
        elif path == "/_emulator/reset" and method == "POST":
            self.importer.clear()
            self.store.reset()
            self.reset_stats()
            self.window_count = 0
            response = json_response({"object": "emulator", "reset": True})
        elif path == "/_emulator/advance" and method == "POST":
            # Let time pass for list_lag without waiting: {"seconds": N}.
            raw = await _read_body(receive)
            try:
                seconds = float(json.loads(raw or b"{}").get("seconds", 0))
            except (ValueError, TypeError, AttributeError):
                seconds = -1.0
            if not 0 <= seconds < 1e9:
                response = error_response(invalid("`seconds` must be a number >= 0."))
            else:
                self.store.advance(seconds)
                response = json_response({"object": "emulator", "advanced": seconds})
        else:
            response = error_response(APIError(404, "not_found", "The requested endpoint does not exist."))
        await response(scope, receive, send)

    # -- wire ---------------------------------------------------------------------------

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
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_emulator/"):
            await self._admin(scope, receive, send)
            return
        headers = dict(scope["headers"])
        now = time.monotonic()
        template, handler, params, matched = self._match(scope)
        key = f"{scope['method']} {template or scope['path']}"
        self.total += 1
        self.by_route[key] = self.by_route.get(key, 0) + 1
        extra: list[tuple[str, str]] = []
        response = None
        if not headers.get(b"user-agent"):
            response = error_response(
                APIError(
                    403,
                    "invalid_access",
                    "error code: 1010. A User-Agent header is required on every API request.",
                )
            )
        else:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                response = error_response(
                    APIError(
                        401,
                        "missing_api_key",
                        "Missing API key in the authorization header. Include the following header "
                        "in the request: Authorization: Bearer YOUR_API_KEY",
                    )
                )
            elif self.api_keys and token not in self.api_keys:
                response = error_response(APIError(400, "validation_error", "API key is invalid"))
            elif self.rate_limit > 0 and not self._take_token(now):
                self.rate_limited += 1
                retry = max(1, math.ceil(self.window_start + self.window - now))
                extra.append(("retry-after", str(retry)))
                response = error_response(
                    APIError(
                        429,
                        "rate_limit_exceeded",
                        f"Too many requests. You can only make {self.limit} requests per "
                        f"{'second' if self.window == 1 else f'{self.window:g} seconds'}. "
                        "See rate limit response headers for more information.",
                    )
                )
            elif self.fail_rate > 0 and self.rng.random() < self.fail_rate:
                if self.rng.random() < 0.5:
                    response = error_response(
                        APIError(500, "application_error", "An unexpected error occurred (injected).")
                    )
                else:
                    response = error_response(
                        APIError(503, "service_unavailable", "The service is unavailable (injected).")
                    )
        if response is None:
            if not matched:
                response = error_response(
                    APIError(404, "not_found", "The requested endpoint does not exist.")
                )
            elif handler is None:
                response = error_response(APIError(405, "method_not_allowed", "Method Not Allowed"))
            else:
                scope = dict(scope, path_params=params)
                try:
                    response = await handler(Request(scope, receive))
                except APIError as err:
                    response = error_response(err)
                except Exception as exc:  # never a traceback on the wire
                    response = error_response(
                        APIError(
                            500, "application_error", f"An unexpected error occurred: {type(exc).__name__}"
                        )
                    )
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

    # -- routes -------------------------------------------------------------------------

    def _build_routes(self) -> None:
        table: list[tuple[str, dict[str, Handler]]] = [
            ("/contacts", {"POST": self.create_contact, "GET": self.list_contacts}),
            ("/contacts/imports", {"POST": self.create_import, "GET": self.list_imports}),
            ("/contacts/imports/{id}", {"GET": self.get_import}),
            (
                "/contacts/{id}",
                {"GET": self.get_contact, "PATCH": self.update_contact, "DELETE": self.delete_contact},
            ),
            ("/contacts/{id}/segments", {"GET": self.list_contact_segments}),
            (
                "/contacts/{id}/segments/{segment_id}",
                {"POST": self.add_contact_segment, "DELETE": self.remove_contact_segment},
            ),
            ("/contacts/{id}/topics", {"GET": self.list_contact_topics, "PATCH": self.update_contact_topics}),
            ("/contact-properties", {"POST": self.create_property, "GET": self.list_properties}),
            (
                "/contact-properties/{id}",
                {"GET": self.get_property, "PATCH": self.update_property, "DELETE": self.delete_property},
            ),
            ("/segments", {"POST": self.create_segment, "GET": self.list_segments}),
            (
                "/segments/{id}",
                {"GET": self.get_segment, "PATCH": self.update_segment, "DELETE": self.delete_segment},
            ),
            ("/segments/{id}/contacts", {"GET": self.list_segment_contacts}),
            # Deprecated audience paths (an audience is a segment; the SDKs still call these
            # when given an ``audience_id``).
            ("/audiences", {"POST": self.create_audience, "GET": self.list_audiences}),
            ("/audiences/{id}", {"GET": self.get_audience, "DELETE": self.delete_audience}),
            (
                "/audiences/{audience_id}/contacts",
                {"POST": self.create_audience_contact, "GET": self.list_audience_contacts},
            ),
            (
                "/audiences/{audience_id}/contacts/{id}",
                {
                    "GET": self.get_audience_contact,
                    "PATCH": self.update_contact,
                    "DELETE": self.delete_audience_contact,
                },
            ),
            ("/topics", {"POST": self.create_topic, "GET": self.list_topics}),
            (
                "/topics/{id}",
                {"GET": self.get_topic, "PATCH": self.update_topic, "DELETE": self.delete_topic},
            ),
        ]
        for path, methods in table:
            self.routes.append((_route_regex(path), path, methods))

    # contacts

    async def create_contact(self, request: Request) -> Response:
        body = await json_body(request)
        if body.get("email") is None:
            raise missing("email")
        email = body["email"]
        if not valid_email(email):
            raise invalid(
                "Invalid `email` field. The email address needs to follow the `email@example.com` format."
            )
        fields = parse_contact_fields(body)
        values = {k: v for k, v in parse_properties(body).items() if v is not None}
        segments = parse_segment_refs(body.get("segments"))
        if body.get("audience_id") is not None:  # deprecated: an audience is a segment
            segments += parse_segment_refs([body["audience_id"]])
        topics = parse_topic_refs(body.get("topics"))
        cid = self.store.create_contact(email, fields, values, segments, topics)
        return json_response({"object": "contact", "id": cid}, 201)

    async def list_contacts(self, request: Request) -> Response:
        page = page_params(request)
        segment_id = request.query_params.get("segment_id") or None
        items, more = self.store.list_contacts_json(page, segment_id)
        return json_list_response(items, more)

    async def get_contact(self, request: Request) -> Response:
        return json_response(self.store.get_contact(request.path_params["id"]))

    async def update_contact(self, request: Request) -> Response:
        ref = request.path_params["id"]
        body = await json_body(request)
        fields = parse_contact_fields(body)
        if body.get("email") is not None:
            email = body["email"]
            if not valid_email(email):
                raise invalid(
                    "Invalid `email` field. The email address needs to follow the `email@example.com` format."
                )
            if self.store.email_key(email) != self.store.email_key(ref):
                fields["email"] = email
        values = parse_properties(body)
        cid = self.store.update_contact(ref, fields, values)
        return json_response({"object": "contact", "id": cid})

    async def delete_contact(self, request: Request) -> Response:
        """Recorded (resend-node, 2025-11-30): ``{object, contact: <the id>, deleted}``, the id
        even when deleted by email, nothing else. Unknown contact: the reference as passed."""
        ref = request.path_params["id"]
        cid = self.store.delete_contact(ref)
        if cid is None and self.store.hostile:  # unknown on the global path: the harmful reading
            raise APIError(404, "not_found", "Contact not found")
        return json_response({"object": "contact", "contact": cid or ref, "deleted": True})

    def newer_page(self, request: Request) -> dict[str, Any]:
        """Pagination of the "newer" small lists: hostile pages at 20 without ``limit``."""
        return page_params(request, NEWER_DEFAULT_LIMIT if self.store.hostile else None)

    # contact properties

    async def create_property(self, request: Request) -> Response:
        body = await json_body(request)
        key = req_str(body, "key")
        if not PROPERTY_KEY_RE.match(key):
            raise invalid("The `key` must be 1 to 50 characters: letters, digits and underscores only.")
        if body.get("type") is None:
            raise missing("type")
        ptype = body["type"]
        if ptype not in PROPERTY_TYPES:
            raise invalid("The `type` must be `string` or `number`.")
        fallback = body.get("fallback_value")
        if fallback is not None:
            check_fallback(ptype, fallback)
        pid = self.store.create_property(key, ptype, fallback)
        return json_response({"object": "contact_property", "id": pid}, 201)

    async def list_properties(self, request: Request) -> Response:
        data, more = self.store.list_properties(self.newer_page(request))
        return json_response(list_body(data, more))

    async def get_property(self, request: Request) -> Response:
        return json_response(self.store.get_property(request.path_params["id"]))

    async def update_property(self, request: Request) -> Response:
        pid = request.path_params["id"]
        body = await json_body(request)
        self.store.update_property(pid, body)
        return json_response({"object": "contact_property", "id": pid})

    async def delete_property(self, request: Request) -> Response:
        pid = request.path_params["id"]
        self.store.delete_property(pid)
        return json_response({"object": "contact_property", "id": pid, "deleted": True})

    # segments

    async def create_segment(self, request: Request) -> Response:
        body = await json_body(request)
        name = req_str(body, "name")
        sid = self.store.create_segment(name)
        return json_response({"object": "segment", "id": sid, "name": name}, 201)

    async def list_segments(self, request: Request) -> Response:
        data, more = self.store.list_segments(page_params(request))
        return json_response(list_body(data, more))

    async def get_segment(self, request: Request) -> Response:
        return json_response(self.store.get_segment(request.path_params["id"]))

    async def update_segment(self, request: Request) -> Response:
        sid = request.path_params["id"]
        body = await json_body(request)
        name = req_str(body, "name")
        self.store.rename_segment(sid, name)
        return json_response({"object": "segment", "id": sid})

    async def delete_segment(self, request: Request) -> Response:
        sid = request.path_params["id"]
        self.store.delete_segment(sid)
        return json_response({"object": "segment", "id": sid, "deleted": True})

    async def list_segment_contacts(self, request: Request) -> Response:
        page = page_params(request)
        items, more = self.store.list_contacts_json(page, request.path_params["id"])
        return json_list_response(items, more)

    async def add_contact_segment(self, request: Request) -> Response:
        sid = request.path_params["segment_id"]
        cid = self.store.add_membership(request.path_params["id"], sid)
        return json_response({"object": "contact_segment", "id": sid, "contact_id": cid, "segment_id": sid})

    async def remove_contact_segment(self, request: Request) -> Response:
        sid = request.path_params["segment_id"]
        cid = self.store.remove_membership(request.path_params["id"], sid)
        return json_response(
            {
                "object": "contact_segment",
                "id": cid,
                "contact_id": cid,
                "segment_id": sid,
                "audienceId": sid,
                "deleted": True,
            }
        )

    async def list_contact_segments(self, request: Request) -> Response:
        data, more = self.store.list_contact_segments(request.path_params["id"], self.newer_page(request))
        return json_response(list_body(data, more))

    # deprecated audiences

    async def create_audience(self, request: Request) -> Response:
        body = await json_body(request)
        name = req_str(body, "name")
        sid = self.store.create_segment(name)
        return json_response({"object": "audience", "id": sid, "name": name}, 201)

    async def list_audiences(self, request: Request) -> Response:
        data, more = self.store.list_segments(page_params(request))
        return json_response(list_body(data, more))

    async def get_audience(self, request: Request) -> Response:
        return json_response({**self.store.get_segment(request.path_params["id"]), "object": "audience"})

    async def delete_audience(self, request: Request) -> Response:
        sid = request.path_params["id"]
        self.store.delete_segment(sid)
        return json_response({"object": "audience", "id": sid, "deleted": True})

    async def create_audience_contact(self, request: Request) -> Response:
        """Create (or find) the global contact and add it to the audience's segment."""
        aid = request.path_params["audience_id"]
        self.store.get_segment(aid)  # 404 "Audience not found"
        body = await json_body(request)
        if body.get("email") is None:
            raise missing("email")
        if not valid_email(body["email"]):
            raise invalid(
                "Invalid `email` field. The email address needs to follow the `email@example.com` format."
            )
        values = {k: v for k, v in parse_properties(body).items() if v is not None}
        cid = self.store.create_contact(body["email"], parse_contact_fields(body), values, [], [])
        self.store.add_membership(cid, aid)
        return json_response({"object": "contact", "id": cid}, 201)

    async def list_audience_contacts(self, request: Request) -> Response:
        aid = request.path_params["audience_id"]
        self.store.get_segment(aid)
        items, more = self.store.list_contacts_json(page_params(request), aid)
        return json_list_response(items, more)

    async def get_audience_contact(self, request: Request) -> Response:
        """Recorded (resend-node): 404 "Contact not found" once the contact left that
        segment (it still exists); the body has no ``properties``."""
        aid, ref = request.path_params["audience_id"], request.path_params["id"]
        self.store.get_segment(aid)
        contact = self.store.get_contact(ref)
        if not self.store.is_member(ref, aid):
            raise APIError(404, "not_found", "Contact not found")
        contact.pop("properties", None)
        return json_response(contact)

    async def delete_audience_contact(self, request: Request) -> Response:
        """Removes the contact from the audience only (contacts are global now; the HAR
        shows contact ids surviving such deletes). Unknown contact: 200 (HAR). The answer is
        recorded as ``{object, contact: <the reference as passed>, deleted}``, nothing else."""
        ref, aid = request.path_params["id"], request.path_params["audience_id"]
        try:
            self.store.remove_membership(ref, aid)
        except APIError as err:
            if err.status != 404:
                raise
        return json_response({"object": "contact", "contact": ref, "deleted": True})

    # topics

    async def create_topic(self, request: Request) -> Response:
        body = await json_body(request)
        name = req_str(body, "name", max_len=50)
        if body.get("default_subscription") is None:
            raise missing("default_subscription")
        default = body["default_subscription"]
        if default not in SUBSCRIPTIONS:
            raise invalid("The `default_subscription` must be `opt_in` or `opt_out`.")
        description = opt_str(body, "description", max_len=200) if "description" in body else None
        visibility = body.get("visibility") or "private"
        if visibility not in VISIBILITIES:
            raise invalid("The `visibility` must be `public` or `private`.")
        tid = self.store.create_topic(name, default, description, visibility)
        return json_response({"object": "topic", "id": tid}, 201)

    async def list_topics(self, request: Request) -> Response:
        data, more = self.store.list_topics(self.newer_page(request))
        return json_response(list_body(data, more))

    async def get_topic(self, request: Request) -> Response:
        return json_response(self.store.get_topic(request.path_params["id"]))

    async def update_topic(self, request: Request) -> Response:
        tid = request.path_params["id"]
        body = await json_body(request)
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = req_str(body, "name", max_len=50)
        if "description" in body:
            changes["description"] = opt_str(body, "description", max_len=200)
        if "visibility" in body:
            if body["visibility"] not in VISIBILITIES:
                raise invalid("The `visibility` must be `public` or `private`.")
            changes["visibility"] = body["visibility"]
        if "default_subscription" in body:
            changes["default_subscription"] = body["default_subscription"]
        self.store.update_topic(tid, changes)
        return json_response({"object": "topic", "id": tid})

    async def delete_topic(self, request: Request) -> Response:
        tid = request.path_params["id"]
        self.store.delete_topic(tid)
        return json_response({"object": "topic", "id": tid, "deleted": True})

    async def list_contact_topics(self, request: Request) -> Response:
        data, more = self.store.list_contact_topics(request.path_params["id"], self.newer_page(request))
        return json_response(list_body(data, more))

    async def update_contact_topics(self, request: Request) -> Response:
        body = await json_body(request, allow_list=True)
        if isinstance(body, dict):  # the OAS form {"topics": [...]}
            if body.get("topics") is None:
                raise missing("topics")
            body = body["topics"]
        topics = parse_topic_refs(body)
        cid = self.store.update_contact_topics(request.path_params["id"], topics)
        return json_response(
            {
                "object": "contact_topics",
                "id": cid,
                "contact_id": cid,
                "topics": [{"id": t, "subscription": s} for t, s in topics],
            }
        )

    # contact imports

    async def create_import(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise invalid("The request must be `multipart/form-data` with a CSV `file` field.")
        # On the event loop only the body's chunks are gathered: parsing a 100,000-row upload,
        # checking it and storing it take tens of ms of CPU and I/O, which would hold up every
        # other request; a worker thread does them.
        try:
            body = await request.body()
        except Exception:  # as request.form() would (a client gone mid-body)
            raise invalid("The multipart body could not be parsed.") from None
        iid = await run_in_threadpool(self._submit_upload, request.scope, body)
        return json_response({"object": "contact_import", "id": iid}, 201)

    def _submit_upload(self, scope: dict, body: bytes) -> str:
        """Parse (starlette's multipart parser, on an event loop of this thread's own),
        check and queue an import; returns its id (raises APIError)."""
        data, fields = asyncio.run(_read_upload(scope, body))
        job = imports_mod.prepare(self.store, data, fields)
        return self.importer.submit(job)

    async def get_import(self, request: Request) -> Response:
        return json_response(self.importer.get(request.path_params["id"]))

    async def list_imports(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in imports_mod.STATUSES:
            raise invalid("The `status` must be one of queued, in_progress, completed, failed.")
        data, more = self.importer.list(self.newer_page(request), status)
        return json_response(list_body(data, more))


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
) -> EmulatorApp:
    """Build the emulator app (an ASGI callable; state in SQLite at ``db_path``).

    ``unknowns``: ``"benign"`` or ``"hostile"`` (the harmful reading of every behaviour of
    the real API that is unknown; see docs/emulator.md). ``list_lag``: seconds during which
    contact and segment-member lists leave out a contact just written."""
    return EmulatorApp(
        db_path,
        rate_limit=rate_limit,
        api_keys=api_keys,
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        seed=seed,
        unknowns=unknowns,
        list_lag=list_lag,
    )
