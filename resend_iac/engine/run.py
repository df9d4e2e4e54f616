"""The one way to change a team: plan (or verify a saved plan), check safety, apply.

``converge`` is what ``resend-iac apply``, the Pulumi ``ContactList``, ``emulator --seed``
and the pytest plugin's seeding all call, so none of them can skip a step:

1. a saved plan is verified against the live team (its fingerprint, re-read with its own
   scope: ``StalePlanError`` when the team changed since) and the broadcasts it affects are
   read again (engine/broadcasts.py); otherwise the files are planned
   against the live team (``plan_live``: the refresh policy, the diff);
2. the caller's ``expect(plan)`` may refuse it (Pulumi: the plan its preview showed);
3. an empty plan ends here (nothing is written);
4. ``check_safety`` (the policy's thresholds; ``force`` lets it pass): ``SafetyError``, which
   carries the plan, so the caller can show what was refused;
5. the caller's ``review(plan)`` may decline it (the CLI's confirmation);
6. the refresh cache forgets what the plan writes, then ``apply`` carries it out.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from resend_iac.client import read_live
from resend_iac.client.reader import Progress
from resend_iac.engine.apply import ApplyResult, apply
from resend_iac.engine.broadcasts import check_broadcasts
from resend_iac.engine.consent import Consent
from resend_iac.engine.fingerprint import fingerprint
from resend_iac.engine.live import Refresh, forget_written, plan_live
from resend_iac.engine.plan import Plan
from resend_iac.engine.ports import Client
from resend_iac.engine.safety import SafetyError, check_safety
from resend_iac.errors import ResendIACError
from resend_iac.model import State

T = TypeVar("T")
# Runs a read, given the progress callback to pass it (the CLI: inside a status line).
Reading = Callable[[Callable[[Progress | None], Awaitable[Any]]], Awaitable[Any]]


class StalePlanError(ResendIACError):
    """The live team changed since a saved plan was made: nothing was applied."""


@dataclass
class Outcome:
    """What ``converge`` did: the plan, the live state it was checked against, and the
    apply's result (``None``: nothing was applied: the plan was empty or not approved)."""

    plan: Plan
    live: State | None
    result: ApplyResult | None = None


async def _plain_read(read: Callable[[Progress | None], Awaitable[T]]) -> T:
    return await read(None)


async def verify_saved(client: Client, saved: Plan, progress: Progress | None = None) -> State:
    """Re-read what ``saved`` was computed from (every list, and the details of the contacts
    it changes; an older plan file: what its scope names) and compare fingerprints."""
    verify = saved.verify if saved.verify.get("fingerprint") else None
    scope = verify or saved.scope or {}
    live = await read_live(
        client,
        property_emails=scope.get("property_emails", ()),
        topic_emails=scope.get("topic_emails", ()),
        progress=progress,
    )
    if verify:
        was = verify["fingerprint"]
        now = fingerprint(live, verify["property_emails"], verify["topic_emails"])
    else:
        was, now = saved.fingerprint, fingerprint(live)
    if now != was:
        raise StalePlanError(
            f"the live team changed since the plan was made (plan fingerprint {was[:19]}, now "
            f"{now[:19]}). Nothing was applied. Run plan again and review the new plan."
        )
    return live


async def converge(
    client: Client,
    desired: State | None = None,
    *,
    saved: Plan | None = None,
    allow_resubscribe: Any = False,
    consent: Consent | None = None,
    refresh: Refresh | None = None,
    force: bool = False,
    expect: Callable[[Plan], None] | None = None,
    review: Callable[[Plan], bool | Awaitable[bool]] | None = None,
    reading: Reading | None = None,
    progress: Callable[[Plan], AbstractContextManager[Progress | None]] | None = None,
) -> Outcome:
    """Plan ``desired`` (or verify ``saved``), check safety, apply (see the module docstring).

    ``allow_resubscribe`` plans resubscriptions the files ask for (never with a saved plan:
    it was made with or without it). ``progress(plan)`` gives the apply's progress callback
    (a context manager: the CLI's bar). Raises ``StalePlanError``, ``SafetyError`` (with
    ``.plan``), ``ApplyError``, and the API's errors."""
    if (desired is None) == (saved is None):
        raise ValueError("converge needs the declared state or a saved plan, not both")
    reading = reading or _plain_read
    if saved is not None:  # the allowance the saved plan was made with; the ledger given
        consent = Consent.from_plan(saved.consent, consent.ledger if consent is not None else None)
    else:
        consent = Consent.of(consent, allow_resubscribe)
    live: State | None
    if saved is not None:
        if saved.empty:  # nothing to write, so nothing a changed team could make wrong
            return Outcome(saved, None)
        live = await reading(lambda p: verify_saved(client, saved, p))
        if consent.ledger is not None:
            consent.ledger.observe(live)
        plan = saved
        await check_broadcasts(client, plan, live)  # as they are now, not at plan time
    else:
        assert desired is not None
        plan, live = await reading(
            lambda p: plan_live(client, desired, consent=consent, refresh=refresh, progress=p)
        )
    if expect is not None:
        expect(plan)
    if plan.empty:
        return Outcome(plan, live)
    try:
        check_safety(plan, force=force)
    except SafetyError as e:
        e.plan = plan
        raise
    if review is not None:
        approved = review(plan)
        if inspect.isawaitable(approved):
            approved = await approved
        if not approved:
            return Outcome(plan, live)
    forget_written(plan, refresh.cache if refresh is not None else None)
    with progress(plan) if progress is not None else nullcontext() as bar:
        result = await apply(
            plan,
            client,
            progress=bar,
            live=live,
            consent=consent,
        )
    return Outcome(plan, live, result)
