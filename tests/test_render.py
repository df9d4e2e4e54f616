"""render.py: text, Markdown and JSON renderings of a Plan, with and without redaction.

Plans are built by hand (in-process): rendering does no I/O.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from resend_iac.engine.plan import ACTIONS, Change, Plan
from resend_iac.render import Redactor, render_json, render_markdown, render_text, use_color

ANSI = re.compile(r"\x1b\[[0-9;]*m")
EMAIL_MASK = re.compile(r"^[a-z0-9]\*\*\*@[a-z0-9]\*\*\*\.[a-z]+#[0-9a-f]{4,}$")

EMAILS = ["ada@example.com", "bob@mail.test.org", "eve@evil.io", "carl@example.com", "dora@example.com"]
NAMES = ["Ada", "Lovelace", "Bob", "Robert", "Eve", "Carl", "Acme Widgets", "Dora"]


def sample_plan() -> Plan:
    """Every kind, every action that kind has."""
    return Plan(
        fingerprint="9f86d081884c7d659a2feaa0c55ad015",
        live_counts={"contact": 12, "property": 2, "segment": 2, "topic": 2},
        warnings=["carl@example.com is opted out of newsletter; resubscription left out"],
        changes=[
            Change("create", "property", "company", None, {"type": "string", "fallback_value": None}),
            Change(
                "update", "property", "plan", {"fallback_value": "free"}, {"fallback_value": "pro"}, id="p1"
            ),
            Change(
                "replace",
                "property",
                "age",
                {"type": "string", "fallback_value": None},
                {"type": "number", "fallback_value": 0},
                id="p2",
            ),
            Change("delete", "property", "legacy", {"type": "string", "fallback_value": None}, None, id="p3"),
            Change("create", "segment", "beta-testers", None, {}),
            Change("delete", "segment", "old-segment", {}, None, id="s2"),
            Change(
                "create",
                "topic",
                "newsletter",
                None,
                {"default_subscription": "opt_in", "visibility": "public"},
            ),
            Change(
                "update", "topic", "product", {"description": "Old"}, {"description": "Product news"}, id="t1"
            ),
            Change(
                "replace",
                "topic",
                "events",
                {"default_subscription": "opt_in", "description": "Events"},
                {"default_subscription": "opt_out", "description": "Events"},
                id="t2",
            ),
            Change("delete", "topic", "legacy-topic", {"default_subscription": "opt_in"}, None, id="t3"),
            Change(
                "create",
                "contact",
                "ada@example.com",
                None,
                {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "unsubscribed": False,
                    "properties": {"company": "Acme Widgets", "age": 36},
                    "segments": ["beta-testers"],
                    "topics": {"newsletter": "opt_in"},
                },
                email="Ada@Example.com",
            ),
            Change(
                "update",
                "contact",
                "bob@mail.test.org",
                {"first_name": "Bob"},
                {"first_name": "Robert"},
                id="c2",
            ),
            Change(
                "delete", "contact", "eve@evil.io", {"first_name": "Eve", "unsubscribed": True}, None, id="c3"
            ),
            Change("create", "membership", "bob@mail.test.org", parent="beta-testers", id="c2"),
            Change(
                "delete",
                "membership",
                "dora@example.com",
                parent="old-members",
                id="c4",
                email="Dora@Example.com",
            ),
            Change(
                "update",
                "subscription",
                "carl@example.com",
                {"product": "opt_in"},
                {"product": "opt_out"},
                id="c5",
            ),
        ],
    )


def contacts_plan(n: int, *, kind: str = "contact", fingerprint: str = "fp") -> Plan:
    changes = []
    for i in range(n):
        email = f"user{i:05d}@example.com"
        if kind == "contact":
            changes.append(
                Change("create", "contact", email, None, {"first_name": f"Name{i}", "last_name": "Doe"})
            )
        else:
            changes.append(Change("create", "membership", email, parent="beta-testers"))
    return Plan(changes=changes, fingerprint=fingerprint)


# ------------------------------------------------------------------------- text


def test_text_symbols_and_field_lines():
    out = render_text(sample_plan())
    lines = out.splitlines()
    assert "  + property company" in lines
    assert "  ~ property plan" in lines
    assert "  -/+ property age" in lines
    assert "  - property legacy" in lines
    assert "  + segment beta-testers" in lines
    assert "  - segment old-segment" in lines
    assert "  -/+ topic events" in lines
    assert "  + contact Ada@Example.com" in lines  # the spelling as given
    assert "  ~ contact bob@mail.test.org" in lines
    assert "  - contact eve@evil.io" in lines
    assert "  + membership bob@mail.test.org → beta-testers" in lines
    assert "  - membership Dora@Example.com → old-members" in lines
    assert "  ~ subscription carl@example.com" in lines
    # field-level before/after, the create's missing side is null
    assert '      first_name: null -> "Ada"' in lines
    assert '      properties.company: null -> "Acme Widgets"' in lines
    assert "      properties.age: null -> 36" in lines
    assert '      segments: null -> ["beta-testers"]' in lines
    assert '      first_name: "Bob" -> "Robert"' in lines
    assert '      first_name: "Eve" -> null' in lines
    assert '      fallback_value: "free" -> "pro"' in lines
    assert '      product: "opt_in" -> "opt_out"' in lines
    # replace: the changed field with an arrow, the unchanged one as it is
    assert '      default_subscription: "opt_in" -> "opt_out"' in lines
    assert '      description: "Events"' in lines


def test_text_groups_by_kind_and_ends_with_warnings_then_summary():
    plan = sample_plan()
    out = render_text(plan)
    lines = out.splitlines()
    assert (
        lines[-1]
        == plan.summary()
        == (
            "Plan: 1 property to create, 1 to update, 1 to replace, 1 to delete; "
            "1 segment to create, 1 to delete; 1 topic to create, 1 to update, 1 to replace, 1 to delete; "
            "1 contact to create, 1 to update, 1 to delete; 1 membership to add, 1 to remove; "
            "1 subscription to change."
        )
    )
    headers = [line.split(" ")[0] for line in lines if re.match(r"^[a-z]+ \(\d+ changes?:", line)]
    assert headers == ["property", "segment", "topic", "contact", "membership", "subscription"]
    assert "contact (3 changes: 1 to create, 1 to update, 1 to delete)" in lines
    warn_at = lines.index("Warnings:")
    assert lines[warn_at + 1] == "  ! " + plan.warnings[0]
    assert warn_at > max(i for i, line in enumerate(lines) if line.startswith("  ~ subscription"))


def test_summary_names_objects_and_relations_apart():
    contacts = [Change("create", "contact", f"c{i}@x.com") for i in range(2)]
    plan = Plan(
        changes=contacts
        + [Change("update", "contact", "u@x.com")]
        + [Change("create", "membership", f"a{i}@x.com", parent="s") for i in range(3)]
        + [Change("delete", "membership", f"r{i}@x.com", parent="s") for i in range(3000)]
        + [Change("update", "subscription", "t@x.com")]
    )
    assert plan.summary() == (
        "Plan: 2 contacts to create, 1 to update; 3 memberships to add, "
        "3,000 to remove; 1 subscription to change."
    )
    # a plan that only removes memberships deletes nothing
    only = Plan(changes=[Change("delete", "membership", "r@x.com", parent="s")])
    assert "delete" not in only.summary() and only.summary() == "Plan: 1 membership to remove."
    assert Plan(changes=[Change("delete", "property", "k")] * 2).summary() == "Plan: 2 properties to delete."


def test_text_empty_plan():
    out = render_text(Plan(fingerprint="abc"))
    assert out.rstrip().endswith("No changes. The live team matches the declared state.")
    assert "+" not in out


def test_colour_only_when_asked(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    plain = render_text(sample_plan())
    coloured = render_text(sample_plan(), color=True)
    assert not ANSI.search(plain)
    assert "\x1b[32m  + property company" in coloured  # green create
    assert "\x1b[31m  - contact eve@evil.io" in coloured  # red delete
    assert "\x1b[33m  ~ contact bob@mail.test.org" in coloured  # yellow update
    assert ANSI.sub("", coloured) == plain  # same text underneath


def test_no_color_env_wins(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(render_text(sample_plan(), color=True))


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(FakeTTY()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(FakeTTY()) is False
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert use_color(FakeTTY()) is True


# ------------------------------------------------------------------------- markdown


def _table(md: str) -> dict[str, dict[str, int]]:
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] not in ("kind", "---", "**total**"):
            rows[cells[0]] = dict(zip(ACTIONS, map(int, cells[1:])))
    return rows


def test_markdown_summary_table_counts():
    plan = sample_plan()
    md = render_markdown(plan)
    assert md.startswith("## resend-iac plan")
    assert f"**{plan.summary()}**" in md
    assert "| kind | create | update | replace | delete |" in md
    table = _table(md)
    expected = {}
    for (kind, action), n in plan.counts().items():
        expected.setdefault(kind, dict.fromkeys(ACTIONS, 0))[action] = n
    assert table == expected
    assert "| **total** | **5** | **4** | **2** | **5** |" in md


def test_markdown_sections_per_kind_in_diff_blocks():
    md = render_markdown(sample_plan())
    for kind in ("property", "segment", "topic", "contact", "membership", "subscription"):
        assert re.search(rf"^### {kind} \(\d+ changes?: ", md, re.M), kind
    assert "```diff\n+ property company\n" in md
    assert "\n- contact eve@evil.io\n" in md
    assert "\n-/+ topic events\n" in md
    assert "<details>" not in md  # no section is long enough to fold
    assert "**Warnings**" in md


def test_markdown_folds_long_sections():
    plan = contacts_plan(25)
    plan.changes += contacts_plan(3, kind="membership").changes
    md = render_markdown(plan)
    contact_section = md[md.index("### contact") : md.index("### membership")]
    membership_section = md[md.index("### membership") :]
    assert "<details><summary>" in contact_section and "</details>" in contact_section
    assert contact_section.count("\n+ contact ") == 25
    assert "<details>" not in membership_section
    assert membership_section.count("\n+ membership ") == 3


def test_markdown_truncates_huge_plan_with_visible_note():
    plan = contacts_plan(50_000)
    md = render_markdown(plan)
    assert len(md) <= 60_000
    shown = md.count("\n+ contact ")
    assert 100 < shown < 50_000
    m = re.search(
        r"… (\d+) more changes not shown\*\* \(plan truncated to stay under 60,000 characters\)", md
    )
    assert m, md[-500:]
    assert int(m.group(1)) + shown == 50_000
    assert "resend-iac plan" in md[m.start() :]
    # the open <details> and the code fence are closed before the note
    assert md.count("<details>") == md.count("</details>")
    assert md[: m.start()].count("```") % 2 == 0
    # the table still counts everything
    assert "| contact | 50000 | 0 | 0 | 0 |" in md


@pytest.mark.parametrize("max_chars", [3_000, 10_000])
def test_markdown_respects_smaller_limits(max_chars):
    plan = contacts_plan(400)
    plan.changes += contacts_plan(400, kind="membership").changes
    md = render_markdown(plan, max_chars=max_chars)
    assert len(md) <= max_chars
    m = re.search(r"… (\d+) more changes not shown", md)
    assert m and f"{max_chars:,} characters" in md
    shown = md.count("\n+ contact ") + md.count("\n+ membership ")
    assert int(m.group(1)) + shown == 800


def test_markdown_not_truncated_when_it_fits():
    md = render_markdown(contacts_plan(30))
    assert "more changes not shown" not in md
    assert md.count("\n+ contact ") == 30


def test_markdown_code_fence_survives_backticks_in_values():
    plan = Plan(
        changes=[Change("update", "topic", "news", {"description": "a"}, {"description": "```\n# hi"})]
    )
    md = render_markdown(plan)
    fence = re.search(r"^(`{4,})diff$", md, re.M)
    assert fence, md
    assert md.count(fence.group(1)) == 2


def test_markdown_empty_plan():
    md = render_markdown(Plan())
    assert "No changes. The live team matches the declared state." in md
    assert "| kind |" not in md


# ------------------------------------------------------------------------- json


def test_json_round_trip_and_shape():
    plan = sample_plan()
    text = render_json(plan)
    data = json.loads(text)
    assert data["format_version"] == 1
    assert data["fingerprint"] == plan.fingerprint
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    for change in data["changes"]:
        assert {"action", "kind", "key", "before", "after"} <= set(change)
    assert Plan.from_dict(data) == plan
    assert "redacted" not in data


def test_json_redacted_round_trips_and_is_marked():
    data = json.loads(render_json(sample_plan(), redact=True))
    assert data["redacted"] is True
    back = Plan.from_dict(data)
    assert len(back.changes) == len(sample_plan().changes)
    assert back.summary() == sample_plan().summary()


# ------------------------------------------------------------------------- redaction


def _all_formats(plan: Plan) -> dict[str, str]:
    return {
        "text": render_text(plan, redact=True),
        "color": render_text(plan, color=True, redact=True),
        "markdown": render_markdown(plan, redact=True),
        "json": render_json(plan, redact=True),
    }


@pytest.mark.parametrize("fmt", ["text", "color", "markdown", "json"])
def test_redaction_leaves_no_email_or_name(fmt, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _all_formats(sample_plan())[fmt]
    for value in EMAILS:
        assert value not in out.lower(), (fmt, value)
    for value in NAMES:
        assert not re.search(rf"\b{value}\b", out, re.I), (fmt, value)
    assert "@" in out  # masks, not nothing
    # what is not personal stays readable
    for value in ("beta-testers", "newsletter", "opt_out", "company", "36", "events"):
        assert value in out, (fmt, value)


def test_redaction_masks_stable_within_a_plan_and_distinct_across_emails():
    plan = sample_plan()
    red = Redactor.for_plan(plan).plan(plan)
    by_key = {(c.kind, c.action): c for c in red.changes}
    ada = by_key["contact", "create"]
    assert EMAIL_MASK.match(ada.key), ada.key
    assert ada.email == ada.key  # Ada@Example.com and ada@example.com: one person, one mask
    bob = by_key["contact", "update"].key
    assert by_key["membership", "create"].key == bob
    assert by_key["membership", "delete"].email == by_key["membership", "delete"].key
    carl = by_key["subscription", "update"].key
    assert carl in red.warnings[0]
    masks = {ada.key, bob, carl, by_key["contact", "delete"].key, by_key["membership", "delete"].key}
    assert len(masks) == 5
    assert ada.key.startswith("a***@e***.com#")
    assert bob.startswith("b***@m***.org#")
    # names: first letter, then a hash
    assert re.fullmatch(r"A\*\*\*#[0-9a-f]{4,}", ada.after["first_name"])
    assert re.fullmatch(r"A\*\*\*#[0-9a-f]{4,}", ada.after["properties"]["company"])
    assert ada.after["first_name"] != ada.after["properties"]["company"]
    assert ada.after["properties"]["age"] == 36  # numbers are kept
    assert ada.after["unsubscribed"] is False
    upd = by_key["contact", "update"]
    assert upd.before["first_name"] != upd.after["first_name"]
    # every format shows the same masks
    formats = _all_formats(plan)
    for out in formats.values():
        assert ada.key in out and bob in out
    assert formats == _all_formats(plan)  # deterministic


def test_redaction_salt_changes_masks(monkeypatch):
    monkeypatch.delenv("RESEND_IAC_REDACT_SALT", raising=False)
    a = Redactor.for_plan(Plan(fingerprint="one")).email("ada@example.com")
    b = Redactor.for_plan(Plan(fingerprint="two")).email("ada@example.com")
    assert a != b
    monkeypatch.setenv("RESEND_IAC_REDACT_SALT", "secret")
    c = Redactor.for_plan(Plan(fingerprint="one")).email("ada@example.com")
    d = Redactor.for_plan(Plan(fingerprint="two")).email("ada@example.com")
    assert c == d != a


def test_redaction_distinct_even_when_short_hashes_collide():
    # 3,000 emails with the same visible prefix: 4 hex digits alone would collide
    plan = contacts_plan(3_000)
    red = Redactor.for_plan(plan).plan(plan)
    keys = [c.key for c in red.changes]
    assert all(EMAIL_MASK.match(k) for k in keys)
    assert len(set(keys)) == 3_000
    assert any(len(k.split("#")[1]) > 4 for k in keys)  # some got longer hashes


def test_redaction_of_flat_property_fields_and_email_values():
    plan = Plan(
        changes=[
            Change(
                "update",
                "contact",
                "x@y.com",
                {"properties.city": "Paris", "email": "X@Y.com", "properties.score": 3},
                {"properties.city": "Lyon", "email": "x@y.com", "properties.score": 4},
            )
        ]
    )
    out = render_json(plan, redact=True)
    for raw in ("Paris", "Lyon", "x@y.com", "X@Y.com"):
        assert raw not in out
    change = json.loads(out)["changes"][0]
    assert change["before"]["email"] == change["after"]["email"] == change["key"]
    assert change["after"]["properties.score"] == 4


def test_redaction_covers_every_email_in_the_json_even_in_extra_fields():
    plan = sample_plan()
    if "scope" in Plan.__dataclass_fields__:  # the engine's read scope: normalised emails
        plan.scope = {"property_emails": ["ada@example.com"], "topic_emails": ["carl@example.com"]}
    plan.verify = {"fingerprint": "sha256:abc", "property_emails": ["ada@example.com"], "topic_emails": []}
    plan.live_counts = {"note from eve@evil.io": 1}  # a field the redactor does not know
    out = render_json(plan, redact=True)
    for value in EMAILS:
        assert value not in out.lower(), value
    data = json.loads(out)
    if "scope" in data:
        ada = next(c["key"] for c in data["changes"] if c["kind"] == "contact" and c["action"] == "create")
        assert data["scope"]["property_emails"] == [ada]
        assert data["verify"] == {"fingerprint": "sha256:abc", "property_emails": [ada], "topic_emails": []}


def test_new_contacts_email_field_is_not_repeated():
    plan = Plan(
        changes=[
            Change(
                "create",
                "contact",
                "ada@example.com",
                None,
                {"email": "Ada@Example.com", "first_name": "Ada"},
                email="Ada@Example.com",
            ),
            Change(
                "update",
                "contact",
                "bob@example.com",
                {"email": "bob@example.com"},
                {"email": "Bob@Example.com"},
            ),
        ]
    )
    lines = render_text(plan).splitlines()
    assert "  + contact Ada@Example.com" in lines
    assert not any(line.strip().startswith("email: null") for line in lines)
    assert '      email: "bob@example.com" -> "Bob@Example.com"' in lines  # a respelling is shown
