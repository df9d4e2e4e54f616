"""Benchmark: read a team's live state through a rate-limited, faulty emulator.

Starts the emulator as a real uvicorn process (``--rate-limit 20 --fail-rate 0.1`` by
default) on a SQLite file seeded beforehand in-process with rate limiting off (one CSV
import for the contacts, one per segment for the memberships: no 2,000 HTTP POSTs through
the limiter), then reads the whole team with ``read_live`` and prints:

    requests  (served by the emulator, from /_emulator/stats: retries included)
    seconds   (wall time of read_live)
    ideal     (requests / rate limit)
    ratio     (seconds / ideal; the target is <= 1.2)

Usage: .venv/bin/python benchmarks/bench_read.py [--contacts 2000] [--segments 5]
       [--rate-limit 20] [--fail-rate 0.1] [--detail 0] [--runs 1]
``--detail N`` also reads custom property values and topic subscriptions of N contacts
(2 requests each), which exercises concurrency under the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from resend_iac.client import ResendClient, read_live  # noqa: E402
from resend_iac.emulator import create_app  # noqa: E402
from resend_iac.emulator.server import EmulatorProcess  # noqa: E402

KEY = "re_benchmark"


async def _import(c: ResendClient, text: str, column_map: dict, **kw) -> None:
    iid = await c.create_import(text.encode(), column_map, on_conflict="upsert", **kw)
    while (job := await c.get_import(iid))["status"] not in ("completed", "failed"):
        await asyncio.sleep(0.02)
    if job["status"] != "completed":
        raise SystemExit(f"seeding failed: {job}")


async def seed(db_path: str, contacts: int, segments: int) -> None:
    """Seed a SQLite file in-process, rate limiting off."""
    app = create_app(db_path, rate_limit=0)
    transport = httpx.ASGITransport(app=app)
    async with ResendClient(KEY, "http://emulator", transport=transport, rate_limit=None) as c:
        await seed_with(c, contacts, segments)
    app.store.close()


async def seed_with(c: ResendClient, contacts: int, segments: int) -> None:
    """A few requests: one property, one topic, the segments and one CSV import each
    for the contacts and every segment's members."""
    await c.create_property({"key": "plan", "type": "string"})
    tid = await c.create_topic({"name": "News", "default_subscription": "opt_in"})
    seg_ids = [await c.create_segment(f"segment-{k}") for k in range(segments)]
    rows = "email,first_name,plan\n" + "".join(
        f"user{i}@example.com,User {i},plan{i % 3}\n" for i in range(contacts)
    )
    await _import(
        c,
        rows,
        {
            "email": "email",
            "first_name": "first_name",
            "properties": {"plan": {"column": "plan", "type": "string"}},
        },
        topics=[{"id": tid, "subscription": "opt_in"}],
    )
    for k, sid in enumerate(seg_ids):
        members = "email\n" + "".join(f"user{i}@example.com\n" for i in range(contacts) if i % (k + 2) == 0)
        await _import(c, members, {"email": "email"}, segment_ids=[sid])


async def read(url: str, detail: int) -> tuple[float, int, int]:
    emails = [f"user{i}@example.com" for i in range(detail)]
    async with ResendClient(KEY, url) as c:
        t0 = time.perf_counter()
        state = await read_live(c, property_emails=emails, topic_emails=emails)
        seconds = time.perf_counter() - t0
        return seconds, c.requests_sent, len(state.contacts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--rate-limit", type=float, default=20.0)
    ap.add_argument("--fail-rate", type=float, default=0.1)
    ap.add_argument("--detail", type=int, default=0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument(
        "--url",
        help="an emulator already running (e.g. `resend-iac emulator --db "
        ":memory: --rate-limit 20 --fail-rate 0.1`): seeded over HTTP, then read "
        "(--rate-limit must match its own)",
    )
    args = ap.parse_args()
    if args.url:
        bench_url(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        t0 = time.perf_counter()
        asyncio.run(seed(db, args.contacts, args.segments))
        print(
            f"seeded {args.contacts} contacts, {args.segments} segments in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        server = EmulatorProcess(db_path=db, rate_limit=args.rate_limit, fail_rate=args.fail_rate)
        with server:
            print(
                f"emulator --rate-limit {args.rate_limit:g} --fail-rate {args.fail_rate:g}; "
                f"reading {args.contacts} contacts, {args.detail} in detail"
            )
            print(f"{'run':>3} {'requests':>8} {'429s':>5} {'seconds':>8} {'ideal':>7} {'ratio':>6}")
            for run in range(1, args.runs + 1):
                before = server.stats()
                seconds, sent, n = asyncio.run(read(server.url, args.detail))
                after = server.stats()
                requests = after["total"] - before["total"]
                limited = after["rate_limited"] - before["rate_limited"]
                if n != args.contacts:
                    raise SystemExit(f"read {n} contacts, expected {args.contacts}")
                ideal = requests / args.rate_limit
                print(
                    f"{run:>3} {requests:>8} {limited:>5} {seconds:>8.2f} {ideal:>7.2f} "
                    f"{seconds / ideal:>6.2f}"
                )
                time.sleep(1.0)  # let the emulator's window pass between runs


def bench_url(args: argparse.Namespace) -> None:
    def stats() -> dict:
        return httpx.get(args.url.rstrip("/") + "/_emulator/stats", timeout=30).json()

    async def seed_remote() -> None:
        async with ResendClient(KEY, args.url) as c:
            await seed_with(c, args.contacts, args.segments)

    asyncio.run(seed_remote())
    time.sleep(1.0)
    print(f"emulator at {args.url}; reading {args.contacts} contacts, {args.detail} in detail")
    print(f"{'run':>3} {'requests':>8} {'429s':>5} {'seconds':>8} {'ideal':>7} {'ratio':>6}")
    for run in range(1, args.runs + 1):
        before = stats()
        seconds, sent, n = asyncio.run(read(args.url, args.detail))
        after = stats()
        requests = after["total"] - before["total"]
        limited = after["rate_limited"] - before["rate_limited"]
        ideal = requests / args.rate_limit
        print(
            f"{run:>3} {requests:>8} {limited:>5} {seconds:>8.2f} {ideal:>7.2f} "
            f"{seconds / ideal:>6.2f}   ({n} contacts)"
        )
        time.sleep(1.0)


if __name__ == "__main__":
    main()
