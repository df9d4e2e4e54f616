"""Acceptance tests against a real Resend team (like Terraform providers' ``TF_ACC``).

Run only when ``RESEND_IAC_ACCEPTANCE_KEY`` holds an API key of a **throwaway team**;
skipped otherwise (``pytest -ra`` shows the reason). ``RESEND_IAC_ACCEPTANCE_URL``
(default https://api.resend.com) points them elsewhere, e.g. at the emulator to check the
suite itself. ``RESEND_IAC_ACCEPTANCE_RATE`` (default 4) paces the requests per second.

- ``test_every_endpoint_the_engine_uses``: each call and the shape the engine relies on.
- ``test_unknown_*``: one test per "unknown" row of the behaviour table in docs/emulator.md,
  asserting what the emulator's default profile does. A failure settles the row the other
  way: change the table, the emulator's default, and (if needed) the engine.
- ``test_plan_apply_drift_heal``: a small declared state applied, drifted out of band,
  healed; consent kept.

Everything created carries this run's prefix (``iacacc<hex>``: emails, segment and topic
names, property keys) and is deleted at the end, also when a test fails; nothing else in
the team is touched (the declared state prunes nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resend_iac.client import ResendAPIError, ResendClient, read_live
from resend_iac.engine import apply as engine_apply
from resend_iac.engine import diff, read_scope
from resend_iac.model import Contact, Policy, Property, Segment, State, Topic

KEY = os.environ.get("RESEND_IAC_ACCEPTANCE_KEY", "")
URL = os.environ.get("RESEND_IAC_ACCEPTANCE_URL", "https://api.resend.com")
RATE = float(os.environ.get("RESEND_IAC_ACCEPTANCE_RATE", "4"))

pytestmark = pytest.mark.skipif(
    not KEY,
    reason="RESEND_IAC_ACCEPTANCE_KEY is not set: the acceptance tests against a real "
    "Resend team are skipped (see docs/emulator.md, 'Acceptance tests')",
)

PREFIX = f"iacacc{secrets.token_hex(4)}"


def email(name: str) -> str:
    return f"{PREFIX}-{name}@example.com"


def key(name: str) -> str:
    return f"{PREFIX}_{name}"


def run(fn: Callable[[ResendClient], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with ResendClient(KEY, URL, rate_limit=RATE or None) as client:
            return await fn(client)

    return asyncio.run(go())


async def wait_import(client: ResendClient, iid: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await client.get_import(iid)
        if status.get("status") in ("completed", "failed"):
            return status
        await asyncio.sleep(1)
    raise AssertionError(f"import {iid} did not finish in {timeout} s")


async def import_csv(client: ResendClient, csv: bytes, **form: str) -> dict:
    """POST /contacts/imports with exactly the form fields given (none defaulted)."""
    try:
        body = await client.request(
            "POST", "/contacts/imports", files={"file": ("c.csv", csv, "text/csv")}, data=form
        )
    except ResendAPIError as e:
        if 400 <= e.status < 500 and e.status not in (422, 429):
            pytest.skip(f"imports are not available to this team ({e})")
        raise
    return await wait_import(client, body["id"])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 90) -> bool:
    """Lists may lag (unknown): poll until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(3)


async def cleanup(client: ResendClient) -> None:
    """Delete what this run created: by prefix (contacts by email, lists paged)."""
    for c in await client.list_contacts():
        if c.get("email", "").startswith(PREFIX):
            await _quiet(client.delete_contact(c["id"]))
    for s in await client.list_segments():
        if s.get("name", "").startswith(PREFIX):
            await _quiet(client.delete_segment(s["id"]))
    for t in await client.list_topics():
        if t.get("name", "").startswith(PREFIX):
            await _quiet(client.delete_topic(t["id"]))
    for p in await client.list_properties():
        if p.get("key", "").startswith(PREFIX):
            await _quiet(client.delete_property(p["id"]))


async def _quiet(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except ResendAPIError as e:
        if e.status != 404:
            raise


@pytest.fixture(scope="module", autouse=True)
def _delete_what_this_run_created():
    yield
    if KEY:
        run(cleanup)

        # contacts a lagging list did not show yet: by the emails this module uses
        async def by_email(client: ResendClient) -> None:
            for name in CONTACT_NAMES:
                await _quiet(client.delete_contact(email(name)))

        run(by_email)


CONTACT_NAMES = [
    "ep",
    "case",
    "fresh",
    "dflt",
    "ups",
    "skipseg",
    "topics",
    "chg",
    "chg2",
    *(f"acc{i}" for i in range(6)),
    "single",
]


# -- every endpoint the engine uses ----------------------------------------------------------


def test_every_endpoint_the_engine_uses():
    async def go(c: ResendClient) -> None:
        pid = await c.create_property({"key": key("plan"), "type": "string", "fallback_value": "free"})
        await c.update_property(pid, {"fallback_value": "none"})
        assert any(p["id"] == pid and p["fallback_value"] == "none" for p in await c.list_properties())
        got = await c.request("GET", f"/contact-properties/{pid}")  # (the Pulumi providers' reads)
        assert (got["key"], got["type"], got["fallback_value"]) == (key("plan"), "string", "none")
        sid = await c.create_segment(f"{PREFIX} seg")
        assert any(s["id"] == sid for s in await c.list_segments())
        await c.rename_segment(sid, f"{PREFIX} seg2")
        assert (await c.request("GET", f"/segments/{sid}"))["name"] == f"{PREFIX} seg2"
        tid = await c.create_topic({"name": f"{PREFIX} topic", "default_subscription": "opt_in"})
        await c.update_topic(tid, {"description": "acceptance"})
        assert any(t["id"] == tid and t["description"] == "acceptance" for t in await c.list_topics())
        got = await c.request("GET", f"/topics/{tid}")
        assert (got["name"], got["default_subscription"]) == (f"{PREFIX} topic", "opt_in")

        e = email("ep")
        with pytest.raises(ResendAPIError) as nf:
            await c.get_contact(e)
        assert nf.value.status == 404  # the engine's check before any POST /contacts
        cid = await c.create_contact({"email": e, "first_name": "Ep", "properties": {key("plan"): "pro"}})
        got = await c.get_contact(e)
        assert got["id"] == cid and got["first_name"] == "Ep" and got["last_name"] is None
        assert got["properties"][key("plan")]["value"] == "pro"
        assert (await c.get_contact(cid))["email"] == e
        await c.update_contact(cid, {"last_name": "Last", "properties": {key("plan"): None}})
        got = await c.get_contact(cid)
        assert got["last_name"] == "Last" and key("plan") not in got["properties"]
        await c.add_contact_segment(cid, sid)
        assert [s["id"] for s in await c.list_contact_segments(cid)] == [sid]
        assert await eventually(lambda: _member(c, sid, cid))
        await c.update_contact_topics(cid, [{"id": tid, "subscription": "opt_out"}])
        assert {t["id"]: t["subscription"] for t in await c.list_contact_topics(cid)}[tid] == "opt_out"
        await c.remove_contact_segment(cid, sid)
        assert await c.list_contact_segments(cid) == []
        body = await c.request("DELETE", f"/contacts/{e}")  # recorded shape, by email
        assert body == {"object": "contact", "contact": cid, "deleted": True}
        await c.delete_topic(tid)
        await c.delete_segment(sid)
        await c.delete_property(pid)

        done = await import_csv(
            c,
            f"email,first_name\n{email('acc0')},Imp\n".encode(),
            on_conflict="skip",
            column_map=json.dumps({"email": "email", "first_name": "first_name"}),
        )
        assert done["status"] == "completed" and done["counts"]["created"] == 1
        assert (await c.get_contact(email("acc0")))["first_name"] == "Imp"
        await c.delete_contact(email("acc0"))

    run(go)


async def _member(c: ResendClient, sid: str, cid: str) -> bool:
    return any(m["id"] == cid for m in await c.list_segment_contacts(sid))


# -- the "unknown" rows of docs/emulator.md (asserting the emulator's default) --------------


def test_unknown_email_case_is_one_contact():
    async def go(c: ResendClient) -> None:
        cid = await c.create_contact({"email": email("case").replace("case", "CASE")})
        assert (await c.get_contact(email("case")))["id"] == cid
        await c.delete_contact(cid)

    run(go)


def test_unknown_lists_show_a_write_at_once():
    async def go(c: ResendClient) -> None:
        cid = await c.create_contact({"email": email("fresh")})
        assert any(x["id"] == cid for x in await c.list_contacts())
        await c.delete_contact(cid)

    run(go)


def test_unknown_newer_lists_without_limit_return_everything():
    async def go(c: ResendClient) -> None:
        for i in range(21):
            await c.create_property({"key": key(f"k{i:02d}"), "type": "string"})
            await c.create_topic({"name": f"{PREFIX} t{i:02d}", "default_subscription": "opt_in"})
        props = await c.request("GET", "/contact-properties")
        topics = await c.request("GET", "/topics")
        assert len([p for p in props["data"] if p["key"].startswith(PREFIX)]) == 21
        assert len([t for t in topics["data"] if t["name"].startswith(PREFIX)]) == 21
        assert not props["has_more"] and not topics["has_more"]

    run(go)


def test_unknown_delete_of_an_unknown_contact_is_200_and_of_property_topic_404():
    async def go(c: ResendClient) -> None:
        ghost = str(uuid.uuid4())
        body = await c.request("DELETE", f"/contacts/{ghost}")
        assert body["deleted"] is True
        for path in (f"/contact-properties/{ghost}", f"/topics/{ghost}"):
            with pytest.raises(ResendAPIError) as e:
                await c.request("DELETE", path)
            assert e.value.status == 404, path

    run(go)


def test_unknown_import_on_conflict_default_is_skip():
    async def go(c: ResendClient) -> None:
        await c.create_contact({"email": email("dflt"), "first_name": "Before", "unsubscribed": True})
        done = await import_csv(c, f"email,first_name\n{email('dflt')},After\n".encode())
        got = await c.get_contact(email("dflt"))
        assert done["counts"]["skipped"] == 1
        assert (got["first_name"], got["unsubscribed"]) == ("Before", True)

    run(go)


def test_unknown_import_upsert_keeps_what_the_csv_lacks():
    async def go(c: ResendClient) -> None:
        await c.create_contact({"email": email("ups"), "first_name": "Keep", "unsubscribed": True})
        await import_csv(c, f"email,last_name\n{email('ups')},New\n".encode(), on_conflict="upsert")
        got = await c.get_contact(email("ups"))
        assert got["last_name"] == "New"
        assert (got["first_name"], got["unsubscribed"]) == ("Keep", True)

    run(go)


def test_unknown_import_segments_are_not_applied_to_skipped_rows():
    async def go(c: ResendClient) -> None:
        sid = await c.create_segment(f"{PREFIX} skipseg")
        cid = await c.create_contact({"email": email("skipseg")})
        await import_csv(
            c, f"email\n{email('skipseg')}\n".encode(), on_conflict="skip", segments=json.dumps([{"id": sid}])
        )
        assert await c.list_contact_segments(cid) == []

    run(go)


def test_unknown_contact_topics_list_only_set_subscriptions():
    async def go(c: ResendClient) -> None:
        await c.create_topic({"name": f"{PREFIX} unset", "default_subscription": "opt_in"})
        cid = await c.create_contact({"email": email("topics")})
        assert await c.list_contact_topics(cid) == []

    run(go)


def test_unknown_patch_can_change_the_email():
    async def go(c: ResendClient) -> None:
        cid = await c.create_contact({"email": email("chg")})
        await c.update_contact(cid, {"email": email("chg2")})
        assert (await c.get_contact(cid))["email"] == email("chg2")

    run(go)


def test_unverified_unknown_property_key_is_422():
    async def go(c: ResendClient) -> None:
        with pytest.raises(ResendAPIError) as e:
            await c.create_contact({"email": email("acc5"), "properties": {key("nope"): "x"}})
        assert e.value.status == 422

    run(go)


# -- a small plan / apply / drift / heal cycle ------------------------------------------------


def test_plan_apply_drift_heal():
    seg, topic, prop = f"{PREFIX} members", f"{PREFIX} news", key("tier")
    desired = State(policy=Policy())  # prunes nothing: the rest of the team is not ours
    desired.properties[prop] = Property(prop, "number")
    desired.segments[seg] = Segment(seg, membership="additive")
    desired.topics[topic] = Topic(topic, "opt_in")
    for i in range(1, 6):  # one import group
        desired.add_contact(
            Contact(
                email(f"acc{i}"),
                first_name=f"A{i}",
                properties={prop: i},
                segments={seg},
                topics={topic: "opt_in"},
            )
        )
    desired.add_contact(Contact(email("single"), first_name="S", unsubscribed=False))

    async def plan(c: ResendClient):
        p, t = read_scope(desired)
        live = await read_live(c, property_emails=p, topic_emails=t)
        return diff(desired, live), live

    async def go(c: ResendClient) -> None:
        first, live = await plan(c)
        assert first.counts()[("contact", "create")] == 6
        await engine_apply(first, c, live=live)

        async def converged() -> bool:
            again, live = await plan(c)
            if not again.empty:  # a lagging list: applying is harmless (found by email)
                await engine_apply(again, c, live=live)
            return again.empty

        assert await eventually(converged)

        # drift out of band: a name changed, a contact unsubscribes and opts out of the topic
        await c.update_contact(email("acc1"), {"first_name": "Changed"})
        await c.update_contact(email("acc2"), {"unsubscribed": True})
        live = await read_live(c)
        await c.update_contact_topics(
            email("acc3"), [{"id": live.topics[topic].id, "subscription": "opt_out"}]
        )
        drift, live = await plan(c)
        assert ("contact", "update") in drift.counts()
        await engine_apply(drift, c, live=live)
        assert await eventually(converged)  # healed
        assert (await c.get_contact(email("acc1")))["first_name"] == "A1"
        assert (await c.get_contact(email("acc2")))["unsubscribed"] is True  # consent kept
        subs = {t["id"]: t["subscription"] for t in await c.list_contact_topics(email("acc3"))}
        assert subs[live.topics[topic].id] == "opt_out"

    run(go)
