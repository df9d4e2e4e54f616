"""Issue #23, breaches 1-7: consent is a one-way valve across every sequence of reviewed edits.

Each breach has its own regression test (each fails on 7e3d2b2), over HTTP against the
emulator under both profiles where the behaviour is on the wire (``server``: one server per
profile for the module, emptied before each test), in-process where it is not (the Pulumi
provider's diff, the valve's rules, the ledger file).
"""

from __future__ import annotations

import json

import pytest

from resend_iac.client import ResendClient
from resend_iac.emulator.server import EmulatorProcess
from resend_iac.engine import apply
from resend_iac.engine.consent import Allow, Consent, carry_topic, opt_in_blocked
from resend_iac.engine.ledger import Ledger, LedgerError
from resend_iac.engine.live import plan_live
from resend_iac.model import Contact, Policy, Segment, State, Topic

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module", params=["benign", "hostile"])
def _servers(request):
    server = EmulatorProcess(db_path=":memory:", rate_limit=0, unknowns=request.param).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(_servers):
    if not _servers.alive:
        _servers.start()
    _servers.reset()
    return _servers


@pytest.fixture
async def client(server):
    async with ResendClient("re_test", server.url, rate_limit=None) as c:
        yield c


def state(topics=(), contacts=(), segments=(), **policy) -> State:
    s = State(policy=Policy(**policy))
    for t in topics:
        s.topics[t.name] = t
    for g in segments:
        s.segments[g.name] = g
    for c in contacts:
        s.add_contact(c)
    return s


async def plan_apply(client, desired: State, consent: Consent | None = None):
    plan, live = await plan_live(client, desired, consent=consent)
    result = await apply(plan, client, live=live, consent=consent)
    return plan, result


async def topic_of(client, email: str, name: str):
    ids = {t["id"]: t["name"] for t in await client.list_topics()}
    got = {ids.get(t["id"]): t.get("subscription") for t in await client.list_contact_topics(email)}
    return got.get(name)


# -- 1. prune, then re-add ---------------------------------------------------------------------


async def test_prune_keeps_an_unsubscribed_contact_and_says_why(client):
    both = [Contact("ann@example.com", first_name="Ann"), Contact("bob@example.com", first_name="Bob")]
    await plan_apply(client, state(contacts=both))
    await client.update_contact("bob@example.com", {"unsubscribed": True})  # bob's own action

    pruned = state(contacts=both[:1], prune_contacts=True)
    plan, _ = await plan_apply(client, pruned)
    assert not [c for c in plan.changes if c.action == "delete"]
    assert any("bob@example.com: not deleted" in w and "unsubscribed" in w for w in plan.warnings)
    # a later list declares bob again, `unsubscribed: false` (a CSV default): never resubscribed
    again = state(contacts=[*both[:1], Contact("bob@example.com", unsubscribed=False)], prune_contacts=True)
    await plan_apply(client, again)
    assert (await client.get_contact("bob@example.com"))["unsubscribed"] is True


async def test_prune_keeps_a_contact_opted_out_of_a_topic(client):
    desired = state(
        topics=[Topic("news")],
        contacts=[Contact("ann@example.com"), Contact("bob@example.com", topics={"news": "opt_in"})],
    )
    await plan_apply(client, desired)
    tid = (await client.list_topics())[0]["id"]
    await client.update_contact_topics("bob@example.com", [{"id": tid, "subscription": "opt_out"}])
    plan, _ = await plan_apply(
        client, state(topics=[Topic("news")], contacts=[Contact("ann@example.com")], prune_contacts=True)
    )
    assert not [c for c in plan.changes if c.action == "delete"]
    assert any("opted out of 'news'" in w for w in plan.warnings)
    assert (await client.get_contact("bob@example.com"))["id"]


async def test_prune_unsubscribed_deletes_and_the_ledger_recreates_with_the_choice(client):
    ledger = Ledger("k")
    both = [Contact("ann@example.com"), Contact("bob@example.com")]
    await plan_apply(client, state(contacts=both))
    await client.update_contact("bob@example.com", {"unsubscribed": True})
    consent = Consent(prune_unsubscribed=True, ledger=ledger)
    plan, result = await plan_apply(client, state(contacts=both[:1], prune_contacts=True), consent)
    assert result.deleted == 1 and ledger.unsubscribed_since("bob@example.com")
    # re-added (the hostile API forgot the unsubscribe): created unsubscribed, with a warning
    again = state(contacts=[*both[:1], Contact("bob@example.com", unsubscribed=False)])
    plan, _ = await plan_apply(client, again, Consent(ledger=ledger))
    (create,) = [c for c in plan.changes if c.action == "create"]
    assert create.after["unsubscribed"] is True
    assert any("consent ledger recorded" in w for w in plan.warnings)
    assert (await client.get_contact("bob@example.com"))["unsubscribed"] is True
    # the contact asked: --allow-resubscribe bob@example.com
    allowed = Consent(allow=Allow.of(["bob@example.com"]), ledger=ledger)
    await plan_apply(client, again, allowed)
    assert (await client.get_contact("bob@example.com"))["unsubscribed"] is False


# -- 2. a topic's default_subscription changes -------------------------------------------------


async def test_default_change_carries_opt_outs_and_keeps_undeclared_fields(client):
    declared = state(
        topics=[Topic("news", "opt_in", description="Weekly", visibility="public")],
        contacts=[Contact(f"c{i}@example.com", topics={"news": "opt_in"}) for i in range(3)],
    )
    await plan_apply(client, declared)
    tid = (await client.list_topics())[0]["id"]
    await client.update_contact_topics("c0@example.com", [{"id": tid, "subscription": "opt_out"}])
    # the default flips (either way is a replace in Resend); c0 chose opt_out itself
    changed = state(
        topics=[Topic("news", "opt_out")],
        contacts=[Contact(f"c{i}@example.com", topics={"news": "opt_in"}) for i in range(3)],
    )
    plan, _ = await plan_apply(client, changed)
    assert any("1 opt-out(s) are carried" in w for w in plan.warnings)
    for c in plan.changes:
        if c.kind == "subscription" and c.key == "c0@example.com":
            assert c.after == {"news": "opt_out"}
    assert await topic_of(client, "c0@example.com", "news") == "opt_out"
    assert await topic_of(client, "c1@example.com", "news") == "opt_in"
    (topic,) = await client.list_topics()
    assert (topic["default_subscription"], topic["description"]) == ("opt_out", "Weekly")


async def test_default_change_is_refused_when_it_would_take_a_contacts_own_opt_in(client):
    await plan_apply(
        client,
        state(
            topics=[Topic("news", "opt_in")], contacts=[Contact("a@example.com", topics={"news": "opt_in"})]
        ),
    )
    # a@ is no longer managed for "news": its explicit opt-in is its own
    plan, _ = await plan_apply(
        client, state(topics=[Topic("news", "opt_out")], contacts=[Contact("a@example.com")])
    )
    assert not [c for c in plan.changes if c.kind == "topic"]
    assert any("refused: 1 contact(s) opted in" in w for w in plan.warnings)
    assert (await client.list_topics())[0]["default_subscription"] == "opt_in"


# -- 3. a topic deleted and re-added ---------------------------------------------------------


async def test_topic_deleted_and_re_added_gets_its_opt_outs_back(client):
    ledger = Ledger("k")
    people = [Contact("a@example.com"), Contact("b@example.com")]
    await plan_apply(client, state(topics=[Topic("news")], contacts=people), Consent(ledger=ledger))
    tid = (await client.list_topics())[0]["id"]
    await client.update_contact_topics("b@example.com", [{"id": tid, "subscription": "opt_out"}])
    # the topic is dropped (prune), then a `git revert` declares it again
    await plan_apply(client, state(contacts=people, prune_topics=True), Consent(ledger=ledger))
    assert await client.list_topics() == []
    assert ledger.opted_out("b@example.com", "news")
    plan, _ = await plan_apply(client, state(topics=[Topic("news")], contacts=people), Consent(ledger=ledger))
    assert any(c.kind == "subscription" and c.after == {"news": "opt_out"} for c in plan.changes)
    assert await topic_of(client, "b@example.com", "news") == "opt_out"
    assert await topic_of(client, "a@example.com", "news") is None  # the default, untouched


# -- 4. a sign-up during a bulk import --------------------------------------------------------


async def test_a_sign_up_during_an_import_is_not_opted_in(client):
    await plan_apply(client, state(topics=[Topic("news", "opt_out")]))
    tid = (await client.list_topics())[0]["id"]
    # A decoy import just ahead in the emulator's queue keeps ours queued while the sign-up
    # happens (the test checks that it did).
    decoy = ("email\n" + "".join(f"d{i}@decoy.example\n" for i in range(5000))).encode()
    real_create = client.create_import
    seen: dict[str, str] = {}

    async def create_import(*args, **kwargs):
        await real_create(decoy, {"email": "email"}, on_conflict="skip")
        import_id = await real_create(*args, **kwargs)
        seen["status"] = (await client.get_import(import_id))["status"]
        # a person signs up meanwhile: unsubscribed, opted out of the topic
        await client.create_contact(
            {
                "email": "n3@example.com",
                "unsubscribed": True,
                "topics": [{"id": tid, "subscription": "opt_out"}],
            }
        )
        return import_id

    client.create_import = create_import
    desired = state(
        topics=[Topic("news", "opt_out")],
        contacts=[Contact(f"n{i}@example.com", topics={"news": "opt_in"}) for i in range(6)],
    )
    plan, live = await plan_live(client, desired)
    result = await apply(plan, client, live=live)
    assert seen["status"] == "queued"  # the sign-up came while our import waited
    assert await topic_of(client, "n3@example.com", "news") == "opt_out"
    assert (await client.get_contact("n3@example.com"))["unsubscribed"] is True
    assert await topic_of(client, "n0@example.com", "news") == "opt_in"
    assert any("n3@example.com" in w for w in result.warnings)


# -- 5. apply writes subscriptions only after reading -------------------------------------------


async def test_an_opt_out_between_plan_and_apply_stays(client):
    await plan_apply(client, state(topics=[Topic("news", "opt_out")], contacts=[Contact("a@example.com")]))
    desired = state(
        topics=[Topic("news", "opt_out")],
        contacts=[Contact("a@example.com", topics={"news": "opt_in"}), Contact("b@example.com")],
    )
    plan, live = await plan_live(client, desired)
    assert [c.after for c in plan.changes if c.kind == "subscription"] == [{"news": "opt_in"}]
    tid = (await client.list_topics())[0]["id"]
    await client.update_contact_topics("a@example.com", [{"id": tid, "subscription": "opt_out"}])
    result = await apply(plan, client, live=live)
    assert await topic_of(client, "a@example.com", "news") == "opt_out"
    assert any("a@example.com: opted out of topic 'news' live" in w for w in result.warnings)


async def test_an_unsubscribe_between_plan_and_apply_blocks_the_opt_in(client):
    await plan_apply(client, state(topics=[Topic("news", "opt_out")], contacts=[Contact("a@example.com")]))
    desired = state(
        topics=[Topic("news", "opt_out")], contacts=[Contact("a@example.com", topics={"news": "opt_in"})]
    )
    plan, live = await plan_live(client, desired)
    await client.update_contact("a@example.com", {"unsubscribed": True})
    result = await apply(plan, client, live=live)
    assert await topic_of(client, "a@example.com", "news") is None
    assert any("is unsubscribed live" in w for w in result.warnings)


# -- 7. protect: true is remembered ------------------------------------------------------------


async def test_protect_is_remembered_until_the_files_say_false(client):
    ledger = Ledger("k")
    consent = Consent(ledger=ledger)
    vip = Contact("vip@example.com", protect=True)
    await plan_apply(client, state(contacts=[vip]), consent)
    await plan_apply(client, state(contacts=[vip]), consent)  # now it exists: its id is remembered
    gone = state(contacts=[Contact("other@example.com")], prune_contacts=True)
    plan, _ = await plan_apply(client, gone, Consent(prune_unsubscribed=True, ledger=ledger))
    assert not [c for c in plan.changes if c.action == "delete"]
    assert any("vip@example.com: not deleted: it was declared with protect: true" in w for w in plan.warnings)
    await plan_apply(client, state(contacts=[Contact("vip@example.com", protect=False)]), consent)
    plan, result = await plan_apply(client, gone, consent)
    assert [c.key for c in plan.changes if c.action == "delete"] == ["vip@example.com"]
    assert result.deleted == 1


# -- in-process: the valve's rules, Pulumi, the ledger file --------------------------------------


def test_the_valve_rules():
    assert opt_in_blocked("opt_out", "opt_in", False) and opt_in_blocked(None, "opt_in", True)
    assert not opt_in_blocked(None, "opt_in", False) and not opt_in_blocked("opt_in", "opt_out", True)
    carried, refused = carry_topic(
        "opt_out", {"a": "opt_out", "b": "opt_in", "c": "opt_in"}, {"c": "opt_out"}
    )
    assert (carried, refused) == (["a"], ["b"])
    assert carry_topic("opt_in", {"a": "opt_out", "b": "opt_in"}) == (["a"], [])
    allow = Allow.of(["Bob@Example.com "])
    assert allow.allows("bob@example.com") and not allow.allows("ann@example.com")
    assert Allow.of(True).allows("anyone@example.com") and not Allow.of(False)
    assert Allow.of(["*"]).everyone and Allow.of(["a@x.com"]).to_plan() == ["a@x.com"]


def test_pulumi_contact_after_refresh_never_opts_back_in():
    from resend_iac.pulumi.providers import ContactProvider

    refreshed = {"email": "a@example.com", "topics": {"t1": "opt_out", "t2": "opt_in"}}
    inputs = {"email": "a@example.com", "topics": {"t1": "opt_in", "t2": "opt_in"}}
    assert ContactProvider._topic_changes(refreshed, inputs) == []
    assert not ContactProvider().diff("id", refreshed, inputs).changes
    opting_out = {"email": "a@example.com", "topics": {"t1": "opt_out", "t2": "opt_out"}}
    assert ContactProvider._topic_changes(refreshed, opting_out) == [{"id": "t2", "subscription": "opt_out"}]


def test_the_ledger_file_holds_no_email_and_refuses_another_key(tmp_path):
    path = tmp_path / "consent-ledger.json"
    ledger = Ledger.open(path, "key-1")
    ledger.saw_contact("Ann@Example.com", True, {"news": "opt_out"})
    ledger.protect("1f0e-id", True)
    assert ledger.save()
    text = path.read_text()
    assert "ann" not in text.lower() and "news" not in text and "1f0e" not in text
    again = Ledger.open(path, "key-1")
    assert again.unsubscribed_since("ann@example.com") and again.opted_out("ANN@example.com", "news")
    assert again.is_protected("1f0e-id") and not again.opted_out("ann@example.com", "other")
    with pytest.raises(LedgerError, match="another"):
        Ledger.open(path, "key-2")
    again.saw_contact("ann@example.com", False, {"news": "opt_in"})  # the contact came back itself
    assert not again.unsubscribed_since("ann@example.com") and not again.opted_out("ann@example.com", "news")
    assert json.loads(text)["resend_iac_consent_ledger"] == 1


def test_prune_unsubscribed_is_no_file_setting(tmp_path):
    from resend_iac.config import ConfigError, load

    f = tmp_path / "t.yaml"
    f.write_text("version: 1\npolicy:\n  prune_contacts: true\n  prune_unsubscribed: true\n")
    with pytest.raises(ConfigError):
        load([str(f)])


def test_segments_and_memberships_unaffected_by_the_ledger():
    """Sanity: a plan with a ledger and nothing it knows is the plan without one."""
    from resend_iac.engine import diff

    desired = state(segments=[Segment("s")], contacts=[Contact("a@example.com", segments={"s"})])
    live = State()
    assert diff(desired, live).counts() == diff(desired, live, consent=Consent(ledger=Ledger())).counts()


# -- the command line: --allow-resubscribe EMAIL, --prune-unsubscribed, the ledger file ---------


def test_cli_allow_resubscribe_email_prune_unsubscribed_and_ledger(emulator_server, tmp_path, monkeypatch):
    import yaml
    from click.testing import CliRunner

    from resend_iac.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", "re_test_key")
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    monkeypatch.delenv("RESEND_IAC_LEDGER")  # the default: beside the declared files
    monkeypatch.setenv("RESEND_IAC_LEDGER_KEY", "ledger-secret")
    files = tmp_path / "resend"
    files.mkdir()

    def declare(contacts, **policy):
        doc = {"version": 1, "contacts": contacts, **({"policy": policy} if policy else {})}
        (files / "team.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    declare([{"email": e, "unsubscribed": True} for e in ("a@example.com", "b@example.com", "c@example.com")])
    assert run("apply", files, "--auto-approve").exit_code == 0
    ledger = files / "consent-ledger.json"
    assert not ledger.exists()  # nothing unsubscribed seen yet by a read: written by the next run
    declare(
        [{"email": e, "unsubscribed": False} for e in ("a@example.com", "b@example.com", "c@example.com")]
    )
    r = run("apply", "--allow-resubscribe", "b@example.com", files, "--auto-approve")
    assert r.exit_code == 0, r.output
    assert ledger.exists() and "example.com" not in ledger.read_text()
    r = run("plan", files, "--format", "json")
    plan = json.loads(r.stdout)
    assert [c["key"] for c in plan["changes"]] == []  # a@ and c@ left alone, with warnings
    assert "a@example.com: unsubscribed live" in r.output and "c@example.com" in r.output
    assert "b@example.com: unsubscribed live" not in r.output  # b@ was resubscribed
    # prune: a@ and c@ hold consent: kept; --prune-unsubscribed deletes them (a file can't)
    declare([{"email": "b@example.com"}], prune_contacts=True)
    r = run("apply", files, "--auto-approve")
    assert r.exit_code == 0 and "No changes" in r.output and "--prune-unsubscribed" in r.output
    r = run("apply", files, "--auto-approve", "--prune-unsubscribed")
    assert r.exit_code == 0 and "2 deleted" in r.output
    # declared again (a CSV saying unsubscribed: false): created unsubscribed, from the ledger
    declare([{"email": e, "unsubscribed": False} for e in ("a@example.com", "b@example.com")])
    r = run("apply", files, "--auto-approve")
    assert r.exit_code == 0 and "consent ledger recorded" in r.output
    r = run("plan", files, "--format", "json")
    assert "a@example.com: unsubscribed live" in r.output


async def test_emulator_an_unsubscribe_after_deletion_benign_remembers_hostile_forgets(server, client):
    """The behaviour table's row (unknown): created again, benign comes back unsubscribed."""
    await client.create_contact({"email": "gone@example.com", "unsubscribed": True})
    await client.delete_contact("gone@example.com")
    await client.create_contact({"email": "gone@example.com"})
    again = (await client.get_contact("gone@example.com"))["unsubscribed"]
    assert again is (server.kwargs["unknowns"] == "benign")


def test_a_saved_plan_keeps_its_allowance(tmp_path):
    from resend_iac.engine import Plan, load_plan, save_plan

    plan = Plan(consent=Consent(allow=Allow.of(["b@example.com"]), prune_unsubscribed=True).to_plan())
    save_plan(plan, tmp_path / "plan.json")
    back = Consent.from_plan(load_plan(tmp_path / "plan.json").consent)
    assert back.allow.allows("B@example.com") and not back.allow.allows("a@example.com")
    assert back.prune_unsubscribed
