"""``resend-iac apply``: make the team match the files, or carry out a saved plan."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

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
    refresh_options,
    render,
    save_ledger,
    target_options,
    with_status,
)
from resend_iac.cli.target import LOCAL_DB_ENV, live_endpoint, local_db_path
from resend_iac.engine import ApplyError, Plan, PlanFileError, SafetyError, load_plan
from resend_iac.engine.binding import Ledger, check_binding
from resend_iac.engine.consent import Consent
from resend_iac.engine.run import StalePlanError, converge

PROGRESS_MIN = 20  # show a progress bar for applies of at least this many changes


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (ValueError, AttributeError):
        return False


class _Bar:
    """A rich progress bar on stderr, only on a terminal and for long applies."""

    def __init__(self, total: int):
        self.progress = None
        if total >= PROGRESS_MIN and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]applying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> "_Bar":
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress:
            self.progress.stop()

    def __call__(self, done: int, total: int | None, what: str) -> None:
        if self.progress:
            self.progress.update(self.task, completed=done, total=total, description=what)


def _is_saved_plan(path: str) -> bool:
    """A file written by `plan --out` (JSON with the plan's ``format_version`` marker near its
    start), not declared YAML. Reads at most 4 KiB; anything else is left to the config loader."""
    if not os.path.isfile(path) or path.lower().endswith((".yaml", ".yml", ".csv")):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and b'"format_version"' in head


@main.command("apply", cls=Command)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Apply a plan saved with `plan --out`; refused if the live team changed since.",
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option("--force", is_flag=True, help="Apply even if the plan exceeds the policy's safety thresholds.")
@consent_options
@outside_option
@refresh_options
@target_options
def apply_command(
    paths,
    plan_file,
    auto_approve,
    force,
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
    """Make the team match the files in PATH... (or carry out a saved plan: `apply PLAN` or
    `apply --plan PLAN`)."""
    if len(paths) == 1 and not plan_file and _is_saved_plan(paths[0]):
        paths, plan_file = (), paths[0]  # `apply PLAN`, as Terraform users type it
    if bool(paths) == bool(plan_file):
        raise Exit(
            1, "error: give the files to apply (apply PATH...) or a saved plan (apply --plan PLAN), not both"
        )
    if plan_file:
        try:
            saved = load_plan(plan_file)
        except PlanFileError as e:
            raise Exit(1, f"error: {e}") from None
        if allow_resubscribe or prune_unsubscribed:
            err(
                "note: --allow-resubscribe and --prune-unsubscribed have no effect with --plan "
                "(the plan was made without or with them)"
            )
        desired = None
    else:
        desired = load_files(paths)
        saved = None
    db = None
    if saved is not None and saved.local_db and not os.environ.get(LOCAL_DB_ENV):
        db = Path(os.path.dirname(os.path.abspath(plan_file))) / saved.local_db  # made with --local
    client = make_client(local, api_key, api_url, paths, db=db)
    refresh = make_refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache)
    ledger = _bound(saved, local, Path(db) if db else local_db_path(paths), api_key, api_url, refresh)
    consent_ledger = open_ledger(paths, ledger_file, local)
    if saved is not None:
        consent = Consent.from_plan(saved.consent, consent_ledger)
    else:
        consent = make_consent(allow_resubscribe, prune_unsubscribed, consent_ledger)

    def review(plan: Plan) -> bool:
        echo(render(plan, "text", False))
        if not auto_approve and not stdin_is_tty():
            raise Exit(
                1,
                "error: stdin is not a terminal, so apply cannot ask for confirmation; "
                "review the plan and pass --auto-approve to apply it. Nothing was applied.",
            )
        if not auto_approve and not click.confirm("Apply these changes?", default=False):
            raise Exit(1, "Apply cancelled. Nothing was applied.")
        if ledger is not None:  # a saved plan is used once: claimed before the first write
            ledger.claim(plan.nonce, plan.expires_at)
        return True

    async def run() -> None:
        async with client:
            try:
                outcome = await converge(
                    client,
                    desired,
                    saved=saved,
                    consent=consent,
                    refresh=refresh,
                    force=force,
                    review=review,
                    reading=with_status,
                    progress=lambda plan: _Bar(len(plan.changes)),
                )
            except StalePlanError as e:
                raise Exit(1, f"error: {e}") from None
            except SafetyError as e:
                echo(render(e.plan, "text", False))
                raise Exit(1, f"error: {e}") from None
            except ApplyError as e:
                r = e.result
                raise Exit(
                    1,
                    f"error: {e}\nDone before the failure: {r.created} created, "
                    f"{r.updated} updated, {r.deleted} deleted.",
                ) from None
            result = outcome.result
            if result is None:  # an empty plan: nothing was written
                for w in outcome.plan.warnings:
                    err(f"warning: {w}")
                click.echo(outcome.plan.summary())
                return
            for w in result.warnings:
                err(f"warning: {w}")
            click.echo(result.summary())

    try:
        asyncio.run(run())
    finally:
        save_ledger(consent_ledger)  # what was seen, even when the apply failed half-way
        if ledger is not None and local:
            ledger.close()


def _bound(saved, local: bool, local_db: Path, api_key, api_url, refresh) -> Ledger | None:
    """For a saved plan, before the first request: refuse it unless it is for this target,
    unexpired and not applied yet (engine/binding.py). The ledger to claim its nonce in: the
    local state's with --local, the refresh cache's otherwise."""
    if saved is None:
        return None
    if local:
        ledger = Ledger.local(local_db)
        check_binding(saved, ledger.team(), None)
    else:
        check_binding(saved, None, live_endpoint(api_key, api_url))
        if refresh.cache is None:
            raise Exit(
                1,
                "error: apply --plan records the plan's use in the refresh cache, so that it is "
                "applied once; --no-cache leaves nowhere to record it. Drop --no-cache (or pass "
                "--cache PATH). Nothing was applied.",
            )
        ledger = Ledger(refresh.cache.conn, refresh.cache.path)
    ledger.check(saved.nonce)
    return ledger
