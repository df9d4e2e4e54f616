"""The emulator's read-only web view (/_emulator/ui), over HTTP from a real uvicorn server:
the pages of a seeded team, links between them, pagination, escaping, recent requests."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from resend_iac.cli.target import seed_app
from resend_iac.emulator import create_app
from resend_iac.testing import EmulatorThread

HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}
EVIL_EMAIL = '"><svg/onload=alert(1)>@evil.example'
EVIL_NAME = "<script>alert('x')</script>"

TEAM = """\
version: 1
properties:
  plan: {type: string, fallback_value: free}
  seats: {type: number}
segments:
  customers: {}
  "<b>VIP</b>": {}
topics:
  product-news: {default_subscription: opt_out, description: "Product & <news>"}
contacts:
  - email: ada@example.com
    first_name: Ada
    last_name: Lovelace
    properties: {plan: pro, seats: 3}
    segments: [customers, "<b>VIP</b>"]
    topics: {product-news: opt_in}
  - email: grace@example.com
    first_name: Grace
    unsubscribed: true
    segments: [customers]
    topics: {product-news: opt_out}
"""


@pytest.fixture
def served() -> Iterator[tuple[EmulatorThread, object]]:
    server = EmulatorThread().start()
    try:
        app = create_app(":memory:", rate_limit=0)
        server.switch.use(app)
        yield server, app
    finally:
        server.stop()


@pytest.fixture
def seeded(served, tmp_path: Path):
    server, app = served
    (tmp_path / "team.yaml").write_text(TEAM)
    seed_app(app, [tmp_path / "team.yaml"])
    with httpx.Client(base_url=server.url, headers=HEADERS) as c:
        r = c.post("/contacts", json={"email": EVIL_EMAIL, "first_name": EVIL_NAME})
        assert r.status_code == 201
    return server, app


def page(server: EmulatorThread, path: str) -> httpx.Response:
    r = httpx.get(server.url + "/_emulator/ui" + path)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]  # no script may run
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    return r


def text_of(r: httpx.Response) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace squeezed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", r.text)).split())


def links(r: httpx.Response) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', r.text)]


def test_contacts_page_shows_the_team(seeded):
    server, _ = seeded
    r = page(server, "/contacts")
    text = text_of(r)
    assert "Contacts (3)" in text
    assert "ada@example.com" in text and "Ada Lovelace" in text
    assert "plan=pro" in text and "seats=3" in text
    assert "product-news: opt_in" in text and "product-news: opt_out" in text
    assert "grace@example.com" in text
    row = re.search(r"<tr>\s*<td><a[^>]*>grace@example.com</a>.*?</tr>", r.text, re.S).group(0)
    assert "yes" in text_of(httpx.Response(200, text=row))  # unsubscribed


def test_untrusted_strings_are_escaped_everywhere(seeded):
    server, app = seeded
    for path in ("", "/contacts", "/segments", "/topics", "/requests"):
        r = page(server, path)
        assert "<script>" not in r.text and "<svg" not in r.text and "<b>VIP" not in r.text, path
    r = page(server, "/contacts")
    assert html.escape(EVIL_NAME, quote=False) in r.text or "&lt;script&gt;" in r.text
    assert EVIL_EMAIL in text_of(r)  # shown, as text
    assert "<b>VIP</b>" in text_of(page(server, "/segments"))
    assert "Product & <news>" in text_of(page(server, "/topics"))


def test_links_between_pages(seeded):
    server, _ = seeded
    r = page(server, "/contacts")
    segment_links = [h for h in links(r) if re.fullmatch(r"/_emulator/ui/segments/[0-9a-f-]{36}", h)]
    assert segment_links
    seg = page(server, segment_links[0][len("/_emulator/ui") :])
    text = text_of(seg)
    assert "Segment customers (2 members)" in text or "Segment <b>VIP</b> (1 members)" in text
    assert "ada@example.com" in text
    ada = next(h for h in links(r) if h.startswith("/_emulator/ui/contacts/"))
    detail = text_of(page(server, ada[len("/_emulator/ui") :]))
    assert "Segments" in detail and "Topics" in detail
    topics = page(server, "/topics")
    assert re.search(r"product-news .* opt_out private 1 1", text_of(topics))
    topic_link = next(h for h in links(topics) if "/topics/" in h)
    assert "ada@example.com" in text_of(page(server, topic_link[len("/_emulator/ui") :]))
    props = text_of(page(server, "/properties"))
    assert "plan string free 1" in props and "seats number 1" in props
    for h in links(page(server, "")):
        if h.startswith("/_emulator/ui"):
            page(server, h[len("/_emulator/ui") :])  # every link of the overview works


def test_unknown_ids_and_writes(seeded):
    server, _ = seeded
    assert httpx.get(server.url + "/_emulator/ui/contacts/nope").status_code == 404
    assert httpx.get(server.url + "/_emulator/ui/segments/nope").status_code == 404
    assert httpx.post(server.url + "/_emulator/ui/contacts").status_code == 405
    assert httpx.get(server.url + "/_emulator/ui/nope").status_code == 404


def test_pagination_of_a_large_team(served):
    server, app = served
    for i in range(120):
        app.store.create_contact(f"p{i:03d}@example.com", {}, {}, [], [])
    first = page(server, "/contacts")
    emails = lambda r: re.findall(r">(p\d{3}@example.com)<", r.text)  # noqa: E731
    assert emails(first) == [f"p{i:03d}@example.com" for i in range(119, 69, -1)]
    older = next(h for h in links(first) if "after=" in h)
    assert not [h for h in links(first) if "before=" in h]
    second = page(server, older[len("/_emulator/ui") :])
    assert emails(second) == [f"p{i:03d}@example.com" for i in range(69, 19, -1)]
    third = page(server, next(h for h in links(second) if "after=" in h)[len("/_emulator/ui") :])
    assert emails(third) == [f"p{i:03d}@example.com" for i in range(19, -1, -1)]
    assert not [h for h in links(third) if "after=" in h]
    back = page(server, next(h for h in links(third) if "before=" in h)[len("/_emulator/ui") :])
    assert emails(back) == emails(second)
    found = page(server, "/contacts?q=p11")
    assert sorted(emails(found)) == [f"p11{i}@example.com" for i in range(10)]


def test_recent_requests_and_imports_with_counts(served):
    server, app = served
    with httpx.Client(base_url=server.url, headers=HEADERS) as c:
        assert c.get("/contacts/missing@example.com").status_code == 404
        csv = "email,first_name\na@example.com,A\nb@example.com,B\nnot-an-email,C\n"
        r = c.post("/contacts/imports", files={"file": ("c.csv", csv, "text/csv")})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 10
        while c.get(f"/contacts/imports/{r.json()['id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    reqs = text_of(page(server, "/requests"))
    assert "GET /contacts/missing@example.com 404" in reqs
    assert "POST /contacts/imports 201" in reqs
    imports = text_of(page(server, "/imports"))
    assert re.search(r"completed .* 3 2 0 0 1", imports), imports
    overview = text_of(page(server, ""))
    assert "2 contacts" in overview and "1 imports" in overview


def test_search_with_odd_characters_never_fails(served):
    server, app = served
    app.store.create_contact("zoë@example.com", {}, {}, [], [])
    for q in ("zo", "zoë", "\U0010ffff", "\ud7ff", "%", "_", "'", "<"):
        r = httpx.get(server.url + "/_emulator/ui/contacts", params={"q": q})
        assert r.status_code == 200, q
    assert "zoë@example.com" in text_of(page(server, "/contacts?q=zo"))


def test_search_follows_the_profile_s_email_keys(served):
    import inspect

    server, _ = served
    if "unknowns" not in inspect.signature(create_app).parameters:
        pytest.skip("this emulator has no profiles")
    for unknowns, found in (("benign", ["Ada@Example.com"]), ("hostile", [])):
        app = create_app(":memory:", rate_limit=0, unknowns=unknowns)
        app.store.create_contact("Ada@Example.com", {}, {}, [], [])
        server.switch.use(app)
        text = page(server, "/contacts?q=ada").text
        assert re.findall(r">(Ada@Example.com)<", text) == found, unknowns
        text = page(server, "/contacts?q=Ada").text
        assert re.findall(r">(Ada@Example.com)<", text) == ["Ada@Example.com"], unknowns
