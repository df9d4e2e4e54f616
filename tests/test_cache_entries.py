"""The refresh cache's entries at every boundary (engine/cache.py): what a later plan relies on
to serve a contact from the cache only when live still holds exactly what was read."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from resend_iac.engine.cache import DEFAULT_PATH, ENV_VAR, CacheError, RefreshCache, cache_path, holds

# A cache file as this format (schema 1) writes it, for the key "re_golden" and a fixed salt:
# the digests of contact "c1"'s values of property "p1" and of its subscriptions to topic "t1".
# A cache filled by an earlier run must keep serving after an upgrade that keeps the format
# (and a format change must bump the schema, which empties the file instead of misreading it).
GOLDEN_SALT = bytes(range(32))
GOLDEN_CHECK = bytes.fromhex("93c9b6be2f311cba13fd3b484fc54059")
GOLDEN_PROPS = {
    "none": (None, "5f27642520c641971e709bfe192a18e9"),
    "empty": ("", "40b1d31cdcd462f71f58588a5f382cf4"),
    "text": ("pro", "7b7f202b29abf3cf0ea3d3431db14056"),
    "true": (True, "6a509e981cc736b0079c2729872e16dd"),
    "false": (False, "ee2d110160124e4e5c47d022e3bfa6c6"),
    "int": (5, "aca501648af0f831cf13807bf98f8f5b"),
    "float": (2.5, "5370a95a2b677d6d0cb190face268275"),
    "object": ({"b": 1, "a": "é"}, "33dae35acd2a0e6795d54893110a07e3"),
    "list": ([1, "x"], "e2fd72b543a9bfbddb731fda75dc7f0d"),
}
GOLDEN_TOPICS = {
    None: "c1b05b7d342f1d068d1bda42edaa5ac6",
    "opt_in": "1c5f1c806d6f81f23028edea52989395",
    "opt_out": "ccd8c52e1624f25ddd465098dbb1c721",
}


def golden_file(path, *, schema=b"1"):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE contacts (id TEXT PRIMARY KEY, props BLOB, topics BLOB, verified_at REAL NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("schema", schema), ("salt", GOLDEN_SALT), ("check", GOLDEN_CHECK)]
    )
    props = b"".join(sorted(bytes.fromhex(h) for _, h in GOLDEN_PROPS.values()))
    topics = b"".join(sorted(bytes.fromhex(h) for h in GOLDEN_TOPICS.values()))
    conn.execute("INSERT INTO contacts VALUES ('c1', ?, ?, 1700000000.0)", (props, topics))
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("name", sorted(GOLDEN_PROPS))
def test_a_cache_written_earlier_in_this_format_still_serves_every_kind_of_value(tmp_path, name):
    cache = RefreshCache.open(golden_file(tmp_path / "c.sqlite"), "re_golden")
    entry = cache.entries["c1"]
    assert entry.verified_at == 1700000000.0
    value, _ = GOLDEN_PROPS[name]
    assert holds(entry.props, cache.prop_digest("c1", "p1", value))
    # the same value of another contact or another property is not in the entry
    assert not holds(entry.props, cache.prop_digest("c2", "p1", value))
    assert not holds(entry.props, cache.prop_digest("c1", "p2", value))
    for subscription in GOLDEN_TOPICS:
        assert holds(entry.topics, cache.topic_digest("c1", "t1", subscription))
    assert not holds(entry.topics, cache.topic_digest("c1", "t2", "opt_in"))


def test_a_cache_of_another_format_version_is_emptied_not_misread(tmp_path):
    cache = RefreshCache.open(golden_file(tmp_path / "c.sqlite", schema=b"0"), "re_golden")
    assert cache.entries == {}


def test_values_are_compared_as_the_values_they_are(tmp_path):
    cache = RefreshCache.open(tmp_path / "c.sqlite", "re_k")

    def d(value):
        return cache.prop_digest("c1", "p1", value)

    assert d(5) == d(5.0)  # whole-number floats are the ints they equal (5 == 5.0 on the wire)
    assert d(-3) == d(-3.0) and d(0) == d(0.0)
    assert len({d(5.0), d(6.0), d(5.5), d(50.0), d(-5.0)}) == 5  # and not all alike
    assert len({d(1), d(True), d("1"), d(1.5)}) == 4
    assert len({d(0), d(False), d(None), d(""), d("0"), d([]), d({})}) == 7
    assert d({"a": 1, "b": "é"}) == d({"b": "é", "a": 1})  # an object's key order does not matter
    assert d({"a": 1}) != d({"a": 2}) and d([1, 2]) != d([2, 1])


def test_a_digest_is_found_wherever_it_sits_but_never_across_two(tmp_path):
    cache = RefreshCache.open(tmp_path / "c.sqlite", "re_k")
    one, two = cache.prop_digest("c1", "p1", "a"), cache.prop_digest("c1", "p2", "b")
    cache.put([("c1", [one, two], None)])
    blob = cache.entries["c1"].props
    assert holds(blob, one) and holds(blob, two)
    straddling = blob[8:24]  # the end of one stored digest and the start of the next
    assert not holds(blob, straddling)
    assert not holds(blob, blob[1:17]) and not holds(blob, blob[15:31])
    # a match across two digests before the real one further on is skipped, not taken as the answer
    first, second = b"\0" * 15 + b"a", b"a" * 16
    assert holds(first + second, second)
    assert holds(first + second + b"b" * 16, b"b" * 16)
    assert not holds(first + b"b" * 16, second)


def test_entries_are_written_through_and_dropped_for_good(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = RefreshCache.open(path, "re_k")
    d = cache.prop_digest("a", "p", "x")
    cache.put([("a", [d], None), ("b", None, [d]), ("c", [], [])], at=1000.0)
    cache.close()
    again = RefreshCache.open(path, "re_k")
    assert sorted(again.entries) == ["a", "b", "c"]
    assert again.entries["a"].props == d and again.entries["a"].topics is None
    assert again.entries["b"].props is None and again.entries["b"].topics == d
    assert again.entries["c"].props == b"" and again.entries["c"].verified_at == 1000.0

    assert again.drop(["a", "missing", ""]) == 1
    assert again.drop(["a"]) == 0  # already gone
    assert sorted(again.entries) == ["b", "c"]
    assert sorted(RefreshCache.open(path, "re_k").entries) == ["b", "c"]  # gone from the file too

    assert again.keep_only(["c", "not-cached"]) == 1
    assert sorted(RefreshCache.open(path, "re_k").entries) == ["c"]
    assert again.keep_only([]) == 1
    assert RefreshCache.open(path, "re_k").entries == {}


def test_a_put_is_stamped_with_the_time_of_the_read(tmp_path):
    import time

    cache = RefreshCache.open(tmp_path / "c.sqlite", "re_k")
    before = time.time()
    cache.put([("a", None, None)])
    assert before <= cache.entries["a"].verified_at <= time.time()
    cache.put([])  # nothing to write is not an error
    assert list(cache.entries) == ["a"]


def test_rows_are_served_at_the_edges_of_the_times_accepted(tmp_path):
    path = tmp_path / "c.sqlite"
    RefreshCache.open(path, "re_k").close()
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO contacts VALUES (?, NULL, NULL, ?)",
        [("epoch", 0), ("int-time", 1700000000), ("last", 1e11 - 1), ("too-late", 1e11), ("before", -0.5)],
    )
    conn.commit()
    conn.close()
    assert sorted(RefreshCache.open(path, "re_k").entries) == ["epoch", "int-time", "last"]


def test_the_cache_file_is_made_owner_only_in_a_new_directory(tmp_path):
    path = tmp_path / "deep" / "er" / "c.sqlite"
    RefreshCache.open(path, "re_k").close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_same_key_keeps_the_entries_and_another_key_empties_them(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = RefreshCache.open(path, "re_one")
    cache.put([("a", None, None)])
    cache.close()
    assert list(RefreshCache.open(path, "re_one").entries) == ["a"]
    assert RefreshCache.open(path, "re_two").entries == {}
    assert RefreshCache.open(path, "re_one").entries == {}  # emptied for good, not hidden


def test_a_closed_cache_is_not_written_silently(tmp_path):
    cache = RefreshCache.open(tmp_path / "c.sqlite", "re_k")
    cache.close()
    with pytest.raises(CacheError, match="--no-cache"):
        cache.put([("a", None, None)])


def test_which_cache_file_is_used(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert cache_path(None, False) == DEFAULT_PATH == ".resend-iac/cache.sqlite"
    assert cache_path("mine.sqlite", False) == "mine.sqlite"
    monkeypatch.setenv("RESEND_IAC_CACHE", "env.sqlite")
    assert cache_path(None, False) == "env.sqlite"
    assert cache_path("mine.sqlite", False) == "mine.sqlite"
    assert cache_path("mine.sqlite", True) is None


def test_an_in_memory_cache_leaves_no_file_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = RefreshCache.open(":memory:", "re_k")
    cache.put([("a", None, None)])
    assert list(cache.entries) == ["a"]
    cache.close()
    assert list(tmp_path.iterdir()) == []


def test_a_cache_damaged_inside_is_moved_aside_and_a_new_one_used(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = RefreshCache.open(path, "re_k")
    cache.put([(f"id-{i}", [bytes(16)], None) for i in range(2000)])  # several pages
    cache.close()
    with open(path, "r+b") as f:  # a page header overwritten: SQLite's integrity check fails
        f.seek(3 * 4096)
        f.write(b"\xff" * 200)
    again = RefreshCache.open(path, "re_k")
    (warning,) = again.warnings
    assert "corrupt (integrity check: " in warning and f"{path}.corrupt" in warning
    assert again.entries == {} and (tmp_path / "c.sqlite.corrupt").exists()
    again.put([("a", None, None)])
    assert list(RefreshCache.open(path, "re_k").entries) == ["a"]
