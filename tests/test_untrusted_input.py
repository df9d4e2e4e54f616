"""Untrusted files (issue 12): a pull request's files cannot read outside the config root,
cost unbounded time or memory, or get a secret printed. The corpus in tests/bad/ holds one
file per case; this module checks the limits that need an environment or a big file."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac import config
from resend_iac.cli import main
from resend_iac.config.limits import Limits
from resend_iac.secrets import mask_secrets

BAD = Path(__file__).parent / "bad"
KEY = "re_test_0123456789_not_a_real_key"
HEAD = "version: 1\nproperties:\n  plan_tier: {type: number}\ncontacts:\n"


def validate(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["validate", *map(str, args)], env=env)


def test_alias_bomb_is_refused_fast_and_small():
    """The 385-byte billion-laughs file: refused within 5 s and 1 GB (address space capped
    in the child, so a regression fails with a MemoryError instead of eating the machine)."""
    bomb = BAD / "alias_bomb.yaml"
    assert bomb.stat().st_size < 400

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "resend_iac", "validate", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
    )
    took = time.monotonic() - start
    assert r.returncode == 1, r.stderr
    assert "billion laughs" in r.stderr and "Traceback" not in r.stderr
    assert took < 5, took


def test_alias_bomb_in_process_costs_little():
    import tracemalloc

    tracemalloc.start()
    start = time.monotonic()
    state, diags = config.validate([BAD / "alias_bomb.yaml"])
    took = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert state is None and "billion laughs" in diags[0].message
    assert took < 1 and peak < 20 * 1024 * 1024, (took, peak)


def test_reasonable_aliases_and_merges_still_work(tmp_path):
    text = HEAD.replace(
        "contacts:\n",
        "segments: {a: {}, b: {}}\nx-d: &d {segments: [a, b], unsubscribed: false}\ncontacts:\n",
    )
    text += "".join(f"  - {{<<: *d, email: u{i}@example.com}}\n" for i in range(2000))
    (tmp_path / "t.yaml").write_text(text)
    state = config.load([tmp_path / "t.yaml"])
    assert len(state.contacts) == 2000
    assert state.contacts["u7@example.com"].segments == {"a", "b"}


def test_alias_budget_is_configurable(tmp_path):
    text = HEAD + "".join(f"  - {{email: u{i}@example.com, properties: *p}}\n" for i in range(50))
    text = text.replace("contacts:\n", "x-p: &p {plan_tier: 1}\ncontacts:\n")
    (tmp_path / "t.yaml").write_text(text)
    assert validate(tmp_path / "t.yaml").exit_code == 0
    r = validate(tmp_path / "t.yaml", env={"RESEND_IAC_MAX_ALIAS_NODES": "20"})
    assert r.exit_code == 1 and "expand to more than 20 values" in r.stderr
    assert f"{tmp_path / 't.yaml'}:4:" in r.stderr  # the anchor's line


def test_yaml_file_size_limit(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(HEAD + "  - email: a@example.com\n" + "# padding\n" * 200)
    assert validate(f).exit_code == 0
    r = validate(f, env={"RESEND_IAC_MAX_FILE_BYTES": "1000"})
    assert r.exit_code == 1
    assert f"{f}: the file is 2,0" in r.stderr and "more than the limit of 1,000 bytes" in r.stderr
    assert "RESEND_IAC_MAX_FILE_BYTES" in r.stderr


def test_csv_size_and_row_limits(tmp_path):
    (tmp_path / "t.yaml").write_text(HEAD + "  - csv: people.csv\n")
    (tmp_path / "people.csv").write_text("email\n" + "".join(f"u{i}@example.com\n" for i in range(100)))
    assert validate(tmp_path).exit_code == 0
    r = validate(tmp_path, env={"RESEND_IAC_MAX_CSV_ROWS": "50"})
    assert r.exit_code == 1
    assert f"{tmp_path / 'people.csv'}:51: CSV file has 101 lines, more than the limit of 50" in r.stderr
    r = validate(tmp_path, env={"RESEND_IAC_MAX_CSV_BYTES": "100"})
    assert r.exit_code == 1 and f"{tmp_path / 't.yaml'}:5:" in r.stderr
    assert "more than the limit of 100 bytes" in r.stderr and "RESEND_IAC_MAX_CSV_BYTES" in r.stderr


def test_depth_limit_is_configurable(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("version: 1\nx-deep: " + "[" * 10 + "1" + "]" * 10 + "\n")
    assert validate(f).exit_code == 0
    r = validate(f, env={"RESEND_IAC_MAX_DEPTH": "5"})
    assert r.exit_code == 1 and "nested more than 5 deep" in r.stderr


def test_a_bad_limit_setting_is_an_error_not_a_traceback(tmp_path):
    r = validate(BAD.parent.parent / "examples" / "quickstart", env={"RESEND_IAC_MAX_CSV_ROWS": "lots"})
    assert r.exit_code == 1 and r.exception is None or isinstance(r.exception, SystemExit)
    assert "environment: RESEND_IAC_MAX_CSV_ROWS='lots' is not a positive whole number" in r.stderr


def test_limits_from_env():
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({"RESEND_IAC_MAX_CSV_ROWS": "5_000_000"}).max_csv_rows == 5_000_000
    with pytest.raises(ValueError, match="RESEND_IAC_MAX_DEPTH"):
        Limits.from_env({"RESEND_IAC_MAX_DEPTH": "0"})


def test_proc_self_environ_never_leaks(tmp_path, monkeypatch):
    """The reported attack: `csv: /proc/self/environ` printed the environment, key included.
    Every way of naming a file outside the root is refused before anything is read."""
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    outside = tmp_path / "outside.csv"
    outside.write_text(f"email,{KEY}\n")
    root = tmp_path / "team"
    (root / "seeds").mkdir(parents=True)
    (root / "seeds" / "env.csv").symlink_to("/proc/self/environ")
    (root / "seeds" / "out.csv").symlink_to(outside)
    (root / "seeds" / "loop.csv").symlink_to(root / "seeds" / "loop.csv")
    (root / "sub").symlink_to(tmp_path, target_is_directory=True)  # a directory link: not followed
    entries = [
        "/proc/self/environ",
        "../outside.csv",
        "seeds/env.csv",
        "seeds/out.csv",
        "seeds/../../outside.csv",
        "sub/outside.csv",
        "seeds/loop.csv",
        str(outside),
    ]
    text = "version: 1\ncontacts:\n" + "".join(
        f"  - csv: {e}\n    columns: {{Nope: email}}\n" for e in entries
    )
    (root / "team.yaml").write_text(text)
    opened: list[str] = []
    real_open = os.open

    def spy(path, *a, **kw):
        opened.append(os.fspath(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    r = validate(root)
    monkeypatch.setattr(os, "open", real_open)
    assert r.exit_code == 1
    assert KEY not in r.output and "re_test_01" not in r.output and "PATH=" not in r.output
    lines = r.stderr.splitlines()[:-1]
    assert len(lines) == len(entries)
    for n, line in enumerate(lines):
        assert line.startswith(f"{root / 'team.yaml'}:{3 + 2 * n}:10: csv: "), line
        assert "outside" in line or "not a relative path" in line, line
    assert not [p for p in opened if p.endswith(".csv") or p.startswith("/proc")], opened


def test_mask_secrets():
    assert mask_secrets(f"key {KEY}.") == "key re_****."
    assert mask_secrets("RESEND_API_KEY=re_test_gitops_0123456789\n") == "RESEND_API_KEY=re_****\n"
    for keep in (
        "re_dev",
        "re_local",
        "re_engaged_customer_tier",
        "re_abcdefgh12345678@example.com",
        "are_very_long_identifier_1234567",
    ):
        assert mask_secrets(keep) == keep


def test_render_outputs_mask_keys():
    from resend_iac.engine import Change, Plan
    from resend_iac.render import render_json, render_markdown, render_text

    plan = Plan(
        changes=[Change("create", "contact", "a@x.com", None, {"email": "a@x.com", "first_name": KEY})]
    )
    for out in (render_text(plan), render_markdown(plan), render_json(plan)):
        assert KEY not in out and "re_****" in out


def test_emulator_seed_works_with_an_api_key(tmp_path):
    """`resend-iac emulator --seed examples/quickstart --api-key re_dev` crashed: the seeding
    client sent a key the emulator does not accept. Now it serves the seeded team to that key."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quickstart = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resend_iac",
            "emulator",
            "--seed",
            str(quickstart),
            "--api-key",
            "re_dev",
            "--port",
            str(port),
            "--db",
            ":memory:",
            "--rate-limit",
            "0",
        ],
        cwd=quickstart.parent.parent,  # the seed files are read inside the working directory
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                r = httpx.get(f"{url}/contacts", headers={"Authorization": "Bearer re_dev"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == 10
        other = httpx.get(f"{url}/contacts", headers={"Authorization": "Bearer re_other"}, timeout=2)
        assert other.status_code in (400, 401, 403)  # an unknown key is refused
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_api_error_quoting_the_key_is_masked(monkeypatch):
    """Second line of defence: a server (or proxy) that echoes the key in an error message."""
    import httpx

    from resend_iac.cli import plan_cmd
    from resend_iac.client import ResendClient

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"statusCode": 401, "name": "invalid_api_key", "message": f"API key {KEY} is invalid"}
        )

    monkeypatch.setattr(
        plan_cmd,
        "make_client",
        lambda *a, **k: ResendClient(
            KEY, "http://api.test", transport=httpx.MockTransport(handler), rate_limit=None
        ),
    )
    r = CliRunner().invoke(main, ["plan", str(BAD.parent.parent / "examples" / "quickstart")])
    assert r.exit_code == 1, r.output
    assert "invalid" in r.output and "re_****" in r.output
    assert KEY not in r.output


def test_log_records_are_masked(caplog):
    import logging

    from resend_iac.secrets import install_log_filter

    install_log_filter()
    install_log_filter()  # idempotent
    with caplog.at_level(logging.INFO, logger="resend_iac.client"):
        logging.getLogger("resend_iac.client").info("retrying with %s", KEY)
    assert KEY not in caplog.text and "retrying with re_****" in caplog.text
