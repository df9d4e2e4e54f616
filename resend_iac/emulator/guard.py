"""The emulator's edges (#18): who may talk to it and how much.

- **Host** (DNS rebinding): a web page on ``evil.example`` whose name is re-pointed at
  127.0.0.1 reaches the emulator with ``Host: evil.example:8025``, same-origin for the page,
  so it could read the web view and the API (any key is accepted without ``--api-key``, and
  a same-origin page may send an ``Authorization`` header). Every request, control and API
  alike, must name the address the connection arrived on, ``localhost``, ``127.0.0.1``,
  ``::1`` or a name given with ``allowed_hosts`` (``--allow-host``); another is 403.
- **Origin** (CSRF, control routes only): a request with an ``Origin`` other than the one
  its ``Host`` names, or ``Sec-Fetch-Site: cross-site``/``same-site``, is 403; a ``POST``
  with a body type an HTML form can send (``text/plain``, urlencoded, multipart) is 415.
  (The API routes need an ``Authorization`` header, which a cross-site page cannot send
  without a CORS preflight the emulator never grants.)
- **Body size**: more than the limit (``Content-Length`` or the bytes received) is 413;
  bodies are gathered as a list of chunks joined once (linear time).
- **JSON**: nesting too deep for the parser is 400, not a 500; numbers that are not finite
  in a double (``1e400``, a 400-digit integer, ``NaN``, ``Infinity``) are 422, so none is
  stored or ever answered.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any
from urllib.parse import urlsplit

from resend_iac.emulator.errors import APIError

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_BODY = 1024 * 1024  # JSON bodies of the API (the largest real one is a few KB)
MAX_UPLOAD = 50 * 1000 * 1000  # a contact import's multipart body: the OAS's 50 MB file limit
MAX_CONTROL_BODY = 64 * 1024  # /_emulator/* bodies ({"seconds": N})
DRAIN = 8 * 1024 * 1024  # bytes of an oversized body read and dropped so the client gets the 413
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def host_name(value: str) -> str:
    """``127.0.0.1:8025`` -> ``127.0.0.1``; ``[::1]:8025`` -> ``::1``; lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def check_host(scope: dict, allowed: frozenset[str]) -> APIError | None:
    """403 unless ``Host`` names this server (a missing ``Host`` passes: no browser omits it)."""
    host = _header(scope, b"host")
    if host is None:
        return None
    name = host_name(host)
    server = scope.get("server")
    if name in LOCAL_NAMES or name in allowed or (server and name == str(server[0]).lower()):
        return None
    shown = host[:80].encode("unicode_escape").decode("ascii")
    return APIError(
        403,
        "invalid_access",
        f"The Host header `{shown}` is not an address of this emulator (localhost, 127.0.0.1, ::1 "
        "or the address it listens on). A page re-pointing its own name at this machine is "
        "refused (DNS rebinding); to use another name, start the emulator with --allow-host NAME.",
    )


def check_control(scope: dict) -> APIError | None:
    """403/415 for a control request a page of another site could have sent (CSRF)."""
    origin = _header(scope, b"origin")
    if origin is not None:
        host = (_header(scope, b"host") or "").strip().lower()
        parts = urlsplit(origin.strip().lower())
        if origin.strip() == "null" or parts.scheme not in ("http", "https") or parts.netloc != host:
            return APIError(
                403,
                "invalid_access",
                "Cross-site requests to /_emulator/ are refused (Origin is not this emulator).",
            )
    site = _header(scope, b"sec-fetch-site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        return APIError(
            403, "invalid_access", "Cross-site requests to /_emulator/ are refused (Sec-Fetch-Site)."
        )
    ctype = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if scope.get("method") == "POST" and ctype in FORM_TYPES:
        return APIError(
            415,
            "validation_error",
            f"/_emulator/ routes take no body or `application/json`, not `{ctype}` (what a form of another site sends).",
        )
    return None


def too_large(limit: int) -> APIError:
    return APIError(413, "validation_error", f"The request body is larger than {limit} bytes.")


def declared_length(scope: dict) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


async def drain(receive: Any, budget: int = DRAIN) -> None:
    """Read and drop up to ``budget`` bytes of the rest of a body (so that a client still
    sending it reads the 413 instead of a reset connection)."""
    more = True
    while more and budget > 0:
        message = await receive()
        if message.get("type") != "http.request":
            return
        budget -= len(message.get("body", b""))
        more = message.get("more_body", False)


def limited(receive: Any, limit: int) -> Any:
    """``receive`` that raises a 413 APIError once more than ``limit`` body bytes came."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                if message.get("more_body", False):
                    await drain(receive)
                raise too_large(limit)
        return message

    return wrapped


async def read_body(receive: Any, limit: int) -> bytes:
    """The whole body, in linear time (chunks joined once); 413 APIError over ``limit``."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message.get("type") != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            if more:
                await drain(receive)
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


# -- JSON ----------------------------------------------------------------------------------

DOUBLE_MAX = sys.float_info.max


class NotFinite(ValueError):
    """A JSON number a double cannot hold (or NaN/Infinity)."""


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(text)
    return value


def _int(text: str) -> int:
    value = int(text)  # ValueError past 4,300 digits
    if abs(value) > DOUBLE_MAX:
        raise NotFinite(text)
    return value


def _constant(text: str) -> Any:
    raise NotFinite(text)  # NaN, Infinity, -Infinity: Python accepts them, JSON doesn't


def loads(raw: bytes | str) -> Any:
    """``json.loads`` for untrusted bodies: APIError 422 for a non-finite number, 400 for
    text that is not JSON or nests too deep for the parser."""
    try:
        return json.loads(raw, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except NotFinite as exc:
        shown = str(exc)[:24] + ("…" if len(str(exc)) > 24 else "")
        raise APIError(
            422,
            "validation_error",
            f"The number `{shown}` is not finite in a double: numbers must be finite.",
        ) from None
    except RecursionError:
        raise APIError(400, "validation_error", "The request body nests too deeply.") from None
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "validation_error", "The request body is not valid JSON.") from None
