"""The example workflow and action.yml are zizmor-clean (offline, medium and above), every
action is pinned to a commit SHA with its version alongside, no checkout keeps the token, and
the action installs from a hash-pinned requirements file (issue 18, section 7)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions" / "resend-iac.yml"
ACTION = ROOT / "action.yml"
REQUIREMENTS = ROOT / "requirements" / "action.txt"


def _zizmor() -> str:
    exe = Path(sys.executable).parent / "zizmor"
    found = str(exe) if exe.is_file() else shutil.which("zizmor")
    assert found, "zizmor is in the dev extra: pip install -e '.[dev]'"
    return found


def test_zizmor_finds_nothing_of_medium_or_higher():
    r = subprocess.run(
        [_zizmor(), "--offline", "--min-severity", "medium", str(ACTION), str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No findings to report" in r.stdout + r.stderr


def test_zizmor_does_report_an_unpinned_workflow(tmp_path):
    """The check above can fail: today's main's workflow (unpinned, a checkout keeping the token)."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
    )
    r = subprocess.run(
        [_zizmor(), "--offline", "--min-severity", "medium", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "unpinned-uses" in r.stdout + r.stderr


def _steps():
    for path in (WORKFLOW, ACTION):
        data = yaml.safe_load(path.read_text())
        jobs = data.get("jobs") or {"action": {"steps": data["runs"]["steps"]}}
        for job in jobs.values():
            yield from job["steps"]


def test_every_action_is_pinned_to_a_commit_with_its_version():
    lines = [line for path in (WORKFLOW, ACTION) for line in path.read_text().splitlines() if "uses:" in line]
    remote = [line for line in lines if "uses: ./" not in line]
    assert len(remote) >= 10
    for line in remote:
        assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_every_checkout_drops_the_token():
    checkouts = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert len(checkouts) == 4
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_the_action_installs_from_hash_pinned_requirements():
    install = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]["run"]
    assert '--require-hashes --only-binary :all: -r "$GITHUB_ACTION_PATH/requirements/action.txt"' in install
    assert '--no-index --no-deps --no-build-isolation "$GITHUB_ACTION_PATH"' in install
    text = REQUIREMENTS.read_text()
    blocks = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M
    )
    pinned = {name.lower().replace("_", "-") for name, _, _ in blocks}
    assert len(blocks) == len(re.findall(r"^[A-Za-z0-9_.-]+==", text, re.M))  # every pin has hashes
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {
        re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower().replace("_", "-")
        for d in project["project"]["dependencies"]
    }
    needed |= {"setuptools", "wheel"}  # the no-isolation build of resend-iac itself
    assert needed <= pinned, needed - pinned


@pytest.mark.parametrize("path", [WORKFLOW, ACTION])
def test_no_example_puts_the_key_on_the_command_line(path):
    assert "--api-key " not in path.read_text() and "--api-key=" not in path.read_text()
