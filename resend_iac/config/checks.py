"""Checks of single objects: the JSON Schema (structure) plus the rules it cannot say well
(Resend's limits, email syntax, value types against declared properties).

The loader and the Pulumi providers' ``check`` use the same functions, so a user sees the
same message whichever way they declare an object. The public ``check_*`` functions return
plain messages; the ``*_issues`` variants also return where (a path inside the object, and
whether the message is about the key rather than the value) so the loader can point at
``file:line:column``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema

from resend_iac.model import (
    TOPIC_DESCRIPTION_MAX,
    TOPIC_NAME_MAX,
    Property,
)
from resend_iac.model.jsonschema import with_fields
from resend_iac.model.rules import (
    describe,
    email_problem,
    property_key_problem,
    value_problem,
)
from resend_iac.model.schema import CONTACT
from resend_iac.text import excerpt, printable

# (path inside the checked object, message, about the key rather than the value)
Issue = tuple[tuple[Any, ...], str, bool]

SCHEMA_FILE = "resend-iac.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The format's JSON Schema, shipped as package data (``resend_iac/schemas``)."""
    text = resources.files("resend_iac").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    return with_fields(json.loads(text))


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """The schema with its local ``$ref``s replaced by their targets (ours has no cycles):
    jsonschema then needs no reference resolution, which is most of its cost."""
    if isinstance(node, dict):
        out = {k: _inline(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref[len("#/$defs/") :]], defs)
            out = {**target, **out}
        return out
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


@cache
def _validator(definition: str | None) -> jsonschema.protocols.Validator:
    root = schema()
    defs = root["$defs"]
    target = root if definition is None else defs[definition]
    return jsonschema.Draft202012Validator(_inline(target, defs))


# ---------------------------------------------------------------- schema errors -> words

_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "null",
}
# Left to the semantic checks below, which say it better (and with Resend's limits).
_SKIPPED_VALIDATORS = {"maxLength", "minLength", "pattern"}


def _ex(text: Any) -> str:
    """A name from a file, quoted, escaped and cut to 60 characters (``text.excerpt``)."""
    return excerpt(text, 60)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or empty."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if isinstance(word, str) and word.lower() in lowered and lowered[word.lower()] != word:
        return f" (did you mean {_ex(lowered[word.lower()])}?)"
    match = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f" (did you mean {_ex(match[0])}?)" if match else ""


def _field(path: tuple[Any, ...]) -> str:
    if not path:
        return "the file"
    last = path[-1]
    if isinstance(last, int):
        parent = next((p for p in reversed(path[:-1]) if isinstance(p, str)), None)
        return f"each {_ex(parent)} item" if parent else "each item"
    if len(path) >= 2 and path[-2] == "properties" and (len(path) > 2 or path[0] != "properties"):
        return f"the value of property {_ex(last)}"
    if len(path) >= 2 and path[-2] == "topics" and len(path) > 2:
        return f"the subscription to topic {_ex(last)}"
    if len(path) == 2 and path[0] in ("properties", "segments", "topics"):
        return f"{path[0][:-1]} {_ex(last)}"
    return _ex(last)


def _title(schema_: Mapping[str, Any], path: tuple[Any, ...]) -> str:
    title = schema_.get("title")
    if title == "resend-iac configuration":
        return "the top level of the file"
    if title:
        return title
    return _ex(path[-1]) if path else "the object"


_PROPERTY_RENAME = (
    "a property cannot be renamed: Resend's API cannot change a property's key. Declare the new "
    "key as a new property, copy the values to it (in the files or CSV), then remove the old one; "
    "remove renamed_from"
)


def _error_issues(error: jsonschema.ValidationError, base: tuple[Any, ...]) -> list[Issue]:
    path = base + tuple(error.absolute_path)
    kind = error.validator
    value = error.instance
    field = _field(path)
    if kind in _SKIPPED_VALIDATORS or "propertyNames" in error.absolute_schema_path:
        return []
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extras = [k for k in value if k not in allowed and not any(p.search(k) for p in patterns)]
        what = _title(error.schema, path)
        return [
            (
                path + (k,),
                _PROPERTY_RENAME
                if (k, what) == ("renamed_from", "property")
                else f"unknown key {_ex(k)} in {what}{suggest(k, allowed) or '; allowed keys: ' + ', '.join(allowed)}",
                True,
            )
            for k in extras
        ]
    if kind == "required":
        what = _title(error.schema, path)
        missing = [k for k in error.validator_value if k not in value]
        hint = ""
        if what == "contact":
            hint = " (each contacts entry needs email:, csv: or emails:)"
        elif what == "the top level of the file":
            hint = " (start the file with `version: 1`)"
        return [(path, f"{what} is missing required key {k!r}{hint}", False) for k in missing]
    if kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        if not path:
            return [
                (
                    path,
                    f"the file must be a mapping with `version: 1` at the top, not {describe(value)}",
                    False,
                )
            ]
        want = " or ".join(_TYPE_WORDS.get(t, str(t)) for t in types if t != "null")
        if "null" in types:
            want += " or null"
        hint = ""
        if isinstance(value, bool) and "string" in types:
            hint = " (YAML reads yes/no/on/off/true/false as booleans: quote the text)"
        elif isinstance(value, (int, float)) and "string" in types:
            hint = " (quote it to make it a string)"
        elif len(path) == 2 and path[0] == "contacts" and isinstance(value, str):
            shown = value if len(value) <= 60 and printable(value) else "ADDRESS"
            hint = f" (write `- email: {shown}`, or list plain addresses under `- emails:`)"
        elif len(path) == 1 and path[0] in ("properties", "segments", "topics") and isinstance(value, list):
            hint = f" (declare each as `name: {{...}}` under {path[0]}:)"
        return [(path, f"{field} must be {want}, not {describe(value)}{hint}", False)]
    if kind == "enum":
        options = [str(o) for o in error.validator_value]
        return [
            (
                path,
                f"{field} must be one of {', '.join(options)}, not {describe(value)}{suggest(str(value), options)}",
                False,
            )
        ]
    if kind == "const":
        return [(path, f"{field} must be {error.validator_value!r}, not {describe(value)}", False)]
    if kind in ("minimum", "maximum"):
        low = error.schema.get("minimum")
        high = error.schema.get("maximum")
        if low is not None and high is not None:
            return [(path, f"{field} must be between {low} and {high}, not {value!r}", False)]
        return [(path, f"{field} must be at least {low}, not {value!r}", False)]
    if kind == "uniqueItems":
        seen: set[Any] = set()
        dups = []
        for item in value:
            key = json.dumps(item, sort_keys=True, default=str)
            if key in seen:
                dups.append(item)
            seen.add(key)
        return [
            (
                path,
                f"{field} lists {', '.join(_ex(d) for d in dups[:5])} more than once: remove the repeat",
                False,
            )
        ]
    return [
        (path, f"{field}: {excerpt(error.message, 200, quote=False)}", False)
    ]  # pragma: no cover - a validator we do not use


_CONTACT_KEYS = frozenset((*CONTACT.names, *(r.name for r in CONTACT.relations)))
_CONTACT_VALUES = tuple(f for f in CONTACT.fields if not f.key)
_SUBSCRIPTIONS = frozenset(("opt_in", "opt_out"))


def plain_contact_ok(entry: Any) -> bool:
    """A fast, conservative structural check of one plain contact entry: ``True`` only when
    the schema certainly has nothing to say about it (then jsonschema is skipped; on
    ``False`` jsonschema runs and words the errors). Keeps big YAML lists fast."""
    if type(entry) is not dict and not isinstance(entry, dict):
        return False
    if not entry.keys() <= _CONTACT_KEYS or type(entry.get("email")) is not str:
        return False
    for f in _CONTACT_VALUES:
        if f.name in entry and not f.type_ok(entry[f.name]):
            return False
    props = entry.get("properties", {})
    if not isinstance(props, dict):
        return False
    for value in props.values():
        if value is not None and type(value) not in (str, int, float):
            return False
    segments = entry.get("segments", [])
    if (
        not isinstance(segments, list)
        or any(type(n) is not str for n in segments)
        or len(set(segments)) != len(segments)
    ):
        return False
    topics = entry.get("topics", {})
    if not isinstance(topics, dict) or any(
        v not in _SUBSCRIPTIONS for v in topics.values() if type(v) is str
    ):
        return False
    return all(type(v) is str for v in topics.values())


def file_issues(data: Any) -> list[Issue]:
    """Structural issues of a whole parsed file. Plain contact entries that pass
    ``plain_contact_ok`` are not run through jsonschema one by one."""
    contacts = data.get("contacts") if isinstance(data, dict) else None
    if not isinstance(contacts, list):
        return schema_issues(data)
    rest = {k: v for k, v in data.items() if k != "contacts"}
    rest["contacts"] = []
    out = schema_issues(rest)
    for i, entry in enumerate(contacts):
        if not plain_contact_ok(entry):
            out.extend(schema_issues(entry, "contactEntry", ("contacts", i)))
    return out


def schema_issues(instance: Any, definition: str | None = None, base: tuple[Any, ...] = ()) -> list[Issue]:
    """Structural issues of ``instance`` against the whole schema (``definition=None``) or one
    of its ``$defs``; paths are prefixed with ``base``."""
    out: list[Issue] = []
    for error in _validator(definition).iter_errors(instance):
        for issue in _error_issues(error, base):
            if issue not in out:  # e.g. a non-mapping contacts entry fails two `type`s
                out.append(issue)
    return out


# ---------------------------------------------------------------- the rules


def property_issues(data: Mapping[str, Any], structure: bool = True) -> list[Issue]:
    """``structure=False``: the caller already ran the schema (the loader, over the file)."""
    spec = {k: v for k, v in data.items() if k != "key"}
    key = data.get("key")
    out: list[Issue] = []
    problem = property_key_problem(key)
    if problem:
        out.append((("key",), problem, True))
    structural = schema_issues(spec, "property") if structure else []
    out.extend(structural)
    typed = spec.get("type") in ("string", "number")
    fallback = spec.get("fallback_value")
    if not structural and typed and isinstance(fallback, (str, int, float)) and isinstance(key, str):
        prop = Property(key=key, type=spec["type"])
        problem = value_problem(key, spec["fallback_value"], prop)
        if problem:
            out.append((("fallback_value",), f"fallback_value: {problem}", False))
    return out


def segment_issues(data: Mapping[str, Any], structure: bool = True) -> list[Issue]:
    name = data.get("name")
    out: list[Issue] = []
    if not isinstance(name, str) or not name.strip():
        out.append((("name",), "a segment name must be a non-empty string", True))
    elif name != name.strip():
        out.append((("name",), f"segment name {_ex(name)} starts or ends with white space: remove it", True))
    if structure:
        out.extend(schema_issues({k: v for k, v in data.items() if k != "name"}, "segment"))
    out.extend(_renamed_from_issues("segment", name, data.get("renamed_from")))
    return out


def _renamed_from_issues(kind: str, name: Any, old: Any) -> list[Issue]:
    if old is None or not isinstance(old, str):
        return []  # absent, or the schema words it
    if not old.strip() or old != old.strip():
        return [(("renamed_from",), f"renamed_from {_ex(old)} must be the {kind}'s old name, trimmed", False)]
    if old == name:
        return [(("renamed_from",), f"renamed_from names the {kind} itself ({_ex(old)}): remove it", False)]
    return []


def topic_issues(data: Mapping[str, Any], structure: bool = True) -> list[Issue]:
    name = data.get("name")
    out: list[Issue] = []
    if not isinstance(name, str) or not name.strip():
        out.append((("name",), "a topic name must be a non-empty string", True))
    elif len(name) > TOPIC_NAME_MAX:
        out.append(
            (
                ("name",),
                f"topic name {_ex(name)} is {len(name)} characters long; Resend allows at most {TOPIC_NAME_MAX}: shorten it",
                True,
            )
        )
    spec = {k: v for k, v in data.items() if k != "name"}
    if structure:
        out.extend(schema_issues(spec, "topic"))
    out.extend(_renamed_from_issues("topic", name, spec.get("renamed_from")))
    description = spec.get("description")
    if isinstance(description, str) and len(description) > TOPIC_DESCRIPTION_MAX:
        out.append(
            (
                ("description",),
                f"description of topic {_ex(name)} is {len(description)} characters long; "
                f"Resend allows at most {TOPIC_DESCRIPTION_MAX}: shorten it",
                False,
            )
        )
    return out


def reference_issues(
    data: Mapping[str, Any],
    properties: Mapping[str, Property] | None,
    segments: Iterable[str] | None,
    topics: Iterable[str] | None,
) -> list[Issue]:
    """Property values, segment and topic names of a contact (or CSV/emails entry) against
    what is declared. ``None`` = not known here: not checked."""
    out: list[Issue] = []
    values = data.get("properties")
    if properties is not None and isinstance(values, Mapping):
        for key, value in values.items():
            prop = properties.get(key)
            if prop is None:
                out.append(
                    (
                        ("properties", key),
                        f"property {_ex(key)} is not declared; declare it under properties: or fix the key"
                        + suggest(key, properties),
                        True,
                    )
                )
                continue
            problem = value_problem(key, value, prop)
            if problem:
                out.append((("properties", key), problem, False))
    names = data.get("segments")
    if segments is not None and isinstance(names, list):
        known = set(segments)
        for i, name in enumerate(names):
            if isinstance(name, str) and name not in known:
                out.append(
                    (
                        ("segments", i),
                        f"segment {_ex(name)} is not declared; declare it under segments: or fix the name"
                        + suggest(name, known),
                        False,
                    )
                )
    subs = data.get("topics")
    if topics is not None and isinstance(subs, Mapping):
        known = set(topics)
        for name in subs:
            if name not in known:
                out.append(
                    (
                        ("topics", name),
                        f"topic {_ex(name)} is not declared; declare it under topics: or fix the name"
                        + suggest(name, known),
                        True,
                    )
                )
    return out


def contact_issues(
    data: Mapping[str, Any],
    properties: Mapping[str, Property] | None = None,
    segments: Iterable[str] | None = None,
    topics: Iterable[str] | None = None,
    structure: bool = True,
) -> list[Issue]:
    structural = schema_issues(data, "contact") if structure else []
    out = list(structural)
    email = data.get("email")
    if isinstance(email, str):
        problem = email_problem(email.strip())
        if problem:
            out.append((("email",), problem, False))
    if not structural:
        out.extend(reference_issues(data, properties, segments, topics))
    return out


def _messages(issues: list[Issue]) -> list[str]:
    return [message for _, message, _ in issues]


def check_property(data: Mapping[str, Any]) -> list[str]:
    """``{"key", "type", "fallback_value"?}`` -> messages (empty when valid)."""
    return _messages(property_issues(data))


def check_segment(data: Mapping[str, Any]) -> list[str]:
    """``{"name", "membership"?}`` -> messages."""
    return _messages(segment_issues(data))


def check_topic(data: Mapping[str, Any]) -> list[str]:
    """``{"name", "default_subscription"?, "description"?, "visibility"?}`` -> messages."""
    return _messages(topic_issues(data))


def check_contact(
    data: Mapping[str, Any],
    properties: Mapping[str, Property] | None = None,
    *,
    segments: Iterable[str] | None = None,
    topics: Iterable[str] | None = None,
) -> list[str]:
    """A contact as in a file (``email``, names, ``unsubscribed``, ``properties``,
    ``segments``, ``topics``, ``protect``) -> messages. Property values are checked against
    ``properties`` when given; segment/topic names against ``segments``/``topics`` when given."""
    return _messages(contact_issues(data, properties, segments, topics))


__all__ = [
    "check_contact",
    "check_property",
    "check_segment",
    "check_topic",
    "email_problem",
    "schema",
]
