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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resend_iac.client import ResendClient
from resend_iac.client.limiter import rate_limit_from_env
from resend_iac.errors import ResendIACError
from resend_iac.local import LOCAL_DB, LOCAL_URL, client_for_app, local_app, seed_app

__all__ = [
    "LOCAL_DB",
    "LOCAL_DB_ENV",
    "LOCAL_URL",
    "NO_TARGET",
    "TargetError",
    "client_for",
    "client_for_app",
    "live_endpoint",
    "local_app",
    "local_db_path",
    "local_note",
    "seed_app",
]

LOCAL_DB_ENV = "RESEND_IAC_LOCAL_DB"  # overrides where --local keeps its state

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
    if "rate_limit" not in kw:
        try:
            kw.update(rate_limit_from_env())
        except ValueError as e:
            raise TargetError(str(e)) from None
    return ResendClient.from_env(api_key=api_key, base_url=base_url, **kw)


def live_endpoint(api_key: str | None, api_url: str | None) -> tuple[str, str]:
    """The (base URL, key) a live command talks to: the options, else ``RESEND_API_URL`` /
    ``RESEND_API_KEY`` (what ``ResendClient.from_env`` picks)."""
    from resend_iac.client.http import DEFAULT_BASE_URL

    url = api_url or os.environ.get("RESEND_API_URL") or DEFAULT_BASE_URL
    return url.rstrip("/"), api_key or os.environ.get("RESEND_API_KEY", "")
