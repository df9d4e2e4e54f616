"""The README's two set-up commands are exactly what CI runs, and every command it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from resend_iac.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _setup_commands() -> list[str]:
    section = README.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


def test_readme_has_two_setup_commands_and_ci_runs_them_verbatim():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert "\n" not in command, f"set-up command must be one line: {command!r}"
        assert command in ci.splitlines(), f".ci/run does not run the README command {command!r}"
    assert "--local" in commands[0] and "apply" in commands[0]
    assert "pytest" in commands[1]


def test_every_resend_iac_subcommand_in_readme_exists():
    code = "\n".join(re.findall(r"`([^`\n]+)`", README) + re.findall(r"```sh\n(.*?)```", README, flags=re.S))
    shown = set(re.findall(r"(?:^|[\s/])resend-iac ([a-z][a-z-]*)", code, flags=re.M))
    assert shown, "README shows no resend-iac command"
    runner = CliRunner()
    for name in sorted(shown):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, f"`resend-iac {name}` from the README fails: {result.output}"


def test_readme_yaml_example_validates(tmp_path):
    block = re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    assert len(block) == 1
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "customers.csv").write_text("Email,First Name,Company\nbob@example.com,Bob,Bobco\n")
    (tmp_path / "team.yaml").write_text(block[0])
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "team.yaml")])
    assert result.exit_code == 0, result.output
    assert "4 contacts" in result.output
