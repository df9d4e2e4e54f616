"""Error answers of the API and the small value rules every resource shares."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any

PROPERTY_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,50}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PROPERTY_TYPES = ("string", "number")
# What a CSV import's column_map may give as a type (it creates unknown properties; changelog
# "CSV contacts import", 2026-06-24): boolean too.
IMPORT_PROPERTY_TYPES = ("string", "number", "boolean")
UNKNOWNS = ("benign", "hostile")
SUBSCRIPTIONS = ("opt_in", "opt_out")
VISIBILITIES = ("public", "private")
CONTACT_FIELDS = ("email", "first_name", "last_name", "unsubscribed")


class APIError(Exception):
    """An error answer of the API: ``{"statusCode", "message", "name"}``."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message, "name": self.name}


def missing(field: str) -> APIError:
    return APIError(422, "missing_required_field", f"Missing `{field}` field.")


def invalid(message: str) -> APIError:
    return APIError(422, "validation_error", message)


def not_found(what: str) -> APIError:
    return APIError(404, "not_found", f"{what} not found")


def now_text() -> str:
    """``created_at`` as the API writes it: Postgres text, microseconds, ``+00``
    (trailing zeros of the fraction dropped, like Postgres)."""
    t = datetime.now(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + "+00"


def new_id() -> str:
    """A random (version 4) UUID as text; cheaper than ``str(uuid.uuid4())`` for imports."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


def valid_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(EMAIL_RE.match(value.strip()))


def check_value(key: str, ptype: str, value: Any) -> None:
    """A property value must match the declared type (bool is not a number)."""
    if ptype == "string":
        if not isinstance(value, str):
            raise invalid(f"The value of property `{key}` must be a string.")
    elif ptype == "boolean":
        if not isinstance(value, bool):
            raise invalid(f"The value of property `{key}` must be a boolean.")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"The value of property `{key}` must be a number.")


def check_fallback(ptype: str, value: Any) -> None:
    if ptype == "string" and not isinstance(value, str):
        raise invalid("The `fallback_value` must be a string for a property of type `string`.")
    if ptype == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise invalid("The `fallback_value` must be a number for a property of type `number`.")
