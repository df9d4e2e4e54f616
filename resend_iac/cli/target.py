"""Which team a command talks to: the live API, or the embedded ``--local`` emulator.

- live: ``RESEND_API_KEY`` / ``RESEND_API_URL`` (``--api-key-file`` / ``--api-url`` override
  them; the key is never printed, and never taken from the command line). ``https://`` only, or
  plain ``http://`` to a loopback address (the emulator): see ``client/endpoint.py``. The client
  paces itself at Resend's default 5 requests/s and adapts to the rate-limit headers; ``RESEND_IAC_RATE_LIMIT`` sets another pace (a team with a raised
  limit; ``0`` = no client-side pacing, e.g. for an emulator run with ``--rate-limit 0``).
- ``--local``: the emulator's app in-process (``httpx.ASGITransport``: no port, no server),
  no rate limit, so a newcomer can plan and apply with no account. Its state lives beside the
  declared files (``local_db_path``): ``<config root>/.resend-iac/local.db``, so the same files
  give the same local team from any working directory, and two configs never share one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from resend_iac.client import ResendClient
from resend_iac.errors import ResendIACError

LOCAL_DB = ".resend-iac/local.db"
LOCAL_DB_ENV = "RESEND_IAC_LOCAL_DB"  # overrides where --local keeps its state
LOCAL_URL = "http://emulator"

NO_TARGET = (
    "no target: set RESEND_API_KEY to plan against your Resend team (and RESEND_API_URL "
    "to point at an emulator, e.g. http://127.0.0.1:8025), or pass --local to use the "
    f"embedded local emulator (state in <config root>/{LOCAL_DB}, no account needed)"
)


class TargetError(ResendIACError):
    """No usable target (no key and no --local, a bad RESEND_IAC_RATE_LIMIT)."""


def local_db_path(paths: Sequence[str | Path] = ()) -> Path:
    """Where ``--local`` keeps the team of the declared ``paths``: ``$RESEND_IAC_LOCAL_DB`` if
    set; else ``.resend-iac/local.db`` in the config root (the directory given, or the file's
    directory; the common directory of several); with no paths (``export``), the current
    directory's."""
    env = os.environ.get(LOCAL_DB_ENV)
    if env:
        return Path(os.path.abspath(Path(env).expanduser()))
    roots = [p if p.is_dir() else p.parent for p in (Path(os.path.abspath(x)) for x in paths)]
    root = Path(os.path.commonpath(roots)) if roots else Path.cwd()
    return root / LOCAL_DB


def local_note(db: Path) -> str:
    """What --local says on stderr: where the state lives and how to start over."""
    try:
        shown = os.path.relpath(db)
    except ValueError:  # another drive (Windows)
        shown = str(db)
    if shown.startswith(os.path.join("..", "..", "..")):  # far away: the absolute path reads better
        shown = str(db)
    state = "local team" if db.exists() else "new local team"
    return f"--local: {state} in {shown} (delete that file to start over)"


def local_app(db_path: str | Path = LOCAL_DB) -> Any:
    from resend_iac.emulator import create_app

    if str(db_path) != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    return create_app(db_path=str(db_path), rate_limit=0)


def client_for_app(app: Any, api_key: str = "re_local", **kw: Any) -> ResendClient:
    """A client talking to an emulator app in-process (with ``api_key``: one the app accepts)."""
    kw.setdefault("rate_limit", None)
    return ResendClient(api_key, LOCAL_URL, transport=httpx.ASGITransport(app=app), **kw)


def client_for(
    local: bool,
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    db_path: str | Path = LOCAL_DB,
    **kw: Any,
) -> ResendClient:
    if local:
        return client_for_app(local_app(db_path), **kw)
    if not (api_key or os.environ.get("RESEND_API_KEY")):
        raise TargetError(NO_TARGET)
    rate = os.environ.get("RESEND_IAC_RATE_LIMIT")
    if rate and "rate_limit" not in kw:
        try:
            kw["rate_limit"] = float(rate) or None
        except ValueError:
            raise TargetError(
                f"RESEND_IAC_RATE_LIMIT={rate!r} is not a number of requests per second "
                "(0 turns client-side pacing off)"
            ) from None
    return ResendClient.from_env(api_key=api_key, base_url=base_url, **kw)


def live_endpoint(api_key: str | None, api_url: str | None) -> tuple[str, str]:
    """The (base URL, key) a live command talks to: the options, else ``RESEND_API_URL`` /
    ``RESEND_API_KEY`` (what ``ResendClient.from_env`` picks)."""
    from resend_iac.client.http import DEFAULT_BASE_URL

    url = api_url or os.environ.get("RESEND_API_URL") or DEFAULT_BASE_URL
    return url.rstrip("/"), api_key or os.environ.get("RESEND_API_KEY", "")


def seed_app(app: Any, paths: Sequence[str | Path], api_key: str = "re_local") -> Any:
    """Apply the declared state in ``paths`` to an emulator app (``emulator --seed``), with
    ``api_key`` (one of the app's ``--api-key``s when it has any); then create the files'
    ``broadcasts:`` (emulator-only seed data) in its store.

    Raises ``config.ConfigError`` for bad files. Returns the ApplyResult."""
    from resend_iac.config import ConfigError, read
    from resend_iac.engine import apply
    from resend_iac.engine.live import plan_live

    loaded = read(paths)
    if loaded.state is None:
        raise ConfigError(loaded.diagnostics)
    desired = loaded.state
    seeds = [entry for entry, _ in loaded.broadcasts]
    if seeds:  # checked before anything is written
        from resend_iac.emulator.broadcast_seed import seed

        names = {"segment": set(desired.segments), "topic": set(desired.topics)}
        _seed_problems(loaded, seed(app.store, seeds, declared=names))

    async def run() -> Any:
        async with client_for_app(app, api_key) as client:
            plan, live = await plan_live(client, desired)
            return await apply(plan, client, live=live)

    result = asyncio.run(run())
    if seeds:  # seed data of the emulator only: written to its store directly
        _seed_problems(loaded, seed(app.store, seeds))
    return result


def _seed_problems(loaded: Any, problems: list[tuple[int, str]]) -> None:
    from resend_iac.config import ConfigError, Diagnostic

    if problems:
        raise ConfigError([Diagnostic(loaded.broadcasts[i][1], message) for i, message in problems])
