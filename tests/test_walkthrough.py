"""The walkthrough is a test: every fenced ```sh block of README.md and docs/*.md runs, in the
order a reader meets them (README first, then docs/ by name), in a fresh copy of the
repository, as a user would type it, and must exit 0 (blocks run under `bash -e`: every
command in them must succeed, so a block that shows a non-zero exit says so, e.g.
`... || echo "exit $?"`).

A block preceded by the line `<!-- walkthrough: skip (reason) -->` is not run (it needs a real
Resend key or the Pulumi CLI, runs for minutes, or is a fragment).

Two adaptations, so it runs here and stays fast:
- the README's set-up command reuses this checkout's virtual environment (symlinked as
  `.venv`) instead of creating one: `python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'`
  becomes a check that `.venv/bin/resend-iac` exists (.ci/run runs the real command);
- port 8025 (the emulator's default) becomes a free port, as other processes on a shared
  machine may hold 8025.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETUP = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
SKIP = re.compile(r"<!--\s*walkthrough:\s*skip\s*\((.+?)\)\s*-->")
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason) of every ```sh block."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1), skip.group(1) if skip else None))
    return out


def _fresh_copy(dest: Path) -> None:
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / ".venv").symlink_to(Path(sys.executable).parent.parent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_block_is_run_or_skipped_with_a_reason():
    found = [(p.name, line, reason) for p in DOCS for line, _, reason in blocks(p)]
    assert len(found) >= 10
    run = [f for f in found if f[2] is None]
    assert len(run) >= 5, found
    # the set-up command is run (adapted), the README's pytest command is not (recursion)
    first = blocks(ROOT / "README.md")[0]
    assert first[2] is None and first[1].startswith(SETUP)


@pytest.mark.timeout(180)
def test_walkthrough(tmp_path):
    if not (Path(sys.executable).parent / "resend-iac").exists():
        pytest.skip("needs the resend-iac script in this venv")
    clone = tmp_path / "resend-iac"
    clone.mkdir()
    _fresh_copy(clone)
    port = str(_free_port())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESEND_", "PYTEST_", "GITHUB_")) and k != "VIRTUAL_ENV"
    }
    env["NO_COLOR"] = "1"
    ran = []
    for doc in DOCS:
        for line, code, reason in blocks(doc):
            if reason:
                continue
            if code.startswith(SETUP):
                code = "test -x .venv/bin/resend-iac && " + code[len(SETUP) :]
            code = code.replace("8025", port)
            where = f"{doc.relative_to(ROOT)}:{line}"
            r = subprocess.run(
                ["bash", "-e", "-c", code], cwd=clone, env=env, capture_output=True, text=True, timeout=120
            )
            assert r.returncode == 0, (
                f"{where}: the block exits {r.returncode}\n--- block\n{code}"
                f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
            )
            ran.append(where)
    assert len(ran) >= 5
    # what the README says happened, happened
    assert (clone / "examples" / "quickstart" / ".resend-iac" / "local.db").is_file()
    assert (clone / "examples" / "multi-file" / ".resend-iac" / "local.db").is_file()
    assert (clone / "plan.json").is_file()


CONFIG_EXAMPLES = sorted(
    p.name
    for p in (ROOT / "examples").iterdir()
    if p.is_dir() and p.name not in ("pulumi", "github-actions", "testing")
)


@pytest.mark.parametrize("name", CONFIG_EXAMPLES)
def test_every_config_example_applies_to_its_own_local_team(name, tmp_path, monkeypatch):
    """examples/README.md: each configuration validates and applies with --local."""
    for var in ("RESEND_API_KEY", "RESEND_API_URL", "RESEND_IAC_LOCAL_DB"):
        monkeypatch.delenv(var, raising=False)
    shutil.copytree(ROOT / "examples" / name, tmp_path / name, ignore=shutil.ignore_patterns(".resend-iac"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["apply", "--local", name, "--auto-approve"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert (tmp_path / name / ".resend-iac" / "local.db").is_file()
    r = CliRunner().invoke(main, ["plan", "--local", name, "--detailed-exitcode"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
