"""apply(plan, client): carry out exactly the plan, in dependency order, as few requests as the API allows.

Phases (each waits for the previous one; requests within a phase run concurrently and the
client's rate limiter paces them):
1. properties, segments and topics: create, update, and replace (delete then create).
   Replacements run here, not at the end, because the contact writes of phase 2/3 need the
   new property type / topic to exist (the diff re-writes the values a replace drops).
2. contacts: create and update. Several new contacts with the same segments and topics go
   through one bulk CSV import (``POST /contacts/imports``), polled to completion and verified
   by reading the contact list back once; the rows missing after it are created one by one.
3. memberships added, subscriptions set.
4. memberships removed.
5. contacts deleted.
6. segments, topics and properties deleted.

Every step is idempotent against a re-plan: if apply stops half-way (Ctrl-C, kill -9, lost
network), the next plan diffs against what was done and shows only the rest. Imports use
``on_conflict="upsert"``: a contact that exists by the time the import runs (created by an
earlier interrupted run, or a retried import request) gets the declared values instead of being
silently skipped, so the verification pass and the next plan agree, and nothing is duplicated
(the API keys contacts by email).

Dispatch, as in octoDNS: ``_apply_<kind>_<action>``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from resend_iac.engine.plan import Change, Plan
from resend_iac.model import State, normalize_email

Progress = Callable[[int, int, str], None]

BULK_MIN = 4  # a group of at least this many new contacts goes through one import
CONCURRENCY = 8


class ApplyError(Exception):
    """Some requests failed. ``errors`` lists (change, exception); ``result`` what was done."""

    def __init__(self, errors: list[tuple[Change, BaseException]], result: "ApplyResult"):
        self.errors = errors
        self.result = result
        lines = [f"{c.action} {c.kind} {c.label}{' in ' + c.parent if c.parent else ''}: {e}"
                 for c, e in errors[:10]]
        more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
        super().__init__(
            f"{len(errors)} change(s) failed; the rest of the plan was not applied. "
            "Run plan again to see what is left.\n" + "\n".join(lines) + more
        )


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    replaced: int = 0
    deleted: int = 0
    imported: int = 0  # contacts created through bulk imports
    retried: int = 0  # import rows created one by one after the import
    requests: int = 0
    seconds: float = 0.0
    done: list[Change] = field(default_factory=list, repr=False)

    def count(self, change: Change) -> None:
        self.done.append(change)
        if change.action == "create":
            self.created += 1
        elif change.action == "update":
            self.updated += 1
        elif change.action == "replace":
            self.replaced += 1
        elif change.action == "delete":
            self.deleted += 1

    def summary(self) -> str:
        replaced = f"{self.replaced} replaced, " if self.replaced else ""
        return (
            f"Apply complete: {self.created} created, {self.updated} updated, {replaced}"
            f"{self.deleted} deleted in {self.seconds:.1f} s ({self.requests} requests)"
        )


def _phase(change: Change) -> int:
    kind, action = change.kind, change.action
    if kind in ("property", "segment", "topic"):
        return 6 if action == "delete" else 1
    if kind == "contact":
        return 5 if action == "delete" else 2
    if kind == "membership":
        return 4 if action == "delete" else 3
    return 3  # subscription


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Applier:
    def __init__(self, plan: Plan, client: Any, live: State | None, progress: Progress | None,
                 concurrency: int):
        self.plan = plan
        self.client = client
        self.live = live
        self.progress = progress
        self.sem = asyncio.Semaphore(concurrency)
        self.result = ApplyResult()
        self.total = len(plan.changes)
        self.import_errors: list[BaseException] = []  # imports that failed as a whole
        self.segment_ids: dict[str, str] = {}
        self.topic_ids: dict[str, str] = {}

    def _done(self, change: Change) -> None:
        self.result.count(change)
        if self.progress:
            self.progress(len(self.result.done), self.total, f"{change.action} {change.kind}")

    async def _ids(self) -> None:
        if self.live is not None:
            self.segment_ids = {n: s.id for n, s in self.live.segments.items() if s.id}
            self.topic_ids = {n: t.id for n, t in self.live.topics.items() if t.id}
            return
        needs = any(c.kind in ("membership", "subscription") or
                    (c.kind == "contact" and c.action == "create") for c in self.plan.changes)
        if needs:
            segs, tops = await asyncio.gather(self.client.list_segments(), self.client.list_topics())
            self.segment_ids = {s["name"]: s["id"] for s in segs}
            self.topic_ids = {t["name"]: t["id"] for t in tops}

    async def run(self) -> ApplyResult:
        start = time.monotonic()
        sent0 = getattr(self.client, "requests_sent", 0)
        try:
            await self._ids()
            phases: dict[int, list[Change]] = {}
            for c in self.plan.changes:
                phases.setdefault(_phase(c), []).append(c)
            for n in sorted(phases):
                changes = phases[n]
                if n == 2:
                    await self._contacts(changes)
                else:
                    await self._run(changes)
        finally:
            self.result.seconds = time.monotonic() - start
            self.result.requests = getattr(self.client, "requests_sent", 0) - sent0
        return self.result

    async def _run(self, changes: list[Change], extra: list[Callable[[], Awaitable[None]]] = ()) -> None:
        errors: list[tuple[Change, BaseException]] = []

        async def one(change: Change) -> None:
            method = getattr(self, f"_apply_{change.kind}_{change.action}")
            async with self.sem:
                try:
                    await method(change)
                except Exception as e:  # collected; the phase finishes, the next one does not start
                    errors.append((change, e))
                    return
            self._done(change)

        async def guarded(fn: Callable[[], Awaitable[None]]) -> None:
            try:
                await fn()
            except _BulkErrors as e:
                errors.extend(e.errors)
            except Exception as e:  # e.g. the verification read failed
                errors.append((Change("create", "contact", "(bulk import verification)"), e))

        await asyncio.gather(*(one(c) for c in changes), *(guarded(f) for f in extra))
        if errors:
            raise ApplyError(errors, self.result)

    # -- properties ------------------------------------------------------------------

    @staticmethod
    def _property_payload(after: dict[str, Any]) -> dict[str, Any]:
        return {k: after[k] for k in ("key", "type", "fallback_value") if k in after}

    async def _apply_property_create(self, c: Change) -> None:
        await self.client.create_property(self._property_payload(c.after))

    async def _apply_property_update(self, c: Change) -> None:
        await self.client.update_property(c.id, {"fallback_value": c.after["fallback_value"]})

    async def _apply_property_replace(self, c: Change) -> None:
        await self.client.delete_property(c.id)
        await self.client.create_property(self._property_payload(c.after))

    async def _apply_property_delete(self, c: Change) -> None:
        await self.client.delete_property(c.id)

    # -- segments --------------------------------------------------------------------

    async def _apply_segment_create(self, c: Change) -> None:
        self.segment_ids[c.key] = await self.client.create_segment(c.key)

    async def _apply_segment_delete(self, c: Change) -> None:
        await self.client.delete_segment(c.id)

    # -- topics ----------------------------------------------------------------------

    @staticmethod
    def _topic_payload(after: dict[str, Any]) -> dict[str, Any]:
        return {k: after[k] for k in ("name", "default_subscription", "description", "visibility")
                if k in after}

    async def _apply_topic_create(self, c: Change) -> None:
        self.topic_ids[c.key] = await self.client.create_topic(self._topic_payload(c.after))

    async def _apply_topic_update(self, c: Change) -> None:
        await self.client.update_topic(c.id, dict(c.after))

    async def _apply_topic_replace(self, c: Change) -> None:
        await self.client.delete_topic(c.id)
        self.topic_ids[c.key] = await self.client.create_topic(self._topic_payload(c.after))

    async def _apply_topic_delete(self, c: Change) -> None:
        await self.client.delete_topic(c.id)

    # -- contacts --------------------------------------------------------------------

    def _segment_id(self, name: str) -> str:
        try:
            return self.segment_ids[name]
        except KeyError:
            raise LookupError(f"segment {name!r} does not exist live and is not declared") from None

    def _topic_id(self, name: str) -> str:
        try:
            return self.topic_ids[name]
        except KeyError:
            raise LookupError(f"topic {name!r} does not exist live and is not declared") from None

    def _contact_payload(self, after: dict[str, Any]) -> dict[str, Any]:
        payload = {k: after[k] for k in ("email", "first_name", "last_name") if k in after}
        if after.get("unsubscribed") is True:  # false is the default; never sent (see _csv)
            payload["unsubscribed"] = True
        props = {k: v for k, v in (after.get("properties") or {}).items() if v is not None}
        if props:
            payload["properties"] = props
        if after.get("segments"):
            payload["segments"] = [{"id": self._segment_id(s)} for s in after["segments"]]
        if after.get("topics"):
            payload["topics"] = [{"id": self._topic_id(t), "subscription": s}
                                 for t, s in sorted(after["topics"].items())]
        return payload

    async def _apply_contact_create(self, c: Change) -> None:
        await self.client.create_contact(self._contact_payload(c.after))

    async def _apply_contact_update(self, c: Change) -> None:
        payload = {k: v for k, v in c.after.items() if k != "properties"}
        if "properties" in c.after:
            payload["properties"] = dict(c.after["properties"])
        await self.client.update_contact(c.id or c.email or c.key, payload)

    async def _apply_contact_delete(self, c: Change) -> None:
        await self.client.delete_contact(c.id or c.email or c.key)

    async def _contacts(self, changes: list[Change]) -> None:
        groups: dict[tuple, list[Change]] = {}
        single: list[Change] = []
        for c in changes:
            if c.action == "create":
                gk = (tuple(c.after.get("segments") or ()),
                      tuple(sorted((c.after.get("topics") or {}).items())))
                groups.setdefault(gk, []).append(c)
            else:
                single.append(c)
        bulk: list[list[Change]] = []
        for members in groups.values():
            if len(members) >= BULK_MIN:
                bulk.append(members)
            else:
                single.extend(members)
        extra = [self._bulk_runner(bulk)] if bulk else []
        await self._run(single, extra)

    def _bulk_runner(self, groups: list[list[Change]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await asyncio.gather(*(self._import(g) for g in groups))
            await self._verify_imports(groups)
        return run

    def _csv(self, group: list[Change]) -> tuple[bytes, dict[str, Any]]:
        """The group's rows as CSV, and the column_map. Empty cells mean "not given" (a new
        contact gets the API's default). ``unsubscribed: false`` is written as an empty cell,
        not "false": false is the default for a new contact, and if the contact was created
        meanwhile (upsert) and has unsubscribed, the import must not resubscribe it."""
        fields = [f for f in ("first_name", "last_name") if any(c.after.get(f) for c in group)]
        if any(c.after.get("unsubscribed") is True for c in group):
            fields.append("unsubscribed")
        prop_types: dict[str, str] = {}
        for c in group:
            for k, v in (c.after.get("properties") or {}).items():
                if v is None:
                    continue
                t = "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else "string"
                if prop_types.get(k, t) != t:
                    t = "string"
                prop_types[k] = t
        columns = ["email", *fields, *(f"property:{k}" for k in prop_types)]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for c in group:
            a = c.after
            props = a.get("properties") or {}
            w.writerow([a["email"], *(_csv_cell(a.get(f) or None) for f in fields),
                        *(_csv_cell(props.get(k)) for k in prop_types)])
        column_map: dict[str, Any] = {"email": "email", **{f: f for f in fields}}
        if prop_types:
            column_map["properties"] = {k: {"column": f"property:{k}", "type": t} for k, t in prop_types.items()}
        return buf.getvalue().encode("utf-8"), column_map

    async def _import(self, group: list[Change]) -> None:
        first = group[0].after
        segment_ids = [self._segment_id(s) for s in first.get("segments") or ()]
        topics = [{"id": self._topic_id(t), "subscription": s}
                  for t, s in sorted((first.get("topics") or {}).items())]
        data, column_map = self._csv(group)
        try:
            async with self.sem:
                import_id = await self.client.create_import(
                    data, column_map, on_conflict="upsert", segment_ids=segment_ids, topics=topics)
            delay = 0.05
            while True:
                async with self.sem:
                    status = await self.client.get_import(import_id)
                if status.get("status") in ("completed", "failed"):
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        except Exception as e:  # the verification finds the rows missing and creates them one by one
            self.import_errors.append(e)

    async def _present(self, rows: list[Change]) -> set[str]:
        """Which of ``rows`` exist live: the contact list read once (pages of 100), or, when
        that would cost more (a few rows in a big team), one GET per row."""
        pages = (self.plan.live_counts.get("contact", 0) + len(rows)) // 100 + 1
        if len(rows) >= pages:
            return {normalize_email(c["email"]) for c in await self.client.list_contacts()}

        async def exists(c: Change) -> str | None:
            async with self.sem:
                try:
                    await self.client.get_contact(c.after["email"])
                except Exception as e:
                    if getattr(e, "status", None) == 404:
                        return None
                    raise
            return c.key

        return {k for k in await asyncio.gather(*(exists(c) for c in rows)) if k}

    async def _verify_imports(self, groups: list[list[Change]]) -> None:
        """Read the imported rows back; create the rows the imports missed one by one."""
        present = await self._present([c for g in groups for c in g])
        missing: list[Change] = []
        for group in groups:
            for c in group:
                if c.key in present:
                    self.result.imported += 1
                    self._done(c)
                else:
                    missing.append(c)
        errors: list[tuple[Change, BaseException]] = []

        async def retry(c: Change) -> None:
            async with self.sem:
                try:
                    await self._apply_contact_create(c)
                except Exception as e:
                    errors.append((c, e))
                    return
            self.result.retried += 1
            self._done(c)

        await asyncio.gather(*(retry(c) for c in missing))
        if errors:
            raise _BulkErrors(errors)

    # -- memberships, subscriptions --------------------------------------------------

    async def _apply_membership_create(self, c: Change) -> None:
        await self.client.add_contact_segment(c.id or c.email or c.key, self._segment_id(c.parent))

    async def _apply_membership_delete(self, c: Change) -> None:
        await self.client.remove_contact_segment(c.id or c.email or c.key, self._segment_id(c.parent))

    async def _apply_subscription_update(self, c: Change) -> None:
        topics = [{"id": self._topic_id(t), "subscription": s} for t, s in sorted(c.after.items())]
        await self.client.update_contact_topics(c.id or c.email or c.key, topics)

    _apply_subscription_create = _apply_subscription_update


class _BulkErrors(Exception):
    def __init__(self, errors: list[tuple[Change, BaseException]]):
        self.errors = errors
        super().__init__(f"{len(errors)} imported contact(s) failed")


async def apply(plan: Plan, client: Any, *, progress: Progress | None = None, live: State | None = None,
                concurrency: int = CONCURRENCY) -> ApplyResult:
    """Carry out ``plan`` with ``client`` (a ResendClient). ``live``, when given, is the
    live state the plan was checked against (its segment/topic ids save two list requests).
    Raises ApplyError when requests fail (the phase finishes, later phases do not start)."""
    return await _Applier(plan, client, live, progress, concurrency).run()
