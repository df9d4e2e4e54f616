"""`--local` keeps the state beside the declared files (same team from any working directory,
no two configs sharing one), says where, and `apply PLAN` takes a saved plan like `--plan`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.cli.apply_cmd import _is_saved_plan
from resend_iac.cli.target import local_db_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def work(tmp_path, monkeypatch):
    for var in ("RESEND_API_KEY", "RESEND_API_URL", "RESEND_IAC_LOCAL_DB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("quickstart", "multi-file"):
        shutil.copytree(
            ROOT / "examples" / name,
            tmp_path / "configs" / name,
            ignore=shutil.ignore_patterns(".resend-iac"),
        )
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_same_config_same_team_from_any_directory(work, monkeypatch):
    monkeypatch.chdir(work)
    r = run("apply", "--local", "configs/quickstart", "--auto-approve")
    assert r.exit_code == 0, r.output
    db = work / "configs" / "quickstart" / ".resend-iac" / "local.db"
    assert db.is_file() and not (work / ".resend-iac").exists()
    assert "--local: new local team in configs/quickstart/.resend-iac/local.db" in r.stderr
    assert "delete that file to start over" in r.stderr
    monkeypatch.chdir(work / "elsewhere" / "deeper")
    # outside the working directory: refused unless named with --allow-outside (local use)
    assert "leads outside the directory" in run("plan", "--local", "../../configs/quickstart").output
    outside = ("--allow-outside", str(work / "configs"))
    r = run("plan", "--local", *outside, "../../configs/quickstart", "--detailed-exitcode")
    assert r.exit_code == 0, r.output  # the same team: no changes
    assert "--local: local team in ../../configs/quickstart/.resend-iac/local.db" in r.stderr
    r = run("plan", "--local", *outside, work / "configs" / "quickstart" / "team.yaml", "--detailed-exitcode")
    assert r.exit_code == 0, r.output  # a file of the config: its directory is the root


def test_two_configs_do_not_share_a_team(work, monkeypatch):
    monkeypatch.chdir(work)
    assert run("apply", "--local", "configs/quickstart", "--auto-approve").exit_code == 0
    # multi-file prunes contacts: sharing quickstart's team would refuse to delete its 10
    r = run("apply", "--local", "configs/multi-file", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert " 0 deleted" in r.output
    assert (work / "configs" / "multi-file" / ".resend-iac" / "local.db").is_file()


def test_env_overrides_the_state_file(work, monkeypatch):
    monkeypatch.setenv("RESEND_IAC_LOCAL_DB", str(work / "mine.db"))
    assert local_db_path(["configs/quickstart"]) == work / "mine.db"
    monkeypatch.delenv("RESEND_IAC_LOCAL_DB")
    monkeypatch.chdir(work)
    assert local_db_path([]) == work / ".resend-iac" / "local.db"  # export: the current directory's
    assert (
        local_db_path(["configs/quickstart", "configs/multi-file"])
        == work / "configs" / ".resend-iac" / "local.db"
    )


def test_apply_planfile_positional(work, monkeypatch):
    monkeypatch.chdir(work)
    r = run("plan", "--local", "configs/quickstart", "--out", "plan.json")
    assert r.exit_code == 0, r.output
    saved = json.loads((work / "plan.json").read_text())
    # relative to the plan file: no absolute path of this machine in it
    assert saved["local_db"] == "configs/quickstart/.resend-iac/local.db"
    assert _is_saved_plan("plan.json") and not _is_saved_plan("configs/quickstart/team.yaml")
    assert not _is_saved_plan("configs/quickstart")
    # from another directory, `apply PLAN` (no --plan) applies to the team the plan was made against
    monkeypatch.chdir(work / "elsewhere")
    r = run("apply", "--local", "../plan.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert "Apply complete" in r.output
    monkeypatch.chdir(work)
    assert run("plan", "--local", "configs/quickstart", "--detailed-exitcode").exit_code == 0
    # both forms at once is still an error
    r = run("apply", "--local", "plan.json", "--plan", "plan.json")
    assert r.exit_code == 1 and "not both" in r.output


def test_a_json_file_that_is_not_a_plan_is_read_as_config(work, monkeypatch):
    monkeypatch.chdir(work)
    (work / "team.json").write_text('{"version": 1, "contacts": [{"email": "a@example.com"}]}')
    assert not _is_saved_plan("team.json")
    r = run("apply", "--local", "team.json", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert "1 created" in r.output or "Apply complete" in r.output


def test_plan_schema_confines_local_db(work):
    """A saved plan's local_db is a relative `.resend-iac/local.db`: a plan file cannot make
    `apply --local` open or create a database elsewhere."""
    from resend_iac.engine.planfile import plan_schema

    pattern = plan_schema()["properties"]["local_db"]["pattern"]
    import re

    assert re.search(pattern, "configs/quickstart/.resend-iac/local.db")
    for bad in ("/tmp/.resend-iac/local.db", "configs/evil.sqlite", "C:/x/.resend-iac/local.db"):
        assert not re.search(pattern, bad), bad
