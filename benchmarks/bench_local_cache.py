"""``plan --local`` of N contacts managing one property: cold (``--refresh full``) and with the
refresh cache warm (``--refresh-budget 0``), through the CLI as a user runs it.

    .venv/bin/python benchmarks/bench_local_cache.py [--n 100000] [--warm-runs 3]

Builds a team file (one CSV of N rows: email and a ``plan`` property), applies it to the
embedded emulator (``apply --local``, state in a temporary directory), plans once with
``--refresh full`` (fills the cache), then plans ``--warm-runs`` times with the cache warm.
Prints the wall seconds and CPU seconds (user + system, of the child process) of each plan.
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [str(Path(sys.executable).parent / "resend-iac")]


def timed(args: list[str], cwd: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"resend-iac {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return wall, cpu, last


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--warm-runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="resend-iac-local-cache-") as tmp:
        work = Path(tmp)
        (work / "team").mkdir()
        with open(work / "team" / "people.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["email", "plan"])
            for i in range(a.n):
                w.writerow([f"user{i:07d}@example.com", ("free", "pro", "team")[i % 3]])
        (work / "team" / "team.yaml").write_text(
            "version: 1\nproperties:\n  plan: {type: string}\ncontacts:\n"
            "  - csv: people.csv\n    columns: {email: email, plan: plan}\n"
        )
        wall, cpu, _ = timed(["apply", "--local", "--auto-approve", "--no-cache", "team"], work)
        print(f"apply --local of {a.n:,} contacts: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        wall, cpu, line = timed(["plan", "--local", "--refresh", "full", "team"], work)
        print(
            f"plan --local --refresh full (cold, fills the cache): {wall:.1f} s wall, {cpu:.1f} s CPU  [{line}]",
            flush=True,
        )
        for _ in range(a.warm_runs):
            wall, cpu, line = timed(["plan", "--local", "--refresh-budget", "0", "team"], work)
            print(
                f"plan --local --refresh-budget 0 (cache warm): {wall:.1f} s wall, {cpu:.1f} s CPU  [{line}]",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
