"""Saved plans: ``plan --out PLAN`` writes one, ``apply --plan PLAN`` reads it.

The file is the plan's JSON (``Plan.to_dict``) plus a ``digest`` (and, when
``RESEND_IAC_PLAN_KEY`` is set, an ``hmac``), written to a temporary file in the same
directory and renamed into place, so a crash never leaves half a plan behind.

A plan file is passed between CI jobs, so ``load_plan`` trusts nothing in it. Before the
plan is returned (so before the first request), in this order:

1. the file is read within a size limit (``RESEND_IAC_MAX_PLAN_BYTES``, 1 GiB) and parsed as
   strict JSON (no ``NaN``/``Infinity``, finite numbers only);
2. it is checked against the JSON Schema ``schemas/resend-iac-plan.schema.json`` (known
   kinds and actions, and which actions each kind has; the fields of each kind with their
   types; the policy's ranges);
3. its ``digest`` (sha256 over the canonical JSON of every other key) must match: an edited
   or truncated plan is refused. With ``RESEND_IAC_PLAN_KEY`` set, its ``hmac`` must verify
   too; a plan that carries an ``hmac`` is refused where the key is not set;
4. every change is checked again with ``validate``'s rules: email syntax and normalisation,
   property keys, topic name/description limits, the key inside the fields matching the
   change's key, no change twice, the summary matching the changes.

The digest alone catches accidents (an edit, a truncated copy); anyone who can write the
file can recompute it. The HMAC is what stops a deliberate edit: only a holder of the key
can make a plan the apply job accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import tempfile
from collections import Counter
from datetime import timedelta
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

import jsonschema

from resend_iac.engine.binding import stamp
from resend_iac.engine.plan import FORMAT_VERSION, Plan
from resend_iac.errors import ResendIACError
from resend_iac.files import ReadProblem, read_bounded
from resend_iac.model import (
    PROPERTY_KEY_MAX,
    TOPIC_DESCRIPTION_MAX,
    TOPIC_NAME_MAX,
    Property,
    PropertyType,
    normalize_email,
)
from resend_iac.model.jsonschema import with_fields
from resend_iac.model.rules import email_problem, property_key_problem, quick_email_ok, value_problem
from resend_iac.model.schema import CONTACT

PLAN_SCHEMA_FILE = "resend-iac-plan.schema.json"
KEY_ENV = "RESEND_IAC_PLAN_KEY"
SIZE_ENV = "RESEND_IAC_MAX_PLAN_BYTES"
MAX_PLAN_BYTES = 1024 * 1024 * 1024
MAX_SAFE_INTEGER = 2**53 - 1
MAX_ERRORS = 10  # problems listed before "... and N more"
_NEW_PLAN = "make a new one with `resend-iac plan ... --out PLAN`"


class PlanFileError(ResendIACError):
    pass


# ----------------------------------------------------------------------------- writing


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes the digest and the HMAC cover: every key but ``digest`` and ``hmac``,
    as JSON with sorted keys and no spaces, UTF-8."""
    body = {k: v for k, v in data.items() if k not in ("digest", "hmac")}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _plan_key() -> bytes | None:
    key = os.environ.get(KEY_ENV, "")
    return key.encode("utf-8") if key else None


def seal(data: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """``data`` with its ``digest`` (and ``hmac`` with ``key``) set; what ``save_plan`` writes."""
    out = {k: v for k, v in data.items() if k not in ("digest", "hmac")}
    body = canonical(out)
    out["digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    if key:
        out["hmac"] = "hmac-sha256:" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return out


def save_plan(plan: Plan, path: str | Path, ttl: timedelta | None = None) -> None:
    """Write ``plan`` sealed: with a digest, and an HMAC when ``RESEND_IAC_PLAN_KEY`` is set.
    A plan without a nonce and an expiry gets them first (``engine/binding.py``; ``ttl``: how
    long it may be applied, default ``$RESEND_IAC_PLAN_EXPIRES_IN`` or 3 days); its ``target``
    is the caller's to set."""
    times = {"nonce": plan.nonce, "created_at": plan.created_at, "expires_at": plan.expires_at}
    stamp(times, ttl)
    plan.nonce, plan.created_at, plan.expires_at = times["nonce"], times["created_at"], times["expires_at"]
    data = seal(plan.to_dict(), _plan_key())
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


# ----------------------------------------------------------------------------- reading


@lru_cache(maxsize=1)
def plan_schema() -> dict[str, Any]:
    """The plan file's JSON Schema, shipped as package data (``resend_iac/schemas``)."""
    text = resources.files("resend_iac").joinpath("schemas", PLAN_SCHEMA_FILE).read_text("utf-8")
    return with_fields(json.loads(text), plan=True)


@cache
def _validator(definition: str | None = None) -> jsonschema.protocols.Validator:
    root = plan_schema()
    target = root if definition is None else {**root["$defs"][definition], "$defs": root["$defs"]}
    return jsonschema.Draft202012Validator(target)


def _where(path: Any) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "the file"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:40] + "..."


def _schema_message(error: jsonschema.ValidationError, base: tuple[Any, ...] = ()) -> str:
    if error.validator in ("anyOf", "oneOf") and error.context:  # say what is wrong inside
        inner = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        best = jsonschema.exceptions.best_match(inner or error.context)
        if best is not None:
            return _schema_message(best, base)
    where = _where(base + tuple(error.absolute_path))
    if error.validator == "enum":
        options = ", ".join("null" if o is None else str(o) for o in error.validator_value)
        return f"{where}: {_short(error.instance)} is not one of {options}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {})) or "none"
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        return f"{where}: unknown key {_short(extra[0]) if extra else ''} (allowed: {allowed})"
    if error.validator == "type":
        want = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{where}: must be {' or '.join(want)}, not {_short(error.instance)}"
    if error.validator == "required":
        return f"{where}: {error.message.replace(repr(error.instance), 'it')[:120]}"
    if error.validator == "const":
        return f"{where}: must be {_short(error.validator_value)}, not {_short(error.instance)}"
    return f"{where}: {_short(error.instance)} does not fit the plan format ({error.validator})"


def _schema_errors(data: Any) -> list[str]:
    """Schema problems. Plain changes that certainly fit (``_plain_change_ok``) skip
    jsonschema, which costs ~0.3 ms a change (minutes for a million-contact plan)."""
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        return [_schema_message(e) for e in errors]
    rest = {**data, "changes": []}
    out = [_schema_message(e) for e in _validator().iter_errors(rest)]
    for i, change in enumerate(data["changes"]):
        if not _plain_change_ok(change):
            out.extend(_schema_message(e, ("changes", i)) for e in _validator("change").iter_errors(change))
            if len(out) > MAX_ERRORS:
                break
    return out


_ACTIONS = {
    "property": frozenset(("create", "update", "replace", "delete")),
    "segment": frozenset(("create", "update", "delete")),
    "topic": frozenset(("create", "update", "replace", "delete")),
    "contact": frozenset(("create", "update", "delete")),
    "membership": frozenset(("create", "delete")),
    "subscription": frozenset(("update",)),
}
_CHANGE_KEYS = frozenset(("action", "kind", "key", "before", "after", "parent", "id", "email"))
_CONTACT_KEYS = frozenset((*(f.name for f in CONTACT.api_fields), *(r.name for r in CONTACT.relations)))
_SUBS = frozenset(("opt_in", "opt_out"))


def _plain_change_ok(c: Any) -> bool:
    """A fast, conservative check: ``True`` only when the schema certainly accepts the
    change (the common contact and membership changes); anything else goes to jsonschema."""
    if type(c) is not dict or not c.keys() <= _CHANGE_KEYS:
        return False
    kind, action, key = c.get("kind"), c.get("action"), c.get("key")
    if kind not in ("contact", "membership") or type(action) is not str or action not in _ACTIONS[kind]:
        return False
    if type(key) is not str or not 0 < len(key) <= 320:
        return False
    for name in ("parent", "id", "email"):
        v = c.get(name)
        if v is not None and (type(v) is not str or (name != "parent" and len(v) > 320)):
            return False
    before, after = c.get("before"), c.get("after")
    if (before is None) != (action == "create") or (after is None) != (action == "delete"):
        return False
    if kind == "membership":
        parent = c.get("parent")
        return (
            type(parent) is str
            and bool(parent)
            and all(
                f is None
                or (
                    type(f) is dict and f.keys() == {"segment"} and type(f["segment"]) is str and f["segment"]
                )
                for f in (before, after)
            )
        )
    for f in (before, after):
        if f is None:
            continue
        if type(f) is not dict or not f.keys() <= _CONTACT_KEYS:
            return False
        email = f.get("email")
        if email is not None and (type(email) is not str or len(email) > 320):
            return False
        if "email" in f and email is None:
            return False
        for field in CONTACT.values:
            value = f.get(field.name)
            if value is not None and not field.type_ok(value):
                return False
        props = f.get("properties")
        if props is not None and (
            type(props) is not dict
            or any(v is not None and type(v) not in (str, int, float) for v in props.values())
        ):
            return False
        segs = f.get("segments")
        if segs is not None and (type(segs) is not list or any(type(s) is not str for s in segs)):
            return False
        topics = f.get("topics")
        if topics is not None and (
            type(topics) is not dict or any(type(v) is not str or v not in _SUBS for v in topics.values())
        ):
            return False
    return True


def _address_problem(email: Any, strict: bool) -> str | None:
    """``strict`` (what the files declared): validate's email rules. Otherwise (a live
    contact's address, e.g. one being deleted): it only has to look like one address."""
    if not isinstance(email, str):
        return "is not a string"
    if strict:
        if quick_email_ok(email):
            return None
        problem = email_problem(email)
        return problem and problem.replace(repr(email), _short(email))
    if email.count("@") != 1 or any(ch.isspace() or ord(ch) < 32 for ch in email) or len(email) > 320:
        return f"{_short(email)} is not an email address"
    return None


_key_problem = lru_cache(maxsize=4096)(property_key_problem)  # the same few keys on every contact


def _number_ok(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER
    return True


def _change_problems(i: int, c: dict[str, Any], types: dict[str, str] | None = None) -> list[str]:
    """validate's rules for one change that fits the schema; ``types``: the property types
    the plan itself sets (create/replace), which contact values must then have."""
    where = f"changes[{i}]"
    kind, action, key = c["kind"], c["action"], c["key"]
    out: list[str] = []
    fields = [f for f in (c.get("before"), c.get("after")) if isinstance(f, dict)]
    if kind in ("contact", "membership", "subscription"):
        strict = action == "create"
        problem = _address_problem(key, strict)
        if problem:
            out.append(f"{where}.key: {problem}")
        elif key != normalize_email(key):
            out.append(f"{where}.key: {_short(key)} is not a normalised address (trimmed, lower case)")
        for name, value in [("email", c.get("email"))] + [
            ("after.email", f.get("email")) for f in fields[-1:]
        ]:
            if value is None:
                continue
            problem = _address_problem(value, strict)
            if problem:
                out.append(f"{where}.{name}: {problem}")
            elif normalize_email(value) != key:
                out.append(
                    f"{where}.{name}: {_short(value)} is not the address of the change's key {_short(key)}"
                )
        if kind == "contact" and action == "create" and not c["after"].get("email"):
            out.append(f"{where}.after: a contact to create needs its email")
        after: dict[str, Any] = c["after"] if isinstance(c.get("after"), dict) else {}
        for prop, value in (after.get("properties") or {}).items():
            if isinstance(value, bool):
                out.append(
                    f"{where}.after: property {prop!r}: a value to write is a string, a number or null, not {value}"
                )
        for f in fields:
            for prop, value in (f.get("properties") or {}).items():
                problem = _key_problem(prop)
                typ = (types or {}).get(prop)
                if problem:
                    out.append(f"{where}: {problem}")
                elif typ and value_problem(prop, value, Property(key=prop, type=cast(PropertyType, typ))):
                    out.append(
                        f"{where}: {value_problem(prop, value, Property(key=prop, type=cast(PropertyType, typ)))} (as this plan declares it)"
                    )
                elif not _number_ok(value):
                    out.append(
                        f"{where}: property {prop!r}: {_short(value)} is beyond what Resend stores (a JSON double)"
                    )
        if kind == "membership":
            for f in fields:
                if f.get("segment") != c.get("parent"):
                    out.append(
                        f"{where}: segment {_short(f.get('segment'))} is not the change's parent {_short(c.get('parent'))}"
                    )
    elif kind == "property":
        problem = property_key_problem(key)
        if problem:
            out.append(f"{where}.key: {problem}")
        for f in fields:
            if "key" in f and f["key"] != key:
                out.append(f"{where}: key {_short(f['key'])} inside the change is not its key {_short(key)}")
            typ = f.get("type") or next((g.get("type") for g in fields if g.get("type")), None)
            if "fallback_value" in f and typ in ("string", "number"):
                value = f["fallback_value"]
                problem = value_problem(key, value, Property(key=key, type=typ))
                if problem or not _number_ok(value):
                    out.append(
                        f"{where}: fallback_value: {problem or 'beyond what Resend stores (a JSON double)'}"
                    )
        if action in ("create", "replace") and c["after"].get("type") not in ("string", "number"):
            out.append(f"{where}.after: a property to {action} needs its type, string or number")
        if len(key) > PROPERTY_KEY_MAX:  # pragma: no cover - property_key_problem says it
            out.append(f"{where}.key: longer than {PROPERTY_KEY_MAX}")
    elif kind in ("segment", "topic"):
        if key != key.strip():
            out.append(f"{where}.key: {_short(key)} starts or ends with white space")
        if kind == "segment" and action == "update" and set(c["after"]) != {"name"}:
            out.append(f"{where}.after: a segment update is a rename: it names the new name only")
        if kind == "topic" and len(key) > TOPIC_NAME_MAX:
            out.append(
                f"{where}.key: topic name is {len(key)} characters long; Resend allows at most {TOPIC_NAME_MAX}"
            )
        for f in fields:
            # An update's before may name the old name: a rename in place (renamed_from).
            renamed = (
                action in ("update", "replace") and f is c.get("before") and "name" in (c.get("after") or {})
            )
            if "name" in f and f["name"] != key and not renamed:
                out.append(
                    f"{where}: name {_short(f['name'])} inside the change is not its key {_short(key)}"
                )
            desc = f.get("description")
            if (
                isinstance(desc, str) and len(desc) > TOPIC_DESCRIPTION_MAX
            ):  # pragma: no cover - the schema says it
                out.append(f"{where}: description longer than {TOPIC_DESCRIPTION_MAX}")
    return out


def check_plan_data(data: Any, key: bytes | None = None) -> list[str]:
    """Every problem of a parsed plan file, in the order apply checks them (schema, digest
    and HMAC, then the changes); empty when the plan may be applied."""
    if isinstance(data, dict) and data.get("redacted") is True:
        return [
            "this is a redacted plan (plan --format json --redact): its emails are masks, it is for "
            f"reading only; {_NEW_PLAN}"
        ]
    if isinstance(data, dict) and "format_version" in data and data["format_version"] != FORMAT_VERSION:
        return [
            f"plan format_version {_short(data['format_version'])} is not supported "
            f"(this resend-iac reads {FORMAT_VERSION})"
        ]
    if isinstance(data, dict) and "changes" in data and "digest" not in data:
        return [
            "the plan has no digest: it was written by an older resend-iac or by hand, so apply cannot "
            f"tell whether it was changed since; {_NEW_PLAN}"
        ]
    problems = _schema_errors(data)
    if problems:
        return problems
    body = canonical(data)
    if not hmac.compare_digest(data["digest"], "sha256:" + hashlib.sha256(body).hexdigest()):
        return [
            "the plan's digest does not match its content: the file was edited or cut short since "
            f"`plan --out` wrote it. Nothing was applied; {_NEW_PLAN}"
        ]
    signature = data.get("hmac")
    if key is not None:
        if signature is None:
            return [
                f"{KEY_ENV} is set, but the plan carries no hmac: it was not made with the key. "
                f"Nothing was applied; make it again with {KEY_ENV} set"
            ]
        expected = "hmac-sha256:" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return [
                f"the plan's hmac does not verify with {KEY_ENV}: it was changed, or made with another key. "
                "Nothing was applied"
            ]
    elif signature is not None:
        return [
            f"the plan is signed (hmac), but {KEY_ENV} is not set here, so it cannot be verified; set it "
            "to the key used when the plan was made"
        ]
    out: list[str] = []
    seen: set[tuple[str, str, Any]] = set()
    types = {
        c["key"]: c["after"].get("type")
        for c in data["changes"]
        if c["kind"] == "property"
        and c["action"] in ("create", "replace")
        and isinstance(c.get("after"), dict)
    }
    for i, c in enumerate(data["changes"]):
        out.extend(_change_problems(i, c, types))
        ident = (c["kind"], c["key"], c.get("parent"))
        if ident in seen:
            out.append(
                f"changes[{i}]: a second change of {c['kind']} {_short(c['key'])}"
                + (f" in {_short(c.get('parent'))}" if c.get("parent") else "")
            )
        seen.add(ident)
        if len(out) > MAX_ERRORS:
            break
    if "summary" in data and not out:
        counts = Counter(f"{c['kind']}.{c['action']}" for c in data["changes"])
        if dict(counts) != data["summary"]:
            out.append("summary: the counts do not match the changes")
    return out


_CHANGE_RE = re.compile(r"^changes\[(\d+)\]")


def _change_lines(text: str, count: int) -> list[int] | None:
    """The line each change starts on, for a file laid out as ``save_plan`` writes it
    (``None`` for any other layout: the messages then give the JSON path alone)."""
    lines: list[int] = []
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if not inside:
            inside = line.startswith('  "changes": [')
        elif line in ("    {", "    {}", "    {},") or (
            line.startswith("    {") and line.endswith(("}", "},"))
        ):
            lines.append(n)
        elif line.startswith("  ]"):
            break
    return lines if len(lines) == count else None


def _at_line(path: str | Path, problem: str, lines: list[int] | None) -> str:
    match = _CHANGE_RE.match(problem)
    if lines is None or match is None or int(match.group(1)) >= len(lines):
        return f"{path}: {problem}"
    return f"{path}:{lines[int(match.group(1))]}: {problem}"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond what JSON numbers (doubles) hold")
    return value


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"the whole number {text[:40]} is beyond what JSON numbers (doubles) hold exactly")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a plan file (finite numbers only)")


def load_plan(path: str | Path) -> Plan:
    """The plan saved at ``path``, checked (see the module's docstring); ``PlanFileError``
    with every problem found otherwise. Makes no request."""
    try:
        limit = int(os.environ.get(SIZE_ENV) or MAX_PLAN_BYTES)
    except ValueError:
        raise PlanFileError(f"{SIZE_ENV} is not a whole number of bytes") from None
    try:
        raw = read_bounded(Path(path), limit, "the plan file", SIZE_ENV)
    except ReadProblem as e:
        raise PlanFileError(f"{path}: {e.message}") from None
    except OSError as e:
        raise PlanFileError(f"{path}: cannot read the plan file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PlanFileError(f"{path}:{line}: not a plan file (not UTF-8); {_NEW_PLAN}") from None
    try:
        data = json.loads(text, parse_float=_finite, parse_int=_safe_int, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise PlanFileError(
            f"{path}:{e.lineno}:{e.colno}: not a plan file (invalid JSON: {e.msg}); {_NEW_PLAN}"
        ) from None
    except (ValueError, RecursionError) as e:  # NaN, 1e400, an int of 5000 digits, deep nesting
        message = str(e) if isinstance(e, ValueError) else "nested too deep"
        raise PlanFileError(f"{path}: not a plan file ({message[:160]}); {_NEW_PLAN}") from None
    if not isinstance(data, dict) or "changes" not in data:
        raise PlanFileError(
            f"{path}: not a plan file (no 'changes'); write one with `resend-iac plan ... --out PLAN`"
        )
    problems = list(dict.fromkeys(check_plan_data(data, _plan_key())))
    seen_at: set[str] = set()  # one problem per place (an unknown action fails two enums)
    unique = []
    for p in problems:
        if p.split(": ")[0] not in seen_at:
            seen_at.add(p.split(": ")[0])
            unique.append(p)
    problems = unique
    if problems:
        shown = problems[:MAX_ERRORS]
        lines = _change_lines(text, len(data["changes"])) if isinstance(data.get("changes"), list) else None
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        head = "the plan file is refused; nothing was sent to the API" if len(problems) > 1 else ""
        if head:
            raise PlanFileError(
                f"{path}: {head}:\n" + "\n".join(f"  {_at_line(path, p, lines)}" for p in shown) + more
            )
        tail = "" if "Nothing was applied" in shown[0] else " (nothing was sent to the API)"
        raise PlanFileError(f"{_at_line(path, shown[0], lines)}{tail}")
    try:
        return Plan.from_dict(data)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as e:  # pragma: no cover - the checks above cover it
        raise PlanFileError(f"{path}: {str(e)[:200]}") from None
