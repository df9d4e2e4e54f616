"""`validate --format text|json|github`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.cli.diagnostics import escape_data, escape_property, github_annotation
from resend_iac.config import Diagnostic
from resend_iac.model import Location

ROOT = Path(__file__).resolve().parents[1]

BAD = """version: 1
segments:
  beta: {}
contacts:
  - email: ada@example.com
    segments: [gamma]
  - email: not-an-email
"""


def _bad(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(BAD)
    return str(path)


def _invoke(*args):
    return CliRunner().invoke(main, ["validate", *args])


def test_github_format_annotates_each_error_at_its_place(tmp_path):
    path = _bad(tmp_path)
    text = _invoke(path)
    result = _invoke("--format", "github", path)
    assert result.exit_code == 1 == text.exit_code
    lines = [x for x in result.stdout.splitlines() if x.startswith("::")]
    expected = [x for x in text.stderr.splitlines() if x.startswith(path)]
    assert len(lines) == len(expected) >= 2
    for line in lines:
        m = re.fullmatch(r"::error file=([^,]+),line=(\d+)(?:,col=(\d+))?::(.+)", line)
        assert m, line
        assert m.group(1) == escape_property(path)
    assert any(",line=6," in x and "gamma" in x for x in lines)
    assert "1 error" in result.stderr or "2 errors" in result.stderr


def test_github_format_valid_prints_the_summary_and_exits_0():
    result = _invoke("--format", "github", "examples/quickstart")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ") and "::" not in result.stdout


def test_json_format(tmp_path):
    result = _invoke("--format", "json", _bad(tmp_path))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False and doc["summary"] is None
    assert {e["line"] for e in doc["errors"]} >= {6}
    assert all(e["file"].endswith("team.yaml") and e["message"] for e in doc["errors"])
    shutil.copytree(ROOT / "examples" / "quickstart", "examples/quickstart")  # the cwd is tmp_path
    ok = _invoke("--format", "json", "examples/quickstart")
    assert ok.exit_code == 0
    doc = json.loads(ok.stdout)
    assert doc["valid"] is True and doc["errors"] == [] and "contacts" in doc["summary"]


def test_text_format_is_the_default():
    assert _invoke("--format", "text", "examples/quickstart").stdout == _invoke("examples/quickstart").stdout


def test_escaping_follows_githubs_workflow_command_rules():
    assert escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    d = Diagnostic(Location("dir,x/te:am.yaml", 3, 5), "bad value\n'::warning::x' 100%")
    assert github_annotation(d) == (
        "::error file=dir%2Cx/te%3Aam.yaml,line=3,col=5::bad value%0A'::warning::x' 100%25"
    )
    # no line (a file-level problem): no line/col properties; a CSV row: no col
    assert github_annotation(Diagnostic(Location("a.yaml", 0), "m")) == "::error file=a.yaml::m"
    assert github_annotation(Diagnostic(Location("s.csv", 41), "m")) == "::error file=s.csv,line=41::m"
