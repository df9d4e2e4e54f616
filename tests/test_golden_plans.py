"""Golden plans: the plan of every configuration under examples/, against an empty team and
against one fixed live team, rendered as text, Markdown and JSON (plain and redacted), is
byte-identical to the files under tests/golden/.

The files were written by the code before the field schema (issue #19) and are kept: a
refactor of how fields are declared must not change one byte of a plan. When a change of
behaviour is meant, regenerate them and review the diff:

    RESEND_IAC_GOLDEN_WRITE=1 .venv/bin/python -m pytest -q tests/test_golden_plans.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resend_iac import config
from resend_iac.engine import diff
from resend_iac.model import Contact, Policy, Property, Segment, State, Topic
from resend_iac.render import render_json, render_markdown, render_text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
WRITE = os.environ.get("RESEND_IAC_GOLDEN_WRITE") == "1"

# Every configuration: the example directories, and the YAML files of examples/testing and
# examples/pulumi (configurations of their own, loaded one by one).
CONFIGS = sorted(
    [
        p
        for p in (ROOT / "examples").iterdir()
        if p.is_dir() and p.name not in ("pulumi", "github-actions", "testing")
    ]
    + sorted((ROOT / "examples" / "testing").glob("*.yaml"))
    + [ROOT / "examples" / "pulumi" / "contacts.yaml"]
)


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT / "examples")
    return str(rel).replace("/", "__").removesuffix(".yaml")


def _contact(email: str, n: int, **fields) -> Contact:
    fields.setdefault("first_name", None)
    fields.setdefault("last_name", None)
    fields.setdefault("unsubscribed", False)
    fields.setdefault("properties", {})
    fields.setdefault("topics", {})
    fields.setdefault("segments", set())
    return Contact(
        email=email, id=f"c-{n:04d}", created_at=f"2026-01-01 00:00:{n % 60:02d}.000000+00", **fields
    )


def live_team() -> State:
    """One fixed live team that overlaps the examples in every way a plan shows: changed and
    cleared names, an unsubscribed contact asked back, an opt-out asked back, a property of
    another type (replace), a topic of another default (replace), members nobody declares,
    contacts nobody declares (pruned by the policy examples), a case-only email collision."""
    live = State(policy=Policy())
    live.properties = {
        "company": Property("company", "string", "unknown", id="p-1", created_at="2026-01-01 00:00:01+00"),
        "plan_tier": Property("plan_tier", "string", None, id="p-2", created_at="2026-01-01 00:00:02+00"),
        "nickname": Property("nickname", "string", None, id="p-3", created_at="2026-01-01 00:00:03+00"),
        "team": Property("team", "string", None, id="p-4", created_at="2026-01-01 00:00:04+00"),
        "legacy_score": Property("legacy_score", "number", 0, id="p-5", created_at="2026-01-01 00:00:05+00"),
    }
    live.segments = {
        name: Segment(name, id=f"s-{i}", created_at=f"2026-01-02 00:00:0{i}+00")
        for i, name in enumerate(("customers", "newsletter", "staff", "old-list", "enterprise"), 1)
    }
    live.topics = {
        "product-updates": Topic(
            "product-updates",
            "opt_in",
            "Product news",
            "private",
            id="t-1",
            created_at="2026-01-03 00:00:01+00",
        ),
        "billing": Topic("billing", "opt_in", None, "private", id="t-2", created_at="2026-01-03 00:00:02+00"),
        "partner-offers": Topic(
            "partner-offers", "opt_out", "Occasional offers from partners", "private", id="t-3"
        ),
        "release-notes": Topic("release-notes", "opt_in", None, "public", id="t-4"),
        "weekly-digest": Topic("weekly-digest", "opt_in", "Every Monday", "public", id="t-5"),
    }
    contacts = [
        _contact(
            "ada@example.com",
            1,
            first_name="Augusta",
            last_name="Lovelace",
            unsubscribed=True,
            properties={"company": "Analytical Engines", "plan_tier": "3"},
            segments={"customers", "old-list"},
            topics={"billing": "opt_out", "weekly-digest": "opt_in"},
        ),
        _contact(
            "Grace@Example.com",
            2,
            first_name="Grace",
            last_name="",
            properties={"company": "US Navy"},
            segments={"customers", "newsletter"},
        ),
        _contact("alan@example.com", 3, first_name="Alan", last_name="Turing", segments={"staff"}),
        _contact("steve.wozniak@example.com", 4, first_name="Steve", properties={"company": "Apple"}),
        _contact(
            "ronald.wayne@example.com",
            5,
            first_name="Ron",
            last_name="Wayne",
            properties={"nickname": "Ronnie", "plan_tier": "1", "company": "Atari"},
        ),
        _contact("mystery@example.com", 6, first_name="Who", unsubscribed=True),
        _contact(
            "margaret.hamilton@example.com",
            7,
            topics={"partner-offers": "opt_out", "product-updates": "opt_in"},
        ),
        _contact(
            "katherine.johnson@example.com", 8, first_name="Katherine", topics={"product-updates": "opt_in"}
        ),
        _contact("ops@example.com", 9, segments={"staff", "newsletter", "old-list"}),
        _contact("leaver@example.com", 10, first_name="Lee", segments={"customers", "staff"}),
        _contact("founders@example.com", 11, segments={"customers"}),
        _contact(
            "olivia@bigcorp.example",
            12,
            first_name="Liv",
            properties={"team": "marketing"},
            segments={"enterprise"},
        ),
        _contact("jonas@example.net", 13, first_name="Jonas", last_name="Berg", unsubscribed=False),
        _contact(
            "noor@example.org", 14, first_name="Noor", last_name="Haddad", properties={"company": "Sandbox"}
        ),
        _contact("signup@example.com", 15, segments={"newsletter"}),
        _contact("dup@example.com", 16),
    ]
    for c in contacts:
        live.add_contact(c)
    live.email_collisions = {"dup@example.com": ["dup@example.com", "Dup@Example.com"]}
    return live


def _renderings(plan) -> dict[str, str]:
    return {
        "txt": render_text(plan),
        "md": render_markdown(plan),
        "json": render_json(plan),
        "redacted.txt": render_text(plan, redact=True),
        "redacted.md": render_markdown(plan, redact=True),
        "redacted.json": render_json(plan, redact=True),
    }


@pytest.fixture(autouse=True)
def _no_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESEND_IAC_REDACT_SALT", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.parametrize("team", ["empty", "live"])
@pytest.mark.parametrize("example", CONFIGS, ids=[_name(p) for p in CONFIGS])
def test_plan_output_is_golden(example: Path, team: str) -> None:
    desired = config.load([example])
    live = State() if team == "empty" else live_team()
    plans = {
        "": diff(desired, live),
        "resubscribe.": diff(desired, live, allow_resubscribe=True),
    }
    checked = 0
    for prefix, plan in plans.items():
        if prefix and team == "empty":
            continue  # nothing live to resubscribe: the same plan
        for suffix, text in _renderings(plan).items():
            path = GOLDEN / f"{_name(example)}.{team}.{prefix}{suffix}"
            if WRITE:
                path.parent.mkdir(exist_ok=True)
                path.write_text(text, encoding="utf-8")
            assert path.read_text(encoding="utf-8") == text, f"{path.name} differs from the golden file"
            checked += 1
    assert checked == (6 if team == "empty" else 12)


def test_export_of_the_live_team_is_golden() -> None:
    """What ``export`` writes for the fixed live team (config/dump.py), byte for byte."""
    live = live_team()
    live.email_collisions = {}
    text = config.dump_yaml(live)
    path = GOLDEN / "export.live-team.yaml"
    if WRITE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text


def test_golden_files_are_all_used() -> None:
    """No golden file left over from an example that is gone (each is checked above)."""
    names = {_name(p) for p in CONFIGS}
    stale = [p.name for p in GOLDEN.iterdir() if p.name.split(".")[0] not in names | {"export"}]
    assert not stale
    assert len(list(GOLDEN.iterdir())) == len(CONFIGS) * 18 + 1
