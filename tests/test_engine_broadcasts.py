"""engine/broadcasts.py in-process: the rules one by one (topics, replaces, going-out statuses,
contact creates and deletes, --force), the hostile list without ``topic_id``, saved plans and
``apply --plan`` checking the broadcasts as they are at apply time, and the parsing helpers."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.cli.target import client_for_app, seed_app
from resend_iac.emulator import create_app
from resend_iac.emulator.broadcast_seed import seed
from resend_iac.engine import SafetyError, check_safety, load_plan, save_plan
from resend_iac.engine.broadcasts import clean_name, findings, parse_time, placeholders, touches
from resend_iac.engine.live import plan_live

BASE = {
    "version": 1,
    "properties": {"company": {"type": "string", "fallback_value": "x"}},
    "segments": {"newsletter": {}},
    "topics": {"news": {"default_subscription": "opt_in"}},
    "contacts": [
        {"email": f"p{i}@example.com", "segments": ["newsletter"], "properties": {"company": "Acme"}}
        for i in range(3)
    ],
}


def write(tmp_path: Path, doc: dict, name: str = "team.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def seeded(tmp_path: Path, broadcasts: list[dict], **kw) -> object:
    app = create_app(rate_limit=0, **kw)
    seed_app(app, [write(tmp_path, {**BASE, "broadcasts": broadcasts}, "seed.yaml")])
    return app


def plan_for(app, tmp_path: Path, doc: dict):
    from resend_iac.config import load

    desired = load([write(tmp_path, doc)])

    async def run():
        async with client_for_app(app) as client:
            return await plan_live(client, desired)

    return asyncio.run(run())[0]


SCHEDULED = {"name": "Soon", "segment": "newsletter", "topic": "news", "status": "scheduled"}


def test_deleting_or_replacing_a_topic_a_pending_broadcast_is_scoped_to_is_refused(tmp_path):
    app = seeded(
        tmp_path,
        [
            {**SCHEDULED, "scheduled_at": "in 3 days"},
            {"name": "Gone", "segment": "newsletter", "topic": "news", "status": "canceled"},
        ],
    )
    gone = {**BASE, "topics": {}, "policy": {"prune_topics": True}}
    plan = plan_for(app, tmp_path, gone)
    assert [(f["level"], f["rule"], f["broadcast"]["name"]) for f in plan.broadcasts] == [
        ("refuse", "topic", "Soon")
    ]
    assert "is scoped to topic `news`, which the plan deletes" in plan.broadcasts[0]["message"]
    with pytest.raises(SafetyError) as err:
        check_safety(plan)
    assert "broadcast 'Soon' (scheduled for " in str(err.value) and "--force" in str(err.value)
    assert check_safety(plan, force=True) == [plan.broadcasts[0]["message"]]  # --force: a reason, no refusal

    replaced = copy.deepcopy(BASE)
    replaced["topics"]["news"]["default_subscription"] = "opt_out"
    plan = plan_for(app, tmp_path, replaced)
    assert [f["change"]["action"] for f in plan.broadcasts] == ["replace"]
    assert "which the plan replaces" in plan.broadcasts[0]["message"]
    # three days away: no membership warning for the member removed below
    fewer = {**BASE, "contacts": BASE["contacts"][:2]}
    assert plan_for(app, tmp_path, {**fewer, "policy": {"prune_contacts": True}}).broadcasts == []


def test_hostile_list_items_without_topic_id_are_read_one_by_one(tmp_path):
    app = seeded(tmp_path, [{**SCHEDULED, "scheduled_at": "in 1 hour"}], unknowns="hostile")
    app.reset_stats()
    plan = plan_for(app, tmp_path, {**BASE, "topics": {}, "policy": {"prune_topics": True}})
    assert [f["rule"] for f in plan.broadcasts] == ["topic"]
    assert app.stats()["by_route"]["GET /broadcasts/{id}"] == 1


def test_a_property_replaced_warns_and_members_of_new_and_deleted_contacts_count(tmp_path):
    app = seeded(tmp_path, [{**SCHEDULED, "scheduled_at": "in 1 hour", "text": "Hi {{{ company }}}"}])
    replaced = copy.deepcopy(BASE)
    replaced["properties"]["company"] = {"type": "number"}
    for c in replaced["contacts"]:
        c["properties"] = {"company": 1}
    plan = plan_for(app, tmp_path, replaced)
    assert [(f["level"], f["placeholder"]) for f in plan.broadcasts] == [("warn", "{{{ company }}}")]

    changed = {
        **BASE,
        "contacts": BASE["contacts"][1:] + [{"email": "new@example.com", "segments": ["newsletter"]}],
        "policy": {"prune_contacts": True},
    }
    (f,) = plan_for(app, tmp_path, changed).broadcasts
    assert (f["added"], f["removed"], f["members"]) == (1, 1, 3)
    assert f["message"].startswith(
        "adds 1 and removes 1 of 3 members of `newsletter`, which 'Soon' is scheduled to at "
    )


def test_a_plan_touching_nothing_a_broadcast_uses_reads_none(tmp_path):
    app = seeded(tmp_path, [{**SCHEDULED, "scheduled_at": "in 1 hour"}])
    app.reset_stats()
    renamed = copy.deepcopy(BASE)
    renamed["contacts"][0]["first_name"] = "Ada"
    renamed["topics"]["news"]["description"] = "Monthly"
    plan = plan_for(app, tmp_path, renamed)
    assert plan.changes and plan.broadcasts == []
    assert not any(r.startswith(("GET /broadcasts", "POST /broadcasts")) for r in app.stats()["by_route"])


def test_saved_plans_carry_findings_and_apply_plan_checks_the_broadcasts_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_IAC_LOCAL_DB", str(tmp_path / "local.db"))
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["apply", "--local", "--no-cache", "--auto-approve", str(write(tmp_path, BASE))]
        ).exit_code
        == 0
    )
    gone = write(
        tmp_path,
        {
            **BASE,
            "segments": {},
            "contacts": [{"email": "p0@example.com"}],
            "policy": {"prune_segments": True},
        },
    )
    r = runner.invoke(main, ["plan", "--local", "--no-cache", "--out", "plan.json", str(gone)])
    assert r.exit_code == 0 and "broadcasts" not in json.loads((tmp_path / "plan.json").read_text())
    # a broadcast is scheduled to the segment after the plan was made
    app = create_app(str(tmp_path / "local.db"), rate_limit=0)
    assert seed(app.store, [{**SCHEDULED, "topic": None, "scheduled_at": "in 2 hours"}]) == []
    app.store.close()
    r = runner.invoke(main, ["apply", "--local", "--no-cache", "--auto-approve", "plan.json"])
    assert r.exit_code == 1 and "Refusing to apply" in r.stderr and "broadcast 'Soon'" in r.stderr
    r = runner.invoke(main, ["plan", "--local", "--no-cache", "--out", "plan2.json", str(gone)])
    saved = load_plan(tmp_path / "plan2.json")  # the schema and digest accept the findings
    assert [f["rule"] for f in saved.broadcasts] == ["segment"]
    with pytest.raises(SafetyError):
        check_safety(saved)
    save_plan(saved, tmp_path / "plan3.json")
    assert load_plan(tmp_path / "plan3.json").broadcasts == saved.broadcasts
    r = runner.invoke(main, ["apply", "--local", "--no-cache", "--auto-approve", "--force", "plan2.json"])
    assert r.exit_code == 0, r.output


def test_seed_problems_are_reported_where_and_nothing_is_written(tmp_path):
    from resend_iac.config import ConfigError

    app = create_app(rate_limit=0)
    bad = [{"name": "A", "segment": "nope"}, {"name": "B", "segment": "newsletter", "status": "scheduled"}]
    with pytest.raises(ConfigError) as err:
        seed_app(app, [write(tmp_path, {**BASE, "broadcasts": bad})])
    text = str(err.value)
    assert "team.yaml:" in text and "no segment named 'nope'" in text and "give its scheduled_at" in text
    assert app.store.read("SELECT count(*) FROM contacts") == [(0,)]  # checked before any write


# -- helpers ------------------------------------------------------------------------------


def test_placeholders():
    b = {
        "html": "<p>{{{company|Acme}}} {{{ plan_tier }}} {{{contact.city|x}}} {{{FIRST_NAME|there}}}</p>",
        "text": "{{{company|Acme}}} {{{Company}}} {{ company }} {{{company|a\nb}}}",
        "subject": "{{{EMAIL}}}",
    }
    assert placeholders(b) == [
        ("company", "{{{company|Acme}}}"),
        ("plan_tier", "{{{ plan_tier }}}"),
        ("city", "{{{contact.city|x}}}"),
        ("FIRST_NAME", "{{{FIRST_NAME|there}}}"),
        ("Company", "{{{Company}}}"),
        ("company", "{{{company|a b}}}"),  # one line
        ("EMAIL", "{{{EMAIL}}}"),
    ]


def test_times_and_names():
    assert parse_time("2026-12-03 09:00:00.977+00") == parse_time("2026-12-03T09:00:00.977Z")
    assert parse_time("2026-12-03T10:00:00+01:00") == parse_time("2026-12-03T09:00:00Z")
    assert parse_time("soon") is None and parse_time(None) is None
    assert clean_name("News\n## injected\x1b[31m\u202e") == "News ## injected [31m"
    assert clean_name("") == "(unnamed)" and len(clean_name("x" * 500)) == 120


def test_going_out_statuses_and_unreadable_times_count_as_soon():
    from resend_iac.engine.plan import Change, Plan
    from resend_iac.model import Contact, Segment, State

    live = State(segments={"s": Segment("s", id="seg")})
    live.contacts = {"a@x.com": Contact("a@x.com", segments={"s"})}
    plan = Plan(changes=[Change("delete", "membership", "a@x.com", parent="s")])
    t = touches(plan, live)
    items = [
        {"id": "1", "name": "Q", "status": "queued", "segment_id": "seg"},
        {"id": "2", "name": "U", "status": "scheduled", "scheduled_at": "whenever", "segment_id": "seg"},
        {
            "id": "3",
            "name": "L",
            "status": "scheduled",
            "scheduled_at": "2099-01-01T00:00:00Z",
            "segment_id": "seg",
        },
        {"id": "4", "name": "D", "status": "draft", "segment_id": "seg"},
        {"id": "5", "name": "S", "status": "sent", "segment_id": "seg"},
    ]
    out = findings(items, t, live, now=parse_time("2026-12-02T00:00:00Z"), hours=24)
    assert [(f["broadcast"]["name"], f["message"]) for f in out] == [
        ("Q", "removes 1 of 1 members of `s`, which 'Q' is going out to now"),
        ("U", "removes 1 of 1 members of `s`, which 'U' is scheduled to at an unknown time"),
    ]
