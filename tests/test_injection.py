"""Text from a pull request in the comment, the log and the terminal (issue 18, sections 2
and 5): every piece of file content or file name an output quotes goes through one excerpt
function (``resend_iac.text.excerpt``: length-capped, non-printing characters escaped); the
comment is checked with a CommonMark parser (markdown-it-py) for elements the tool did not
write; emails with invisible characters are refused; names never reach a terminal raw."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from resend_iac import config
from resend_iac.cli import main
from resend_iac.engine import diff
from resend_iac.engine.plan import Change, Plan
from resend_iac.model import Contact, State, normalize_email
from resend_iac.render import render_markdown, render_text
from resend_iac.text import excerpt

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "examples" / "github-actions" / "scripts"
BIN = Path(sys.executable).parent

# What a pull request would write to take over the comment and the log: close the fence,
# a heading, an image and a link from any host, a team mention, a workflow command.
PAYLOAD = (
    "PWNED\n````\n# PWNED heading\n![PWNED](https://evil.example/x.png)\n"
    "[PWNED](https://evil.example/)\n@org/PWNED-team\n::error::PWNED\n::add-mask::x"
)
CODE = {"fence", "code_block", "code_inline"}


# ------------------------------------------------------------------------------ helpers


def foreign(markdown: str) -> list[str]:
    """What in ``markdown`` (as CommonMark + tables renders it) carries the payload outside
    code: a heading, an image, a link, raw HTML or plain text with 'PWNED' in it. Also every
    image and link at all (the tool writes none without GITHUB_RUN_ID) and every @mention
    outside code."""
    found = []

    def walk(tokens, context: str) -> None:
        for tok in tokens:
            if tok.type in ("image", "link_open"):
                found.append(f"{tok.type} {tok.attrs}")
            if tok.children:
                walk(tok.children, context)
                continue
            if tok.type in CODE:
                continue
            if "PWNED" in tok.content:
                found.append(f"{context}/{tok.type}: {tok.content!r}")
            if tok.type == "text" and re.search(r"(?<![\w`])@[A-Za-z0-9][\w/-]*", tok.content):
                found.append(f"mention in {tok.content!r}")

    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    for n, tok in enumerate(tokens):
        if tok.type == "heading_open":
            inline = tokens[n + 1]
            if "PWNED" in inline.content:
                found.append(f"heading {inline.content!r}")
    walk(tokens, "top")
    return found


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The checker itself can fail: the payload raw, or in a too-short fence, is caught."""
    assert foreign(PAYLOAD)
    assert foreign("```text\n" + PAYLOAD + "\n```\n")  # the ```` in it closes the fence
    assert not foreign("`````text\n" + PAYLOAD + "\n`````\n")
    assert foreign("- hello @someone")


def log_lines_from_files(text: str) -> list[str]:
    """Lines the runner would read as workflow commands (it trims leading white space)."""
    return [ln for ln in text.splitlines() if ln.lstrip().startswith("::") and "PWNED" in ln]


# ------------------------------------------------------------------------------ excerpt


def test_excerpt_caps_escapes_and_masks() -> None:
    assert excerpt("abc") == "'abc'"
    assert excerpt("a" * 50, 10) == "'aaaaaaaaaa'... (50 characters)"
    assert excerpt("a\nb\x1b[2K\u202e\u200b\ufeff\u00ad") == "'a\\nb\\x1b[2K\\u202e\\u200b\\ufeff\\xad'"
    assert excerpt("a\nb", quote=False) == "a\\nb"
    assert excerpt("a\\nb", quote=False) == "a\\\\nb"  # a backslash in the text: never read as an escape
    assert excerpt("key re_abcdefgh0123456789xyz here", None) == "'key re_**** here'"
    for text in (PAYLOAD, "\x9b2K", "\u2028x", "\U000e0001"):
        for quote in (True, False):
            shown = excerpt(text, None, quote=quote)
            assert shown.isprintable() and "\n" not in shown


# ------------------------------------------------------------------------------ the hint and names


def test_a_multiline_value_in_an_error_stays_on_its_line(tmp_path: Path) -> None:
    """The reported case: the hint of `- <string>` quoted the raw value (`config/checks.py`)."""
    Path("a.yaml").write_text(
        "version: 1\ncontacts:\n  - " + _yaml_str(PAYLOAD) + "\nsegments:\n  " + _yaml_str(PAYLOAD) + ": {}\n"
    )
    result = CliRunner().invoke(main, ["validate", "a.yaml"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert all(ln.startswith("a.yaml:") for ln in lines[:-1]), lines
    assert "(write `- email: ADDRESS`, or list plain addresses under `- emails:`)" in result.output
    assert not log_lines_from_files(result.output)
    assert all(len(ln) < 600 for ln in lines)


def test_every_diagnostic_is_one_printable_line(tmp_path: Path) -> None:
    """Names with control characters in every place a diagnostic quotes one: keys, segment,
    topic and property names, CSV headers and cells, duplicate emails."""
    bad = "x\x1b[2K\u202e\n::error::PWNED"
    q = _yaml_str(bad)
    Path("people.csv").write_text(f"email,{bad.replace(chr(10), ' ')}\n{bad},1\n")
    Path("a.yaml").write_text(
        "version: 1\n"
        f"properties:\n  {q}: {{type: string}}\n  p: {{type: {q}}}\n"
        f"segments:\n  ' {q[1:-1]}': {{membership: {q}}}\n"
        f"topics:\n  {_yaml_str(bad * 10)}: {{}}\n"
        "contacts:\n"
        f"  - email: {q}\n"
        f"  - email: a@example.com\n    segments: [{q}]\n    topics: {{{q}: opt_in}}\n    {q}: 1\n"
        f"  - csv: people.csv\n  - csv: {q}\n  - csv: people.csv\n    columns: {{{q}: email}}\n"
    )
    state, diagnostics = config.validate(["a.yaml"])
    assert state is None and len(diagnostics) >= 8, diagnostics
    for d in diagnostics:
        line = str(d)
        assert line.isprintable(), line
        assert not line.split(": ", 1)[1].startswith("::")


def test_a_file_name_with_a_newline_is_refused_and_escaped(tmp_path: Path) -> None:
    Path("resend").mkdir()
    Path("resend/team.yaml").write_text("version: 1\n")
    Path("resend/x\n::error::PWNED\n# PWNED.yaml").write_text("version: 1\n")
    result = CliRunner().invoke(main, ["validate", "resend"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "resend: 'x\\n::error::PWNED\\n# PWNED.yaml' has a control or invisible character in its name; "
        "rename it. Nothing under resend was read"
    )


def test_github_annotations_keep_file_text_on_one_line(tmp_path: Path) -> None:
    Path("a.yaml").write_text("version: 1\ncontacts:\n  - " + _yaml_str(PAYLOAD) + "\n")
    result = CliRunner().invoke(main, ["validate", "--format", "github", "a.yaml"])
    commands = [ln for ln in result.stdout.splitlines() if ln.startswith("::")]
    assert commands and all(ln.startswith("::error file=a.yaml,line=3,col=5::") for ln in commands)
    assert not log_lines_from_files(result.stdout.replace("::error file=a.yaml,line=3,col=5::", ""))


# ------------------------------------------------------------------------------ the plan


def hostile_plan() -> Plan:
    """A plan whose names, values and warnings carry the payload and terminal escapes."""
    Path("a.yaml").write_text(
        "version: 1\n"
        "properties:\n  company: {type: string}\n"
        f'segments:\n  {_yaml_str(PAYLOAD)}: {{}}\n  "vip\\e[2K\\e[1A\\x9b2K": {{}}\n'
        f'topics:\n  "news\\u202e": {{description: {_yaml_str(PAYLOAD)}}}\n'
        "contacts:\n"
        f"  - email: ada@example.com\n    first_name: {_yaml_str(PAYLOAD)}\n"
        f"    properties: {{company: {_yaml_str(PAYLOAD)}}}\n    segments: [{_yaml_str(PAYLOAD)}]\n"
    )
    plan = diff(config.load(["a.yaml"]), State())
    plan.warnings.append(f"segment {PAYLOAD} has \x1b[2K a warning")
    return plan


@pytest.mark.parametrize("redact", [False, True])
def test_the_markdown_plan_holds_no_element_from_the_files(tmp_path: Path, redact: bool) -> None:
    md = render_markdown(hostile_plan(), redact=redact)
    assert not foreign(md), foreign(md)
    assert "\x1b" not in md and "\x9b" not in md and "\u202e" not in md
    # the diff blocks: every line a change or its field, nothing forged from a name
    changes = [ln for ln in md.splitlines() if ln[:2] in ("+ ", "- ", "~ ")]
    assert len(changes) == len(hostile_plan().changes)


@pytest.mark.parametrize("color", [False, True])
def test_names_reach_the_terminal_escaped(tmp_path: Path, color: bool) -> None:
    """Cursor movement in a segment name would erase plan lines on a terminal: escaped, on a
    terminal (colour) or not."""
    text = render_text(hostile_plan(), color=color)
    without_ours = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the colours render_text writes
    assert "\x1b" not in without_ours and "\x9b" not in text and "\u202e" not in text
    assert "+ segment vip\\x1b[2K\\x1b[1A\\x9b2K" in without_ours
    assert "+ topic news\\u202e" in without_ours
    assert all(ln.isprintable() for ln in without_ours.splitlines())
    assert not log_lines_from_files(without_ours)


def test_a_live_name_with_escapes_is_escaped_too() -> None:
    """Names from the API (a live segment to delete) go through the same function."""
    plan = Plan(changes=[Change("delete", "segment", "old\x1b]0;title\x07", {}, None, id="s1")])
    assert "- segment old\\x1b]0;title\\x07" in render_text(plan)
    assert "\x1b" not in render_markdown(plan)


def test_the_plan_command_prints_names_escaped(tmp_path: Path) -> None:
    Path("a.yaml").write_text('version: 1\nsegments:\n  "vip\\e[2K\\e[1A": {}\n')
    result = CliRunner().invoke(main, ["plan", "--local", "a.yaml"])
    assert result.exit_code == 0, result.output
    assert "+ segment vip\\x1b[2K\\x1b[1A" in result.stdout and "\x1b[2K" not in result.stdout


# ------------------------------------------------------------------------------ the CI scripts


def _script(repo: Path, name: str, **env: str) -> subprocess.CompletedProcess:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("RESEND_", "GITHUB_"))}
    base.update(PATH=f"{BIN}{os.pathsep}{base.get('PATH', '')}", RESEND_IAC_CONFIG="resend", NO_COLOR="1")
    base.update(env)
    return subprocess.run(
        ["bash", str(SCRIPTS / name)], cwd=repo, env=base, capture_output=True, text=True, timeout=120
    )


def test_the_pr_comment_and_log_of_a_hostile_pull_request(tmp_path: Path) -> None:
    """pr-plan.sh on files whose values and names carry the payload: the comment (rendered as
    CommonMark) holds nothing the tool did not write, and no line of the log (stdout or
    stderr, with GITHUB_ACTIONS set so annotations are written) is a workflow command from a
    file."""
    resend = tmp_path / "resend"
    resend.mkdir()
    (resend / "team.yaml").write_text(
        "version: 1\nsegments:\n  vip: {}\ncontacts:\n  - " + _yaml_str(PAYLOAD) + "\n"
        "  - email: a@example.com\n    segments: [" + _yaml_str("`" * 7 + "PWNED") + "]\n"
    )
    result = _script(tmp_path, "pr-plan.sh", GITHUB_ACTIONS="true")
    assert result.returncode == 1
    body = (tmp_path / ".resend-iac-ci" / "comment.md").read_text()
    assert "do not validate" in body and "PWNED" in body  # quoted, escaped, inside the block
    assert not foreign(body), foreign(body)
    assert "````````text\n" in body  # the fence is longer than the 7 backticks in the text
    ours = re.compile(r"::error file=resend/team\.yaml,line=\d+,col=\d+::[^\n]*$")  # validate --format github
    annotations = [ln for ln in result.stdout.splitlines() if ln.startswith("::")]
    assert len(annotations) == 2 and all(ours.match(ln) for ln in annotations), annotations
    assert not log_lines_from_files("\n".join(ln for ln in result.stdout.splitlines() if not ours.match(ln)))
    assert not log_lines_from_files(result.stderr)
    for line in result.stderr.splitlines():  # the tool's output reaches the log prefixed
        assert line.startswith(("resend-iac-ci: ", "| ")) or line.endswith(
            "nothing was checked against Resend."
        ), line


def test_the_pr_script_refuses_a_symlinked_config_root(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "team.yaml").write_text("version: 1\ncontacts:\n  - '" + "secret-PWNED" + "'\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "resend").symlink_to(tmp_path / "elsewhere")
    result = _script(tmp_path / "repo", "pr-plan.sh")
    assert result.returncode == 1
    body = (tmp_path / "repo" / ".resend-iac-ci" / "comment.md").read_text()
    assert "not a real directory" in body and "PWNED" not in body + result.stdout + result.stderr
    assert "resend: not a real file or directory (a symlink, or missing); nothing was read" in result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_fenced_wraps_any_backtick_run(tmp_path: Path) -> None:
    """common.sh's fenced(): the fence is longer than the longest run of backticks."""
    for text, fence in (("plain\n", "```"), ("a ``` b\n", "````"), ("`" * 9 + "\n", "`" * 10)):
        (tmp_path / "in.txt").write_text(text)
        out = subprocess.run(
            ["bash", "-c", f'source "{SCRIPTS}/common.sh"; fenced in.txt'],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "RESEND_IAC_REDACT": "0"},
        ).stdout
        assert out == f"{fence}text\n{text}{fence}\n", out


# ------------------------------------------------------------------------------ invisible characters


@pytest.mark.parametrize(
    "char,name",
    [
        ("\u200b", "ZERO WIDTH SPACE"),
        ("\u00ad", "SOFT HYPHEN"),
        ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
        ("\u2066", "LEFT-TO-RIGHT ISOLATE"),
        ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),
        ("\u200d", "ZERO WIDTH JOINER"),
        ("\x7f", "a control character"),
        ("\x9b", "a control character"),
    ],
)
def test_an_email_with_an_invisible_character_is_refused(tmp_path: Path, char: str, name: str) -> None:
    """In a contact, an emails: list and a CSV row: refused at file:line:column (CSV: line),
    the character named and escaped (two addresses that look alike never print alike)."""
    email = f"gr{char}ace@example.com"
    escaped = excerpt(email, 60)
    Path("people.csv").write_text(f"email\n{email}\n", encoding="utf-8")
    Path("a.yaml").write_text(
        "version: 1\ncontacts:\n"
        f"  - email: {_yaml_str(email)}\n"
        f"  - emails: [b@example.com, {_yaml_str(email.replace('gr', 'xy'))}]\n"
        "  - csv: people.csv\n"
    )
    state, diagnostics = config.validate(["a.yaml"])
    assert state is None
    where = sorted(str(d.location) for d in diagnostics)
    assert where == ["a.yaml:3:12", "a.yaml:4:29", "people.csv:2"], where
    code = f"U+{ord(char):04X} ({name}) at character 3"
    for d in diagnostics:
        assert code in d.message and "retype the address" in d.message, d.message
    assert any(d.message.startswith(escaped) for d in diagnostics)


def test_emails_are_compared_nfc_normalised(tmp_path: Path) -> None:
    """é written composed (U+00E9) and decomposed (e + U+0301) is one address: a duplicate
    in the files, and the same contact as a live one spelled the other way."""
    composed, decomposed = "jos\u00e9@example.com", "jose\u0301@example.com"
    assert normalize_email(composed) == normalize_email(decomposed) == composed
    assert normalize_email("ada@example.com") == "ada@example.com"
    Path("a.yaml").write_text(
        f"version: 1\ncontacts:\n  - email: {_yaml_str(composed)}\n  - email: {_yaml_str(decomposed)}\n"
    )
    state, diagnostics = config.validate(["a.yaml"])
    assert state is None and "is declared twice (first at a.yaml:3" in diagnostics[0].message
    Path("a.yaml").write_text(f"version: 1\ncontacts:\n  - email: {_yaml_str(decomposed)}\n")
    desired = config.load(["a.yaml"])
    live_state = State()
    live_state.contacts[normalize_email(composed)] = Contact(email=composed, id="c1")
    plan = diff(desired, live_state)
    assert not [c for c in plan.changes if c.kind == "contact" and c.action in ("create", "delete")], (
        plan.changes
    )


def _yaml_str(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (every character escaped as YAML reads it)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}")
    return '"' + "".join(out) + '"'


def test_broadcast_findings_are_code_in_the_comment_and_escaped_on_the_terminal() -> None:
    """The broadcasts section quotes segment and broadcast names (from the files and the API):
    a code span per finding in Markdown, escaped in text."""
    findings = [
        {"level": "refuse", "message": f"broadcast `{PAYLOAD}` targets segment x"},
        {"level": "warn", "message": "``" + PAYLOAD + "\x1b[2K"},
    ]
    plan = Plan(changes=[Change("delete", "segment", "x", {}, None, id="s1")], broadcasts=findings)
    md = render_markdown(plan)
    assert "Broadcasts this plan affects" in md and not foreign(md), foreign(md)
    text = render_text(plan)
    assert "\x1b[2K" not in text and all(ln.isprintable() for ln in text.splitlines())
