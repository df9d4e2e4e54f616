"""Hand-edited plan files whose digest was recomputed (anyone who can write the file can do
that): every kind of bad content is refused by ``load_plan``, which makes no request, so
before the first request of ``apply --plan``. And every kind of change a plan really holds
is still accepted."""

from __future__ import annotations

import json

import pytest

from resend_iac.engine import Change, Plan, PlanFileError, load_plan, save_plan
from resend_iac.engine.planfile import check_plan_data, seal


def every_change() -> list[Change]:
    return [
        Change("create", "property", "tier", None, {"key": "tier", "type": "number", "fallback_value": 0}),
        Change("update", "property", "co", {"fallback_value": "a"}, {"fallback_value": "b"}, id="p1"),
        Change(
            "replace",
            "property",
            "n",
            {"key": "n", "type": "number"},
            {"key": "n", "type": "string"},
            id="p2",
        ),
        Change("delete", "property", "old", {"key": "old", "type": "string"}, None, id="p3"),
        Change("create", "segment", "s", None, {"name": "s"}),
        Change("delete", "segment", "t", {"name": "t"}, None, id="s1"),
        Change("create", "topic", "news", None, {"name": "news", "default_subscription": "opt_in"}),
        Change("update", "topic", "b", {"description": None}, {"description": "x"}, id="t1"),
        Change(
            "create",
            "contact",
            "a@x.com",
            None,
            {
                "email": "a@x.com",
                "first_name": "A",
                "segments": ["s"],
                "properties": {"tier": 2},
                "topics": {"news": "opt_out"},
            },
            email="a@x.com",
        ),
        Change(
            "update",
            "contact",
            "b@x.com",
            {"properties": {"co": "a"}},
            {"properties": {"co": "b"}},
            id="c1",
            email="b@x.com",
        ),
        Change("delete", "contact", "gone@x.com", {"email": "gone@x.com"}, None, id="c2", email="gone@x.com"),
        Change(
            "create", "membership", "b@x.com", None, {"segment": "s"}, parent="s", id="c1", email="b@x.com"
        ),
        Change(
            "delete", "membership", "b@x.com", {"segment": "t"}, None, parent="t", id="c1", email="b@x.com"
        ),
        Change("update", "subscription", "b@x.com", {"news": "opt_in"}, {"news": "opt_out"}, id="c1"),
    ]


def find(data, kind, action):
    return next(c for c in data["changes"] if c["kind"] == kind and c["action"] == action)


def edited(tmp_path, edit, *, reseal=True):
    """A saved plan, edited, its digest recomputed, written back; the edited data returned too."""
    path = tmp_path / "plan.json"
    save_plan(Plan(changes=every_change()), path)
    data = json.loads(path.read_text())
    edit(data)
    data.pop("summary", None)  # a summary left as it was would refuse most edits by itself
    if reseal:
        data = seal(data)
    path.write_text(json.dumps(data, indent=2))
    return path, data


def refusal(tmp_path, edit) -> str:
    path, _ = edited(tmp_path, edit)
    with pytest.raises(PlanFileError) as e:
        load_plan(path)
    return str(e.value)


def test_the_plan_of_every_kind_of_change_is_accepted_as_written(tmp_path):
    path, data = edited(tmp_path, lambda d: None)
    assert check_plan_data(data) == []
    assert [c.to_dict() if hasattr(c, "to_dict") else c for c in load_plan(path).changes] == [
        c.to_dict() if hasattr(c, "to_dict") else c for c in Plan(changes=every_change()).changes
    ]


def _set(of_kind, of_action, **fields):
    def edit(d):
        c = find(d, of_kind, of_action)
        for name, value in fields.items():
            if "." in name:
                outer, inner = name.split(".", 1)
                c[outer][inner] = value
            else:
                c[name] = value

    return edit


def _prop(kind, action, side, key, value):
    def edit(d):
        find(d, kind, action)[side].setdefault("properties", {})[key] = value

    return edit


BAD = [
    # addresses of contacts to create: validate's rules
    (
        "no @ in a new contact",
        _set("contact", "create", key="a.x.com", email="a.x.com", **{"after.email": "a.x.com"}),
        "changes[8]",
    ),
    (
        "two @ in a new contact",
        _set("contact", "create", key="a@b@x.com", email="a@b@x.com", **{"after.email": "a@b@x.com"}),
        "changes[8]",
    ),
    (
        "white space in a new contact",
        _set("contact", "create", key="a b@x.com", email="a b@x.com", **{"after.email": "a b@x.com"}),
        "changes[8]",
    ),
    (
        "no dot in the domain",
        _set("contact", "create", key="a@localhost", email="a@localhost", **{"after.email": "a@localhost"}),
        "changes[8]",
    ),
    (
        "a new contact without its email",
        lambda d: find(d, "contact", "create")["after"].pop("email"),
        "needs its email",
    ),
    # any contact's key must look like one address
    (
        "deleted contact with two @",
        _set("contact", "delete", key="x@y@x.com", email=None, **{"before.email": "x@y@x.com"}),
        "changes[10].key",
    ),
    (
        "deleted contact with a space",
        _set("contact", "delete", key="x y@x.com", email=None, **{"before.email": "x y@x.com"}),
        "changes[10].key",
    ),
    (
        "deleted contact with a control character",
        _set("contact", "delete", key="x\x07@x.com", email=None, **{"before.email": "x\x07@x.com"}),
        "changes[10].key",
    ),
    ("membership of no address", _set("membership", "create", key="nobody", email=None), "changes[11].key"),
    (
        "subscription of no address",
        _set("subscription", "update", key="nobody", email=None),
        "changes[13].key",
    ),
    ("key not normalised", _set("contact", "update", key="B@x.com"), "not a normalised address"),
    ("key with spaces around", _set("contact", "delete", key=" gone@x.com"), "changes[10].key"),
    (
        "email of another contact",
        _set("contact", "update", email="c@x.com"),
        "is not the address of the change's key",
    ),
    (
        "after.email of another contact",
        _set("contact", "create", **{"after.email": "z@x.com"}),
        "changes[8].after.email",
    ),
    (
        "after.email of another contact, the change's email left out",
        _set("contact", "update", email=None, **{"after.email": "z@x.com"}),
        "changes[9].after.email",
    ),
    (
        "email of a membership is another's",
        _set("membership", "delete", email="c@x.com"),
        "changes[12].email",
    ),
    # property keys, wherever they appear
    (
        "property key with a dash",
        _set("property", "create", key="bad-key", **{"after.key": "bad-key"}),
        "may only contain letters",
    ),
    (
        "property key too long",
        _set("property", "delete", key="k" * 51, **{"before.key": "k" * 51}),
        "changes[3]",
    ),
    (
        "property key inside not the change's",
        _set("property", "replace", **{"after.key": "other"}),
        "inside the change is not its key",
    ),
    ("contact value under a bad key", _prop("contact", "update", "after", "bad key", "v"), "changes[9]"),
    (
        "contact value before, under a bad key",
        _prop("contact", "update", "before", "bad-key", "v"),
        "changes[9]",
    ),
    ("new contact value under a bad key", _prop("contact", "create", "after", "a.b", 1), "changes[8]"),
    # values Resend cannot store
    (
        "integer too large for a double",
        _prop("contact", "update", "after", "co", 2**53),
        "beyond what JSON numbers (doubles) hold exactly",
    ),
    (
        "negative integer too large for a double",
        _prop("contact", "update", "after", "co", -(2**53)),
        "beyond what JSON numbers (doubles) hold exactly",
    ),
    ("a boolean to write", _prop("contact", "update", "after", "co", True), "a value to write is a string"),
    (
        "a value not of the type the plan declares",
        _prop("contact", "create", "after", "tier", "high"),
        "as this plan declares it",
    ),
    (
        "a fallback too large for a double",
        _set("property", "create", **{"after.fallback_value": 2**53}),
        "beyond what JSON numbers",
    ),
    (
        "a fallback of the wrong type",
        _set("property", "create", **{"after.fallback_value": "zero"}),
        "fallback_value",
    ),
    (
        "a fallback of the replaced type",
        _set("property", "replace", **{"after.fallback_value": 1}),
        "fallback_value",
    ),
    (
        "a property created without a type",
        lambda d: find(d, "property", "create")["after"].pop("type"),
        "needs its type",
    ),
    (
        "a property replaced by a boolean",
        _set("property", "replace", **{"after.type": "boolean"}),
        "needs its type",
    ),
    # kinds and actions
    ("unknown action", _set("segment", "create", action="frobnicate"), "changes[4].action"),
    ("an action the kind does not have", _set("segment", "create", action="replace"), "changes[4]"),
    ("a contact replaced", _set("contact", "update", action="replace"), "changes[9]"),
    ("a subscription created", _set("subscription", "update", action="create", before=None), "changes[13]"),
    ("unknown kind", _set("segment", "create", kind="webhook"), "changes[4].kind"),
    # names of segments and topics
    (
        "segment name with spaces around",
        _set("segment", "create", key=" s", **{"after.name": " s"}),
        "white space",
    ),
    ("topic name too long", _set("topic", "create", key="n" * 51, **{"after.name": "n" * 51}), "changes[6]"),
    (
        "topic name inside not the change's",
        _set("topic", "create", **{"after.name": "other"}),
        "inside the change is not its key",
    ),
    (
        "membership in another segment",
        _set("membership", "create", **{"after.segment": "other"}),
        "is not the change's parent",
    ),
    # shapes the schema refuses, in the plain changes too
    ("an unknown key in a contact change", _set("contact", "update", shell="rm -rf /"), "changes[9]"),
    ("an unknown key in a membership", _set("membership", "create", shell="x"), "changes[11]"),
    ("a membership without its segment", _set("membership", "delete", parent=None), "changes[12]"),
    ("an empty key", _set("contact", "delete", key=""), "changes[10]"),
    (
        "a subscription neither in nor out",
        _set("contact", "create", **{"after.topics": {"news": "maybe"}}),
        "changes[8]",
    ),
    ("subscriptions as a list", _set("contact", "create", **{"after.topics": ["news"]}), "changes[8]"),
    ("an email of null", _set("contact", "update", **{"after.email": None}), "changes[9]"),
    (
        "a deleted address too long",
        _set(
            "contact",
            "delete",
            key="g" * 315 + "@x.com",
            email=None,
            **{"before.email": "g" * 315 + "@x.com"},
        ),
        "changes[10]",
    ),
    # the same object twice
    (
        "the same contact twice",
        lambda d: d["changes"].append(dict(find(d, "contact", "delete"))),
        "a second change of contact",
    ),
    (
        "the same membership twice",
        lambda d: d["changes"].append(dict(find(d, "membership", "create"))),
        "a second change of membership",
    ),
]


@pytest.mark.parametrize("name, edit, wording", BAD, ids=[b[0] for b in BAD])
def test_a_resealed_plan_with_bad_content_is_refused(tmp_path, name, edit, wording):
    message = refusal(tmp_path, edit)
    assert wording in message, message
    assert "plan.json" in message


def test_a_membership_in_a_segment_of_the_same_name_elsewhere_is_not_a_duplicate(tmp_path):
    # one contact joins two segments: two changes of the same key, different parents
    def edit(d):
        extra = dict(find(d, "membership", "create"))
        extra.update(parent="u", after={"segment": "u"})
        d["changes"].append(extra)

    path, _ = edited(tmp_path, edit)
    assert len(load_plan(path).changes) == len(every_change()) + 1


def test_whole_numbers_up_to_the_largest_exact_double_are_accepted(tmp_path):
    for value in (2**53 - 1, -(2**53 - 1), 1.5e300):
        path, _ = edited(tmp_path, _prop("contact", "update", "after", "co", value))
        assert load_plan(path).changes


def test_numbers_beyond_a_double_are_refused_in_memory_too():
    # check_plan_data is what apply runs on a plan already parsed (e.g. by a caller of the engine)
    data = seal(Plan(changes=every_change()).to_dict())
    data.pop("summary", None)
    c = find(data, "contact", "update")
    for bad in (2**53, -(2**53), 2**60):
        c["after"]["properties"]["co"] = bad
        problems = check_plan_data(seal(data))
        assert problems and "beyond what Resend stores" in " ".join(problems), (bad, problems)
    for good in (2**53 - 1, -(2**53 - 1), 0.5):
        c["after"]["properties"]["co"] = good
        assert check_plan_data(seal(data)) == [], good
    f = find(data, "property", "create")
    f["after"]["fallback_value"] = 2**53
    assert "fallback_value" in " ".join(check_plan_data(seal(data)))


def test_a_summary_that_does_not_match_the_changes_is_refused(tmp_path):
    path = tmp_path / "plan.json"
    save_plan(Plan(changes=every_change()), path)
    data = json.loads(path.read_text())
    assert data["summary"]
    data["summary"]["segment.create"] = 2
    path.write_text(json.dumps(seal(data)))
    with pytest.raises(PlanFileError, match="summary: the counts do not match"):
        load_plan(path)
    del data["summary"]["segment.create"]
    path.write_text(json.dumps(seal(data)))
    with pytest.raises(PlanFileError, match="summary"):
        load_plan(path)


def test_many_problems_are_listed_each_at_its_line_then_counted(tmp_path):
    def edit(d):
        for i in range(15):
            d["changes"].append(
                {"action": "delete", "kind": "contact", "key": f"bad {i}@x.com", "before": {}, "after": None}
            )

    path, _ = edited(tmp_path, edit)
    path.write_text(json.dumps(json.loads(path.read_text()), indent=2))
    with pytest.raises(PlanFileError) as e:
        load_plan(path)
    text = str(e.value)
    assert "the plan file is refused; nothing was sent to the API" in text
    listed = [line for line in text.splitlines() if line.startswith(f"  {path}:")]
    assert len(listed) == 10 and "... and " in text
    assert all(".key:" in line for line in listed)


def test_the_common_contact_and_membership_changes_skip_the_schema_check(tmp_path):
    """jsonschema costs ~0.3 ms a change: a million-contact plan must not pay it for the plain
    contact and membership changes diff makes (the fast check takes them)."""
    from resend_iac.engine.planfile import _plain_change_ok

    _, data = edited(tmp_path, lambda d: None)
    plain = [c for c in data["changes"] if c["kind"] in ("contact", "membership")]
    assert len(plain) == 5 and all(_plain_change_ok(c) for c in plain)
    others = [c for c in data["changes"] if c["kind"] not in ("contact", "membership")]
    assert not any(_plain_change_ok(c) for c in others)


def test_edge_lengths_a_plan_may_hold_are_accepted(tmp_path):
    def edit(d):
        long = "g" * 314 + "@x.com"  # 320 characters: the most an address may have
        find(d, "contact", "delete").update(key=long, email=None, before={"email": long})
        find(d, "topic", "update")["after"]["description"] = "d" * 200

    path, _ = edited(tmp_path, edit)
    assert load_plan(path).changes


def test_one_problem_is_one_line_at_its_place(tmp_path):
    message = refusal(tmp_path, _set("segment", "create", action="frobnicate"))
    assert "\n" not in message and "the plan file is refused" not in message
    assert message.count("changes[4].action") == 1  # an unknown action fails two checks: said once
    assert message.endswith("(nothing was sent to the API)")
    path, _ = edited(tmp_path, lambda d: d["changes"].pop(), reseal=False)
    with pytest.raises(PlanFileError) as e:
        load_plan(path)
    assert str(e.value).count("Nothing was applied") == 1 and "nothing was sent" not in str(e.value)


def test_problems_of_a_saved_plan_name_the_line_its_change_starts_on(tmp_path):
    """save_plan lays a plan out so that load_plan can say file:line for each bad change."""
    bad = [
        Change("delete", "contact", "x y@x.com", {}, None, id="c1"),
        Change("delete", "contact", "p q@x.com", {}, None, id="c2"),
    ]
    path = tmp_path / "plan.json"
    save_plan(Plan(changes=every_change() + bad), path)
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "    {"]
    assert len(starts) == len(every_change()) + 2
    with pytest.raises(PlanFileError) as e:
        load_plan(path)
    text = str(e.value)
    assert text.startswith(f"{path}: the plan file is refused; nothing was sent to the API:")
    assert f"{path}:{starts[14]}: changes[14].key" in text
    assert f"{path}:{starts[15]}: changes[15].key" in text
    save_plan(Plan(changes=every_change() + bad[:1]), path)
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "    {"]
    with pytest.raises(PlanFileError) as e:
        load_plan(path)
    assert str(e.value).startswith(f"{path}:{starts[14]}: changes[14].key")
