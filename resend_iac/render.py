"""Renderings of a Plan: text (a terminal or a CI log), Markdown (a PR comment), JSON (machines).

Text reads like Terraform's plan: changes grouped by kind, one line per change
(``+`` create, ``~`` update, ``-`` delete, ``-/+`` replace), then its fields as
``before -> after``, warnings, and the summary line of ``Plan.summary()``.

Redaction (``redact=True``) masks personal data so a plan can be posted on a public PR:

- every email (change keys, labels, ``email`` fields, values, warnings) becomes
  ``s***@g***.com#3f2a``: first letter, first letter of the domain, the TLD and 4 hex
  digits of a salted hash of the normalised email;
- first/last names and every other *string* value of a contact change (custom property
  values: company names, cities... may be personal) become ``S***#1a2b``. Numbers,
  booleans, segment names, topic names and subscriptions stay readable: they are the
  team's vocabulary, not a person's data.

Masks are stable within a plan (equal values give equal masks, in every format) and
distinct for distinct values (on a hash collision the later value, in plan order, gets
more hex digits). The salt is ``RESEND_IAC_REDACT_SALT`` when set, else the plan's
fingerprint. With the default salt someone who *guesses* an email can confirm the guess
from the mask; set ``RESEND_IAC_REDACT_SALT`` from a CI secret to prevent that.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from resend_iac import render_broadcasts as broadcasts_section
from resend_iac.engine.plan import ACTIONS, KINDS, Change, Plan
from resend_iac.model import normalize_email
from resend_iac.model.schema import CONTACT
from resend_iac.secrets import mask_secrets
from resend_iac.text import excerpt, printable

__all__ = [
    "Redactor",
    "render_json",
    "render_markdown",
    "render_text",
    "use_color",
]

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
STYLES = {"create": "green", "update": "yellow", "delete": "red", "replace": "magenta"}
EMAIL_KINDS = ("contact", "membership", "subscription")  # keyed by normalised email
# Contact fields and relations that are not personal (the schema says which are).
KEEP_FIELDS = tuple(f.name for f in CONTACT.fields if not f.personal) + tuple(
    r.name for r in CONTACT.relations if not r.personal
)
FOLD_OVER = 20  # markdown: sections with more changes than this are folded
EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


# --------------------------------------------------------------------------- redaction


class Redactor:
    """Masks emails and personal values; one per plan (the masks depend on the salt)."""

    def __init__(self, salt: str = "") -> None:
        self.salt = salt.encode()
        self._masks: dict[tuple[str, str], str] = {}  # (kind, value) -> mask
        self._taken: set[str] = set()

    @classmethod
    def for_plan(cls, plan: Plan) -> "Redactor":
        """A redactor salted for ``plan`` that has already seen all of its values in plan
        order, so every rendering of the plan gives the same masks."""
        redactor = cls(_salt(plan))
        redactor.plan(plan)
        return redactor

    def _digest(self, value: str) -> str:
        return hmac.new(self.salt, value.encode(), hashlib.sha256).hexdigest()

    def _mask(self, kind: str, value: str, prefix: str) -> str:
        known = self._masks.get((kind, value))
        if known is not None:
            return known
        digest = self._digest(f"{kind}:{value}")
        for n in range(4, len(digest) + 1, 2):
            mask = f"{prefix}#{digest[:n]}"
            if mask not in self._taken:
                break
        self._taken.add(mask)
        self._masks[(kind, value)] = mask
        return mask

    def email(self, email: str) -> str:
        """``sam@gmail.com`` -> ``s***@g***.com#3f2a`` (the same for any spelling of it)."""
        key = normalize_email(email)
        local, at, domain = key.rpartition("@")
        if not at:
            return self.name(email)
        host, dot, tld = domain.rpartition(".")
        masked_domain = f"{host[:1]}***.{tld}" if dot else f"{domain[:1]}***"
        return self._mask("email", key, f"{local[:1]}***@{masked_domain}")

    def name(self, value: str) -> str:
        """``Sam`` -> ``S***#1a2b``; an empty string stays empty."""
        if not value:
            return value
        return self._mask("value", value, f"{value[:1]}***")

    def text(self, value: str) -> str:
        """Every email inside free text (a warning, a description) masked."""
        return EMAIL_RE.sub(lambda m: self.email(m.group(0)), value)

    def personal(self, value: Any) -> Any:
        """A personal value: strings masked (emails as emails), containers walked,
        numbers, booleans and None kept."""
        if isinstance(value, str):
            return self.email(value) if EMAIL_RE.fullmatch(value.strip()) else self.name(value)
        if isinstance(value, dict):
            return {k: self.personal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.personal(v) for v in value]
        return value

    def plain(self, value: Any) -> Any:
        """A non-personal value: only emails inside it are masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v) for v in value]
        return value

    def fields(self, kind: str, fields: dict[str, Any] | None) -> dict[str, Any] | None:
        if fields is None:
            return None
        if kind != "contact":  # property/segment/topic definitions, memberships, topic maps
            return self.plain(fields)
        out = {}
        for name, value in fields.items():
            if name == CONTACT.key.name and isinstance(value, str):
                out[name] = self.email(value)
            elif name in KEEP_FIELDS:
                out[name] = self.plain(value)
            else:  # first_name, last_name, custom property values (nested or flat)
                out[name] = self.personal(value)
        return out

    def change(self, change: Change) -> Change:
        personal_key = change.kind in EMAIL_KINDS
        return replace(
            change,
            key=self.email(change.key) if personal_key else self.text(change.key),
            email=self.email(change.email) if change.email else change.email,
            parent=self.text(change.parent) if change.parent else change.parent,
            before=self.fields(change.kind, change.before),
            after=self.fields(change.kind, change.after),
        )

    def plan(self, plan: Plan) -> Plan:
        extra: dict[str, Any] = {}
        if getattr(plan, "scope", None):  # read scope: lists of normalised emails
            extra["scope"] = {k: [self.email(e) for e in v] for k, v in plan.scope.items()}
        if getattr(plan, "verify", None):  # apply --plan's re-read: a fingerprint and email lists
            extra["verify"] = {
                k: [self.email(e) for e in v] if isinstance(v, list) else v for k, v in plan.verify.items()
            }
        return replace(
            plan,
            changes=[self.change(c) for c in plan.changes],
            warnings=[self.text(w) for w in plan.warnings],
            broadcasts=[self.plain(b) for b in getattr(plan, "broadcasts", None) or ()],
            **extra,
        )


def _salt(plan: Plan) -> str:
    return os.environ.get("RESEND_IAC_REDACT_SALT") or plan.fingerprint


def _prepare(plan: Plan, redact: bool) -> Plan:
    # one pass in plan order assigns the same masks as Redactor.for_plan
    return Redactor(_salt(plan)).plan(plan) if redact else plan


# --------------------------------------------------------------------------- shared pieces


def _short_fingerprint(fingerprint: str) -> str:
    """``sha256:9f86d081884c7d65...`` -> ``sha256:9f86d081884c``."""
    algorithm, colon, digest = fingerprint.rpartition(":")
    return f"{algorithm}{colon}{digest[:12]}"


def _value(value: Any) -> str:
    """A field's value as JSON, on one line; characters that do not print as ``\\uXXXX``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if text.isprintable() else json.dumps(value, ensure_ascii=True, sort_keys=True)


def _name(text: Any) -> str:
    """A name (segment, topic, property, email) as printed: control and invisible characters
    escaped (``text.excerpt``), on a terminal or not, so a name can neither move the cursor
    nor start a line, and two names that differ never print the same."""
    text = str(text)
    return text if printable(text) else excerpt(text, None, quote=False)


def _field_pairs(before: dict | None, after: dict | None) -> Iterable[tuple[str, Any, Any]]:
    """(field, before, after) for every field either side names; a dict on both sides
    (or on one side, the other missing) is opened one level: ``properties.company``."""
    before, after = before or {}, after or {}
    names = list(after) + [k for k in before if k not in after]
    for name in names:
        b, a = before.get(name), after.get(name)
        if isinstance(b, dict) or isinstance(a, dict):
            if (b is None or isinstance(b, dict)) and (a is None or isinstance(a, dict)):
                for sub, sb, sa in _field_pairs(b, a):
                    yield f"{_name(name)}.{sub}", sb, sa
                continue
        yield _name(name), b, a


def _renamed_from(change: Change) -> str | None:
    """The old name of a segment or topic renamed in place (the head line shows it)."""
    if change.kind not in ("segment", "topic") or change.action not in ("update", "replace"):
        return None
    old, new = (change.before or {}).get("name"), (change.after or {}).get("name")
    return old if isinstance(old, str) and old != new else None


def losses_text(change: Change) -> str:
    """What a destructive change drops, as counted by the diff, e.g. "12 contacts lose a value";
    empty when the change carries no count."""
    loses = getattr(change, "loses", None) or {}
    parts = []

    def n(count: int, one: str, many: str) -> str:
        return f"{count:,} {one if count == 1 else many}"

    if "values" in loses:
        parts.append(n(loses["values"], "contact loses a value", "contacts lose a value"))
    if loses.get("unread"):
        parts.append(n(loses["unread"], "contact not read may hold one", "contacts not read may hold one"))
    if "members" in loses:
        parts.append(n(loses["members"], "member removed with it", "members removed with it"))
    if "subscriptions" in loses:
        parts.append(n(loses["subscriptions"], "explicit subscription lost", "explicit subscriptions lost"))
    return "; ".join(parts)


def _field_lines(change: Change) -> list[str]:
    if change.kind == "membership":
        return []  # the head line says it all
    renamed = _renamed_from(change) is not None
    lines = []
    for name, b, a in _field_pairs(change.before, change.after):
        if name == "email" and b is None and a == change.label:
            continue  # a new contact's email: the head line shows it
        if name == "name" and renamed:
            continue  # the head line shows the rename
        if b == a and change.action == "replace":  # unchanged by the replacement
            lines.append(f"{name}: {_value(a)}")
        else:
            lines.append(f"{name}: {_value(b)} -> {_value(a)}")
    return lines


def _head(change: Change) -> str:
    symbol = SYMBOLS.get(change.action, "?")
    if change.kind == "membership":
        return f"{symbol} membership {_name(change.label)} → {_name(change.parent)}"
    old = _renamed_from(change)
    head = (
        f"{symbol} {change.kind} {_name(old)} → {_name(change.label)}"
        if old
        else f"{symbol} {change.kind} {_name(change.label)}"
    )
    lost = losses_text(change)
    return f"{head} ({lost})" if lost else head


def _by_kind(plan: Plan) -> list[tuple[str, list[Change]]]:
    groups: dict[str, list[Change]] = {}
    for change in plan.changes:
        groups.setdefault(change.kind, []).append(change)
    order = [k for k in KINDS if k in groups] + sorted(k for k in groups if k not in KINDS)
    return [(k, groups[k]) for k in order]


def _count_phrase(changes: list[Change]) -> str:
    counts: Counter[str] = Counter(c.action for c in changes)
    n = len(changes)
    parts = [f"{counts[a]} to {a}" for a in ACTIONS if counts[a]]
    return f"{n} change{'s' if n != 1 else ''}: " + ", ".join(parts)


def freshness_line(plan: Plan) -> str | None:
    """How fresh the contacts' details are (engine/live.py), or None if the plan does not say.
    E.g. "Contact details: 12 read now, 9,988 from the refresh cache (oldest verified
    2026-11-29T02:00:00Z); --refresh full reads them all." """
    f = getattr(plan, "freshness", None)
    if not isinstance(f, dict):
        return None
    read_now, cached = int(f.get("read_now") or 0), int(f.get("from_cache") or 0)
    text = f"Contact details: {read_now:,} read now"
    if cached:
        text += (
            f", {cached:,} from the refresh cache (oldest verified {f.get('oldest_verified')}); "
            "--refresh full reads them all."
        )
    elif f.get("refresh") == "full":
        text += " (--refresh full)."
    else:
        text += ", none from the refresh cache."
    return text


# --------------------------------------------------------------------------- text


def render_text(plan: Plan, *, color: bool = False, redact: bool = False) -> str:
    """The plan as a terminal/CI log reads it. ``color`` adds ANSI colours (never when
    ``NO_COLOR`` is set); decide it with ``use_color(sys.stdout)``."""
    plan = _prepare(plan, redact)
    color = color and not os.environ.get("NO_COLOR", "")
    out: list[str] = []

    def line(text: str = "", style: str | None = None) -> None:
        if color and style:
            start, end = _ansi(style)
            out.append(f"{start}{text}{end}\n")
        else:
            out.append(f"{text}\n")

    if plan.fingerprint:
        line(f"resend-iac plan (live state fingerprint {_short_fingerprint(plan.fingerprint)})", "bold")
        line()
    for kind, changes in _by_kind(plan):
        line(f"{kind} ({_count_phrase(changes)})", "bold")
        for change in changes:
            line(f"  {_head(change)}", STYLES.get(change.action))
            for field_line in _field_lines(change):
                line(f"      {field_line}")
        line()
    for text, style in broadcasts_section.text_lines(plan.broadcasts):
        line(_name(text), style)
    if plan.warnings:
        line("Warnings:", "bold yellow")
        for warning in plan.warnings:
            line(f"  ! {_name(warning)}", "yellow")
        line()
    line(plan.summary(), "bold")
    fresh = freshness_line(plan)
    if fresh:
        line(fresh, "dim")
    if redact:
        line("(emails and names redacted)", "dim")
    return mask_secrets("".join(out))


@functools.cache
def _ansi(style: str) -> tuple[str, str]:
    """The escape codes rich writes around text in ``style`` (rendered once per style, so
    a plan of 100,000 lines costs string joins, not 100,000 rich renders)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        no_color=False,
        width=100,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
        legacy_windows=False,
    )
    console.print(Text("\x00", style=style), end="")
    start, _, end = buffer.getvalue().partition("\x00")
    return start, end


# --------------------------------------------------------------------------- markdown


def _md_block(change: Change) -> str:
    """One change inside a ```diff block: '+'/'-' at column 0 so GitHub colours them."""
    lines = [_head(change)] + [f"    {f}" for f in _field_lines(change)]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    """Plain text outside code: masks' ``***`` must not turn into emphasis."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]#|~])", r"\\\1", text)


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (so nothing in it closes it)."""
    return "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)


def _fenced(text: str, info: str = "") -> str:
    fence = _fence(text)
    return f"{fence}{info}\n{text}{fence}\n"


def _md_code(text: str) -> str:
    """``text`` (names from the files or the API inside) as a code span: never Markdown, a
    link or a mention; on one line, its delimiters longer than any run of backticks in it."""
    text = _name(text)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{'`' * (run + 1)}{pad}{text}{pad}{'`' * (run + 1)}"


def _md_table(plan: Plan) -> str:
    counts = plan.counts()
    rows = ["| kind | " + " | ".join(ACTIONS) + " |", "| --- |" + " ---: |" * len(ACTIONS)]
    totals: Counter[str] = Counter()
    for kind, _ in _by_kind(plan):
        cells = []
        for action in ACTIONS:
            n = counts[(kind, action)]
            totals[action] += n
            cells.append(str(n))
        rows.append(f"| {kind} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(f"**{totals[a]}**" for a in ACTIONS) + " |")
    return "\n".join(rows) + "\n"


def render_markdown(plan: Plan, *, redact: bool = False, max_chars: int = 60000) -> str:
    """The plan as a PR comment: summary, a table of counts by kind and action, a
    section per kind (folded in ``<details>`` beyond 20 changes), cut with a visible
    note so the whole stays under ``max_chars`` characters."""
    plan = _prepare(plan, redact)
    head = ["## resend-iac plan\n", f"**{plan.summary()}**\n"]
    if plan.fingerprint:
        head.append(
            f"Live state fingerprint: `{_short_fingerprint(plan.fingerprint)}`"
            + (" · emails and names redacted" if redact else "")
            + "\n"
        )
    elif redact:
        head.append("Emails and names redacted.\n")
    fresh = freshness_line(plan)
    if fresh:
        head.append(_md_escape(fresh) + "\n")
    if plan.changes:
        head.append(_md_table(plan))
    if plan.broadcasts:
        head.append(broadcasts_section.markdown(plan.broadcasts, _md_code))
    if plan.warnings:
        shown = plan.warnings[:FOLD_OVER]
        # In a code block: a warning quotes names from the files (text from a pull request),
        # which must not become Markdown (headings, images, links, @mentions).
        lines = [f"! {_name(w)}" for w in shown]
        if len(plan.warnings) > len(shown):
            lines.append(f"… and {len(plan.warnings) - len(shown)} more warnings")
        head.append("**Warnings**\n\n" + _fenced("\n".join(lines) + "\n", "text"))
    parts = ["\n".join(head)]
    size = len(parts[0])

    total = len(plan.changes)
    shown_count = 0
    truncated = False
    note_budget = len(_truncation_note(total, max_chars)) + 2

    for kind, changes in _by_kind(plan):
        folded = len(changes) > FOLD_OVER
        heading = f"\n### {kind} ({_count_phrase(changes)})\n\n"
        if folded:
            heading += f"<details><summary>Show {len(changes)} {kind} changes</summary>\n\n"
        tail = "\n</details>\n" if folded else ""
        fixed = len(heading) + len("diff\n") + len("\n") + len(tail)  # all but the fences
        blocks: list[str] = []
        blocks_size = 0
        longest = 0  # longest run of backticks in the blocks: the fence must be longer
        for change in changes:  # rendered one by one: a cut plan renders only what it shows
            block = _md_block(change)
            run = max((len(m) for m in re.findall(r"`+", block)), default=0)
            fence_len = max(3, max(longest, run) + 1)
            if size + fixed + 2 * fence_len + blocks_size + len(block) + note_budget > max_chars:
                truncated = True
                break
            blocks.append(block)
            blocks_size += len(block)
            longest = max(longest, run)
        if blocks:
            fence = "`" * max(3, longest + 1)
            section = f"{heading}{fence}diff\n{''.join(blocks)}{fence}\n{tail}"
            parts.append(section)
            size += len(section)
            shown_count += len(blocks)
        if truncated:
            break

    if truncated:
        parts.append("\n" + _truncation_note(total - shown_count, max_chars))
    return mask_secrets("".join(parts))


def _truncation_note(missing: int, max_chars: int) -> str:
    return (
        f"> **… {missing} more changes not shown** (plan truncated to stay under "
        f"{max_chars:,} characters); run `resend-iac plan` locally for the full list.\n"
    )


# --------------------------------------------------------------------------- json


def render_json(plan: Plan, *, redact: bool = False) -> str:
    """``plan.to_dict()`` as JSON (sorted keys, indent 2); ``Plan.from_dict`` reads it back.
    A redacted plan carries ``"redacted": true``: its keys are masks, not emails, so it
    is for reading, not for ``apply --plan``."""
    if not redact:
        return _dumps(plan.to_dict())
    redactor = Redactor(_salt(plan))
    # then any email left in a field this module does not know of yet
    data = redactor.plain(redactor.plan(plan).to_dict())
    data["redacted"] = True
    return _dumps(data)


def _dumps(data: dict[str, Any]) -> str:
    return mask_secrets(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n")
