"""The embedded emulator as a target: an app in-process, a client for it, and seeding it
with declared files. Used by ``--local``, ``emulator --seed`` and the pytest plugin
(``resend_iac.testing``), which therefore need nothing of the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from resend_iac.client import ResendClient

LOCAL_DB = ".resend-iac/local.db"
LOCAL_URL = "http://emulator"


def local_app(db_path: str | Path = LOCAL_DB) -> Any:
    """An emulator app keeping its team in ``db_path`` (``":memory:"``: in memory), unpaced."""
    from resend_iac.emulator import create_app

    if str(db_path) != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    return create_app(db_path=str(db_path), rate_limit=0)


def client_for_app(app: Any, api_key: str = "re_local", **kw: Any) -> ResendClient:
    """A client talking to an emulator app in-process (with ``api_key``: one the app accepts)."""
    kw.setdefault("rate_limit", None)
    return ResendClient(api_key, LOCAL_URL, transport=httpx.ASGITransport(app=app), **kw)


def seed_app(app: Any, paths: Sequence[str | Path], api_key: str = "re_local") -> Any:
    """Apply the declared state in ``paths`` to an emulator app (``emulator --seed``, the
    pytest plugin's seeding), with ``api_key`` (one of the app's ``--api-key``s when it has
    any), through ``engine.run.converge``: planned, checked against the files' safety
    thresholds, applied; then create the files' ``broadcasts:`` (emulator-only seed data) in
    its store.

    Raises ``config.ConfigError`` for bad files. Returns the ApplyResult (an empty one when
    the team already matches)."""
    from resend_iac.config import ConfigError, read
    from resend_iac.engine import ApplyResult
    from resend_iac.engine.run import converge

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
            outcome = await converge(client, desired)
            return outcome.result if outcome.result is not None else ApplyResult()

    result = asyncio.run(run())
    if seeds:  # seed data of the emulator only: written to its store directly
        _seed_problems(loaded, seed(app.store, seeds))
    return result


def _seed_problems(loaded: Any, problems: list[tuple[int, str]]) -> None:
    from resend_iac.config import ConfigError, Diagnostic

    if problems:
        raise ConfigError([Diagnostic(loaded.broadcasts[i][1], message) for i, message in problems])
