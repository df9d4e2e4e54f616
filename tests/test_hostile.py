"""The engine against the hostile emulator profile and lagging lists (issue 11's done-when).

- Over HTTP, ``unknowns="hostile", list_lag=15`` (the lag skipped with
  ``POST /_emulator/advance``, never waited): declared contacts that already exist as
  unsubscribed and are hidden from the lagging lists are not resubscribed and not
  duplicated; more than 20 properties and topics are created once each; repeated applies
  converge to an empty plan; an out-of-band topic opt-out stays opted out; every list
  request sends ``limit``.
- In-process: interrupted applies under a lag, consent with and without
  ``allow_resubscribe`` on the "planned as new, found live" path, contacts whose emails
  differ only by case.
"""

from __future__ import annotations

import copy

import httpx
import pytest
from flaky_transport import FlakyTransport

from resend_iac.cli.target import client_for_app
from resend_iac.client import ResendClient, read_live
from resend_iac.emulator import create_app
from resend_iac.engine import ApplyError, diff, read_scope
from resend_iac.engine import apply as engine_apply
from resend_iac.model import Contact, Policy, Property, Segment, State, Topic

pytestmark = pytest.mark.anyio

LIST_PATHS = ("/contacts", "/contact-properties", "/segments", "/topics", "/contacts/imports")


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


async def plan_apply(client, desired: State, *, allow_resubscribe: bool = False):
    p, t = read_scope(desired)
    live = await read_live(client, property_emails=p, topic_emails=t)
    plan = diff(desired, live, allow_resubscribe=allow_resubscribe)
    result = await engine_apply(plan, client, live=live, allow_resubscribe=allow_resubscribe)
    return plan, result


async def fresh_plan(client, desired: State):
    p, t = read_scope(desired)
    return diff(desired, await read_live(client, property_emails=p, topic_emails=t))


def is_list_request(request: httpx.Request) -> bool:
    path = request.url.path
    return request.method == "GET" and (
        path in LIST_PATHS or path.endswith(("/contacts", "/segments", "/topics"))
    )


# -- the done-when scenario, over HTTP ------------------------------------------------------


def declared() -> State:
    props = [Property(f"p{i:02d}", "string") for i in range(22)]
    topics = [Topic(f"topic{i:02d}", "opt_in") for i in range(22)]
    contacts = [
        Contact(
            f"bulk{i}@example.com",
            first_name=f"B{i}",
            unsubscribed=False,
            properties={"p00": "x"},
            segments={"members"},
            topics={"topic00": "opt_in"},
        )
        for i in range(6)
    ]  # one import group (and two of them exist already)
    contacts += [
        Contact(
            "solo@example.com",
            first_name="Solo",
            unsubscribed=False,
            segments={"members"},
            topics={"topic01": "opt_in"},
        ),
        Contact("Mixed@Example.com", first_name="Mixed", properties={"p01": "y"}),
    ]
    return state(
        properties=props,
        segments=[Segment("members")],
        topics=topics,
        contacts=contacts,
        policy=Policy(prune_contacts=True),
    )


async def test_done_when_hostile_lagging_api_over_http(start_emulator):
    server = start_emulator(db_path=":memory:", rate_limit=0, unknowns="hostile", list_lag=15)
    unlimited: list[str] = []

    async def spy(request: httpx.Request) -> None:
        if is_list_request(request) and "limit" not in request.url.params:
            unlimited.append(f"{request.method} {request.url.path}")

    desired = declared()
    async with ResendClient("re_test", server.url, rate_limit=None) as client:
        client._http.event_hooks["request"].append(spy)
        # Out of band, just now (so the lagging lists do not show them): three declared
        # contacts exist as unsubscribed, one of them in the spelling the files give.
        for email in ("bulk0@example.com", "bulk1@example.com", "Mixed@Example.com"):
            await client.create_contact({"email": email, "unsubscribed": True})
        assert await client.list_contacts() == []  # hidden by the lag...
        assert (await client.get_contact("bulk0@example.com"))["unsubscribed"] is True  # ...not by GET

        plan, result = await plan_apply(client, desired)
        assert plan.counts()[("contact", "create")] == 8  # the plan could not see them
        assert result.existing == 3  # apply found them by email (the import skipped two)
        assert any("not resubscribed" in w for w in result.warnings)

        # Still lagging: the next applies plan creates again and must stay harmless.
        for _ in range(2):
            await plan_apply(client, desired)

        # An out-of-band opt-out of a declared opt-in topic, hidden by the lag again.
        await client.update_contact_topics(
            "solo@example.com",
            [{"id": (await read_live(client)).topics["topic01"].id, "subscription": "opt_out"}],
        )
        await plan_apply(client, desired)

        server.advance(16)
        await plan_apply(client, desired)  # what the lag hid (nothing to prune here)
        server.advance(16)
        plan = await fresh_plan(client, desired)
        assert plan.empty, [(c.action, c.kind, c.key, c.after) for c in plan.changes]
        assert any("opted out of topic 'topic01'" in w for w in plan.warnings)

        listed = await client.list_contacts()
        emails = [c["email"].lower() for c in listed]
        assert len(emails) == len(set(emails)) == 8  # no duplicates (not even by case)
        for email in ("bulk0@example.com", "bulk1@example.com", "Mixed@Example.com"):
            assert (await client.get_contact(email))["unsubscribed"] is True, email  # consent kept
        assert (await client.get_contact("bulk2@example.com"))["unsubscribed"] is False
        live = await read_live(
            client,
            property_emails=["bulk0@example.com"],
            topic_emails=["solo@example.com", "bulk0@example.com"],
        )
        assert live.contacts["solo@example.com"].topics["topic01"] == "opt_out"  # stays out
        bulk0 = live.contacts["bulk0@example.com"]
        assert (bulk0.first_name, bulk0.properties, bulk0.segments, bulk0.topics) == (
            "B0",
            {"p00": "x"},
            {"members"},
            {},  # topic00: opt_in is its default already, and bulk0 is unsubscribed (#23)
        )  # declared fields written
        props = await client.list_properties()
        topics = await client.list_topics()
        assert sorted(p["key"] for p in props) == sorted(desired.properties)  # each once
        assert sorted(t["name"] for t in topics) == sorted(desired.topics)
    assert unlimited == []  # every list request sent `limit`


# -- in-process: consent on the "planned as new, found live" path ----------------------------


@pytest.fixture(params=["benign", "hostile"])
def lagging_app(request):
    return create_app(":memory:", rate_limit=0, unknowns=request.param, list_lag=1000)


@pytest.mark.parametrize("allow", [False, True])
async def test_hidden_unsubscribed_contact_is_resubscribed_only_when_allowed(lagging_app, allow):
    app = lagging_app
    async with client_for_app(app) as client:
        topic = await client.create_topic({"name": "news", "default_subscription": "opt_in"})
        await client.create_contact(
            {
                "email": "gone@example.com",
                "unsubscribed": True,
                "topics": [{"id": topic, "subscription": "opt_out"}],
            }
        )
        desired = state(
            topics=[Topic("news", "opt_in")],
            contacts=[
                Contact("gone@example.com", first_name="G", unsubscribed=False, topics={"news": "opt_in"})
            ],
        )
        plan, result = await plan_apply(client, desired, allow_resubscribe=allow)
        assert [(c.action, c.kind) for c in plan.changes] == [("create", "contact")]
        got = await client.get_contact("gone@example.com")
        subs = {t["id"]: t["subscription"] for t in await client.list_contact_topics("gone@example.com")}
        assert got["first_name"] == "G"
        assert got["unsubscribed"] is (not allow)
        assert subs[topic] == ("opt_in" if allow else "opt_out")
        assert bool(result.warnings) is (not allow)
        app.store.advance(1001)
        assert [c["email"] for c in await client.list_contacts()] == ["gone@example.com"]


async def test_undeclared_unsubscribed_is_never_sent(lagging_app):
    async with client_for_app(lagging_app) as client:
        await client.create_contact({"email": "quiet@example.com", "unsubscribed": True, "last_name": "Keep"})
        desired = state(contacts=[Contact("quiet@example.com", first_name="Q")])  # unsubscribed: unset
        patches = []
        real = client.update_contact

        async def spy(ref, payload):
            patches.append(payload)
            await real(ref, payload)

        client.update_contact = spy
        await plan_apply(client, desired)
        assert patches == [{"first_name": "Q"}]  # nothing undeclared, never `unsubscribed`
        got = await client.get_contact("quiet@example.com")
        assert (got["unsubscribed"], got["last_name"]) == (True, "Keep")


async def test_imports_never_overwrite_existing_contacts(lagging_app):
    """A bulk group whose contacts exist (hidden by the lag): on_conflict=skip, then only
    the declared fields are written; the hostile upsert would have reset the rest."""
    async with client_for_app(lagging_app) as client:
        await client.create_property({"key": "plan", "type": "string"})
        for i in range(5):
            await client.create_contact(
                {
                    "email": f"e{i}@example.com",
                    "unsubscribed": True,
                    "last_name": "Kept",
                    "properties": {"plan": "gold"},
                }
            )
        sent = []
        real = client.create_import

        async def spy(*a, **kw):
            sent.append(kw.get("on_conflict"))
            return await real(*a, **kw)

        client.create_import = spy
        desired = state(
            properties=[Property("plan", "string")],
            contacts=[Contact(f"e{i}@example.com", first_name="F") for i in range(5)],
        )
        _, result = await plan_apply(client, desired)
        assert sent == ["skip"] and result.existing == 5
        for i in range(5):
            got = await client.get_contact(f"e{i}@example.com")
            assert (got["first_name"], got["last_name"], got["unsubscribed"]) == ("F", "Kept", True)
            assert got["properties"]["plan"]["value"] == "gold"


# -- in-process: interrupted applies under a lag ----------------------------------------------


@pytest.mark.parametrize("budget,lost", [(4, False), (9, True), (14, True)])
async def test_an_interrupted_apply_under_a_lag_is_completed_without_duplicates(lagging_app, budget, lost):
    app = lagging_app
    desired = state(
        segments=[Segment("news")],
        topics=[Topic("billing", "opt_out")],
        contacts=[
            Contact(f"bulk{i}@example.com", first_name="B", segments={"news"}, topics={"billing": "opt_in"})
            for i in range(6)
        ]
        + [Contact("one@example.com", unsubscribed=True)],
    )
    async with client_for_app(app) as client:
        p, t = read_scope(desired)
        live = await read_live(client, property_emails=p, topic_emails=t)
        full = diff(desired, live)
        async with ResendClient(
            "re_x",
            "http://emulator",
            transport=FlakyTransport(app, budget, lost),
            rate_limit=None,
            max_retries=0,
        ) as broken:
            with pytest.raises((ApplyError, Exception)):
                await engine_apply(copy.deepcopy(full), broken)
        await plan_apply(client, desired)  # what the first run made is hidden: found by email
        app.store.advance(1001)
        await plan_apply(client, desired)
        app.store.advance(1001)
        assert (await fresh_plan(client, desired)).empty
        emails = [c["email"].lower() for c in await client.list_contacts()]
        assert len(emails) == len(set(emails)) == len(desired.contacts)


# -- emails that differ only by case --------------------------------------------------------


async def test_contacts_differing_only_by_case_are_named_and_left_alone():
    app = create_app(":memory:", rate_limit=0, unknowns="hostile")
    async with client_for_app(app) as client:
        a = await client.create_contact({"email": "Dup@example.com", "first_name": "A"})
        b = await client.create_contact({"email": "dup@example.com", "first_name": "B", "unsubscribed": True})
        assert a != b
        desired = state(
            contacts=[Contact("dup@example.com", first_name="Z", unsubscribed=False)],
            policy=Policy(prune_contacts=True),
        )
        plan, _ = await plan_apply(client, desired, allow_resubscribe=True)
        assert plan.empty  # nothing merged, deleted or written
        assert any("Dup@example.com" in w and "dup@example.com" in w and "case" in w for w in plan.warnings)
        got = {c["id"]: (c["first_name"], c["unsubscribed"]) for c in await client.list_contacts()}
        assert got == {a: ("A", False), b: ("B", True)}


@pytest.mark.parametrize("unknowns", ["benign", "hostile"])
async def test_one_skipped_row_does_not_cost_a_read_per_row(unknowns):
    """A sign-up between plan and apply makes the import skip one row of 60: only that row
    is read and corrected (created_at older than the import), not all 60."""
    app = create_app(":memory:", rate_limit=0, unknowns=unknowns)
    async with client_for_app(app) as client:
        desired = state(
            segments=[Segment("all")],
            contacts=[Contact(f"r{i}@example.com", first_name="R", segments={"all"}) for i in range(60)],
        )
        p, t = read_scope(desired)
        live = await read_live(client, property_emails=p, topic_emails=t)
        plan = diff(desired, live)
        await client.create_contact({"email": "r7@example.com", "unsubscribed": True})  # sign-up
        result = await engine_apply(plan, client, live=live)
        assert (result.imported, result.existing, result.retried) == (60, 1, 0)
        assert result.requests < 20, result.requests  # 60 GETs would be the naive read-back
        got = await client.get_contact("r7@example.com")
        assert (got["first_name"], got["unsubscribed"]) == ("R", True)
        assert [s["name"] for s in await client.list_contact_segments("r7@example.com")] == ["all"]
        assert (await fresh_plan(client, desired)).empty


def test_cli_emulator_unknowns_hostile_list_lag(tmp_path):
    """``resend-iac emulator --unknowns hostile --list-lag 15`` serves that profile."""
    import subprocess
    import sys
    import time

    from resend_iac.emulator.server import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resend_iac",
            "emulator",
            "--port",
            str(port),
            "--db",
            ":memory:",
            "--rate-limit",
            "0",
            "--unknowns",
            "hostile",
            "--list-lag",
            "15",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    headers = {"Authorization": "Bearer re_cli", "User-Agent": "resend-iac-tests/1"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/_emulator/stats", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        for email in ("Case@example.com", "case@example.com"):
            assert httpx.post(url + "/contacts", json={"email": email}, headers=headers).status_code == 201
        assert httpx.get(url + "/contacts", headers=headers).json()["data"] == []  # lagging
        httpx.post(url + "/_emulator/advance", json={"seconds": 16})
        assert len(httpx.get(url + "/contacts", headers=headers).json()["data"]) == 2  # case-sensitive
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()


@pytest.mark.parametrize("default", ["opt_in", "opt_out"])
async def test_an_import_never_opts_a_skipped_contact_back_in(lagging_app, default):
    """Hostile: an import's topics reach the rows it skips. Opt-ins are therefore never sent
    with an import; the created rows get them afterwards, the existing opt-out stays."""
    app = lagging_app
    async with client_for_app(app) as client:
        tid = await client.create_topic({"name": "news", "default_subscription": default})
        await client.create_contact(
            {"email": "n0@example.com", "topics": [{"id": tid, "subscription": "opt_out"}]}
        )
        app.store.advance(1001)
        app.store.touch([1])  # n0 just written: hidden from the lists, so planned as new
        desired = state(
            topics=[Topic("news", default)],
            contacts=[Contact(f"n{i}@example.com", topics={"news": "opt_in"}) for i in range(5)],
        )
        _, result = await plan_apply(client, desired)
        assert result.existing == 1
        subs = {t["id"]: t["subscription"] for t in await client.list_contact_topics("n0@example.com")}
        assert subs[tid] == "opt_out"  # consent kept
        app.store.advance(1001)
        plan = await fresh_plan(client, desired)
        assert plan.empty and any("opted out of topic 'news'" in w for w in plan.warnings)
        for i in range(1, 5):  # the created rows are opted in (explicitly where the default is out)
            subs = {t["id"]: t["subscription"] for t in await client.list_contact_topics(f"n{i}@example.com")}
            assert subs.get(tid, default) == "opt_in"


async def test_a_contact_deleted_meanwhile_is_not_an_apply_error(lagging_app):
    async with client_for_app(lagging_app) as client:
        lagging_app.store.list_lag = 0
        seg = await client.create_segment("s")
        await client.create_contact({"email": "gone@example.com", "segments": [{"id": seg}]})
        await client.create_contact({"email": "member@example.com", "segments": [{"id": seg}]})
        desired = state(segments=[Segment("s")], policy=Policy(prune_contacts=True))
        p, t = read_scope(desired)
        live = await read_live(client, property_emails=p, topic_emails=t)
        plan = diff(desired, live)
        assert plan.counts()[("contact", "delete")] == 2
        await client.delete_contact("gone@example.com")  # out of band, between plan and apply
        result = await engine_apply(plan, client, live=live)
        assert result.deleted == 2 and await client.list_contacts() == []
