"""CPU time to render a big plan in every format, with and without redaction.

    .venv/bin/python benchmarks/bench_render.py [--changes 50000]

Builds a plan of N changes (contact creates with names and a property value, updates,
memberships, subscriptions), then times ``render_text`` (plain and coloured),
``render_markdown`` (cut at 60,000 characters) and ``render_json``, each with and without
``redact``, with ``time.process_time``. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import time

from resend_iac.engine.plan import Change, Plan
from resend_iac.render import render_json, render_markdown, render_text


def big_plan(n: int) -> Plan:
    changes = []
    for i in range(n):
        email = f"person{i:06d}@example{i % 7}.com"
        kind = i % 4
        if kind == 0:
            changes.append(
                Change(
                    "create",
                    "contact",
                    email,
                    None,
                    {
                        "first_name": f"Name{i}",
                        "last_name": "Doe",
                        "properties": {"company": f"Co {i % 50}", "tier": i % 3},
                        "segments": ["customers"],
                        "topics": {"news": "opt_in"},
                    },
                )
            )
        elif kind == 1:
            changes.append(
                Change("update", "contact", email, {"first_name": f"Old{i}"}, {"first_name": f"New{i}"})
            )
        elif kind == 2:
            changes.append(Change("create", "membership", email, parent="customers"))
        else:
            changes.append(Change("update", "subscription", email, {"news": "opt_in"}, {"news": "opt_out"}))
    return Plan(changes=changes, fingerprint="sha256:" + "ab" * 32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=50_000)
    args = parser.parse_args()
    plan = big_plan(args.changes)
    print(f"plan of {args.changes:,} changes")
    print(f"{'format':<10} {'redact':<7} {'CPU s':>7} {'chars':>12}")
    cases = [
        ("text", lambda r: render_text(plan, redact=r)),
        ("text+color", lambda r: render_text(plan, color=True, redact=r)),
        ("markdown", lambda r: render_markdown(plan, redact=r)),
        ("json", lambda r: render_json(plan, redact=r)),
    ]
    for name, fn in cases:
        for redact in (False, True):
            t = time.process_time()
            out = fn(redact)
            print(f"{name:<10} {str(redact):<7} {time.process_time() - t:7.2f} {len(out):>12,}")


if __name__ == "__main__":
    main()
