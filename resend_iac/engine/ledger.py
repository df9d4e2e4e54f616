"""The consent ledger: the choices resend-iac has seen, remembered across a deletion.

Deleting a contact (or a topic) in Resend deletes the record of its unsubscribe (or of every
opt-out from that topic); whether the real API remembers it is unknown (docs/emulator.md).
So whenever resend-iac reads a contact that is unsubscribed, or explicitly opted out of a
topic, it records a keyed digest of the normalised email (and of the email and topic name)
with the date it first saw it. When the files later declare a contact that does not exist
live, or a topic that does not exist live, the diff creates it with the recorded choices, and
says so. A choice resend-iac never saw (made and deleted between two runs, or of a topic it
never read) cannot be remembered.

It also holds the ids of contacts declared ``protect: true`` (as digests), which prune
refuses to delete until the files declare them ``protect: false``.

The file (JSON, sorted, one entry a line, so a commit shows what changed) lives beside the
declared files: ``consent-ledger.json`` in the config root, or ``$RESEND_IAC_LEDGER``. It is
meant to be committed: the GitOps apply job commits it after each apply, so it survives the
loss of any cache. No email, name or id is stored: entries are HMAC-SHA256 digests keyed with
``HMAC(salt, $RESEND_IAC_LEDGER_KEY)`` (16 bytes kept). With the key set (a CI secret, which
unlike the API key need never rotate) nobody holding the file can test a guessed email against
it; without it the digests are only salted, and a holder of the file who guesses an email can
check it. A file written with one key is refused under another (never silently forgotten).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from resend_iac.engine.consent import UNSUB
from resend_iac.errors import ResendIACError
from resend_iac.model import State, normalize_email

FILE_NAME = "consent-ledger.json"
PATH_ENV = "RESEND_IAC_LEDGER"
KEY_ENV = "RESEND_IAC_LEDGER_KEY"
MARKER = "resend_iac_consent_ledger"
VERSION = 1
DIGEST = 16
MAX_BYTES = 256 * 1024 * 1024
_SECTIONS = ("unsubscribes", "opted_out", "protected")


class LedgerError(ResendIACError):
    pass


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


class Ledger:
    """In memory; ``open(path)`` reads a file and ``save()`` writes it back (when changed)."""

    def __init__(self, secret: str = "", *, path: str | Path | None = None, salt: bytes | None = None):
        self.path = Path(path) if path is not None else None
        self.salt = salt if salt is not None else secrets.token_bytes(16)
        self.keyed = bool(secret)
        self._key = hmac.new(
            self.salt, b"resend-iac consent ledger v1\0" + secret.encode(), "sha256"
        ).digest()
        self._mac = hmac.new(self._key, digestmod="sha256")  # copied per digest (cheaper than new)
        self.entries: dict[str, dict[str, str]] = {s: {} for s in _SECTIONS}
        self.changed = False

    # -- file -------------------------------------------------------------------------------

    @property
    def check(self) -> str:
        return self._digest(b"check")

    @classmethod
    def open(cls, path: str | Path, secret: str | None = None) -> "Ledger":
        """The ledger at ``path`` (a new, empty one when the file does not exist yet)."""
        secret = os.environ.get(KEY_ENV, "") if secret is None else secret
        path = Path(path)
        if not path.exists():
            return cls(secret, path=path)
        try:
            if path.stat().st_size > MAX_BYTES:
                raise LedgerError(f"{path}: larger than {MAX_BYTES} bytes; is it the consent ledger?")
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise LedgerError(
                f"{path}: cannot read the consent ledger ({e}). Restore it from git; nothing was "
                "read or written."
            ) from None
        if not isinstance(data, dict) or data.get(MARKER) != VERSION:
            raise LedgerError(f"{path}: not a consent ledger of this version ({MARKER}: {VERSION})")
        try:
            ledger = cls(secret, path=path, salt=bytes.fromhex(data["salt"]))
        except (KeyError, TypeError, ValueError):
            raise LedgerError(f"{path}: the consent ledger has no valid salt") from None
        if data.get("check") != ledger.check:
            raise LedgerError(
                f"{path}: the consent ledger was written with another ${KEY_ENV} (or with one and "
                "read without it). Set the key it was written with; nothing was read or written."
            )
        for section in _SECTIONS:
            got = data.get(section) or {}
            if not isinstance(got, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in got.items()
            ):
                raise LedgerError(f"{path}: the consent ledger's {section!r} is not a map of strings")
            ledger.entries[section] = dict(got)
        return ledger

    def to_text(self) -> str:
        data: dict[str, Any] = {
            MARKER: VERSION,
            "about": "resend-iac consent ledger: keyed digests of choices seen (no emails). Commit it.",
            "salt": self.salt.hex(),
            "check": self.check,
            "keyed": self.keyed,
            **{s: dict(sorted(self.entries[s].items())) for s in _SECTIONS},
        }
        return json.dumps(data, indent=1, sort_keys=False) + "\n"

    def save(self) -> bool:
        """Write the file when something changed (atomically); True when written."""
        if self.path is None or not self.changed:
            return False
        from resend_iac.engine.planfile import write_atomic

        write_atomic(self.path, self.to_text())
        self.changed = False
        return True

    # -- digests ----------------------------------------------------------------------------

    def _digest(self, data: bytes) -> str:
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()[:DIGEST].hex()

    def contact_key(self, email: str) -> str:
        return self._digest(b"c\0" + normalize_email(email).encode())

    def topic_key(self, email: str, topic: str) -> str:
        return self._digest(b"t\0" + normalize_email(email).encode() + b"\0" + topic.encode())

    def id_key(self, contact_id: str) -> str:
        return self._digest(b"i\0" + contact_id.encode())

    def _put(self, section: str, key: str) -> None:
        if key not in self.entries[section]:
            self.entries[section][key] = today()
            self.changed = True

    def _drop(self, section: str, key: str) -> None:
        if self.entries[section].pop(key, None) is not None:
            self.changed = True

    # -- what the engine asks ----------------------------------------------------------------

    def unsubscribed_since(self, email: str) -> str | None:
        """The date the contact was first seen unsubscribed, or None."""
        return self.entries["unsubscribes"].get(self.contact_key(email))

    def opted_out(self, email: str, topic: str) -> str | None:
        return self.entries["opted_out"].get(self.topic_key(email, topic))

    def is_protected(self, contact_id: str | None) -> bool:
        return bool(contact_id) and self.id_key(contact_id or "") in self.entries["protected"]

    @property
    def empty(self) -> bool:
        return not any(self.entries.values())

    # -- what the engine tells it --------------------------------------------------------------

    def saw_contact(self, email: str, out_of_all: Any, topics: Any = None) -> None:
        """A contact as read live: its unsubscribe and explicit opt-outs are recorded; a choice
        seen reversed (subscribed again, opted in) is dropped: the last thing seen wins."""
        if out_of_all is True:
            self._put("unsubscribes", self.contact_key(email))
        elif out_of_all is False and self.entries["unsubscribes"]:
            self._drop("unsubscribes", self.contact_key(email))
        if isinstance(topics, dict):
            for name, sub in topics.items():
                if sub == "opt_out":
                    self._put("opted_out", self.topic_key(email, name))
                elif sub == "opt_in" and self.entries["opted_out"]:
                    self._drop("opted_out", self.topic_key(email, name))

    def observe(self, live: State) -> None:
        """Record what a read of the live team shows (see ``saw_contact``)."""
        field = UNSUB.name
        for c in live.contacts.values():
            out = getattr(c, field)
            if out is True or self.entries["unsubscribes"] or isinstance(c.topics, dict):
                self.saw_contact(c.email, out, c.topics)

    def protect(self, contact_id: str, on: bool) -> None:
        if on:
            self._put("protected", self.id_key(contact_id))
        else:
            self._drop("protected", self.id_key(contact_id))

    def observe_protect(self, desired: State, live: State) -> None:
        """Declared ``protect: true`` contacts that exist live: their ids are remembered;
        ``protect: false``: forgotten."""
        for key, want in desired.contacts.items():
            if want.protect is None:
                continue
            have = live.contacts.get(key)
            if have is not None and have.id:
                self.protect(have.id, bool(want.protect))


def ledger_path(paths: Any = (), explicit: str | None = None) -> Path:
    """``explicit``, else ``$RESEND_IAC_LEDGER``, else consent-ledger.json in the config root
    (the directory given, or the file's; the common directory of several; else the current
    directory)."""
    chosen = explicit or os.environ.get(PATH_ENV)
    if chosen:
        return Path(os.path.abspath(Path(chosen).expanduser()))
    roots = [p if p.is_dir() else p.parent for p in (Path(os.path.abspath(x)) for x in paths)]
    root = Path(os.path.commonpath(roots)) if roots else Path.cwd()
    return root / FILE_NAME
