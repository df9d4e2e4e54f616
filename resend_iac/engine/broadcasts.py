"""Which Resend broadcasts a plan affects, and whether that stops it (docs/plan-apply.md).

A broadcast goes to one segment (``segment_id``), may be scoped to a topic (``topic_id``) and
prints contact properties as ``{{{key|fallback}}}``. ``check_broadcasts(client, plan, live,
policy)`` reads the broadcasts only when the plan could affect one, and sets
``plan.broadcasts`` to one finding per (broadcast, change):

- a segment or topic that a pending broadcast (draft, scheduled, queued, sending) targets is
  deleted or replaced -> ``refuse`` (the safety check refuses the plan without ``--force``);
- a property that a pending broadcast's HTML, text, subject or preview text prints is deleted,
  replaced, or gets another fallback -> ``warn``; deleted while the broadcast is scheduled (or
  already going out) -> ``refuse``;
- members join or leave a segment a broadcast is scheduled to within
  ``policy.broadcast_window_hours`` (or is going out to now) -> ``warn`` with the counts.
  Unsubscribes and topic opt-outs are never reported (they are the recipient's choice).

Requests: none when the plan deletes, replaces or changes no segment, topic or property and
changes no membership; else the list pages of ``GET /broadcasts``, plus one
``GET /broadcasts/{id}`` per pending broadcast when the plan touches a property (its HTML)
or when a list item leaves out ``topic_id``. Sent and canceled broadcasts are read in the
list and never reported. A finding holds the broadcast's name, status and schedule, never
its HTML.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from resend_iac.engine.plan import Plan

PENDING = ("draft", "scheduled", "queued", "sending")  # may still go out
GOING_OUT = ("scheduled", "queued", "sending")  # will go out without anyone pressing send
DEFAULT_WINDOW_HOURS = 24.0
# {{{key}}}, {{{key|fallback}}}, {{{ key | fallback }}}, {{{contact.key}}}: property keys are
# letters, digits and underscores (case-sensitive, at most 50).
PLACEHOLDER_RE = re.compile(r"\{\{\{\s*(?:contact\.)?([A-Za-z0-9_]{1,50})\s*(?:\|([^{}]{0,200}))?\}\}\}")
BUILTINS = ("FIRST_NAME", "LAST_NAME", "EMAIL", "UNSUBSCRIBE_URL", "RESEND_UNSUBSCRIBE_URL")
TEMPLATE_FIELDS = ("html", "text", "subject", "preview_text")
NAME_MAX = 120


@dataclass
class Touches:
    """What of a plan a broadcast can be affected by (ids and names from the live state)."""

    segments: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, action)
    topics: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, action)
    properties: dict[str, tuple[str, Any, Any]] = field(default_factory=dict)  # key -> (action, fb, fb)
    members: dict[str, list[int]] = field(default_factory=dict)  # segment name -> [added, removed]

    def __bool__(self) -> bool:
        return bool(self.segments or self.topics or self.properties or any(map(any, self.members.values())))


def touches(plan: Plan, live: Any) -> Touches:
    """What the plan's changes could do to a broadcast."""
    t = Touches()
    for c in plan.changes:
        if c.kind == "segment" and c.action in ("delete", "replace") and c.id:
            t.segments[c.id] = (c.key, c.action)
        elif c.kind == "topic" and c.action in ("delete", "replace") and c.id:
            t.topics[c.id] = (c.key, c.action)
        elif c.kind == "property" and c.id and c.action in ("delete", "replace", "update"):
            before, after = c.before or {}, c.after or {}
            if c.action != "update" or before.get("fallback_value") != after.get("fallback_value"):
                t.properties[c.key] = (c.action, before.get("fallback_value"), after.get("fallback_value"))
        elif c.kind == "membership" and c.parent:
            t.members.setdefault(c.parent, [0, 0])[0 if c.action == "create" else 1] += 1
        elif c.kind == "contact" and c.action == "create":
            for name in (c.after or {}).get("segments") or ():
                t.members.setdefault(name, [0, 0])[0] += 1
        elif c.kind == "contact" and c.action == "delete":
            have = live.contacts.get(c.key) if live is not None else None
            for name in getattr(have, "segments", ()) or ():
                t.members.setdefault(name, [0, 0])[1] += 1
    # no broadcast can go to a segment the plan deletes (refused anyway) or creates (not live)
    skip = {name for name, _ in t.segments.values()}
    skip |= {c.key for c in plan.changes if c.kind == "segment" and c.action == "create"}
    t.members = {n: v for n, v in t.members.items() if n not in skip and any(v)}
    return t


def placeholders(broadcast: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, the placeholder as written) of every ``{{{…}}}`` in the broadcast's template
    fields, in order, each distinct placeholder once (built-in ones included)."""
    seen: dict[str, tuple[str, str]] = {}
    for name in TEMPLATE_FIELDS:
        value = broadcast.get(name)
        if isinstance(value, str):
            for m in PLACEHOLDER_RE.finditer(value):
                seen.setdefault(m.group(0), (m.group(1), one_line(m.group(0))))
    return list(seen.values())


def parse_time(value: Any) -> float | None:
    """A timestamp of the API (``2026-12-03 09:00:00.123+00`` or ISO 8601) -> epoch seconds."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d\d$", text):
        text += ":00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def show_time(t: float | None) -> str:
    return "an unknown time" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def one_line(value: Any) -> str:
    """Text of the API as one line: control and invisible characters dropped, white space
    collapsed, at most NAME_MAX characters."""
    text = value if isinstance(value, str) else ""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= NAME_MAX else text[: NAME_MAX - 1] + "…"


def clean_name(value: Any) -> str:
    """A broadcast's name as a one-line label (``(unnamed)`` when it has none)."""
    return one_line(value) or "(unnamed)"


def _when(b: dict[str, Any]) -> str:
    status = b.get("status")
    if status == "scheduled":
        return f"scheduled for {show_time(parse_time(b.get('scheduled_at')))}"
    if status in ("queued", "sending"):
        return f"{status}: going out now"
    return str(status)


def _finding(
    level: str, rule: str, b: dict[str, Any], change: tuple[str, str, str], message: str, **extra: Any
) -> dict[str, Any]:
    kind, key, action = change
    return {
        "level": level,
        "rule": rule,
        "broadcast": {
            "id": b.get("id"),
            "name": clean_name(b.get("name")),
            "status": b.get("status"),
            "scheduled_at": b.get("scheduled_at"),
        },
        "change": {"kind": kind, "key": key, "action": action},
        "message": message,
        **extra,
    }


def _going_out_within(b: dict[str, Any], now: float, hours: float) -> tuple[bool, float | None]:
    """(will it go out within ``hours`` of ``now``, when). Queued and sending ones go out now;
    a scheduled one whose time cannot be read is taken as soon (the harmful reading)."""
    status = b.get("status")
    if status in ("queued", "sending"):
        return True, None
    if status != "scheduled":
        return False, None
    at = parse_time(b.get("scheduled_at"))
    return (at is None or at <= now + hours * 3600), at


def findings(
    broadcasts: list[dict[str, Any]], t: Touches, live: Any, *, now: float, hours: float
) -> list[dict[str, Any]]:
    """The findings of ``broadcasts`` (list items, pending ones with their details) for ``t``."""
    out: list[dict[str, Any]] = []
    members_of: dict[str, int] | None = None
    seg_names = {s.id: n for n, s in live.segments.items() if s.id} if live is not None else {}
    for b in broadcasts:
        status = b.get("status")
        if status not in PENDING:
            continue
        name = clean_name(b.get("name"))
        label = f"broadcast '{name}' ({_when(b)})"
        sid = b.get("segment_id") or b.get("audience_id")
        if sid in t.segments:
            seg, action = t.segments[sid]
            out.append(
                _finding(
                    "refuse",
                    "segment",
                    b,
                    ("segment", seg, action),
                    f"{label} goes to segment `{seg}`, which the plan {action}s",
                )
            )
        tid = b.get("topic_id")
        if tid in t.topics:
            topic, action = t.topics[tid]
            out.append(
                _finding(
                    "refuse",
                    "topic",
                    b,
                    ("topic", topic, action),
                    f"{label} is scoped to topic `{topic}`, which the plan {action}s",
                )
            )
        if t.properties:
            for key, written in placeholders(b):
                if key in BUILTINS or key not in t.properties:
                    continue
                action, before, after = t.properties[key]
                refuse = action == "delete" and status in GOING_OUT
                what = (
                    f"changes the fallback of property `{key}` from {before!r} to {after!r}"
                    if action == "update"
                    else f"{action}s property `{key}`"
                )
                out.append(
                    _finding(
                        "refuse" if refuse else "warn",
                        "property",
                        b,
                        ("property", key, action),
                        f"{label} prints {written}; the plan {what}",
                        placeholder=written,
                    )
                )
        seg_name = seg_names.get(sid)
        if seg_name in t.members:
            soon, at = _going_out_within(b, now, hours)
            if soon:
                if members_of is None:
                    members_of = _member_counts(live)
                added, removed = t.members[seg_name]
                total = members_of.get(seg_name, 0)
                parts = ([f"adds {added:,}"] if added else []) + ([f"removes {removed:,}"] if removed else [])
                when = (
                    f"is scheduled to at {show_time(at)}" if status == "scheduled" else "is going out to now"
                )
                out.append(
                    _finding(
                        "warn",
                        "members",
                        b,
                        ("segment", seg_name, "members"),
                        f"{' and '.join(parts)} of {total:,} members of `{seg_name}`, which '{name}' {when}",
                        added=added,
                        removed=removed,
                        members=total,
                    )
                )
    return out


def _member_counts(live: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in live.contacts.values():
        for name in c.segments:
            counts[name] = counts.get(name, 0) + 1
    return counts


async def read_broadcasts(client: Any, t: Touches) -> list[dict[str, Any]]:
    """The list items of every broadcast; pending ones replaced by their full object when the
    plan touches a property (for the HTML) or the item does not say its topic."""
    items = [item async for item in client.paginate("/broadcasts")]

    def needs_details(b: dict[str, Any]) -> bool:
        return b.get("status") in PENDING and bool(t.properties or (t.topics and "topic_id" not in b))

    async def details(b: dict[str, Any]) -> dict[str, Any]:
        if not needs_details(b) or not isinstance(b.get("id"), str):
            return b
        full = await client.request("GET", f"/broadcasts/{b['id']}")
        return {**b, **full} if isinstance(full, dict) else b

    return list(await asyncio.gather(*(details(b) for b in items)))


async def check_broadcasts(
    client: Any, plan: Plan, live: Any, policy: Any = None, *, now: float | None = None
) -> None:
    """Set ``plan.broadcasts`` (read only when the plan could affect a broadcast)."""
    t = touches(plan, live)
    if not t:
        plan.broadcasts = []
        return
    hours = getattr(policy, "broadcast_window_hours", None)
    if hours is None:
        hours = (plan.policy or {}).get("broadcast_window_hours", DEFAULT_WINDOW_HOURS)
    broadcasts = await read_broadcasts(client, t)
    plan.broadcasts = findings(
        broadcasts, t, live, now=time.time() if now is None else now, hours=float(hours)
    )


def refusals(plan: Plan) -> list[str]:
    """The safety check's reasons from the plan's broadcast findings."""
    return [f["message"] for f in getattr(plan, "broadcasts", None) or () if f.get("level") == "refuse"]
