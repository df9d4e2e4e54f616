"""Subscriptions in the diff, topic by topic: a change to one topic never hides the change to
another, and a subscription the guard keeps never stops the ones after it."""

from __future__ import annotations

from resend_iac.engine import diff
from resend_iac.model import Contact, State, Topic

TOPICS = ("alpha", "beta", "gamma")


def team(subscriptions: dict[str, str], *, live: bool) -> State:
    s = State()
    for name in TOPICS:
        s.topics[name] = Topic(name=name, default_subscription="opt_in", id=f"t-{name}" if live else None)
    s.add_contact(Contact(email="a@x.com", topics=dict(subscriptions), id="c1" if live else None))
    return s


def subscription_changes(plan):
    return [(c.before, c.after) for c in plan.changes if c.kind == "subscription"]


def test_a_later_topic_change_is_planned_after_an_unchanged_earlier_one():
    live = team({"alpha": "opt_in", "beta": "opt_in", "gamma": "opt_in"}, live=True)
    want = team({"alpha": "opt_in", "beta": "opt_in", "gamma": "opt_out"}, live=False)
    assert subscription_changes(diff(want, live)) == [({"gamma": "opt_in"}, {"gamma": "opt_out"})]


def test_every_changed_topic_of_a_contact_is_in_its_one_change():
    live = team({"alpha": "opt_in", "beta": "opt_in", "gamma": "opt_in"}, live=True)
    want = team({"alpha": "opt_out", "beta": "opt_in", "gamma": "opt_out"}, live=False)
    assert subscription_changes(diff(want, live)) == [
        ({"alpha": "opt_in", "gamma": "opt_in"}, {"alpha": "opt_out", "gamma": "opt_out"})
    ]


def test_a_guarded_opt_out_does_not_stop_the_topics_after_it():
    # alpha: opted out live, declared opt_in: kept (consent), with a warning; gamma still changes
    live = team({"alpha": "opt_out", "beta": "opt_in", "gamma": "opt_in"}, live=True)
    want = team({"alpha": "opt_in", "beta": "opt_in", "gamma": "opt_out"}, live=False)
    plan = diff(want, live)
    assert subscription_changes(plan) == [({"gamma": "opt_in"}, {"gamma": "opt_out"})]
    assert len(plan.warnings) == 1 and "'alpha'" in plan.warnings[0]
    allowed = diff(want, live, allow_resubscribe=True)
    assert subscription_changes(allowed) == [
        ({"alpha": "opt_out", "gamma": "opt_in"}, {"alpha": "opt_in", "gamma": "opt_out"})
    ]


def test_a_contact_whose_topics_all_match_gets_no_change():
    subs = {"alpha": "opt_out", "beta": "opt_in", "gamma": "opt_in"}
    assert diff(team(subs, live=False), team(subs, live=True)).empty
