"""State -> our YAML format (used by ``export``): deterministic (sorted), ``UNSET`` fields
left out, and loading the output gives back an equal ``State``. Live-only fields (ids,
created_at) are not part of the format and are not written."""

from __future__ import annotations

from typing import Any

import yaml

from resend_iac.model import UNSET, Policy, State

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


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not UNSET:
        target[key] = value


def to_data(state: State) -> dict[str, Any]:
    """The state as plain data in the file format."""
    data: dict[str, Any] = {"version": 1}
    if state.properties:
        props: dict[str, Any] = {}
        for key in sorted(state.properties):
            p = state.properties[key]
            spec: dict[str, Any] = {"type": p.type}
            _set(spec, "fallback_value", p.fallback_value)
            props[key] = spec
        data["properties"] = props
    if state.segments:
        segs: dict[str, Any] = {}
        for name in sorted(state.segments):
            s = state.segments[name]
            segs[name] = {"membership": s.membership} if s.membership != "authoritative" else {}
        data["segments"] = segs
    if state.topics:
        tops: dict[str, Any] = {}
        for name in sorted(state.topics):
            t = state.topics[name]
            spec = {"default_subscription": t.default_subscription}
            _set(spec, "description", t.description)
            _set(spec, "visibility", t.visibility)
            tops[name] = spec
        data["topics"] = tops
    if state.contacts:
        contacts = []
        for key in sorted(state.contacts):
            c = state.contacts[key]
            item: dict[str, Any] = {"email": c.email}
            _set(item, "first_name", c.first_name)
            _set(item, "last_name", c.last_name)
            _set(item, "unsubscribed", c.unsubscribed)
            if c.protect:
                item["protect"] = True
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


def dump_yaml(state: State) -> str:
    body = yaml.dump(
        to_data(state),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return _HEADER + body
