"""The refresh cache and the --refresh policy (engine/cache.py, engine/live.py), end to end:
the CLI against an emulator server over HTTP, out-of-band changes made through the API."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.client import SyncResendClient

KEY = "re_test_key"


@pytest.fixture
def remote(request, emulator_server, start_emulator, monkeypatch, tmp_path):
    """The shared (benign) emulator server; parametrize with "hostile" (indirect) for a server
    of the hostile profile (docs/emulator.md), for the tests that guard consent."""
    server = emulator_server
    if getattr(request, "param", "benign") == "hostile":
        server = start_emulator(db_path=":memory:", rate_limit=0, unknowns="hostile")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", KEY)
    monkeypatch.setenv("RESEND_API_URL", server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    monkeypatch.setenv("RESEND_IAC_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("NO_COLOR", "1")
    return server


def run(*args: object, ok: tuple[int, ...] = (0, 2)):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code in ok, result.output
    return result


def write_team(
    path: Path,
    n: int,
    *,
    tier: dict[int, str] | None = None,
    news: dict[int, str] | None = None,
    props: bool = True,
    topics: bool = True,
) -> Path:
    contacts = []
    for i in range(n):
        c: dict = {"email": f"person{i:04d}@zq-example.org", "first_name": f"Quetzal{i:04d}"}
        if props:
            c["properties"] = {"tier": (tier or {}).get(i, f"tierval-{i % 3}")}
        if topics:
            c["topics"] = {"news": (news or {}).get(i, "opt_in")}
        contacts.append(c)
    doc = {
        "version": 1,
        "properties": {"tier": {"type": "string"}},
        "topics": {"news": {"default_subscription": "opt_in"}},
        "contacts": contacts,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def plan(path: Path, *flags: object) -> dict:
    return json.loads(run("plan", path, "--format", "json", *flags).output)


def api(server) -> SyncResendClient:
    return SyncResendClient(KEY, server.url, rate_limit=None)


def contact_id(client: SyncResendClient, email: str) -> str:
    return client.get_contact(email)["id"]


def topic_id(client: SyncResendClient, name: str) -> str:
    return next(t["id"] for t in client.list_topics() if t["name"] == name)


def changes(p: dict, kind: str) -> list[dict]:
    return [c for c in p["changes"] if c["kind"] == kind]


@pytest.fixture
def warm(remote, tmp_path):
    """A team of 6 applied, and one plan that filled the cache."""
    path = write_team(tmp_path / "team.yaml", 6)
    run("apply", path, "--auto-approve")
    first = plan(path)
    assert first["freshness"]["read_now"] == 6
    second = plan(path, "--refresh-budget", 0)
    assert second["changes"] == [] and second["freshness"]["from_cache"] == 6
    assert second["freshness"]["read_now"] == 0
    return path


def test_changed_out_of_band_and_in_the_files_shows_the_live_value_it_overwrites(warm, remote):
    with api(remote) as c:
        c.update_contact("person0001@zq-example.org", {"properties": {"tier": "changed-live"}})
    write_team(warm, 6, tier={1: "changed-in-files"})
    p = plan(warm, "--refresh-budget", 0)
    [update] = changes(p, "contact")
    assert update["before"] == {"properties": {"tier": "changed-live"}}
    assert update["after"] == {"properties": {"tier": "changed-in-files"}}
    assert p["freshness"]["read_now"] == 1 and p["freshness"]["from_cache"] == 5


def test_deleted_and_recreated_out_of_band_is_read_not_served_from_the_cache(warm, remote):
    email = "person0002@zq-example.org"
    with api(remote) as c:
        old = contact_id(c, email)
        c.delete_contact(old)
        c.create_contact(
            {"email": email, "first_name": "Quetzal0002", "properties": {"tier": "recreated-value"}}
        )
        assert contact_id(c, email) != old
    p = plan(warm, "--refresh-budget", 0)
    [update] = changes(p, "contact")
    assert update["key"] == email and update["before"] == {"properties": {"tier": "recreated-value"}}
    assert p["freshness"]["read_now"] == 1


@pytest.mark.parametrize("remote", ["benign", "hostile"], indirect=True)
@pytest.mark.parametrize("cache_flag", ["--no-cache", "--refresh-budget=0"])
def test_opted_out_out_of_band_is_never_resubscribed(warm, remote, cache_flag):
    with api(remote) as c:
        c.update_contact_topics(
            "person0003@zq-example.org", [{"id": topic_id(c, "news"), "subscription": "opt_out"}]
        )
        c.update_contact("person0004@zq-example.org", {"unsubscribed": True})
    write_team(warm, 6)  # the files still say opt_in (and, implicitly, nothing about unsubscribed)
    p = plan(warm, cache_flag)
    assert changes(p, "subscription") == []
    if cache_flag == "--no-cache":
        assert any("person0003@zq-example.org" in w and "opted out" in w for w in p["warnings"])
    else:  # served from the cache: the drift is not seen (nor written over) until read
        assert p["freshness"]["from_cache"] == 6
    # the same contact changed in the files: read now, so the opt-out is seen and kept
    write_team(warm, 6, tier={3: "changed-in-files"})
    p = plan(warm, cache_flag)
    assert changes(p, "subscription") == []
    assert any("person0003@zq-example.org" in w and "opted out" in w for w in p["warnings"])
    run("apply", warm, "--auto-approve", cache_flag)
    with api(remote) as c:
        subs = {t["id"]: t["subscription"] for t in c.list_contact_topics("person0003@zq-example.org")}
        assert subs[topic_id(c, "news")] == "opt_out"
        assert c.get_contact("person0004@zq-example.org")["unsubscribed"] is True
    # and the declared unsubscribed: false never flips it, warm cache or not
    doc = yaml.safe_load(warm.read_text())
    doc["contacts"][4]["unsubscribed"] = False
    warm.write_text(yaml.safe_dump(doc))
    p = plan(warm, cache_flag)
    assert changes(p, "contact") == [] and any("person0004" in w for w in p["warnings"])


def test_out_of_band_drift_found_by_full_at_once_and_by_rotation_within_ceil_managed_over_budget(
    warm, remote
):
    managed, budget = 6, 2
    # the entry verified last in the rotation order (oldest first, then by email)
    email = "person0005@zq-example.org"
    with api(remote) as c:
        c.update_contact(email, {"properties": {"tier": "drifted"}})
    assert changes(plan(warm, "--refresh-budget", 0), "contact") == []  # the cache vouches: not seen
    full = plan(warm, "--refresh", "full", "--no-cache")
    assert [c["key"] for c in changes(full, "contact")] == [email]
    assert full["freshness"]["refresh"] == "full" and full["freshness"]["read_now"] == managed
    found_at = None
    for i in range(1, math.ceil(managed / budget) + 1):
        p = plan(warm, "--refresh-budget", budget)
        assert p["freshness"]["read_now"] == budget
        if changes(p, "contact"):
            found_at = i
            break
    assert found_at is not None and found_at == math.ceil(managed / budget)
    # once read, the drift is seen by every plan after (no entry vouches for it any more)
    assert [c["key"] for c in changes(plan(warm, "--refresh-budget", 0), "contact")] == [email]
    # and full with the cache finds it too
    assert [c["key"] for c in changes(plan(warm, "--refresh", "full"), "contact")] == [email]


def test_the_cache_file_holds_no_email_name_or_value(warm, remote, tmp_path):
    run("export", "--out", tmp_path / "export.yaml")  # export writes the cache too
    data = (tmp_path / "cache.sqlite").read_bytes()
    assert len(data) > 0
    for needle in (
        b"zq-example",
        b"person000",
        b"Quetzal",
        b"tierval",
        b"opt_in",
        b"opt_out",
        b"news",
        b"tier",
        KEY.encode(),
    ):
        assert needle not in data, needle


def test_a_cache_made_against_one_team_used_against_another_gives_a_correct_plan(
    warm, remote, start_emulator, monkeypatch, tmp_path
):
    other = start_emulator(db_path=":memory:", rate_limit=0)
    monkeypatch.setenv("RESEND_API_URL", other.url)
    # the other team: the same emails, other values
    team_b = write_team(tmp_path / "b.yaml", 6, tier={i: "team-b" for i in range(6)})
    run("apply", team_b, "--auto-approve", "--no-cache")
    p = plan(warm, "--refresh-budget", 0)  # team A's files and warm cache, against team B
    assert len(changes(p, "contact")) == 6
    assert all(c["before"] == {"properties": {"tier": "team-b"}} for c in changes(p, "contact"))
    assert p["freshness"]["from_cache"] == 0
    # another API key for the same file: its entries are useless and dropped
    monkeypatch.setenv("RESEND_API_URL", remote.url)
    (tmp_path / "key").write_text("re_another_key\n")
    p = plan(warm, "--refresh-budget", 0, "--api-key-file", tmp_path / "key")
    assert p["freshness"]["from_cache"] == 0 and p["changes"] == []


def test_apply_drops_the_entries_of_what_it_writes_and_a_saved_plan_verifies(warm, remote, tmp_path):
    write_team(warm, 6, tier={0: "new-value"})
    out = tmp_path / "plan.json"
    run("plan", warm, "--refresh-budget", 0, "--out", out)
    p = json.loads(out.read_text())
    assert p["freshness"]["from_cache"] == 5 and len(p["changes"]) == 1
    run("apply", "--plan", out, "--auto-approve")
    after = plan(warm, "--refresh-budget", 0)
    assert after["changes"] == [] and after["freshness"]["read_now"] == 1  # the written one: re-read


def _requests(remote) -> int:
    return remote.stats()["total"]


def test_request_count_warm_no_op_and_drift(remote, tmp_path):
    n = 300
    path = write_team(tmp_path / "team.yaml", n)
    run("apply", path, "--auto-approve")
    floor_file = write_team(tmp_path / "floor.yaml", n, props=False, topics=False)
    remote.reset_stats() if hasattr(remote, "reset_stats") else None
    before = _requests(remote)
    plan(floor_file)
    floor = _requests(remote) - before
    cold_before = _requests(remote)
    plan(path, "--refresh-budget", 0)
    cold = _requests(remote) - cold_before
    assert cold >= floor + 2 * n
    warm_before = _requests(remote)
    p = plan(path, "--refresh-budget", 0)
    warm = _requests(remote) - warm_before
    assert p["changes"] == [] and p["freshness"]["from_cache"] == n
    assert warm <= floor + 5, (warm, floor)
    changed = 3  # 1%
    write_team(path, n, tier={i * 97: "drift" for i in range(changed)})
    drift_before = _requests(remote)
    p = plan(path, "--refresh-budget", 0)
    drift = _requests(remote) - drift_before
    assert len(changes(p, "contact")) == changed
    assert drift <= floor + 2 * changed + 5, (drift, floor)


def test_a_cache_file_that_is_not_one_is_moved_aside_with_a_warning(remote, tmp_path):
    """Issue 18: a damaged cache no longer fails every plan (tests/test_cache_and_export.py has
    the other kinds of damage); one that cannot be opened at all is still a clear error."""
    path = write_team(tmp_path / "team.yaml", 2)
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database\n")
    result = CliRunner().invoke(main, ["plan", str(path), "--cache", str(bad)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "moved it aside" in result.output
    assert (tmp_path / "bad.sqlite.corrupt").read_text() == "not a database\n"
    result = CliRunner().invoke(main, ["plan", str(path), "--cache", str(tmp_path)])  # a directory
    assert result.exit_code == 1 and "--no-cache" in result.output
    assert "Traceback" not in result.output


def test_cache_rows_of_another_shape_are_ignored(tmp_path):
    import sqlite3

    from resend_iac.engine.cache import RefreshCache

    cache = RefreshCache.open(tmp_path / "c.sqlite", "re_k")
    cache.put([("id-1", [b"x" * 16], None)])
    cache.close()
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.execute("INSERT INTO contacts VALUES ('id-2', 'text', NULL, 'yesterday')")
    conn.execute("INSERT INTO contacts VALUES ('id-3', NULL, NULL, 1e300)")
    conn.execute("INSERT INTO contacts VALUES ('id-4', NULL, NULL, -5)")
    conn.commit()
    conn.close()
    again = RefreshCache.open(tmp_path / "c.sqlite", "re_k")
    assert set(again.entries) == {"id-1"}
    assert set(RefreshCache.open(tmp_path / "c.sqlite", "re_other").entries) == set()  # another key: emptied


def test_a_property_re_created_out_of_band_is_read_not_served(warm, remote):
    with api(remote) as c:
        pid = next(p["id"] for p in c.list_properties() if p["key"] == "tier")
        c.delete_property(pid)  # Resend drops its values on every contact
        c.create_property({"key": "tier", "type": "string"})
    p = plan(warm, "--refresh-budget", 0)
    assert p["freshness"]["from_cache"] == 0
    assert len(changes(p, "contact")) == 6
    assert all(c["before"] == {"properties": {"tier": None}} for c in changes(p, "contact"))


def test_the_pulumi_contact_list_plans_through_the_same_entry_point_and_cache(remote, tmp_path, monkeypatch):
    pytest.importorskip("pulumi")
    import asyncio

    from resend_iac.client import ResendClient
    from resend_iac.config import load
    from resend_iac.pulumi import providers

    monkeypatch.setenv("RESEND_IAC_REFRESH_BUDGET", "0")
    path = write_team(tmp_path / "team.yaml", 4)
    run("apply", path, "--auto-approve")
    desired = load([path])

    async def plan_once():
        async with ResendClient(KEY, remote.url, rate_limit=None) as client:
            plan, _ = await providers._plan(client, desired)
            return plan

    first, second = asyncio.run(plan_once()), asyncio.run(plan_once())
    assert first.freshness["read_now"] == 4 and second.freshness["from_cache"] == 4
    assert first.empty and second.empty
    monkeypatch.setenv("RESEND_IAC_CACHE", "none")
    assert asyncio.run(plan_once()).freshness["cache"] is False


def test_the_freshness_line_in_text_markdown_and_json():
    from resend_iac.engine import Plan
    from resend_iac.render import render_json, render_markdown, render_text

    fresh = {
        "refresh": "auto",
        "budget": 100,
        "cache": True,
        "read_now": 12,
        "from_cache": 9988,
        "oldest_verified": "2026-11-29T03:17:40Z",
    }
    plan = Plan(fingerprint="sha256:" + "0" * 64, freshness=fresh)
    for text in (render_text(plan), render_markdown(plan)):
        assert "12 read now" in text and "9,988 from the refresh cache" in text
        assert "2026-11-29T03:17:40Z" in text and "refresh full" in text
    assert json.loads(render_json(plan))["freshness"] == fresh
    assert json.loads(render_json(plan, redact=True))["freshness"] == fresh
    assert Plan.from_dict(plan.to_dict()).freshness == fresh
    full = Plan(freshness=dict(fresh, refresh="full", read_now=10000, from_cache=0, oldest_verified=None))
    assert "10,000 read now (--refresh full)" in render_text(full)
    assert "freshness" not in Plan().to_dict() and "Contact details" not in render_text(Plan())


def test_a_cache_of_another_schema_is_a_clear_error(tmp_path):
    import sqlite3

    from resend_iac.engine.cache import CacheError, RefreshCache

    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.execute("CREATE TABLE contacts (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="--no-cache"):
        RefreshCache.open(tmp_path / "c.sqlite", "re_k")


def test_a_cache_that_cannot_be_written_stops_before_any_write(warm, remote, monkeypatch):
    """A cache write that fails (e.g. dropping the entries of what apply writes: a stale entry
    could later vouch for a value apply overwrote) stops with a clear error, nothing written."""
    import sqlite3

    from resend_iac.engine.cache import RefreshCache

    class ReadOnly:
        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def __enter__(self):
            return self.conn.__enter__()

        def __exit__(self, *exc):
            return self.conn.__exit__(*exc)

        def executemany(self, *args):
            raise sqlite3.OperationalError("attempt to write a readonly database")

    real_open = RefreshCache.open.__func__

    def open_read_only(cls, path, secret):
        cache = real_open(cls, path, secret)
        cache.conn = ReadOnly(cache.conn)
        return cache

    monkeypatch.setattr(RefreshCache, "open", classmethod(open_read_only))
    write_team(warm, 6, tier={0: "new-value"})
    result = CliRunner().invoke(main, ["apply", str(warm), "--auto-approve", "--refresh-budget", "0"])
    assert result.exit_code == 1 and "cannot write the refresh cache" in result.output
    assert "Traceback" not in result.output
    with api(remote) as c:
        assert c.get_contact("person0000@zq-example.org")["properties"]["tier"]["value"] != "new-value"
