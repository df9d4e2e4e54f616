"""Safety checks run before apply: mass deletes/updates need ``--force``.

Per collection (contacts, properties, segments, topics), when it has at least
``policy.threshold_min_objects`` live objects:
- deletes (a replace counts: it destroys the live object) may not exceed
  ``policy.max_delete_fraction`` of the live objects;
- updates may not exceed ``policy.max_update_fraction``. For contacts an "updated contact" is
  one with a field update, a subscription change or a removal from a segment (adding existing
  contacts to a segment does not count: it destroys nothing).

Also refused: what ``plan.broadcasts`` marks ``refuse`` (engine/broadcasts.py: a pending
broadcast's segment or topic deleted or replaced, a property a scheduled one prints deleted).

Whatever the collection's size: a property replaced (type changed) or deleted while any contact
holds a value the files do not write again (or whose values were not read) needs ``--force``;
the plan line counts them (``Change.loses``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from resend_iac.engine.broadcasts import refusals as broadcast_refusals
from resend_iac.engine.plan import Plan
from resend_iac.errors import ResendIACError
from resend_iac.model import Policy

COLLECTIONS = ("contact", "property", "segment", "topic")
_PLURAL = {"contact": "contacts", "property": "properties", "segment": "segments", "topic": "topics"}


class SafetyError(ResendIACError):
    """The plan exceeds a safety threshold. ``reasons`` lists each one; ``plan`` is the plan
    refused (set by ``engine.run.converge``)."""

    plan: Any = None

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__(
            "Refusing to apply: "
            + "; ".join(reasons)
            + ". Review the plan, then pass --force to apply it anyway"
            " (or raise the fraction in the policy)."
        )


def policy_from_dict(data: dict[str, Any] | None) -> Policy:
    names = {f.name for f in dataclasses.fields(Policy)}
    return Policy(**{k: v for k, v in (data or {}).items() if k in names})


def counts_for_safety(plan: Plan) -> dict[str, tuple[int, int]]:
    """(deletes, updates) per collection."""
    deletes = {k: 0 for k in COLLECTIONS}
    updated: dict[str, set[str]] = {k: set() for k in COLLECTIONS}
    for c in plan.changes:
        if c.kind in COLLECTIONS:
            if c.action in ("delete", "replace"):
                deletes[c.kind] += 1
            elif c.action == "update":
                updated[c.kind].add(c.key)
        elif c.kind == "subscription" or (c.kind == "membership" and c.action == "delete"):
            updated["contact"].add(c.key)
    return {k: (deletes[k], len(updated[k])) for k in COLLECTIONS}


def check_safety(plan: Plan, policy: Policy | None = None, *, force: bool = False) -> list[str]:
    """Raise SafetyError when the plan exceeds a threshold (unless ``force``).

    Returns the reasons it would have refused (empty when safe), so callers can warn.
    ``policy`` defaults to the one recorded in the plan."""
    if policy is None:
        policy = policy_from_dict(plan.policy)
    reasons: list[str] = []
    for kind, (deletes, updates) in counts_for_safety(plan).items():
        live = plan.live_counts.get(kind, 0)
        if live < policy.threshold_min_objects or live == 0:
            continue
        name = _PLURAL[kind]
        if deletes > policy.max_delete_fraction * live:
            reasons.append(
                f"the plan deletes {deletes} of {live} live {name} ({deletes / live:.0%}), more than "
                f"max_delete_fraction {policy.max_delete_fraction:.0%}"
            )
        if updates > policy.max_update_fraction * live:
            reasons.append(
                f"the plan updates {updates} of {live} live {name} ({updates / live:.0%}), more than "
                f"max_update_fraction {policy.max_update_fraction:.0%}"
            )
    reasons += broadcast_refusals(plan)
    for c in plan.changes:
        loses = c.loses or {}
        if c.kind == "property" and (loses.get("values") or loses.get("unread")):
            lost = loses.get("values", 0)
            unread = f" (and {loses['unread']} not read may)" if loses.get("unread") else ""
            verb = "replaces" if c.action == "replace" else "deletes"
            reasons.append(
                f"the plan {verb} property {c.key!r}: {lost} contact(s) lose their value{unread}, "
                "values the files do not write again"
            )
    if reasons and not force:
        raise SafetyError(reasons)
    return reasons
