"""A saved plan is bound to the team it was made against, used once, and expires.

``plan --out`` records in the plan (all covered by its digest and HMAC):

- ``target``: where it was planned. ``{"local": TEAM}`` for ``--local`` (``TEAM``: a random id
  kept in that local state file); ``{"api_url": URL, "key_salt": S, "key_hmac": H}`` for the
  API, ``H`` = HMAC-SHA256 keyed by the random salt ``S`` over the API key: it tells whether
  apply holds the same key, and never the key itself (nor a plain hash of it).
- ``nonce``: 128 random bits naming this plan.
- ``created_at`` / ``expires_at``: UTC times; the plan lives ``DEFAULT_TTL`` (3 days) unless
  ``plan --expires-in`` (or ``$RESEND_IAC_PLAN_EXPIRES_IN``) says otherwise.

``apply --plan`` refuses, before the first request, a plan without these fields, one made for
another target (local vs API, another URL, another key) and an expired one. Just before its
first write it claims the nonce in a ledger kept where it keeps state: the refresh cache for the
API, the local state file for ``--local``. A nonce already there is refused: a plan applied
once cannot be applied again, even after the team returns to the planned-from state (ABA).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from resend_iac.errors import ResendIACError

DEFAULT_TTL = timedelta(days=3)
TTL_ENV = "RESEND_IAC_PLAN_EXPIRES_IN"
_LABEL = b"resend-iac plan target v1\0"
_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NEW_PLAN = "make a new one with `resend-iac plan ... --out PLAN`"


class BindingError(ResendIACError):
    """A saved plan may not be applied here or now (another target, expired, used already)."""


def now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``12h``, ``3d`` -> a positive timedelta; ValueError otherwise."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{str(text)[:40]!r} is not a duration such as 30m, 12h or 3d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def default_ttl() -> timedelta:
    value = os.environ.get(TTL_ENV)
    if not value:
        return DEFAULT_TTL
    try:
        return parse_duration(value)
    except ValueError as e:
        raise BindingError(f"{TTL_ENV}: {e}") from None


# ----------------------------------------------------------------------------- targets


def api_target(api_url: str, api_key: str, salt: str | None = None) -> dict[str, str]:
    """The record of an API target: its URL and a salted HMAC of the key (never the key)."""
    salt = salt or secrets.token_hex(16)
    digest = hmac.new(bytes.fromhex(salt), _LABEL + api_key.encode("utf-8"), hashlib.sha256).hexdigest()
    return {"api_url": api_url.rstrip("/"), "key_salt": salt, "key_hmac": digest}


def local_target(team: str) -> dict[str, str]:
    return {"local": team}


def _describe(target: dict[str, Any]) -> str:
    if "local" in target:
        return "the local team of --local"
    return f"the API at {target.get('api_url')}"


def target_problem(
    recorded: dict[str, Any] | None, local_team: str | None, api: tuple[str, str] | None
) -> str | None:
    """Why a plan made for ``recorded`` may not be applied to this target (``local_team``: the
    local state's id with --local; else ``api`` = (URL, key)); None when it is the same."""
    if not recorded:
        return f"the plan records no target (made by an older resend-iac, or by hand); {_NEW_PLAN}"
    if "local" in recorded:
        if local_team is None:
            return (
                "the plan was made with --local (the embedded emulator), and this apply targets "
                f"the API at {api[0].rstrip('/') if api else '(unknown)'}; apply it with `apply --local`, "
                "or plan against the API"
            )
        if not hmac.compare_digest(str(recorded["local"]), local_team):
            return (
                "the plan was made against another local team (another local state file, or one "
                f"deleted and started over); {_NEW_PLAN}"
            )
        return None
    if local_team is not None or api is None:
        return (
            f"the plan was made against {_describe(recorded)}, and this apply uses --local; "
            "apply it without --local, with the same RESEND_API_URL and key"
        )
    url, key = api
    if recorded.get("api_url") != url.rstrip("/"):
        return (
            f"the plan was made against the API at {recorded.get('api_url')}, and this apply targets "
            f"{url.rstrip('/')}; set RESEND_API_URL as when the plan was made, or {_NEW_PLAN}"
        )
    expected = api_target(url, key, str(recorded.get("key_salt")))["key_hmac"]
    if not hmac.compare_digest(str(recorded.get("key_hmac")), expected):
        return (
            "the plan was made with another API key (another team, or a key rotated since); "
            f"apply it with the key it was made with, or {_NEW_PLAN}"
        )
    return None


def stamp(data: dict[str, Any], ttl: timedelta | None = None) -> None:
    """Give a plan (as ``Plan`` fields) its nonce and times, where it has none."""
    if not data.get("nonce"):
        data["nonce"] = secrets.token_hex(16)
    if not data.get("expires_at"):
        made = now()
        data["created_at"] = _iso(made)
        data["expires_at"] = _iso(made + (ttl or default_ttl()))


def check_binding(plan: Any, local_team: str | None, api: tuple[str, str] | None) -> None:
    """Before the first request: the plan has its nonce, is not expired and is for this target."""
    if not plan.nonce or not plan.expires_at:
        raise BindingError(
            f"the plan has no nonce or expiry (made by an older resend-iac, or by hand); {_NEW_PLAN}. "
            "Nothing was applied."
        )
    try:
        expires = _parse_iso(plan.expires_at)
    except ValueError:
        raise BindingError(
            f"the plan's expires_at is not a time; {_NEW_PLAN}. Nothing was applied."
        ) from None
    if now() >= expires:
        raise BindingError(
            f"the plan expired at {plan.expires_at} (made {plan.created_at or 'earlier'}); {_NEW_PLAN}. "
            "Nothing was applied."
        )
    problem = target_problem(plan.target, local_team, api)
    if problem:
        raise BindingError(f"{problem}. Nothing was applied.")


# ----------------------------------------------------------------------------- the ledger

_TABLE = "resend_iac_applied_plans"
_META = "resend_iac_meta"


class Ledger:
    """The nonces of the plans applied, in an SQLite database resend-iac keeps state in (the
    refresh cache, or the local state file); rows are kept until their plan has expired."""

    def __init__(self, conn: sqlite3.Connection, where: str) -> None:
        self.conn = conn
        self.where = where
        with conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (nonce TEXT PRIMARY KEY, applied_at REAL NOT NULL, "
                "expires_at REAL NOT NULL)"
            )

    @classmethod
    def local(cls, db_path: str | Path) -> "Ledger":
        """The ledger of a --local state file (created if missing, like the emulator does)."""
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db_path), timeout=30)
        return cls(conn, str(db_path))

    def team(self) -> str:
        """A random id of this local team, made once and kept in the state file."""
        with self.conn:
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {_META} (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            self.conn.execute(f"INSERT OR IGNORE INTO {_META} VALUES ('team', ?)", (secrets.token_hex(16),))
            return str(self.conn.execute(f"SELECT v FROM {_META} WHERE k = 'team'").fetchone()[0])

    def used(self, nonce: str) -> float | None:
        """When the plan ``nonce`` was applied (UNIX time), or None."""
        row = self.conn.execute(f"SELECT applied_at FROM {_TABLE} WHERE nonce = ?", (nonce,)).fetchone()
        return float(row[0]) if row else None

    def claim(self, nonce: str, expires_at: str) -> None:
        """Record ``nonce`` as applied now; ``BindingError`` if it already was (atomic: two
        applies of one plan at once cannot both claim it)."""
        at = time.time()
        try:
            with self.conn:
                self.conn.execute(f"DELETE FROM {_TABLE} WHERE expires_at < ?", (at - 86400,))
                self.conn.execute(
                    f"INSERT INTO {_TABLE} VALUES (?, ?, ?)", (nonce, at, _parse_iso(expires_at).timestamp())
                )
        except sqlite3.IntegrityError:
            raise BindingError(used_message(self.used(nonce))) from None
        except sqlite3.Error as e:
            raise BindingError(
                f"{self.where}: cannot record that the plan is applied ({e}); nothing was applied"
            ) from None

    def check(self, nonce: str) -> None:
        """``BindingError`` if the plan ``nonce`` was applied already."""
        when = self.used(nonce)
        if when is not None:
            raise BindingError(used_message(when))

    def close(self) -> None:
        self.conn.close()


def used_message(when: float | None) -> str:
    at = _iso(datetime.fromtimestamp(when, UTC)) if when else "earlier"
    return (
        f"this plan was applied already (at {at}); a saved plan is applied once. {_NEW_PLAN[0].upper()}"
        f"{_NEW_PLAN[1:]} to see what is left. Nothing was applied."
    )
