"""End-to-end benchmark: resend-iac against the one-request-per-object strategy.

Builds a scenario (N contacts, S segments, P properties, T topics; see ``scenario.py``),
starts the emulator as a separate process (``resend-iac emulator``) at a set rate limit,
and measures, from the emulator's own request counter (``GET /_emulator/stats``):

- resend-iac through its CLI, as users run it (``resend-iac plan --out`` then
  ``resend-iac apply --plan``, ``RESEND_API_URL`` pointing at the emulator): the initial
  state, a 1% drift (1% of contacts changed live through the API), a no-op;
- the one-request-per-object strategy (``naive.py``: what today's Terraform and Pulumi
  providers do) for the same phases: measured for real at small N (``--naive-n``), its
  request count computed exactly at every N (and checked against the measured count);
- resend-iac with the refresh cache warm (``--refresh-budget 0``): a no-op, and a 1% drift
  made in the files (1% of the contacts' first property value changed in the CSV seeds);
  the cold phases above run with ``--refresh full`` (every contact's details read, the
  cost without a cache), which fills the cache;
- CPU seconds and peak memory of ``engine.diff`` alone at 100,000 and 1,000,000 contacts
  (``diffbench.py``, one child process each).

Writes ``e2e.md`` (tables), ``e2e.json`` (every figure) and ``e2e.png`` (requests against N
for both strategies) to ``--out``.

    .venv/bin/python benchmarks/e2e.py [--n 10000] [--segments 5] [--properties 3]
        [--topics 2] [--rate-limit 1000] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import diffbench  # noqa: E402
import httpx  # noqa: E402
import naive  # noqa: E402
import report  # noqa: E402
import scenario  # noqa: E402

API_KEY = "re_benchmark"
PROJECTED_RATE = 5.0  # the real API's default limit, req/s
PHASES = ("initial", "drift", "noop")
# With the refresh cache warm (filled by the cold phases' `--refresh full` reads), each plan
# with `--refresh-budget 0`: a no-op, and 1% of the contacts changed in the files.
WARM_PHASES = ("warm_noop", "warm_drift")
TRACE_MAX = 100_000  # tracemalloc (3x slower) only up to here; the RSS figure above it


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


# ------------------------------------------------------------------------- the emulator


class Emulator:
    """``resend-iac emulator`` in a child process on a free 127.0.0.1 port, state in memory."""

    def __init__(self, rate_limit: float, logfile: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.rate_limit = rate_limit
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Emulator":
        cmd = cli_command() + [
            "emulator",
            "--port",
            str(self.port),
            "--db",
            ":memory:",
            "--rate-limit",
            f"{self.rate_limit:g}",
        ]
        self._log = open(self.logfile, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited ({self.proc.returncode}); see {self.logfile}")
            try:
                self.stats()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the emulator did not answer on {self.url} within 30 s")

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def stats(self) -> dict:
        r = httpx.get(self.url + "/_emulator/stats", timeout=30)
        r.raise_for_status()
        return r.json()

    def reset(self) -> None:
        httpx.post(self.url + "/_emulator/reset", timeout=60).raise_for_status()


def stats_delta(before: dict, after: dict) -> dict:
    routes = {}
    for k, v in after["by_route"].items():
        d = v - before["by_route"].get(k, 0)
        if d:
            routes[k] = d
    return {
        "requests": after["total"] - before["total"],
        "rate_limited": after["rate_limited"] - before["rate_limited"],
        "by_route": dict(sorted(routes.items(), key=lambda kv: -kv[1])),
    }


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "resend_iac"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" (resend_iac/ modified)" if dirty else "")


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "resend-iac"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resend_iac"]


# ------------------------------------------------------------------------------ drift


def _call(c: httpx.Client, method: str, path: str, json: Any = None) -> httpx.Response:
    """One request, waiting out 429s (the drift runs at whatever --rate-limit says)."""
    for _ in range(100):
        r = c.request(method, path, json=json)
        if r.status_code != 429:
            r.raise_for_status()
            return r
        time.sleep(float(r.headers.get("retry-after") or 1))
    raise RuntimeError(f"{method} {path}: still rate limited after 100 tries")


def make_drift(emu: Emulator, n: int, s: int, p: int, t: int) -> list[dict]:
    """Change 1% of the contacts live, through the API (one request each), the same way
    for both strategies. Returns what was changed."""
    headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": "benchmark-drift/1.0"}
    out = []
    with httpx.Client(base_url=emu.url, headers=headers, timeout=60) as c:
        seg_ids = {x["name"]: x["id"] for x in _call(c, "GET", "/segments").json()["data"]} if s else {}
        top_ids = {x["name"]: x["id"] for x in _call(c, "GET", "/topics").json()["data"]} if t else {}
        keys = scenario.property_keys(p)
        cohorts = scenario.cohort_count(s)
        for k, i in enumerate(scenario.drift_targets(n)):
            email = scenario.email(i)
            kind = scenario.drift_kind(k, s, p, t)
            cohort = i % cohorts
            if kind == "first_name":
                req = ("PATCH", f"/contacts/{email}", {"first_name": "Drifted"})
            elif kind == "property":
                req = ("PATCH", f"/contacts/{email}", {"properties": {keys[0][0]: "drifted"}})
            elif kind == "segment":
                seg = scenario.cohort_segments(cohort, s)[0]
                req = ("DELETE", f"/contacts/{email}/segments/{seg_ids[seg]}", None)
            else:
                top = scenario.topic_names(t)[0]
                now = scenario.cohort_topics(cohort, t)[top]
                flipped = "opt_in" if now == "opt_out" else "opt_out"
                req = ("PATCH", f"/contacts/{email}/topics", [{"id": top_ids[top], "subscription": flipped}])
            _call(c, *req)
            out.append({"email": email, "kind": kind})
    return out


# ------------------------------------------------------------------ resend-iac (the CLI)


def run_cli(args: list[str], env: dict, logfile: Path) -> float:
    t0 = time.perf_counter()
    with open(logfile, "w") as fh:
        # in the run's folder: resend-iac reads declared files inside its working directory only
        proc = subprocess.run(
            cli_command() + args, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=logfile.parent
        )
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        tail = logfile.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"`resend-iac {' '.join(args)}` exited {proc.returncode}; log {logfile}:\n{tail}")
    return seconds


def plan_changes(plan_file: Path) -> dict:
    data = json.loads(plan_file.read_text())
    return {
        "changes": len(data.get("changes", [])),
        "summary": data.get("summary", {}),
        "freshness": data.get("freshness"),
    }


def drift_files(cfg: Path, n: int, p: int) -> int:
    """Change the first property value of 1% of the contacts in the CSV seeds (a change made
    in the files, for the warm-cache drift phase). Returns how many."""
    import csv
    import io

    targets = {scenario.email(i) for i in scenario.drift_targets(n)} if p else set()
    changed = 0
    for f in sorted(cfg.parent.glob("cohort-*.csv")):
        rows = list(csv.reader(io.StringIO(f.read_text(encoding="utf-8"))))
        for row in rows[1:]:
            if row[0] in targets:
                row[4] = "changed-in-files" if not row[4].lstrip("-").isdigit() else str(int(row[4]) + 1)
                changed += 1
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        f.write_text(buf.getvalue(), encoding="utf-8")
    return changed


def bench_resend_iac(emu: Emulator, n: int, s: int, p: int, t: int, work: Path, warm: bool = False) -> dict:
    emu.reset()
    desired = scenario.desired_state(n, s, p, t)
    cfg = scenario.write_config(desired, n, s, p, t, work / "config")
    env = dict(
        os.environ,
        RESEND_API_KEY=API_KEY,
        RESEND_API_URL=emu.url,
        NO_COLOR="1",
        RESEND_IAC_CACHE=str(work / "cache.sqlite"),
    )
    result: dict = {}
    drift = []
    for phase in PHASES + (WARM_PHASES if warm else ()):
        if phase == "drift":
            drift = make_drift(emu, n, s, p, t)
        if phase == "warm_drift":
            result["drifted_in_files"] = drift_files(cfg, n, p)
        refresh = ["--refresh", "full"] if phase in PHASES else ["--refresh-budget", "0"]
        plan_file = work / f"plan-{phase}.json"
        row: dict = {}
        for step, args in (
            ("plan", ["plan", str(cfg), "--out", str(plan_file), *refresh]),
            ("apply", ["apply", "--plan", str(plan_file), "--auto-approve"]),
        ):
            before = emu.stats()
            seconds = run_cli(args, env, work / f"{phase}-{step}.log")
            row[step] = dict(stats_delta(before, emu.stats()), seconds=round(seconds, 2))
            if step == "plan":
                row[step].update(plan_changes(plan_file))
            log(
                f"  resend-iac N={n:,} {phase} {step}: {row[step]['requests']:,} requests, "
                f"{row[step]['seconds']:.1f} s"
                + (f", {row[step]['changes']:,} changes" if step == "plan" else "")
            )
        result[phase] = row
    result["drifted"] = len(drift)
    return result


# ------------------------------------------------------------------ one request per object


def bench_naive(emu: Emulator, n: int, s: int, p: int, t: int, rate_limit: float) -> dict:
    emu.reset()
    desired = scenario.desired_state(n, s, p, t)
    pace = rate_limit * 0.95 if rate_limit else None  # the same safety margin as our client

    async def run() -> dict:
        out: dict = {}
        async with naive.NaiveProvider(emu.url, API_KEY, rate_limit=pace) as prov:
            # initial: a plan against an empty state file reads nothing; apply creates all.
            before = emu.stats()
            out["initial"] = {"plan": dict(stats_delta(before, emu.stats()), seconds=0.0, changes=0)}
            t0 = time.perf_counter()
            await prov.create_all(desired)
            out["initial"]["plan"]["changes"] = sum(naive.resource_counts(desired).values())
            out["initial"]["apply"] = dict(
                stats_delta(before, emu.stats()), seconds=round(time.perf_counter() - t0, 2)
            )
            for phase in ("drift", "noop"):
                if phase == "drift":
                    out["drifted"] = len(await asyncio.to_thread(make_drift, emu, n, s, p, t))
                before = emu.stats()
                t0 = time.perf_counter()
                changes = await prov.refresh(desired)
                mid = emu.stats()
                plan = dict(
                    stats_delta(before, mid), seconds=round(time.perf_counter() - t0, 2), changes=len(changes)
                )
                t0 = time.perf_counter()
                await prov.apply(desired, changes)
                apply_ = dict(stats_delta(mid, emu.stats()), seconds=round(time.perf_counter() - t0, 2))
                out[phase] = {"plan": plan, "apply": apply_}
        return out

    result = asyncio.run(run())
    for phase in PHASES:
        row = result[phase]
        log(
            f"  naive N={n:,} {phase}: plan {row['plan']['requests']:,} req {row['plan']['seconds']:.1f} s, "
            f"apply {row['apply']['requests']:,} req {row['apply']['seconds']:.1f} s"
        )
    return result


def naive_computed(n: int, s: int, p: int, t: int) -> dict:
    desired = scenario.desired_state(n, s, p, t)
    drifted = len(scenario.drift_targets(n))
    return {
        "resources": naive.resource_counts(desired),
        "drifted": drifted,
        "requests": naive.expected_requests(desired, drifted),
    }


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="End-to-end benchmark: resend-iac vs one request per object.")
    ap.add_argument("--n", type=int, default=10_000, help="contacts (default 10,000)")
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--properties", type=int, default=3)
    ap.add_argument("--topics", type=int, default=2)
    ap.add_argument(
        "--rate-limit",
        type=float,
        default=1000.0,
        help="the emulator's limit in req/s for the run (default 1000; 0 = off, but then our "
        "client, hearing no ratelimit headers, keeps the API's documented 5 req/s)",
    )
    ap.add_argument("--out", default=str(HERE / "out"), help="output directory (default benchmarks/out)")
    ap.add_argument(
        "--chart-n",
        default="1000,5000",
        help="more contact counts to run resend-iac at, for the chart (comma list; '' = none)",
    )
    ap.add_argument(
        "--naive-n",
        default="1000",
        help="contact counts at which the naive strategy is run for real, and resend-iac too, "
        "side by side (comma list)",
    )
    ap.add_argument("--diff-n", default="100000,1000000", help="contact counts for the diff-only measurement")
    ap.add_argument(
        "--budget",
        type=float,
        default=575.0,
        help="seconds: the extra --chart-n runs are skipped when they would pass it (default 575)",
    )
    a = ap.parse_args(argv)
    started = time.perf_counter()
    s, p, t = a.segments, a.properties, a.topics
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    chart_ns = sorted(set(_ints(a.chart_n)) | {a.n} | set(_ints(a.naive_n)))
    naive_ns = sorted(set(_ints(a.naive_n)))
    data: dict[str, Any] = {
        "command": "benchmarks/e2e.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "scenario": {"n": a.n, "segments": s, "properties": p, "topics": t},
        "rate_limit": a.rate_limit,
        "projected_rate": PROJECTED_RATE,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git_commit": git_commit(),
        "runs": {},
        "naive_measured": {},
        "naive_computed": {},
        "diff": [],
    }
    log(
        f"scenario N={a.n:,} S={s} P={p} T={t}; emulator rate limit "
        f"{'off' if not a.rate_limit else f'{a.rate_limit:g} req/s'}"
    )
    skipped: list[str] = []
    data["skipped"] = skipped
    with (
        tempfile.TemporaryDirectory(prefix="resend-iac-bench-") as tmp,
        Emulator(a.rate_limit, logs / "emulator.log") as emu,
    ):

        def ours(n: int) -> None:
            log(f"resend-iac, N={n:,}")
            work = Path(tmp) / f"n{n}"
            work.mkdir()
            data["runs"][str(n)] = bench_resend_iac(emu, n, s, p, t, work, warm=n == a.n)
            for f in work.glob("*.log"):
                (logs / f"resend-iac-n{n}-{f.name}").write_text(f.read_text(errors="replace")[-20000:])

        # In order of importance; the extra chart points run only if the budget allows.
        ours(a.n)
        main_run = data["runs"][str(a.n)]
        main_seconds = sum(
            r[k]["seconds"] for r in (main_run[ph] for ph in PHASES) for k in ("plan", "apply")
        )
        for n in naive_ns:
            log(f"one request per object, N={n:,} (for real)")
            data["naive_measured"][str(n)] = bench_naive(emu, n, s, p, t, a.rate_limit)
            if str(n) not in data["runs"]:  # both strategies side by side at this N
                ours(n)
        emu.reset()
        for n in _ints(a.diff_n):
            log(f"diff alone, N={n:,} (child process)")
            r = diffbench.measure(n, s, p, t, trace=n <= TRACE_MAX)
            log(f"  {r}")
            data["diff"].append(r)
        for n in [x for x in chart_ns if str(x) not in data["runs"]]:
            estimate = main_seconds * n / a.n + 5
            elapsed = time.perf_counter() - started
            if elapsed + estimate > a.budget:
                skipped.append(
                    f"resend-iac at N={n:,}: about {estimate:.0f} s more would pass the "
                    f"{a.budget:.0f} s budget ({elapsed:.0f} s used)"
                )
                log(f"skipping resend-iac at N={n:,}: {skipped[-1]}")
                continue
            ours(n)
        emu.reset()
    for n in sorted(set(chart_ns) | set(naive_ns)):
        data["naive_computed"][str(n)] = naive_computed(n, s, p, t)
    checks = []
    for n, measured in data["naive_measured"].items():
        computed = data["naive_computed"][n]["requests"]
        for phase in PHASES:
            for step in ("plan", "apply"):
                checks.append(
                    {
                        "n": int(n),
                        "phase": phase,
                        "step": step,
                        "computed": computed[phase][step],
                        "measured": measured[phase][step]["requests"] - measured[phase][step]["rate_limited"],
                    }
                )
    data["naive_count_checks"] = checks
    data["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "e2e.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "e2e.md").write_text(report.markdown(data))
    report.chart(data, out / "e2e.png")
    log(f"done in {data['total_seconds']:.0f} s: {out / 'e2e.md'}, {out / 'e2e.json'}, {out / 'e2e.png'}")
    print((out / "e2e.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
