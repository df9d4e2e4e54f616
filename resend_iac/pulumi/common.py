"""What the Pulumi providers share: the client of the provider process, and the handling
of the inputs the engine sends (unknowns in a preview, numbers as floats)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pulumi.dynamic import CheckFailure, DiffResult
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

PROVIDER_KEY = "__provider"


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


@contextmanager
def _client() -> Iterator[Any]:
    """The synchronous client for the environment's key, URL and pace.

    One per provider process (the process ``pulumi up`` starts for dynamic resources, which
    runs up to ``--parallel`` operations at once): every call shares its rate limiter, so
    many resources together still keep to the team's limit. It lives in this process's
    memory only; nothing about it is pickled with a provider."""
    _require_key()
    from resend_iac.client import SyncResendClient

    env = os.environ
    ident = (
        hashlib.sha256(env["RESEND_API_KEY"].encode()).hexdigest(),
        env.get("RESEND_API_URL", ""),
        env.get("RESEND_IAC_RATE_LIMIT", ""),
    )
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(ident)
        if client is None:
            client = _CLIENTS[ident] = SyncResendClient.from_env(**_client_kwargs())
    yield client


def _require_key() -> None:
    if not os.environ.get("RESEND_API_KEY"):
        raise RuntimeError(
            "RESEND_API_KEY is not set: export the team's API key in the environment of "
            "`pulumi up` (it is read when the provider runs and never stored in the state)"
        )


def _client_kwargs() -> dict[str, Any]:
    """``RESEND_IAC_RATE_LIMIT`` paces the client as for the CLI (requests/s; 0 = off);
    otherwise Resend's default 5 req/s, adapting to the rate-limit headers."""
    from resend_iac.client.limiter import rate_limit_from_env

    try:
        return rate_limit_from_env()
    except ValueError as e:
        raise RuntimeError(str(e)) from None


def _unknown(value: Any) -> bool:
    """True if a value (or anything in it) is not known yet (a preview). The SDK's server
    gives Check and Diff an ``Unknown`` object for the engine's unknown sentinel."""
    if isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN):
        return True
    if isinstance(value, dict):
        return any(_unknown(k) or _unknown(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_unknown(v) for v in value)
    return False


def _num(value: Any) -> Any:
    """Protobuf carries numbers as floats: give integral ones back as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _plain(props: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The declared fields of ``props`` (no ``__provider``, no ``None``)."""
    return {k: props[k] for k in fields if props.get(k) is not None}


def _failures(issues: list[tuple[tuple[Any, ...], str, bool]]) -> list[CheckFailure]:
    """One CheckFailure per issue of the config checks (``resend_iac.config.checks``: the
    messages ``check_*`` and ``resend-iac validate`` give), on the input it is about."""
    return [CheckFailure(str(path[0]) if path else "", message) for path, message, _ in issues]


def _changed(olds: dict[str, Any], news: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if olds.get(f) != news.get(f)]


def _diff(
    olds: dict[str, Any],
    news: dict[str, Any],
    fields: tuple[str, ...],
    immutable: tuple[str, ...],
    *,
    delete_before_replace: bool,
) -> DiffResult:
    changed = _changed(olds, news, fields)
    replaces = [f for f in changed if f in immutable]
    if any(_unknown(news.get(f)) for f in fields):
        # Not known until the resources it depends on exist: assume it changes.
        return DiffResult(
            changes=True,
            replaces=replaces or None,
            delete_before_replace=delete_before_replace if replaces else None,
        )
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        delete_before_replace=delete_before_replace if replaces else None,
    )
