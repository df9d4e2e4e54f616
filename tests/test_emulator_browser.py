"""The web view in a real headless browser (Debian's Chromium; .ci/run installs it): load the
pages of a seeded team and check what a person sees, as the browser parsed and laid it out.

Skipped only when no Chromium can be found. Regenerate the screenshot in docs/ with
``.venv/bin/python tests/test_emulator_browser.py docs/emulator-ui.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from resend_iac.cli.target import seed_app
from resend_iac.emulator import create_app
from resend_iac.testing import EmulatorThread

TEAM = """\
version: 1
properties:
  company: {type: string}
  seats: {type: number}
segments:
  customers: {}
  newsletter: {}
topics:
  product-updates: {default_subscription: opt_in, description: Monthly product news}
contacts:
  - email: ada@example.com
    first_name: Ada
    last_name: Lovelace
    properties: {company: Analytical Engines, seats: 12}
    segments: [customers, newsletter]
    topics: {product-updates: opt_in}
  - email: grace@example.com
    first_name: Grace
    last_name: Hopper
    properties: {company: Navy, seats: 3}
    segments: [customers]
    topics: {product-updates: opt_out}
  - email: linus@example.com
    first_name: Linus
    segments: [newsletter]
  - email: margaret@example.com
    first_name: Margaret
    last_name: Hamilton
    unsubscribed: true
    properties: {company: MIT}
"""
EVIL = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


CHROMIUM = find_chromium()
# Skipped where no Chromium is found, except in CI (CI=true), which installs it: there a
# missing browser fails the test instead of hiding it.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="no Chromium found (.ci/run installs it)"
)


def chromium(*args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "no Chromium found: .ci/run should have installed Debian's chromium"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


class Visible(HTMLParser):
    """The DOM as the browser serialised it: visible text, elements, links, the title."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "script", "head"):
            self._skip += 1
        if tag == "title":
            self._in_title = True
        if tag == "a":
            self._href, self._link_text = dict(attrs).get("href"), []

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head"):
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._link_text).split()), self._href))
            self._href = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._href is not None:
            self._link_text.append(data)
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def load(url: str) -> Visible:
    proc = chromium("--dump-dom", url)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    page = Visible()
    page.feed(proc.stdout)
    return page


def serve_team(tmp: Path) -> tuple[EmulatorThread, object]:
    (tmp / "team.yaml").write_text(TEAM)
    app = create_app(":memory:", rate_limit=0)
    seed_app(app, [tmp / "team.yaml"])
    server = EmulatorThread().start()
    server.switch.use(app)
    return server, app


@pytest.fixture
def team(tmp_path: Path) -> Iterator[EmulatorThread]:
    server, app = serve_team(tmp_path)
    try:
        import httpx

        headers = {"Authorization": "Bearer re_x", "User-Agent": "browser-test"}
        assert (
            httpx.post(
                server.url + "/contacts",
                headers=headers,
                json={"email": "evil@example.com", "first_name": EVIL},
            ).status_code
            == 201
        )
        assert httpx.get(server.url + "/contacts/nobody@example.com", headers=headers).status_code == 404
        assert httpx.get(server.url + "/contacts?limit=2", headers=headers).status_code == 200
        yield server
    finally:
        server.stop()


def test_a_person_sees_the_seeded_team(team):
    contacts = load(team.url + "/_emulator/ui/contacts")
    assert contacts.title == "Contacts · Resend emulator"
    text = contacts.visible
    assert "Contacts (5)" in text
    for seen in (
        "ada@example.com",
        "Ada Lovelace",
        "company=Analytical Engines",
        "seats=12",
        "customers",
        "newsletter",
        "product-updates: opt_in",
        "grace@example.com",
        "product-updates: opt_out",
        "margaret@example.com",
        "linus@example.com",
    ):
        assert seen in text, seen
    # the untrusted first name is shown as text: the browser made no element of it
    assert EVIL in text
    assert "script" not in contacts.tags and "img" not in contacts.tags
    assert contacts.title != "owned"

    # follow the link a person would click: the segment, then its members
    href = next(h for label, h in contacts.links if label == "newsletter")
    segment = load(team.url + href)
    assert "Segment newsletter (2 members)" in segment.visible
    assert "ada@example.com" in segment.visible and "linus@example.com" in segment.visible
    assert "grace@example.com" not in segment.visible

    requests = load(team.url + "/_emulator/ui/requests")
    assert "GET /contacts/nobody@example.com 404" in requests.visible
    assert "POST /contacts 201" in requests.visible
    assert "GET /contacts?limit=2 200" in requests.visible


def screenshot(url: str, out: Path) -> None:
    proc = chromium("--window-size=1280,720", f"--screenshot={out}", url)
    assert out.exists() and out.stat().st_size > 10_000, proc.stderr[-2000:]


def test_screenshot_shows_the_page(team, tmp_path):
    import matplotlib.image

    out = tmp_path / "contacts.png"
    screenshot(team.url + "/_emulator/ui/contacts", out)
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (720, 1280)
    header, body = pixels[5:30, :, :3].mean(), pixels[200:600, :, :3]
    assert header < 0.2  # the dark header bar a person sees at the top
    assert body.mean() > 0.8 and body.std() > 0.05  # a light page with text on it


if __name__ == "__main__":  # regenerate the screenshot kept in docs/
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/emulator-ui.png")
    with tempfile.TemporaryDirectory() as tmp:
        server, _ = serve_team(Path(tmp))
        try:
            screenshot(server.url + "/_emulator/ui/contacts", target.resolve())
        finally:
            server.stop()
    print(f"wrote {target}")
