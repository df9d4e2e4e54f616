"""Issue 23's "Done when": a model-based test of consent and data across sequences of edits.

A hypothesis ``RuleBasedStateMachine`` drives random sequences of reviewed file edits (add,
remove, rename and re-add topics, segments and properties; change types and defaults; prune on
and off; the CSV seed list replaced; export -> edit) interleaved with the contacts' own actions
(unsubscribe, opt out of a topic, opt back in, sign up), against the emulator in-process under
both profiles. After every apply it asserts:

- consent: no contact whose own last action was to leave (unsubscribe, opt out of a topic,
  followed by the topic across renames) is subscribed or opted in;
- data: no property value, segment member, explicit subscription or object id that was live
  before the apply is gone after it without a plan line that drops it, and the counts on the
  plan lines (``Change.loses``) cover what was dropped;
- safety: apply refuses without --force exactly when a property change loses values.

The sequences that rest on issue-23a's consent valve (prune deleting an unsubscribed contact
then the files re-adding it, a topic's default changed or the topic deleted and re-added, a
sign-up racing a bulk import, a contact opting out between plan and apply) are the ``FULL``
rules; before the valve they found breaches within a few examples (``FULL = False`` leaves them
out). Bounded: 4 examples of 16 steps per profile, failures reported unshrunk.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from resend_iac import config
from resend_iac.cli.target import LOCAL_URL
from resend_iac.client import EVERY_CONTACT, ResendClient, read_live
from resend_iac.config.dump import dump_yaml
from resend_iac.config.export import managed_view
from resend_iac.emulator import create_app
from resend_iac.engine import SafetyError, check_safety
from resend_iac.engine import apply as engine_apply
from resend_iac.engine.live import plan_live, read_everything
from resend_iac.model import State

EMAILS = ["ann@x.io", "bob@x.io", "cy@x.io", "dee@x.io", "eve@x.io", "fay@x.io"]
TOPICS = ["t1", "t2", "t3"]
SEGMENTS = ["s1", "s2", "s3"]
PROPERTIES = ["p1", "p2"]
VALUES = {"string": ["10", "x"], "number": [10, 20]}
SETTINGS = settings(
    max_examples=4,
    stateful_step_count=16,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure is reported unshrunk: bounded time
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class RacingTransport(httpx.AsyncBaseTransport):
    """The emulator in-process; a sign-up scheduled with ``race`` happens just before the
    apply's bulk import reaches the API (the import then finds the contact existing)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.pending: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.pending and request.method == "POST" and request.url.path == "/contacts/imports":
            for body in self.pending:
                signup = httpx.Request(
                    "POST", f"{LOCAL_URL}/contacts", json=body, headers={"Authorization": "Bearer re_local"}
                )
                response = await self.inner.handle_async_request(signup)
                await response.aread()
            self.pending = []
        return await self.inner.handle_async_request(request)


PEOPLE = st.lists(
    st.tuples(
        # leaving is what the test is about: twice as likely as coming back
        st.sampled_from(["unsubscribe", "opt_out", "opt_out", "rejoin", "opt_in", "unsubscribe"]),
        st.integers(0, 9),
        st.integers(0, 9),
    ),
    max_size=2,
)


def edit(**strategies: Any) -> Any:
    """A rule that is a reviewed edit of the files: some contacts act first (``people``), then
    the edit is merged and applied."""

    def decorate(fn: Any) -> Any:
        def run(self: "ConsentMachine", people: list[tuple[str, int, int]], **kwargs: Any) -> None:
            self.people_act(people)
            fn(self, **kwargs)
            self.apply()

        run.__name__ = fn.__name__
        return rule(**strategies, people=PEOPLE)(run)

    return decorate


class ConsentMachine(RuleBasedStateMachine):
    PROFILE = "benign"
    FULL = False  # True: also the sequences that rest on issue-23a's valve

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.transport = RacingTransport(create_app(":memory:", rate_limit=0, unknowns=self.PROFILE))
        self.client = ResendClient("re_local", LOCAL_URL, transport=self.transport, rate_limit=None)
        self.dir = Path(tempfile.mkdtemp(prefix="consent-model-"))
        # the files, as a person edits them
        self.topics: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Any]] = {}
        self.declared: dict[str, dict[str, Any]] = {}  # email -> YAML contact entry
        self.csv: list[str] = []  # emails of the CSV seed list
        self.csv_shared: dict[str, Any] = {}
        self.policy: dict[str, bool] = {}
        # the contacts' own last actions: True = left
        self.left: dict[str, bool] = {}  # unsubscribed
        self.left_topic: dict[tuple[str, str], bool] = {}  # (email, topic name)
        self.between: tuple[str, str] | None = None  # an opt-out between plan and apply
        self.applies = 0

    def teardown(self) -> None:
        self.run(self.client.aclose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    # ------------------------------------------------------------------ the files

    def write_files(self) -> Path:
        contacts = [dict(c) for c in self.declared.values()]
        if self.csv:
            (self.dir / "list.csv").write_text("email\n" + "".join(f"{e}\n" for e in self.csv))
            contacts.append({"csv": "list.csv", **self.csv_shared})
        doc = {
            "version": 1,
            "properties": self.properties,
            "segments": self.segments,
            "topics": self.topics,
            "contacts": contacts,
            "policy": self.policy,
        }
        path = self.dir / "team.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=True))
        return path

    def entries(self) -> list[dict[str, Any]]:
        return [*self.declared.values(), *([self.csv_shared] if self.csv else [])]

    def forget_refs(self, section: str, name: str) -> None:
        for entry in self.entries():
            if section == "topics":
                entry.get("topics", {}).pop(name, None)
            elif section == "segments" and name in entry.get("segments", []):
                entry["segments"] = [s for s in entry["segments"] if s != name]
            elif section == "properties":
                entry.get("properties", {}).pop(name, None)

    def rename_refs(self, section: str, old: str, new: str) -> None:
        for entry in self.entries():
            if section == "topics" and old in entry.get("topics", {}):
                entry["topics"][new] = entry["topics"].pop(old)
            elif section == "segments" and old in entry.get("segments", []):
                entry["segments"] = [new if s == old else s for s in entry["segments"]]

    @initialize(
        topics=st.lists(st.sampled_from(TOPICS), unique=True, max_size=2),
        segments=st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=2),
        ptype=st.sampled_from(["string", "number"]),
        emails=st.lists(st.sampled_from(EMAILS), unique=True, min_size=2, max_size=4),
        data=st.data(),
    )
    def start(self, topics, segments, ptype, emails, data):
        for t in topics:
            self.topics[t] = {"default_subscription": "opt_in"}
        for s in segments:
            self.segments[s] = {"membership": "authoritative"}
        self.properties["p1"] = {"type": ptype}
        for email in emails:
            self._declare(email, data)
        self.apply()

    @edit(name=st.sampled_from(TOPICS), default=st.sampled_from(["opt_in", "opt_out"]))
    def add_topic(self, name, default):
        if name not in self.topics:
            self.topics[name] = {"default_subscription": default}

    @edit(data=st.data())
    def remove_topic(self, data):
        if self.topics:
            name = data.draw(st.sampled_from(sorted(self.topics)))
            del self.topics[name]
            self.forget_refs("topics", name)

    @edit(data=st.data())
    def rename_topic(self, data):
        free = [t for t in TOPICS if t not in self.topics]
        if self.topics and free:
            old = data.draw(st.sampled_from(sorted(self.topics)))
            new = data.draw(st.sampled_from(free))
            self._rename("topics", self.topics, old, new)

    @precondition(lambda self: self.FULL)
    @edit(data=st.data())
    def change_default(self, data):  # a topic replaced: needs issue-23a (item 2)
        if self.topics:
            name = data.draw(st.sampled_from(sorted(self.topics)))
            spec = self.topics[name]
            spec["default_subscription"] = "opt_out" if spec["default_subscription"] == "opt_in" else "opt_in"

    @edit(name=st.sampled_from(SEGMENTS), membership=st.sampled_from(["authoritative", "additive"]))
    def add_segment(self, name, membership):
        if name not in self.segments:
            self.segments[name] = {"membership": membership}

    @edit(data=st.data())
    def remove_segment(self, data):
        if self.segments:
            name = data.draw(st.sampled_from(sorted(self.segments)))
            del self.segments[name]
            self.forget_refs("segments", name)

    @edit(data=st.data())
    def rename_segment(self, data):
        free = [s for s in SEGMENTS if s not in self.segments]
        if self.segments and free:
            old = data.draw(st.sampled_from(sorted(self.segments)))
            self._rename("segments", self.segments, old, data.draw(st.sampled_from(free)))

    def _rename(self, section: str, specs: dict[str, Any], old: str, new: str) -> None:
        for spec in specs.values():  # one live object is renamed to one name
            if spec.get("renamed_from") == old:
                del spec["renamed_from"]
        specs[new] = {**specs.pop(old), "renamed_from": old}
        self.rename_refs(section, old, new)

    @edit(data=st.data())
    def toggle_membership(self, data):
        if self.segments:
            spec = self.segments[data.draw(st.sampled_from(sorted(self.segments)))]
            spec["membership"] = "additive" if spec["membership"] == "authoritative" else "authoritative"

    @edit(key=st.sampled_from(PROPERTIES), ptype=st.sampled_from(["string", "number"]))
    def add_property(self, key, ptype):
        if key not in self.properties:
            self.properties[key] = {"type": ptype}

    @edit(data=st.data())
    def remove_property(self, data):
        if self.properties:
            key = data.draw(st.sampled_from(sorted(self.properties)))
            del self.properties[key]
            self.forget_refs("properties", key)

    @edit(data=st.data())
    def change_type(self, data):
        """A property's type changes; the person converts the values the files declare."""
        if self.properties:
            key = data.draw(st.sampled_from(sorted(self.properties)))
            new = "number" if self.properties[key]["type"] == "string" else "string"
            self.properties[key] = {"type": new}
            for entry in self.entries():
                values = entry.get("properties", {})
                if key in values:
                    v = values[key]
                    if new == "string":
                        values[key] = str(v)
                    elif isinstance(v, str) and v.isdigit():
                        values[key] = int(v)
                    else:
                        del values[key]

    @edit(emails=st.lists(st.sampled_from(EMAILS), unique=True, min_size=1, max_size=3), data=st.data())
    def declare_contacts(self, emails, data):
        for email in emails:
            self._declare(email, data)

    def _declare(self, email: str, data: Any) -> None:
        if email in self.csv:
            return
        entry: dict[str, Any] = {"email": email}
        segs = data.draw(st.lists(st.sampled_from(sorted(self.segments) or ["-"]), unique=True, max_size=2))
        if self.segments and segs:
            entry["segments"] = segs
        topics = {  # mostly opt_in: what a person who left must be protected from
            t: data.draw(st.sampled_from(["opt_in", "opt_in", "opt_out"]))
            for t in sorted(self.topics)
            if data.draw(st.integers(0, 3))
        }
        if topics:
            entry["topics"] = topics
        values = {
            k: data.draw(st.sampled_from(VALUES[p["type"]]))
            for k, p in sorted(self.properties.items())
            if data.draw(st.booleans())
        }
        if values:
            entry["properties"] = values
        if data.draw(st.booleans()):
            entry["unsubscribed"] = False  # a file saying "subscribed": the valve must hold
        self.declared[email] = entry

    @edit(email=st.sampled_from(EMAILS))
    def undeclare_contact(self, email):
        self.declared.pop(email, None)

    @edit(
        segments=st.booleans(),
        topics=st.booleans(),
        properties=st.booleans(),
        contacts=st.booleans(),
    )
    def set_prune(self, segments, topics, properties, contacts):
        # Without issue-23a: a pruned topic re-added, or a pruned unsubscribed contact re-added,
        # forgets the choices (items 1 and 3); those run in the FULL machines.
        self.policy = {
            "prune_segments": segments,
            "prune_properties": properties,
            "prune_topics": topics and self.FULL,
            "prune_contacts": contacts and self.FULL,
        }

    @edit(data=st.data())
    def replace_csv(self, data):
        """The CSV seed list replaced by a new one (4+ rows with the same segments and topics
        go through one bulk import)."""
        free = [e for e in EMAILS if e not in self.declared]
        self.csv = data.draw(st.lists(st.sampled_from(free), unique=True)) if free else []
        shared: dict[str, Any] = {}
        segs = [s for s in sorted(self.segments) if data.draw(st.booleans())]
        if segs:
            shared["segments"] = segs
        topics = {  # mostly opt_in: what a person who left must be protected from
            t: data.draw(st.sampled_from(["opt_in", "opt_in", "opt_out"]))
            for t in sorted(self.topics)
            if data.draw(st.integers(0, 3))
        }
        if topics:
            shared["topics"] = topics
        self.csv_shared = shared

    @edit(email=st.sampled_from(EMAILS))
    def export_then_edit(self, email):
        """The live team exported (as a person would manage it) replaces the files; then one
        edit: a contact added."""

        async def export() -> str:
            state = await read_everything(self.client)
            view, notes = managed_view(state)
            return dump_yaml(view, notes)

        data = yaml.safe_load(self.run(export()))
        self.properties = data.get("properties") or {}
        self.segments = data.get("segments") or {}
        self.topics = data.get("topics") or {}
        self.declared = {c["email"]: c for c in data.get("contacts") or []}
        self.csv, self.csv_shared, self.policy = [], {}, {}
        self.declared.setdefault(email, {"email": email})

    # ------------------------------------------------------------------ the contacts

    async def _live_contact(self, email: str) -> dict[str, Any] | None:
        try:
            return await self.client.get_contact(email)
        except Exception:
            return None

    async def _topic_id(self, name: str) -> str | None:
        return next((t["id"] for t in await self.client.list_topics() if t["name"] == name), None)

    def people_act(self, actions: list[tuple[str, int, int]]) -> None:
        """Contacts act on their own (straight to the API): the choices picked by index among
        the live contacts and topics."""
        if not actions:
            return
        emails, topics = (
            self.live_emails(),
            sorted(self.run(self.client.list_topics()), key=lambda t: t["name"]),
        )
        for what, i, j in actions:
            if not emails:
                return
            email = emails[i % len(emails)]
            if what in ("unsubscribe", "rejoin"):
                self.run(self.client.update_contact(email, {"unsubscribed": what == "unsubscribe"}))
                self.left[email] = what == "unsubscribe"
            elif topics:
                topic = topics[j % len(topics)]
                sub = "opt_out" if what == "opt_out" else "opt_in"
                self.run(self.client.update_contact_topics(email, [{"id": topic["id"], "subscription": sub}]))
                self.left_topic[(email, topic["name"])] = what == "opt_out"

    def live_emails(self) -> list[str]:
        return sorted(c["email"] for c in self.run(self.client.list_contacts()))

    @rule(data=st.data(), leave=st.booleans())
    def person_unsubscribes_or_rejoins(self, data, leave):
        emails = self.live_emails()
        if emails:
            email = data.draw(st.sampled_from(emails))
            self.run(self.client.update_contact(email, {"unsubscribed": leave}))
            self.left[email] = leave

    @rule(data=st.data(), leave=st.booleans())
    def person_opts_out_or_in(self, data, leave):
        emails, topics = self.live_emails(), self.run(self.client.list_topics())
        if emails and topics:
            email = data.draw(st.sampled_from(emails))
            topic = data.draw(st.sampled_from(sorted(topics, key=lambda t: t["name"])))
            sub = "opt_out" if leave else "opt_in"
            self.run(self.client.update_contact_topics(email, [{"id": topic["id"], "subscription": sub}]))
            self.left_topic[(email, topic["name"])] = leave

    @rule(email=st.sampled_from(EMAILS), unsubscribed=st.booleans())
    def person_signs_up(self, email, unsubscribed):
        async def act() -> None:
            if await self._live_contact(email) is None:
                await self.client.create_contact({"email": email, "unsubscribed": unsubscribed})
                self.left[email] = unsubscribed

        self.run(act())

    @precondition(lambda self: self.FULL)
    @rule(data=st.data())
    def sign_up_races_the_import(self, data):  # item 4: needs issue-23a
        if self.csv:
            email = data.draw(st.sampled_from(self.csv))
            self.transport.pending = [{"email": email, "unsubscribed": True}]

    @precondition(lambda self: self.FULL)
    @rule(email=st.sampled_from(EMAILS), topic=st.sampled_from(TOPICS))
    def opt_out_between_plan_and_apply(self, email, topic):  # item 5: needs issue-23a
        self.between = (email, topic)

    # ------------------------------------------------------------------ apply

    async def _everything(self) -> State:
        return await read_live(self.client, property_emails=EVERY_CONTACT, topic_emails=EVERY_CONTACT)

    @rule()
    def apply(self):
        path = self.write_files()
        desired = config.load([path], allow_outside=[self.dir])

        excused: set[tuple[str, str]] = set()

        async def go() -> tuple[Any, State, State]:
            before = await self._everything()
            plan, live = await plan_live(self.client, desired)
            lost_values = any(
                c.kind == "property" and ((c.loses or {}).get("values") or (c.loses or {}).get("unread"))
                for c in plan.changes
            )
            try:
                check_safety(plan, desired.policy)
                refused = False
            except SafetyError:
                refused = True
            assert refused == lost_values, (refused, plan.changes)
            if self.between is not None:
                email, topic = self.between
                self.between = None
                tid = await self._topic_id(topic)
                if tid is not None and await self._live_contact(email) is not None:
                    await self.client.update_contact_topics(email, [{"id": tid, "subscription": "opt_out"}])
                    self.left_topic[(email, topic)] = True
                    excused.add((email, topic))  # the contact's own change, not the plan's
            await engine_apply(plan, self.client, live=live)
            after = await self._everything()
            return plan, before, after

        signups = [b["email"] for b in self.transport.pending]
        plan, before, after = self.run(go())
        if not self.transport.pending:  # the race happened (an import was posted)
            for email in signups:
                self.left[email] = True
        else:  # no import in this apply: the sign-up comes now, before the next one
            body, self.transport.pending = self.transport.pending[0], []
            if self.run(self._live_contact(body["email"])) is None:
                self.run(self.client.create_contact(body))
                self.left[body["email"]] = True
        self.follow_renames(plan)
        self.applies += 1
        check_consent(self, after)
        check_nothing_dropped_silently(plan, before, after, excused)

    def follow_renames(self, plan: Any) -> None:
        """A topic renamed in place keeps its subscriptions: the contacts' choices follow it."""
        for c in plan.changes:
            if c.kind == "topic" and c.action == "update" and "name" in (c.after or {}):
                old, new = c.before["name"], c.after["name"]
                for (email, name), left in list(self.left_topic.items()):
                    if name == old:
                        del self.left_topic[(email, name)]
                        self.left_topic[(email, new)] = left

    @invariant()
    def files_stay_valid(self):
        # every edit above keeps the files loadable (else the sequence tests nothing)
        if self.applies:
            config.load([self.write_files()], allow_outside=[self.dir])


def check_consent(machine: ConsentMachine, after: State) -> None:
    for email, left in machine.left.items():
        live = after.contacts.get(email)
        if left and live is not None:
            assert live.unsubscribed is True, f"{email} unsubscribed, and is subscribed again"
    for (email, name), left in machine.left_topic.items():
        live, topic = after.contacts.get(email), after.topics.get(name)
        if left and live is not None and topic is not None:
            effective = live.topics.get(name) or topic.default_subscription
            assert effective == "opt_out", f"{email} opted out of {name!r}, and is opted in again"


def check_nothing_dropped_silently(
    plan: Any, before: State, after: State, excused: set[tuple[str, str]] = frozenset()
) -> None:
    """``excused``: (email, topic) subscriptions the contacts changed themselves meanwhile."""
    by_id = {c.id: c for c in plan.changes if c.id and c.kind in ("property", "segment", "topic", "contact")}
    # ids: an object gone is deleted or replaced by a plan line
    for kind, objects, now in (
        ("property", before.properties, after.properties),
        ("segment", before.segments, after.segments),
        ("topic", before.topics, after.topics),
        ("contact", before.contacts, after.contacts),
    ):
        ids_now = {o.id for o in now.values()}
        for obj in objects.values():
            if obj.id not in ids_now:
                change = by_id.get(obj.id)
                assert change is not None and change.action in ("delete", "replace"), (
                    f"{kind} {obj.id} dropped silently"
                )
    contacts_now = {c.id: c for c in after.contacts.values()}
    seg_ids = {s.name: s.id for s in before.segments.values()}
    seg_now = {s.id: s.name for s in after.segments.values()}
    topic_ids = {t.name: t.id for t in before.topics.values()}
    topic_now = {t.id: t.name for t in after.topics.values()}
    removed = {(c.key, c.parent) for c in plan.changes if c.kind == "membership" and c.action == "delete"}
    values_written = {
        c.key: set((c.after or {}).get("properties", {}))
        for c in plan.changes
        if c.kind == "contact" and c.action == "update"
    }
    subscriptions_written = {c.key for c in plan.changes if c.kind == "subscription"}
    lost_members: dict[str, int] = {}
    lost_values: dict[str, int] = {}
    lost_subs: dict[str, int] = {}
    for key, c in before.contacts.items():
        now = contacts_now.get(c.id)
        if now is None:
            continue  # deleted by a plan line (checked above)
        for seg in c.segments:
            sid = seg_ids[seg]
            if sid in seg_now and seg_now[sid] not in now.segments:
                assert (key, seg_now[sid]) in removed, f"{key} left segment {seg!r} without a plan line"
            elif sid not in seg_now:
                lost_members[sid] = lost_members.get(sid, 0) + 1
        for pk, value in (c.properties or {}).items():
            if value is None or (now.properties or {}).get(pk) == value:
                continue
            if pk in values_written.get(key, ()):
                continue
            pid = before.properties[pk].id
            assert pid in by_id, f"{key}'s value of {pk!r} dropped without a plan line"
            lost_values[pid] = lost_values.get(pid, 0) + 1
        for name, sub in (c.topics or {}).items():
            tid = topic_ids[name]
            if tid in topic_now and (now.topics or {}).get(topic_now[tid]) == sub:
                continue
            if tid not in topic_now and name in after.topics and (now.topics or {}).get(name) == sub:
                continue  # replaced (a new id), the subscription carried over
            if key in subscriptions_written or (key, name) in excused:
                continue
            assert tid in by_id, f"{key}'s subscription to {name!r} dropped without a plan line"
            lost_subs[tid] = lost_subs.get(tid, 0) + 1
    for ident, n in lost_members.items():
        assert (by_id[ident].loses or {}).get("members", 0) >= n, by_id[ident]
    for ident, n in lost_values.items():
        loses = by_id[ident].loses or {}
        assert loses.get("values", 0) + loses.get("unread", 0) >= n, (by_id[ident], n)
    for ident, n in lost_subs.items():
        assert (by_id[ident].loses or {}).get("subscriptions", 0) >= n, (by_id[ident], n)


def _machine(profile: str, full: bool) -> type[ConsentMachine]:
    return type(
        f"ConsentMachine_{profile}_{'full' if full else 'now'}",
        (ConsentMachine,),
        {"PROFILE": profile, "FULL": full},
    )


@pytest.mark.parametrize("profile", ["benign", "hostile"])
def test_consent_and_data_across_edits(profile):
    machine = _machine(profile, full=True)
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()
