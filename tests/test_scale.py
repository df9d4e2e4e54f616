"""The scale work (issue 15) changes how things are computed, never what: the streamed
fingerprints hash exactly the bytes of the reference canonical JSON (plan files keep
verifying), at any chunk size."""

from __future__ import annotations

import hashlib
import json

import pytest

import resend_iac.engine.fingerprint  # noqa: F401  (the module, not the function engine exports)
import sys

fp = sys.modules["resend_iac.engine.fingerprint"]
from resend_iac.model import UNSET, Contact, Property, Segment, State, Topic


def _reference(live, pe=None, te=None) -> str:
    data = json.dumps(fp.canonical(live, pe, te), separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def _live(n: int) -> State:
    st = State()
    st.properties["plan"] = Property("plan", "string", None, "p1", "2026-01-01")
    st.segments["vip"] = Segment("vip", id="s1", created_at="2026-01-02")
    st.topics["news"] = Topic("news", "opt_out", None, "public", "t1", "2026-01-03")
    for i in reversed(range(n)):  # not in key order
        st.add_contact(Contact(
            f"User{i}@Example.com", f"F{i}" if i % 3 else None, UNSET if i % 4 else "L",
            i % 2 == 0, UNSET if i % 5 == 0 else {"plan": f"v{i}", "n": i * 1.5},
            {"vip", "a"} if i % 2 else set(), UNSET if i % 7 == 0 else {"news": "opt_in", "x": "opt_out"},
            id=f"id-{i}", created_at="2026-02-01"))
    return st


@pytest.mark.parametrize("chunk", [1, 3, 2048])
@pytest.mark.parametrize("n", [0, 1, 10])
def test_streamed_fingerprints_equal_the_reference(monkeypatch, chunk, n):
    monkeypatch.setattr(fp, "_CHUNK", chunk)
    live = _live(n)
    keys = sorted(live.contacts)
    pe, te = keys[::2], keys[1::3]
    assert fp.fingerprint(live) == _reference(live)
    assert fp.fingerprint(live, pe, te) == _reference(live, pe, te)
    assert fp.fingerprint(live, pe) == _reference(live, pe)
    assert fp.fingerprint(live, None, te) == _reference(live, None, te)
    assert fp.fingerprint(live, [], []) == _reference(live, [], [])
    assert fp.fingerprints(live, pe, te) == (_reference(live), _reference(live, pe, te))
    if n > 1:  # contact 0 has neither map read
        assert fp.fingerprint(live) != fp.fingerprint(live, [], [])
