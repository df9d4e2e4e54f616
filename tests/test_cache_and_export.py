"""Issue 18, section 7: a corrupt refresh cache is moved aside with a warning and the plan goes
on without it; `export` round-trips every string (U+0085, U+2028/2029 and the other characters
YAML treats as line breaks or folds). Over HTTP against the emulator."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resend_iac import config
from resend_iac.cli import main
from resend_iac.client import SyncResendClient
from resend_iac.engine.cache import CacheError, RefreshCache
from resend_iac.model import Contact, Property, Segment, State, Topic

KEY = "re_section7_test_key_1234567890"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture
def live(tmp_path, monkeypatch, emulator_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    monkeypatch.setenv("RESEND_IAC_CACHE", str(tmp_path / "cache" / "cache.sqlite"))
    return emulator_server


# -- the corrupt refresh cache -----------------------------------------------------------------


def _team(tmp_path: Path) -> Path:
    doc = {
        "version": 1,
        "properties": {"tier": {"type": "string"}},
        "contacts": [{"email": f"c{i}@example.com", "properties": {"tier": "pro"}} for i in range(5)],
    }
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _corruptions(good: bytes) -> dict[str, bytes]:
    return {
        "random bytes": os.urandom(8192),
        "truncated": good[: len(good) // 2],
        "cut after the header": good[:100],
        "a page zeroed": good[:4096] + b"\0" * 4096 + good[8192:],
    }


@pytest.mark.parametrize("kind", ["random bytes", "truncated", "cut after the header", "a page zeroed"])
def test_a_corrupt_cache_is_moved_aside_and_the_plan_goes_on(kind, live, tmp_path):
    team = _team(tmp_path)
    assert run("apply", team, "--auto-approve").exit_code == 0
    cache = Path(os.environ["RESEND_IAC_CACHE"])
    good = cache.read_bytes()
    assert len(good) >= 12288  # a real cache of several pages
    cache.write_bytes(_corruptions(good)[kind])
    r = run("plan", team, "--format", "json", "--detailed-exitcode")
    assert r.exit_code == 0, r.output  # main: "cannot use the refresh cache", exit 1
    assert "warning:" in r.stderr and "moved it aside" in r.stderr
    assert json.loads(r.stdout)["changes"] == []
    assert Path(f"{cache}.corrupt").read_bytes() == _corruptions(good)[kind] or kind == "random bytes"
    # the new cache is a good one: the next plan serves the details from it, with no warning
    r = run("plan", team, "--format", "json", "--refresh-budget", "0")
    assert r.exit_code == 0 and "warning" not in r.stderr
    assert json.loads(r.stdout)["freshness"]["from_cache"] == 5


def test_a_locked_or_unreadable_cache_is_still_an_error(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CacheError):
        RefreshCache.open(tmp_path / "dir.sqlite", KEY)
    assert not (tmp_path / "dir.sqlite.corrupt").exists()


# -- export round-trips every string ---------------------------------------------------------------

TRICKY = [
    "a\x85b",  # NEL: YAML folds it into a space in plain and single-quoted scalars
    "a\u2028b",
    "a\u2029b",
    "\x85",
    "line\nbreak",
    "cr\rlf\r\n",
    "tab\tx",
    "trailing ",
    " leading",
    "a  \n  b",
    "\ufeffbom",
    "zero\u200bwidth",
    "rtl\u202eoverride",
    "nul\x00byte",
    "esc\x1b[2J",
    "nbsp\xa0x",
    "'quoted'",
    '"dq"',
    "# not a comment",
    "- not a list",
    "key: value",
    "yes",
    "null",
    "~",
    "0x1F",
    "1e3",
    "\U0001f600 emoji",
]


def _state_with(text: str) -> State:
    """``text`` in every string field; names wrapped (a name may not start or end with white space)."""
    seg, topic = f"s{text}e", f"t{text[:40]}e"
    state = State()
    state.properties["note"] = Property("note", "string", text)
    state.segments[seg] = Segment(seg)
    state.topics[topic] = Topic(topic, "opt_in", text, "public")
    state.add_contact(
        Contact(
            "ann@example.com",
            first_name=text,
            last_name=text,
            properties={"note": text},
            segments={seg},
            topics={topic: "opt_out"},
        )
    )
    return state


@pytest.mark.parametrize("text", TRICKY, ids=[repr(t) for t in TRICKY])
def test_export_round_trips_tricky_strings(text, tmp_path):
    state = _state_with(text)
    path = tmp_path / "export.yaml"
    path.write_text(config.dump_yaml(state), encoding="utf-8")
    assert config.load([path]) == state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# any character (no lone surrogates: not text); and short strings of YAML's line breaks among
# plain characters (a string with any other special character is double-quoted anyway)
@given(
    text=st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
        st.text(st.sampled_from("ab :'\"\x85\u2028\u2029\n"), max_size=8),
    )
)
def test_export_round_trips_any_string(text, tmp_path_factory):
    state = _state_with(text)
    path = tmp_path_factory.mktemp("export") / "export.yaml"
    path.write_text(config.dump_yaml(state), encoding="utf-8")
    with contextlib.chdir(path.parent):  # declared files are read inside the working directory
        assert config.load([path]) == state


def test_an_export_plans_no_change_against_its_team(live, tmp_path):
    """main: U+0085 in a live name came back as a space, so the export planned an update."""
    with SyncResendClient(KEY, live.url, rate_limit=None) as client:
        for i, name in enumerate(["a\x85b", "a\u2028b", "c\u2029d", "x\ny", "tab\tz"]):
            client.create_contact({"email": f"p{i}@example.com", "first_name": name, "last_name": name})
    r = run("export", "--out", tmp_path / "export.yaml")
    assert r.exit_code == 0, r.output
    r = run("plan", tmp_path / "export.yaml", "--detailed-exitcode")
    assert r.exit_code == 0, r.output
    assert "No changes" in r.output
