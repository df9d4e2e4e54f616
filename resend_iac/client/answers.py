"""Checks of the API's 2xx answers: every item the client and the reader accept has the shape
its route documents (notes §2-§5), or the read stops with an ``InvalidResponseError`` naming
the route and the field: never a traceback, never a guess (``unsubscribed: "maybe"`` is not
``true``). Used by ``client/http.py`` (list pages, create answers) and ``client/reader.py``
(each item, before it becomes part of the live state)."""

from __future__ import annotations

import math
from typing import Any

from resend_iac.client.endpoint import quoted
from resend_iac.client.errors import InvalidResponseError
from resend_iac.model.schema import CONTACT as CONTACT_KIND
from resend_iac.model.schema import Field


def page_of(page: dict, path: str) -> tuple[list[dict], bool]:
    """A list answer's items and ``has_more``, checked: ``data`` a list of objects (each with a
    string ``id``: the next page's cursor), ``has_more`` a boolean."""

    def bad(what: str) -> InvalidResponseError:
        return InvalidResponseError(200, "invalid_response", what, method="GET", path=path)

    items = page.get("data")
    if not isinstance(items, list):
        raise bad(f"'data' is {kind_of(items)}, not a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"data[{i}] is {kind_of(item)}, not an object")
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise bad(f"data[{i}].id is {kind_of(item.get('id'))}, not a non-empty string")
    has_more = page.get("has_more", False)
    if not isinstance(has_more, bool):
        raise bad(f"'has_more' is {kind_of(has_more)}, not true or false")
    return items, has_more


def kind_of(value: Any) -> str:
    """A JSON value's kind, as a message names it (``missing`` for None)."""
    if value is None:
        return "missing (or null)"
    kinds = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), "a number")


def id_of(body: dict, method: str, path: str) -> str:
    """The ``id`` of a create's answer, checked."""
    value = body.get("id")
    if not isinstance(value, str) or not value:
        raise InvalidResponseError(
            200,
            "invalid_response",
            f"'id' is {kind_of(value)}, not a non-empty string",
            method=method,
            path=path,
        )
    return value


# What each route's items hold: field -> (kind, required). Kinds: "string" (required: not
# empty), "boolean", "value" (a property value: a string, a finite number or null), "object",
# or the allowed strings separated by "|". A field not named here is ignored (never read).
def _kind(f: Field) -> str:
    """A declared field's kind here (model/schema.py)."""
    if f.choices:
        return "|".join(f.choices)
    if f.types == (bool,):
        return "boolean"
    return "string" if f.types == (str,) else "value"


# A contact's fields are the contact schema's (its key required).
CONTACT = {
    "id": ("string", True),
    **{f.api: (_kind(f), f.key) for f in CONTACT_KIND.api_fields},
    "created_at": ("string", False),
}
CONTACT_DETAIL = {**CONTACT, "properties": ("object", False)}
PROPERTY = {
    "id": ("string", True),
    "key": ("string", True),
    "type": ("string", True),
    "fallback_value": ("value", False),
    "created_at": ("string", False),
}
TOPIC = {
    "id": ("string", True),
    "name": ("string", True),
    "default_subscription": ("opt_in|opt_out", False),
    "description": ("string", False),
    "visibility": ("public|private", False),
    "created_at": ("string", False),
}
SEGMENT = {"id": ("string", True), "name": ("string", True), "created_at": ("string", False)}
MEMBER = {"id": ("string", True), "email": ("string", True)}
CONTACT_TOPIC = {"id": ("string", True), "subscription": ("opt_in|opt_out", False)}
PROPERTY_VALUE = {"value": ("value", False), "type": ("string", False)}


def _shown(value: Any) -> str:
    """A short, escaped excerpt of a bad string value (a number or boolean as is)."""
    if isinstance(value, str):
        return f" ('{quoted(value, 40)}')"
    if isinstance(value, (bool, int, float)):
        return f" ({str(value).lower() if isinstance(value, bool) else value})"
    return ""


def _field_problem(value: Any, kind: str, required: bool) -> str | None:
    if value is None:
        return "is missing (or null), and it is required" if required else None
    if kind == "string":
        if not isinstance(value, str):
            return f"is {kind_of(value)}{_shown(value)}, not a string"
        return "is an empty string" if required and not value else None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"is {kind_of(value)}{_shown(value)}, not true or false"
    if kind == "object":
        return None if isinstance(value, dict) else f"is {kind_of(value)}{_shown(value)}, not an object"
    if kind == "value":
        if isinstance(value, str) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            return None
        return f"is {kind_of(value)}{_shown(value)}, not a string, a finite number or null"
    choices = kind.split("|")
    if value in choices and isinstance(value, str):
        return None
    return f"is {kind_of(value)}{_shown(value)}, not one of {', '.join(choices)}"


def _problem(item: dict, fields: dict[str, tuple[str, bool]]) -> str | None:
    for name, (kind, required) in fields.items():
        value = item.get(name)
        if (value is None and not required) or (kind == "string" and type(value) is str and value):
            continue  # the common cases, fast
        if kind == "boolean" and type(value) is bool:
            continue
        problem = _field_problem(value, kind, required)
        if problem:
            return f"'{name}' {problem}"
    return None


def check_item(item: Any, fields: dict[str, tuple[str, bool]], path: str, where: str) -> dict:
    """``item`` (an answer of ``GET path``, or one item of its list), checked against
    ``fields``; ``InvalidResponseError`` naming the route, ``where`` and the field otherwise."""
    if not isinstance(item, dict):
        raise InvalidResponseError(
            200, "invalid_response", f"{where} is {kind_of(item)}, not an object", method="GET", path=path
        )
    problem = _problem(item, fields)
    if problem:
        raise InvalidResponseError(200, "invalid_response", f"{where}: {problem}", method="GET", path=path)
    return item


def check_listed(item: dict, fields: dict[str, tuple[str, bool]], path: str) -> dict:
    """One item of a list (``page_of`` checked its ``id``), named by its id."""
    problem = _problem(item, fields)
    if problem:
        where = f"the item with id '{quoted(str(item.get('id')), 60)}'"
        raise InvalidResponseError(200, "invalid_response", f"{where}: {problem}", method="GET", path=path)
    return item


def check_contact(body: Any, path: str) -> dict:
    """``GET /contacts/{id}``: the contact, with its ``properties`` map of typed values
    (``{"value": v, "type": t}``) or plain values."""
    check_item(body, CONTACT_DETAIL, path, "the contact")
    for key, value in (body.get("properties") or {}).items():
        where = f"the contact: property '{quoted(str(key), 60)}'"
        if isinstance(value, dict):
            check_item(value, PROPERTY_VALUE, path, where)
        else:
            problem = _field_problem(value, "value", False)
            if problem:
                raise InvalidResponseError(
                    200, "invalid_response", f"{where} {problem}", method="GET", path=path
                )
    return body
