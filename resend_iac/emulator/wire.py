"""What every route shares on the wire: the JSON answer, request-body parsing, pagination
parameters, field readers, and the route table type.

A route table (``ROUTES`` of a resource module) is a list of ``(path template, {method:
handler})``; a handler is ``async def handler(app, request) -> Response`` and raises
:class:`~resend_iac.emulator.errors.APIError` for an error answer."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator import guard
from resend_iac.emulator.errors import APIError, invalid, missing

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp

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


Handler = Callable[["EmulatorApp", Request], Awaitable[Response]]
RouteTable = list[tuple[str, dict[str, Handler]]]


def json_response(body: Any, status: int = 200) -> Response:
    """``allow_nan=False``: a non-finite number is never answered (it is not JSON; the Node
    SDK cannot parse it); guard.loads keeps them out of the store."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(text.encode(), status)


def error_response(err: APIError) -> Response:
    return json_response(err.body(), err.status)


def list_body(data: list, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "has_more": has_more, "data": data}


def json_list_response(items: list[str], has_more: bool) -> Response:
    """A list whose items are JSON texts already (serialised by SQLite)."""
    body = f'{{"object":"list","has_more":{"true" if has_more else "false"},"data":[' + ",".join(items) + "]}"
    return Response(body.encode())


def route_regex(template: str) -> re.Pattern[str]:
    """``/contacts/{id}`` -> ``^/contacts/(?P<id>[^/]+)$``."""
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


# -- request parsing ---------------------------------------------------------------------


async def json_body(request: Request, *, allow_list: bool = False) -> Any:
    """The JSON object of the body (``{}`` when empty); errors as guard.loads says."""
    raw = await request.body()
    if not raw.strip():
        return {}
    body = guard.loads(raw)
    if isinstance(body, dict) or (allow_list and isinstance(body, list)):
        return body
    raise APIError(422, "validation_error", "The request body must be a JSON object.")


def upload(handler: Handler) -> Handler:
    """Mark a handler whose body is a file upload: it may be up to the app's ``max_upload``
    bytes instead of ``max_body``."""
    handler.upload = True  # type: ignore[attr-defined]
    return handler


NEWER_DEFAULT_LIMIT = 20  # "newer" list endpoints without `limit` (pagination docs)
LIMIT_RE = re.compile(r"[0-9]{1,3}")


def page_params(request: Request, default_limit: int | None = None) -> dict[str, Any]:
    """Pagination parameters; ``default_limit`` applies when ``limit`` is absent."""
    q = request.query_params
    page: dict[str, Any] = {"limit": None, "after": q.get("after") or None, "before": q.get("before") or None}
    if page["after"] and page["before"]:
        raise invalid("The `after` and `before` parameters cannot be used together.")
    raw = q.get("limit")
    if raw is not None:
        # ASCII digits only: int() would take "+3", " 3", "３" and "1_0"
        limit = int(raw) if LIMIT_RE.fullmatch(raw) else 0
        if not 1 <= limit <= 100:
            raise invalid("The `limit` parameter must be an integer between 1 and 100.")
        page["limit"] = limit
    elif default_limit is not None:
        page["limit"] = default_limit
    return page


def newer_page(app: EmulatorApp, request: Request) -> dict[str, Any]:
    """Pagination of the "newer" small lists: hostile pages at 20 without ``limit``."""
    return page_params(request, NEWER_DEFAULT_LIMIT if app.store.hostile else None)


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
