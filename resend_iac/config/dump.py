"""State -> our YAML format (used by ``export``): deterministic (sorted), ``UNSET`` fields
left out, and loading the output gives back an equal ``State``. Live-only fields (ids,
created_at) are not part of the format and are not written."""

from __future__ import annotations

from typing import Any

import yaml

from resend_iac.model import UNSET, Policy, State
from resend_iac.model.schema import CONTACT, PROPERTY, SEGMENT, TOPIC, Kind

_HEADER = "# Exported by resend-iac (format: docs/format.md)\n"


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases (a shared value must not turn into &id001 / *id001)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """A string with any character that is not printable (a newline, U+0085 NEL, U+2028/2029,
    a control or format character) is written double-quoted, where YAML escapes them (\\n,
    \\N, \\L, \\P...): a plain or single-quoted scalar would fold some of them into a space
    and reading the export back would not give the string (issue 18)."""
    style = '"' if not data.isprintable() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _string)


def _spec(kind: Kind, obj: Any) -> dict[str, Any]:
    """An object's fields as the file writes them (the key aside): API fields when managed
    (not UNSET), desired-only settings when not their default."""
    spec: dict[str, Any] = {}
    for f in kind.fields:
        if f.key:
            continue
        value = getattr(obj, f.name)
        if value is UNSET or (not f.api_field and value == f.default):
            continue
        spec[f.name] = value
    return spec


def to_data(state: State) -> dict[str, Any]:
    """The state as plain data in the file format."""
    data: dict[str, Any] = {"version": 1}
    for kind in (PROPERTY, SEGMENT, TOPIC):
        objects = getattr(state, kind.plural)
        if objects:
            data[kind.plural] = {key: _spec(kind, objects[key]) for key in sorted(objects)}
    if state.contacts:
        contacts = []
        for key in sorted(state.contacts):
            c = state.contacts[key]
            item: dict[str, Any] = {CONTACT.key.name: c.email, **_spec(CONTACT, c)}
            if c.properties is not UNSET and c.properties:
                item["properties"] = {k: c.properties[k] for k in sorted(c.properties)}
            if c.segments:
                item["segments"] = sorted(c.segments)
            if c.topics is not UNSET and c.topics:
                item["topics"] = {k: c.topics[k] for k in sorted(c.topics)}
            contacts.append(item)
        data["contacts"] = contacts
    default = Policy()
    policy = {
        k: getattr(state.policy, k)
        for k in default.__dataclass_fields__
        if getattr(state.policy, k) != getattr(default, k)
    }
    if policy:
        data["policy"] = policy
    return data


def dump_yaml(state: State, notes: list[str] | tuple[str, ...] = ()) -> str:
    """``notes``: lines for the header (``export``: what it left out, see config/export.py)."""
    body = yaml.dump(
        to_data(state),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return _HEADER + "".join(f"# {n}\n" for n in notes) + body
