"""What ``plan``, ``apply`` and ``export`` share: the target/cache/refresh options, error
handling (every expected error -> a message on stderr and exit 1, never a traceback), loading
the files, opening the client and the refresh cache, a status line while reading, rendering."""

from __future__ import annotations

import contextvars
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from resend_iac.cli.target import TargetError, client_for, local_db_path, local_note
from resend_iac.client import ResendAPIError, read_live
from resend_iac.client.http import EndpointError, InvalidResponseError
from resend_iac.engine import DiffError, Plan, check_safety
from resend_iac.engine.binding import BindingError
from resend_iac.engine.cache import CacheError, RefreshCache, cache_path
from resend_iac.engine.live import DEFAULT_BUDGET, Refresh, plan_live
from resend_iac.model import State
from resend_iac.text import excerpt


class Exit(Exception):
    """Stop the command: ``message`` (if any) on stderr, exit ``code``."""

    def __init__(self, code: int, message: str = ""):
        self.code = code
        self.message = message


class Command(click.Command):
    """Usage errors exit 1, not click's 2: with --detailed-exitcode, 2 means "changes present"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, allow_resubscribe_args(args))
        except click.UsageError as e:
            e.exit_code = 1  # type: ignore[misc]  # an instance attribute of click's exceptions
            raise


ALLOW_FLAG = "--allow-resubscribe"


def allow_resubscribe_args(args: list[str]) -> list[str]:
    """``--allow-resubscribe`` takes an optional EMAIL: followed by an email (a word with "@"
    that is no existing path) it names that contact; alone it keeps its old meaning (every
    contact the files say), passed on as ``--allow-resubscribe=*``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg == ALLOW_FLAG:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if nxt is not None and "@" in nxt and not nxt.startswith("-") and not os.path.exists(nxt):
                out.append(f"{ALLOW_FLAG}={nxt}")
                i += 2
                continue
            out.append(f"{ALLOW_FLAG}=*")
        else:
            out.append(arg)
        i += 1
    return out


def consent_options(fn: Callable) -> Callable:
    """--allow-resubscribe [EMAIL], --prune-unsubscribed, --ledger (engine/consent.py)."""

    @click.option(
        ALLOW_FLAG,
        "allow_resubscribe",
        multiple=True,
        metavar="[EMAIL]",
        help="Resubscribe (or opt in again) this contact, unsubscribed or opted out live, as the "
        "files say; repeatable. Alone: every such contact the files name.",
    )
    @click.option(
        "--prune-unsubscribed",
        is_flag=True,
        help="Let prune delete contacts that are unsubscribed or opted out of a topic "
        "(their choice stays in the consent ledger).",
    )
    @click.option(
        "--ledger",
        "ledger_file",
        metavar="PATH",
        default=None,
        help="The consent ledger (default: $RESEND_IAC_LEDGER or consent-ledger.json beside the "
        "declared files). Commit it.",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        return fn(*args, **kw)

    return wrapper


def open_ledger(paths: Any, ledger_file: str | None, local: bool = False) -> Any:
    """The consent ledger: --ledger, $RESEND_IAC_LEDGER, else beside the declared files; with
    --local, beside the local team's state (.resend-iac/, not committed): a made-up local
    team's choices never reach the ledger of the real one."""
    from resend_iac.engine.ledger import FILE_NAME, PATH_ENV, Ledger, LedgerError, ledger_path

    try:
        if local and not ledger_file and not os.environ.get(PATH_ENV):
            return Ledger.open(local_db_path(paths).parent / FILE_NAME)
        return Ledger.open(ledger_path(paths, ledger_file))
    except LedgerError as e:
        raise Exit(1, f"error: {e}") from None


def save_ledger(ledger: Any) -> None:
    if ledger is None:
        return
    try:
        ledger.save()  # quietly: stdout and stderr stay as they were (plan --format json)
    except OSError as e:
        raise Exit(1, f"error: cannot write the consent ledger {ledger.path}: {e.strerror or e}") from None


def make_consent(allow: tuple[str, ...], prune_unsubscribed: bool, ledger: Any) -> Any:
    from resend_iac.engine.consent import Allow, Consent

    return Consent(Allow.of(list(allow)), prune_unsubscribed, ledger)


def err(message: str) -> None:
    """A line on stderr, API-key-looking strings masked."""
    from resend_iac.secrets import mask_secrets

    lines = mask_secrets(message).split("\n")  # a line that does not print gets escaped (names, emails)
    click.echo(
        "\n".join(ln if ln.isprintable() else excerpt(ln, None, quote=False) for ln in lines), err=True
    )


def echo(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


KEY_FILE_MAX = 4096  # bytes read of --api-key-file (a key is about 40)
_NO_KEY_ON_COMMAND_LINE = (
    "--api-key is not accepted: a key on the command line is visible to other users in the "
    "process list and stays in the shell history. Set RESEND_API_KEY, or pass --api-key-file "
    "PATH (a file holding the key; - reads it from standard input)"
)


def _refuse_api_key(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        raise click.UsageError(_NO_KEY_ON_COMMAND_LINE, ctx)


def read_key_file(path: str) -> str:
    """The API key held by the file ``path`` (``-``: standard input): its one line, white space
    around it dropped. ``TargetError`` (never quoting the content) otherwise."""
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(KEY_FILE_MAX + 1) if hasattr(sys.stdin, "buffer") else b""
        else:
            with open(path, "rb") as f:
                raw = f.read(KEY_FILE_MAX + 1)
    except OSError as e:
        raise TargetError(f"--api-key-file {name}: cannot read it: {e.strerror or e}") from None
    if len(raw) > KEY_FILE_MAX:
        raise TargetError(f"--api-key-file {name}: longer than {KEY_FILE_MAX} bytes, so not an API key")
    try:
        key = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise TargetError(f"--api-key-file {name}: not UTF-8 text, so not an API key") from None
    if not key:
        raise TargetError(f"--api-key-file {name}: empty; it must hold the API key")
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        raise TargetError(
            f"--api-key-file {name}: holds more than one word or line; it must hold the API key alone"
        )
    return key


def resolve_key(api_key_file: str | None, local: bool) -> str | None:
    """The API key of --api-key-file, or None (then ``$RESEND_API_KEY``)."""
    if api_key_file is None:
        return None
    if local:
        raise TargetError("--api-key-file is for the live API: --local needs no key")
    return read_key_file(api_key_file)


def target_options(fn: Callable) -> Callable:
    """--local/--api-key-file/--api-url, and the commands' error handling. The command gets
    ``api_key``: the key read from --api-key-file, or None (``$RESEND_API_KEY``)."""

    @click.option(
        "--local",
        is_flag=True,
        help="Use the embedded local emulator (state in <config root>/.resend-iac/local.db, "
        "or $RESEND_IAC_LOCAL_DB); no account needed.",
    )
    @click.option(
        "--api-key-file",
        metavar="PATH",
        default=None,
        help="Read the API key from this file (- : standard input) instead of $RESEND_API_KEY. "
        "Never put the key itself on the command line.",
    )
    @click.option("--api-key", hidden=True, expose_value=False, callback=_refuse_api_key)
    @click.option(
        "--api-url",
        metavar="URL",
        default=None,
        help="API base URL (default: $RESEND_API_URL or https://api.resend.com).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        # read_live raises the first ResendAPIError of its task group, never the group itself.
        try:
            kw["api_key"] = resolve_key(kw.pop("api_key_file", None), kw.get("local", False))
            return fn(*args, **kw)
        except Exit as e:
            if e.message:
                err(e.message)
            sys.exit(e.code)
        except (TargetError, CacheError, DiffError, BindingError) as e:
            err(f"error: {e}")
            sys.exit(1)
        except ResendAPIError as e:
            err(api_error_message(e))
            sys.exit(1)
        except KeyboardInterrupt:
            err("Interrupted. Nothing is lost: run plan again to see what is left, apply to finish.")
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


def open_cache(
    local: bool, api_key: str | None, cache_file: str | None, no_cache: bool
) -> RefreshCache | None:
    """The refresh cache, keyed from the API key (``--local``: the emulator's fixed key)."""
    path = cache_path(cache_file, no_cache)
    if path is None:
        return None
    secret = "re_local" if local else (api_key or os.environ.get("RESEND_API_KEY", ""))
    try:
        cache = RefreshCache.open(path, secret)
    except CacheError as e:
        raise Exit(1, f"error: {e}") from None
    for warning in cache.warnings:
        err(f"warning: {warning}")
    return cache


def make_refresh(local, api_key, refresh_mode, refresh_budget, cache_file, no_cache) -> Refresh:
    return Refresh(refresh_mode, refresh_budget, open_cache(local, api_key, cache_file, no_cache))


def api_error_message(e: ResendAPIError) -> str:
    where = f" ({e.method} {e.path})" if e.method else ""
    if isinstance(e, EndpointError):  # not an endpoint to trust with the key, or a redirect
        return f"error: {e.message}{where}" + (". Nothing was sent." if e.status == 0 else ".")
    if isinstance(e, InvalidResponseError):
        return (
            f"error: the API's answer to {e.method} {e.path} is not what that route returns: "
            f"{e.message}. Is RESEND_API_URL (or --api-url) the Resend API?"
        )
    if e.status == 0:
        return (
            f"error: no answer from the API{where}: {e.message}. Check RESEND_API_URL "
            "(or --api-url) and the network; plan again once it answers."
        )
    return f"error: the API answered {e.status} {e.name}: {e.message}{where}"


# --allow-outside of the running command (``outside_option``), for ``load_files``.
ALLOW_OUTSIDE: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("allow_outside", default=())

ALLOW_OUTSIDE_HELP = (
    "Also read declared files under PATH when they lie outside the current directory or are "
    "reached through a symlink (local use only: never in CI, where a pull request writes the "
    "files). Repeatable."
)


def outside_option(fn: Callable) -> Callable:
    """``--allow-outside PATH`` (repeatable): the user's explicit opt-in to a config root that
    is a symlink or lies outside the working directory; ``load_files`` honours it."""

    @click.option("--allow-outside", "allow_outside", multiple=True, metavar="PATH", help=ALLOW_OUTSIDE_HELP)
    @functools.wraps(fn)
    def wrapper(*args: Any, allow_outside: tuple[str, ...] = (), **kw: Any) -> Any:
        token = ALLOW_OUTSIDE.set(tuple(allow_outside))
        try:
            return fn(*args, **kw)
        finally:
            ALLOW_OUTSIDE.reset(token)

    return wrapper


def load_files(paths: tuple[str, ...]) -> State:
    from resend_iac.config import ConfigError, load

    try:
        return load(paths, allow_outside=ALLOW_OUTSIDE.get())
    except ConfigError as e:
        lines = [str(d) for d in getattr(e, "diagnostics", [])] or [str(e)]
        raise Exit(1, "\n".join(lines) + f"\n{len(lines)} error(s); nothing was read or written.") from None


def make_client(
    local: bool, api_key: str | None, api_url: str | None, paths: Any = (), db: Any = None, note: bool = True
):
    """The target's client; with --local, the state beside the config (or ``db``), said on stderr."""
    if local:
        db = Path(db) if db else local_db_path(paths)
        if note or not db.exists():
            err(local_note(db))
        return client_for(True, db_path=db)
    return client_for(local, api_key, api_url)


async def with_status(read: Callable[[Any], Any]) -> Any:
    """Run ``read(progress)`` with a status line on stderr while it reads (on a terminal only)."""
    if not sys.stderr.isatty():
        return await read(None)
    from rich.console import Console

    with Console(stderr=True).status("reading the live team") as status:

        def progress(done: int, total: int | None, what: str) -> None:
            if not what.startswith("warning"):
                status.update(f"reading the live team: {what} {done}{'/' + str(total) if total else ''}")

        return await read(progress)


async def read_with_status(client: Any, property_emails, topic_emails) -> State:
    """read_live, with a status line on stderr while it reads (on a terminal only)."""
    return await with_status(
        lambda progress: read_live(
            client, property_emails=property_emails, topic_emails=topic_emails, progress=progress
        )
    )


async def plan_with_status(
    client: Any, desired: State, allow_resubscribe: Any, refresh: Refresh | None = None, consent: Any = None
) -> tuple[Plan, State]:
    """plan_live, with a status line on stderr while it reads (on a terminal only)."""
    return await with_status(
        lambda progress: plan_live(
            client,
            desired,
            allow_resubscribe=allow_resubscribe,
            refresh=refresh,
            progress=progress,
            consent=consent,
        )
    )


def render(plan: Plan, fmt: str, redact: bool) -> str:
    from resend_iac.render import render_json, render_markdown, render_text, use_color

    if fmt == "json":
        return render_json(plan, redact=redact)
    if fmt == "markdown":
        return render_markdown(plan, redact=redact)
    return render_text(plan, color=use_color(sys.stdout), redact=redact)


def safety_note(plan: Plan) -> None:
    reasons = check_safety(plan, force=True)
    if reasons:
        err("Note: apply will refuse this plan without --force: " + "; ".join(reasons) + ".")
