"""The benchmark scenario: N contacts, S segments, P properties, T topics, deterministic.

Contacts fall into cohorts (``contact i`` is in cohort ``i % C``, ``C = 2*S``, at least 2).
A cohort fixes the segments and topic subscriptions of its contacts, so the scenario is
written the way a user would write it: one YAML file that declares the properties, segments
and topics and lists one CSV seed file per cohort (columns: email, names, unsubscribed and
one column per property).

- properties: alternately string and number (``company`` string, ``score`` number, ...).
- segments: cohort ``c`` is in segment ``c % S``; the second half of the cohorts is also in
  segment ``(c + 1) % S``: 1.5 memberships per contact on average.
- topics: every contact declares every topic; cohort ``c`` opts out of topic ``t`` when
  ``(c + t) % 3 == 0``, else opts in.
- every contact carries every property value, a first and last name and ``unsubscribed``.

That is the fullest declared state (every contact manages property values and topic
subscriptions), so both strategies have the most to read. ``live_state`` builds the State the
live reader would return for the same team (ids, created_at, values and subscriptions read),
for the diff-only measurement.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from resend_iac.model import Contact, FrozenDict, Property, Segment, State, Topic

PROPERTY_NAMES = ("company", "score", "plan", "seats", "city", "age", "country", "visits")


def property_keys(p: int) -> list[tuple[str, str]]:
    """[(key, type)] for P properties: alternately string and number."""
    out = []
    for j in range(p):
        key = PROPERTY_NAMES[j] if j < len(PROPERTY_NAMES) else f"prop_{j}"
        out.append((key, "string" if j % 2 == 0 else "number"))
    return out


def segment_names(s: int) -> list[str]:
    return [f"segment-{j}" for j in range(s)]


def topic_names(t: int) -> list[str]:
    return [f"topic-{j}" for j in range(t)]


def cohort_count(s: int) -> int:
    return max(2, 2 * s)


def cohort_segments(c: int, s: int) -> list[str]:
    if s == 0:
        return []
    names = segment_names(s)
    out = [names[c % s]]
    if c >= cohort_count(s) // 2 and s > 1:
        out.append(names[(c + 1) % s])
    return sorted(out)


def cohort_topics(c: int, t: int) -> dict[str, str]:
    return {name: ("opt_out" if (c + j) % 3 == 0 else "opt_in") for j, name in enumerate(topic_names(t))}


def email(i: int) -> str:
    return f"user{i:07d}@example.com"


def contact_fields(i: int, keys: list[tuple[str, str]]) -> dict:
    """The declared fields of contact i (what its CSV row says); ``keys`` = property_keys(P)."""
    return {
        "email": f"user{i:07d}@example.com",
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "unsubscribed": i % 50 == 0,
        "properties": {
            key: (f"v{(i * 7 + j) % 50}" if ptype == "string" else (i * 13 + j) % 1000)
            for j, (key, ptype) in enumerate(keys)
        },
    }


def desired_state(n: int, s: int, p: int, t: int) -> State:
    """The desired State for the scenario, built directly (what config.load gives back)."""
    return _state(n, s, p, t, live=False)


def live_state(n: int, s: int, p: int, t: int, *, drift_every: int = 100) -> State:
    """The live State read_live would return for a team that holds the scenario, with
    every ``drift_every``-th contact drifted (see ``drift_kind``): ids and created_at
    filled, property values and topic subscriptions read."""
    state = _state(n, s, p, t, live=True)
    keys = property_keys(p)
    tops = topic_names(t)
    contacts = list(state.contacts.values())
    for i in range(drift_every // 2, n, drift_every):
        contact = contacts[i]
        kind = drift_kind(i // drift_every, s, p, t)
        if kind == "first_name":
            contact.first_name = "Drifted"
        elif kind == "property":
            contact.properties[keys[0][0]] = "drifted"
        elif kind == "segment":
            contact.segments.discard(sorted(contact.segments)[0])
        elif kind == "topic":
            top = tops[0]
            contact.topics[top] = "opt_in" if contact.topics[top] == "opt_out" else "opt_out"
    return state


def _state(n: int, s: int, p: int, t: int, *, live: bool) -> State:
    created = "2026-01-01 00:00:00.000000+00" if live else None
    state = State()
    for j, (key, ptype) in enumerate(property_keys(p)):
        state.properties[key] = Property(key=key, type=ptype)
        if live:
            state.properties[key] = Property(
                key=key, type=ptype, fallback_value=None, id=f"prop-{j:04d}", created_at=created
            )
    for j, name in enumerate(segment_names(s)):
        state.segments[name] = Segment(name=name, id=f"seg-{j:04d}" if live else None, created_at=created)
    for j, name in enumerate(topic_names(t)):
        top = Topic(name=name, default_subscription="opt_in" if j % 2 == 0 else "opt_out")
        if live:
            top.id, top.created_at, top.description, top.visibility = (
                f"topic-{j:04d}",
                created,
                None,
                "private",
            )
        state.topics[name] = top
    cohorts = cohort_count(s)
    # As config.load builds them: the rows of one CSV entry (a cohort) share one frozenset
    # of segments, one FrozenDict of topics and one object per distinct property value
    # (csv_source's value cache).
    # As read_live builds them: a set of segments and fresh values per contact.
    seg_by_cohort = [frozenset(cohort_segments(c, s)) for c in range(cohorts)]
    top_by_cohort = [cohort_topics(c, t) for c in range(cohorts)]
    shared_topics = [FrozenDict(top) for top in top_by_cohort]
    keys = property_keys(p)
    contacts = state.contacts
    values: dict = {}
    for i in range(n):
        f = contact_fields(i, keys)
        c = i % cohorts
        props = f["properties"]
        if not live:
            for k, v in props.items():
                props[k] = values.setdefault((k, v), v)
        # The generated emails are already normalised: the key is the email.
        contacts[f["email"]] = Contact(
            email=f["email"],
            first_name=f["first_name"],
            last_name=f["last_name"],
            unsubscribed=f["unsubscribed"],
            properties=props,
            segments=set(seg_by_cohort[c]) if live else seg_by_cohort[c],
            topics=dict(top_by_cohort[c]) if live else shared_topics[c],
            id=f"00000000-0000-4000-8000-{i:012d}" if live else None,
            created_at=created,
        )
    return state


DRIFT_KINDS = ("first_name", "property", "segment", "topic")


def drift_kind(k: int, s: int, p: int, t: int) -> str:
    """What the k-th drifted contact gets changed live (rotating; falls back to first_name
    where the scenario has no property/segment/topic)."""
    kind = DRIFT_KINDS[k % len(DRIFT_KINDS)]
    if (kind == "property" and p == 0) or (kind == "segment" and s == 0) or (kind == "topic" and t == 0):
        return "first_name"
    if kind == "property" and property_keys(p)[0][1] != "string":
        return "first_name"
    return kind


def drift_targets(n: int, fraction: float = 0.01) -> list[int]:
    """Indexes of the contacts changed live in the drift phase: 1% (at least one)."""
    every = max(1, round(1 / fraction))
    targets = list(range(every // 2, n, every))
    return targets or [0]


def write_config(state: State, n: int, s: int, p: int, t: int, directory: Path) -> Path:
    """Write the scenario as our YAML + CSV format; returns the YAML file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    cohorts = cohort_count(s)
    keys = property_keys(p)
    header = ["email", "first_name", "last_name", "unsubscribed"] + [k for k, _ in keys]
    buffers = [io.StringIO() for _ in range(cohorts)]
    writers = [csv.writer(b, lineterminator="\n") for b in buffers]
    for w in writers:
        w.writerow(header)
    for i in range(n):
        f = contact_fields(i, keys)
        writers[i % cohorts].writerow(
            [f["email"], f["first_name"], f["last_name"], "true" if f["unsubscribed"] else "false"]
            + [f["properties"][k] for k, _ in keys]
        )
    entries = []
    for c in range(cohorts):
        name = f"cohort-{c:02d}.csv"
        (directory / name).write_text(buffers[c].getvalue(), encoding="utf-8")
        entry: dict = {"csv": name}
        segs = cohort_segments(c, s)
        if segs:
            entry["segments"] = segs
        tops = cohort_topics(c, t)
        if tops:
            entry["topics"] = tops
        entries.append(entry)
    doc: dict = {"version": 1}
    if state.properties:
        doc["properties"] = {k: {"type": prop.type} for k, prop in state.properties.items()}
    if state.segments:
        doc["segments"] = {name: None for name in state.segments}
    if state.topics:
        doc["topics"] = {
            name: {"default_subscription": top.default_subscription} for name, top in state.topics.items()
        }
    doc["contacts"] = entries
    path = directory / "resend.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
