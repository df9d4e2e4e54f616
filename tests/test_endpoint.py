"""The API endpoint (issue 18, section 3): a redirect is an error naming the URL and the
Location, and nothing (no key) goes to where it points; plain http only to loopback; the key
never on the command line (--api-key-file PATH|-); a malformed 200 answer is a clear error
naming the route and the field, never a traceback or a guess."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.client import ResendClient
from resend_iac.client.endpoint import endpoint_problem, is_loopback
from resend_iac.client.http import EndpointError, InvalidResponseError
from tests.fake_api import EMPTY_LIST, FakeAPI, lists

KEY = "re_endpoint_test_key_1234567890"


@pytest.fixture
def fake_api():
    started: list[FakeAPI] = []

    def start(respond):
        server = FakeAPI(respond)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("RESEND_API_KEY", "RESEND_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    doc = {
        "version": 1,
        "properties": {"tier": {"type": "string"}},
        "topics": {"news": {}},
        "contacts": [
            {"email": "ann@example.com", "properties": {"tier": "pro"}, "topics": {"news": "opt_in"}},
            {"email": "bob@example.com"},
        ],
    }
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "team.yaml"


def run(*args, env=None, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=input)


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_naming_url_and_location_and_the_target_gets_nothing(status, fake_api, config):
    elsewhere = fake_api(lambda m, p: (200, {}, EMPTY_LIST))
    redirecting = fake_api(lambda m, p: (status, {"location": f"{elsewhere.url}{p}"}, None))
    r = run("plan", config, env={"RESEND_API_KEY": KEY, "RESEND_API_URL": redirecting.url})
    assert r.exit_code == 1, r.output
    assert "to create" not in r.output  # main made a plan of an empty team from the 3xx
    assert f"answered {status}" in r.output and redirecting.url in r.output
    assert f"{elsewhere.url}/" in r.output  # the Location
    assert "follows no redirects" in r.output and "Traceback" not in r.output
    assert elsewhere.requests == []  # nothing, so no key, reached the redirect target
    assert all(h.get("Authorization") == f"Bearer {KEY}" for _, _, h in redirecting.requests)


def test_a_redirect_location_is_quoted_escaped(fake_api):
    evil = "https://x.test/%0A::error::owned/" + "a" * 5000
    server = fake_api(lambda m, p: (302, {"location": evil}, None))

    async def go():
        async with ResendClient(KEY, server.url, rate_limit=None, max_retries=0) as c:
            await c.list_topics()

    with pytest.raises(EndpointError) as info:
        asyncio.run(go())
    assert info.value.status == 302 and info.value.name == "redirect"
    assert "\n" not in info.value.message and "https://x.test/%0A::error::owned/aaa" in info.value.message
    assert len(info.value.message) < 1000  # the Location is cut, not quoted whole


# -- plain http -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://api.resend.com", "http://10.0.0.5:8025", "http://example.com/", "http://[2001:db8::1]:80"],
)
def test_plain_http_to_another_host_is_refused_before_any_request(url, config):
    r = run("plan", config, env={"RESEND_API_KEY": KEY, "RESEND_API_URL": url})
    assert r.exit_code == 1
    assert "use https://" in r.output and "unencrypted" in r.output and "Nothing was sent" in r.output
    assert KEY not in r.output


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.1.2.3", "https://x.test"],
)
def test_https_and_loopback_http_are_accepted(url):
    assert endpoint_problem(url) is None


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("::ffff:127.0.0.1")
    assert is_loopback("LOCALHOST") and not is_loopback("localhost.example.com")
    assert not is_loopback("10.0.0.1") and not is_loopback("127.0.0.1.nip.io")


def test_the_client_refuses_plain_http_for_every_face(monkeypatch):
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    monkeypatch.setenv("RESEND_API_URL", "http://api.resend.com")
    with pytest.raises(EndpointError) as info:
        ResendClient.from_env()
    assert info.value.name == "insecure_url"
    # an in-process transport is not on the wire: allowed (the --local emulator, tests)
    ResendClient(KEY, "http://emulator", transport=httpx.MockTransport(lambda r: httpx.Response(200)))


def test_plain_http_to_the_emulator_on_loopback_works(config, emulator_server):
    r = run("plan", config, env={"RESEND_API_KEY": KEY, "RESEND_API_URL": emulator_server.url})
    assert r.exit_code == 0, r.output
    assert "2 contacts to create" in r.output


# -- the key off the command line -------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "apply", "export"])
def test_api_key_on_the_command_line_is_refused_without_echoing_it(command, config, fake_api):
    server = fake_api(lambda m, p: (200, {}, EMPTY_LIST))
    args = [config, "--auto-approve"] if command == "apply" else [config] if command == "plan" else []
    r = run(command, *args, "--api-key", KEY, env={"RESEND_API_URL": server.url})
    assert r.exit_code == 1
    assert "--api-key-file" in r.output and "process list" in r.output
    assert KEY not in r.output
    assert server.requests == []


def test_api_key_file_and_stdin(config, fake_api, tmp_path):
    seen = fake_api(lambda m, p: (200, {}, EMPTY_LIST))
    (tmp_path / "key").write_text(f"  {KEY}\n")
    env = {"RESEND_API_URL": seen.url}
    r = run("plan", config, "--api-key-file", tmp_path / "key", env=env)
    assert r.exit_code == 0, r.output
    r = run("plan", config, "--api-key-file", "-", env=env, input=f"{KEY}\n")
    assert r.exit_code == 0, r.output
    assert seen.requests and {h.get("Authorization") for _, _, h in seen.requests} == {f"Bearer {KEY}"}


@pytest.mark.parametrize(
    "content, says",
    [
        ("", "empty"),
        ("re_a re_b", "more than one"),
        ("re_a\nre_b\n", "more than one"),
        ("x" * 5000, "longer"),
    ],
)
def test_a_bad_key_file_is_a_clear_error_quoting_nothing(content, says, config, tmp_path):
    (tmp_path / "key").write_text(content)
    r = run("plan", config, "--api-key-file", tmp_path / "key", env={"RESEND_API_URL": "http://127.0.0.1:9"})
    assert r.exit_code == 1 and says in r.output
    assert "re_a" not in r.output and "xxxx" not in r.output


def test_key_file_missing_and_with_local(config, tmp_path):
    r = run("plan", config, "--api-key-file", tmp_path / "nope")
    assert r.exit_code == 1 and "cannot read it" in r.output
    (tmp_path / "key").write_text(KEY)
    r = run("plan", config, "--local", "--api-key-file", tmp_path / "key")
    assert r.exit_code == 1 and "--local needs no key" in r.output


# -- malformed 200 answers ---------------------------------------------------------------------

CONTACT = {
    "id": "c1",
    "email": "ann@example.com",
    "first_name": None,
    "last_name": None,
    "unsubscribed": False,
}
PROPERTY = {"id": "p1", "key": "tier", "type": "string", "fallback_value": None}
TOPIC = {"id": "t1", "name": "news", "default_subscription": "opt_in", "visibility": "private"}


def page(*items):
    return {"object": "list", "has_more": False, "data": list(items)}


# (what the fake API answers for which route, the route and the field the error must name)
MALFORMED = [
    ({"/contacts": page({**CONTACT, "email": {"a": 1}})}, "GET /contacts", "'email' is an object"),
    (
        {"/contacts": page({**CONTACT, "unsubscribed": "maybe"})},
        "GET /contacts",
        "'unsubscribed' is a string",
    ),
    ({"/contacts": page({**CONTACT, "first_name": 7})}, "GET /contacts", "'first_name' is a number"),
    ({"/contacts": page({**CONTACT, "email": None})}, "GET /contacts", "'email' is missing"),
    ({"/contacts": page("ann@example.com")}, "GET /contacts", "data[0] is a string"),
    ({"/contacts": page({"email": "ann@example.com"})}, "GET /contacts", "data[0].id is missing"),
    ({"/contacts": {"object": "list", "data": {"x": 1}}}, "GET /contacts", "'data' is an object"),
    ({"/contacts": {**page(CONTACT), "has_more": "yes"}}, "GET /contacts", "'has_more' is a string"),
    ({"/contacts": [CONTACT]}, "GET /contacts", "not an object"),
    ({"/contacts": b"<html>hello</html>"}, "GET /contacts", "not JSON"),
    (
        {"/topics": page({**TOPIC, "default_subscription": "sometimes"})},
        "GET /topics",
        "'default_subscription'",
    ),
    ({"/topics": page({**TOPIC, "name": ["news"]})}, "GET /topics", "'name' is a list"),
    ({"/topics": page({**TOPIC, "visibility": True})}, "GET /topics", "'visibility' is a boolean"),
    (
        {"/contact-properties": page({**PROPERTY, "fallback_value": {}})},
        "GET /contact-properties",
        "'fallback_value'",
    ),
    ({"/contact-properties": page({**PROPERTY, "key": 5})}, "GET /contact-properties", "'key' is a number"),
    ({"/segments": page({"id": "s1", "name": None})}, "GET /segments", "'name' is missing"),
    (
        {
            "/contacts": page(CONTACT),
            "/contact-properties": page(PROPERTY),
            "/contacts/c1": {**CONTACT, "properties": {"tier": {"value": [1]}}},
        },
        "GET /contacts/c1",
        "'value' is a list",
    ),
    (
        {
            "/contacts": page(CONTACT),
            "/contact-properties": page(PROPERTY),
            "/contacts/c1": {**CONTACT, "properties": ["tier"]},
        },
        "GET /contacts/c1",
        "'properties' is a list",
    ),
    (
        {
            "/contacts": page(CONTACT),
            "/topics": page(TOPIC),
            "/contacts/c1": {**CONTACT, "properties": {}},
            "/contacts/c1/topics": page({"id": "t1", "subscription": "yes"}),
        },
        "GET /contacts/c1/topics",
        "'subscription' is a string",
    ),
]


@pytest.mark.parametrize("answers, route, field", MALFORMED, ids=[m[2] for m in MALFORMED])
def test_a_malformed_200_is_an_error_naming_route_and_field(answers, route, field, config, fake_api):
    def respond(method, path):
        return (
            lists({})(method, path)
            if path.split("?")[0] not in answers
            else (200, {}, answers[path.split("?")[0]])
        )

    server = fake_api(respond)
    r = run("plan", config, "--refresh", "full", env={"RESEND_API_KEY": KEY, "RESEND_API_URL": server.url})
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "to create" not in r.output
    assert route in r.output and field in r.output, r.output
    assert "is not what that route returns" in r.output


def test_a_create_answer_without_an_id_is_an_error(fake_api):
    server = fake_api(lambda m, p: (201, {}, {"object": "segment"}) if m == "POST" else (200, {}, EMPTY_LIST))

    async def go():
        async with ResendClient(KEY, server.url, rate_limit=None, max_retries=0) as c:
            return await c.create_segment("news")

    with pytest.raises(InvalidResponseError) as info:
        asyncio.run(go())
    assert info.value.path == "/segments" and "'id' is missing" in info.value.message
