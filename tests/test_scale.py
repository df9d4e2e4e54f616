"""The scale work (issue 15) changes how things are computed, never what: the streamed
fingerprints hash exactly the bytes of the reference canonical JSON (plan files keep
verifying), at any chunk size."""

from __future__ import annotations

import hashlib
import importlib
import json

import pytest

from resend_iac.model import UNSET, Contact, Property, Segment, State, Topic

fp = importlib.import_module("resend_iac.engine.fingerprint")  # the module (engine exports the function)


def _reference(live, pe=None, te=None) -> str:
    data = json.dumps(fp.canonical(live, pe, te), separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def _live(n: int) -> State:
    st = State()
    st.properties["plan"] = Property("plan", "string", None, "p1", "2026-01-01")
    st.segments["vip"] = Segment("vip", id="s1", created_at="2026-01-02")
    st.topics["news"] = Topic("news", "opt_out", None, "public", id="t1", created_at="2026-01-03")
    for i in reversed(range(n)):  # not in key order
        st.add_contact(
            Contact(
                f"User{i}@Example.com",
                f"F{i}" if i % 3 else None,
                UNSET if i % 4 else "L",
                i % 2 == 0,
                UNSET if i % 5 == 0 else {"plan": f"v{i}", "n": i * 1.5},
                {"vip", "a"} if i % 2 else set(),
                UNSET if i % 7 == 0 else {"news": "opt_in", "x": "opt_out"},
                id=f"id-{i}",
                created_at="2026-02-01",
            )
        )
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


def test_csv_rows_share_repeated_values_and_keep_types(tmp_path):
    """The CSV loop's per-column value cache: equal cells share one object, a number column
    still converts (and still rejects a bad cell after good ones), empty cells stay unmanaged."""
    from resend_iac import config

    (tmp_path / "list.csv").write_text(
        "email,plan,seats\nA@x.com,pro,5\nb@x.com,pro,5\nc@x.com,5,2.5\nd@x.com,,\n", encoding="utf-8"
    )
    (tmp_path / "team.yaml").write_text(
        "version: 1\nproperties:\n  plan: {type: string}\n  seats: {type: number}\nsegments:\n  news: {}\n"
        "contacts:\n  - csv: list.csv\n    segments: [news]\n",
        encoding="utf-8",
    )
    state = config.load([tmp_path / "team.yaml"])
    a, b, c, d = (state.contacts[k] for k in ("a@x.com", "b@x.com", "c@x.com", "d@x.com"))
    assert a.properties == {"plan": "pro", "seats": 5} and a.properties["plan"] is b.properties["plan"]
    assert c.properties == {"plan": "5", "seats": 2.5} and type(a.properties["seats"]) is int
    assert d.properties == {} and a.segments == {"news"} == d.segments
    assert a.email == "A@x.com" and b.email is next(k for k in state.contacts if k == "b@x.com")

    (tmp_path / "list.csv").write_text(
        "email,plan,seats\na@x.com,pro,5\nb@x.com,pro,five\n", encoding="utf-8"
    )
    state, diagnostics = config.validate([tmp_path / "team.yaml"])
    assert state is None and [d.location.line for d in diagnostics] == [3]
    assert "'five'" in diagnostics[0].message and "not a number" in diagnostics[0].message


CSV_ROWS = (
    b"email,first_name\na@x.com,A\nb@x.com,B\nbad-email,X\nA@X.com,A2\nc@x.com,\n"
    b"d@x.com,D\nb@x.com,\ne@x.com,E\n"
)


def _import(chunk_rows, monkeypatch, on_conflict, interrupt_after=None, unknowns="benign"):
    """Counts and contacts (email, first_name) after importing CSV_ROWS into a store that
    already holds d@x.com, ``chunk_rows`` rows per transaction; ``interrupt_after`` chunks
    commit before a simulated kill, then the import is run again (resumed)."""
    import json as _json

    from resend_iac.emulator import import_run, imports
    from resend_iac.emulator.store import Store

    monkeypatch.setattr(import_run, "CHUNK_ROWS", chunk_rows)
    store = Store(unknowns=unknowns)
    store.create_contact("d@x.com", {"first_name": "old"}, {}, [], [])
    job = imports.prepare(store, CSV_ROWS, {"on_conflict": on_conflict})
    with store.write() as c:
        c.execute(
            "INSERT INTO imports (id, status, created_at, job) VALUES ('i', 'in_progress', 'x', ?)",
            (_json.dumps(job),),
        )
    if interrupt_after is not None:
        real, calls = import_run._apply_rows, []

        def killed(*args):
            if len(calls) == interrupt_after:
                raise KeyboardInterrupt  # the chunk's transaction rolls back
            calls.append(1)
            return real(*args)

        monkeypatch.setattr(import_run, "_apply_rows", killed)
        with pytest.raises(KeyboardInterrupt):
            imports.run(store, "i", job)
        monkeypatch.setattr(import_run, "_apply_rows", real)
        assert store.read("SELECT status FROM imports") == [("in_progress",)]
        assert len(store.read("SELECT * FROM import_progress")) == min(interrupt_after, 1)
    imports.run(store, "i", job)
    counts = store.read("SELECT status, total, created, updated, skipped, failed FROM imports")
    contacts = store.read("SELECT email, first_name FROM contacts ORDER BY seq")
    assert store.read("SELECT * FROM import_progress") == []
    return counts, contacts


@pytest.mark.parametrize("on_conflict", ["upsert", "skip"])
def test_chunked_and_resumed_imports_end_as_one_transaction_would(monkeypatch, on_conflict):
    whole = _import(1000, monkeypatch, on_conflict)
    assert whole[0][0][:2] == ("completed", 8) and whole[0][0][5] == 1
    for chunk in (1, 2, 3):
        assert _import(chunk, monkeypatch, on_conflict) == whole
        assert _import(chunk, monkeypatch, on_conflict, interrupt_after=1) == whole
    assert _import(2, monkeypatch, on_conflict, interrupt_after=0) == whole


@pytest.mark.parametrize("on_conflict", ["upsert", "skip"])
def test_chunked_hostile_imports_end_as_one_transaction_would(monkeypatch, on_conflict):
    whole = _import(1000, monkeypatch, on_conflict, unknowns="hostile")
    for chunk in (1, 2, 3):
        assert _import(chunk, monkeypatch, on_conflict, unknowns="hostile") == whole


def test_frozen_dict_reads_like_a_dict_and_refuses_changes():
    import copy
    import pickle

    from resend_iac.model import FrozenDict

    d = FrozenDict({"news": "opt_in"})
    assert d == {"news": "opt_in"} and dict(d) == d and json.dumps(d) == '{"news": "opt_in"}'
    assert sorted(d.items()) == [("news", "opt_in")] and d.get("x") is None and len(d) == 1
    for clone in (copy.copy(d), copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
        assert clone == d and type(clone) is FrozenDict
    for change in (
        lambda: d.__setitem__("a", 1),
        lambda: d.__delitem__("news"),
        d.clear,
        d.popitem,
        lambda: d.pop("news"),
        lambda: d.setdefault("a", 1),
        lambda: d.update(a=1),
    ):
        with pytest.raises(TypeError):
            change()
    with pytest.raises(TypeError):
        d |= {"a": 1}
    assert d == {"news": "opt_in"} and (d | {"a": "opt_out"}) == {"news": "opt_in", "a": "opt_out"}


def _wait_done(importer, iid):
    import time

    deadline = time.monotonic() + 10
    while importer.get(iid)["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return importer.get(iid)


def test_an_upload_csv_is_stored_in_parts_beside_its_import_row(monkeypatch):
    """The CSV goes to ``import_csv`` in parts (short transactions), not into the imports
    row; the worker reassembles it, and the parts go when the import completes."""
    from resend_iac.emulator import imports
    from resend_iac.emulator.store import Store

    monkeypatch.setattr(imports, "CSV_PART", 7)
    store = Store()
    importer = imports.Importer(store)
    writes = []
    real_write = store.write
    monkeypatch.setattr(store, "write", lambda: writes.append(1) or real_write())
    job = imports.prepare(store, CSV_ROWS, {"on_conflict": "upsert"})
    importer._ensure_worker = lambda: None  # started by hand below
    iid = importer.submit(job)
    parts = store.read("SELECT part, text FROM import_csv WHERE import_id = ? ORDER BY part", (iid,))
    assert len(writes) == len(parts) + 1 == -(-len(job["csv"]) // 7) + 1
    assert "".join(t for _, t in parts) == job["csv"] and all(len(t) <= 7 for _, t in parts)
    assert "csv" not in json.loads(store.read_one("SELECT job FROM imports WHERE id = ?", (iid,))[0])
    del importer._ensure_worker
    importer._ensure_worker()
    done = _wait_done(importer, iid)
    assert done["status"] == "completed" and done["counts"]["total"] == 8
    assert store.read("SELECT * FROM import_csv") == []
    assert store.read("SELECT job FROM imports") == [(None,)]


def test_an_upload_reset_while_stored_is_dropped_and_a_killed_one_is_resumed(monkeypatch):
    from resend_iac.emulator import imports
    from resend_iac.emulator.store import Store

    monkeypatch.setattr(imports, "CSV_PART", 5)
    store = Store()
    importer = imports.Importer(store)
    job = imports.prepare(store, CSV_ROWS, {"on_conflict": "upsert"})
    real_write, calls = store.write, []

    def write():
        calls.append(1)
        if len(calls) == 3:  # a reset between two parts
            store.reset()
        return real_write()

    monkeypatch.setattr(store, "write", write)
    iid = importer.submit(job)
    monkeypatch.setattr(store, "write", real_write)
    assert store.read("SELECT * FROM imports") == [] and store.read("SELECT * FROM import_csv") == []
    with pytest.raises(Exception, match="not found"):
        importer.get(iid)

    # A server killed after storing an upload (queued), and one killed while storing one.
    importer._ensure_worker = lambda: None
    iid = importer.submit(job)
    with store.write() as c:
        c.execute("INSERT INTO import_csv (import_id, part, text) VALUES ('orphan', 0, 'x')")
    again = imports.Importer(store)
    again.resume()
    assert _wait_done(again, iid)["counts"] == {
        "total": 8,
        "created": 5,
        "updated": 2,
        "skipped": 0,
        "failed": 1,
    }
    assert store.read("SELECT * FROM import_csv") == []
