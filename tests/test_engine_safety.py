"""Safety thresholds, fingerprints and saved plan files (pure, no I/O beyond tmp_path)."""

from __future__ import annotations

import json

import pytest

from resend_iac.engine import (
    Change,
    Plan,
    PlanFileError,
    SafetyError,
    check_safety,
    fingerprint,
    load_plan,
    save_plan,
)
from resend_iac.engine.planfile import write_atomic
from resend_iac.model import UNSET, Contact, Policy, Segment, State


def plan_with(changes, live_counts, policy=None):
    return Plan(changes=changes, live_counts=live_counts, policy=policy or {})


def deletes(n, kind="contact"):
    return [Change("delete", kind, f"c{i}@x.com") for i in range(n)]


def test_deletes_over_the_fraction_of_a_big_collection_are_refused():
    plan = plan_with(deletes(4), {"contact": 10})
    with pytest.raises(SafetyError) as e:
        check_safety(plan, Policy())
    assert "deletes 4 of 10 live contacts" in str(e.value) and "--force" in str(e.value)
    assert check_safety(plan, Policy(), force=True)  # reasons returned, no raise
    assert check_safety(plan_with(deletes(3), {"contact": 10}), Policy()) == []  # 30% is not more than 30%


def test_small_collections_are_exempt_and_min_objects_is_configurable():
    assert check_safety(plan_with(deletes(9), {"contact": 9}), Policy()) == []
    with pytest.raises(SafetyError):
        check_safety(plan_with(deletes(3), {"contact": 5}), Policy(threshold_min_objects=5))


def test_updates_count_distinct_contacts_including_subscriptions_and_removals():
    changes = [
        Change("update", "contact", "a"),
        Change("update", "subscription", "a"),
        Change("delete", "membership", "b", parent="s"),
        Change("create", "membership", "c", parent="s"),
        Change("create", "membership", "d", parent="s"),
    ]
    assert check_safety(plan_with(changes, {"contact": 10}), Policy(max_update_fraction=0.2)) == []
    with pytest.raises(SafetyError, match="updates 2 of 10 live contacts"):
        check_safety(plan_with(changes, {"contact": 10}), Policy(max_update_fraction=0.1))


def test_each_collection_is_checked_and_replacements_count_as_deletes():
    changes = [Change("replace", "property", f"p{i}") for i in range(4)]
    with pytest.raises(SafetyError, match="10 live properties"):
        check_safety(plan_with(changes, {"property": 10, "contact": 100}), Policy())


def test_policy_defaults_to_the_one_recorded_in_the_plan():
    plan = plan_with(deletes(4), {"contact": 10}, policy={"max_delete_fraction": 0.5})
    assert check_safety(plan) == []
    plan.policy = {}
    with pytest.raises(SafetyError):
        check_safety(plan)


def test_fingerprint_is_stable_and_sensitive():
    def st(**kw):
        s = State()
        s.segments["s"] = Segment("s", id=kw.get("sid", "1"))
        s.add_contact(Contact("a@x.com", "A", None, False, {"n": kw.get("n", 5)}, {"s"}, {}, id="c"))
        return s

    assert fingerprint(st()) == fingerprint(st())
    assert fingerprint(st(n=6)) != fingerprint(st())
    assert fingerprint(st(sid="2")) != fingerprint(st())  # recreated under the same name
    unread = st()
    unread.contacts["a@x.com"].properties = UNSET
    assert fingerprint(unread) != fingerprint(st())


def test_save_and_load_plan_round_trip(tmp_path):
    plan = Plan(
        changes=[Change("create", "segment", "s", None, {"name": "s"})],
        fingerprint="sha256:x",
        live_counts={"segment": 0},
        warnings=["w"],
        policy={"prune_contacts": True},
        scope={"property_emails": ["a@x.com"], "topic_emails": []},
    )
    path = tmp_path / "sub" / "plan.json"
    save_plan(plan, path)
    assert load_plan(path).to_dict() == plan.to_dict()
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temp file left


def test_bad_plan_files_say_where_and_what_to_do(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(PlanFileError, match=r"bad.json:2:3: not a plan file"):
        load_plan(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format_version": 99, "changes": []}))
    with pytest.raises(PlanFileError, match="format_version 99"):
        load_plan(other)
    with pytest.raises(PlanFileError, match="cannot read"):
        load_plan(tmp_path / "missing.json")


def test_atomic_write_leaves_the_old_file_when_it_fails(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("old")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        write_atomic(path, Boom())  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
