"""``resend-iac plan``: show what apply would change."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from resend_iac.cli import main
from resend_iac.cli.common import (
    Command,
    Exit,
    consent_options,
    echo,
    err,
    load_files,
    make_client,
    make_consent,
    make_refresh,
    open_ledger,
    outside_option,
    plan_with_status,
    refresh_options,
    render,
    safety_note,
    save_ledger,
    target_options,
)
from resend_iac.cli.target import LOCAL_DB_ENV, live_endpoint, local_db_path
from resend_iac.engine import Plan, save_plan
from resend_iac.engine.binding import Ledger, api_target, default_ttl, local_target, parse_duration


def _target(local: bool, api_key: str | None, api_url: str | None, paths) -> dict[str, str]:
    """What a saved plan records of its target (engine/binding.py): the local team's id, or
    the API's URL and a salted HMAC of the key."""
    if local:
        ledger = Ledger.local(local_db_path(paths))
        try:
            return local_target(ledger.team())
        finally:
            ledger.close()
    return api_target(*live_endpoint(api_key, api_url))


@main.command("plan", cls=Command)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format (markdown: for PR comments).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also save the full (never redacted) plan to this file, for `apply --plan`.",
)
@click.option(
    "--expires-in",
    metavar="DURATION",
    default=None,
    help="How long the saved plan (--out) may be applied, e.g. 30m, 12h, 3d "
    "(default: $RESEND_IAC_PLAN_EXPIRES_IN or 3d). apply refuses it after that, and after one use.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 1: error, 2: changes present.")
@click.option("--redact", is_flag=True, help="Mask emails and names (for public PRs).")
@consent_options
@outside_option
@refresh_options
@target_options
def plan_command(
    paths,
    fmt,
    out,
    expires_in,
    detailed_exitcode,
    redact,
    allow_resubscribe,
    prune_unsubscribed,
    ledger_file,
    refresh_mode,
    refresh_budget,
    cache_file,
    no_cache,
    local,
    api_key,
    api_url,
):
    """Show what apply would change for the files in PATH... (YAML files or directories)."""
    try:
        ttl = parse_duration(expires_in) if expires_in else default_ttl()
    except ValueError as e:
        raise Exit(1, f"error: --expires-in: {e}") from None
    desired = load_files(paths)
    client = make_client(local, api_key, api_url, paths)
    refresh = make_refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache)
    ledger = open_ledger(paths, ledger_file, local)
    consent = make_consent(allow_resubscribe, prune_unsubscribed, ledger)

    async def run() -> Plan:
        async with client:
            plan, _ = await plan_with_status(client, desired, False, refresh, consent)
            return plan

    plan = asyncio.run(run())
    save_ledger(ledger)
    if out and local and not os.environ.get(LOCAL_DB_ENV):  # so `apply --local PLAN` finds the same team
        plan.local_db = os.path.relpath(local_db_path(paths), os.path.abspath(os.path.dirname(out) or "."))
    if out:
        plan.target = _target(local, api_key, api_url, paths)
        try:
            save_plan(plan, out, ttl)
        except OSError as e:
            raise Exit(1, f"error: cannot write the plan to {out}: {e.strerror or e}") from None
    echo(render(plan, fmt, redact))
    safety_note(plan)
    if out:
        where = " --local" if local else ""
        err(f"Saved the plan to {out}; apply it with `resend-iac apply{where} --plan {out}`.")
    if detailed_exitcode and not plan.empty:
        sys.exit(2)
