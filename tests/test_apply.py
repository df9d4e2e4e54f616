"""apply() against the in-process emulator: every change kind, both membership modes, pruning,
replacements, the bulk import path, and interrupted applies that the next run completes."""

from __future__ import annotations

import asyncio
import copy

import pytest
from flaky_transport import FlakyTransport

from resend_iac.cli.target import client_for_app
from resend_iac.client import ResendClient, read_live
from resend_iac.emulator import create_app
from resend_iac.engine import ApplyError, diff, read_scope
from resend_iac.engine import apply as engine_apply
from resend_iac.engine.live import plan_live
from resend_iac.model import Contact, Policy, Property, Segment, State, Topic

pytestmark = pytest.mark.anyio  # (explicit: the conftest hook's marker misses parametrised fixtures)


def state(properties=(), segments=(), topics=(), contacts=(), policy=None) -> State:
    s = State(policy=policy or Policy())
    for p in properties:
        s.properties[p.key] = p
    for g in segments:
        s.segments[g.name] = g
    for t in topics:
        s.topics[t.name] = t
    for c in contacts:
        s.add_contact(c)
    return s


async def read(client, desired: State) -> State:
    p, t = read_scope(desired)
    return await read_live(client, property_emails=p, topic_emails=t)


async def plan_and_apply(client, desired: State, **kw):
    plan, live = await plan_live(client, desired, **kw)  # reads what the consent rules need too
    result = await engine_apply(plan, client, live=live)
    return plan, result


async def assert_converged(client, desired: State, **kw) -> None:
    plan, _ = await plan_live(client, desired, **kw)
    assert plan.empty, [(c.action, c.kind, c.key, c.before, c.after) for c in plan.changes]


@pytest.fixture(params=["benign", "hostile"])
def app(request):
    """Every test runs against both emulator profiles (docs/emulator.md)."""
    return create_app(":memory:", rate_limit=0, unknowns=request.param)


@pytest.fixture
async def client(app):
    async with client_for_app(app) as c:
        yield c


BASE = dict(
    properties=[Property("company", "string", "n/a"), Property("tier", "number")],
    segments=[Segment("customers"), Segment("news", membership="additive")],
    topics=[Topic("updates", "opt_in", "Product news", "public"), Topic("billing", "opt_out")],
)


def base_contacts():
    return [
        Contact(
            "Ada@Example.com",
            "Ada",
            "Lovelace",
            False,
            {"company": "AE", "tier": 3},
            {"customers", "news"},
            {"updates": "opt_out", "billing": "opt_in"},
        ),
        Contact("grace@example.com", "Grace", None, False, {"tier": 2}, {"customers"}, {}),
        Contact("linus@example.com", segments={"news"}),
    ]


async def test_creates_of_every_kind_then_a_fresh_plan_is_empty(client):
    desired = state(**BASE, contacts=base_contacts())
    plan, result = await plan_and_apply(client, desired)
    assert result.created == len(plan.changes) == 2 + 2 + 2 + 3
    await assert_converged(client, desired)
    live = await read_live(client, property_emails=["ada@example.com"], topic_emails=["ada@example.com"])
    ada = live.contacts["ada@example.com"]
    assert ada.email == "Ada@Example.com"  # created with the spelling the file gives
    assert ada.properties["company"] == "AE" and ada.segments == {"customers", "news"}
    assert ada.topics == {"updates": "opt_out", "billing": "opt_in"}
    assert live.topics["updates"].visibility == "public"


async def test_updates_replacements_memberships_subscriptions_and_prune(client):
    await plan_and_apply(
        client, state(**BASE, contacts=base_contacts() + [Contact("old@example.com", segments={"customers"})])
    )
    live_before = await read_live(client)
    # a contact nobody declares, in both segments
    await client.create_contact(
        {
            "email": "walkin@example.com",
            "segments": [
                {"id": live_before.segments["customers"].id},
                {"id": live_before.segments["news"].id},
            ],
        }
    )
    contacts = base_contacts()
    contacts[0].last_name = "King"  # update
    contacts[0].properties = {"company": "Analytical", "tier": "3"}
    contacts[0].segments = {"news"}  # removed from customers
    contacts[0].topics = {"updates": "opt_in", "billing": "opt_out"}  # opt_out -> opt_in is guarded
    contacts[1].segments = {"customers", "news"}  # added to news
    contacts[2].first_name = "Linus"
    desired = state(
        properties=[Property("company", "string", "none"), Property("tier", "string")],  # update, replace
        segments=[Segment("customers"), Segment("news", membership="additive"), Segment("vip")],
        topics=[
            Topic("updates", "opt_in", "Monthly news", "public"),
            Topic("billing", "opt_in"),
        ],  # update, replace
        contacts=contacts,
        policy=Policy(prune_contacts=True, prune_properties=True),
    )
    contacts[1].properties = {"tier": "gold"}
    plan, result = await plan_and_apply(client, desired, allow_resubscribe=True)
    got = {(c.kind, c.action) for c in plan.changes}
    assert {
        ("property", "update"),
        ("property", "replace"),
        ("topic", "update"),
        ("topic", "replace"),
        ("segment", "create"),
        ("contact", "update"),
        ("contact", "delete"),
        ("membership", "create"),
        ("membership", "delete"),
        ("subscription", "update"),
    } <= got
    deleted = {c.key for c in plan.changes if c.kind == "contact" and c.action == "delete"}
    assert deleted == {"old@example.com", "walkin@example.com"}
    await assert_converged(client, desired)
    live = await read_live(client, property_emails=["grace@example.com"])
    assert live.properties["tier"].type == "string"
    assert live.contacts["grace@example.com"].properties["tier"] == "gold"
    assert live.contacts["ada@example.com"].segments == {"news"}
    assert set(live.contacts) == {"ada@example.com", "grace@example.com", "linus@example.com"}


async def test_authoritative_removes_undeclared_members_additive_keeps_them(client):
    desired = state(**BASE, contacts=base_contacts())
    await plan_and_apply(client, desired)
    live = await read_live(client)
    await client.create_contact(
        {
            "email": "walkin@example.com",
            "segments": [{"id": live.segments["customers"].id}, {"id": live.segments["news"].id}],
        }
    )
    plan, _ = await plan_and_apply(client, desired)
    assert [(c.kind, c.action, c.key, c.parent) for c in plan.changes] == [
        ("membership", "delete", "walkin@example.com", "customers")
    ]
    live = await read_live(client)
    assert live.contacts["walkin@example.com"].segments == {"news"}  # contact itself left alone


async def test_resubscribe_guard_and_override(client):
    await client.create_contact({"email": "gone@example.com", "unsubscribed": True})
    desired = state(contacts=[Contact("gone@example.com", unsubscribed=False, first_name="G")])
    plan, _ = await plan_and_apply(client, desired)
    assert [(c.kind, c.after) for c in plan.changes] == [("contact", {"first_name": "G"})]
    assert plan.warnings and "--allow-resubscribe" in plan.warnings[0]
    live = await read_live(client)
    assert live.contacts["gone@example.com"].unsubscribed is True
    await plan_and_apply(client, desired, allow_resubscribe=True)
    assert (await read_live(client)).contacts["gone@example.com"].unsubscribed is False


async def test_prune_segments_topics_properties_only_when_asked(client):
    await plan_and_apply(client, state(**BASE))
    assert (await plan_and_apply(client, state()))[0].empty
    policy = Policy(prune_segments=True, prune_topics=True, prune_properties=True)
    plan, result = await plan_and_apply(client, state(policy=policy))
    assert result.deleted == 6
    live = await read_live(client)
    assert not live.segments and not live.topics and not live.properties


async def test_many_new_contacts_go_through_one_import_per_group(app, client):
    contacts = [
        Contact(
            f"user{i}@example.com",
            f"U{i}",
            None,
            False,
            {"tier": i},
            {"customers", "news"},
            {"updates": "opt_in"},
        )
        for i in range(40)
    ]
    contacts += [Contact(f"solo{i}@example.com", segments={"customers"}) for i in range(2)]
    desired = state(**BASE, contacts=contacts)
    live = await read(client, desired)
    plan = diff(desired, live)
    sent0 = client.requests_sent
    result = await engine_apply(plan, client, live=live)
    assert result.imported == 40 and result.retried == 0 and result.created == len(plan.changes)
    # 6 definitions + 1 import + polls + 1 list page + 2 single creates: far fewer than 42
    assert client.requests_sent - sent0 < 25
    await assert_converged(client, desired)


@pytest.mark.anyio
@pytest.mark.parametrize("big_team", [False, True])  # verified by one list read / by GETs
async def test_rows_the_import_missed_are_created_one_by_one(client, monkeypatch, big_team):
    desired = state(**BASE, contacts=[Contact(f"u{i}@example.com", segments={"customers"}) for i in range(6)])
    real = client.create_import

    async def lossy(csv_bytes, column_map, **kw):  # the import "loses" two rows
        lines = csv_bytes.decode().splitlines()
        return await real(("\n".join(lines[:-2]) + "\n").encode(), column_map, **kw)

    monkeypatch.setattr(client, "create_import", lossy)
    live = await read(client, desired)
    plan = diff(desired, live)
    if big_team:
        plan.live_counts["contact"] = 50_000
    result = await engine_apply(plan, client, live=live)
    assert (result.imported, result.retried) == (4, 2)
    await assert_converged(client, desired)


@pytest.mark.anyio
@pytest.mark.parametrize("budget,lost", [(3, False), (5, False), (9, True), (11, True)])
async def test_an_interrupted_apply_is_completed_by_the_next_with_no_duplicates(app, client, budget, lost):
    many = [
        Contact(f"bulk{i}@example.com", segments={"news"}, topics={"billing": "opt_in"}) for i in range(10)
    ]
    desired = state(**BASE, contacts=base_contacts() + many)
    live = await read(client, desired)
    full = diff(desired, live)

    async with ResendClient(
        "re_x", "http://emulator", transport=FlakyTransport(app, budget, lost), rate_limit=None, max_retries=0
    ) as broken:
        with pytest.raises((ApplyError, Exception)):
            await engine_apply(copy.deepcopy(full), broken)
    rest = diff(desired, await read(client, desired))
    assert 0 < len(rest.changes) < len(full.changes)  # some of it was done, not all
    await engine_apply(rest, client)
    await assert_converged(client, desired)
    emails = [c["email"].lower() for c in await client.list_contacts()]
    assert len(emails) == len(set(emails)) == len(desired.contacts)


async def test_a_failing_request_stops_before_the_next_phase(client):
    desired = state(segments=[Segment("s")], contacts=[Contact("a@example.com", segments={"s"})])
    live = await read(client, desired)
    plan = diff(desired, live)
    plan.changes.insert(0, copy.deepcopy(plan.changes[0]))
    plan.changes[0].kind, plan.changes[0].key, plan.changes[0].after = (
        "property",
        "bad key!",
        {"key": "bad key!", "type": "string"},
    )
    with pytest.raises(ApplyError) as e:
        await engine_apply(plan, client)
    assert "bad key!" in str(e.value) and "plan again" in str(e.value)
    assert not (await read_live(client)).contacts  # phase 2 never ran


async def test_concurrent_applies_of_the_same_plan_do_not_duplicate(app):
    desired = state(**BASE, contacts=base_contacts())
    async with client_for_app(app) as a, client_for_app(app) as b:
        live = await read(a, desired)
        plan = diff(desired, live)
        await asyncio.gather(
            engine_apply(copy.deepcopy(plan), a), engine_apply(copy.deepcopy(plan), b), return_exceptions=True
        )
        emails = [c["email"].lower() for c in await a.list_contacts()]
        assert len(emails) == len(set(emails))


async def test_import_rows_with_missing_and_mixed_values_converge(client):
    contacts = [
        Contact(
            "m1@example.com",
            first_name="Ann",
            properties={"tier": 7.5, "company": None},
            segments={"customers"},
        ),
        Contact(
            "m2@example.com", first_name=None, last_name="Lee", properties={"tier": 2}, segments={"customers"}
        ),
        Contact(
            "m3@example.com",
            unsubscribed=True,
            properties={"company": 'Acme, Inc. "quoted"'},
            segments={"customers"},
        ),
        Contact("m4@example.com", segments={"customers"}),
        Contact("m5@example.com", first_name="", unsubscribed=False, segments={"customers"}),
    ]
    desired = state(**BASE, contacts=contacts)
    plan, result = await plan_and_apply(client, desired)
    assert result.imported == 5
    await assert_converged(client, desired)
    live = await read_live(client, property_emails=["m3@example.com", "m1@example.com"])
    assert live.contacts["m3@example.com"].properties["company"] == 'Acme, Inc. "quoted"'
    assert live.contacts["m3@example.com"].unsubscribed is True
    assert live.contacts["m1@example.com"].properties.get("tier") == 7.5


async def test_protected_contacts_survive_prune(client):
    await plan_and_apply(client, state(contacts=[Contact("keep@example.com"), Contact("drop@example.com")]))
    desired = state(contacts=[Contact("keep@example.com", protect=True)], policy=Policy(prune_contacts=True))
    plan, result = await plan_and_apply(client, desired)
    assert [(c.action, c.key) for c in plan.changes] == [("delete", "drop@example.com")]
    assert set((await read_live(client)).contacts) == {"keep@example.com"}


async def test_import_upsert_never_resubscribes_a_contact_created_meanwhile(client):
    desired = state(
        contacts=[Contact(f"r{i}@example.com", first_name="R", unsubscribed=False) for i in range(5)]
    )
    live = await read(client, desired)
    plan = diff(desired, live)
    # someone signs up and unsubscribes between plan and apply
    await client.create_contact({"email": "r0@example.com", "unsubscribed": True})
    result = await engine_apply(plan, client, live=live)
    assert result.imported == 5
    after = await read_live(client)
    assert after.contacts["r0@example.com"].unsubscribed is True
    assert after.contacts["r0@example.com"].first_name == "R"
    assert after.contacts["r1@example.com"].unsubscribed is False


async def test_a_small_import_into_a_big_team_is_verified_per_contact(client, monkeypatch):
    desired = state(contacts=[Contact(f"v{i}@example.com") for i in range(5)])
    live = await read(client, desired)
    plan = diff(desired, live)
    listed = []
    real_list = client.list_contacts

    async def spy():
        listed.append(1)
        return await real_list()

    monkeypatch.setattr(client, "list_contacts", spy)
    plan.live_counts["contact"] = 20_000  # a list read back would cost 200 pages, 5 GETs do
    result = await engine_apply(plan, client, live=live)
    assert result.imported == 5 and not listed
    plan2 = diff(desired, live)  # same plan on a small (empty) team: one list read instead
    async with client_for_app(create_app(":memory:", rate_limit=0)) as fresh:
        real_fresh = fresh.list_contacts

        async def spy_fresh():
            listed.append(1)
            return await real_fresh()

        monkeypatch.setattr(fresh, "list_contacts", spy_fresh)
        await engine_apply(plan2, fresh)
    assert listed == [1]


async def test_a_failed_import_falls_back_to_one_by_one(client, monkeypatch):
    from resend_iac.client import ResendAPIError

    async def broken(*a, **kw):
        raise ResendAPIError(500, "application_error", "import queue down")

    monkeypatch.setattr(client, "create_import", broken)
    desired = state(contacts=[Contact(f"f{i}@example.com", first_name="F") for i in range(5)])
    plan, result = await plan_and_apply(client, desired)
    assert (result.imported, result.retried, result.created) == (0, 5, 5)
    await assert_converged(client, desired)


async def test_import_opt_ins_read_then_write_per_created_row(client, monkeypatch):
    """Opt-ins that differ from the topic's default go per row after the import (an import's
    topics may reach rows it skips); even a row the import itself created is read right before
    its opt-in is written (#23: a sign-up may have opted out meanwhile): two requests a row."""
    n = 6
    desired = state(
        **BASE, contacts=[Contact(f"o{i}@example.com", topics={"billing": "opt_in"}) for i in range(n)]
    )
    calls = {"list": 0, "update": 0}
    real_list, real_update = client.list_contact_topics, client.update_contact_topics

    async def list_topics(ref):
        calls["list"] += 1
        return await real_list(ref)

    async def update_topics(ref, topics):
        calls["update"] += 1
        return await real_update(ref, topics)

    monkeypatch.setattr(client, "list_contact_topics", list_topics)
    monkeypatch.setattr(client, "update_contact_topics", update_topics)
    plan, result = await plan_and_apply(client, desired)
    assert result.imported == n
    assert calls == {"list": n, "update": n}
    await assert_converged(client, desired)
