"""Saved plans are bound to their target and used once (issue 18, section 4): a plan records
where it was made (the local team, or the API URL and a salted HMAC of the key: never the key),
a nonce and an expiry; apply --plan refuses another target, a second use (even after the team
went back to the planned-from state: ABA) and an expired plan, before its first write. Over
HTTP against the emulator."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.client import SyncResendClient
from resend_iac.engine import binding
from resend_iac.engine.binding import BindingError, Ledger, api_target, parse_duration
from resend_iac.engine.planfile import seal

KEY = "re_binding_test_key_1234567890"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def requests_to(server) -> int:
    return int(server.stats()["total"])


@pytest.fixture
def team(tmp_path, monkeypatch, emulator_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    for var in ("RESEND_IAC_PLAN_KEY", "RESEND_IAC_LOCAL_DB", "RESEND_IAC_PLAN_EXPIRES_IN"):
        monkeypatch.delenv(var, raising=False)
    doc = {"version": 1, "contacts": [{"email": "ann@example.com"}, {"email": "bob@example.com"}]}
    (tmp_path / "resend").mkdir()
    (tmp_path / "resend" / "team.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "resend"


def make_plan(config, *flags, out="plan.json"):
    r = run("plan", config, "--out", out, *flags)
    assert r.exit_code == 0, r.output
    return out


def test_the_plan_records_its_target_without_the_key(team, emulator_server):
    plan = json.loads(open(make_plan(team)).read())
    target = plan["target"]
    assert target["api_url"] == emulator_server.url.rstrip("/")
    assert set(target) == {"api_url", "key_salt", "key_hmac"}
    text = open("plan.json").read()
    assert KEY not in text and KEY[3:] not in text
    again = json.loads(open(make_plan(team, out="again.json")).read())
    assert again["target"]["key_hmac"] != target["key_hmac"]  # salted: plans do not correlate
    assert again["nonce"] != plan["nonce"] and len(plan["nonce"]) == 32
    assert api_target(emulator_server.url, KEY, target["key_salt"]) == target


def test_a_local_plan_is_refused_against_the_api(team, emulator_server):
    make_plan(team, "--local")
    before = requests_to(emulator_server)
    r = run("apply", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 1
    assert "made with --local" in r.output and "Nothing was applied" in r.output
    assert requests_to(emulator_server) == before  # refused before the first request
    r = run("apply", "--local", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 0, r.output


def test_an_api_plan_is_refused_with_local_another_key_and_another_url(
    team, emulator_server, start_emulator, tmp_path
):
    make_plan(team)
    r = run("apply", "--local", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 1 and "this apply uses --local" in r.output
    before = requests_to(emulator_server)
    r = run(
        "apply", "--plan", "plan.json", "--auto-approve", env={"RESEND_API_KEY": "re_another_key_0987654321"}
    )
    assert r.exit_code == 1 and "another API key" in r.output
    other = start_emulator(db_path=":memory:", rate_limit=0)
    r = run("apply", "--plan", "plan.json", "--auto-approve", env={"RESEND_API_URL": other.url})
    assert r.exit_code == 1 and f"targets {other.url.rstrip('/')}" in r.output
    assert requests_to(emulator_server) == before and requests_to(other) == 0
    r = run("apply", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 0, r.output


def test_a_plan_is_applied_once_even_after_the_team_went_back(team, emulator_server):
    """ABA: apply, the team returns to the planned-from state, apply the same plan again."""
    make_plan(team)
    r = run("apply", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    with SyncResendClient(KEY, emulator_server.url, rate_limit=None) as client:
        for email in ("ann@example.com", "bob@example.com"):
            client.delete_contact(email)  # back to the planned-from (empty) team
    before = requests_to(emulator_server)
    r = run("apply", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 1
    assert "applied already" in r.output and "Nothing was applied" in r.output
    assert requests_to(emulator_server) == before
    with SyncResendClient(KEY, emulator_server.url, rate_limit=None) as client:
        assert client.list_contacts() == []


def test_a_local_plan_is_applied_once(team, monkeypatch):
    monkeypatch.delenv("RESEND_API_KEY")
    make_plan(team, "--local")
    assert run("apply", "--local", "--plan", "plan.json", "--auto-approve").exit_code == 0
    db = team / ".resend-iac" / "local.db"
    with sqlite3.connect(db) as conn:  # back to the planned-from state, by hand
        conn.execute("DELETE FROM contacts")
    r = run("apply", "--local", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 1 and "applied already" in r.output
    # a new local team (the state file deleted) is another target
    make_plan(team, "--local", out="other.json")
    db.unlink()
    r = run("apply", "--local", "--plan", "other.json", "--auto-approve")
    assert r.exit_code == 1 and "another local team" in r.output


def test_an_expired_plan_is_refused(team, monkeypatch, emulator_server):
    make_plan(team)
    make_plan(team, "--expires-in", "10d", out="long.json")
    real = binding.now
    monkeypatch.setattr(binding, "now", lambda: real() + timedelta(days=3, minutes=1))
    before = requests_to(emulator_server)
    r = run("apply", "--plan", "plan.json", "--auto-approve")
    assert r.exit_code == 1 and "expired at" in r.output
    assert requests_to(emulator_server) == before
    r = run("apply", "--plan", "long.json", "--auto-approve")
    assert r.exit_code == 0, r.output


def test_expiry_from_the_environment_and_bad_durations(team, monkeypatch):
    monkeypatch.setenv("RESEND_IAC_PLAN_EXPIRES_IN", "30m")
    plan = json.loads(open(make_plan(team)).read())
    made, ends = (binding._parse_iso(plan[k]) for k in ("created_at", "expires_at"))
    assert ends - made == timedelta(minutes=30)
    r = run("plan", team, "--out", "x.json", "--expires-in", "soon")
    assert r.exit_code == 1 and "--expires-in" in r.output
    assert parse_duration("12h") == timedelta(hours=12) and parse_duration("90") == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("0d")


def test_apply_plan_with_no_cache_is_refused(team):
    make_plan(team)
    r = run("apply", "--plan", "plan.json", "--auto-approve", "--no-cache")
    assert r.exit_code == 1 and "--no-cache leaves nowhere to record it" in r.output


def test_a_plan_without_its_binding_is_refused(team):
    data = json.loads(open(make_plan(team)).read())
    for field in ("nonce", "target", "expires_at"):
        old = {k: v for k, v in data.items() if k != field}
        open("old.json", "w").write(json.dumps(seal(old)))
        r = run("apply", "--plan", "old.json", "--auto-approve")
        assert r.exit_code == 1 and "older resend-iac" in r.output, field


def test_the_ledger_claims_a_nonce_once(tmp_path):
    ledger = Ledger.local(tmp_path / "local.db")
    ledger.claim("a" * 32, "2999-01-01T00:00:00Z")
    with pytest.raises(BindingError, match="applied already"):
        ledger.claim("a" * 32, "2999-01-01T00:00:00Z")
    with pytest.raises(BindingError):
        Ledger.local(tmp_path / "local.db").check("a" * 32)
    ledger.claim("b" * 32, "2000-01-01T00:00:00Z")
    ledger.claim("c" * 32, "2999-01-01T00:00:00Z")  # prunes the long-expired b
    assert ledger.used("b" * 32) is None and ledger.used("c" * 32) is not None
    assert ledger.team() == Ledger.local(tmp_path / "local.db").team()
