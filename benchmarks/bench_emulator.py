"""Throughput of the emulator as a real uvicorn server, rate limiting off.

    .venv/bin/python benchmarks/bench_emulator.py [--contacts 5000] [--seconds 3] [--clients 2]
    .venv/bin/python benchmarks/bench_emulator.py --latency-rows 100000

Prints requests per second for ``GET /contacts/{id}``, for a 100-item list page
(``GET /contacts?limit=100&after=…``, cursors spread over the whole list) and for
``POST /contacts``, plus the time of
a 5,000-row CSV import, of an unpaginated ``GET /contacts`` and of ``POST /_emulator/reset``.
Clients are separate processes (keep-alive ``http.client`` connections) so the client's
own Python does not bound the figure; figures are machine-dependent, compare ratios.

``--latency-rows N``: instead, how long other requests wait behind an import. One client
process asks ``GET /contacts/{id}`` (contacts of a first 5,000-row import) every 20 ms, open
loop (a request's latency counts from when it was due, so a stall counts for every request
due during it), while an N-row CSV import runs from upload to ``completed``; prints the
import's time and the latency percentiles (p50, p99, max) over that time, after the same
figures for 2 s with no import running (the machine's own floor).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from resend_iac.emulator.server import EmulatorProcess  # noqa: E402

INTERVAL = 0.02  # --latency-rows: one GET due every 20 ms (50 a second)
HEADERS = {"Authorization": "Bearer re_bench", "User-Agent": "bench/1", "Accept": "application/json"}


def _worker(
    port: int, paths: list[str], seconds: float, out: "mp.Queue[tuple[int, int]]", post: bool
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    rng = random.Random(os.getpid())
    done = errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if post:  # a new contact each time
            body = json.dumps({"email": f"p{os.getpid()}-{done}@example.com", "first_name": "P"})
            conn.request(
                "POST", "/contacts", body=body, headers={**HEADERS, "Content-Type": "application/json"}
            )
        else:
            conn.request("GET", rng.choice(paths), headers=HEADERS)
        response = conn.getresponse()
        response.read()
        done += 1
        errors += response.status >= 300
    conn.close()
    out.put((done, errors))


def measure(
    port: int, paths: list[str], seconds: float, clients: int, post: bool = False
) -> tuple[float, int]:
    out: "mp.Queue[tuple[int, int]]" = mp.Queue()
    procs = [mp.Process(target=_worker, args=(port, paths, seconds, out, post)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)


def _prober(
    port: int, paths: list[str], interval: float, stop: Any, out: "mp.Queue[list[tuple[float, float]]]"
) -> None:
    """Open loop: request k is due at start + k * interval and its latency counts from
    then (a request held up behind the lock also delays the ones due meanwhile: they count
    their wait too, so a stall is not hidden by the prober's own pause). Every request due
    before ``stop.value`` (a time.time(), 0 = not yet) is made. Puts
    [(due time.time(), latency s)]."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    rng = random.Random(os.getpid())
    results = []
    start = time.time()
    k = 0
    while True:
        due = start + k * interval
        k += 1
        if stop.value and due > stop.value:
            break
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        conn.request("GET", rng.choice(paths), headers=HEADERS)
        response = conn.getresponse()
        response.read()
        results.append((due, time.time() - due))
        assert response.status == 200, response.status
    conn.close()
    out.put(results)


def _percentiles(latencies: list[float]) -> str:
    if not latencies:
        return "no requests"
    latencies = sorted(latencies)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return (
        f"{len(latencies):,} requests: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )


def import_latency(port: int, rows: int) -> None:
    """p50/p99/max of GET /contacts/{id} while an import of ``rows`` rows runs: over the
    whole import (upload to completed) and over its processing alone (after the 201)."""
    _, data = call(port, "GET", "/contacts?limit=100")
    paths = [f"/contacts/{c['id']}" for c in json.loads(data)["data"]]
    stop, out = mp.Value("d", 0.0), mp.Queue()
    prober = mp.Process(target=_prober, args=(port, paths, INTERVAL, stop, out))
    prober.start()
    time.sleep(0.5)  # the prober is connected and asking
    idle_from = time.time()
    time.sleep(2.0)  # a reference: the same requests with no import running
    boundary = "benchboundary"
    csv = ("email,first_name\n" + "".join(f"l{i}@example.com,L{i}\n" for i in range(rows))).encode()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="on_conflict"\r\n\r\n'
            f"upsert\r\n--{boundary}--\r\n"
        ).encode()
    )
    t0 = time.time()
    status, data = call(
        port, "POST", "/contacts/imports", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    t1 = time.time()
    assert status == 201, data
    iid = json.loads(data)["id"]
    while json.loads(call(port, "GET", f"/contacts/imports/{iid}")[1])["status"] != "completed":
        time.sleep(0.01)
    t2 = time.time()
    stop.value = t2
    results = out.get()
    prober.join()
    every = f"due every {INTERVAL * 1000:.0f} ms"
    print(
        f"  GET /contacts/{{id}} with no import running (2 s, {every}), "
        f"{_percentiles([lat for due, lat in results if idle_from <= due < t0])}"
    )
    print(
        f"import of {rows:,} rows: upload {(t1 - t0) * 1000:.0f} ms, upload to completed "
        f"{(t2 - t0) * 1000:.0f} ms"
    )
    print(
        f"  GET /contacts/{{id}} during it ({every}), "
        f"{_percentiles([lat for due, lat in results if t0 <= due <= t2])}; target p99 <= 100 ms"
    )
    print(
        f"  of which after the upload's 201 (processing only), "
        f"{_percentiles([lat for due, lat in results if t1 <= due <= t2])}"
    )


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=body, headers={**HEADERS, **(headers or {})})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def import_csv(port: int, rows: list[str]) -> float:
    boundary = "benchboundary"
    csv = ("email,first_name\n" + "".join(rows)).encode()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="on_conflict"\r\n\r\n'
            f"upsert\r\n--{boundary}--\r\n"
        ).encode()
    )
    t0 = time.perf_counter()
    status, data = call(
        port, "POST", "/contacts/imports", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 201, data
    iid = json.loads(data)["id"]
    while True:
        _, data = call(port, "GET", f"/contacts/imports/{iid}")
        state = json.loads(data)
        if state["status"] in ("completed", "failed"):
            break
        time.sleep(0.002)
    assert state["status"] == "completed", state
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument(
        "--latency-rows",
        type=int,
        default=0,
        help="measure GET latency during an import of this many rows (and nothing else)",
    )
    ap.add_argument(
        "--http",
        default="auto",
        choices=["auto", "h11", "httptools"],
        help="uvicorn's HTTP parser (auto: httptools when installed)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmulatorProcess(db_path=os.path.join(tmp, "bench.db"), rate_limit=0, http=args.http).start()
        print(f"uvicorn http={args.http}, {args.contacts:,} contacts")
        try:
            port = server.port
            first = import_csv(port, [f"u{i}@example.com,U{i}\n" for i in range(5000)])
            print(f"import of 5,000 rows (upload to completed): {first * 1000:.0f} ms")
            if args.latency_rows:
                import_latency(port, args.latency_rows)
                return
            rest = args.contacts - 5000
            if rest > 0:
                t = import_csv(port, [f"v{i}@example.com,V{i}\n" for i in range(rest)])
                print(f"import of {rest:,} more rows: {t * 1000:.0f} ms")
            t0 = time.perf_counter()
            status, data = call(port, "GET", "/contacts")
            everything = json.loads(data)["data"]
            print(
                f"GET /contacts, no limit ({len(everything):,} contacts): "
                f"{(time.perf_counter() - t0) * 1000:.0f} ms"
            )
            ids = [c["id"] for c in everything]
            sample = random.Random(1).sample(ids, min(500, len(ids)))
            rps, errors = measure(port, [f"/contacts/{i}" for i in sample], args.seconds, args.clients)
            print(
                f"GET /contacts/{{id}}: {rps:,.0f} req/s ({args.clients} client processes, {errors} non-200)"
            )
            cursors = ids[: max(1, len(ids) - 100)][:: max(1, len(ids) // 500)]
            rps, errors = measure(
                port, [f"/contacts?limit=100&after={c}" for c in cursors], args.seconds, args.clients
            )
            print(f"GET /contacts?limit=100&after=…: {rps:,.0f} req/s ({errors} non-200)")
            rps, errors = measure(port, [], args.seconds, args.clients, post=True)
            print(f"POST /contacts: {rps:,.0f} req/s ({errors} errors)")
            t0 = time.perf_counter()
            call(port, "POST", "/_emulator/reset")
            print(
                f"POST /_emulator/reset with {len(ids):,} contacts: "
                f"{(time.perf_counter() - t0) * 1000:.0f} ms"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
