"""The JSON Schemas (config file and plan file) and the field schema: one truth.

The schemas are files (``resend_iac/schemas/``, the only copy; ``schemas/`` at the root of
the repository is a link to it, for editors), written for people: descriptions, limits,
the structure of entries. The fields they list must be those the kinds declare
(``tests/test_schema.py`` checks each field's JSON types and choices both ways), and a field
declared in the kinds but not (yet) in a file is added when the file is loaded, with the
types the kind declares: the kinds are what the code runs on.
"""

from __future__ import annotations

import copy
from typing import Any

from resend_iac.model.schema import KINDS, Field, Kind

# Where each kind's fields are in each schema file.
CONFIG_DEFS = {"property": "property", "segment": "segment", "topic": "topic", "contact": "contact"}
PLAN_DEFS = {"property": "property", "segment": "segment", "topic": "topic", "contact": "contact"}


def json_types(f: Field, *, plan: bool = False) -> list[str]:
    """The JSON types a field's value may have in a file (``plan``: in a plan file's
    before/after, where a managed field may also be null: cleared, or never set live)."""
    names = []
    for t in f.types:
        name = {str: "string", bool: "boolean", int: "number", float: "number"}[t]
        if name not in names:
            names.append(name)
    if f.nullable or (plan and not f.key and not f.required and not f.choices):
        names.append("null")
    return names


def fragment(f: Field, *, plan: bool = False) -> dict[str, Any]:
    """The field as a JSON Schema fragment."""
    if f.choices:
        return {"enum": list(f.choices)}
    types = json_types(f, plan=plan)
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if f.max_length:
        out["maxLength"] = f.max_length
    return out


def declared(kind: Kind, *, plan: bool = False) -> tuple[Field, ...]:
    """The fields of ``kind`` a file lists: a config file every field but the key of a kind
    it keys by name (contacts are a list: each entry names its email); a plan file the API
    fields, key included."""
    out = []
    for f in kind.fields:
        if f.key and not plan and not kind.normalised_key:
            continue
        if plan and not f.api_field:
            continue
        out.append(f)
    return tuple(out)


def with_fields(schema: dict[str, Any], *, plan: bool = False) -> dict[str, Any]:
    """``schema`` with every declared field it lacks added (a copy; the file's own entries,
    descriptions included, are kept)."""
    defs_of = PLAN_DEFS if plan else CONFIG_DEFS
    missing = [
        (defs_of[name], f)
        for name, kind in KINDS.items()
        for f in declared(kind, plan=plan)
        if f.name not in schema["$defs"][defs_of[name]].get("properties", {})
    ]
    if not missing:
        return schema
    out = copy.deepcopy(schema)
    for where, f in missing:
        out["$defs"][where].setdefault("properties", {})[f.name] = fragment(f, plan=plan)
    return out
