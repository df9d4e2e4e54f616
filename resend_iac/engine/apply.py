"""apply(plan, client): carry out exactly the plan, in dependency order, as few requests as the API allows.

Phases (each waits for the previous one; requests within a phase run concurrently and the
client's rate limiter paces them):
0. segments and topics renamed in place (``renamed_from``): first, so that a new object
   declared under an old name is created only once the old name is free.
1. properties, segments and topics: create, update, and replace (delete then create).
   Replacements run here, not at the end, because the contact writes of phase 2/3 need the
   new property type / topic to exist (the diff re-writes the values a replace drops).
2. contacts: create and update. Several new contacts with the same segments and topics go
   through one bulk CSV import (``POST /contacts/imports``), polled to completion and read
   back; the rows missing after it are created one by one.
3. memberships added, subscriptions set.
4. memberships removed.
5. contacts deleted.
6. segments, topics and properties deleted.

Every step is idempotent against a re-plan: if apply stops half-way (Ctrl-C, kill -9, lost
network), the next plan diffs against what was done and shows only the rest.

Safe where the real API is hostile or unknown (docs/emulator.md):
- ``POST /contacts`` on an existing email is an upsert that resets every omitted field,
  ``unsubscribed`` included (reported from the live API). So a contact is never POSTed
  unless a ``GET /contacts/{email}`` answered 404 right before (the declared spelling, and
  its lower-case form when emails turn out to be case-sensitive). A contact the plan
  believed new but that exists (a sign-up meanwhile, a list that lags, an earlier
  interrupted run) is handled as an update of the declared fields only: ``unsubscribed`` is
  sent only when declared, and never flips to false (nor a topic opt-out to opt-in) without
  ``allow_resubscribe``.
- Imports always send ``on_conflict="skip"`` (its default is documented both ways, and what
  an upsert does to columns a CSV lacks is unknown): an import never overwrites an
  existing contact, and carry only topic opt-outs (whether an import's topics reach the
  rows it skips is unknown; an opt-in there could undo an opt-out): opt-ins that differ from
  the topic's default are set per created row afterwards (one PATCH each: a row the import
  created has no subscription of its own to guard). The rows are then read back (the contact list when cheap, else and for
  what a lagging list leaves out a GET by email); a row created before its import
  (``created_at``) existed and was skipped, and gets its declared fields, segments and
  topics as above.
- Consent writes are conditional on a read (engine/consent.py): every subscription and
  ``unsubscribed`` write is preceded by a read of that contact in this apply, and a choice the
  contact made since the plan (an opt-out, an unsubscribe) is left alone with a warning; a
  resubscription the plan shows goes through only when the plan was made allowing it for
  that contact. An imported row is taken as ours only when its import created every row of
  its group and the row is as the import made it (never by comparing timestamps); its opt-ins
  are still written only after reading its subscriptions. A contact to delete is read first:
  one that holds consent (unsubscribed, opted out) is kept unless the plan was made with
  ``--prune-unsubscribed``, and what was read goes to the consent ledger.

Dispatch, as in octoDNS: ``_apply_<kind>_<action>``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from resend_iac.client import NotFoundError
from resend_iac.client.reader import Progress  # one progress type: (done, total or None, what)
from resend_iac.engine import consent as valve
from resend_iac.engine.consent import Consent
from resend_iac.engine.plan import Change, Plan
from resend_iac.engine.ports import Client
from resend_iac.errors import ResendIACError
from resend_iac.model import State, normalize_email
from resend_iac.model.schema import CONTACT, PROPERTY, TOPIC

BULK_MIN = 4  # a group of at least this many new contacts goes through one import
CONCURRENCY = 8


class ApplyError(ResendIACError):
    """Some requests failed. ``errors`` lists (change, exception); ``result`` what was done."""

    def __init__(self, errors: list[tuple[Change, BaseException]], result: "ApplyResult"):
        self.errors = errors
        self.result = result
        lines = [
            f"{c.action} {c.kind} {c.label}{' in ' + c.parent if c.parent else ''}: {e}"
            for c, e in errors[:10]
        ]
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
    existing: int = 0  # planned as new, found existing live, given their declared fields only
    warnings: list[str] = field(default_factory=list)  # consent left alone on that path
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


def property_payload(after: dict[str, Any]) -> dict[str, Any]:
    """A property's declared fields -> the body of ``POST /contact-properties``."""
    return PROPERTY.payload(after)


def topic_payload(after: dict[str, Any]) -> dict[str, Any]:
    """A topic's declared fields -> the body of ``POST /topics``."""
    return TOPIC.payload(after)


def contact_payload(
    after: dict[str, Any], segment_id: Callable[[str], str], topic_id: Callable[[str], str]
) -> dict[str, Any]:
    """A contact's declared fields -> the body of ``POST /contacts``; ``segment_id`` and
    ``topic_id`` turn the declared segment and topic references into live ids. A consent
    field is sent only toward less email (``unsubscribed: false`` is the default; never
    sent, see _csv)."""
    payload = CONTACT.payload(after)
    props = {k: v for k, v in (after.get("properties") or {}).items() if v is not None}
    if props:
        payload["properties"] = props
    if after.get("segments"):
        payload["segments"] = [{"id": segment_id(s)} for s in after["segments"]]
    if after.get("topics"):
        payload["topics"] = [
            {"id": topic_id(t), "subscription": s} for t, s in sorted(after["topics"].items())
        ]
    return payload


def _after(c: Change) -> dict[str, Any]:
    """A create's or update's fields (the plan file's checks make sure they are there)."""
    if c.after is None:
        raise ValueError(f"{c.action} {c.kind} {c.label}: the change has no fields")
    return c.after


def _id(c: Change) -> str:
    """The live id of the object a change updates or deletes."""
    if not c.id:
        raise ValueError(f"{c.action} {c.kind} {c.label}: the change names no live id")
    return c.id


def _parent(c: Change) -> str:
    if not c.parent:
        raise ValueError(f"{c.action} {c.kind} {c.label}: the change names no segment")
    return c.parent


def is_rename(change: Change) -> bool:
    """A segment or topic renamed in place (``renamed_from``): PATCH with the new name."""
    after = change.after or {}
    return (
        change.kind in ("segment", "topic")
        and change.action == "update"
        and "name" in after
        and (change.before or {}).get("name") != after["name"]
    )


def _phase(change: Change) -> int:
    kind, action = change.kind, change.action
    if is_rename(change):
        return 0
    if kind in ("property", "segment", "topic"):
        return 6 if action == "delete" else 1
    if kind == "contact":
        return 5 if action == "delete" else 2
    if kind == "membership":
        return 4 if action == "delete" else 3
    return 3  # subscription


def _cell_value(after: dict[str, Any], name: str) -> Any:
    """A row's value for an import column: empty (not given) for no value, and for a consent
    field any value but the one toward less email (an import never subscribes anyone)."""
    f = CONTACT.field(name)
    value = after.get(name)
    if f.owned_by_contact and value != f.less_email:
        return None
    return value or None


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Applier:
    def __init__(
        self,
        plan: Plan,
        client: Client,
        live: State | None,
        progress: Progress | None,
        concurrency: int,
        consent: Consent | None = None,
    ):
        self.plan = plan
        self.consent = consent or Consent()
        self.allow = self.consent.allow
        self.import_status: dict[int, dict[str, Any]] = {}  # id(group) -> final import status
        self.client = client
        self.live = live
        self.progress = progress
        self.sem = asyncio.Semaphore(concurrency)
        self.result = ApplyResult()
        self.total = len(plan.changes)
        self.import_errors: list[BaseException] = []  # imports that failed as a whole
        self.segment_ids: dict[str, str] = {}
        self.topic_ids: dict[str, str] = {}
        self.topic_defaults: dict[str, str] = {}  # topic name -> default_subscription
        self.after_import: dict[int, dict[str, str]] = {}  # id(group) -> opt-ins to set after

    def _done(self, change: Change) -> None:
        self.result.count(change)
        if self.progress:
            self.progress(len(self.result.done), self.total, f"{change.action} {change.kind}")

    async def _ids(self) -> None:
        for c in self.plan.changes:
            if c.kind == "topic" and c.action in ("create", "replace") and _after(c):
                self.topic_defaults[c.key] = _after(c).get("default_subscription", "opt_in")
        if self.live is not None:
            self.segment_ids = {n: s.id for n, s in self.live.segments.items() if s.id}
            self.topic_ids = {n: t.id for n, t in self.live.topics.items() if t.id}
            for n, t in self.live.topics.items():
                self.topic_defaults.setdefault(n, t.default_subscription)
            self._renamed_ids()
            return
        needs = any(
            c.kind in ("membership", "subscription")
            or (c.kind == "contact" and c.action in ("create", "delete"))
            for c in self.plan.changes
        )
        if needs:
            segs, tops = await asyncio.gather(self.client.list_segments(), self.client.list_topics())
            self.segment_ids = {s["name"]: s["id"] for s in segs}
            self.topic_ids = {t["name"]: t["id"] for t in tops}
            for item in tops:
                self.topic_defaults.setdefault(item["name"], item.get("default_subscription", "opt_in"))
            self._renamed_ids()

    def _renamed_ids(self) -> None:
        """A segment or topic renamed in place keeps its id: the contact changes name it by
        its new name."""
        for c in self.plan.changes:
            if not is_rename(c) or not c.id:
                continue
            old = (c.before or {}).get("name")
            if c.kind == "segment":
                self.segment_ids[c.key] = c.id
            else:
                self.topic_ids[c.key] = c.id
                if old in self.topic_defaults:
                    self.topic_defaults.setdefault(c.key, self.topic_defaults[old])

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

    async def _run(self, changes: list[Change], extra: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        errors: list[tuple[Change, BaseException]] = []

        async def one(change: Change) -> None:
            method = getattr(self, f"_apply_{change.kind}_{change.action}")
            if (change.kind, change.action) in (("contact", "create"), ("subscription", "update")):
                lock: Any = _NoLock()  # takes the semaphore per request (several requests)
            else:
                lock = self.sem
            async with lock:
                try:
                    left_alone = await method(change) is False  # consent: nothing written
                except Exception as e:  # collected; the phase finishes, the next one does not start
                    errors.append((change, e))
                    return
            if not left_alone:
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

    async def _apply_property_create(self, c: Change) -> None:
        await self.client.create_property(property_payload(_after(c)))

    async def _apply_property_update(self, c: Change) -> None:
        await self.client.update_property(_id(c), PROPERTY.update_payload(_after(c)))

    async def _apply_property_replace(self, c: Change) -> None:
        await self.client.delete_property(_id(c))
        await self.client.create_property(property_payload(_after(c)))

    async def _apply_property_delete(self, c: Change) -> None:
        await self.client.delete_property(_id(c))

    # -- segments --------------------------------------------------------------------

    async def _apply_segment_create(self, c: Change) -> None:
        self.segment_ids[c.key] = await self.client.create_segment(c.key)

    async def _apply_segment_update(self, c: Change) -> None:  # a rename in place
        await self.client.rename_segment(_id(c), _after(c)["name"])

    async def _apply_segment_delete(self, c: Change) -> None:
        await self.client.delete_segment(_id(c))

    # -- topics ----------------------------------------------------------------------

    async def _apply_topic_create(self, c: Change) -> None:
        self.topic_ids[c.key] = await self.client.create_topic(topic_payload(_after(c)))

    async def _apply_topic_update(self, c: Change) -> None:
        payload = TOPIC.update_payload(_after(c))
        if is_rename(c):  # the key, renamed in place (PATCH /topics/{id} takes a name)
            payload[TOPIC.key.api] = _after(c)[TOPIC.key.name]
        await self.client.update_topic(_id(c), payload)

    async def _apply_topic_replace(self, c: Change) -> None:
        await self.client.delete_topic(_id(c))
        self.topic_ids[c.key] = await self.client.create_topic(topic_payload(_after(c)))

    async def _apply_topic_delete(self, c: Change) -> None:
        await self.client.delete_topic(_id(c))

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
        return contact_payload(after, self._segment_id, self._topic_id)

    async def _apply_contact_create(self, c: Change) -> None:
        """Never POST an email that may exist (POST is an upsert resetting omitted fields)."""
        async with self.sem:
            found = await self._find_contact(_after(c)["email"])
        if found is None:
            async with self.sem:
                await self.client.create_contact(self._contact_payload(_after(c)))
        else:
            await self._converge_existing(c, found)

    async def _find_contact(self, email: str) -> dict[str, Any] | None:
        """The live contact for ``email`` (GET by the declared spelling, then by its lower-case
        form if different: emails may be case-sensitive keys), or None when both say 404."""
        spellings = [email.strip()]
        if spellings[0].lower() != spellings[0]:
            spellings.append(spellings[0].lower())
        for ref in spellings:
            try:
                return await self.client.get_contact(ref)
            except NotFoundError:
                pass
        return None

    def _warn(self, message: str) -> None:
        self.result.warnings.append(message)

    async def _converge_existing(self, c: Change, live: dict[str, Any]) -> None:
        """A contact planned as new exists: write only its declared fields that differ, add
        its declared segments, set its declared topics; consent is never flipped back
        without ``allow_resubscribe``."""
        after = _after(c)
        ref = live.get("id") or after["email"]
        label = after["email"]
        patch: dict[str, Any] = {}
        for f in CONTACT.mutable:
            if f.name not in after:
                continue
            want, have = after[f.name], f.from_api(live)
            if f.same(want, have):
                continue
            if f.resubscribes(have, want) and not self.allow.allows(c.key):
                self._warn(valve.not_resubscribed(label))
                continue
            patch[f.api] = want
        have = {
            k: (v.get("value") if isinstance(v, dict) else v)
            for k, v in (live.get("properties") or {}).items()
        }
        props = {k: v for k, v in (after.get("properties") or {}).items() if not _same_value(v, have.get(k))}
        if props:
            patch["properties"] = props
        if patch:
            async with self.sem:
                await self.client.update_contact(ref, patch)
        segments = [self._segment_id(s) for s in after.get("segments") or ()]
        if segments:
            async with self.sem:
                member_of = {s.get("id") for s in await self.client.list_contact_segments(ref)}
            for sid in segments:
                if sid not in member_of:
                    async with self.sem:
                        await self.client.add_contact_segment(ref, sid)
        if after.get("topics"):
            # out of all email after this apply's write (the files may unsubscribe it now)
            out = patch.get(valve.UNSUB.api, valve.left_all(live)) is True
            await self._set_topics(ref, label, after["topics"], c.key, out_of_all=out)
        self.result.existing += 1

    async def _set_topics(
        self,
        ref: str,
        label: str,
        wanted: dict[str, str],
        key: str,
        *,
        out_of_all: bool = False,
        planned: dict[str, Any] | None = None,
    ) -> bool:
        """Set ``wanted`` subscriptions of a live contact, right after reading its own: an
        opt-out (or an unsubscribed contact) is never opted in without the allowance for
        that contact; a topic already as wanted is not written. ``planned``: what the plan
        saw before (a subscription change): an opt-in over an opt-out the plan did not see is
        the contact's choice since, and left alone. Returns whether anything was written."""
        async with self.sem:
            explicit = {
                t.get("id"): t.get("subscription") for t in await self.client.list_contact_topics(ref)
            }
        topics = []
        for name, sub in sorted(wanted.items()):
            tid = self._topic_id(name)
            was = explicit.get(tid)
            if was == sub or (was is None and sub == self.topic_defaults.get(name) and planned is None):
                continue
            if valve.opt_in_blocked(was, sub, out_of_all) and not (
                self.allow.allows(key) and (planned is None or planned.get(name) == was or was is None)
            ):
                self._warn(valve.not_opted_in(label, name, was != valve.OPT_OUT))
                continue
            topics.append({"id": tid, "subscription": sub})
        if topics:
            async with self.sem:
                await self.client.update_contact_topics(ref, topics)
        return bool(topics)

    async def _apply_contact_update(self, c: Change) -> bool | None:
        after = _after(c)
        payload = CONTACT.update_payload(after)
        if "properties" in after:
            payload["properties"] = dict(after["properties"])
        ref = c.id or c.email or c.key
        consent = valve.UNSUB.api
        if consent in payload:  # a consent write: read the contact right before
            fresh = valve.left_all(await self.client.get_contact(ref))
            if fresh == payload[consent]:
                del payload[consent]
            elif valve.resubscribes(fresh, payload[consent]) and not self.allow.allows(c.key):
                self._warn(valve.not_resubscribed(c.label))
                del payload[consent]
        if not payload:
            return False
        await self.client.update_contact(ref, payload)
        return None

    async def _apply_contact_delete(self, c: Change) -> bool | None:
        """Read the contact right before: one that holds consent is kept (unless the plan
        was made with --prune-unsubscribed), one the ledger protects is kept; what was read
        goes to the consent ledger first."""
        ref = c.id or c.email or c.key
        ledger = self.consent.ledger
        if ledger is not None and ledger.is_protected(c.id):
            self._warn(valve.kept_protected(c.label))
            return False
        try:
            item = await self.client.get_contact(ref)
            topics = await self.client.list_contact_topics(ref) if self.topic_ids else []
        except NotFoundError:
            return None  # gone already: what the plan wanted holds
        if ledger is not None:
            names = {tid: n for n, tid in self.topic_ids.items()}
            subs = {names[t["id"]]: t.get("subscription") for t in topics if t.get("id") in names}
            ledger.saw_contact(item.get("email") or c.label, item.get(valve.UNSUB.api), subs)
        gone = {x.id for x in self.plan.changes if x.kind == "topic" and x.action == "delete"}
        topics = [t for t in topics if t.get("id") not in gone]  # deleted by this plan anyway
        if valve.item_holds_consent(item, topics) and not self.consent.prune_unsubscribed:
            reasons = [valve.UNSUB.name] if valve.left_all(item) else []
            if any(t.get("subscription") == valve.OPT_OUT for t in topics):
                reasons.append("opted out of a topic")
            self._warn(valve.kept_by_prune(c.label, reasons))
            return False
        await _gone_is_done(self.client.delete_contact(ref))
        return None

    async def _contacts(self, changes: list[Change]) -> None:
        groups: dict[tuple[Any, ...], list[Change]] = {}
        single: list[Change] = []
        for c in changes:
            if c.action == "create":
                gk = (
                    tuple(_after(c).get("segments") or ()),
                    tuple(sorted((_after(c).get("topics") or {}).items())),
                )
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
        not "false": false is the default for a new contact, and an import must never be able
        to resubscribe anyone (imports send ``skip``; this holds even for an upsert)."""
        # A column per field some row gives (a consent field: only toward less email).
        fields = [
            f.name
            for f in CONTACT.values
            if any(
                (_after(c).get(f.name) == f.less_email and f.name in _after(c))
                if f.owned_by_contact
                else _after(c).get(f.name)
                for c in group
            )
        ]
        prop_types: dict[str, str] = {}
        for c in group:
            for k, v in (_after(c).get("properties") or {}).items():
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
            a = _after(c)
            props = a.get("properties") or {}
            w.writerow(
                [
                    a["email"],
                    *(_csv_cell(_cell_value(a, f)) for f in fields),
                    *(_csv_cell(props.get(k)) for k in prop_types),
                ]
            )
        column_map: dict[str, Any] = {"email": "email", **{CONTACT.field(f).api: f for f in fields}}
        if prop_types:
            column_map["properties"] = {
                k: {"column": f"property:{k}", "type": t} for k, t in prop_types.items()
            }
        return buf.getvalue().encode("utf-8"), column_map

    async def _import(self, group: list[Change]) -> None:
        first = _after(group[0])
        segment_ids = [self._segment_id(s) for s in first.get("segments") or ()]
        # Only opt-outs go with the import: whether its topics reach the rows it skips (existing
        # contacts) is unknown, and an opt-in there could undo an opt-out. Opt-ins that differ
        # from the topic's default are set per created row afterwards (_verify_imports).
        declared = sorted((first.get("topics") or {}).items())
        topics = [{"id": self._topic_id(t), "subscription": s} for t, s in declared if s == "opt_out"]
        later = {t: s for t, s in declared if s == "opt_in" and self.topic_defaults.get(t) != "opt_in"}
        if later:
            self.after_import[id(group)] = later
        data, column_map = self._csv(group)
        try:
            async with self.sem:
                import_id = await self.client.create_import(
                    data, column_map, on_conflict="skip", segment_ids=segment_ids, topics=topics
                )
            delay = 0.05
            while True:
                async with self.sem:
                    status = await self.client.get_import(import_id)
                if status.get("status") in ("completed", "failed"):
                    self.import_status[id(group)] = status
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        except Exception as e:  # the verification finds the rows missing and creates them one by one
            self.import_errors.append(e)

    def _all_created(self, group: list[Change]) -> bool:
        """The import says it created every row of ``group`` (so none existed before)."""
        status = self.import_status.get(id(group)) or {}
        counts = status.get("counts") or {}
        return (
            status.get("status") == "completed"
            and counts.get("created") == len(group)
            and not counts.get("skipped")
            and not counts.get("updated")
            and not counts.get("failed")
        )

    async def _listed(self, rows: list[Change]) -> dict[str, dict[str, Any]]:
        """The contact list's items for ``rows`` (normalised email -> item), read once in pages
        of 100 when that is cheaper than one GET per row; else nothing (every row is then
        read by email). A lagging list may leave rows out: they are read by email."""
        pages = (self.plan.live_counts.get("contact", 0) + len(rows)) // 100 + 1
        if len(rows) < pages:
            return {}
        wanted = {c.key for c in rows}
        out: dict[str, dict[str, Any]] = {}
        for item in await self.client.list_contacts():
            k = normalize_email(item.get("email") or "")
            if k in wanted:
                out.setdefault(k, item)
        return out

    async def _verify_imports(self, groups: list[list[Change]]) -> None:
        """Read the imported rows back: from the contact list when cheap, else (and for the
        rows a lagging list leaves out) by email. A row not found (404) is created one by
        one. A row found is done when its import created every row, or when the contact was
        created after its import was (``created_at``); otherwise it existed before and was
        skipped, and gets its declared fields, segments and topics (``_converge_existing``)."""
        rows = [(c, g) for g in groups for c in g]
        listed = await self._listed([c for c, _ in rows])
        errors: list[tuple[Change, BaseException]] = []

        async def settle(c: Change, group: list[Change]) -> None:
            try:
                found = listed.get(c.key)
                if found is None:
                    async with self.sem:
                        found = await self._find_contact(_after(c)["email"])
                if found is None:
                    async with self.sem:
                        await self.client.create_contact(self._contact_payload(_after(c)))
                    self.result.retried += 1
                else:
                    # Taken as the import's row when the import created every row of the group,
                    # or the contact is no older than the import, and it is unsubscribed only if
                    # declared so. This decides only what is read and re-written (cost): its
                    # opt-ins are written after a read of its subscriptions all the same.
                    status = self.import_status.get(id(group)) or {}
                    ours = (
                        self._all_created(group)
                        or _not_before(found.get("created_at"), status.get("created_at"))
                    ) and valve.left_all(found) == (_after(c).get(valve.UNSUB.name) is True)
                    if not ours:
                        if "properties" not in found:  # a list item: read it whole
                            async with self.sem:
                                found = await self.client.get_contact(found.get("id") or _after(c)["email"])
                        await self._converge_existing(c, found)
                    elif id(group) in self.after_import:
                        await self._set_topics(
                            found.get("id") or _after(c)["email"],
                            _after(c)["email"],
                            self.after_import[id(group)],
                            c.key,
                            out_of_all=valve.left_all(found),
                        )
                    self.result.imported += 1
            except Exception as e:
                errors.append((c, e))
                return
            self._done(c)

        await asyncio.gather(*(settle(c, g) for c, g in rows))
        if errors:
            raise _BulkErrors(errors)

    # -- memberships, subscriptions --------------------------------------------------

    async def _apply_membership_create(self, c: Change) -> None:
        await self.client.add_contact_segment(c.id or c.email or c.key, self._segment_id(_parent(c)))

    async def _apply_membership_delete(self, c: Change) -> None:
        await _gone_is_done(
            self.client.remove_contact_segment(c.id or c.email or c.key, self._segment_id(_parent(c)))
        )

    async def _apply_subscription_update(self, c: Change) -> bool:
        """Conditional on a read of the contact's subscriptions right before (``_set_topics``;
        and, for an opt-in, of the contact itself: is it unsubscribed from everything now?)."""
        ref = c.id or c.email or c.key
        out = False
        after = _after(c)
        if any(s == valve.OPT_IN for s in after.values()):
            async with self.sem:
                out = valve.left_all(await self.client.get_contact(ref))
        return await self._set_topics(
            ref, c.label, dict(after), c.key, out_of_all=out, planned=c.before or {}
        )

    _apply_subscription_create = _apply_subscription_update


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _timestamp(text: Any) -> tuple[str, str] | None:
    """``2025-11-30 20:41:44.782119+00`` -> a sortable (seconds, microseconds) pair."""
    if not isinstance(text, str) or len(text) < 19:
        return None
    main, rest = text[:19], text[19:]
    frac = rest.split("+")[0].split("-")[0].split("Z")[0].lstrip(".")
    return main.replace("T", " "), (frac + "000000")[:6]


def _not_before(created: Any, since: Any) -> bool:
    """The contact was created no earlier than the import (both the server's timestamps);
    False when either is missing (then the row is treated as existing before)."""
    a, b = _timestamp(created), _timestamp(since)
    return a is not None and b is not None and a >= b


async def _gone_is_done(request: Awaitable[Any]) -> None:
    """A delete answered 404 ``Contact not found`` (the contact was deleted meanwhile; the
    real API's answer for an unknown contact is unknown): what the plan wanted holds."""
    try:
        await request
    except NotFoundError as e:
        if "contact" not in str(e.message).lower():
            raise


def _same_value(a: Any, b: Any) -> bool:
    """Property values as on the wire: numbers by value (5 == 5.0), bool is not a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


class _BulkErrors(Exception):
    def __init__(self, errors: list[tuple[Change, BaseException]]):
        self.errors = errors
        super().__init__(f"{len(errors)} imported contact(s) failed")


async def apply(
    plan: Plan,
    client: Client,
    *,
    progress: Progress | None = None,
    live: State | None = None,
    concurrency: int = CONCURRENCY,
    allow_resubscribe: Any = False,
    consent: Consent | None = None,
) -> ApplyResult:
    """Carry out ``plan`` with ``client`` (a ResendClient). ``live``, when given, is the
    live state the plan was checked against (its segment/topic ids save two list requests).
    ``allow_resubscribe``: a contact planned as new that turns out to exist unsubscribed
    (or opted out of a topic) may be resubscribed when the files say so; without it, never.
    Raises ApplyError when requests fail (the phase finishes, later phases do not start)."""
    if consent is None:
        consent = Consent.from_plan(plan.consent) if plan.consent else Consent()
    consent = Consent.of(consent, allow_resubscribe)
    return await _Applier(plan, client, live, progress, concurrency, consent).run()
