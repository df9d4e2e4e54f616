"""The config root (issue 18, section 1): a path given on the command line that is a symlink,
or that resolves outside the directory resend-iac runs in, is refused at once (nothing read,
nothing quoted) unless the user names it with ``--allow-outside``; directory walks are
bounded and stop at their first problem; reading stops after ``RESEND_IAC_MAX_ERRORS``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac import config
from resend_iac.cli import main

SECRET = "TOKEN=hunter2-0123456789"  # stands for what lies outside: it must never be quoted
TEAM = "version: 1\nsegments:\n  vip: {}\ncontacts:\n  - email: ada@example.com\n    segments: [vip]\n"


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", *args])
    return result.exit_code, result.output  # stdout and stderr, interleaved


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory beside the working directory (which is tmp_path/work) with YAML, CSV and
    a secret in it: what a symlink in a pull request would point at."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "team.yaml").write_text(TEAM + f"# {SECRET}\n")
    (out / "people.csv").write_text(f"email,{SECRET}\n")
    (out / "bad.yaml").write_text(f"version: 1\ncontacts:\n  - '{SECRET}'\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return out


@pytest.mark.parametrize(
    "target",
    ["..", "/", "../outside", "../outside/team.yaml"],
    ids=["parent", "filesystem-root", "sibling-dir", "file-outside"],
)
def test_a_symlinked_root_is_refused_at_once(outside: Path, target: str) -> None:
    """`pr/resend -> ..` (or `-> /`, or a single-file root pointing out): one line, exit 1,
    nothing read (no walk of `/`) and nothing of what it points at quoted."""
    Path("pr").mkdir()
    Path("pr/resend").symlink_to(target)
    started = time.monotonic()
    code, out = validate("pr/resend")
    assert time.monotonic() - started < 5  # no walk of the filesystem
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("pr/resend: this path is a symlink: a config root must be a real file")
    assert "Nothing was read" in lines[0] and "--allow-outside" in lines[0]
    assert len(lines) == 2, out  # the error and the count
    assert SECRET not in out and str(outside) not in out and "hunter2" not in out


def test_a_symlinked_directory_on_the_way_is_refused(outside: Path) -> None:
    """`pr -> ../outside` then `pr/team.yaml`: the file itself is real, the way to it is not."""
    Path("pr").symlink_to(outside)
    code, out = validate("pr/team.yaml")
    assert code == 1
    assert out.startswith("pr/team.yaml: this path lies in a directory that is a symlink"), out
    assert SECRET not in out


def test_a_symlink_inside_the_working_directory_is_refused_too(outside: Path) -> None:
    Path("real").mkdir()
    Path("real/team.yaml").write_text(TEAM)
    Path("link").symlink_to("real")
    code, out = validate("link")
    assert code == 1 and "link: this path is a symlink" in out
    assert validate("real") == (0, "OK: 1 contacts, 0 properties, 1 segments, 0 topics in 1 file\n")


@pytest.mark.parametrize("given", ["abs", "dotdot"])
def test_a_path_outside_the_working_directory_is_refused(outside: Path, given: str) -> None:
    path = str(outside) if given == "abs" else "../outside"
    code, out = validate(path)
    assert code == 1
    assert out.splitlines()[0] == (
        f"{path}: this path leads outside the directory resend-iac runs in; run it from a directory "
        "that holds the files. Nothing was read. For local use only, --allow-outside PATH reads it anyway"
    )
    assert SECRET not in out


def test_allow_outside_is_the_explicit_opt_in(outside: Path) -> None:
    """Local use: the user names the path (or a directory above it); then it is read, and the
    confinement of `csv:` to the root still holds inside it."""
    (outside / "bad.yaml").unlink()
    code, out = validate("--allow-outside", str(outside), str(outside))
    assert code == 0, out
    Path("link").symlink_to(outside)
    assert validate("--allow-outside", "link", "link")[0] == 0
    assert validate("--allow-outside", str(outside.parent), "../outside/team.yaml")[0] == 0
    # another path named does not open this one
    Path("elsewhere").mkdir()
    assert validate("--allow-outside", "elsewhere", str(outside))[0] == 1
    # the library: the same rule, the same opt-in
    state, diagnostics = config.validate([outside])
    assert state is None and "leads outside the directory" in diagnostics[0].message
    assert config.load([outside], allow_outside=[outside]).segments.keys() == {"vip"}


def test_plan_and_apply_refuse_a_symlinked_root(outside: Path) -> None:
    Path("resend").symlink_to(outside)
    for command in (["plan", "--local", "resend"], ["apply", "--local", "--auto-approve", "resend"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, result.output
        assert "resend: this path is a symlink" in result.stderr
        assert SECRET not in result.output
    assert not Path(".resend-iac").exists() and not (outside / ".resend-iac").exists()  # nothing written


def test_plan_reads_outside_with_the_opt_in(outside: Path) -> None:
    (outside / "bad.yaml").unlink()
    result = CliRunner().invoke(main, ["plan", "--local", "--allow-outside", str(outside), str(outside)])
    assert result.exit_code == 0, result.stderr
    assert "+ segment vip" in result.stdout


# ------------------------------------------------------------------------------ bounded walks


def test_a_walk_stops_at_too_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "big"
    root.mkdir()
    for n in range(30):
        (root / f"f{n:02}.yaml").write_text("version: 1\ncontacts: nope\n")  # each one an error
    monkeypatch.setenv("RESEND_IAC_MAX_FILES", "20")
    code, out = validate("big")
    assert code == 1
    assert out.splitlines() == [
        "big: this directory holds more than 20 files and directories; point resend-iac at the directory of "
        "the declared files (or raise the limit with RESEND_IAC_MAX_FILES). Nothing under big was read",
        "1 error found; nothing was checked against Resend.",
    ]


def test_a_walk_stops_at_deep_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / "deep"
    (deep / "a" / "b" / "c" / "d").mkdir(parents=True)
    (deep / "a" / "b" / "c" / "d" / "x.yaml").write_text("version: 1\n")
    monkeypatch.setenv("RESEND_IAC_MAX_DIR_DEPTH", "3")
    code, out = validate("deep")
    assert code == 1
    assert out.startswith("deep: directories are nested more than 3 deep here"), out
    monkeypatch.setenv("RESEND_IAC_MAX_DIR_DEPTH", "4")
    assert validate("deep")[0] == 0


def test_a_walk_stops_at_the_first_symlink_leading_out(outside: Path) -> None:
    """Many files symlinked out of the root: one line for all of them, and nothing under the
    root read (not one error per file, not the real files' own errors)."""
    Path("resend").mkdir()
    Path("resend/ok.yaml").write_text("version: 1\ncontacts: nope\n")
    for n in range(50):
        Path(f"resend/l{n:02}.yaml").symlink_to(outside / "bad.yaml")
    code, out = validate("resend")
    assert code == 1
    assert out.splitlines() == [
        "resend/l00.yaml: this file is a symlink that leads outside resend (the config root), and so do "
        "49 more files; keep every file inside it. Nothing under resend was read",
        "1 error found; nothing was checked against Resend.",
    ]


def test_an_unreadable_directory_stops_the_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resend" / "locked").mkdir(parents=True)
    (tmp_path / "resend" / "team.yaml").write_text(TEAM)
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:  # what chmod 0 does (the suite may run as root)
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out = validate("resend")
    assert code == 1
    assert out.splitlines()[0] == (
        "resend: cannot read a directory in it (Permission denied). Nothing under resend was read"
    )


def test_errors_stop_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CSV of 5,000 bad rows and ten bad files: the first RESEND_IAC_MAX_ERRORS errors and
    one line for the rest, not thousands of lines."""
    Path("resend").mkdir()
    Path("resend/team.yaml").write_text("version: 1\ncontacts:\n  - csv: people.csv\n")
    Path("resend/people.csv").write_text("email\n" + "not-an-email\n" * 5000)
    for n in range(10):
        Path(f"resend/x{n}.yaml").write_text("version: 1\ncontacts: nope\n")
    monkeypatch.setenv("RESEND_IAC_MAX_ERRORS", "25")
    code, out = validate("resend")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) <= 28, len(lines)
    assert (
        lines[-2]
        == "resend: stopped after 25 errors; fix these first (or raise the limit with RESEND_IAC_MAX_ERRORS)"
    )
    monkeypatch.delenv("RESEND_IAC_MAX_ERRORS")
    lines = validate("resend")[1].splitlines()
    assert 1000 < len(lines) < 1010, len(lines)  # the default: 1,000


# ------------------------------------------------------------------------------ the workflow


def test_the_workflow_checks_pr_resend_before_running_anything() -> None:
    """examples/github-actions: a step before the install (before anything runs with the
    key) refuses a pr/resend that is a symlink or missing; `--allow-outside` appears nowhere
    in the workflow, its scripts or action.yml."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    example = root / "examples" / "github-actions"
    workflow = yaml.safe_load((example / "resend-iac.yml").read_text())
    steps = workflow["jobs"]["plan"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    check = next(
        i for i, s in enumerate(steps) if "pr/resend" in s.get("run", "") and "-L" in s.get("run", "")
    )
    install = names.index("Install resend-iac")
    assert check < install, names
    texts = [(example / "resend-iac.yml").read_text(), (root / "action.yml").read_text()]
    texts += [p.read_text() for p in (example / "scripts").iterdir()]
    assert not any("allow-outside" in t for t in texts)
