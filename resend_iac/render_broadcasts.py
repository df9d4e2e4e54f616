"""The "broadcasts this plan affects" section of a rendered plan (text and Markdown; JSON
carries ``plan.broadcasts`` as it is). One line per finding of engine/broadcasts.py:
refusals first. Names stay readable (redaction masks only emails inside them, before this
runs); no HTML is ever in a finding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TITLE = "Broadcasts this plan affects"


def _ordered(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(findings, key=lambda f: f.get("level") != "refuse")


def _refused(findings: list[dict[str, Any]]) -> int:
    return sum(1 for f in findings if f.get("level") == "refuse")


def text_lines(findings: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(line, style) pairs of the text section; empty when no broadcast is affected."""
    if not findings:
        return []
    n = _refused(findings)
    head = f"{TITLE}:" + (f" (apply refuses {n} without --force)" if n else "")
    lines: list[tuple[str, str | None]] = [(head, "bold red" if n else "bold yellow")]
    for f in _ordered(findings):
        if f.get("level") == "refuse":
            lines.append((f"  x refused: {f.get('message', '')}", "red"))
        else:
            lines.append((f"  ! {f.get('message', '')}", "yellow"))
    lines.append(("", None))
    return lines


def markdown(findings: list[dict[str, Any]], escape: Callable[[str], str], limit: int = 50) -> str:
    """The Markdown section (a heading and a list), or "" when no broadcast is affected."""
    if not findings:
        return ""
    n = _refused(findings)
    out = [f"### {TITLE}\n"]
    if n:
        out.append(f"**apply refuses this plan without `--force`** ({n} refusal{'s' if n != 1 else ''}).\n")
    shown = _ordered(findings)[:limit]
    for f in shown:
        mark = "⛔ **refused**:" if f.get("level") == "refuse" else "⚠️"
        out.append(f"- {mark} {escape(str(f.get('message', '')))}")
    if len(findings) > len(shown):
        out.append(f"- … and {len(findings) - len(shown)} more (run `resend-iac plan` for all of them)")
    return "\n".join(out) + "\n"
