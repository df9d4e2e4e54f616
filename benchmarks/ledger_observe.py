"""The consent ledger's cost per plan: Ledger.observe() over 100,000 contacts whose topics were
read (CPU seconds, first and second run) and the size of the file it writes.

Usage: .venv/bin/python benchmarks/ledger_observe.py
"""

from __future__ import annotations

import time

from resend_iac.engine.ledger import Ledger
from resend_iac.model import Contact, State

N = 100_000


def main() -> None:
    state = State()
    for i in range(N):
        topics = {"news": "opt_out" if i % 7 == 0 else "opt_in"}
        state.add_contact(Contact(f"user{i}@example.com", unsubscribed=(i % 10 == 0), topics=topics))
    ledger = Ledger("key")
    times = []
    for _ in range(2):
        start = time.process_time()
        ledger.observe(state)
        times.append(time.process_time() - start)
    print(
        f"{N:,} contacts, topics read: observe {times[0]:.2f} s CPU first, {times[1]:.2f} s again; "
        f"{len(ledger.entries['unsubscribes']):,} unsubscribed and {len(ledger.entries['opted_out']):,} "
        f"opt-outs recorded; file {len(ledger.to_text()) / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
