"""Broadcast-aware plans end to end (#21): ``resend-iac emulator --seed`` serves a team with a
scheduled broadcast to a segment, a draft that prints ``{{{company|x}}}`` and a sent one; the
CLI's plans against it over HTTP refuse or warn per docs/plan-apply.md (the sent one never),
and read the broadcasts only when the plan could affect one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.emulator.server import free_port

HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}
EMAILS = [f"p{i}@example.com" for i in range(4)]

BROADCASTS = [
    {
        "name": "December news",
        "segment": "newsletter",
        "topic": "news",
        "status": "scheduled",
        "scheduled_at": "in 12 hours",
        "html": "<p>Hello {{{FIRST_NAME|there}}}, news for {{{company|our customers}}}</p>",
    },
    {"name": "Welcome", "segment": "friends", "html": "<p>Hi from {{{company|x}}}</p>"},
    {
        "name": "November news",
        "segment": "newsletter",
        "topic": "news",
        "status": "sent",
        "html": "<p>{{{company}}}</p>",
    },
]


def team(
    *,
    fallback: str = "x",
    members: list[str] = EMAILS,
    segments: tuple[str, ...] = ("newsletter", "friends"),
    properties: bool = True,
    policy: dict | None = None,
    unsubscribe: str | None = None,
    broadcasts: list[dict] | None = None,
) -> dict:
    doc: dict = {"version": 1}
    if properties:
        doc["properties"] = {"company": {"type": "string", "fallback_value": fallback}}
    doc["segments"] = {name: {} for name in segments}
    doc["topics"] = {"news": {"default_subscription": "opt_in"}}
    contacts = []
    for email in EMAILS:
        c: dict = {"email": email, "first_name": email[:2].upper()}
        c["segments"] = [s for s in ("newsletter",) if s in segments and email in members]
        if email == EMAILS[0] and "friends" in segments:
            c["segments"].append("friends")
        if properties:
            c["properties"] = {"company": "Acme"}
        if email == unsubscribe:
            c["unsubscribed"] = True
            c["topics"] = {"news": "opt_out"}
        contacts.append(c)
    doc["contacts"] = contacts
    if policy:
        doc["policy"] = policy
    if broadcasts:
        doc["broadcasts"] = broadcasts
    return doc


def _serve(seed: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "resend_iac", "emulator", "--port", str(port), "--db", ":memory:"]
        + ["--rate-limit", "0", "--seed", str(seed)],
        cwd=seed.parent,  # seed files are read inside the working directory
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        try:
            if httpx.get(url + "/_emulator/stats", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the emulator did not start")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two seeded emulators: the team with its broadcasts, and the same team without."""
    where = tmp_path_factory.mktemp("broadcast-teams")
    started = []
    try:
        for name, bs in (("with", BROADCASTS), ("without", None)):
            seed = where / f"{name}.yaml"
            seed.write_text(yaml.safe_dump(team(broadcasts=bs), sort_keys=False))
            started.append(_serve(seed))
        yield {"with": started[0][1], "without": started[1][1]}
    finally:
        for proc, _ in started:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stderr.close()


def plan(url: str, tmp_path: Path, doc: dict, *args: str) -> tuple[dict, Counter, object]:
    """(the JSON plan, the requests it made by route, the CLI result of ``plan --format json``)."""
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = Counter(httpx.get(url + "/_emulator/stats").json()["by_route"])
    env = {"RESEND_API_KEY": "re_test", "RESEND_API_URL": url, "RESEND_IAC_RATE_LIMIT": "0", "NO_COLOR": "1"}
    result = CliRunner().invoke(
        main, ["plan", "--no-cache", "--format", "json", *args, str(path)], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    after = Counter(httpx.get(url + "/_emulator/stats").json()["by_route"])
    return json.loads(result.stdout), after - before, result


def by_name(data: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in data.get("broadcasts", []):
        out.setdefault(f["broadcast"]["name"], []).append(f)
    return out


def reads(requests: Counter) -> tuple[int, int]:
    return requests["GET /broadcasts"], requests["GET /broadcasts/{id}"]


def test_the_seeded_team_has_its_broadcasts(servers):
    items = httpx.get(servers["with"] + "/broadcasts", headers=HEADERS).json()["data"]
    assert {b["name"]: b["status"] for b in items} == {
        "December news": "scheduled",
        "Welcome": "draft",
        "November news": "sent",
    }
    assert httpx.get(servers["without"] + "/broadcasts", headers=HEADERS).json()["data"] == []


def test_deleting_the_segment_of_a_scheduled_broadcast_is_refused(servers, tmp_path):
    doc = team(segments=("friends",), policy={"prune_segments": True})
    data, requests, result = plan(servers["with"], tmp_path, doc)
    assert [(c["kind"], c["action"], c["key"]) for c in data["changes"] if c["kind"] == "segment"] == [
        ("segment", "delete", "newsletter")
    ]
    found = by_name(data)
    assert list(found) == ["December news"]  # the sent one: nothing
    (f,) = found["December news"]
    assert (f["level"], f["rule"], f["broadcast"]["status"]) == ("refuse", "segment", "scheduled")
    assert f["broadcast"]["scheduled_at"] and "scheduled for 20" in f["message"]
    assert "segment `newsletter`, which the plan deletes" in f["message"]
    assert "apply will refuse this plan without --force" in result.stderr
    assert "December news" in result.stderr
    assert reads(requests) == (1, 0)  # the list page; the list item says the segment
    _, without, _ = plan(servers["without"], tmp_path, doc)
    assert reads(without) == (1, 0) and sum(without.values()) == sum(requests.values())

    # apply refuses it, and changes nothing
    path = tmp_path / "team.yaml"
    env = {"RESEND_API_KEY": "re_test", "RESEND_API_URL": servers["with"], "RESEND_IAC_RATE_LIMIT": "0"}
    applied = CliRunner().invoke(main, ["apply", "--no-cache", "--auto-approve", str(path)], env=env)
    assert applied.exit_code == 1 and "Refusing to apply" in applied.stderr
    assert "broadcast 'December news' (scheduled for" in applied.stderr
    names = [s["name"] for s in httpx.get(servers["with"] + "/segments", headers=HEADERS).json()["data"]]
    assert "newsletter" in names


def test_deleting_a_printed_property(servers, tmp_path):
    doc = team(properties=False, policy={"prune_properties": True})
    data, requests, _ = plan(servers["with"], tmp_path, doc)
    found = by_name(data)
    assert set(found) == {"December news", "Welcome"}  # the sent one prints it too: nothing
    (scheduled,) = found["December news"]
    assert (scheduled["level"], scheduled["placeholder"]) == ("refuse", "{{{company|our customers}}}")
    (draft,) = found["Welcome"]
    assert (draft["level"], draft["rule"], draft["placeholder"]) == ("warn", "property", "{{{company|x}}}")
    assert (
        draft["message"]
        == "broadcast 'Welcome' (draft) prints {{{company|x}}}; the plan deletes property `company`"
    )
    assert "<p>" not in json.dumps(data)  # never the HTML
    assert reads(requests) == (1, 2)  # the list page, and the two pending broadcasts' HTML
    _, without, _ = plan(servers["without"], tmp_path, doc)
    assert reads(without) == (1, 0)
    assert sum(requests.values()) - sum(without.values()) == 2


def test_changing_the_fallback_of_a_printed_property_warns(servers, tmp_path):
    data, requests, result = plan(servers["with"], tmp_path, team(fallback="y"))
    found = by_name(data)
    assert set(found) == {"December news", "Welcome"}
    assert {f["level"] for fs in found.values() for f in fs} == {"warn"}
    assert "changes the fallback of property `company` from 'x' to 'y'" in found["Welcome"][0]["message"]
    assert "refuse" not in result.stderr
    assert reads(requests) == (1, 2)


def test_removing_members_of_a_segment_a_broadcast_is_scheduled_to_warns_with_counts(servers, tmp_path):
    data, requests, _ = plan(servers["with"], tmp_path, team(members=EMAILS[:3]))
    assert [c["action"] for c in data["changes"] if c["kind"] == "membership"] == ["delete"]
    found = by_name(data)
    assert list(found) == ["December news"]
    (f,) = found["December news"]
    assert (f["level"], f["rule"], f["removed"], f["members"]) == ("warn", "members", 1, 4)
    assert f["message"].startswith(
        "removes 1 of 4 members of `newsletter`, which 'December news' is scheduled to at "
    )
    assert reads(requests) == (1, 0)
    # a window shorter than the 12 hours to go: no warning
    data, _, _ = plan(
        servers["with"], tmp_path, team(members=EMAILS[:3], policy={"broadcast_window_hours": 6})
    )
    assert data.get("broadcasts", []) == []


def test_unsubscribes_and_opt_outs_are_never_warned_about_nor_read(servers, tmp_path):
    data, requests, _ = plan(servers["with"], tmp_path, team(unsubscribe=EMAILS[1]))
    assert {c["kind"] for c in data["changes"]} == {"contact", "subscription"}
    assert data.get("broadcasts", []) == []
    assert reads(requests) == (0, 0)
    _, without, _ = plan(servers["without"], tmp_path, team(unsubscribe=EMAILS[1]))
    assert without == requests  # no extra request at all


def test_text_and_markdown_show_the_section_and_redaction_keeps_names(servers, tmp_path):
    doc = team(properties=False, policy={"prune_properties": True})
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {"RESEND_API_KEY": "re_test", "RESEND_API_URL": servers["with"], "RESEND_IAC_RATE_LIMIT": "0"}
    env["NO_COLOR"] = "1"
    text = CliRunner().invoke(main, ["plan", "--no-cache", str(path)], env=env).stdout
    assert "Broadcasts this plan affects: (apply refuses 1 without --force)" in text
    assert "  x refused: broadcast 'December news' (scheduled for" in text
    assert "  ! broadcast 'Welcome' (draft) prints {{{company|x}}}" in text
    md = CliRunner().invoke(
        main, ["plan", "--no-cache", "--format", "markdown", "--redact", str(path)], env=env
    )
    body = md.stdout
    assert body.index("### Broadcasts this plan affects") < body.index("### property")
    assert "**apply refuses this plan without `--force`**" in body and "Welcome" in body
    assert "p0@example.com" not in body and "<p>" not in body and "Acme" not in body
