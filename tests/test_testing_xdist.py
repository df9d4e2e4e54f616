"""The pytest plugin under pytest-xdist (#21): a small suite using the ``resend_emulator``
fixture, run with ``-n 2`` in a subprocess, must pass with each test seeing only its own
team (never a contact another test, on either worker, created), each worker running its
own server."""

from __future__ import annotations

import json
import textwrap

pytest_plugins = ["pytester"]

SUITE = """
import json, os, pathlib
import pytest, resend

OUT = pathlib.Path(os.environ["RESEND_IAC_XDIST_OUT"])


def record(name, resend_emulator, emails):
    (OUT / (name + ".json")).write_text(json.dumps({
        "worker": os.environ.get("PYTEST_XDIST_WORKER"),
        "pid": os.getpid(),
        "url": resend_emulator.url,
        "emails": emails,
    }))


@pytest.mark.parametrize("i", range(8))
def test_own_team(resend_emulator, i):
    assert resend.Contacts.list()["data"] == []
    resend.Contacts.create({"email": f"user{i}@example.com"})
    emails = [c["email"] for c in resend.Contacts.list()["data"]]
    assert emails == [f"user{i}@example.com"]
    assert resend_emulator.request_counts() == {"GET /contacts": 2, "POST /contacts": 1}
    record(f"own{i}", resend_emulator, emails)


@pytest.mark.resend_seed("team.yaml")
@pytest.mark.parametrize("i", range(4))
def test_seeded_team(resend_emulator, i):
    resend.Contacts.create({"email": f"seeded{i}@example.com"})
    emails = sorted(c["email"] for c in resend.Contacts.list()["data"])
    assert emails == ["ada@example.com", f"seeded{i}@example.com"]
    record(f"seeded{i}", resend_emulator, emails)
"""


def test_fixture_under_xdist_is_isolated(pytester, tmp_path, monkeypatch):
    out = tmp_path / "seen"
    out.mkdir()
    monkeypatch.setenv("RESEND_IAC_XDIST_OUT", str(out))
    (pytester.path / "team.yaml").write_text("version: 1\ncontacts:\n  - email: ada@example.com\n")
    (pytester.path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-n", "2")
    assert result.parseoutcomes().get("passed") == 12, "\n".join(result.outlines + result.errlines)
    seen = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(seen) == 12
    workers = {s["worker"] for s in seen}
    assert workers == {"gw0", "gw1"}  # both workers ran tests, in processes of their own
    by_worker = {w: {(s["pid"], s["url"]) for s in seen if s["worker"] == w} for w in workers}
    assert all(len(v) == 1 for v in by_worker.values())  # one server per worker
    (pid0, url0), (pid1, url1) = by_worker["gw0"].pop(), by_worker["gw1"].pop()
    assert pid0 != pid1 and url0 != url1
