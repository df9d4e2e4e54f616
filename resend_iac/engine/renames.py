"""Renames in place: ``renamed_from: OLD`` on a declared segment or topic.

A rename is planned when the new name is not live and OLD is: one ``update`` change keyed by
the new name, ``before {"name": OLD}``, ``after {"name": NEW}`` and the live object's id.
Apply sends ``PATCH /segments/{id}`` or ``PATCH /topics/{id}`` with the new name, so the id,
the segment's members and every contact's subscriptions to the topic stay as they are
(a delete and re-create would lose them all, and broadcasts point at the old id).

The rest of the diff works on a *view* of the live state in which the renamed objects (and
every contact's memberships and subscriptions to them) already carry their new names: what
the files declare under the new name is compared with what the object holds live. The view
shares everything it does not rename with the live state (a contact is copied only when a
rename touches it).

Not renamed, and said so in the plan's warnings: both OLD and the new name live (the files
name two live objects; the one named OLD is left to the prune policy). Once renamed, OLD is
no longer live and ``renamed_from`` has nothing left to do (it may stay in the files).
Properties have no rename: the API cannot change a key (config/checks.py refuses it).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from resend_iac.engine.plan import Change
from resend_iac.model import State


def _pending(declared: dict[str, Any], live: dict[str, Any], kind: str, notes: list[str]) -> dict[str, str]:
    """old name -> new name for the renames to plan."""
    out: dict[str, str] = {}
    for name, obj in declared.items():
        old = getattr(obj, "renamed_from", None)
        if not old or old == name or old not in live:
            continue
        if name in live:
            notes.append(
                f"{kind} {name!r} is declared renamed_from {old!r}, but both are live: not renamed. "
                f"The live {kind} {old!r} is left to the prune policy; remove renamed_from once "
                "the old one is gone."
            )
            continue
        out[old] = name
    return out


def renamed_view(desired: State, live: State) -> tuple[State, dict[tuple[str, str], Change], list[str]]:
    """(the live state with pending renames applied, the rename changes by (kind, new name),
    warnings). Without renames, ``live`` itself is returned."""
    notes: list[str] = []
    segs = _pending(desired.segments, live.segments, "segment", notes)
    tops = _pending(desired.topics, live.topics, "topic", notes)
    if not segs and not tops:
        return live, {}, notes
    changes: dict[tuple[str, str], Change] = {}
    segments = dict(live.segments)
    for old, new in segs.items():
        segment = segments.pop(old)
        segments[new] = replace(segment, name=new)
        changes[("segment", new)] = Change(
            "update", "segment", new, {"name": old}, {"name": new}, id=segment.id
        )
    topics = dict(live.topics)
    for old, new in tops.items():
        topic = topics.pop(old)
        topics[new] = replace(topic, name=new)
        changes[("topic", new)] = Change("update", "topic", new, {"name": old}, {"name": new}, id=topic.id)
    contacts = live.contacts
    if any(
        segs.keys() & c.segments or (isinstance(c.topics, dict) and tops.keys() & c.topics)
        for c in contacts.values()
    ):
        contacts = {}
        for key, c in live.contacts.items():
            moved_s = segs.keys() & c.segments
            moved_t = tops.keys() & c.topics if isinstance(c.topics, dict) else ()
            if moved_s or moved_t:
                c = copy.copy(c)  # the live contact stays as read (the fingerprints cover it)
                c.segments = {segs.get(n, n) for n in c.segments}
                if moved_t:
                    c.topics = {tops.get(n, n): v for n, v in c.topics.items()}
            contacts[key] = c
    view = State(
        properties=live.properties,
        segments=segments,
        topics=topics,
        contacts=contacts,
        policy=live.policy,
        email_collisions=live.email_collisions,
    )
    return view, changes, notes


def merge_renames(changes: list[Change], renames: dict[tuple[str, str], Change]) -> list[Change]:
    """The diff's changes with the renames in: a field update of a renamed topic joins its
    rename (one PATCH); a replaced one (default_subscription changed: delete and create)
    needs no rename, and its ``before`` names the old name."""
    if not renames:
        return changes
    out: list[Change] = []
    merged: set[tuple[str, str]] = set()
    for c in changes:
        rename = renames.get((c.kind, c.key))
        if rename is not None and c.action == "update":
            rename.before = {**(rename.before or {}), **(c.before or {})}
            rename.after = {**(rename.after or {}), **(c.after or {})}
            continue
        if rename is not None and c.action == "replace":
            c.before = {**(c.before or {}), "name": (rename.before or {}).get("name")}
            merged.add((c.kind, c.key))
        out.append(c)
    out.extend(r for k, r in renames.items() if k not in merged)
    return out
