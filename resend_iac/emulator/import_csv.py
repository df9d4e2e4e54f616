"""Contact imports, the synchronous half: check an upload and make it a job (``prepare``),
and parse its rows (``parse_rows``). The column_map forms and row rules: imports.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from resend_iac.emulator import guard
from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import (
    CONTACT_FIELDS,
    IMPORT_PROPERTY_TYPES,
    PROPERTY_KEY_RE,
    APIError,
    invalid,
    missing,
    not_found,
    valid_email,
)

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


def _json_field(fields: dict, name: str, default: Any) -> Any:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        raise invalid(f"The `{name}` field must be a JSON string.")
    try:
        return guard.loads(raw)
    except APIError as err:
        if err.status != 400:  # a non-finite number: 422 as it is
            raise
        raise invalid(f"The `{name}` field is not valid JSON.") from None


def _resolve_columns(header: list[str], column_map: Any, props: dict[str, str]) -> dict:
    """``{"fields": {field: col_index}, "properties": {key: col_index},
    "new_properties": {key: type}}`` (properties the import creates)."""
    index = {name: i for i, name in enumerate(header)}
    lower = {name.strip().lower(): i for i, name in enumerate(header)}
    fields: dict[str, int] = {}
    properties: dict[str, int] = {}
    new_properties: dict[str, str] = {}

    def column(name: Any, where: str) -> int:
        if not isinstance(name, str) or name not in index:
            raise invalid(
                f"column_map: {where} names the column `{name}`, which the CSV "
                f"header does not have (columns: {', '.join(header)})."
            )
        return index[name]

    def prop(key: str, col: int, ptype: Any = None) -> None:
        if key not in props:  # created by the import
            if not PROPERTY_KEY_RE.match(key) or key in CONTACT_FIELDS:
                raise invalid(f"column_map: `{key}` is not a valid contact property key.")
            ptype = ptype or "string"
            if ptype not in IMPORT_PROPERTY_TYPES:
                raise invalid(
                    f"column_map: the type of `{key}` must be one of {', '.join(IMPORT_PROPERTY_TYPES)}."
                )
            new_properties[key] = ptype
        properties[key] = col

    if column_map in (None, {}):  # header names match case-sensitively (resend-cli docs)
        for name, i in index.items():
            if name in CONTACT_FIELDS:
                fields[name] = i
        for key in props:
            if key in index and key not in CONTACT_FIELDS:
                properties[key] = index[key]
    elif not isinstance(column_map, dict):
        raise invalid("The `column_map` field must be a JSON object.")
    else:
        for key, value in column_map.items():
            if key == "properties" and isinstance(value, dict):
                for pkey, spec in value.items():
                    col = spec.get("column") if isinstance(spec, dict) else spec
                    ptype = spec.get("type") if isinstance(spec, dict) else None
                    prop(pkey, column(col, f"properties.{pkey}"), ptype)
            elif isinstance(value, dict):  # {"plan": {"column": "Plan", "type": …}}
                prop(key, column(value.get("column"), key), value.get("type"))
            elif key in CONTACT_FIELDS:  # the OAS form {"email": "Email"} wins
                fields[key] = column(value, f"`{key}`")
            elif key in props and value in index:
                prop(key, index[value])
            elif key in index and isinstance(value, str) and value.lower() in CONTACT_FIELDS:
                fields[value.lower()] = index[key]
            elif key in index and isinstance(value, str):
                prop(value, index[key])
            else:
                column(value, f"`{key}`")
        if "email" not in fields and "email" in lower:
            fields["email"] = lower["email"]
    if "email" not in fields:
        raise invalid(
            "The CSV needs an email column: name a column `email` or map one with "
            '`column_map` (e.g. {"email": "Email"}).'
        )
    return {"fields": fields, "properties": properties, "new_properties": new_properties}


def prepare(store: StoreCore, data: bytes, form: dict[str, Any]) -> dict[str, Any]:
    """Validate an import request; returns the job to run (raises APIError)."""
    text, header = _read_header(data)
    on_conflict = form.get("on_conflict") or ("upsert" if store.hostile else "skip")
    if on_conflict not in ("upsert", "skip"):
        raise invalid("The `on_conflict` field must be `upsert` or `skip`.")
    column_map = _json_field(form, "column_map", None)
    seg_ids, top = _targets(form)
    with store.lock:
        c = store.conn
        props = {k: t for k, t in c.execute("SELECT key, type FROM properties")}
        for sid in seg_ids:
            if c.execute("SELECT 1 FROM segments WHERE id = ?", (sid,)).fetchone() is None:
                raise not_found("Segment")
        for tid, _ in top:
            if c.execute("SELECT 1 FROM topics WHERE id = ?", (tid,)).fetchone() is None:
                raise not_found("Topic")
    columns = _resolve_columns(header, column_map, props)
    return {"csv": text, "columns": columns, "on_conflict": on_conflict, "segments": seg_ids, "topics": top}


def _read_header(data: bytes) -> tuple[str, list[str]]:
    """(the CSV as text, its header's column names, trimmed)."""
    if not data or not data.strip():
        raise invalid("The CSV `file` is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("The CSV `file` must be UTF-8 text.") from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
    except csv.Error as exc:
        raise invalid(f"The CSV `file` could not be read: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise invalid("The CSV `file` has no header row.")
    return text, [h.strip() for h in header]


def _targets(form: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """(segment ids, [(topic id, subscription)]) the form's ``segments`` and ``topics`` give."""
    segments = _json_field(form, "segments", [])
    topics = _json_field(form, "topics", [])
    if not isinstance(segments, list) or not isinstance(topics, list):
        raise invalid("The `segments` and `topics` fields must be JSON arrays.")
    seg_ids = []
    for item in segments:
        sid = item.get("id") if isinstance(item, dict) else item
        if not isinstance(sid, str):
            raise invalid('Each item of `segments` must be {"id": …}.')
        seg_ids.append(sid)
    top = []
    for item in topics:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise missing("id")
        if item.get("subscription") not in ("opt_in", "opt_out"):
            raise invalid("The `subscription` must be `opt_in` or `opt_out`.")
        top.append((item["id"], item["subscription"]))
    return seg_ids, top


def _cell(row: list[str], i: int) -> str:
    return row[i].strip() if i < len(row) else ""


def _convert(ptype: str, raw: str) -> Any:
    if ptype == "string":
        return raw
    if ptype == "boolean":
        flag = raw.lower()
        if flag not in TRUE and flag not in FALSE:
            raise ValueError(raw)
        return flag in TRUE
    try:
        number = int(raw)
    except ValueError:
        value = float(raw)  # ValueError for non-numbers: the row fails
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(raw) from None
        return value
    if abs(number) > guard.DOUBLE_MAX:  # a double cannot hold it: JSON readers get Infinity
        raise ValueError(raw)
    return number


def parse_rows(
    job: dict[str, Any], props: dict[str, tuple[int, str]], counts: dict[str, int]
) -> Iterator[tuple[str, dict[str, Any], dict[int, Any]]]:
    """Valid rows as (email, field changes, {property_seq: value}), as they are parsed;
    bad rows counted."""
    fields = job["columns"]["fields"]
    prop_cols = [
        (props[k][0], props[k][1], col) for k, col in job["columns"]["properties"].items() if k in props
    ]
    email_col = fields["email"]
    simple = [(name, fields[name]) for name in ("first_name", "last_name") if name in fields]
    unsub_col = fields.get("unsubscribed")
    reader = csv.reader(io.StringIO(job["csv"], newline=""))
    next(reader, None)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        counts["total"] += 1
        email = _cell(row, email_col)
        if not valid_email(email):
            counts["failed"] += 1
            continue
        try:
            values = {}
            for pseq, ptype, col in prop_cols:
                raw = _cell(row, col)
                if raw != "":
                    values[pseq] = _convert(ptype, raw)
            changes: dict[str, Any] = {}
            for name, col in simple:
                raw = _cell(row, col)
                if raw != "":
                    changes[name] = raw
            if unsub_col is not None:
                flag = _cell(row, unsub_col).lower()
                if flag:
                    if flag not in TRUE and flag not in FALSE:
                        raise ValueError(flag)
                    changes["unsubscribed"] = int(flag in TRUE)
        except ValueError:
            counts["failed"] += 1
            continue
        yield email, changes, values
