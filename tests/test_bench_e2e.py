"""Smoke test of the end-to-end benchmark (benchmarks/e2e.py) at a tiny N.

It runs the real entry point (emulator process, the CLI, the naive strategy, the diff
child) and checks what the report says, not how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import naive  # noqa: E402
import scenario  # noqa: E402

N = 30


def test_scenario_files_load_back_to_the_generated_state(tmp_path):
    from resend_iac.config import load

    desired = scenario.desired_state(120, 5, 3, 2)
    path = scenario.write_config(desired, 120, 5, 3, 2, tmp_path)
    loaded = load([path])
    assert loaded.contacts == desired.contacts
    assert loaded.properties == desired.properties
    assert loaded.segments == desired.segments
    assert loaded.topics == desired.topics
    counts = naive.resource_counts(desired)
    assert counts == {
        "property": 3,
        "segment": 5,
        "topic": 2,
        "contact": 120,
        "membership": 180,
        "subscription": 240,
    }


@pytest.mark.timeout(240)
def test_e2e_runs_and_resend_iac_uses_fewer_requests(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "e2e.py"),
            "--n",
            str(N),
            "--chart-n",
            "",
            "--naive-n",
            str(N),
            "--diff-n",
            "300",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=230,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("e2e.md", "e2e.json", "e2e.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "e2e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "e2e.json").read_text())
    ours = data["runs"][str(N)]
    theirs = data["naive_measured"][str(N)]

    def total(run: dict) -> int:
        return sum(
            run[phase][step]["requests"]
            for phase in ("initial", "drift", "noop")
            for step in ("plan", "apply")
        )

    assert total(ours) < total(theirs)
    assert ours["initial"]["apply"]["requests"] < theirs["initial"]["apply"]["requests"]
    assert ours["noop"]["plan"]["requests"] < theirs["noop"]["plan"]["requests"]
    # The benchmark measured what it claims: the initial plan creates everything, the drift
    # plan finds exactly the drifted objects, and after applying it nothing is left.
    assert ours["initial"]["plan"]["changes"] == 3 + 5 + 2 + N
    assert ours["drift"]["plan"]["changes"] == ours["drifted"] == 1
    assert ours["noop"]["plan"]["changes"] == 0
    assert theirs["drift"]["plan"]["changes"] == theirs["drifted"] == 1
    assert theirs["noop"]["plan"]["changes"] == 0
    # The naive strategy's exact count formula matches what the emulator counted.
    assert data["naive_count_checks"]
    assert all(c["computed"] == c["measured"] for c in data["naive_count_checks"])
    assert data["diff"][0]["changes"] == 3  # 1% of 300 contacts drifted
    md = (out / "e2e.md").read_text()
    assert "| phase | strategy | plan requests |" in md
    assert "projected at 5 req/s" in md
    # The warm-cache rows: a no-op reads no contact in detail; a change in the files reads only
    # the changed contacts (2 requests each: values and subscriptions).
    warm, drifted = ours["warm_noop"]["plan"], ours["warm_drift"]["plan"]
    floor = ours["noop"]["plan"]["requests"] - 2 * N  # the cold no-op read every contact twice
    assert warm["changes"] == 0 and warm["requests"] <= floor + 5
    assert warm["freshness"]["from_cache"] == N and warm["freshness"]["read_now"] == 0
    assert drifted["changes"] == ours["drifted_in_files"] == 1
    assert drifted["requests"] <= floor + 2 * ours["drifted_in_files"] + 5
    assert "cache warm" in md
