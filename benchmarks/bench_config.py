"""CPU time to load and validate N contacts from a CSV seed list (target: 100,000 < 3 s).

    .venv/bin/python benchmarks/bench_config.py [--rows 100000] [--repeat 3]

Writes a YAML file with two properties, two segments and a topic plus a CSV with N rows
(email, names, unsubscribed, a string and a number property) to a temporary directory,
then times ``config.validate`` (read, decode, parse, type conversion, email syntax,
duplicate check, building the State) with ``time.process_time``. Also times the same
contacts declared in YAML (``--yaml-rows``) for comparison: that path runs the JSON Schema.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from resend_iac import config

HEAD = """version: 1
properties:
  company: {type: string}
  plan_tier: {type: number}
segments:
  customers: {}
  newsletter: {membership: additive}
topics:
  product-updates: {default_subscription: opt_in}
"""


def write_csv_case(root: Path, rows: int) -> Path:
    rng = random.Random(1)
    lines = ["Email,First Name,Last Name,Unsubscribed,Company,Tier"]
    for i in range(rows):
        lines.append(
            f"user{i}.{rng.randrange(10**6)}@example{i % 97}.com,First{i},Last{i},"
            f"{'yes' if i % 13 == 0 else 'no'},Company {i % 1000},{i % 5}"
        )
    (root / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "team.yaml").write_text(
        HEAD
        + "contacts:\n  - csv: contacts.csv\n"
        + '    columns: {Email: email, "First Name": first_name, "Last Name": last_name, '
        + "Unsubscribed: unsubscribed, Company: company, Tier: plan_tier}\n"
        + "    segments: [customers]\n    topics: {product-updates: opt_in}\n",
        encoding="utf-8",
    )
    return root / "team.yaml"


def write_yaml_case(root: Path, rows: int) -> Path:
    out = [HEAD, "contacts:\n"]
    for i in range(rows):
        out.append(
            f"  - {{email: user{i}@example.com, first_name: First{i}, unsubscribed: false, "
            f"properties: {{company: Co{i % 100}, plan_tier: {i % 5}}}, segments: [customers]}}\n"
        )
    path = root / "team-yaml.yaml"
    path.write_text("".join(out), encoding="utf-8")
    return path


def measure(path: Path, repeat: int) -> tuple[list[float], int]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.process_time()
        state, diagnostics = config.validate([path])
        times.append(time.process_time() - start)
        assert state is not None, diagnostics[:5]
        count = len(state.contacts)
    return times, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--yaml-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path = write_csv_case(root, args.rows)
        times, count = measure(csv_path, args.repeat)
        print(
            f"CSV : {count:,} contacts loaded+validated: CPU median {statistics.median(times):.2f} s, "
            f"min {min(times):.2f} s over {args.repeat} runs ({count / statistics.median(times):,.0f} contacts/s); target < 3 s"
        )
        if args.yaml_rows:
            yaml_path = write_yaml_case(root, args.yaml_rows)
            ytimes, ycount = measure(yaml_path, args.repeat)
            print(
                f"YAML: {ycount:,} contacts loaded+validated: CPU median {statistics.median(ytimes):.2f} s "
                f"({ycount / statistics.median(ytimes):,.0f} contacts/s)"
            )


if __name__ == "__main__":
    main()
