"""``benchmarks/results/mutation.md`` from ``mutation.json`` (used by ``benchmarks/mutation.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _code(text: str) -> str:
    return text.replace("|", "\\|")


def write_markdown(data: dict[str, Any], path: Path) -> None:
    mods = data["modules"]
    out = [
        "# Mutation testing of the engine",
        "",
        "Written by `benchmarks/mutation.py` (see its docstring and the README's Benchmark section).",
        "Score = killed / (mutants run - equivalent); message-only mutants (the text of an error or",
        "warning message) are not run and are listed below. Each row names the commit and the command",
        "that measured it.",
        "",
        "| module | mutants | message-only | run | killed | survived | equivalent | score | score, equivalents as survivors | time | commit | command |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for m in mods.values():
        sample = f" (sample of {m['sample']['n']}, seed {m['sample']['seed']})" if m.get("sample") else ""
        out.append(
            f"| `{m['file']}`{sample} | {m['mutants']} | {len(m['message_only'])} | {m['run']} | {m['killed']} | "
            f"{len(m['survived'])} | {len(m['equivalent'])} | **{_pct(m['score'])}** | "
            f"{_pct(m['score_equivalents_as_survivors'])} | {m['seconds']:.0f} s | {m['commit']} | "
            f"`{m['command']}` |"
        )
    out.append("")
    for name, m in mods.items():
        out += [f"## {name}", "", f"Tests: {', '.join(f'`{t}`' for t in m['tests'])}.", ""]
        if m["survived"]:
            out += ["Survivors:", ""]
            out += [f"- line {r['line']}, `{r['scope']}`: {_code(r['desc'])}" for r in m["survived"]]
            out.append("")
        if m["equivalent"]:
            out += ["Equivalent (no behaviour can tell them from the original):", ""]
            out += [
                f"- line {r['line']}, `{r['scope']}`: {_code(r['desc'])} — {r['why']}"
                for r in m["equivalent"]
            ]
            out.append("")
        if m["message_only"]:
            out += [
                f"<details><summary>Message-only mutants, not run ({len(m['message_only'])})</summary>",
                "",
            ]
            out += [f"- line {r['line']}, `{r['scope']}`: {_code(r['desc'])}" for r in m["message_only"]]
            out += ["", "</details>", ""]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
