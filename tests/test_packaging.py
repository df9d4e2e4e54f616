"""Packaging: a plain install is the CLI alone; Pulumi is the `[pulumi]` extra; one version source.

(.ci/run builds the wheel, installs it alone in a fresh venv and runs the quickstart with it.)
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import resend_iac

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_plain_install_has_no_pulumi_and_the_extras_do():
    project = PYPROJECT["project"]
    assert "pulumi" not in _names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "pulumi" in _names(extras["pulumi"])
    assert "resend-iac[pulumi]" in extras["dev"]  # dev = everything, so the whole suite runs
    assert {"build", "twine", "ruff", "pytest"} <= _names(extras["dev"])


def test_one_version_source():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "resend_iac.__version__"}
    from importlib.metadata import version

    assert version("resend-iac") == resend_iac.__version__


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_the_cli_never_imports_pulumi():
    r = _run(
        "import sys; sys.modules['pulumi'] = None\n"
        "from resend_iac.cli import main\n"
        "from click.testing import CliRunner\n"
        "res = CliRunner().invoke(main, ['validate', 'examples/quickstart'])\n"
        "assert res.exit_code == 0, res.output\n"
        "assert not any(m.startswith('pulumi') and sys.modules[m] for m in sys.modules), 'pulumi imported'"
    )
    assert r.returncode == 0, r.stderr


def test_importing_the_pulumi_package_without_pulumi_names_the_extra():
    r = _run("import sys; sys.modules['pulumi'] = None\nimport resend_iac.pulumi")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError:") and "pip install 'resend-iac[pulumi]'" in last


SCHEMA_ID = "https://github.com/resend-iac/resend-iac/schemas/resend-iac.schema.json"


def test_schema_has_a_stable_id_in_both_copies():
    import json

    for path in (
        ROOT / "schemas" / "resend-iac.schema.json",
        ROOT / "resend_iac" / "schemas" / "resend-iac.schema.json",
    ):
        assert json.loads(path.read_text(encoding="utf-8"))["$id"] == SCHEMA_ID, path


def test_every_example_yaml_names_the_schema_for_editors():
    files = [
        p
        for p in (ROOT / "examples").rglob("*.y*ml")
        if p.suffix in (".yaml", ".yml")
        and "github-actions" not in p.parts
        and p.name != "Pulumi.yaml"
        and ".resend-iac" not in p.parts
    ]
    assert len(files) >= 9
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1].strip()).resolve()
        assert target == (ROOT / "schemas" / "resend-iac.schema.json").resolve(), path


def test_ci_checks_the_package_and_lints():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for step in (
        "-m build",
        "twine check",
        "ruff check",
        "ruff format --check",
        "import pulumi",
        "mypy resend_iac",
    ):
        assert step in ci, step
    lint = PYPROJECT["tool"]["ruff"]
    assert lint["line-length"] and {"E", "F", "W", "I", "B", "UP"} <= set(lint["lint"]["select"])
