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

Prints the wall time of each run (best of ``--repeat``), tests per second, and the cost per
test over the baseline. The first ``fixture`` run also pays the one-off server start.
Asserts nothing about time.
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
""" + "".join(f"""\
  - email: person{i}@example.com
    first_name: Person{i}
    properties: {{plan: pro}}
    segments: [customers{', newsletter' if i % 2 else ''}]
    topics: {{news: opt_in}}
""" for i in range(5))

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


def run(folder: Path, name: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"test_{name.replace('+', '_')}.py"],
                          cwd=folder, capture_output=True, text=True)
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
            (folder / f"test_{name.replace('+', '_')}.py").write_text(
                "import pytest, resend\n" + textwrap.dedent(body.format(n=args.tests)))
        results = {name: min(run(folder, name) for _ in range(args.repeat)) for name in CASES}
    n = args.tests
    base = results["plain"]
    print(f"{n} tests per run, best of {args.repeat} (wall time of the whole pytest process)")
    print(f"{'case':<22}{'seconds':>9}{'tests/s':>10}{'ms/test over plain':>21}")
    for name, seconds in results.items():
        extra = "" if name == "plain" else f"{(seconds - base) / n * 1000:.2f}"
        print(f"{name:<22}{seconds:>9.2f}{n / seconds:>10.0f}{extra:>21}")


if __name__ == "__main__":
    main()
