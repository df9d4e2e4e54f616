"""CPU seconds and peak memory of ``engine.diff`` alone, on synthetic States.

Each contact count runs in its own child process (``measure`` starts it) so runs don't
pollute each other. The child builds the desired State and the live State (the same team,
1% of contacts drifted; see ``scenario.live_state``), then measures only the diff, twice:

1. ``time.process_time()`` (CPU seconds) and wall seconds around ``diff``, and the peak RSS
   (``ru_maxrss``) before and after it: the difference is how far the diff raised the
   process's peak resident memory above the two States (0 if it never rose above the
   building peak).
2. unless ``trace=False``: the plan dropped, ``tracemalloc`` started, ``diff`` again: the
   peak of the memory the diff itself allocated (tracemalloc slows the diff about 3x, so
   this run's time is not used; e2e.py traces only up to 100,000 contacts, where it
   cross-checks the RSS figure).

Run directly: ``python benchmarks/diffbench.py 100000``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(n: int, s: int, p: int, t: int, trace: bool = True) -> dict:
    sys.path.insert(0, str(HERE))
    import gc

    import deepdiff  # noqa: F401  (diff imports it at the first changed property map; not timed, as before)
    import scenario

    from resend_iac.engine import diff

    t0 = time.perf_counter()
    gc.disable()  # building millions of objects: no point in collecting meanwhile
    desired = scenario.desired_state(n, s, p, t)
    live = scenario.live_state(n, s, p, t)
    gc.enable()
    gc.collect()  # the States now sit in the oldest generation, as after config.load + read_live
    out: dict = {"n": n, "build_seconds": round(time.perf_counter() - t0, 2)}

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    c0, w0 = time.process_time(), time.perf_counter()
    plan = diff(desired, live)
    out["cpu_seconds"] = round(time.process_time() - c0, 3)
    out["wall_seconds"] = round(time.perf_counter() - w0, 3)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["rss_states_mb"] = round(rss0 / 1024, 1)
    out["rss_peak_mb"] = round(rss1 / 1024, 1)
    out["rss_diff_extra_mb"] = round((rss1 - rss0) / 1024, 1)
    out["changes"] = len(plan.changes)
    out["summary"] = {f"{k}.{a}": v for (k, a), v in sorted(plan.counts().items())}
    del plan
    gc.collect()
    if not trace:
        return out

    import tracemalloc

    tracemalloc.start()
    diff(desired, live)  # measured for its peak memory only
    out["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    return out


def measure(n: int, s: int, p: int, t: int, *, trace: bool = True, timeout: float = 600) -> dict:
    """Run the measurement for n contacts in a fresh child process; returns its figures
    (or ``{"n", "error"}``). ``trace=False`` skips the tracemalloc run."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        str(n),
        "--segments",
        str(s),
        "--properties",
        str(p),
        "--topics",
        str(t),
    ] + ([] if trace else ["--no-trace"])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"n": n, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--properties", type=int, default=3)
    ap.add_argument("--topics", type=int, default=2)
    ap.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    a = ap.parse_args()
    print(json.dumps(_child(a.n, a.segments, a.properties, a.topics, not a.no_trace)))


if __name__ == "__main__":
    main()
