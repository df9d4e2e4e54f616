"""Issue 23 items 8-9 and renames in place: ``renamed_from`` on topics and segments (id,
members and subscriptions kept), the clear error for properties, and the plan counting what a
destructive change drops (property values, segment members, subscriptions), with safety
refusing lost values without --force. Against the emulator in-process, both profiles."""

from __future__ import annotations

import pytest

from resend_iac import config
from resend_iac.cli.target import client_for_app
from resend_iac.emulator import create_app
from resend_iac.engine import SafetyError, check_safety
from resend_iac.engine import apply as engine_apply
from resend_iac.engine.live import plan_live
from resend_iac.engine.planfile import load_plan, save_plan
from resend_iac.render import render_markdown, render_text

pytestmark = pytest.mark.anyio

PROFILES = ["benign", "hostile"]


def write(tmp_path, text: str, name: str = "team.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


async def plan_for(client, path):
    desired = config.load([path])
    plan, live = await plan_live(client, desired)
    return plan, live, desired


async def plan_and_apply(client, path, *, force: bool = False):
    plan, live, desired = await plan_for(client, path)
    check_safety(plan, desired.policy, force=force)
    await engine_apply(plan, client, live=live)
    return plan


@pytest.fixture(params=PROFILES)
async def client(request):
    app = create_app(":memory:", rate_limit=0, unknowns=request.param)
    async with client_for_app(app) as c:
        yield c


async def topic_ids(client) -> dict[str, str]:
    return {t["name"]: t["id"] for t in await client.list_topics()}


async def segment_ids(client) -> dict[str, str]:
    return {s["name"]: s["id"] for s in await client.list_segments()}


async def subs(client, email: str) -> dict[str, str]:
    names = {v: k for k, v in (await topic_ids(client)).items()}
    return {names[t["id"]]: t["subscription"] for t in await client.list_contact_topics(email)}


# ----------------------------------------------------------------------------- config


def test_renamed_from_on_a_property_is_a_clear_error_at_file_line(tmp_path):
    path = write(
        tmp_path,
        "version: 1\nproperties:\n  plan_name:\n    type: string\n    renamed_from: plan\n",
    )
    result = config.read([path])
    assert result.state is None
    [d] = result.diagnostics
    assert str(d).startswith(f"{path}:5:")
    assert "a property cannot be renamed" in d.message and "copy the values" in d.message


def test_renamed_from_loads_on_topics_and_segments(tmp_path):
    path = write(
        tmp_path,
        "version: 1\ntopics:\n  product-news:\n    renamed_from: product-updates\n"
        "segments:\n  customers:\n    renamed_from: clients\n",
    )
    state = config.load([path])
    assert state.topics["product-news"].renamed_from == "product-updates"
    assert state.segments["customers"].renamed_from == "clients"


@pytest.mark.parametrize(
    "text, line, wording",
    [
        (
            "version: 1\nsegments:\n  a:\n    renamed_from: old\n  b:\n    renamed_from: old\n",
            6,
            "segment 'old' is already renamed to 'a'",
        ),
        ("version: 1\ntopics:\n  a:\n    renamed_from: a\n", 4, "renamed_from names the topic itself"),
        ("version: 1\ntopics:\n  a:\n    renamed_from: ' old'\n", 4, "must be the topic's old name, trimmed"),
    ],
)
def test_bad_renamed_from_is_refused_where_it_is(tmp_path, text, line, wording):
    path = write(tmp_path, text)
    result = config.read([path])
    assert result.state is None
    assert any(str(d).startswith(f"{path}:{line}:") and wording in d.message for d in result.diagnostics), [
        str(d) for d in result.diagnostics
    ]


# ----------------------------------------------------------------------------- renames


async def test_topic_rename_in_place_keeps_id_and_every_opt_out(client, tmp_path):
    before = (
        "version: 1\ntopics:\n  product-updates:\n    default_subscription: opt_in\n"
        "contacts:\n  - email: alice@example.com\n    topics: {product-updates: opt_in}\n"
        "  - email: bob@example.com\n"
    )
    await plan_and_apply(client, write(tmp_path, before))
    tid = (await topic_ids(client))["product-updates"]
    # bob's own action: he opts out
    await client.update_contact_topics("bob@example.com", [{"id": tid, "subscription": "opt_out"}])
    after = (
        "version: 1\npolicy: {prune_topics: true}\ntopics:\n  product-news:\n"
        "    renamed_from: product-updates\n    description: News\n"
        "contacts:\n  - email: alice@example.com\n    topics: {product-news: opt_in}\n"
        "  - email: bob@example.com\n    topics: {product-news: opt_in}\n"
    )
    path = write(tmp_path, after)
    plan, _, _ = await plan_for(client, path)
    [change] = [c for c in plan.changes if c.kind == "topic"]
    assert (change.action, change.key, change.id) == ("update", "product-news", tid)
    assert change.before == {"name": "product-updates", "description": None}
    assert change.after == {"name": "product-news", "description": "News"}
    assert not [c for c in plan.changes if c.kind == "subscription"], plan.changes  # bob left: kept
    text = render_text(plan)
    assert "~ topic product-updates → product-news" in text
    assert 'description: null -> "News"' in text
    await plan_and_apply(client, path)
    assert await topic_ids(client) == {"product-news": tid}
    assert await subs(client, "bob@example.com") == {"product-news": "opt_out"}
    assert await subs(client, "alice@example.com") == {"product-news": "opt_in"}
    again, _, _ = await plan_for(client, path)
    assert again.empty, again.changes


async def test_segment_rename_in_place_keeps_id_and_members_added_outside(client, tmp_path):
    before = (
        "version: 1\nsegments:\n  beta:\n    membership: additive\n"
        "contacts:\n  - email: alice@example.com\n    segments: [beta]\n  - email: carol@example.com\n"
    )
    await plan_and_apply(client, write(tmp_path, before))
    sid = (await segment_ids(client))["beta"]
    await client.add_contact_segment("carol@example.com", sid)  # added outside the files
    after = (
        "version: 1\npolicy: {prune_segments: true}\nsegments:\n  beta-testers:\n"
        "    membership: additive\n    renamed_from: beta\n"
        "contacts:\n  - email: alice@example.com\n    segments: [beta-testers]\n  - email: carol@example.com\n"
    )
    path = write(tmp_path, after)
    plan, _, _ = await plan_for(client, path)
    assert [(c.action, c.kind, c.key, c.id) for c in plan.changes] == [
        ("update", "segment", "beta-testers", sid)
    ]
    assert "~ segment beta → beta-testers" in render_text(plan)
    assert "~ segment beta → beta-testers" in render_markdown(plan)
    await plan_and_apply(client, path)
    assert await segment_ids(client) == {"beta-testers": sid}
    members = {c["email"] for c in await client.list_segment_contacts(sid)}
    assert members == {"alice@example.com", "carol@example.com"}
    again, _, _ = await plan_for(client, path)
    assert again.empty, again.changes


async def test_rename_then_re_add_the_old_name_makes_two_topics(client, tmp_path):
    await plan_and_apply(client, write(tmp_path, "version: 1\ntopics:\n  old: {}\n"))
    tid = (await topic_ids(client))["old"]
    path = write(tmp_path, "version: 1\ntopics:\n  new:\n    renamed_from: old\n  old: {}\n")
    plan, _, _ = await plan_for(client, path)
    assert sorted((c.action, c.key) for c in plan.changes) == [("create", "old"), ("update", "new")]
    await plan_and_apply(client, path)
    ids = await topic_ids(client)
    assert ids["new"] == tid and ids["old"] != tid and len(ids) == 2
    assert (await plan_for(client, path))[0].empty


async def test_rename_with_both_names_live_is_not_done_and_says_so(client, tmp_path):
    await plan_and_apply(client, write(tmp_path, "version: 1\nsegments:\n  a: {}\n  b: {}\n"))
    plan, _, _ = await plan_for(client, write(tmp_path, "version: 1\nsegments:\n  b:\n    renamed_from: a\n"))
    assert plan.empty
    assert any("both are live: not renamed" in w for w in plan.warnings)


async def test_rename_plan_file_round_trips_and_applies(client, tmp_path):
    await plan_and_apply(
        client,
        write(
            tmp_path,
            "version: 1\nsegments:\n  a: {}\ncontacts:\n  - email: x@example.com\n    segments: [a]\n",
        ),
    )
    sid = (await segment_ids(client))["a"]
    path = write(
        tmp_path,
        "version: 1\nsegments:\n  b:\n    renamed_from: a\ncontacts:\n"
        "  - email: x@example.com\n    segments: [b]\n  - email: y@example.com\n    segments: [b]\n",
    )
    plan, _, _ = await plan_for(client, path)
    save_plan(plan, tmp_path / "plan.json")
    loaded = load_plan(tmp_path / "plan.json")
    assert [c.to_dict() for c in loaded.changes] == [c.to_dict() for c in plan.changes]
    await engine_apply(loaded, client)  # no live state: ids from the lists and the rename
    assert await segment_ids(client) == {"b": sid}
    members = {c["email"] for c in await client.list_segment_contacts(sid)}
    assert members == {"x@example.com", "y@example.com"}


# ----------------------------------------------------------------------------- losses


async def test_segment_delete_counts_its_members(client, tmp_path):
    await plan_and_apply(
        client,
        write(
            tmp_path,
            "version: 1\nsegments:\n  gone: {}\ncontacts:\n"
            "  - emails: [a@example.com, b@example.com, c@example.com]\n    segments: [gone]\n",
        ),
    )
    path = write(tmp_path, "version: 1\npolicy: {prune_segments: true}\n")
    plan, _, _ = await plan_for(client, path)
    [change] = plan.changes
    assert (change.action, change.kind, change.loses) == ("delete", "segment", {"members": 3})
    assert "- segment gone (3 members removed with it)" in render_text(plan)


async def seed_values(client, tmp_path, n: int = 12):
    emails = [f"p{i:02d}@example.com" for i in range(n)]
    await plan_and_apply(
        client,
        write(
            tmp_path,
            "version: 1\nproperties:\n  plan:\n    type: string\ncontacts:\n"
            + "".join(f"  - email: {e}\n" for e in emails),
        ),
    )
    for e in emails:  # values written outside the files
        await client.update_contact(e, {"properties": {"plan": "10"}})
    return emails


async def test_property_type_change_counts_lost_values_and_needs_force(client, tmp_path):
    emails = await seed_values(client, tmp_path)
    path = write(
        tmp_path,
        "version: 1\nproperties:\n  plan:\n    type: number\ncontacts:\n"
        f"  - email: {emails[0]}\n    properties: {{plan: 10}}\n"
        f"  - email: {emails[1]}\n    properties: {{plan: 20}}\n"
        + "".join(f"  - email: {e}\n" for e in emails[2:]),
    )
    plan, _, desired = await plan_for(client, path)
    [replace] = [c for c in plan.changes if c.kind == "property"]
    assert replace.action == "replace" and replace.loses == {"values": 10}
    text = render_text(plan)
    assert "-/+ property plan (10 contacts lose a value)" in text
    # the re-declared value shows what it was: "10" -> 10, not null -> 10
    update = next(c for c in plan.changes if c.kind == "contact" and c.key == emails[0])
    assert update.before == {"properties": {"plan": "10"}} and update.after == {"properties": {"plan": 10}}
    assert 'properties.plan: "10" -> 10' in text
    with pytest.raises(SafetyError, match="lose their value"):
        check_safety(plan, desired.policy)
    await plan_and_apply(client, path, force=True)
    assert (await client.get_contact(emails[0]))["properties"]["plan"]["value"] == 10
    assert (await plan_for(client, path))[0].empty


async def test_property_type_change_with_no_value_lost_needs_no_force(client, tmp_path):
    await plan_and_apply(client, write(tmp_path, "version: 1\nproperties:\n  plan:\n    type: string\n"))
    path = write(tmp_path, "version: 1\nproperties:\n  plan:\n    type: number\n")
    plan, _, desired = await plan_for(client, path)
    [replace] = plan.changes
    assert replace.loses == {"values": 0}
    assert check_safety(plan, desired.policy) == []


async def test_property_prune_counts_values_written_outside(client, tmp_path):
    await seed_values(client, tmp_path, n=3)
    path = write(tmp_path, "version: 1\npolicy: {prune_properties: true}\n")
    plan, _, desired = await plan_for(client, path)
    [delete] = plan.changes
    assert (delete.action, delete.loses) == ("delete", {"values": 3})
    assert "- property plan (3 contacts lose a value)" in render_text(plan)
    with pytest.raises(SafetyError):
        check_safety(plan, desired.policy)
    save_plan(plan, tmp_path / "plan.json")
    assert load_plan(tmp_path / "plan.json").changes[0].loses == {"values": 3}


async def test_topic_delete_counts_explicit_subscriptions(client, tmp_path):
    await plan_and_apply(
        client,
        write(
            tmp_path,
            "version: 1\ntopics:\n  news: {}\ncontacts:\n  - email: a@example.com\n    topics: {news: opt_out}\n"
            "  - email: b@example.com\n",
        ),
    )
    plan, _, _ = await plan_for(client, write(tmp_path, "version: 1\npolicy: {prune_topics: true}\n"))
    [delete] = plan.changes
    assert delete.loses == {"subscriptions": 1}
    assert "(1 explicit subscription lost)" in render_text(plan)
