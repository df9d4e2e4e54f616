"""action.yml (composite GitHub Action) and .pre-commit-hooks.yaml: their structure, and the
action's shell steps run locally as the runner runs them (GITHUB_ACTION_PATH, GITHUB_OUTPUT,
GITHUB_PATH; `${{ ... }}` expressions substituted from the inputs and earlier steps' outputs).

The install step runs for real (pip install of this checkout) into a virtual environment that
already sees this venv's packages, so no package index is needed and it stays fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
WORKFLOW = yaml.safe_load((ROOT / "examples" / "github-actions" / "resend-iac.yml").read_text())

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def test_action_structure():
    assert ACTION["name"] and ACTION["description"]
    assert ACTION["runs"]["using"] == "composite"
    inputs = ACTION["inputs"]
    assert {"command", "paths", "format", "redact", "cache", "refresh", "out", "plan-file"} <= set(inputs)
    for name, spec in inputs.items():
        assert "description" in spec and "default" in spec, name
    for step in ACTION["runs"]["steps"]:
        assert step.get("shell") == "bash", step["name"]  # composite run steps need a shell
        # inputs reach the scripts through env only (no expression inside a script: injection)
        assert not EXPR.search(step["run"]), step["name"]
    assert set(ACTION["outputs"]) >= {"exitcode"}


def test_pre_commit_hook_structure():
    assert isinstance(HOOKS, list) and HOOKS
    hook = next(h for h in HOOKS if h["id"] == "resend-iac-validate")
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["entry"].split()[:2] == ["resend-iac", "validate"]
    assert hook["language"] == "python"


def test_example_workflow_installs_with_the_action_not_the_package_index():
    installs = [
        s for job in WORKFLOW["jobs"].values() for s in job["steps"] if s.get("name") == "Install resend-iac"
    ]
    assert len(installs) == 3
    for step in installs:
        assert step["uses"] == "./" and step["with"]["command"] == "install"
    assert "pip install" not in (ROOT / "examples" / "github-actions" / "resend-iac.yml").read_text()


class Runner:
    """Runs the action's steps as GitHub's runner would, locally."""

    def __init__(self, tmp: Path, inputs: dict[str, str], cwd: Path, action_path: Path = ROOT):
        self.tmp = tmp
        self.action_path = action_path
        self.cwd = cwd
        self.inputs = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
        self.inputs.update(inputs)
        self.outputs: dict[str, dict[str, str]] = {}
        self.path: list[str] = []

    def expr(self, text: str) -> str:
        def value(m: re.Match[str]) -> str:
            e = m.group(1)
            if e.startswith("inputs."):
                return self.inputs[e[len("inputs.") :]]
            if e == "runner.temp":
                return str(self.tmp / "runner-temp")
            if e.startswith("steps."):
                _, step, _, key = e.split(".")
                return self.outputs.get(step, {}).get(key, "")
            raise AssertionError(f"expression not handled by the test runner: {e}")

        return EXPR.sub(value, text)

    def run_step(self, step: dict) -> subprocess.CompletedProcess[str]:
        cond = step.get("if")
        if cond:
            m = re.fullmatch(r"inputs\.(\S+) != '(.*)'", cond)
            assert m, cond
            if self.inputs[m.group(1)] == m.group(2):
                return subprocess.CompletedProcess([], 0, "", "")
        out = self.tmp / f"output-{step.get('id')}"
        path_file = self.tmp / "github-path"
        out.write_text("")
        path_file.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESEND_", "INPUT_"))}
        env.update({k: self.expr(str(v)) for k, v in step.get("env", {}).items()})
        env.update(
            GITHUB_ACTION_PATH=str(self.action_path),
            GITHUB_OUTPUT=str(out),
            GITHUB_PATH=str(path_file),
            PIP_NO_INDEX="1",
            PIP_NO_BUILD_ISOLATION="0",
        )
        cwd = self.cwd / self.expr(step.get("working-directory", "."))
        r = subprocess.run(
            ["bash", "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        self.outputs[step.get("id", "")] = dict(
            line.split("=", 1) for line in out.read_text().splitlines() if "=" in line
        )
        self.path += path_file.read_text().split()
        return r


def _action_copy(tmp: Path) -> Path:
    """This checkout as the action's path, its requirements/action.txt pinned to the versions
    this venv has (so the step's `pip install --require-hashes` finds every pin satisfied with
    no index; the real pins and hashes are installed from PyPI by .ci/run)."""
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    copy = tmp / "action-path"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "__pycache__", "*.egg-info", "build", "benchmarks", ".resend-iac*", ".hypothesis"
        ),
    )

    def installed_version(m: re.Match[str]) -> str:
        try:
            return f"{m.group(1)}=={version(m.group(1))}"
        except PackageNotFoundError:  # pragma: no cover - every pin is a dependency of this venv
            return m.group(0)

    req = copy / "requirements" / "action.txt"
    req.write_text(re.sub(r"^([A-Za-z0-9_.-]+)==(\S+)", installed_version, req.read_text(), flags=re.M))
    return copy


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The install step, run once: a venv under runner.temp that sees this venv's packages
    (a .pth file), then the hash-checked requirements and `pip install "$GITHUB_ACTION_PATH"`,
    without an index."""
    tmp = tmp_path_factory.mktemp("action")
    action_path = _action_copy(tmp)
    venv = tmp / "runner-temp" / "resend-iac-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "outer-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    runner = Runner(tmp, {}, tmp, action_path)
    install = ACTION["runs"]["steps"][0]
    r = runner.run_step(install)
    assert r.returncode == 0, r.stderr
    return tmp, runner.outputs["install"]["bin"], runner.path


def _copy_team(tmp: Path, text: str | None = None) -> Path:
    import shutil

    repo = tmp / "repo"
    repo.mkdir()
    shutil.copytree(
        ROOT / "examples" / "quickstart", repo / "resend", ignore=shutil.ignore_patterns(".resend-iac")
    )
    if text is not None:
        (repo / "resend" / "team.yaml").write_text(text)
    return repo


def test_install_step_installs_from_the_action_path(installed):
    tmp, bin_, path = installed
    assert Path(bin_).is_file() and Path(bin_).parent.as_posix() in path
    version = subprocess.run([bin_, "--version"], capture_output=True, text=True, check=True).stdout
    import resend_iac

    assert resend_iac.__version__ in version


def _run(installed, inputs, repo):
    tmp, bin_, _ = installed
    runner = Runner(tmp, inputs, repo)
    runner.outputs["install"] = {"bin": bin_}
    r = runner.run_step(ACTION["runs"]["steps"][1])
    return r, runner.outputs["run"]


def test_validate_step_annotates_errors(installed, tmp_path):
    repo = _copy_team(tmp_path, "version: 1\ncontacts:\n  - email: ada@example.com\n    segments: [nope]\n")
    r, outputs = _run(installed, {"command": "validate"}, repo)
    assert r.returncode == 1 and outputs["exitcode"] == "1"
    assert re.search(r"^::error file=resend/team\.yaml,line=4,col=\d+::.*nope", r.stdout, re.M), r.stdout


def test_validate_step_passes_on_valid_files(installed, tmp_path):
    repo = _copy_team(tmp_path)
    r, outputs = _run(installed, {"command": "validate"}, repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert outputs["exitcode"] == "0" and r.stdout.startswith("OK: ")


def test_plan_step_builds_the_command_from_inputs(installed, tmp_path):
    repo = _copy_team(tmp_path)
    r, outputs = _run(
        installed,
        {
            "command": "plan",
            "format": "markdown",
            "detailed-exitcode": "true",
            "out": "plan.json",
            "args": "--local",
        },
        repo,
    )
    assert outputs["exitcode"] == "2", r.stderr
    assert "## resend-iac plan" in r.stdout and (repo / "plan.json").is_file()
    assert "ada@example.com" not in r.stdout  # redact defaults to true
    r, outputs = _run(installed, {"command": "apply", "plan-file": "plan.json", "args": "--local"}, repo)
    assert outputs["exitcode"] == "0", r.stdout + r.stderr


def test_cache_and_refresh_pass_through_only_when_set(installed, tmp_path):
    # a fake resend-iac that prints its arguments
    fake = tmp_path / "fake"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    tmp, _, path = installed
    repo = _copy_team(tmp_path)
    args = lambda inputs: _run((tmp, str(fake), path), inputs, repo)[0].stdout.split("\n")  # noqa: E731
    plain = args({"command": "plan"})
    assert "--cache" not in plain and "--refresh" not in plain and "--redact" in plain
    with_cache = args({"command": "plan", "cache": ".resend-iac/cache", "refresh": "auto"})
    assert with_cache[with_cache.index("--cache") + 1] == ".resend-iac/cache"
    assert with_cache[with_cache.index("--refresh") + 1] == "auto"
    assert "--cache" not in args({"command": "validate", "cache": "x"})


def test_pr_plan_script_annotates_validation_errors_on_github(tmp_path):
    """examples/github-actions: on GitHub (GITHUB_ACTIONS set) the PR step also prints ::error
    annotations for the diff, with emails masked as in the comment."""
    (tmp_path / "resend").mkdir()
    (tmp_path / "resend" / "team.yaml").write_text(
        "version: 1\ncontacts:\n  - email: ada@example.com\n    segments: [nope]\n  - email: ada@example.com\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESEND_", "GITHUB_"))}
    env.update(GITHUB_ACTIONS="true", RESEND_IAC=str(Path(sys.executable).parent / "resend-iac"))
    script = ROOT / "examples" / "github-actions" / "scripts" / "pr-plan.sh"
    r = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    annotations = [x for x in r.stdout.splitlines() if x.startswith("::error file=resend/team.yaml,line=")]
    assert annotations, r.stdout + r.stderr
    assert "ada@example.com" not in r.stdout
    del env["GITHUB_ACTIONS"]  # elsewhere: no annotations
    r = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1 and "::error" not in r.stdout
    # as the workflow runs it: the PR's files checked out in pr/, annotated at their place in the PR
    (tmp_path / "pr").mkdir()
    (tmp_path / "resend").rename(tmp_path / "pr" / "resend")
    env.update(GITHUB_ACTIONS="true", RESEND_IAC_CONFIG="pr/resend")
    r = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert any(x.startswith("::error file=resend/team.yaml,line=") for x in r.stdout.splitlines()), r.stdout


def test_pre_commit_hook_entry_runs(tmp_path):
    """The hook as pre-commit runs it (entry + args, no file names) in a repository with resend/."""
    hook = next(h for h in HOOKS if h["id"] == "resend-iac-validate")
    repo = _copy_team(tmp_path)
    entry = hook["entry"].split()
    command = [str(Path(sys.executable).parent / entry[0]), *entry[1:], *hook["args"]]
    assert not hook["pass_filenames"]
    r = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("OK: "), r.stdout + r.stderr
    (repo / "resend" / "team.yaml").write_text("version: 1\ncontacts:\n  - email: nope\n")
    r = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "resend/team.yaml:3" in r.stderr


def test_redact_masks_validate_and_apply_output_and_keeps_the_exit_status(installed, tmp_path):
    fake = tmp_path / "fake"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        "echo '  + contact ada@example.com'\n"
        "echo '      first_name: null -> \"Ada\"'\n"
        "echo 'error: grace@example.com failed' >&2\n"
        "exit 3\n"
    )
    fake.chmod(0o755)
    tmp, _, path = installed
    repo = _copy_team(tmp_path)
    for command in ("apply", "validate"):
        r, outputs = _run((tmp, str(fake), path), {"command": command}, repo)
        assert r.returncode == 3 and outputs["exitcode"] == "3"
        assert "@example.com" not in r.stdout + r.stderr and '"Ada"' not in r.stdout
        assert "+ contact <email redacted>" in r.stdout and "error: <email redacted> failed" in r.stdout
    r, _ = _run((tmp, str(fake), path), {"command": "apply", "redact": "false"}, repo)
    assert r.returncode == 3 and "ada@example.com" in r.stdout and '"Ada"' in r.stdout


def test_example_pre_commit_config_uses_the_hook():
    config = yaml.safe_load((ROOT / "examples" / "github-actions" / "pre-commit-config.yaml").read_text())
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    assert {h["id"] for h in hooks} <= {h["id"] for h in HOOKS}
    assert hooks and all(h.get("args") for h in hooks)
