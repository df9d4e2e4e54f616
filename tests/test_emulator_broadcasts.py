"""The emulator's broadcasts: every broadcast method of the official Python SDK (sync and
async) against a real uvicorn server, the statuses on the emulator's clock, and the rules
(update/remove/send a draft only, cancel a scheduled or queued one)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import resend
from resend.exceptions import ResendError

from resend_iac.emulator import create_app
from resend_iac.emulator.broadcasts import parse_when, pg_time

pytestmark = pytest.mark.anyio
pytest_plugins = ["pytester"]
HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}


class Caller:
    """Calls ``Cls.method(*args)``, or awaits ``Cls.method_async(*args)``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(self, cls, method: str, *args):
        if self.mode == "async":
            result = await getattr(cls, method + "_async")(*args)
        else:
            result = getattr(cls, method)(*args)
        result = dict(result)
        result.pop("http_headers", None)
        return result


async def sdk_scenario(call: Caller, server) -> None:
    seg = await call(resend.Segments, "create", {"name": "Newsletter"})
    topic = await call(resend.Topics, "create", {"name": "News", "default_subscription": "opt_in"})
    params = {
        "from": "News <news@example.com>",
        "segment_id": seg["id"],
        "subject": "December news",
        "html": "<p>Hi {{{FIRST_NAME|there}}} at {{{company|your company}}}</p>",
        "name": "December news",
        "topic_id": topic["id"],
        "reply_to": ["replies@example.com"],
        "preview_text": "What happened",
    }
    created = await call(resend.Broadcasts, "create", params)
    assert created["object"] == "broadcast"
    bid = created["id"]
    got = await call(resend.Broadcasts, "get", bid)
    assert got == {
        "object": "broadcast",
        "id": bid,
        "name": "December news",
        "audience_id": seg["id"],
        "segment_id": seg["id"],
        "from": "News <news@example.com>",
        "subject": "December news",
        "reply_to": ["replies@example.com"],
        "preview_text": "What happened",
        "status": "draft",
        "created_at": got["created_at"],
        "scheduled_at": None,
        "sent_at": None,
        "html": params["html"],
        "text": None,
        "topic_id": topic["id"],
    }

    upd = await call(resend.Broadcasts, "update", {"broadcast_id": bid, "text": "Hi", "topic_id": None})
    assert upd["id"] == bid
    got = await call(resend.Broadcasts, "get", bid)
    assert (got["text"], got["topic_id"], got["subject"]) == ("Hi", None, "December news")

    dup = await call(resend.Broadcasts, "duplicate", bid)
    assert dup["object"] == "broadcast" and dup["id"] != bid
    assert (await call(resend.Broadcasts, "get", dup["id"]))["status"] == "draft"
    listed = await call(resend.Broadcasts, "list")
    assert [b["id"] for b in listed["data"]] == [dup["id"], bid] and listed["has_more"] is False
    assert "html" not in listed["data"][0] and listed["data"][0]["segment_id"] == seg["id"]
    page = await call(resend.Broadcasts, "list", {"limit": 1})
    assert [b["id"] for b in page["data"]] == [dup["id"]] and page["has_more"] is True
    page = await call(resend.Broadcasts, "list", {"limit": 1, "after": dup["id"]})
    assert [b["id"] for b in page["data"]] == [bid] and page["has_more"] is False
    removed = await call(resend.Broadcasts, "remove", dup["id"])
    assert removed == {"object": "broadcast", "id": dup["id"], "deleted": True}

    # scheduled: then canceled
    assert (await call(resend.Broadcasts, "send", {"broadcast_id": bid, "scheduled_at": "in 2 hours"}))[
        "id"
    ] == bid
    got = await call(resend.Broadcasts, "get", bid)
    assert got["status"] == "scheduled" and got["sent_at"] is None
    assert got["scheduled_at"].endswith("+00") and got["scheduled_at"] > pg_time(time.time() + 7100)
    for method, args in (("update", ({"broadcast_id": bid, "subject": "x"},)), ("remove", (bid,))):
        with pytest.raises(ResendError) as err:
            await call(resend.Broadcasts, method, *args)
        assert err.value.code == 403
    cancelled = await call(resend.Broadcasts, "cancel", bid)
    assert cancelled == {"object": "broadcast", "id": bid}
    assert (await call(resend.Broadcasts, "get", bid))["status"] == "canceled"
    with pytest.raises(ResendError) as err:
        await call(resend.Broadcasts, "cancel", bid)
    assert (err.value.code, err.value.message) == (403, "Only queued or scheduled broadcasts can be canceled")

    # created and sent at once: queued, nothing delivered
    now = await call(resend.Broadcasts, "create", {**params, "name": "Now", "send": True})
    assert (await call(resend.Broadcasts, "get", now["id"]))["status"] in ("queued", "sending", "sent")
    recipients = await call(resend.Broadcasts, "recipients", now["id"], {"type": "sent"})
    assert recipients == {"object": "list", "has_more": False, "data": []}
    links = await call(resend.Broadcasts, "clicked_links", now["id"])
    assert links == {"object": "list", "has_more": False, "data": []}
    with pytest.raises(ResendError) as err:
        await call(resend.Broadcasts, "get", "9f31e56e-3083-46cf-8e96-c6995e0e576a")
    assert (err.value.code, err.value.message) == (404, "Broadcast not found")

    stats = server.stats()["by_route"]
    for route in (
        "POST /broadcasts",
        "GET /broadcasts",
        "GET /broadcasts/{id}",
        "PATCH /broadcasts/{id}",
        "DELETE /broadcasts/{id}",
        "POST /broadcasts/{id}/send",
        "POST /broadcasts/{id}/cancel",
        "POST /broadcasts/{id}/duplicate",
        "GET /broadcasts/{id}/recipients",
        "GET /broadcasts/{id}/clicked-links",
    ):
        assert stats.get(route), route  # every method of the SDK reached its route


@pytest.fixture
def sdk(emulator_server):
    old = resend.api_url, resend.api_key
    resend.api_url, resend.api_key = emulator_server.url, "re_test"
    yield emulator_server
    resend.api_url, resend.api_key = old


def test_python_sdk_every_broadcast_method(sdk):
    asyncio.run(sdk_scenario(Caller("sync"), sdk))


def test_python_sdk_every_async_broadcast_method(sdk):
    asyncio.run(sdk_scenario(Caller("async"), sdk))


# -- the clock and the rules, in-process --------------------------------------------------


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://emulator", headers=HEADERS
    )


async def _setup(c: httpx.AsyncClient) -> str:
    return (await c.post("/segments", json={"name": "Newsletter"})).json()["id"]


async def test_a_scheduled_broadcast_is_sent_when_the_clock_passes_its_time():
    app = create_app(rate_limit=0)

    async def advance_to(t: float) -> None:  # the emulator's clock to t (epoch seconds)
        r = await c.post("/_emulator/advance", json={"seconds": t - app.store.wall()})
        assert r.status_code == 200

    async with client_for(app) as c:
        sid = await _setup(c)
        body = {"from": "a@example.com", "subject": "S", "segment_id": sid, "send": True}
        at_t = float(int(time.time()) + 12 * 3600)
        at = datetime.fromtimestamp(at_t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        bid = (await c.post("/broadcasts", json={**body, "scheduled_at": at})).json()["id"]
        got = (await c.get(f"/broadcasts/{bid}")).json()
        assert (got["status"], got["sent_at"]) == ("scheduled", None)
        assert got["scheduled_at"] == at.replace("T", " ").replace(".000Z", "+00")
        await advance_to(at_t - 3600)
        assert (await c.get(f"/broadcasts/{bid}")).json()["status"] == "scheduled"
        await advance_to(at_t + 0.5)
        assert (await c.get(f"/broadcasts/{bid}")).json()["status"] == "queued"
        await advance_to(at_t + 1.5)
        assert (await c.get("/broadcasts")).json()["data"][0]["status"] == "sending"
        await advance_to(at_t + 2.5)
        got = (await c.get(f"/broadcasts/{bid}")).json()
        assert got["status"] == "sent" and got["sent_at"] > got["scheduled_at"]
        r = await c.post(f"/broadcasts/{bid}/cancel")
        assert r.status_code == 403 and r.json()["name"] == "validation_error"


async def test_broadcast_rules_on_the_wire():
    app = create_app(rate_limit=0)
    async with client_for(app) as c:
        sid = await _setup(c)
        r = await c.post("/broadcasts", json={"subject": "S", "segment_id": sid})
        assert (r.status_code, r.json()["message"]) == (422, "Missing `from` field.")
        r = await c.post("/broadcasts", json={"from": "not an address", "subject": "S", "segment_id": sid})
        assert (r.status_code, r.json()["name"]) == (422, "invalid_parameter")
        r = await c.post("/broadcasts", json={"from": "a@example.com", "subject": "S"})
        assert (r.status_code, r.json()["name"]) == (422, "missing_required_field")
        unknown = "9f31e56e-3083-46cf-8e96-c6995e0e576a"
        r = await c.post("/broadcasts", json={"from": "a@example.com", "subject": "S", "segment_id": unknown})
        assert r.status_code == 404
        ok = {"from": "Acme <a@example.com>", "subject": "S", "audience_id": sid}  # deprecated name
        bid = (await c.post("/broadcasts", json=ok)).json()["id"]
        assert (await c.get(f"/broadcasts/{bid}")).json()["segment_id"] == sid
        r = await c.post("/broadcasts", json={**ok, "scheduled_at": "in 1 hour"})  # without send
        assert r.status_code == 422
        r = await c.post(f"/broadcasts/{bid}/send", json={"scheduled_at": "next tuesday-ish"})
        assert r.status_code == 422 and (await c.get(f"/broadcasts/{bid}")).json()["status"] == "draft"
        r = await c.post(f"/broadcasts/{bid}/cancel")  # a draft
        assert r.status_code == 403
        assert (await c.post(f"/broadcasts/{bid}/send", json={})).status_code == 200
        r = await c.post(f"/broadcasts/{bid}/send", json={})  # twice
        assert r.status_code == 403
        r = await c.get(f"/broadcasts/{bid}/recipients")
        assert (r.status_code, r.json()["name"]) == (422, "missing_required_field")
        r = await c.get(
            f"/broadcasts/{bid}/recipients", params={"type": "opened", "bounce_type": "permanent"}
        )
        assert r.status_code == 422
        assert (await c.get(f"/broadcasts/{unknown}/clicked-links")).status_code == 404
        assert (await c.delete(f"/broadcasts/{unknown}")).status_code == 404


def test_scheduled_at_forms():
    now = 1_800_000_000.0
    assert parse_when("in 1 min", now) == now + 60
    assert parse_when("in 12 hours", now) == now + 12 * 3600
    assert parse_when("in 2 days", now) == now + 2 * 86400
    assert parse_when("2027-01-15T09:00:00Z", now) == datetime(2027, 1, 15, 9, tzinfo=UTC).timestamp()
    assert parse_when("2027-01-15T10:00:00+01:00", now) == datetime(2027, 1, 15, 9, tzinfo=UTC).timestamp()
    for bad in ("2027-01-15T09:00:00", "tomorrow", "in -1 hours", "", 5):
        with pytest.raises(Exception, match="scheduled_at"):
            parse_when(bad, now)


async def test_hostile_profile_pages_broadcasts_at_20_without_limit():
    app = create_app(rate_limit=0, unknowns="hostile")
    async with client_for(app) as c:
        sid = await _setup(c)
        for i in range(21):
            await c.post("/broadcasts", json={"from": "a@example.com", "subject": f"S{i}", "segment_id": sid})
        body = (await c.get("/broadcasts")).json()
        assert len(body["data"]) == 20 and body["has_more"] is True
        assert len((await c.get("/broadcasts", params={"limit": 100})).json()["data"]) == 21
    app = create_app(rate_limit=0)
    async with client_for(app) as c:
        sid = await _setup(c)
        for i in range(21):
            await c.post("/broadcasts", json={"from": "a@example.com", "subject": f"S{i}", "segment_id": sid})
        body = (await c.get("/broadcasts")).json()
        assert len(body["data"]) == 21 and body["has_more"] is False  # an "existing" list: all


# -- seed files: the pytest plugin, and the web view -------------------------------------


def test_pytest_plugin_seeds_broadcasts_and_the_web_view_shows_them(pytester):
    root = Path(__file__).resolve().parents[1]
    (pytester.path / "team.yaml").write_text((root / "examples" / "broadcasts" / "team.yaml").read_text())
    (pytester.path / "test_app.py").write_text(
        """
import httpx, pytest, resend

@pytest.mark.resend_seed("team.yaml")
def test_seeded(resend_emulator):
    items = resend.Broadcasts.list()["data"]
    assert {b["name"]: b["status"] for b in items} == {
        "December news": "scheduled", "Welcome": "draft", "November news": "sent"}
    december = next(b for b in items if b["name"] == "December news")
    assert resend.Broadcasts.get(december["id"])["html"].startswith("<p>Hello {{{FIRST_NAME|there}}}")
    resend_emulator.assert_matches("team.yaml")  # plan ignores the broadcasts: section
    page = httpx.get(resend_emulator.ui_url + "/broadcasts")
    assert page.status_code == 200 and "December news" in page.text and "newsletter" in page.text
    one = httpx.get(resend_emulator.ui_url + "/broadcasts/" + december["id"])
    assert "&lt;p&gt;Hello {{{FIRST_NAME|there}}}" in one.text  # the source, escaped
    assert httpx.get(resend_emulator.ui_url).text.count("broadcasts") >= 1

@pytest.mark.resend_seed("team.yaml")
def test_seeded_again_from_the_template(resend_emulator):
    assert len(resend.Broadcasts.list()["data"]) == 3
"""
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
