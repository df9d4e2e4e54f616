"""The Pulumi providers, driven as the Pulumi engine drives them: through the SDK's own
dynamic-provider server (``python -m pulumi.dynamic``, gRPC, the dill-serialised provider
under ``__provider``), against a real emulator server. Every step asserts the live result
over HTTP.

One provider server and one emulator for the module; the emulator is emptied per test.
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi_harness import UNKNOWN, Engine, ProviderError, ProviderServer

from resend_iac.emulator.server import EmulatorProcess
from resend_iac.pulumi import (
    ContactListProvider,
    ContactPropertyProvider,
    ContactProvider,
    SegmentProvider,
    TopicProvider,
)
from resend_iac.pulumi.providers import EMPTY_PLAN_DIGEST, NO_CHANGES

KEY = "re_pulumi_test_key_5f3a9c"
HEADERS = {"Authorization": f"Bearer {KEY}", "User-Agent": "resend-iac-tests/1"}

PROPERTY = ContactPropertyProvider()
SEGMENT = SegmentProvider()
TOPIC = TopicProvider()
CONTACT = ContactProvider()
CONTACT_LIST = ContactListProvider()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """This module's emulator. It advertises a high rate limit (``ratelimit-*`` headers), so
    the providers' clients, which adapt to the advertised limit, do not pace at the default
    5 req/s."""
    emu = EmulatorProcess(db_path=":memory:", rate_limit=500).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def server(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderServer]:
    env = {"RESEND_API_URL": emulator.url, "RESEND_API_KEY": KEY}
    # the project directory: above every test's tmp_path, where the ContactLists' files are
    # (a ContactList reads files inside the directory its provider runs in only)
    with ProviderServer(env, cwd=tmp_path_factory.getbasetemp()) as s:
        yield s


@pytest.fixture
def engine(server: ProviderServer) -> Engine:
    return Engine(server)


@pytest.fixture
def api(emulator: EmulatorProcess) -> Iterator[httpx.Client]:
    """Direct HTTP to the emulator (emptied for this test), to assert what is live."""
    emulator.reset()
    with httpx.Client(base_url=emulator.url, headers=HEADERS) as client:
        yield client


def get(api: httpx.Client, path: str) -> dict | None:
    r = api.get(path)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()


def items(api: httpx.Client, path: str) -> list[dict]:
    r = api.get(path)
    r.raise_for_status()
    return r.json()["data"]


def post(api: httpx.Client, path: str, body: dict) -> str:
    r = api.post(path, json=body)
    r.raise_for_status()
    return r.json()["id"]


# -- the provider as the SDK stores it ---------------------------------------------------


@pytest.mark.parametrize("provider", [PROPERTY, SEGMENT, TOPIC, CONTACT, CONTACT_LIST])
def test_serialised_provider_holds_no_key(provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    for method in ("check", "diff"):  # a provider that was used still pickles clean
        try:
            getattr(provider, method)(*(({}, {}) if method == "check" else ("x", {}, {})))
        except Exception:
            pass
    raw = base64.b64decode(serialize_provider(provider))
    assert KEY.encode() not in raw
    assert b"re_" not in raw
    # Pickled by reference (module + class name): nothing of the environment travels.
    assert type(provider).__name__.encode() in raw and len(raw) < 200


def test_server_speaks_the_engine_protocol(server: ProviderServer) -> None:
    assert server.plugin_version == "0.1.0"
    assert server.configure_response.acceptSecrets is False  # so the engine sends plain values


# -- ContactProperty -----------------------------------------------------------------------


def test_property_check(server: ProviderServer) -> None:
    inputs, failures = server.check(PROPERTY, {"key": "plan_tier", "type": "number", "fallback_value": 1})
    assert failures == [] and inputs["key"] == "plan_tier"
    _, failures = server.check(PROPERTY, {"key": "plan tier", "type": "numbr"})
    by_prop = {f.property: f.reason for f in failures}
    assert "may only contain letters, digits and underscore" in by_prop["key"]
    assert (
        by_prop["type"]
        == "'type' must be one of string, number, not the string 'numbr' (did you mean 'number'?)"
    )
    _, failures = server.check(PROPERTY, {"key": "tier", "type": "number", "fallback_value": "x"})
    assert [f.property for f in failures] == ["fallback_value"]


def test_property_lifecycle(engine: Engine, server: ProviderServer, api: httpx.Client) -> None:
    r = engine.up(PROPERTY, "tier", {"key": "plan_tier", "type": "number", "fallback_value": 1})
    assert r.op == "create"
    live = get(api, f"/contact-properties/{r.state.id}")
    assert live["key"] == "plan_tier" and live["type"] == "number" and live["fallback_value"] == 1
    assert r.state.outputs["created_at"] == live["created_at"]

    # no change
    assert (
        engine.up(PROPERTY, "tier", {"key": "plan_tier", "type": "number", "fallback_value": 1}, r.state).op
        == "same"
    )

    # update in place: fallback_value is mutable
    d = server.diff(
        PROPERTY, r.state.id, r.state.outputs, {"key": "plan_tier", "type": "number", "fallback_value": 2}
    )
    assert d.some and d.replaces == []
    r2 = engine.up(PROPERTY, "tier", {"key": "plan_tier", "type": "number", "fallback_value": 2}, r.state)
    assert r2.op == "update" and r2.state.id == r.state.id
    assert get(api, f"/contact-properties/{r.state.id}")["fallback_value"] == 2

    # refresh sees a change made outside Pulumi
    api.patch(f"/contact-properties/{r.state.id}", json={"fallback_value": 7}).raise_for_status()
    refreshed = engine.refresh(PROPERTY, r2.state)
    assert refreshed.outputs["fallback_value"] == 7
    assert (
        engine.up(PROPERTY, "tier", {"key": "plan_tier", "type": "number", "fallback_value": 2}, refreshed).op
        == "update"
    )
    assert get(api, f"/contact-properties/{r.state.id}")["fallback_value"] == 2

    # replace: key and type are immutable; keys are unique, so delete first
    d = server.diff(PROPERTY, r.state.id, r2.state.outputs, {"key": "plan_tier", "type": "string"})
    assert d.replaces == ["type"] and d.delete_before_replace
    d = server.diff(
        PROPERTY, r.state.id, r2.state.outputs, {"key": "tier", "type": "number", "fallback_value": 2}
    )
    assert d.replaces == ["key"]
    r3 = engine.up(
        PROPERTY, "tier", {"key": "plan_tier", "type": "string", "fallback_value": "free"}, r2.state
    )
    assert r3.op == "replace" and r3.state.id != r.state.id
    assert get(api, f"/contact-properties/{r.state.id}") is None
    assert get(api, f"/contact-properties/{r3.state.id}")["type"] == "string"

    # import by id
    imported = engine.import_(
        PROPERTY, "tier", r3.state.id, {"key": "plan_tier", "type": "string", "fallback_value": "free"}
    )
    assert imported.op == "import"
    mismatch = engine.import_(
        PROPERTY, "tier", r3.state.id, {"key": "plan_tier", "type": "string", "fallback_value": "paid"}
    )
    assert mismatch.op == "import-mismatch"

    engine.destroy(PROPERTY, r3.state)
    assert get(api, f"/contact-properties/{r3.state.id}") is None
    assert engine.refresh(PROPERTY, r3.state) is None  # gone: the engine drops it from the state


# -- Segment -------------------------------------------------------------------------------


def test_segment_lifecycle(engine: Engine, server: ProviderServer, api: httpx.Client) -> None:
    _, failures = server.check(SEGMENT, {"name": " padded"})
    assert failures[0].property == "name" and "white space" in failures[0].reason

    r = engine.up(SEGMENT, "customers", {"name": "customers"})
    assert get(api, f"/segments/{r.state.id}")["name"] == "customers"

    # a rename is an update, not a replacement
    d = server.diff(SEGMENT, r.state.id, r.state.outputs, {"name": "clients"})
    assert d.some and d.replaces == []
    r2 = engine.up(SEGMENT, "customers", {"name": "clients"}, r.state)
    assert r2.op == "update" and r2.state.id == r.state.id
    assert get(api, f"/segments/{r.state.id}")["name"] == "clients"

    assert engine.refresh(SEGMENT, r2.state).outputs["name"] == "clients"
    assert engine.import_(SEGMENT, "customers", r.state.id, {"name": "clients"}).op == "import"

    engine.destroy(SEGMENT, r2.state)
    assert get(api, f"/segments/{r.state.id}") is None


# -- Topic -------------------------------------------------------------------------------


def test_topic_lifecycle(engine: Engine, server: ProviderServer, api: httpx.Client) -> None:
    _, failures = server.check(TOPIC, {"name": "news", "default_subscription": "opt-in"})
    assert failures[0].property == "default_subscription" and "opt_in, opt_out" in failures[0].reason
    _, failures = server.check(TOPIC, {"name": "n" * 51})
    assert "at most 50" in failures[0].reason

    inputs = {
        "name": "news",
        "default_subscription": "opt_in",
        "description": "Monthly",
        "visibility": "public",
    }
    r = engine.up(TOPIC, "news", inputs)
    live = get(api, f"/topics/{r.state.id}")
    assert (live["name"], live["description"], live["visibility"]) == ("news", "Monthly", "public")

    r2 = engine.up(TOPIC, "news", {**inputs, "description": "Weekly", "name": "updates"}, r.state)
    assert r2.op == "update"
    live = get(api, f"/topics/{r.state.id}")
    assert (live["name"], live["description"]) == ("updates", "Weekly")

    # description/visibility left out of the program: no longer managed, not cleared
    unmanaged = {"name": "updates", "default_subscription": "opt_in"}
    assert not server.diff(TOPIC, r.state.id, r2.state.outputs, unmanaged).some

    d = server.diff(TOPIC, r.state.id, r2.state.outputs, {**inputs, "default_subscription": "opt_out"})
    assert d.replaces == ["default_subscription"] and d.delete_before_replace
    r3 = engine.up(TOPIC, "news", {**inputs, "default_subscription": "opt_out"}, r2.state)
    assert r3.op == "replace" and r3.state.id != r.state.id
    assert get(api, f"/topics/{r.state.id}") is None
    assert get(api, f"/topics/{r3.state.id}")["default_subscription"] == "opt_out"

    engine.destroy(TOPIC, r3.state)
    assert get(api, f"/topics/{r3.state.id}") is None


# -- Contact -----------------------------------------------------------------------------


def _contact_live(api: httpx.Client, id_: str) -> dict:
    c = get(api, f"/contacts/{id_}")
    assert c is not None, f"contact {id_} is not live"
    c["segment_ids"] = sorted(s["id"] for s in items(api, f"/contacts/{id_}/segments"))
    c["topic_subs"] = {t["id"]: t["subscription"] for t in items(api, f"/contacts/{id_}/topics")}
    c["values"] = {k: v["value"] for k, v in (c.get("properties") or {}).items()}
    return c


def test_contact_check(server: ProviderServer) -> None:
    _, failures = server.check(CONTACT, {"email": "ada@example.com", "topics": {"t1": "opt_in"}})
    assert failures == []
    _, failures = server.check(
        CONTACT, {"email": "ada.example.com", "unsubscribed": "no", "topics": {"t1": "yes"}}
    )
    by_prop = {f.property: f.reason for f in failures}
    assert by_prop["email"] == "'ada.example.com' is not a valid email address (it needs exactly one @)"
    assert by_prop["unsubscribed"] == "'unsubscribed' must be true or false, not the string 'no'"
    assert "must be one of opt_in, opt_out" in by_prop["topics"]
    # During a preview, ids of resources not created yet are unknown: not a failure.
    _, failures = server.check(
        CONTACT, {"email": "ada@example.com", "segment_ids": [UNKNOWN], "topics": UNKNOWN}
    )
    assert failures == []
    d = server.diff(
        CONTACT,
        "c1",
        {"email": "ada@example.com", "segment_ids": ["s1"]},
        {"email": "ada@example.com", "segment_ids": [UNKNOWN]},
    )
    assert d.some and d.replaces == []


def test_contact_lifecycle(engine: Engine, server: ProviderServer, api: httpx.Client) -> None:
    post(api, "/contact-properties", {"key": "company", "type": "string"})
    post(api, "/contact-properties", {"key": "tier", "type": "number"})
    s1 = post(api, "/segments", {"name": "customers"})
    s2 = post(api, "/segments", {"name": "beta"})
    t1 = post(api, "/topics", {"name": "news", "default_subscription": "opt_in"})
    t2 = post(api, "/topics", {"name": "billing", "default_subscription": "opt_out"})

    inputs = {
        "email": "Ada@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "properties": {"company": "Engines", "tier": 3},
        "segment_ids": [s1],
        "topics": {t1: "opt_in", t2: "opt_out"},
    }
    r = engine.up(CONTACT, "ada", inputs)
    live = _contact_live(api, r.state.id)
    assert live["email"].lower() == "ada@example.com" and live["first_name"] == "Ada"
    assert live["values"] == {"company": "Engines", "tier": 3}
    assert live["segment_ids"] == [s1]
    assert live["topic_subs"][t1] == "opt_in" and live["topic_subs"][t2] == "opt_out"
    assert r.state.outputs["email"] == "Ada@Example.com" and r.state.outputs["created_at"]

    # same inputs, and a change of case only: nothing to do
    assert engine.up(CONTACT, "ada", inputs, r.state).op == "same"
    d = server.diff(CONTACT, r.state.id, r.state.outputs, {**inputs, "email": " ada@example.COM"})
    assert not d.some

    # update: names, a property value (and one removed: cleared), segments, a topic
    new = {
        "email": "Ada@Example.com",
        "first_name": "Augusta",
        "last_name": "Lovelace",
        "properties": {"company": "Analytical"},
        "segment_ids": [s2],
        "topics": {t1: "opt_out", t2: "opt_out"},
    }
    d = server.diff(CONTACT, r.state.id, r.state.outputs, new)
    assert d.some and d.replaces == []
    r2 = engine.up(CONTACT, "ada", new, r.state)
    assert r2.op == "update" and r2.state.id == r.state.id
    live = _contact_live(api, r.state.id)
    assert live["first_name"] == "Augusta"
    assert live["values"] == {"company": "Analytical"}
    assert live["segment_ids"] == [s2]
    assert live["topic_subs"][t1] == "opt_out"

    # unsubscribing is managed; resubscribing is left out, as in `resend-iac apply`
    r3 = engine.up(CONTACT, "ada", {**new, "unsubscribed": True}, r2.state)
    assert r3.op == "update" and _contact_live(api, r.state.id)["unsubscribed"] is True
    assert engine.up(CONTACT, "ada", {**new, "unsubscribed": False}, r3.state).op == "same"
    assert _contact_live(api, r.state.id)["unsubscribed"] is True

    # refresh: drift in a managed field shows up, and the next up corrects it
    api.patch(f"/contacts/{r.state.id}", json={"first_name": "Countess"}).raise_for_status()
    api.post(f"/contacts/{r.state.id}/segments/{s1}").raise_for_status()
    refreshed = engine.refresh(CONTACT, r3.state)
    assert refreshed.outputs["first_name"] == "Countess"
    assert sorted(refreshed.outputs["segment_ids"]) == sorted([s1, s2])
    fixed = engine.up(CONTACT, "ada", {**new, "unsubscribed": True}, refreshed)
    assert fixed.op == "update"
    live = _contact_live(api, r.state.id)
    assert live["first_name"] == "Augusta" and live["segment_ids"] == [s2]

    # import by id: matches the program's inputs, or the engine refuses
    declared = {**new, "unsubscribed": True}
    imported = engine.import_(CONTACT, "ada", r.state.id, declared)
    assert imported.op == "import", imported.diff
    assert (
        engine.import_(CONTACT, "ada", r.state.id, {**declared, "last_name": "Byron"}).op == "import-mismatch"
    )

    # replace: another address is another person (the new one is created first)
    d = server.diff(CONTACT, r.state.id, fixed.state.outputs, {**declared, "email": "ada@lovelace.org"})
    assert d.replaces == ["email"] and not d.delete_before_replace
    r4 = engine.up(CONTACT, "ada", {**declared, "email": "ada@lovelace.org"}, fixed.state)
    assert r4.op == "replace" and r4.state.id != r.state.id
    assert get(api, f"/contacts/{r.state.id}") is None
    live = _contact_live(api, r4.state.id)
    assert live["email"] == "ada@lovelace.org" and live["segment_ids"] == [s2]

    engine.destroy(CONTACT, r4.state)
    assert get(api, f"/contacts/{r4.state.id}") is None
    assert engine.refresh(CONTACT, r4.state) is None


def test_contact_import_of_everything(engine: Engine, server: ProviderServer, api: httpx.Client) -> None:
    """Read with nothing declared (only the id) reports every field, shaped like inputs."""
    seg = post(api, "/segments", {"name": "vip"})
    post(api, "/contact-properties", {"key": "company", "type": "string"})
    cid = post(
        api,
        "/contacts",
        {
            "email": "grace@example.com",
            "first_name": "Grace",
            "properties": {"company": "Navy"},
            "segments": [{"id": seg}],
        },
    )
    got_id, outs, inputs = server.read(CONTACT, cid, None, {})
    assert got_id == cid
    assert inputs["email"] == "grace@example.com" and inputs["first_name"] == "Grace"
    assert inputs["properties"] == {"company": "Navy"} and inputs["segment_ids"] == [seg]
    assert inputs["unsubscribed"] is False
    assert server.read(CONTACT, "00000000-0000-0000-0000-000000000000", None, {})[0] == ""


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    team = _write(tmp_path / "team", TEAM)
    with ProviderServer({"RESEND_API_KEY": "", "RESEND_API_URL": "http://127.0.0.1:9"}) as bare:
        with pytest.raises(ProviderError) as err:
            bare.create(SEGMENT, {"name": "x"})
        assert "RESEND_API_KEY is not set" in err.value.details
        _, failures = bare.check(CONTACT_LIST, {"path": str(team)})
        assert failures[0].property == "path" and "RESEND_API_KEY is not set" in failures[0].reason


# -- ContactList -----------------------------------------------------------------------


def _write(dir_: Path, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / "team.yaml").write_text(textwrap.dedent(text))
    return dir_


TEAM = """\
    version: 1
    properties:
      company: {type: string}
    segments:
      customers: {}
    topics:
      news: {default_subscription: opt_in}
    contacts:
      - email: ada@example.com
        first_name: Ada
        properties: {company: Engines}
        segments: [customers]
        topics: {news: opt_in}
      - emails: grace@example.com, linus@example.com
        segments: [customers]
    """


def test_contact_list_lifecycle(
    engine: Engine, server: ProviderServer, api: httpx.Client, tmp_path: Path
) -> None:
    team = _write(tmp_path / "team", TEAM)
    inputs = {"path": str(team)}

    checked, failures = server.check(CONTACT_LIST, inputs)
    assert failures == []
    assert checked["plan_summary"].startswith("Plan: ") and checked["plan_digest"] != EMPTY_PLAN_DIGEST
    assert len(checked["digest"]) == 64
    assert items(api, "/contacts") == []  # check plans; it writes nothing

    r = engine.up(CONTACT_LIST, "team", inputs)
    assert r.op == "create" and r.state.outputs["applied"] == checked["plan_summary"]
    emails = sorted(c["email"] for c in items(api, "/contacts"))
    assert emails == ["ada@example.com", "grace@example.com", "linus@example.com"]
    seg = items(api, "/segments")[0]
    assert len(items(api, f"/segments/{seg['id']}/contacts")) == 3

    # nothing changed: empty plan, no update
    checked, _ = server.check(CONTACT_LIST, inputs, r.state.inputs)
    assert checked["plan_summary"] == NO_CHANGES
    assert engine.up(CONTACT_LIST, "team", inputs, r.state).op == "same"

    # a file changes: the digest and the plan show it; the update applies it
    _write(team, TEAM.replace("first_name: Ada", "first_name: Augusta"))
    checked, _ = server.check(CONTACT_LIST, inputs, r.state.inputs)
    assert (
        checked["plan_summary"] == "Plan: 1 contact to update."
        and checked["plan_digest"] != EMPTY_PLAN_DIGEST
    )
    assert checked["digest"] != r.state.inputs["digest"]
    r2 = engine.up(CONTACT_LIST, "team", inputs, r.state)
    assert r2.op == "update"
    ada = next(c for c in items(api, "/contacts") if c["email"] == "ada@example.com")
    assert ada["first_name"] == "Augusta"

    # drift made outside Pulumi: refresh shows a pending plan, up corrects it
    api.patch(f"/contacts/{ada['id']}", json={"first_name": "Countess"}).raise_for_status()
    refreshed = engine.refresh(CONTACT_LIST, r2.state)
    assert refreshed.outputs["plan_summary"] == "Plan: 1 contact to update."
    assert engine.up(CONTACT_LIST, "team", inputs, refreshed).op == "update"
    assert get(api, f"/contacts/{ada['id']}")["first_name"] == "Augusta"

    # deleting the resource leaves the team's contacts alone
    engine.destroy(CONTACT_LIST, r2.state)
    assert len(items(api, "/contacts")) == 3


def test_contact_list_check_failures(server: ProviderServer, api: httpx.Client, tmp_path: Path) -> None:
    _, failures = server.check(CONTACT_LIST, {"path": str(tmp_path / "missing")})
    assert failures[0].property == "path" and "no such file or directory" in failures[0].reason

    bad = _write(
        tmp_path / "bad", TEAM.replace("default_subscription: opt_in", "default_subscription: opt-in")
    )
    _, failures = server.check(CONTACT_LIST, {"path": str(bad)})
    # the message `resend-iac validate` prints: file:line:column: message
    assert failures and all(f.property == "path" for f in failures)
    assert any(f"{bad / 'team.yaml'}:7:" in f.reason and "opt_in, opt_out" in f.reason for f in failures)


def test_contact_list_safety_thresholds(server: ProviderServer, api: httpx.Client, tmp_path: Path) -> None:
    for i in range(12):
        post(api, "/contacts", {"email": f"p{i}@example.com"})
    team = _write(
        tmp_path / "prune",
        """\
        version: 1
        contacts:
          - email: p0@example.com
        policy: {prune_contacts: true}
        """,
    )
    _, failures = server.check(CONTACT_LIST, {"path": str(team)})
    assert len(failures) == 1
    assert "Refusing to apply" in failures[0].reason and "11 of 12 live contacts" in failures[0].reason
    with pytest.raises(ProviderError) as err:  # update re-checks the thresholds too
        server.create(CONTACT_LIST, {"path": str(team)})
    assert "Refusing to apply" in err.value.details
    assert len(items(api, "/contacts")) == 12


def test_contact_list_refuses_a_stale_plan(server: ProviderServer, api: httpx.Client, tmp_path: Path) -> None:
    team = _write(tmp_path / "team", TEAM)
    checked, _ = server.check(CONTACT_LIST, {"path": str(team)})
    post(api, "/contacts", {"email": "grace@example.com"})  # someone else acted meanwhile
    with pytest.raises(ProviderError) as err:
        server.create(CONTACT_LIST, checked)
    assert "the live team changed since this update was planned" in err.value.details
    assert [c["email"] for c in items(api, "/contacts")] == ["grace@example.com"]


def test_parallel_operations_share_the_rate_limit() -> None:
    """``pulumi up`` runs several operations at once in one provider process; they share one
    client, so together they keep to the team's limit (no 429 from the API)."""
    from concurrent.futures import ThreadPoolExecutor

    emu = EmulatorProcess(db_path=":memory:", rate_limit=5).start()
    try:
        with ProviderServer({"RESEND_API_URL": emu.url, "RESEND_API_KEY": KEY}) as s:
            with ThreadPoolExecutor(6) as pool:
                ids = list(pool.map(lambda i: s.create(SEGMENT, {"name": f"seg-{i}"})[0], range(6)))
        stats = emu.stats()
        assert len(set(ids)) == 6
        assert stats["by_route"].get("POST /segments") == 6
        assert stats["rate_limited"] == 0, stats
    finally:
        emu.stop()


def test_contact_create_never_posts_an_existing_email(engine: Engine, api: httpx.Client) -> None:
    """POST /contacts on an existing email is an upsert resetting omitted fields (the
    emulator does it as the real API does): create refuses and says how to adopt it."""
    cid = post(api, "/contacts", {"email": "kept@example.com", "unsubscribed": True, "last_name": "K"})
    with pytest.raises(ProviderError) as err:
        engine.up(CONTACT, "kept", {"email": "kept@example.com", "first_name": "New"})
    assert "already exists" in str(err.value) and "pulumi import" in str(err.value)
    live = get(api, f"/contacts/{cid}")
    assert (live["unsubscribed"], live["last_name"], live["first_name"]) == (True, "K", None)
