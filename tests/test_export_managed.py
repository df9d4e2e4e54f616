"""Issue 23 item 10: export writes what a person would manage. Omitted = unmanaged (no
nulls), consent out unless --with-consent, segments additive unless
--authoritative-segments, and the header says what was left out; export -> edit -> apply
then reverts nothing the contacts did since. Over HTTP against an emulator server."""

from __future__ import annotations

import asyncio

import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.client import ResendClient

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
    properties: {company: Acme}
    segments: [customers]
    topics: {news: opt_in}
  - email: bob@example.com
    segments: [customers]
    topics: {news: opt_out}
  - email: carol@example.com
    unsubscribed: true
"""


@pytest.fixture
def remote(emulator_server, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", "re_test_key")
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    monkeypatch.setenv("NO_COLOR", "1")
    return emulator_server


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def people(remote, fn):
    """Run ``fn(client)`` as the contacts themselves (out of band, straight to the API)."""

    async def go():
        async with ResendClient("re_test_key", remote.url, rate_limit=None) as client:
            return await fn(client)

    return asyncio.run(go())


def applied(tmp_path):
    (tmp_path / "team.yaml").write_text(TEAM)
    r = run("apply", tmp_path / "team.yaml", "--auto-approve")
    assert r.exit_code == 0, r.output


def test_export_leaves_out_nulls_and_consent_and_writes_segments_additive(remote, tmp_path):
    applied(tmp_path)
    r = run("export", "--out", tmp_path / "export.yaml")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "export.yaml").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("not written as null" in line for line in header)
    assert any("Consent is left out" in line and "--with-consent" in line for line in header)
    assert any("Segments are additive" in line and "--authoritative-segments" in line for line in header)
    data = yaml.safe_load(text)
    assert "null" not in text.split("\n", len(header))[-1]
    for c in data["contacts"]:
        assert None not in c.values(), c
        assert "unsubscribed" not in c and "topics" not in c, c
    assert data["segments"] == {"customers": {"membership": "additive"}}
    ada = next(c for c in data["contacts"] if c["email"] == "ada@example.com")
    assert ada == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "properties": {"company": "Acme"},
        "segments": ["customers"],
    }
    assert run("plan", tmp_path / "export.yaml", "--detailed-exitcode").exit_code == 0


def test_export_edit_apply_reverts_nothing_the_contacts_did_since(remote, tmp_path):
    applied(tmp_path)
    assert run("export", "--out", tmp_path / "export.yaml").exit_code == 0

    async def meanwhile(client):
        tid = (await client.list_topics())[0]["id"]
        sid = (await client.list_segments())[0]["id"]
        await client.update_contact("bob@example.com", {"first_name": "Bob"})  # sets his name
        await client.update_contact_topics("ada@example.com", [{"id": tid, "subscription": "opt_out"}])
        await client.update_contact_topics("bob@example.com", [{"id": tid, "subscription": "opt_in"}])
        await client.update_contact("carol@example.com", {"unsubscribed": False})  # opts back in
        await client.create_contact({"email": "dan@example.com"})  # a sign-up
        await client.add_contact_segment("dan@example.com", sid)

    people(remote, meanwhile)
    # an edit: a new contact added to the exported file
    data = yaml.safe_load((tmp_path / "export.yaml").read_text())
    data["contacts"].append({"email": "eve@example.com", "segments": ["customers"]})
    (tmp_path / "export.yaml").write_text(yaml.safe_dump(data))
    r = run("plan", tmp_path / "export.yaml", "--format", "json")
    assert r.exit_code == 0, r.output
    import json

    changes = json.loads(r.output)["changes"]
    assert [(c["kind"], c["key"]) for c in changes] == [("contact", "eve@example.com")], changes
    assert run("apply", tmp_path / "export.yaml", "--auto-approve").exit_code == 0

    async def check(client):
        bob = await client.get_contact("bob@example.com")
        carol = await client.get_contact("carol@example.com")
        members = {
            c["email"] for c in await client.list_segment_contacts((await client.list_segments())[0]["id"])
        }
        ada_topics = await client.list_contact_topics("ada@example.com")
        return bob["first_name"], carol["unsubscribed"], members, [t["subscription"] for t in ada_topics]

    name, unsubscribed, members, ada = people(remote, check)
    assert name == "Bob" and unsubscribed is False and ada == ["opt_out"]
    assert members == {"ada@example.com", "bob@example.com", "dan@example.com", "eve@example.com"}


def test_export_with_consent_and_authoritative_segments_when_asked(remote, tmp_path):
    applied(tmp_path)
    r = run("export", "--with-consent", "--authoritative-segments")
    assert r.exit_code == 0, r.output
    data = yaml.safe_load(r.output)
    by_email = {c["email"]: c for c in data["contacts"]}
    assert by_email["bob@example.com"]["topics"] == {"news": "opt_out"}
    assert by_email["carol@example.com"]["unsubscribed"] is True
    assert data["segments"] == {"customers": {}}
    assert "Consent is left out" not in r.output and "Segments are additive" not in r.output
    (tmp_path / "full.yaml").write_text(r.output)
    assert run("plan", tmp_path / "full.yaml", "--detailed-exitcode").exit_code == 0
