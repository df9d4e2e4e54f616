"""ResendClient / SyncResendClient: requests, retries, errors, pagination, key hygiene.

Scripted answers through ``httpx.MockTransport`` where the exact sequence of answers is
the point (retries, lost responses); the emulator, in-process and as a real server, where
the behaviour is the API's (see also tests/test_client_limiter.py, tests/test_reader.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback

import httpx
import pytest

from resend_iac.client import ResendAPIError, ResendClient, SyncResendClient
from resend_iac.client.http import USER_AGENT

KEY = "re_SECRET_key_4f2a9c"


def run(coro):
    return asyncio.run(coro)


class Scripted:
    """A MockTransport handler: answers from a script per (method, path), records calls."""

    def __init__(self, routes: dict):
        self.routes = {k: list(v) if isinstance(v, list) else v for k, v in routes.items()}
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        key = (request.method, request.url.raw_path.decode().split("?")[0])
        answer = self.routes.get(key)
        if answer is None:
            return httpx.Response(404, json={"statusCode": 404, "name": "not_found", "message": "no route"})
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.calls if r.method == method and r.url.path == path)


def ok(body: dict, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def err(status: int, name: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"statusCode": status, "name": name, "message": message}, headers=headers
    )


def client(handler, **kw) -> ResendClient:
    kw.setdefault("rate_limit", None)
    kw.setdefault("backoff_base", 0.001)
    return ResendClient(KEY, "http://api.test", transport=httpx.MockTransport(handler), **kw)


# -- basics ---------------------------------------------------------------------------


def test_sends_auth_user_agent_and_json():
    script = Scripted({("PATCH", "/contacts/a%2Bb%40x.com"): [ok({"object": "contact", "id": "c1"})]})

    async def go():
        async with client(script) as c:
            await c.update_contact("a+b@x.com", {"first_name": "A"})
            return c.requests_sent

    assert run(go()) == 1
    (req,) = script.calls
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["user-agent"] == USER_AGENT
    assert json.loads(req.content) == {"first_name": "A"}
    # The email is percent-encoded as one path segment, "+" not turned into a space.
    assert req.url.raw_path == b"/contacts/a%2Bb%40x.com"


def test_from_env_reads_sdk_variables(monkeypatch):
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    monkeypatch.setenv("RESEND_API_URL", "https://from-env.test/")
    c = ResendClient.from_env()
    assert c.base_url == "https://from-env.test"
    assert ResendClient.from_env(base_url="https://flag.test").base_url == "https://flag.test"
    monkeypatch.delenv("RESEND_API_URL")
    assert ResendClient.from_env().base_url == "https://api.resend.com"
    monkeypatch.delenv("RESEND_API_KEY")
    with pytest.raises(ResendAPIError) as info:
        ResendClient.from_env()
    assert info.value.name == "missing_api_key"


def test_typed_error_carries_status_name_message():
    script = Scripted({("GET", "/contacts/nobody%40x.com"): [err(404, "not_found", "Contact not found")]})

    async def go():
        async with client(script) as c:
            await c.get_contact("nobody@x.com")

    with pytest.raises(ResendAPIError) as info:
        run(go())
    e = info.value
    assert (e.status, e.name, e.message) == (404, "not_found", "Contact not found")
    assert len(script.calls) == 1  # a 404 is not retried
    assert "Contact not found" in str(e) and "404" in str(e)


def test_pagination_follows_after_cursor_with_limit_100():
    items = [{"id": f"id{i:03}", "email": f"u{i}@x.com"} for i in range(250)]

    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "100"
        after = request.url.params.get("after")
        start = 0 if after is None else [i["id"] for i in items].index(after) + 1
        data = items[start : start + 100]
        return ok({"object": "list", "has_more": start + 100 < len(items), "data": data})

    script = Scripted({("GET", "/contacts"): [page]})

    async def go():
        async with client(script) as c:
            return await c.list_contacts()

    got = run(go())
    assert [i["id"] for i in got] == [i["id"] for i in items]
    assert [r.url.params.get("after") for r in script.calls] == [None, "id099", "id199"]


def test_pagination_refuses_a_list_that_does_not_advance():
    stuck = ok({"object": "list", "has_more": True, "data": [{"id": "same"}]})
    script = Scripted({("GET", "/segments"): [stuck]})

    async def go():
        async with client(script) as c:
            return await c.list_segments()

    with pytest.raises(ResendAPIError) as info:
        run(go())
    assert info.value.name == "pagination_error"
    assert len(script.calls) == 2


# -- retries ----------------------------------------------------------------------------


def test_5xx_and_connection_errors_are_retried_then_succeed():
    script = Scripted(
        {
            ("GET", "/topics"): [
                err(503, "service_unavailable", "try later"),
                httpx.ReadError("connection reset"),
                err(500, "application_error", "oops"),
                ok({"object": "list", "has_more": False, "data": [{"id": "t1", "name": "News"}]}),
            ]
        }
    )

    async def go():
        async with client(script) as c:
            return await c.list_topics(), c.requests_sent

    topics, sent = run(go())
    assert topics == [{"id": "t1", "name": "News"}]
    assert sent == 4


def test_retries_are_bounded():
    script = Scripted({("GET", "/topics"): [err(502, "bad_gateway", "upstream")]})

    async def go():
        async with client(script, max_retries=3) as c:
            await c.list_topics()

    with pytest.raises(ResendAPIError) as info:
        run(go())
    assert info.value.status == 502
    assert len(script.calls) == 4  # the first try and 3 retries


def test_429_waits_retry_after_then_retries():
    script = Scripted(
        {
            ("GET", "/segments"): [
                err(429, "rate_limit_exceeded", "Too many requests", **{"retry-after": "0.3"}),
                ok({"object": "list", "has_more": False, "data": []}),
            ]
        }
    )

    async def go():
        async with client(script) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await c.list_segments()
            return loop.time() - t0

    elapsed = run(go())
    assert len(script.calls) == 2
    assert elapsed >= 0.29


def test_4xx_is_not_retried():
    script = Scripted({("POST", "/segments"): [err(422, "missing_required_field", "Missing `name` field.")]})

    async def go():
        async with client(script) as c:
            await c.create_segment("")

    with pytest.raises(ResendAPIError) as info:
        run(go())
    assert info.value.status == 422
    assert len(script.calls) == 1


def test_lost_create_response_is_reread_by_email_not_reposted():
    created = {}

    def post(request):
        created["body"] = json.loads(request.content)
        return httpx.ReadError("response lost")  # the server applied it; we never hear

    def get(request):
        if created:
            return ok({"object": "contact", "id": "c-1", "email": "new@x.com"})
        return err(404, "not_found", "Contact not found")

    script = Scripted({("POST", "/contacts"): [post], ("GET", "/contacts/new%40x.com"): [get]})

    async def go():
        async with client(script) as c:
            return await c.create_contact({"email": "new@x.com", "first_name": "N"})

    assert run(go()) == "c-1"
    assert script.count("POST", "/contacts") == 1
    assert script.count("GET", "/contacts/new@x.com") == 1


def test_failed_create_is_reposted_after_checking_it_did_not_apply():
    script = Scripted(
        {
            ("POST", "/contacts"): [
                err(500, "application_error", "boom"),
                ok({"object": "contact", "id": "c-2"}, 201),
            ],
            ("GET", "/contacts/new%40x.com"): [err(404, "not_found", "Contact not found")],
        }
    )

    async def go():
        async with client(script) as c:
            return await c.create_contact({"email": "new@x.com"})

    assert run(go()) == "c-2"
    assert script.count("POST", "/contacts") == 2
    assert script.count("GET", "/contacts/new@x.com") == 1


def test_connect_error_on_create_is_retried_without_reread():
    script = Scripted(
        {("POST", "/contacts"): [httpx.ConnectError("refused"), ok({"object": "contact", "id": "c-3"}, 201)]}
    )

    async def go():
        async with client(script) as c:
            return await c.create_contact({"email": "new@x.com"})

    assert run(go()) == "c-3"
    assert [r.method for r in script.calls] == ["POST", "POST"]


@pytest.mark.parametrize(
    "method,path,list_path,item,call",
    [
        ("POST", "/segments", "/segments", {"id": "s-9", "name": "VIP"}, lambda c: c.create_segment("VIP")),
        (
            "POST",
            "/topics",
            "/topics",
            {"id": "t-9", "name": "News"},
            lambda c: c.create_topic({"name": "News", "default_subscription": "opt_in"}),
        ),
        (
            "POST",
            "/contact-properties",
            "/contact-properties",
            {"id": "p-9", "key": "plan"},
            lambda c: c.create_property({"key": "plan", "type": "string"}),
        ),
    ],
)
def test_lost_create_of_named_objects_is_reread_from_the_list(method, path, list_path, item, call):
    script = Scripted(
        {
            (method, path): [httpx.ReadError("response lost")],
            ("GET", list_path): [ok({"object": "list", "has_more": False, "data": [item]})],
        }
    )

    async def go():
        async with client(script) as c:
            return await call(c)

    assert run(go()) == item["id"]
    assert script.count(method, path) == 1


def test_delete_that_went_through_before_a_lost_response_is_done():
    script = Scripted(
        {("DELETE", "/contacts/c-1"): [httpx.ReadError("lost"), err(404, "not_found", "Contact not found")]}
    )

    async def go():
        async with client(script) as c:
            await c.delete_contact("c-1")

    run(go())
    assert len(script.calls) == 2


def test_import_is_multipart_and_retried():
    seen = []

    def post(request):
        seen.append(request)
        if len(seen) == 1:
            return err(503, "service_unavailable", "later")
        return ok({"object": "contact_import", "id": "imp-1"}, 201)

    script = Scripted({("POST", "/contacts/imports"): [post]})

    async def go():
        async with client(script) as c:
            return await c.create_import(
                b"email\na@x.com\n",
                {"email": {"column": "email"}},
                segment_ids=["s1"],
            )

    assert run(go()) == "imp-1"
    assert len(seen) == 2
    body = seen[-1].content
    assert seen[-1].headers["content-type"].startswith("multipart/form-data")
    assert b"a@x.com" in body and b'[{"id": "s1"}]' in body
    assert b'name="on_conflict"\r\n\r\nskip' in body  # always explicit; never overwrites


# -- key hygiene ------------------------------------------------------------------------------


def test_key_never_in_repr_errors_tracebacks_or_logs(caplog):
    script = Scripted(
        {
            ("GET", "/contacts/x"): [err(401, "missing_api_key", "Missing API Key")],
            ("GET", "/topics"): [httpx.ConnectError("cannot connect")],
        }
    )
    caplog.set_level(logging.DEBUG)
    c = client(script, max_retries=1)
    texts = [repr(c), str(c), repr(c.limiter), repr(c._http.auth)]

    async def go(coro):
        try:
            await coro
        except ResendAPIError as e:
            return e

    for call in (c.get_contact("x"), c.list_topics()):
        e = run(go(call))
        assert isinstance(e, ResendAPIError)
        texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
        texts.append(repr(pickle.loads(pickle.dumps(e))))
    texts.append(caplog.text)
    with pytest.raises(TypeError):
        pickle.dumps(c)
    for text in texts:
        assert KEY not in text
        assert KEY[3:] not in text
    assert caplog.text  # something was logged, and it was checked


# -- the synchronous facade ------------------------------------------------------------------------


def test_sync_client_same_methods_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    script = Scripted(
        {
            ("POST", "/segments"): [
                lambda r: ok({"object": "segment", "id": "s-" + json.loads(r.content)["name"]}, 201)
            ],
            ("GET", "/segments"): [
                ok({"object": "list", "has_more": False, "data": [{"id": "s1", "name": "A"}]})
            ],
        }
    )
    sc = SyncResendClient(KEY, "http://api.test", transport=httpx.MockTransport(script), rate_limit=None)
    try:
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(sc.create_segment, [f"n{i}" for i in range(8)]))
        assert ids == [f"s-n{i}" for i in range(8)]
        assert sc.list_segments() == [{"id": "s1", "name": "A"}]
        assert sc.paginate("/segments") == [{"id": "s1", "name": "A"}]
        assert sc.requests_sent == 10
        assert KEY not in repr(sc)
        with pytest.raises(TypeError):
            pickle.dumps(sc)
    finally:
        sc.close()
    with pytest.raises(RuntimeError):
        sc.list_segments()


# -- against the emulator --------------------------------------------------------------------


class LoseResponses(httpx.AsyncBaseTransport):
    """Performs the request (the server applies it), then drops the answer: the first
    ``times`` requests matching ``method path`` raise ``httpx.ReadError``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str, path: str, times: int = 1):
        self.inner, self.method, self.path, self.times = inner, method, path, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.times and request.method == self.method and request.url.path == self.path:
            self.times -= 1
            await response.aread()
            raise httpx.ReadError("connection dropped after the server answered")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_lost_responses_make_no_duplicates_on_the_emulator():
    from resend_iac.emulator import create_app

    app = create_app(":memory:", rate_limit=0)
    inner = httpx.ASGITransport(app=app)
    lossy = LoseResponses(LoseResponses(inner, "POST", "/contacts", times=2), "POST", "/segments")
    async with ResendClient(
        KEY, "http://emulator", transport=lossy, rate_limit=None, backoff_base=0.001
    ) as c:
        sid = await c.create_segment("VIP")
        cid = await c.create_contact(
            {"email": "Lost@Example.com", "first_name": "L", "segments": [{"id": sid}]}
        )
        other = await c.create_contact({"email": "second@example.com"})  # the second loss
        contacts = await c.list_contacts()
        segments = await c.list_segments()
        members = await c.list_segment_contacts(sid)
        stats = (await c._http.get("/_emulator/stats")).json()
    assert [s["id"] for s in segments] == [sid]
    assert sorted(x["id"] for x in contacts) == sorted([cid, other])
    assert [m["id"] for m in members] == [cid]
    assert stats["by_route"]["POST /contacts"] == 2  # each create was posted once
    assert stats["by_route"]["POST /segments"] == 1


async def test_sync_client_against_a_real_server(emulator_server):
    def work():
        with SyncResendClient(KEY, emulator_server.url, rate_limit=None) as sc:
            sid = sc.create_segment("S")
            cid = sc.create_contact({"email": "s@x.com", "segments": [{"id": sid}]})
            return sid, cid, sc.get_contact("s@x.com"), sc.list_segment_contacts(sid), sc.read_live()

    # From a worker thread while this thread runs an event loop (as under Pulumi's gRPC pool).
    sid, cid, got, members, state = await asyncio.to_thread(work)
    assert got["id"] == cid and [m["id"] for m in members] == [cid]
    assert state.contacts["s@x.com"].segments == {"S"} and state.segments["S"].id == sid


def test_key_never_logged_over_real_http(emulator_server, caplog):
    """httpx/httpcore debug logging of a real exchange, and a failing call's traceback."""
    caplog.set_level(logging.DEBUG)

    async def go():
        async with ResendClient(KEY, emulator_server.url, rate_limit=None) as c:
            await c.create_segment("S")
            try:
                await c.get_contact("missing@x.com")
            except ResendAPIError as e:
                return e

    e = run(go())
    assert e is not None and e.status == 404
    assert "httpcore" in caplog.text or "HTTP Request" in caplog.text  # debug logs were on
    for text in (caplog.text, str(e), repr(e), "".join(traceback.format_exception(e))):
        assert KEY not in text


def test_quota_429_and_long_retry_after_are_raised_not_waited():
    script = Scripted(
        {
            ("GET", "/topics"): [err(429, "daily_quota_exceeded", "quota")],
            ("GET", "/segments"): [err(429, "rate_limit_exceeded", "slow down", **{"retry-after": "3600"})],
        }
    )

    async def go(call):
        async with client(script) as c:
            try:
                await call(c)
            except ResendAPIError as e:
                return e

    e1 = run(go(lambda c: c.list_topics()))
    e2 = run(go(lambda c: c.list_segments()))
    assert (e1.status, e1.name) == (429, "daily_quota_exceeded")
    assert (e2.status, e2.name) == (429, "rate_limit_exceeded") and "longer than" in e2.message
    assert len(script.calls) == 2


def test_bad_base_url_is_a_clear_error():
    async def go():
        async with ResendClient(KEY, "api.resend.com", rate_limit=None) as c:
            await c.list_topics()

    with pytest.raises(ResendAPIError) as info:
        run(go())
    assert info.value.name == "invalid_url" and "api.resend.com" in info.value.message
