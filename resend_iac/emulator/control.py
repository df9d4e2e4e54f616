"""The emulator's own routes under ``/_emulator/``: the web view (``/_emulator/ui``), the
request counters (``GET /_emulator/stats``), ``POST /_emulator/reset`` (empty the store
and the counters) and ``POST /_emulator/advance`` (``{"seconds": N}``: let time pass for
``list_lag`` without waiting). No auth, not counted, not rate limited; but refused to
other sites' pages (guard.check_control: foreign ``Origin``, form body types) and bounded
(a body of at most ``guard.MAX_CONTROL_BODY`` bytes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from resend_iac.emulator import guard
from resend_iac.emulator.errors import APIError, invalid
from resend_iac.emulator.wire import Response, error_response, json_response

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp

ControlHandler = Callable[["EmulatorApp", Any], Awaitable[Response]]


async def stats(app: EmulatorApp, receive: Any) -> Response:
    return json_response(app.stats())


async def reset(app: EmulatorApp, receive: Any) -> Response:
    app.importer.clear()
    app.store.reset()
    app.reset_stats()
    app.window_count = 0
    return json_response({"object": "emulator", "reset": True})


async def advance(app: EmulatorApp, receive: Any) -> Response:
    raw = await guard.read_body(receive, guard.MAX_CONTROL_BODY)
    body = guard.loads(raw) if raw.strip() else {}
    try:
        seconds = float(body.get("seconds", 0))
    except (ValueError, TypeError, AttributeError):
        seconds = -1.0
    if not 0 <= seconds < 1e9:
        return error_response(invalid("`seconds` must be a number >= 0."))
    app.store.advance(seconds)
    return json_response({"object": "emulator", "advanced": seconds})


ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("GET", "/_emulator/stats"): stats,
    ("POST", "/_emulator/reset"): reset,
    ("POST", "/_emulator/advance"): advance,
}


async def handle(app: EmulatorApp, scope: dict, receive: Any, send: Any) -> None:
    """Answer a request whose path starts with ``/_emulator/``."""
    path, method = scope["path"], scope["method"]
    refused = guard.check_control(scope)
    if refused is not None:
        await error_response(refused)(scope, receive, send)
        return
    if path == "/_emulator/ui" or path.startswith("/_emulator/ui/"):  # read-only web view
        from resend_iac.emulator.ui import UI

        app.ui = app.ui or UI(app)
        await app.ui(scope, receive, send)
        return
    handler = ROUTES.get((method, path))
    if handler is None:
        response = error_response(APIError(404, "not_found", "The requested endpoint does not exist."))
    else:
        try:
            response = await handler(app, receive)
        except APIError as err:  # 413, 400, 422 of the body
            response = error_response(err)
    await response(scope, receive, send)
