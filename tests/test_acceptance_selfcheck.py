"""The acceptance suite (tests/test_acceptance.py) checked against the emulator over HTTP, so
it is known to run before anyone points it at a real team:

- against the default profile every test passes and nothing the run created is left;
- against the hostile profile exactly the tests of the "unknown" rows where the hostile
  reading differs fail (so each of those tests can tell the two readings apart), while the
  engine's own tests (every endpoint, plan/apply/drift/heal) still pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_ROWS = {
    "test_unknown_email_case_is_one_contact",
    "test_unknown_newer_lists_without_limit_return_everything",
    "test_unknown_import_on_conflict_default_is_skip",
    "test_unknown_import_upsert_keeps_what_the_csv_lacks",
    "test_unknown_import_segments_are_not_applied_to_skipped_rows",
    "test_unknown_delete_of_an_unknown_contact_is_200_and_of_property_topic_404",
}


@pytest.mark.parametrize("unknowns", ["benign", "hostile"])
def test_acceptance_suite_against_the_emulator(start_emulator, unknowns):
    server = start_emulator(db_path=":memory:", rate_limit=0, unknowns=unknowns)
    env = dict(
        os.environ,
        RESEND_IAC_ACCEPTANCE_KEY="re_acceptance_selfcheck",
        RESEND_IAC_ACCEPTANCE_URL=server.url,
        RESEND_IAC_ACCEPTANCE_RATE="0",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            str(ROOT / "tests" / "test_acceptance.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    failed = set(re.findall(r"^FAILED \S+::(\w+)", r.stdout, re.M))
    assert failed == (HOSTILE_ROWS if unknowns == "hostile" else set()), r.stdout[-3000:]
    assert re.search(rf"\b{12 - len(failed)} passed", r.stdout), r.stdout[-2000:]
    left = httpx.get(
        server.url + "/contacts", headers={"Authorization": "Bearer x", "User-Agent": "selfcheck"}
    ).json()["data"]
    assert left == []  # the run deleted what it created
    for path in ("/segments", "/topics", "/contact-properties"):
        items = httpx.get(
            server.url + path + "?limit=100", headers={"Authorization": "Bearer x", "User-Agent": "selfcheck"}
        ).json()["data"]
        assert items == [], path
