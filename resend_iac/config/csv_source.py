"""CSV seed lists, like Resend's own CSV upload: a header row, one contact per row.

Columns map to ``email``, ``first_name``, ``last_name``, ``unsubscribed`` or a declared
property key (values converted to the property's type). Without a ``columns:`` mapping the
headers must be those names; with one, unmapped columns are ignored. Cells are trimmed; an
empty cell leaves that field unmanaged for that row. Rows are checked with plain code (no
jsonschema per row): this is the hot path for big lists.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resend_iac.config.checks import suggest
from resend_iac.config.limits import Limits, ReadProblem, read_bounded
from resend_iac.config.yaml_loader import MAX_SAFE_INTEGER
from resend_iac.model import UNSET, Contact, FrozenDict, Location, Property
from resend_iac.model.rules import CONTACT_FIELDS, email_problem, quick_email_ok
from resend_iac.model.schema import CONTACT, Field
from resend_iac.text import excerpt

# ("csv", line, message): a place in the CSV file (line 1 = header);
# ("columns", header, message): the YAML ``columns:`` entry for that header;
# ("entry", None, message): the YAML CSV entry as a whole.
Problem = tuple[str, Any, str]

_VALUE_CACHE = 4096  # distinct values kept per property column
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


@dataclass
class Shared:
    """What a CSV entry applies to every row (row cells win over these)."""

    segments: set[str] = field(default_factory=set)
    topics: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # contact fields by name (e.g. unsubscribed)
    protect: bool | None = None  # None: not said; False: forget a protect (#23)


def decode(data: bytes) -> tuple[str | None, int, str]:
    """``(text, 0, "")`` or ``(None, line, message)`` for bytes that are not UTF-8."""
    try:
        return data.decode("utf-8-sig"), 0, ""
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return None, 1, 'file is UTF-16 (e.g. Excel\'s "Unicode Text"); save it as UTF-8'
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        return None, line, f"file is not UTF-8 (byte 0x{byte:02x} on line {line}); save it as UTF-8"


def parse_number(text: str) -> int | float | None:
    """``"12"`` -> 12, ``"2.5"`` -> 2.5; ``None`` for anything else (incl. nan/inf)."""
    if "_" in text:
        return None  # Python would read 1_000; a CSV cell should not
    try:
        number = int(text)
    except ValueError:
        pass
    else:  # beyond what a JSON double holds exactly: refused, not rounded
        return number if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER else None
    try:
        value = float(text)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def read_csv(
    path: Path,
    display: str,
    columns: Mapping[str, str] | None,
    properties: Mapping[str, Property],
    shared: Shared,
    limits: Limits | None = None,
) -> tuple[list[Contact], list[Problem]]:
    """Read ``path`` into contacts (each with ``location`` = display:line), within ``limits``
    (file size, lines). Messages quote at most short excerpts of the file (``excerpt``)."""
    problems: list[Problem] = []
    limits = limits or Limits()
    try:
        data = read_bounded(
            path, limits.max_csv_bytes, f"CSV file {excerpt(display, 200)}", Limits.env_name("max_csv_bytes")
        )
    except ReadProblem as exc:
        return [], [("entry", None, exc.message)]
    except FileNotFoundError:
        return [], [
            (
                "entry",
                None,
                f"CSV file {excerpt(display, 200)} not found; `csv:` paths are relative to the YAML file",
            )
        ]
    except IsADirectoryError:
        return [], [("entry", None, f"CSV path {excerpt(display, 200)} is a directory, not a file")]
    except OSError as exc:
        return [], [("entry", None, f"cannot read CSV file {excerpt(display, 200)}: {exc.strerror or exc}")]
    text, line, message = decode(data)
    if text is None:
        return [], [("csv", line, message)]
    lines = max(text.count("\n"), text.count("\r"))  # \r alone ends a line too
    if lines > limits.max_csv_rows:
        return [], [
            (
                "csv",
                limits.max_csv_rows + 1,
                f"CSV file has {lines:,} lines, more than the limit of {limits.max_csv_rows:,}; split it into "
                f"several files, or raise the limit with {Limits.env_name('max_csv_rows')}",
            )
        ]

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [("csv", 1, f"CSV syntax error: {excerpt(exc, 120)[1:-1]}")]
    if not header or not any(h.strip() for h in header):
        return [], [
            (
                "csv",
                1,
                "CSV file is empty: it needs a header row (e.g. `email,first_name`) and one row per contact",
            )
        ]
    header = [h.strip() for h in header]
    if len(header) == 1 and ";" in header[0] and header[0] not in (columns or properties):
        return [], [
            (
                "csv",
                1,
                f"the header {excerpt(header[0])} is one column: the file looks semicolon-separated; save it comma-separated",
            )
        ]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name and name in seen:
            problems.append(
                (
                    "csv",
                    1,
                    f"column {excerpt(name)} appears twice in the header (columns {seen[name] + 1} and {i + 1}); rename one",
                )
            )
        seen.setdefault(name, i)

    targets = set(CONTACT_FIELDS) | set(properties)
    mapping: dict[int, str] = {}  # column index -> target
    mapped_by: dict[str, str] = {}  # target -> header
    if columns is None:
        for i, name in enumerate(header):
            if not name:
                continue
            if name not in targets:
                problems.append(
                    (
                        "csv",
                        1,
                        f"column {excerpt(name)} is not a contact field or declared property{suggest(name, targets)}; "
                        "map it with `columns:` in the YAML (unmapped columns are then ignored) or declare the property",
                    )
                )
                continue
            if seen.get(name) == i:
                mapping[i] = name
                mapped_by[name] = name
    else:
        for name, target in columns.items():
            if target not in targets:
                problems.append(
                    (
                        "columns",
                        name,
                        f"column {excerpt(name)} maps to {excerpt(target)}, which is not {', '.join(CONTACT_FIELDS)} "
                        f"or a declared property{suggest(target, targets)}",
                    )
                )
                continue
            if target in mapped_by:
                problems.append(
                    (
                        "columns",
                        name,
                        f"columns {excerpt(mapped_by[target])} and {excerpt(name)} both map to {excerpt(target)}; map each field once",
                    )
                )
                continue
            mapped_by[target] = name
            if name not in seen:
                problems.append(
                    (
                        "columns",
                        name,
                        f"column {excerpt(name)} is not in the header of {excerpt(display, 200, quote=False)}{suggest(name, [h for h in header if h])}; "
                        f"its columns are: {_columns(header)}",
                    )
                )
                continue
            mapping[seen[name]] = target
    if "email" not in mapped_by:
        problems.append(
            (
                "entry",
                None,
                f"no column of {excerpt(display, 200, quote=False)} maps to email; add it under columns: (e.g. `columns: {{Email: email}}`)",
            )
        )
    if problems:
        return [], problems

    # The hot loop: plain code, no per-row schema validation. Short rows are padded so
    # every mapped index exists; cells are trimmed; empty = unmanaged.
    email_i = next(i for i, t in mapping.items() if t == "email")
    # The contact's API fields in schema order (shared values, else UNSET) and the columns
    # that give them: (column index, position, field).
    value_fields = CONTACT.values
    defaults = [shared.fields.get(f.name, UNSET) for f in value_fields]
    field_cols = [(i, n, f) for n, f in enumerate(value_fields) for i, t in mapping.items() if t == f.name]
    # Per property column, a bounded cache: cell text -> the value object every row with
    # that text shares (lists repeat their plan/company/country values: one string or
    # number each instead of one per row, and a number is parsed once).
    prop_cols: list[tuple[int, str, bool, str, dict[str, Any]]] = [
        (i, t, properties[t].type == "number", header[i], {}) for i, t in mapping.items() if t in properties
    ]
    width = len(header)
    pad = [""] * width
    contacts: list[Contact] = []
    append = contacts.append
    shared_props = shared.properties
    # One immutable set and map for every row of the entry (216 and 184 bytes a row each).
    shared_segments, shared_topics = frozenset(shared.segments), FrozenDict(shared.topics)
    protect = shared.protect
    quick = quick_email_ok
    end = 1
    most = limits.max_errors
    try:
        for row in reader:
            if len(problems) >= most:  # the rest of the file is not looked at
                problems.append(("csv", end + 1, f"stopped after {most:,} errors in this file"))
                break
            line, end = end + 1, reader.line_num
            n = len(row)
            if n != width:
                if n == 0 or (n == 1 and not row[0].strip()):
                    continue  # a blank line
                if n > width:
                    if any(c.strip() for c in row[width:]):
                        problems.append(
                            (
                                "csv",
                                line,
                                f"row has {n} fields but the header has {width}; quote values that contain commas",
                            )
                        )
                        continue
                else:
                    row = row + pad[n:]
            email = row[email_i].strip()
            if not quick(email):
                problem = email_problem(email) if email else "row has no email: fill it in or delete the row"
                if problem:
                    problems.append(("csv", line, problem))
                    continue
            values = defaults.copy()
            bad = False
            for i, n, f in field_cols:
                value = row[i].strip()
                if not value:
                    continue  # an empty cell: unmanaged for this row (or the entry's value)
                parsed, problem = _cell(f, value)
                if problem:
                    problems.append(("csv", line, f"{problem} in column {excerpt(header[i])}{_must(f)}"))
                    bad = True
                    break
                values[n] = parsed
            if bad:
                continue
            props = dict(shared_props)
            bad = False
            for i, key, numeric, col, known in prop_cols:
                value = row[i].strip()
                if not value:
                    continue
                cached = known.get(value)
                if cached is not None:
                    props[key] = cached
                    continue
                if numeric:
                    number = parse_number(value)
                    if number is None:
                        problems.append(
                            (
                                "csv",
                                line,
                                f"value {excerpt(value)} in column {excerpt(col)} is not a number{_number_hint(value)} (property {excerpt(key)} is a number)",
                            )
                        )
                        bad = True
                        continue
                    props[key] = number
                else:
                    props[key] = value
                    number = value  # type: ignore[assignment]  # the cell's value, text here
                if len(known) < _VALUE_CACHE:
                    known[value] = number
            if bad:
                continue
            append(
                Contact(
                    email,
                    *values,
                    props,
                    shared_segments,
                    shared_topics,
                    protect,
                    None,
                    None,
                    Location(display, line),
                )
            )
    except csv.Error as exc:
        problems.append(("csv", reader.line_num, f"CSV syntax error: {excerpt(exc, 120)[1:-1]}"))
    return contacts, problems


def _cell(f: Field, value: str) -> tuple[Any, str]:
    """A non-empty, trimmed cell -> (the field's value, "") or (None, what is wrong)."""
    if bool in f.types:
        low = value.lower()
        if low in _TRUE:
            return True, ""
        if low in _FALSE:
            return False, ""
        return None, f"{f.name} value {excerpt(value)}"
    if str in f.types:
        return value, ""
    number = parse_number(value)  # pragma: no cover - no number field yet
    return (number, "") if number is not None else (None, f"{f.name} value {excerpt(value)}")


def _must(f: Field) -> str:
    return " must be true/false, 1/0 or yes/no" if bool in f.types else " must be a number"


def _columns(header: list[str], most: int = 5) -> str:
    """A bounded list of a header's column names (a file's content is never echoed in full)."""
    shown = ", ".join(excerpt(h) for h in header[:most])
    return shown + (f", ... ({len(header)} columns)" if len(header) > most else "")


def _number_hint(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return ""
    if number != number or number in (float("inf"), float("-inf")):
        return " that Resend can store (finite, at most about 1.8e308: a JSON double)"
    return " that Resend can store exactly (whole numbers up to 9007199254740991: a JSON double)"
