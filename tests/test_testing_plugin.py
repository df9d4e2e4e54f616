"""The pytest plugin (``resend_iac.testing``), exercised as a user would: pytest runs (in
subprocesses) of test files in a temporary folder that has no conftest, only the plugin
loaded by its entry point, and of the example project."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TEAM = """\
version: 1
properties:
  plan: {type: string, fallback_value: free}
segments:
  customers: {}
topics:
  news: {default_subscription: opt_out}
contacts:
  - email: ada@example.com
    first_name: Ada
    properties: {plan: pro}
    segments: [customers]
    topics: {news: opt_in}
  - email: bob@example.com
"""


def run_pytest(folder: Path, *args: str) -> tuple[dict[str, int], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    counts = {
        m.group(2): int(m.group(1))
        for m in re.finditer(r"(\d+) (passed|failed|errors?|skipped)", out.splitlines()[-1])
    }
    return counts, out


def run_inline(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, int], str]:
    # In a subprocess: an in-process run drops the modules it imported when it ends, and the
    # next import makes second copies of their classes (httpcore's errors then escape
    # httpx's mapping in other tests of this session).
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-rA", *args)
    out = "\n".join(result.outlines + result.errlines)
    return result.parseoutcomes(), out


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def test_seeded_then_empty_then_unaffected(pytester):
    write(
        pytester.path,
        {
            "data/team.yaml": TEAM,
            "one.yaml": "version: 1\ncontacts:\n  - email: solo@example.com\n",
            "test_app.py": """
        import os, threading
        import pytest, resend

        ORIGINAL_URL = resend.api_url

        def test_a_no_fixture_starts_no_server():
            assert not [t for t in threading.enumerate() if t.name == "resend-emulator"]
            assert "RESEND_BASE_URL" not in os.environ

        @pytest.mark.resend_seed("data/team.yaml")
        def test_b_seeded(resend_emulator):
            assert resend.api_url == resend_emulator.url == os.environ["RESEND_API_URL"]
            assert os.environ["RESEND_BASE_URL"] == resend_emulator.url
            assert resend.api_key == resend_emulator.api_key == os.environ["RESEND_API_KEY"]
            emails = sorted(c["email"] for c in resend.Contacts.list()["data"])
            assert emails == ["ada@example.com", "bob@example.com"]
            ada = resend.Contacts.get(email="ada@example.com")
            assert ada["properties"]["plan"]["value"] == "pro"
            # seeding is not among the application's requests
            assert resend_emulator.request_counts() == {"GET /contacts": 1, "GET /contacts/{id}": 1}
            state = resend_emulator.state()
            assert state.contacts["ada@example.com"].segments == {"customers"}
            assert state.contacts["ada@example.com"].topics == {"news": "opt_in"}
            assert "- email: bob@example.com" in resend_emulator.state_yaml()
            resend_emulator.assert_matches("data/team.yaml")
            import httpx
            page = httpx.get(resend_emulator.ui_url + "/contacts")
            assert page.status_code == 200 and "bob@example.com" in page.text
            assert len(resend_emulator.requests()) == 2  # the web view is not the application

        def test_c_next_test_is_empty(resend_emulator):
            assert resend.Contacts.list()["data"] == []
            resend.Contacts.create({"email": "carol@example.com"})
            assert [(r.method, r.path, r.status) for r in resend_emulator.requests("POST /contacts")] \\
                == [("POST", "/contacts", 201)]
            assert resend_emulator.requests("POST /contacts")[0].json() == {"email": "carol@example.com"}
            assert "unsubscribed" not in resend_emulator.requests("POST /contacts")[0].json()
            with pytest.raises(AssertionError, match="create contact ada@example.com"):
                resend_emulator.assert_matches("data/team.yaml")
            resend_emulator.reset()
            assert resend_emulator.requests() == [] and resend_emulator.state().contacts == {}
            resend_emulator.seed("data/team.yaml")
            resend_emulator.assert_matches("data/team.yaml")

        def test_d_restored_after():
            assert resend.api_url == ORIGINAL_URL
            assert "RESEND_API_URL" not in os.environ and "RESEND_API_KEY" not in os.environ

        @pytest.mark.resend_seed("data")  # a folder: every YAML file in it
        class TestSeededClass:
            def test_f_class_marker(self, resend_emulator):
                assert len(resend.Contacts.list()["data"]) == 2

            @pytest.mark.resend_seed("one.yaml")  # the closest marker wins
            def test_g_own_marker(self, resend_emulator):
                assert [c["email"] for c in resend.Contacts.list()["data"]] == ["solo@example.com"]

        def test_e_other_key_refused(resend_emulator):
            import httpx
            r = httpx.get(resend_emulator.url + "/contacts",
                          headers={"Authorization": "Bearer re_other", "User-Agent": "t"})
            assert r.status_code == 400 and r.json()["message"] == "API key is invalid"
            assert resend_emulator.requests()[-1].status == 400
    """,
        },
    )
    counts, out = run_inline(pytester)
    assert counts == {"passed": 7}, out


def test_options_from_ini_command_line_and_marker(pytester):
    write(
        pytester.path,
        {
            "pytest.ini": """
        [pytest]
        resend_rate_limit = 2
        resend_api_key = re_from_ini
    """,
            "test_opts.py": """
        import httpx, pytest, resend

        def test_ini(resend_emulator):
            assert resend_emulator.options["rate_limit"] == 2.0
            assert resend_emulator.api_key == "re_from_ini"
            statuses = [httpx.get(resend_emulator.url + "/segments", headers={
                "Authorization": "Bearer re_from_ini", "User-Agent": "t"}).status_code
                for _ in range(8)]
            assert 429 in statuses, statuses

        @pytest.mark.resend_emulator(rate_limit=0, fail_rate=1.0, seed=3)
        def test_marker_faults(resend_emulator):
            with pytest.raises(resend.exceptions.ResendError):
                resend.Contacts.list()
            assert resend_emulator.requests()[0].status in (500, 503)

        @pytest.mark.resend_emulator(latency_ms=150)
        def test_command_line_and_marker(resend_emulator):
            assert resend_emulator.options["rate_limit"] == 0.0  # from the command line
            assert resend_emulator.options["latency_ms"] == 150
    """,
        },
    )
    counts, out = run_inline(pytester, "--resend-rate-limit", "0", "-k", "marker")
    assert counts == {"passed": 2, "deselected": 1}, out
    counts, out = run_inline(pytester, "-k", "ini")
    assert counts == {"passed": 1, "deselected": 2}, out


def test_bad_seed_and_unknown_option_are_clear_errors(pytester):
    write(
        pytester.path,
        {
            "bad.yaml": "version: 1\ncontacts:\n  - bob@example.com\n",
            "test_bad.py": """
        import pytest

        @pytest.mark.resend_seed("bad.yaml")
        def test_bad_seed(resend_emulator):
            pass

        @pytest.mark.resend_seed("missing.yaml")
        def test_missing_seed(resend_emulator):
            pass

        @pytest.mark.resend_emulator(ratelimit=5)
        def test_typo(resend_emulator):
            pass
    """,
        },
    )
    counts, out = run_inline(pytester)
    assert counts == {"errors": 3}, out
    assert "bad.yaml:3" in out and "Traceback" not in out
    assert "missing.yaml" in out
    assert "unknown option(s) ['ratelimit']" in out


def test_profiles_pass_through_only_when_the_emulator_has_them():
    import inspect

    from resend_iac.emulator import create_app
    from resend_iac.testing.emulator import create_app_kwargs

    accepted = inspect.signature(create_app).parameters
    kwargs = create_app_kwargs({"rate_limit": 0.0, "unknowns": "benign", "list_lag": 0.0})
    assert ("unknowns" in kwargs) == ("unknowns" in accepted)
    assert ("list_lag" in kwargs) == ("list_lag" in accepted)
    if "unknowns" not in accepted:
        with pytest.raises(ValueError, match="no `unknowns` option"):
            create_app_kwargs({"unknowns": "hostile"})
    else:
        create_app(":memory:", **create_app_kwargs({"unknowns": "hostile", "list_lag": 0.5}))


async def test_helpers_work_inside_an_async_test(tmp_path):
    from resend_iac.emulator import create_app
    from resend_iac.testing import EmulatorThread, ResendEmulator

    (tmp_path / "team.yaml").write_text(TEAM)
    server = EmulatorThread().start()
    try:
        app = create_app(":memory:", rate_limit=0, fail_rate=1.0)
        handle = ResendEmulator(server.url, "re_x", app, base=tmp_path)
        server.switch.use(app, handle.log)
        handle.seed("team.yaml")  # around the faults: seeding never fails on them
        assert sorted(handle.state().contacts) == ["ada@example.com", "bob@example.com"]
        assert handle.plan("team.yaml").empty
        assert handle.requests() == [] and app.stats()["total"] == 0
    finally:
        server.stop()


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "testing"


def test_the_example_user_suite_passes():
    """examples/testing/ is a user's project: run its own test suite, in its own folder."""
    counts, out = run_pytest(EXAMPLE)
    assert counts == {"passed": 6}, out
    for name in (
        "test_seeded_team_is_seen_through_the_sdk",
        "test_the_next_test_starts_from_an_empty_team",
        "test_without_the_fixture_nothing_changes",
    ):
        assert f"PASSED tests/test_newsletter.py::{name}" in out, out


def test_keep_alive_requests_are_not_delayed():
    """The thread server's socket says TCP, so asyncio sets TCP_NODELAY on its connections:
    without it each keep-alive request waited ~40 ms (Nagle + delayed ACK)."""
    import socket
    import time

    import httpx

    from resend_iac.emulator import create_app
    from resend_iac.testing import EmulatorThread

    server = EmulatorThread().start()
    try:
        server.switch.use(create_app(":memory:", rate_limit=0))
        listening = server.server.servers[0].sockets[0]
        assert listening.proto == socket.IPPROTO_TCP
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k", "User-Agent": "t"}) as c:
            c.get("/contacts")
            start = time.perf_counter()
            for _ in range(20):
                assert c.get("/contacts").status_code == 200
            assert time.perf_counter() - start < 0.7  # with the delay: 20 x 40 ms = 0.8 s at least
    finally:
        server.stop()


def test_seeding_and_reading_under_the_hostile_profile_and_a_list_lag(tmp_path):
    """Seeded contacts are old (listed at once), keyed like the test's profile; the helpers
    read what is stored even while the application's lists lag behind its writes."""
    import inspect

    import httpx

    from resend_iac.emulator import create_app
    from resend_iac.testing import EmulatorThread, ResendEmulator

    if "list_lag" not in inspect.signature(create_app).parameters:
        pytest.skip("this emulator has no profiles")
    (tmp_path / "team.yaml").write_text(
        "version: 1\ncontacts:\n  - email: Ada@Example.com\n    first_name: Ada\n"
    )
    server = EmulatorThread().start()
    try:
        templates: dict = {}
        for unknowns in ("hostile", "benign"):
            app = create_app(":memory:", rate_limit=0, unknowns=unknowns, list_lag=60)
            handle = ResendEmulator(server.url, "re_x", app, base=tmp_path)
            server.switch.use(app, handle.log)
            handle.seed_fresh(["team.yaml"], templates)
            with httpx.Client(
                base_url=server.url, headers={"Authorization": "Bearer re_x", "User-Agent": "t"}
            ) as c:
                listed = [x["email"] for x in c.get("/contacts").json()["data"]]
                assert listed == ["Ada@Example.com"], unknowns  # seeded: not lagging
                assert c.get("/contacts/Ada@Example.com").json()["first_name"] == "Ada"
                assert c.post("/contacts", json={"email": "new@example.com"}).status_code == 201
                listed = [x["email"] for x in c.get("/contacts").json()["data"]]
                assert listed == ["Ada@Example.com"], unknowns  # the new one lags
            assert sorted(handle.state().contacts) == ["ada@example.com", "new@example.com"]
            handle.assert_matches("team.yaml")
            with httpx.Client(
                base_url=server.url, headers={"Authorization": "Bearer re_x", "User-Agent": "t"}
            ) as c:
                assert len(c.get("/contacts").json()["data"]) == 1  # still lagging after
        assert len(templates) == 2  # one seeded template per profile
    finally:
        server.stop()
