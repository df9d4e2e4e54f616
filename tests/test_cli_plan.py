"""The plan, apply and export commands end to end: --local (embedded emulator) and a real
emulator server over HTTP (RESEND_API_KEY/RESEND_API_URL)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac.cli import apply_cmd, main
from resend_iac.cli.target import seed_app
from resend_iac.emulator import create_app

ROOT = Path(__file__).resolve().parent.parent
# relative: resend-iac reads declared files inside its working directory only, so a test run
# in its tmp_path gets a copy there (``_quickstart_here``)
QUICKSTART = Path("examples", "quickstart")


@pytest.fixture(autouse=True)
def _quickstart_here(request: pytest.FixtureRequest) -> None:
    if Path.cwd().resolve() != ROOT:
        shutil.copytree(ROOT / QUICKSTART, QUICKSTART, ignore=shutil.ignore_patterns(".resend-iac"))


EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture
def local(tmp_path, monkeypatch):
    """A fresh working directory (the --local state lives in ./.resend-iac) and no live key."""
    monkeypatch.chdir(tmp_path)
    # one local team for the test, whatever the config's directory (the default is beside it)
    monkeypatch.setenv("RESEND_IAC_LOCAL_DB", str(tmp_path / ".resend-iac" / "local.db"))
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    monkeypatch.delenv("RESEND_API_URL", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


@pytest.fixture
def remote(emulator_server, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", "re_test_key")
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")  # the test server does not limit
    return emulator_server


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def team(path: Path, contacts: list[dict], policy: dict | None = None, segments: dict | None = None) -> Path:
    import yaml

    doc = {
        "version": 1,
        "segments": segments if segments is not None else {"members": {}},
        "contacts": contacts,
    }
    if policy:
        doc["policy"] = policy
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def people(n: int, segment: str = "members", prefix: str = "p") -> list[dict]:
    return [
        {"email": f"{prefix}{i}@example.com", "first_name": f"Person{i}", "segments": [segment]}
        for i in range(n)
    ]


def test_no_target_says_how_to_use_each(local):
    r = run("plan", QUICKSTART)
    assert r.exit_code == 1
    assert "RESEND_API_KEY" in r.output and "--local" in r.output and "RESEND_API_URL" in r.output


def test_readme_first_command_local_apply_twice(local):
    r = run("apply", "--local", QUICKSTART, "--auto-approve")
    assert r.exit_code == 0, r.output
    assert re.search(
        r"Apply complete: \d+ created, 0 updated, 0 deleted in [\d.]+ s \(\d+ requests\)", r.output
    )
    assert (local / ".resend-iac" / "local.db").exists()
    again = run("apply", "--local", QUICKSTART, "--auto-approve")
    assert again.exit_code == 0 and "No changes" in again.output
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 0


def test_detailed_exitcode_and_config_errors(local):
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 2
    assert run("plan", "--local", QUICKSTART).exit_code == 0
    bad = local / "bad.yaml"
    bad.write_text("version: 1\ncontacts:\n  - email: not-an-email\n")
    r = run("plan", "--local", bad, "--detailed-exitcode")
    assert r.exit_code == 1 and "bad.yaml:3" in r.output
    r = run("plan", "--local", QUICKSTART, "--detailed-exitcode", "--format", "yaml")
    assert r.exit_code == 1 and "Invalid value" in r.output  # usage errors are 1, never 2


def test_json_plan_is_versioned_and_complete(local):
    r = run("plan", "--local", QUICKSTART, "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.output[r.output.index("{") : r.output.rindex("}") + 1])
    assert data["format_version"] == 1 and data["fingerprint"].startswith("sha256:")
    assert data["changes"] and all(
        {"action", "kind", "key", "before", "after"} <= set(c) for c in data["changes"]
    )
    assert {c["kind"] for c in data["changes"]} == {"property", "segment", "topic", "contact"}


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_redacted_plans_contain_no_email_or_name(local, fmt):
    r = run("plan", "--local", QUICKSTART, "--format", fmt, "--redact")
    assert r.exit_code == 0
    assert "ada@example.com" not in r.output and "Lovelace" not in r.output
    assert not [e for e in EMAIL_RE.findall(r.output) if "***" not in e and "#" not in e]
    plain = run("plan", "--local", QUICKSTART, "--format", fmt)
    assert "ada@example.com" in plain.output  # the unredacted plan does show them


def test_markdown_plan_has_a_summary_table(local):
    r = run("plan", "--local", QUICKSTART, "--format", "markdown")
    assert r.exit_code == 0 and "|" in r.output and "contact" in r.output


def test_apply_refuses_to_guess_on_a_non_interactive_stdin(local):
    r = run("apply", "--local", QUICKSTART)
    assert r.exit_code == 1 and "--auto-approve" in r.output
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 2  # nothing applied


def test_apply_asks_on_a_terminal(local, monkeypatch):
    monkeypatch.setattr(apply_cmd, "stdin_is_tty", lambda: True)
    r = run("apply", "--local", QUICKSTART, input="n\n")
    assert r.exit_code == 1 and "Apply these changes?" in r.output and "cancelled" in r.output
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 2
    r = run("apply", "--local", QUICKSTART, input="y\n")
    assert r.exit_code == 0 and "Apply complete" in r.output
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 0


def test_saved_plan_applies_and_a_stale_plan_is_refused(remote, tmp_path):
    f = team(tmp_path / "team.yaml", people(3))
    r = run("plan", f, "--out", tmp_path / "p1.json")
    assert r.exit_code == 0 and (tmp_path / "p1.json").exists()
    r = run("apply", "--plan", tmp_path / "p1.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert run("plan", f, "--detailed-exitcode").exit_code == 0
    # a second plan, then someone changes the team before it is applied
    f2 = team(tmp_path / "team.yaml", people(4))
    assert run("plan", f2, "--out", tmp_path / "p2.json").exit_code == 0
    run(
        "apply",
        team(tmp_path / "other.yaml", [{"email": "sneaky@example.com"}], segments={}),
        "--auto-approve",
    )
    before = remote.stats()["by_route"]
    r = run("apply", "--plan", tmp_path / "p2.json", "--auto-approve")
    assert r.exit_code == 1 and "changed since the plan" in r.output and "Nothing was applied" in r.output
    writes = {k: v for k, v in remote.stats()["by_route"].items() if not k.startswith("GET")}
    assert writes == {k: v for k, v in before.items() if not k.startswith("GET")}
    assert run("plan", f2, "--detailed-exitcode").exit_code == 2  # p3 still missing


def test_saved_local_plan_says_how_to_apply_it_locally(local):
    r = run("plan", "--local", QUICKSTART, "--out", local / "p.json")
    assert r.exit_code == 0 and "resend-iac apply --local --plan" in r.output
    r = run("apply", "--local", "--plan", local / "p.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert run("plan", "--local", QUICKSTART, "--detailed-exitcode").exit_code == 0


def test_empty_saved_plan_applies_without_reading_the_team(remote, tmp_path):
    f = team(tmp_path / "team.yaml", people(3))
    assert run("apply", f, "--auto-approve").exit_code == 0
    assert run("plan", f, "--out", tmp_path / "p.json").exit_code == 0
    before = remote.stats()["total"]
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve")
    assert r.exit_code == 0 and "No changes" in r.output
    assert remote.stats()["total"] == before  # not one request


def _company_team(path: Path, companies: dict[str, str]) -> Path:
    import yaml

    doc = {
        "version": 1,
        "properties": {"company": {"type": "string"}},
        "contacts": [{"email": e, "properties": {"company": v}} for e, v in companies.items()],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _set_company(remote, email: str, company: str) -> None:
    import httpx

    r = httpx.patch(
        f"{remote.url}/contacts/{email}",
        json={"properties": {"company": company}},
        headers={"Authorization": "Bearer re_test_key", "User-Agent": "test"},
    )
    assert r.status_code == 200, r.text


def _company(remote, email: str) -> str:
    import httpx

    r = httpx.get(
        f"{remote.url}/contacts/{email}",
        headers={"Authorization": "Bearer re_test_key", "User-Agent": "test"},
    )
    return r.json()["properties"]["company"]["value"]


def _plan_one_company_change(tmp_path: Path, n: int) -> None:
    """Apply contacts c0..c<n-1> at company Acme, then save (p.json) a plan moving c0 to Globex."""
    emails = [f"c{i}@example.com" for i in range(n)]
    assert (
        run(
            "apply", _company_team(tmp_path / "t.yaml", dict.fromkeys(emails, "Acme")), "--auto-approve"
        ).exit_code
        == 0
    )
    changed = {**dict.fromkeys(emails, "Acme"), "c0@example.com": "Globex"}
    assert (
        run("plan", _company_team(tmp_path / "t.yaml", changed), "--out", tmp_path / "p.json").exit_code == 0
    )


def test_saved_plan_rereads_details_only_of_the_contacts_it_changes(remote, tmp_path):
    _plan_one_company_change(tmp_path, 6)
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["verify"]["property_emails"] == ["c0@example.com"]
    # Meanwhile a value the plan does not write over changes: not a reason to refuse.
    _set_company(remote, "c5@example.com", "Initech")
    before = remote.stats()["by_route"].get("GET /contacts/{id}", 0)
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert remote.stats()["by_route"].get("GET /contacts/{id}", 0) - before == 1  # c0 only, not all 6
    assert _company(remote, "c0@example.com") == "Globex" and _company(remote, "c5@example.com") == "Initech"


def test_saved_plan_refused_when_a_contact_it_changes_changed_since(remote, tmp_path):
    _plan_one_company_change(tmp_path, 3)
    _set_company(remote, "c0@example.com", "Umbrella")
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve")
    assert r.exit_code == 1 and "changed since the plan" in r.output
    assert _company(remote, "c0@example.com") == "Umbrella"  # nothing written


def test_plan_file_without_verify_is_checked_in_full(remote, tmp_path):
    _plan_one_company_change(tmp_path, 3)
    saved = json.loads((tmp_path / "p.json").read_text())
    del saved["verify"]  # as written by an older resend-iac (sealed again: the digest covers it)
    from resend_iac.engine.planfile import seal

    (tmp_path / "p.json").write_text(json.dumps(seal(saved)))
    _set_company(remote, "c2@example.com", "Initech")  # untouched, but the full check sees it
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve")
    assert r.exit_code == 1 and "changed since the plan" in r.output


def test_unwritable_out_is_an_error_not_a_traceback(local):
    (local / "dir").mkdir()
    (local / "dir" / "file").write_text("x")
    r = run("plan", "--local", QUICKSTART, "--out", local / "dir" / "file" / "p.json")
    assert r.exit_code == 1 and "cannot write the plan" in r.output


def test_bad_plan_file(local):
    (local / "p.json").write_text("nope")
    r = run("apply", "--local", "--plan", local / "p.json", "--auto-approve")
    assert r.exit_code == 1 and "not a plan file" in r.output
    r = run("apply", "--local", QUICKSTART, "--plan", local / "p.json")
    assert r.exit_code == 1 and "not both" in r.output


def test_threshold_refusal_and_force(remote, tmp_path):
    assert run("apply", team(tmp_path / "t.yaml", people(10)), "--auto-approve").exit_code == 0
    pruning = team(tmp_path / "t.yaml", people(6), policy={"prune_contacts": True})
    r = run("plan", pruning)
    assert r.exit_code == 0 and "--force" in r.output  # plan warns
    r = run("apply", pruning, "--auto-approve")
    assert r.exit_code == 1 and "deletes 4 of 10 live contacts" in r.output and "--force" in r.output
    assert run("plan", pruning, "--detailed-exitcode").exit_code == 2  # nothing deleted
    r = run("apply", pruning, "--auto-approve", "--force")
    assert r.exit_code == 0 and "4 deleted" in r.output
    # updates: renaming 4 of 6 is over 30% of... 6 < 10 live objects: exempt
    assert run("apply", team(tmp_path / "t.yaml", people(6, prefix="p")), "--auto-approve").exit_code == 0


def test_update_threshold(remote, tmp_path):
    assert run("apply", team(tmp_path / "t.yaml", people(10)), "--auto-approve").exit_code == 0
    renamed = [dict(p, first_name="Renamed") for p in people(10)]
    r = run("apply", team(tmp_path / "t.yaml", renamed), "--auto-approve")
    assert r.exit_code == 1 and "updates 10 of 10 live contacts" in r.output
    assert run("apply", team(tmp_path / "t.yaml", renamed), "--auto-approve", "--force").exit_code == 0


def test_resubscribe_guard_through_the_cli(remote, tmp_path):
    f = team(tmp_path / "t.yaml", [{"email": "a@example.com", "unsubscribed": True}], segments={})
    assert run("apply", f, "--auto-approve").exit_code == 0
    f = team(tmp_path / "t.yaml", [{"email": "a@example.com", "unsubscribed": False}], segments={})
    r = run("plan", f, "--detailed-exitcode")
    assert r.exit_code == 0 and "--allow-resubscribe" in r.output
    assert run("apply", f, "--auto-approve", "--allow-resubscribe").exit_code == 0
    assert run("plan", f, "--detailed-exitcode").exit_code == 0


def test_export_then_plan_shows_no_changes(local):
    assert run("apply", "--local", QUICKSTART, "--auto-approve").exit_code == 0
    r = run("export", "--local", "--out", local / "export.yaml")
    assert r.exit_code == 0
    text = (local / "export.yaml").read_text()
    assert "ada@example.com" in text and "Analytical Engines" in text and "billing" in text
    assert run("plan", "--local", local / "export.yaml", "--detailed-exitcode").exit_code == 0
    # stdout too
    assert run("export", "--local").output.strip() == text.strip()


def test_export_lists_contacts_once_and_reads_details_only_for_what_the_team_has(remote, tmp_path):
    emails = [f"c{i}@example.com" for i in range(3)]
    f = _company_team(tmp_path / "team.yaml", dict.fromkeys(emails, "Acme"))  # a property, no topics
    assert run("apply", f, "--auto-approve").exit_code == 0
    before = remote.stats()["by_route"]
    r = run("export", "--out", tmp_path / "export.yaml")
    assert r.exit_code == 0, r.output
    after = remote.stats()["by_route"]
    used = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert used.get("GET /contacts") == 1  # one page, listed once
    assert used.get("GET /contacts/{id}") == 3  # property values, each contact once
    assert "GET /contacts/{id}/topics" not in used  # the team has no topics
    assert "Acme" in (tmp_path / "export.yaml").read_text()
    assert run("plan", tmp_path / "export.yaml", "--detailed-exitcode").exit_code == 0


def test_seed_app_applies_the_declared_state():
    app = create_app(":memory:", rate_limit=0)
    result = seed_app(app, [QUICKSTART])
    assert result.created > 0
    assert seed_app(app, [QUICKSTART]).created == 0  # already there


def test_bad_rate_limit_setting(remote, tmp_path, monkeypatch):
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "fast")
    r = run("plan", team(tmp_path / "t.yaml", people(1)))
    assert r.exit_code == 1 and "RESEND_IAC_RATE_LIMIT" in r.output


def test_api_errors_are_reported_with_status_and_name(remote, tmp_path, monkeypatch):
    monkeypatch.setenv("RESEND_API_URL", remote.url + "/nowhere")
    r = run("plan", team(tmp_path / "t.yaml", people(1)))
    assert r.exit_code == 1 and "error: the API answered 404" in r.output


def test_unreachable_api_says_so_and_where_to_look(remote, tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RESEND_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    r = run("plan", team(tmp_path / "t.yaml", people(1)))
    assert r.exit_code == 1
    assert "error: no answer from the API" in r.output and "RESEND_API_URL" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])  # kill -9; Ctrl-C
def test_apply_killed_mid_way_is_completed_by_the_next_apply(start_emulator, tmp_path, monkeypatch, sig):
    import os
    import signal
    import subprocess
    import sys
    import time

    server = start_emulator(rate_limit=0, latency_ms=40)
    env = dict(os.environ, RESEND_API_KEY="re_test", RESEND_API_URL=server.url, RESEND_IAC_RATE_LIMIT="0")
    monkeypatch.setenv("RESEND_API_KEY", "re_test")
    monkeypatch.setenv("RESEND_API_URL", server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    f = team(tmp_path / "t.yaml", people(120))
    assert run("apply", f, "--auto-approve").exit_code == 0
    renamed = team(tmp_path / "t.yaml", [dict(p, first_name="Renamed") for p in people(120)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "resend_iac", "apply", str(renamed), "--auto-approve", "--force"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Ctrl-C reaches a foreground command whose SIGINT is not ignored; a suite started in
        # the background by a non-interactive shell inherits SIGINT ignored, so restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.stats()["by_route"].get("PATCH /contacts/{id}", 0) >= 20:
                break
            time.sleep(0.02)
        os.kill(proc.pid, getattr(signal, sig))
    finally:
        stderr = proc.communicate(timeout=30)[1].decode()
    if sig == "SIGINT":
        assert proc.returncode == 130 and "run plan again" in stderr, (proc.returncode, stderr[-500:])
    r = run("plan", renamed, "--format", "json")
    left = len(json.loads(r.output[r.output.index("{") : r.output.rindex("}") + 1])["changes"])
    assert 0 < left < 120
    assert run("apply", renamed, "--auto-approve", "--force").exit_code == 0
    assert run("plan", renamed, "--detailed-exitcode").exit_code == 0
    emails = [c["email"] for c in httpx_get_all(server.url)]
    assert len(emails) == len(set(emails)) == 120


def httpx_get_all(url: str) -> list[dict]:
    import httpx

    r = httpx.get(f"{url}/contacts", headers={"Authorization": "Bearer re_test", "User-Agent": "t"})
    return r.json()["data"]


def test_saved_plan_keeps_its_policy_for_the_safety_check(remote, tmp_path):
    assert run("apply", team(tmp_path / "t.yaml", people(10)), "--auto-approve").exit_code == 0
    pruning = team(tmp_path / "t.yaml", people(5), policy={"prune_contacts": True})
    assert run("plan", pruning, "--out", tmp_path / "p.json").exit_code == 0
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve")
    assert r.exit_code == 1 and "deletes 5 of 10" in r.output
    r = run("apply", "--plan", tmp_path / "p.json", "--auto-approve", "--force")
    assert r.exit_code == 0 and "5 deleted" in r.output
