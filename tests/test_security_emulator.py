"""The emulator's edges (#18 section 6), over HTTP against a real emulator server (uvicorn
in a child process): it runs on developers' laptops, where any web page they open can aim
requests at it.

- DNS rebinding: a ``Host`` that is not the emulator's address is refused, on the web view,
  the control routes and the API alike.
- CSRF: a control request with another site's ``Origin`` (or ``Sec-Fetch-Site``), or with a
  body type an HTML form sends, is refused and changes nothing.
- Request bodies are bounded (413) and read in linear time.
- JSON nested too deep is a 4xx; numbers that are not finite are refused (422), never
  stored, never answered.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from resend_iac.emulator import guard

TEST_HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}


def strict_json(text: str):
    """Parse as a JSON reader that knows no NaN/Infinity would (the Node SDK)."""

    def refuse(name: str):
        raise AssertionError(f"{name} in an answer: not JSON")

    return json.loads(text, parse_constant=refuse)


def contacts(server) -> list[str]:
    r = httpx.get(server.url + "/contacts", headers=TEST_HEADERS)
    return [c["email"] for c in r.json()["data"]]


def with_contact(server) -> None:
    r = httpx.post(server.url + "/contacts", json={"email": "kept@example.com"}, headers=TEST_HEADERS)
    assert r.status_code == 201


# -- DNS rebinding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, auth",
    [
        ("GET", "/_emulator/ui", False),
        ("GET", "/_emulator/ui/contacts", False),
        ("GET", "/_emulator/stats", False),
        ("POST", "/_emulator/reset", False),
        ("GET", "/contacts", True),
        ("POST", "/contacts", True),
    ],
)
def test_a_foreign_host_is_refused(emulator_server, method, path, auth):
    with_contact(emulator_server)
    port = emulator_server.port
    headers = dict(TEST_HEADERS if auth else {}, Host=f"rebind.attacker.example:{port}")
    r = httpx.request(method, emulator_server.url + path, headers=headers, json={"email": "x@example.com"})
    assert r.status_code == 403, r.text
    assert "Host" in r.json()["message"] and "--allow-host" in r.json()["message"]
    assert "kept@example.com" not in r.text  # nothing of the team in the answer
    assert contacts(emulator_server) == ["kept@example.com"]  # nothing reset, nothing created


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_the_emulators_own_names_are_accepted(emulator_server, host):
    headers = {"Host": f"{host}:{emulator_server.port}"}
    assert httpx.get(emulator_server.url + "/_emulator/ui", headers=headers).status_code == 200
    assert (
        httpx.get(emulator_server.url + "/contacts", headers=dict(TEST_HEADERS, **headers)).status_code == 200
    )


def test_allow_host_admits_another_name(start_emulator):
    server = start_emulator(db_path=":memory:", rate_limit=0, allowed_hosts=["emulator.internal"])
    ok = httpx.get(
        server.url + "/contacts", headers=dict(TEST_HEADERS, Host=f"emulator.internal:{server.port}")
    )
    assert ok.status_code == 200
    other = httpx.get(server.url + "/contacts", headers=dict(TEST_HEADERS, Host="other.internal"))
    assert other.status_code == 403


# -- CSRF on the control routes ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Origin": "https://attacker.example", "Content-Type": "text/plain"}, 403),
        ({"Origin": "https://attacker.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "http://localhost:1"}, 403),  # another local site (another port) is another origin
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
    ],
)
def test_cross_site_control_requests_are_refused(emulator_server, headers, status):
    with_contact(emulator_server)
    r = httpx.post(emulator_server.url + "/_emulator/reset", headers=headers, content=b"{}")
    assert r.status_code == status, r.text
    assert contacts(emulator_server) == ["kept@example.com"]
    r = httpx.post(emulator_server.url + "/_emulator/advance", headers=headers, content=b'{"seconds": 5}')
    assert r.status_code == status


def test_same_origin_and_plain_control_requests_work(emulator_server):
    with_contact(emulator_server)
    own = f"http://127.0.0.1:{emulator_server.port}"
    r = httpx.post(
        emulator_server.url + "/_emulator/reset", headers={"Origin": own, "Sec-Fetch-Site": "same-origin"}
    )
    assert r.status_code == 200 and contacts(emulator_server) == []
    with_contact(emulator_server)
    assert httpx.post(emulator_server.url + "/_emulator/reset").status_code == 200  # curl -X POST
    assert contacts(emulator_server) == []
    r = httpx.post(emulator_server.url + "/_emulator/advance", json={"seconds": 1})
    assert r.status_code == 200 and r.json()["advanced"] == 1


# -- body size -------------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_413(emulator_server):
    big = json.dumps({"email": "big@example.com", "first_name": "x" * (guard.MAX_BODY + 10)})
    r = httpx.post(emulator_server.url + "/contacts", content=big, headers=TEST_HEADERS)
    assert r.status_code == 413 and r.json()["statusCode"] == 413
    assert contacts(emulator_server) == []

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 64 * 1024
        yield b'{"email": "chunked@example.com"}'

    r = httpx.post(emulator_server.url + "/contacts", content=chunks(), headers=TEST_HEADERS)
    assert r.status_code == 413
    assert contacts(emulator_server) == []
    r = httpx.post(emulator_server.url + "/_emulator/advance", content=b" " * (guard.MAX_CONTROL_BODY + 1))
    assert r.status_code == 413
    # within the limit, a body of spaces and a JSON object still works
    r = httpx.post(
        emulator_server.url + "/contacts",
        content=b" " * 1000 + b'{"email": "ok@example.com"}',
        headers=TEST_HEADERS,
    )
    assert r.status_code == 201


def test_an_upload_over_the_limit_is_413_and_under_it_works(start_emulator):
    server = start_emulator(db_path=":memory:", rate_limit=0, max_upload=200_000)
    rows = "".join(f"user{i}@example.com\n" for i in range(20_000))  # ~400 KB
    r = httpx.post(
        server.url + "/contacts/imports", files={"file": ("c.csv", "email\n" + rows)}, headers=TEST_HEADERS
    )
    assert r.status_code == 413, r.text
    small = "email\n" + "".join(f"user{i}@example.com\n" for i in range(100))
    r = httpx.post(server.url + "/contacts/imports", files={"file": ("c.csv", small)}, headers=TEST_HEADERS)
    assert r.status_code == 201
    assert guard.MAX_UPLOAD == 50 * 1000 * 1000  # the OAS's import file limit (50 MB)


@pytest.mark.timeout(60)
def test_bodies_are_read_in_linear_time():
    """20 MB in 20,000 chunks: joined once it is a few ms; ``bytes +=`` would copy ~200 GB."""
    chunk = b"x" * 1024
    count = 20_000

    async def go() -> bytes:
        sent = 0

        async def receive():
            nonlocal sent
            sent += 1
            return {"type": "http.request", "body": chunk, "more_body": sent < count}

        return await guard.read_body(receive, limit=len(chunk) * count)

    assert len(asyncio.run(go())) == len(chunk) * count


# -- JSON: depth, non-finite numbers ----------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_4xx(emulator_server, depth):
    nested = "[" * depth + "]" * depth
    for path, headers in (("/contacts", TEST_HEADERS), ("/_emulator/advance", {})):
        body = '{"email": "deep@example.com", "seconds": 1, "properties": {"k": ' + nested + "}}"
        r = httpx.post(emulator_server.url + path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.json()["statusCode"] == r.status_code
    assert contacts(emulator_server) == []


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" + "0" * 400])
def test_non_finite_numbers_are_refused_and_never_answered(emulator_server, number):
    url = emulator_server.url
    r = httpx.post(url + "/contact-properties", json={"key": "score", "type": "number"}, headers=TEST_HEADERS)
    assert r.status_code == 201
    body = '{"email": "n@example.com", "properties": {"score": ' + number + "}}"
    r = httpx.post(url + "/contacts", content=body, headers=TEST_HEADERS)
    assert r.status_code == 422 and r.json()["name"] == "validation_error", r.text
    assert contacts(emulator_server) == []
    r = httpx.post(
        url + "/contacts", json={"email": "n@example.com", "properties": {"score": 1}}, headers=TEST_HEADERS
    )
    assert r.status_code == 201
    r = httpx.patch(
        url + "/contacts/n@example.com",
        content='{"properties": {"score": ' + number + "}}",
        headers=TEST_HEADERS,
    )
    assert r.status_code == 422
    body = '{"key": "other", "type": "number", "fallback_value": ' + number + "}"
    assert httpx.post(url + "/contact-properties", content=body, headers=TEST_HEADERS).status_code == 422
    csv = f"email,score\nm@example.com,{number}\n"
    form = {
        "column_map": json.dumps(
            {"email": "email", "properties": {"score": {"column": "score", "type": "number"}}}
        )
    }
    r = httpx.post(url + "/contacts/imports", files={"file": ("c.csv", csv)}, data=form, headers=TEST_HEADERS)
    assert r.status_code == 201
    iid = r.json()["id"]
    for _ in range(200):
        job = httpx.get(f"{url}/contacts/imports/{iid}", headers=TEST_HEADERS).json()
        if job["status"] == "completed":
            break
        time.sleep(0.05)
    assert job["counts"]["failed"] == 1  # the row, not a stored Infinity
    for path in ("/contacts/n@example.com", "/contacts", "/contact-properties", "/contacts/m@example.com"):
        r = httpx.get(url + path, headers=TEST_HEADERS)
        strict_json(r.text)
    assert (
        httpx.get(url + "/contacts/n@example.com", headers=TEST_HEADERS).json()["properties"]["score"][
            "value"
        ]
        == 1
    )
