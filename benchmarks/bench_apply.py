"""Requests an apply costs: 5,000 new contacts in 3 segments, through the bulk import path.

Starts a real emulator server (uvicorn child process, rate limiting off unless --rate-limit),
then plans and applies with the real client over HTTP, exactly as `resend-iac apply` does
(reads, the import, its polling and the read-back verification all counted), and prints the
requests by route from /_emulator/stats beside what one request per contact would cost.

    .venv/bin/python benchmarks/bench_apply.py [--contacts 5000] [--segments 3] [--rate-limit 0]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from resend_iac.client import ResendClient, read_live
from resend_iac.emulator.server import EmulatorProcess
from resend_iac.engine import apply, diff, read_scope
from resend_iac.model import Contact, Segment, State


def declared(n: int, segments: int) -> State:
    s = State()
    names = [f"segment-{i}" for i in range(segments)]
    for name in names:
        s.segments[name] = Segment(name)
    for i in range(n):
        s.add_contact(
            Contact(f"user{i:05d}@example.com", first_name=f"User{i}", last_name="Bench", segments=set(names))
        )
    return s


def stats(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/stats").json()


async def run(url: str, desired: State, rate_limit: float | None):
    async with ResendClient("re_bench", url, rate_limit=rate_limit) as client:
        t0 = time.monotonic()
        p, t = read_scope(desired)
        live = await read_live(client, property_emails=p, topic_emails=t)
        plan = diff(desired, live)
        t1 = time.monotonic()
        result = await apply(plan, client, live=live)
        t2 = time.monotonic()
        counted = stats(url)
        # a fresh plan must be empty (its reads are not counted above)
        again = diff(desired, await read_live(client))
        assert again.empty, f"{len(again.changes)} changes left after apply"
        return t1 - t0, t2 - t1, len(plan.changes), result, counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=5000)
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument(
        "--rate-limit", type=float, default=0.0, help="emulator and client rate limit in req/s (0 = off)"
    )
    args = ap.parse_args()
    server = EmulatorProcess(db_path=":memory:", rate_limit=args.rate_limit).start()
    try:
        desired = declared(args.contacts, args.segments)
        server.reset()
        plan_s, apply_s, n_changes, result, counted = asyncio.run(
            run(server.url, desired, args.rate_limit or None)
        )
    finally:
        server.stop()
    print(f"{args.contacts} new contacts in {args.segments} segments: {n_changes} changes planned")
    print(f"plan {plan_s:.2f} s, apply {apply_s:.2f} s; {result.summary()}")
    print(f"(imported {result.imported}, retried one by one {result.retried})")
    print("\nrequests by route, plan + apply (from /_emulator/stats):")
    for route, n in sorted(counted["by_route"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:6d}  {route}")
    total = counted["total"]
    naive = args.contacts + args.segments
    print(
        f"\ntotal: {total} requests (apply alone {result.requests}: the import, its polling and the "
        f"read-back verification included); rate limited: {counted['rate_limited']}"
    )
    print(
        f"one request per contact: {naive}+ requests ({args.contacts} POST /contacts with segments, "
        f"{args.segments} POST /segments, before any reads)"
    )
    print(f"ratio: {naive / total:.0f}x fewer (target: < 250 requests in all, over 20x fewer)")
    print("(a fresh plan after the apply was checked empty; its reads are not counted)")


if __name__ == "__main__":
    main()
