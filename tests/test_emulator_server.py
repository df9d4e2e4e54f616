"""The emulator as a real server process: rate limiting, persistence across a restart and
a kill -9 (through the ``resend-iac emulator`` command), fault injection, latency, keys."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from resend_iac.emulator.server import EmulatorProcess, free_port

HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}


def test_rate_limit_429_with_headers(start_emulator):
    server = start_emulator(rate_limit=5, db_path=":memory:")
    with httpx.Client(base_url=server.url, headers=HEADERS) as c:
        responses = []
        while len(responses) < 100 and 429 not in [r.status_code for r in responses[-3:]]:
            responses.append(c.get("/segments"))
        responses += [c.get("/segments") for _ in range(2)]
        statuses = [r.status_code for r in responses]
        assert statuses[0] == 200 and 429 in statuses, statuses
        first_429 = statuses.index(429)
        # a fixed one-second window: at most two windows' worth pass before the first 429
        assert 5 <= first_429 <= 10, statuses
        assert responses[0].headers["ratelimit-remaining"] == "4"
        for r in responses:
            assert r.headers["ratelimit-limit"] == "5"
            assert r.headers["ratelimit-policy"] == "5;w=1"
            assert 0 <= int(r.headers["ratelimit-remaining"]) <= 4
            assert int(r.headers["ratelimit-reset"]) >= 1
            assert r.headers["content-type"].startswith("application/json")
        limited = [r for r in responses if r.status_code == 429]
        assert limited[0].json()["name"] == "rate_limit_exceeded"
        assert limited[0].json()["statusCode"] == 429
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].headers["ratelimit-remaining"] == "0"
        assert "retry-after" not in responses[0].headers
        stats = server.stats()
        assert stats["rate_limited"] == len(limited)
        assert stats["total"] == len(responses) == stats["by_route"]["GET /segments"]
        time.sleep(int(limited[-1].headers["retry-after"]))
        r = c.get("/segments")
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "4"


def test_rate_limit_off_means_no_headers_and_no_429(emulator_server):
    with httpx.Client(base_url=emulator_server.url, headers=HEADERS) as c:
        responses = [c.get("/segments") for _ in range(30)]
    assert {r.status_code for r in responses} == {200}
    assert not any("ratelimit-limit" in r.headers for r in responses)
    assert emulator_server.stats()["rate_limited"] == 0


def _cli(db: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resend_iac",
            "emulator",
            "--port",
            str(port),
            "--db",
            db,
            "--rate-limit",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "emulator command exited"
        try:
            httpx.get(url + "/_emulator/stats", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("emulator command did not come up")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    proc.wait(timeout=10)


def test_state_survives_restart_and_kill_9_with_whole_writes(tmp_path):
    """First life through the ``resend-iac emulator`` command (--db), stopped gracefully;
    second life killed with SIGKILL in the middle of a stream of writes; third life reads."""
    db = str(tmp_path / "state" / "emulator.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _cli(db, port)
    server = EmulatorProcess(port=port, db_path=db, rate_limit=0)
    try:
        _wait_up(url, proc)
        with httpx.Client(base_url=url, headers=HEADERS) as c:
            c.post("/contact-properties", json={"key": "n", "type": "number"})
            sid = c.post("/segments", json={"name": "S"}).json()["id"]
            first = c.post(
                "/contacts",
                json={"email": "first@example.com", "properties": {"n": 1}, "segments": [{"id": sid}]},
            ).json()["id"]
        _stop(proc)  # graceful restart
        server.start()
        with httpx.Client(base_url=url, headers=HEADERS) as c:
            assert c.get(f"/contacts/{first}").json()["properties"] == {"n": {"value": 1, "type": "number"}}
            # now write continuously and kill -9 in the middle
            created: list[str] = []
            stop = threading.Event()

            def writer() -> None:
                with httpx.Client(base_url=url, headers=HEADERS) as w:
                    i = 0
                    while not stop.is_set():
                        try:
                            r = w.post(
                                "/contacts",
                                json={
                                    "email": f"w{i}@example.com",
                                    "first_name": f"W{i}",
                                    "properties": {"n": i},
                                    "segments": [{"id": sid}],
                                },
                            )
                            if r.status_code == 201:
                                created.append(r.json()["id"])
                        except httpx.TransportError:
                            return
                        i += 1

            t = threading.Thread(target=writer)
            t.start()
            deadline = time.monotonic() + 20
            while len(created) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()
            stop.set()
            t.join(10)
            assert len(created) >= 20
        server.start()
        with httpx.Client(base_url=url, headers=HEADERS) as c:
            contacts = c.get("/contacts").json()["data"]
            ids = {x["id"] for x in contacts}
            assert first in ids and set(created) <= ids  # every acknowledged write is there
            members = {x["id"] for x in c.get(f"/segments/{sid}/contacts").json()["data"]}
            assert members == ids  # and every stored contact is whole (membership written)
            for x in contacts:
                if x["id"] != first:
                    got = c.get(f"/contacts/{x['id']}").json()
                    n = int(got["email"][1:].split("@")[0])
                    assert got["first_name"] == f"W{n}"
                    assert got["properties"] == {"n": {"value": n, "type": "number"}}
    finally:
        _stop(proc, signal.SIGKILL)
        server.stop()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_fault_injection_answers_5xx_and_changes_nothing(start_emulator):
    server = start_emulator(rate_limit=0, fail_rate=0.4, seed=3, db_path=":memory:")
    created = 0
    with httpx.Client(base_url=server.url, headers=HEADERS) as c:
        statuses = []
        for i in range(40):
            r = c.post("/segments", json={"name": f"s{i}"})
            statuses.append(r.status_code)
            assert r.headers["content-type"].startswith("application/json")
            if r.status_code >= 500:
                assert r.json()["name"] in ("application_error", "service_unavailable")
            created += r.status_code == 201
        assert {500, 503} <= set(statuses) and 201 in statuses
        for _ in range(50):  # reads fail too, sometimes: retry
            r = c.get("/segments")
            if r.status_code == 200:
                break
        assert len(r.json()["data"]) == created


def test_latency_and_api_keys(start_emulator):
    server = start_emulator(rate_limit=0, latency_ms=150, api_keys=["re_good"], db_path=":memory:")
    with httpx.Client(base_url=server.url, headers={"User-Agent": "t"}) as c:
        t0 = time.monotonic()
        r = c.get("/segments", headers={"Authorization": "Bearer re_good"})
        assert r.status_code == 200 and time.monotonic() - t0 >= 0.15
        r = c.get("/segments", headers={"Authorization": "Bearer re_other"})
        assert r.status_code == 400 and r.json() == {
            "statusCode": 400,
            "message": "API key is invalid",
            "name": "validation_error",
        }
        assert c.get("/segments").status_code == 401


def test_cli_help_lists_the_options():
    from click.testing import CliRunner

    from resend_iac.cli import main

    out = CliRunner().invoke(main, ["emulator", "--help"]).output
    for option in (
        "--host",
        "--port",
        "--db",
        "--rate-limit",
        "--api-key",
        "--fail-rate",
        "--latency-ms",
        "--unknowns",
        "--list-lag",
        "--seed",
    ):
        assert option in out


@pytest.mark.parametrize("bad", [["--fail-rate", "2"], ["--rate-limit", "-1"]])
def test_cli_rejects_bad_options(bad):
    from click.testing import CliRunner

    from resend_iac.cli import main

    result = CliRunner().invoke(main, ["emulator", *bad])
    assert result.exit_code == 2


def test_cli_seed_loads_config_then_serves_with_its_rate_limit(tmp_path):
    """``--seed`` applies the example through the engine at full speed (no 429s even with
    a limit of 1 req/s), and the served stats start at zero."""
    examples = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resend_iac",
            "emulator",
            "--port",
            str(port),
            "--db",
            ":memory:",
            "--rate-limit",
            "1",
            "--seed",
            examples,
        ],
        cwd=os.path.dirname(os.path.dirname(__file__)),  # the seed files are read inside the cwd
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_up(url, proc)
        assert httpx.get(url + "/_emulator/stats").json()["total"] == 0
        r = httpx.get(url + "/contacts", headers=HEADERS)
        assert r.status_code == 200 and len(r.json()["data"]) > 0
        assert r.headers["ratelimit-limit"] == "1"
    finally:
        _stop(proc, signal.SIGKILL)
        proc.stderr.close()


def test_cli_seed_with_bad_file_says_where_and_does_not_serve(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("contacts:\n  - email: [not, an, email]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "resend_iac",
            "emulator",
            "--port",
            str(free_port()),
            "--db",
            ":memory:",
            "--seed",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "bad.yaml" in result.stderr and "not started" in result.stderr


def test_a_server_that_cannot_start_says_why(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = EmulatorProcess(db_path=str(blocker / "sub" / "e.db"))
    with pytest.raises(RuntimeError, match="emulator exited"):
        server.start()
    assert not server.alive


def test_a_port_taken_meanwhile_is_replaced_unless_fixed():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmulatorProcess(db_path=":memory:", rate_limit=0)
        server.port = port  # as if another process took the free port we picked
        try:
            server.start()
            assert server.port != port and server.stats()["total"] == 0
        finally:
            server.stop()
        with pytest.raises(RuntimeError, match="in use"):
            EmulatorProcess(port=port, db_path=":memory:").start()


def test_cli_unusable_db_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from resend_iac.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["emulator", "--db", str(blocker / "e.db")])
    assert result.exit_code == 1
    assert "cannot open the emulator database" in result.output and "--db" in result.output
