"""read_live against the emulator: what it reads into the model, and how many requests.

In-process (ASGITransport, rate limiting off): the logic and the request counts. The
emulator counts every request in ``GET /_emulator/stats``.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from resend_iac.client import ResendClient, read_live
from resend_iac.emulator import create_app
from resend_iac.model import UNSET

KEY = "re_reader_test_key"


def in_process(app=None) -> ResendClient:
    app = app or create_app(":memory:", rate_limit=0)
    return ResendClient(KEY, "http://emulator", transport=httpx.ASGITransport(app=app), rate_limit=None)


async def stats(c: ResendClient) -> dict:
    return (await c._http.get("/_emulator/stats")).json()


def delta(before: dict, after: dict) -> dict[str, int]:
    routes = set(before["by_route"]) | set(after["by_route"])
    out = {r: after["by_route"].get(r, 0) - before["by_route"].get(r, 0) for r in routes}
    return {r: n for r, n in out.items() if n}


async def import_csv(c: ResendClient, csv_text: str, column_map: dict, **kw) -> dict:
    iid = await c.create_import(csv_text.encode(), column_map, **kw)
    for _ in range(600):
        job = await c.get_import(iid)
        if job["status"] in ("completed", "failed"):
            assert job["status"] == "completed", job
            return job
        await asyncio.sleep(0.02)
    raise AssertionError("import did not finish")


async def test_read_live_fills_the_model():
    async with in_process() as c:
        plan = await c.create_property({"key": "plan", "type": "string", "fallback_value": "free"})
        seats = await c.create_property({"key": "seats", "type": "number"})
        vip = await c.create_segment("VIP")
        await c.create_segment("Trial")
        news = await c.create_topic(
            {
                "name": "News",
                "default_subscription": "opt_in",
                "description": "Monthly",
                "visibility": "public",
            }
        )
        promo = await c.create_topic({"name": "Promo", "default_subscription": "opt_out"})
        a = await c.create_contact(
            {
                "email": "Ann@Example.com",
                "first_name": "Ann",
                "properties": {"plan": "pro", "seats": 3},
                "segments": [{"id": vip}],
            }
        )
        await c.create_contact(
            {
                "email": "bob@example.com",
                "last_name": "B",
                "unsubscribed": True,
                "properties": {"plan": "team"},
            }
        )
        await c.create_contact({"email": "cy@example.com"})
        await c.update_contact_topics(a, [{"id": news, "subscription": "opt_out"}])
        await c.update_contact_topics("bob@example.com", [{"id": promo, "subscription": "opt_in"}])

        before = await stats(c)
        state = await read_live(
            c,
            property_emails={"ann@example.com", "bob@example.com", "ghost@example.com"},
            topic_emails={"ANN@example.com ", "cy@example.com", "ghost@example.com"},
        )
        counts = delta(before, await stats(c))

    assert set(state.properties) == {"plan", "seats"}
    assert state.properties["plan"].type == "string"
    assert state.properties["plan"].fallback_value == "free"
    assert state.properties["plan"].id == plan and state.properties["seats"].id == seats
    assert state.properties["seats"].fallback_value is None
    assert set(state.segments) == {"VIP", "Trial"} and state.segments["VIP"].id == vip
    assert state.topics["News"].id == news
    assert state.topics["News"].description == "Monthly" and state.topics["News"].visibility == "public"
    assert state.topics["Promo"].default_subscription == "opt_out"

    assert set(state.contacts) == {"ann@example.com", "bob@example.com", "cy@example.com"}
    ann, bob, cy = (state.contacts[k] for k in ("ann@example.com", "bob@example.com", "cy@example.com"))
    assert ann.email == "Ann@Example.com" and ann.id == a and ann.created_at
    assert (ann.first_name, ann.last_name, ann.unsubscribed) == ("Ann", None, False)
    assert ann.properties == {"plan": "pro", "seats": 3}
    assert ann.segments == {"VIP"} and bob.segments == set() and cy.segments == set()
    assert ann.topics == {"News": "opt_out"}
    assert bob.unsubscribed is True and bob.properties == {"plan": "team"}
    assert bob.topics is UNSET  # not in topic_emails
    assert cy.properties is UNSET  # not in property_emails
    assert isinstance(cy.topics, dict) and "News" not in cy.topics  # read: nothing set
    # Per-contact reads only for the live contacts asked for (not for ghost@).
    assert counts["GET /contacts/{id}"] == 2
    assert counts["GET /contacts/{id}/topics"] == 2
    assert counts["GET /segments/{id}/contacts"] == 2


async def test_duplicate_names_keep_the_first_and_warn():
    async with in_process() as c:
        await c.create_segment("Dup")
        await c.create_segment("Dup")
        await c.create_topic({"name": "T", "default_subscription": "opt_in"})
        await c.create_topic({"name": "T", "default_subscription": "opt_out"})
        listed_segments = await c.list_segments()
        listed_topics = await c.list_topics()
        before = await stats(c)
        warnings: list[str] = []
        reports = []
        state = await read_live(c, warnings=warnings, progress=lambda *a: reports.append(a))
        counts = delta(before, await stats(c))
    assert state.segments["Dup"].id == listed_segments[0]["id"]
    assert state.topics["T"].id == listed_topics[0]["id"]
    assert len(warnings) == 2 and any("segments" in w for w in warnings)
    assert any(r[2].startswith("warning:") for r in reports)
    assert counts["GET /segments/{id}/contacts"] == 1  # the left-out duplicate is not read


async def test_request_count_for_10000_contacts_in_5_segments():
    """The done-when bound: ceil(10000/100) contact pages + ceil(members/100) per
    segment + 3 small lists, and no per-contact request."""
    n = 10_000
    app = create_app(":memory:", rate_limit=0)
    async with in_process(app) as c:
        seg_ids = [await c.create_segment(f"seg{k}") for k in range(5)]
        await c.create_property({"key": "plan", "type": "string"})
        await c.create_topic({"name": "News", "default_subscription": "opt_in"})
        rows = "email,first_name,plan\n" + "".join(f"u{i}@x.com,U{i},p{i % 3}\n" for i in range(n))
        await import_csv(
            c,
            rows,
            {
                "email": "email",
                "first_name": "first_name",
                "properties": {"plan": {"column": "plan", "type": "string"}},
            },
        )
        members = {}
        for k, sid in enumerate(seg_ids):
            chosen = range(k, n, 2 + 3 * k)  # 5000, 2000, 1250, ... members
            members[f"seg{k}"] = len(chosen)
            await import_csv(
                c,
                "email\n" + "".join(f"u{i}@x.com\n" for i in chosen),
                {"email": "email"},
                segment_ids=[sid],
                on_conflict="upsert",
            )

        reports = []
        before = await stats(c)
        sent_before = c.requests_sent
        state = await read_live(c, progress=lambda *a: reports.append(a))
        after = await stats(c)
        counts = delta(before, after)

    bound = math.ceil(n / 100) + sum(math.ceil(m / 100) for m in members.values()) + 3
    total = after["total"] - before["total"]
    assert total <= bound, counts
    assert c.requests_sent - sent_before == total
    assert counts["GET /contacts"] == math.ceil(n / 100)
    assert "GET /contacts/{id}" not in counts and "GET /contacts/{id}/topics" not in counts
    assert len(state.contacts) == n
    for name, m in members.items():
        assert len(state.segment_members(name)) == m
    for i in (0, 1, 6, 7, 16, 9999):
        expected = {f"seg{k}" for k in range(5) if i >= k and (i - k) % (2 + 3 * k) == 0}
        assert state.contacts[f"u{i}@x.com"].segments == expected
    assert all(c.properties is UNSET and c.topics is UNSET for c in state.contacts.values())
    # Progress: the contact listing was reported along the way, and the end.
    listed = [r for r in reports if r[2] == "contacts listed"]
    assert len(listed) >= 10 and listed[-1][:2] == (n, n)


async def test_read_live_through_faults_on_a_real_server(start_emulator):
    """Injected 500/503s over HTTP: every list and per-contact read is retried; the
    result equals a clean read."""
    server = start_emulator(rate_limit=0, fail_rate=0.3, seed=7)
    async with ResendClient(KEY, server.url, rate_limit=None, backoff_base=0.01, max_retries=10) as c:
        # Writes through the faults too (creates are re-read, never duplicated).
        sid = await c.create_segment("S")
        tid = await c.create_topic({"name": "T", "default_subscription": "opt_in"})
        await c.create_property({"key": "k", "type": "number"})
        for i in range(20):
            await c.create_contact(
                {"email": f"f{i}@x.com", "properties": {"k": i}, "segments": [{"id": sid}] if i % 2 else []}
            )
        await c.update_contact_topics("f3@x.com", [{"id": tid, "subscription": "opt_out"}])
        emails = {f"f{i}@x.com" for i in range(20)}
        state = await read_live(c, property_emails=emails, topic_emails=emails)
    st = server.stats()
    assert st["total"] > c.requests_sent * 0.9 and st["total"] <= c.requests_sent
    assert len(state.contacts) == 20
    assert all(state.contacts[f"f{i}@x.com"].properties == {"k": i} for i in range(20))
    assert state.segment_members("S") == {f"f{i}@x.com" for i in range(1, 20, 2)}
    assert state.contacts["f3@x.com"].topics == {"T": "opt_out"}
    assert len(state.segments) == 1 and len(state.topics) == 1


async def test_a_failing_read_raises_the_api_error_itself():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/segments":
            return httpx.Response(
                401, json={"statusCode": 401, "name": "missing_api_key", "message": "Missing API Key"}
            )
        return httpx.Response(200, json={"object": "list", "has_more": False, "data": []})

    from resend_iac.client import ResendAPIError

    async with ResendClient(
        KEY, "http://api.test", transport=httpx.MockTransport(handler), rate_limit=None
    ) as c:
        with pytest.raises(ResendAPIError) as info:
            await read_live(c)
    assert (info.value.status, info.value.name) == (401, "missing_api_key")
    assert KEY not in "".join(__import__("traceback").format_exception(info.value))


async def test_members_are_matched_by_id_and_duplicate_emails_warn():
    """A (hypothetical) team with two contacts whose emails differ only in case: the
    first listed is kept, memberships follow contact ids, a warning says so."""
    lists = {
        "/contacts": [
            {"id": "c1", "email": "A@x.com"},
            {"id": "c2", "email": "a@x.com"},
            {"id": "c3", "email": "b@x.com"},
        ],
        "/segments": [{"id": "s1", "name": "S"}],
        "/segments/s1/contacts": [{"id": "c2", "email": "a@x.com"}, {"id": "c3", "email": "b@x.com"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        data = lists.get(request.url.path, [])
        return httpx.Response(200, json={"object": "list", "has_more": False, "data": data})

    warnings: list[str] = []
    async with ResendClient(
        KEY, "http://api.test", transport=httpx.MockTransport(handler), rate_limit=None
    ) as c:
        state = await read_live(c, warnings=warnings)
    assert state.contacts["a@x.com"].id == "c1"
    assert state.contacts["a@x.com"].segments == set()  # c2 is the member, not c1
    assert state.contacts["b@x.com"].segments == {"S"}
    assert len(warnings) == 1 and "c2" in warnings[0]
