"""Broadcasts of seed files: a ``broadcasts:`` section (docs/format.md), created in the
emulator's store by ``resend-iac emulator --seed`` and the pytest plugin's ``resend_seed``
(``cli/target.py``'s ``seed_app``), never through the API: a ``sent`` one is sent just now, a
``scheduled`` one waits for the emulator's clock."""

from __future__ import annotations

from typing import Any

from resend_iac.emulator.broadcasts import TEXT_FIELDS, BroadcastsData, parse_when
from resend_iac.emulator.errors import APIError

SEED_STATUSES = ("draft", "scheduled", "sent", "canceled")
SEED_FROM = "Seed <seed@example.com>"


def seed(
    store: BroadcastsData, entries: list[dict[str, Any]], *, declared: dict[str, set[str]] | None = None
) -> list[tuple[int, str]]:
    """Create the broadcasts of seed files (a ``broadcasts:`` section, docs/format.md): each
    entry names its ``segment`` (and ``topic``) by name. Returns the problems as (index,
    message); when there is one, nothing is created. With ``declared`` (``{"segment": names,
    "topic": names}`` about to be created), only checks, creating nothing."""
    problems: list[tuple[int, str]] = []
    ready: list[tuple[dict[str, Any], str, float | None]] = []
    now = store.wall()
    for i, entry in enumerate(entries):
        label = f"broadcast {entry.get('name')!r}"
        fields: dict[str, Any] = {k: entry[k] for k in (*TEXT_FIELDS, "reply_to") if entry.get(k) is not None}
        fields.setdefault("subject", entry.get("name") or "Seeded broadcast")
        fields["from"] = entry.get("from") or SEED_FROM
        for ref, table in (("segment", "segments"), ("topic", "topics")):
            name = entry.get(ref)
            if name is None or (declared is not None and name in declared.get(ref, ())):
                continue
            row = store.read_one(f"SELECT id FROM {table} WHERE name = ? ORDER BY seq DESC", (name,))
            if row is None:
                problems.append(
                    (i, f"{label}: there is no {ref} named {name!r}; declare it in the seed files")
                )
            else:
                fields[f"{ref}_id"] = row[0]
        status = entry.get("status") or "draft"
        at = entry.get("scheduled_at")
        send_at = None
        if status not in SEED_STATUSES:
            problems.append((i, f"{label}: status {status!r}; use one of {', '.join(SEED_STATUSES)}"))
        elif status == "scheduled" and at is None:
            problems.append((i, f"{label} is scheduled: give its scheduled_at (e.g. 'in 12 hours')"))
        elif at is not None and status != "scheduled":
            problems.append((i, f"{label}: scheduled_at is for a scheduled broadcast only"))
        elif at is not None:
            try:
                send_at = parse_when(at, now)
            except APIError as e:
                problems.append((i, f"{label}: {e.message}"))
        ready.append((fields, status, send_at))
    if not problems and declared is None:
        for fields, status, send_at in ready:
            store.seed_broadcast(fields, status, send_at)
    return problems
