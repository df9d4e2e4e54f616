"""CPU time to load and validate N contacts from a CSV seed list (target: 100,000 < 3 s).

    .venv/bin/python benchmarks/bench_config.py [--rows 100000] [--repeat 3] [--cli-rows 1000000]

Writes a YAML file with two properties, two segments and a topic plus a CSV with N rows
(email, names, unsubscribed, a string and a number property) to a temporary directory,
then times ``config.validate`` (read, decode, parse, type conversion, email syntax,
duplicate check, building the State) with ``time.process_time``. Also times the same
contacts declared in YAML (``--yaml-rows``) for comparison: that path runs the JSON Schema.
With ``--cli-rows N`` (0 = skip), also writes an N-row CSV of the shape a large newsletter
export has (email, first name, one string property) and times the whole command
``resend-iac validate`` on it in a child process: wall seconds (the issue-15 target: a
million rows in under 10 s) and the child's CPU seconds and peak RSS.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
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


def write_cli_case(root: Path, rows: int) -> Path:
    """email, first name, one string property: ``rows`` rows (plus a header)."""
    with open(root / "list.csv", "w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,plan\n")
        step = 100_000
        for start in range(0, rows, step):
            out.write(
                "".join(
                    f"reader{i}@news{i % 89}.example.com,Reader{i % 5003},{('free', 'pro', 'team')[i % 3]}\n"
                    for i in range(start, min(rows, start + step))
                )
            )
    (root / "list.yaml").write_text(
        "version: 1\nproperties:\n  plan: {type: string}\nsegments:\n  newsletter: {}\n"
        "contacts:\n  - csv: list.csv\n    segments: [newsletter]\n",
        encoding="utf-8",
    )
    return root / "list.yaml"


def time_cli(path: Path) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, last output line) of ``resend-iac validate path``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    script = Path(sys.executable).with_name("resend-iac")  # the installed command
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "resend_iac"]
    proc = subprocess.run(
        cmd + ["validate", str(path)], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return wall, cpu, after.ru_maxrss / 1024, lines[-1] if lines else ""


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
    parser.add_argument(
        "--cli-rows",
        type=int,
        default=0,
        help="also time `resend-iac validate` on a CSV of this many rows (e.g. 1000000)",
    )
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
        if args.cli_rows:
            cli_path = write_cli_case(root, args.cli_rows)
            wall, cpu, rss, last = time_cli(cli_path)
            print(
                f"CLI : resend-iac validate, {args.cli_rows:,}-row CSV (email, first name, one property): "
                f"wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:,.0f} MB; target < 10 s wall ({last})"
            )


if __name__ == "__main__":
    main()
