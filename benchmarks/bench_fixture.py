"""Tests per second with and without the ``resend_emulator`` fixture (the pytest plugin).

    .venv/bin/python benchmarks/bench_fixture.py [--tests 300] [--repeat 3]

Writes a throwaway test suite of N tests to a temporary folder and runs it with pytest in
a subprocess (as a user's suite: no conftest, the plugin loaded by its entry point), for
each case:

- ``plain``: tests that don't use the fixture (the baseline: pytest's own cost);
- ``fixture``: each test takes ``resend_emulator`` (an empty team) and makes one SDK call;
- ``fixture+seed``: each test is also marked ``resend_seed`` with a small team (2 segments,
  1 property, 1 topic, 5 contacts) and makes one SDK call;
- ``fixture+seed+state``: as above, and the test reads the team back (``state()``).

Each case runs with N tests and with 1 test (best of ``--repeat`` each). Prints the wall time
of the N-test run, tests per second over the whole run, the one-off cost of the session
(the 1-test run: interpreter, pytest, imports, server start) and the cost of each further
test: ``(t(N) - t(1)) / (N - 1)``, and that cost over the plain tests'. Asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TEAM = """\
version: 1
properties:
  plan: {type: string}
segments:
  customers: {}
  newsletter: {}
topics:
  news: {default_subscription: opt_out}
contacts:
""" + "".join(
    f"""\
  - email: person{i}@example.com
    first_name: Person{i}
    properties: {{plan: pro}}
    segments: [customers{", newsletter" if i % 2 else ""}]
    topics: {{news: opt_in}}
"""
    for i in range(5)
)

CASES = {
    "plain": """
        @pytest.mark.parametrize("i", range({n}))
        def test_plain(i):
            assert sum(range(100)) == 4950
    """,
    "fixture": """
        @pytest.mark.parametrize("i", range({n}))
        def test_fixture(i, resend_emulator):
            assert resend.Contacts.list()["data"] == []
    """,
    "fixture+seed": """
        @pytest.mark.parametrize("i", range({n}))
        @pytest.mark.resend_seed("team.yaml")
        def test_seeded(i, resend_emulator):
            assert len(resend.Contacts.list()["data"]) == 5
    """,
    "fixture+seed+state": """
        @pytest.mark.parametrize("i", range({n}))
        @pytest.mark.resend_seed("team.yaml")
        def test_seeded_state(i, resend_emulator):
            assert len(resend.Contacts.list()["data"]) == 5
            assert len(resend_emulator.state().contacts) == 5
    """,
}


def file_name(name: str, tests: int) -> str:
    return f"test_{name.replace('+', '_')}_{tests}.py"


def run(folder: Path, name: str, tests: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", file_name(name, tests)],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{name}: pytest failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "team.yaml").write_text(TEAM)
        for name, body in CASES.items():
            for tests in (args.tests, 1):
                (folder / file_name(name, tests)).write_text(
                    "import pytest, resend\n" + textwrap.dedent(body.format(n=tests))
                )
        n = args.tests
        full = {name: min(run(folder, name, n) for _ in range(args.repeat)) for name in CASES}
        one = {name: min(run(folder, name, 1) for _ in range(args.repeat)) for name in CASES}
    per_test = {name: (full[name] - one[name]) / (n - 1) * 1000 for name in CASES}
    print(f"{n} tests per run, best of {args.repeat} (wall time of the whole pytest process)")
    print(f"{'case':<22}{'seconds':>9}{'tests/s':>9}{'one-off s':>11}{'ms/test':>9}{'over plain':>12}")
    for name in CASES:
        extra = "" if name == "plain" else f"{per_test[name] - per_test['plain']:.2f}"
        print(
            f"{name:<22}{full[name]:>9.2f}{n / full[name]:>9.0f}{one[name]:>11.2f}"
            f"{per_test[name]:>9.2f}{extra:>12}"
        )


if __name__ == "__main__":
    main()
