"""The safety check counts what a plan destroys in every collection, and counts people, not
requests: what a user relies on when a plan would wipe a collection or touch many contacts."""

from __future__ import annotations

import pytest

from resend_iac.engine import Change, Plan, SafetyError, check_safety
from resend_iac.model import Policy


def plan(changes, live_counts, policy=None):
    return Plan(changes=changes, live_counts=live_counts, policy=policy or {})


def refused(p, policy=None):
    with pytest.raises(SafetyError) as e:
        check_safety(p, policy or Policy())
    return e.value.reasons


@pytest.mark.parametrize("kind, plural", [("segment", "segments"), ("topic", "topics")])
def test_a_wiped_collection_is_refused_even_when_a_small_one_comes_first(kind, plural):
    # 3 live contacts (under the 10 the check needs) and every live segment (or topic) deleted.
    changes = [Change("delete", "contact", "a@x.com")] + [
        Change("delete", kind, f"{kind}-{i}") for i in range(20)
    ]
    live = {"contact": 3, "property": 2, "segment": 0, "topic": 0}
    live[kind] = 20
    reasons = refused(plan(changes, live))
    assert reasons == [f"the plan deletes 20 of 20 live {plural} (100%), more than max_delete_fraction 30%"]


def test_every_collection_over_its_fraction_is_named():
    changes = (
        [Change("delete", "contact", f"c{i}@x.com") for i in range(5)]
        + [Change("replace", "property", f"p{i}") for i in range(5)]
        + [Change("delete", "segment", f"s{i}") for i in range(5)]
        + [Change("delete", "topic", f"t{i}") for i in range(5)]
    )
    live = {"contact": 10, "property": 10, "segment": 10, "topic": 10}
    reasons = refused(plan(changes, live))
    assert [r.split(" (")[0] for r in reasons] == [
        "the plan deletes 5 of 10 live contacts",
        "the plan deletes 5 of 10 live properties",
        "the plan deletes 5 of 10 live segments",
        "the plan deletes 5 of 10 live topics",
    ]


@pytest.mark.parametrize("kind, plural", [("property", "properties"), ("topic", "topics")])
def test_updates_of_properties_and_topics_count_against_their_fraction(kind, plural):
    changes = [Change("update", kind, f"k{i}") for i in range(4)]
    reasons = refused(plan(changes, {kind: 10}), Policy(max_update_fraction=0.3))
    assert reasons == [f"the plan updates 4 of 10 live {plural} (40%), more than max_update_fraction 30%"]
    assert check_safety(plan(changes[:3], {kind: 10}), Policy(max_update_fraction=0.3)) == []


def test_subscription_changes_count_as_contact_updates():
    changes = [Change("update", "subscription", f"c{i}@x.com") for i in range(3)]
    reasons = refused(plan(changes, {"contact": 10}), Policy(max_update_fraction=0.2))
    assert reasons[0].startswith("the plan updates 3 of 10 live contacts")


def test_removals_from_segments_count_as_contact_updates_and_additions_do_not():
    removals = [Change("delete", "membership", f"c{i}@x.com", parent="news") for i in range(3)]
    additions = [Change("create", "membership", f"d{i}@x.com", parent="news") for i in range(9)]
    reasons = refused(plan(removals + additions, {"contact": 10}), Policy(max_update_fraction=0.2))
    assert reasons[0].startswith("the plan updates 3 of 10 live contacts")
    assert check_safety(plan(additions, {"contact": 10}), Policy(max_update_fraction=0.2)) == []


def test_several_changes_of_one_contact_count_once():
    changes = [
        Change("update", "contact", "a@x.com"),
        Change("update", "subscription", "a@x.com"),
        Change("delete", "membership", "a@x.com", parent="news"),
        Change("delete", "membership", "a@x.com", parent="vip"),
    ]
    # one contact of 10 is 10%: not more than 10%
    assert check_safety(plan(changes, {"contact": 10}), Policy(max_update_fraction=0.1)) == []


def test_distinct_contacts_count_apart_whatever_changes_them():
    changes = [
        Change("update", "contact", "a@x.com"),
        Change("update", "subscription", "b@x.com"),
        Change("delete", "membership", "c@x.com", parent="news"),
    ]
    reasons = refused(plan(changes, {"contact": 10}), Policy(max_update_fraction=0.2))
    assert reasons[0].startswith("the plan updates 3 of 10 live contacts")


def test_the_minimum_size_applies_at_its_exact_value():
    one = [Change("delete", "contact", "a@x.com")]
    assert refused(plan(one, {"contact": 1}), Policy(threshold_min_objects=1))
    assert check_safety(plan(one, {"contact": 1}), Policy(threshold_min_objects=2)) == []


def test_a_collection_with_nothing_live_is_never_over_a_fraction():
    # no live count recorded (an empty team): nothing to protect, and no division by zero
    creates = [Change("create", "contact", f"c{i}@x.com") for i in range(5)]
    deletes = [Change("delete", "segment", "s")]
    assert check_safety(plan(creates + deletes, {}), Policy(threshold_min_objects=0)) == []
    assert check_safety(plan(deletes, {"segment": 0}), Policy(threshold_min_objects=0)) == []
