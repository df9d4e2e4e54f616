"""What checking every answer item costs (client/answers.py, issue 18): the reader checks each
listed contact (and property, topic, segment, member) before it enters the live state.

    .venv/bin/python benchmarks/bench_answers.py [--n 100000]

Prints the CPU microseconds per contact item of ``check_listed`` (the contact list's check) and
per ``GET /contacts/{id}`` answer of ``check_contact`` (three typed property values each).
"""

from __future__ import annotations

import argparse
import time

from resend_iac.client import answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    items = [
        {
            "id": f"4f1c2e8a-0000-4000-8000-{i:012d}",
            "email": f"person{i}@example.com",
            "first_name": None,
            "last_name": "Lovelace",
            "unsubscribed": i % 7 == 0,
            "created_at": "2025-11-30 20:41:40.84216+00",
        }
        for i in range(n)
    ]
    details = [
        {
            **item,
            "properties": {
                "plan": {"value": "pro", "type": "string"},
                "seats": {"value": i, "type": "number"},
                "region": {"value": None, "type": "string"},
            },
        }
        for i, item in enumerate(items)
    ]
    t = time.process_time()
    for item in items:
        answers.check_listed(item, answers.CONTACT, "/contacts")
    listed = time.process_time() - t
    t = time.process_time()
    for body in details:
        answers.check_contact(body, "/contacts/x")
    detail = time.process_time() - t
    print(f"check_listed: {listed * 1e6 / n:.2f} us CPU per contact item ({n:,} items, {listed:.2f} s)")
    print(f"check_contact: {detail * 1e6 / n:.2f} us CPU per GET /contacts/{{id}} answer ({detail:.2f} s)")


if __name__ == "__main__":
    main()
