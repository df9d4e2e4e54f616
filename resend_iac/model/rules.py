"""The rules a value must follow, shared by config/ (validate) and the engine (saved plans):
email syntax (no invisible characters: ``text.invisible``), property keys, a value against
its property's type. A value quoted in a message goes through ``text.excerpt``. Plain functions, no I/O;
each returns why a value is refused, or ``None``.
"""

from __future__ import annotations

import re
from typing import Any

from resend_iac.model import PROPERTY_KEY_MAX, Property
from resend_iac.model.schema import CONTACT
from resend_iac.text import excerpt, invisible

CONTACT_FIELDS = tuple(f.name for f in CONTACT.api_fields)  # built-in fields: not property keys


def _ex(text: Any) -> str:
    """A value from a file, quoted, escaped and cut to 60 characters (``text.excerpt``)."""
    return excerpt(text, 60)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {excerpt(value, 60)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)  # pragma: no cover


_KEY_RE = re.compile(r"^[A-Za-z0-9_]+$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+$")
_LABEL_RE = re.compile(
    r"^[A-Za-z0-9\u0080-\U0010ffff]([A-Za-z0-9\-\u0080-\U0010ffff]*[A-Za-z0-9\u0080-\U0010ffff])?$"
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# The common ASCII case in one match (a strict subset of what email_problem accepts).
_QUICK_EMAIL_RE = re.compile(
    rf"(?=.{{3,254}}\Z)(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]\Z"
)
quick_email_ok = _QUICK_EMAIL_RE.match


def email_problem(email: str) -> str | None:
    """Why ``email`` (already trimmed) is not a usable address, or ``None``."""
    if _QUICK_EMAIL_RE.match(email):
        return None
    if not email:
        return "email is empty"
    if len(email) > 254:
        return f"{_ex(email)} is {len(email)} characters long; an email address has at most 254"
    if any(c.isspace() for c in email):
        return f"{_ex(email)} is not a valid email address (it contains white space)"
    hidden = invisible(email)
    if hidden:
        return (
            f"{_ex(email)} holds {hidden}, which a reviewer cannot see (an address that looks like "
            "another one); retype the address"
        )
    if email.count("@") != 1:
        return f"{_ex(email)} is not a valid email address (it needs exactly one @)"
    local, domain = email.split("@")
    if (
        not local
        or len(local) > 64
        or not _LOCAL_RE.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        return f"{_ex(email)} is not a valid email address (the part before @ is not valid)"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels) or len(labels[-1]) < 2:
        return f"{_ex(email)} is not a valid email address (the domain {_ex(domain)} is not valid)"
    return None


def property_key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "a property key must be a non-empty string"
    if len(key) > PROPERTY_KEY_MAX:
        return f"property key {_ex(key)} is {len(key)} characters long; Resend allows at most {PROPERTY_KEY_MAX}: shorten it"
    if not _KEY_RE.match(key):
        bad = "".join(sorted({c for c in key if not (c.isascii() and (c.isalnum() or c == "_"))}))
        fixed = re.sub(r"[^A-Za-z0-9_]", "_", key)
        return (
            f"property key {_ex(key)} may only contain letters, digits and underscore (found {_ex(bad)}); "
            f"rename it, e.g. {_ex(fixed)}"
        )
    if key in CONTACT_FIELDS:
        return f"property key {_ex(key)} is a built-in contact field, not a custom property: pick another key"
    return None


def value_problem(key: str, value: Any, prop: Property) -> str | None:
    """Whether ``value`` fits the declared property (``None`` always fits: it clears)."""
    if value is None:
        return None
    if prop.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = _number_text_hint(value) if isinstance(value, str) else ""
            return f"property {_ex(key)} is a number, but the value is {describe(value)}{hint}"
    elif not isinstance(value, str):
        return f"property {_ex(key)} is a string, but the value is {describe(value)}: quote it"
    return None


_EXPONENT_NO_DOT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")


def _number_text_hint(value: str) -> str:
    """What to do about a number property's value that is text."""
    text = value.strip()
    if _EXPONENT_NO_DOT.match(text):
        mantissa, _, exponent = text.lower().partition("e")
        sign = "" if exponent.startswith(("-", "+")) else "+"
        fixed = f"{mantissa}.0e{sign}{exponent}"
        try:
            finite = abs(float(text)) != float("inf")
        except ValueError:  # pragma: no cover - the pattern is a float
            finite = False
        out = (
            f": YAML 1.1 reads a number with an exponent but no dot ({text}) as text; "
            f"write it unquoted and with a dot, e.g. {fixed}"
        )
        if not finite:
            out += ", and keep it within what Resend stores (a JSON double: finite, at most about 1.8e308)"
        return out
    return ": write it without quotes"
