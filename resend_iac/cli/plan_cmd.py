"""Commands ``plan``, ``apply`` and ``export``: thin over the engine, the client and render."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from resend_iac.cli import main
from resend_iac.cli.target import LOCAL_DB_ENV, TargetError, client_for, local_db_path, local_note
from resend_iac.client import EVERY_CONTACT, ResendAPIError, read_live
from resend_iac.engine import (
    ApplyError,
    DiffError,
    Plan,
    PlanFileError,
    SafetyError,
    apply,
    check_safety,
    fingerprint,
    load_plan,
    save_plan,
)
from resend_iac.engine.cache import CacheError, RefreshCache, cache_path
from resend_iac.engine.live import DEFAULT_BUDGET, Refresh, forget_written, plan_live, remember
from resend_iac.engine.planfile import write_atomic
from resend_iac.model import State

PROGRESS_MIN = 20  # show a progress bar for applies of at least this many changes


class Exit(Exception):
    def __init__(self, code: int, message: str = ""):
        self.code = code
        self.message = message


class _Command(click.Command):
    """Usage errors exit 1, not click's 2: with --detailed-exitcode, 2 means "changes present"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            e.exit_code = 1
            raise


def _err(message: str) -> None:
    from resend_iac.secrets import mask_secrets

    click.echo(mask_secrets(message), err=True)


def target_options(fn: Callable) -> Callable:
    @click.option(
        "--local",
        is_flag=True,
        help="Use the embedded local emulator (state in <config root>/.resend-iac/local.db, "
        "or $RESEND_IAC_LOCAL_DB); no account needed.",
    )
    @click.option("--api-key", metavar="KEY", default=None, help="API key (default: $RESEND_API_KEY).")
    @click.option(
        "--api-url",
        metavar="URL",
        default=None,
        help="API base URL (default: $RESEND_API_URL or https://api.resend.com).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exit as e:
            if e.message:
                _err(e.message)
            sys.exit(e.code)
        except (TargetError, CacheError) as e:
            _err(f"error: {e}")
            sys.exit(1)
        except ResendAPIError as e:
            _err(_api_error(e))
            sys.exit(1)
        except DiffError as e:
            _err(f"error: {e}")
            sys.exit(1)
        except ExceptionGroup as eg:  # from the reader's task group: report the first cause
            leaves = _leaves(eg)
            api = [e for e in leaves if isinstance(e, ResendAPIError)]
            if api:
                _err(_api_error(api[0]))
                sys.exit(1)
            raise
        except KeyboardInterrupt:
            _err("Interrupted. Nothing is lost: run plan again to see what is left, apply to finish.")
            sys.exit(130)

    return wrapper


def cache_options(fn: Callable) -> Callable:
    @click.option(
        "--cache",
        "cache_file",
        metavar="PATH",
        default=None,
        help="The refresh cache (default: $RESEND_IAC_CACHE or .resend-iac/cache.sqlite). "
        "Holds keyed digests, no emails, names or values.",
    )
    @click.option("--no-cache", is_flag=True, help="Neither read nor write the refresh cache.")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        return fn(*args, **kw)

    return wrapper


def refresh_options(fn: Callable) -> Callable:
    @click.option(
        "--refresh",
        "refresh_mode",
        type=click.Choice(["auto", "full"]),
        default="auto",
        show_default=True,
        envvar="RESEND_IAC_REFRESH",
        help="auto: read contact details only where the refresh cache cannot prove them "
        "unchanged (plus --refresh-budget in rotation); full: read every managed contact "
        "($RESEND_IAC_REFRESH).",
    )
    @click.option(
        "--refresh-budget",
        type=click.IntRange(min=0),
        default=DEFAULT_BUDGET,
        show_default=True,
        envvar="RESEND_IAC_REFRESH_BUDGET",
        metavar="N",
        help="Also re-verify the N least recently verified contacts (1-2 requests each; "
        "$RESEND_IAC_REFRESH_BUDGET).",
    )
    @cache_options
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        return fn(*args, **kw)

    return wrapper


def _cache(local: bool, api_key: str | None, cache_file: str | None, no_cache: bool) -> RefreshCache | None:
    """The refresh cache, keyed from the API key (``--local``: the emulator's fixed key)."""
    import os

    path = cache_path(cache_file, no_cache)
    if path is None:
        return None
    secret = "re_local" if local else (api_key or os.environ.get("RESEND_API_KEY", ""))
    try:
        return RefreshCache.open(path, secret)
    except CacheError as e:
        raise Exit(1, f"error: {e}") from None


def _refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache) -> Refresh:
    return Refresh(refresh_mode, refresh_budget, _cache(local, api_key, cache_file, no_cache))


def _api_error(e: ResendAPIError) -> str:
    where = f" ({e.method} {e.path})" if e.method else ""
    if e.status == 0:
        return (
            f"error: no answer from the API{where}: {e.message}. Check RESEND_API_URL "
            "(or --api-url) and the network; plan again once it answers."
        )
    return f"error: the API answered {e.status} {e.name}: {e.message}{where}"


def _leaves(eg: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in eg.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


def _load(paths: tuple[str, ...]) -> State:
    from resend_iac.config import ConfigError, load

    try:
        return load(paths)
    except ConfigError as e:
        lines = [str(d) for d in getattr(e, "diagnostics", [])] or [str(e)]
        raise Exit(1, "\n".join(lines) + f"\n{len(lines)} error(s); nothing was read or written.") from None


def _client(
    local: bool, api_key: str | None, api_url: str | None, paths: Any = (), db: Any = None, note: bool = True
):
    """The target's client; with --local, the state beside the config (or ``db``), said on stderr."""
    if local:
        db = Path(db) if db else local_db_path(paths)
        if note or not db.exists():
            _err(local_note(db))
        return client_for(True, db_path=db)
    return client_for(local, api_key, api_url)


async def _with_status(read: Callable[[Any], Any]) -> Any:
    """Run ``read(progress)`` with a status line on stderr while it reads (on a terminal only)."""
    if not sys.stderr.isatty():
        return await read(None)
    from rich.console import Console

    with Console(stderr=True).status("reading the live team") as status:

        def progress(done: int, total: int | None, what: str) -> None:
            if not what.startswith("warning"):
                status.update(f"reading the live team: {what} {done}{'/' + str(total) if total else ''}")

        return await read(progress)


async def _read(client: Any, property_emails, topic_emails) -> State:
    """read_live, with a status line on stderr while it reads (on a terminal only)."""
    return await _with_status(
        lambda progress: read_live(
            client, property_emails=property_emails, topic_emails=topic_emails, progress=progress
        )
    )


async def _plan(
    client: Any, desired: State, allow_resubscribe: bool, refresh: Refresh | None = None
) -> tuple[Plan, State]:
    return await _with_status(
        lambda progress: plan_live(
            client, desired, allow_resubscribe=allow_resubscribe, refresh=refresh, progress=progress
        )
    )


def _render(plan: Plan, fmt: str, redact: bool) -> str:
    from resend_iac.render import render_json, render_markdown, render_text, use_color

    if fmt == "json":
        return render_json(plan, redact=redact)
    if fmt == "markdown":
        return render_markdown(plan, redact=redact)
    return render_text(plan, color=use_color(sys.stdout), redact=redact)


def _safety_note(plan: Plan) -> None:
    reasons = check_safety(plan, force=True)
    if reasons:
        _err("Note: apply will refuse this plan without --force: " + "; ".join(reasons) + ".")


# ------------------------------------------------------------------------------- plan


@main.command("plan", cls=_Command)
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
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 1: error, 2: changes present.")
@click.option("--redact", is_flag=True, help="Mask emails and names (for public PRs).")
@click.option("--allow-resubscribe", is_flag=True, help="Plan resubscriptions of unsubscribed contacts.")
@refresh_options
@target_options
def plan_command(
    paths,
    fmt,
    out,
    detailed_exitcode,
    redact,
    allow_resubscribe,
    refresh_mode,
    refresh_budget,
    cache_file,
    no_cache,
    local,
    api_key,
    api_url,
):
    """Show what apply would change for the files in PATH... (YAML files or directories)."""
    desired = _load(paths)
    client = _client(local, api_key, api_url, paths)
    refresh = _refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache)

    async def run() -> Plan:
        async with client:
            plan, _ = await _plan(client, desired, allow_resubscribe, refresh)
            return plan

    plan = asyncio.run(run())
    if out and local and not os.environ.get(LOCAL_DB_ENV):  # so `apply --local PLAN` finds the same team
        plan.local_db = os.path.relpath(local_db_path(paths), os.path.abspath(os.path.dirname(out) or "."))
    if out:
        try:
            save_plan(plan, out)
        except OSError as e:
            raise Exit(1, f"error: cannot write the plan to {out}: {e.strerror or e}") from None
    _echo(_render(plan, fmt, redact))
    _safety_note(plan)
    if out:
        where = " --local" if local else ""
        _err(f"Saved the plan to {out}; apply it with `resend-iac apply{where} --plan {out}`.")
    if detailed_exitcode and not plan.empty:
        sys.exit(2)


def _echo(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


# ------------------------------------------------------------------------------ apply


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

    def __call__(self, done: int, total: int, what: str) -> None:
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


@main.command("apply", cls=_Command)
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
@click.option("--allow-resubscribe", is_flag=True, help="Resubscribe contacts that are unsubscribed live.")
@refresh_options
@target_options
def apply_command(
    paths,
    plan_file,
    auto_approve,
    force,
    allow_resubscribe,
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
        if allow_resubscribe:
            _err("note: --allow-resubscribe has no effect with --plan (the plan was made without or with it)")
        desired = None
    else:
        desired = _load(paths)
        saved = None
    db = None
    if saved is not None and saved.local_db and not os.environ.get(LOCAL_DB_ENV):
        db = Path(os.path.dirname(os.path.abspath(plan_file))) / saved.local_db  # made with --local
    client = _client(local, api_key, api_url, paths, db=db)
    refresh = _refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache)

    async def run() -> None:
        async with client:
            if saved is not None and saved.empty:
                # Nothing to write, so nothing a changed team could make wrong: no re-read.
                for w in saved.warnings:
                    _err(f"warning: {w}")
                click.echo(saved.summary())
                return
            if saved is not None:
                # Re-read what the plan was computed from: every list, and the property values
                # and subscriptions of the contacts it changes (older plan files: everything).
                verify = saved.verify if saved.verify.get("fingerprint") else None
                scope = verify or saved.scope or {}
                live = await _read(client, scope.get("property_emails", ()), scope.get("topic_emails", ()))
                if verify:
                    was = verify["fingerprint"]
                    now = fingerprint(live, verify["property_emails"], verify["topic_emails"])
                else:
                    was, now = saved.fingerprint, fingerprint(live)
                if now != was:
                    raise Exit(
                        1,
                        (
                            f"error: the live team changed since the plan was made (plan fingerprint "
                            f"{was[:19]}, now {now[:19]}). Nothing was applied. "
                            "Run plan again and review the new plan."
                        ),
                    )
                plan = saved
            else:
                plan, live = await _plan(client, desired, allow_resubscribe, refresh)
            if plan.empty:
                for w in plan.warnings:
                    _err(f"warning: {w}")
                click.echo(plan.summary())
                return
            try:
                check_safety(plan, force=force)
            except SafetyError as e:
                _echo(_render(plan, "text", False))
                raise Exit(1, f"error: {e}") from None
            _echo(_render(plan, "text", False))
            if not auto_approve:
                if not stdin_is_tty():
                    raise Exit(
                        1,
                        "error: stdin is not a terminal, so apply cannot ask for confirmation; "
                        "review the plan and pass --auto-approve to apply it. Nothing was applied.",
                    )
                if not click.confirm("Apply these changes?", default=False):
                    raise Exit(1, "Apply cancelled. Nothing was applied.")
            forget_written(plan, refresh.cache)  # before the writes: an unknown outcome leaves no entry
            with _Bar(len(plan.changes)) as bar:
                try:
                    result = await apply(
                        plan,
                        client,
                        progress=bar,
                        live=live,
                        allow_resubscribe=bool(allow_resubscribe and saved is None),
                    )
                except ApplyError as e:
                    r = e.result
                    raise Exit(
                        1,
                        f"error: {e}\nDone before the failure: {r.created} created, "
                        f"{r.updated} updated, {r.deleted} deleted.",
                    ) from None
            for w in result.warnings:
                _err(f"warning: {w}")
            click.echo(result.summary())

    asyncio.run(run())


# ----------------------------------------------------------------------------- export


async def read_everything(client: Any, cache: RefreshCache | None = None) -> State:
    """The whole live team, property values and subscriptions included (for export).
    Writes the refresh cache's entries of what it read, if given one."""
    # Two small lists first, so the contacts are listed once and read in detail only for
    # what the team has (no property values to read without properties, nor subscriptions
    # without topics).
    has_properties = bool(await client.list_properties())
    has_topics = bool(await client.list_topics())
    live = await read_live(
        client,
        property_emails=EVERY_CONTACT if has_properties else (),
        topic_emails=EVERY_CONTACT if has_topics else (),
    )
    if cache is not None:
        remember(cache, live)
    for c in live.contacts.values():
        if isinstance(c.properties, dict):
            c.properties = {k: v for k, v in c.properties.items() if v is not None}
        else:
            c.properties = {}
        if not isinstance(c.topics, dict):
            c.topics = {}
        c.id = c.created_at = None
    for collection in (live.properties, live.segments, live.topics):
        for obj in collection.values():
            obj.id = obj.created_at = None
    return live


@main.command("export", cls=_Command)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file (default: standard output).",
)
@cache_options
@target_options
def export_command(out, cache_file, no_cache, local, api_key, api_url):
    """Write the live team (properties, segments, topics, contacts with their memberships and
    subscriptions) in the YAML format. Planning the export against the same team shows no changes."""
    from resend_iac.config import dump_yaml

    client = _client(local, api_key, api_url, note=False)
    cache = _cache(local, api_key, cache_file, no_cache)

    async def run() -> State:
        async with client:
            return await read_everything(client, cache)

    state = asyncio.run(run())
    text = dump_yaml(state)
    if out:
        try:
            write_atomic(out, text)
        except OSError as e:
            raise Exit(1, f"error: cannot write {out}: {e.strerror or e}") from None
        _err(f"Exported {state.summary()} to {out}.")
    else:
        _echo(text)
