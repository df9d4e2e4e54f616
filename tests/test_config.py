"""config: YAML/CSV -> the desired State; the schema; the per-object checks; `validate`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac import config
from resend_iac.cli import main
from resend_iac.config import checks
from resend_iac.model import UNSET, Location, Policy, Property

ROOT = Path(__file__).resolve().parent.parent
# examples/testing is a Python project (an app and its tests), not one config: its YAML files
# are seeded and compared one by one by its own tests (tests/test_testing_plugin.py runs them).
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").iterdir()
    if p.is_dir() and p.name not in ("pulumi", "github-actions", "testing")
)

HEAD = """version: 1
properties:
  company: {type: string, fallback_value: "n/a"}
  plan_tier: {type: number}
segments:
  beta-testers: {}
  newsletter: {membership: additive}
topics:
  product-updates: {default_subscription: opt_in, description: "Monthly product news", visibility: public}
"""


def write(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return tmp_path


# ------------------------------------------------------------------ examples, schema


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(example: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(example)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    assert result.stderr == ""


def test_examples_cover_the_format() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "quickstart",
        "csv-seed",
        "multi-file",
        "properties",
        "topics",
        "segments",
        "emails-shorthand",
        "policy",
    } <= names


def test_quickstart_is_a_small_realistic_team() -> None:
    state = config.load([ROOT / "examples" / "quickstart"])
    assert len(state.properties) == 2 and 2 <= len(state.segments) <= 3 and 1 <= len(state.topics) <= 2
    assert 8 <= len(state.contacts) <= 12
    assert any(s.membership == "additive" for s in state.segments.values())
    files = {c.location.file for c in state.contacts.values()}
    assert any(f.endswith(".csv") for f in files) and any(f.endswith(".yaml") for f in files)


def test_schema_copies_are_identical_and_valid() -> None:
    top = (ROOT / "schemas" / "resend-iac.schema.json").read_bytes()
    packaged = (ROOT / "resend_iac" / "schemas" / "resend-iac.schema.json").read_bytes()
    assert top == packaged, "copy schemas/resend-iac.schema.json to resend_iac/schemas/ (package data)"
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(json.loads(top))
    assert checks.schema() == json.loads(top)  # the loader reads the package copy


def test_the_schema_alone_accepts_the_issue_example_and_refuses_typos() -> None:
    """Editors use the schema without our code: it must agree on structure."""
    import jsonschema
    import yaml

    example = yaml.safe_load(
        HEAD + "contacts:\n  - {email: a@example.com, protect: true, segments: [beta-testers]}\n"
        "  - {csv: x.csv, columns: {Email: email}}\n  - {emails: 'b@example.com'}\n"
        "policy: {prune_contacts: false, max_delete_fraction: 0.3, max_update_fraction: 0.3}\n"
    )
    validator = jsonschema.Draft202012Validator(checks.schema())
    assert list(validator.iter_errors(example)) == []
    example["contacts"][0]["segmnts"] = []
    assert [e.validator for e in validator.iter_errors(example)] == ["additionalProperties"]


# ------------------------------------------------------------------ the model mapping


def test_contact_fields_unset_null_and_values(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": HEAD
            + """contacts:
  - email: steve.wozniak@gmail.com
    first_name: Steve
    last_name: Wozniak
    unsubscribed: false
    properties: {company: Apple, plan_tier: 3}
    segments: [beta-testers]
    topics: {product-updates: opt_in}
  - email: " Ronald@Example.com "
    last_name: null
    properties: {company: null}
    protect: true
""",
        },
    )
    state = config.load([tmp_path])
    steve = state.contacts["steve.wozniak@gmail.com"]
    assert (steve.first_name, steve.last_name, steve.unsubscribed) == ("Steve", "Wozniak", False)
    assert steve.properties == {"company": "Apple", "plan_tier": 3}
    assert steve.segments == {"beta-testers"} and steve.topics == {"product-updates": "opt_in"}
    assert steve.protect is None  # not said (False: said, forgets a protect; #23)
    assert steve.location == Location(str(tmp_path / "a.yaml"), 11, 5)
    ron = state.contacts["ronald@example.com"]
    assert ron.email == "Ronald@Example.com"  # trimmed, spelling kept
    assert ron.first_name is UNSET and ron.unsubscribed is UNSET  # left out: unmanaged
    assert ron.last_name is None  # explicit null: clear
    assert ron.properties == {"company": None} and ron.segments == set() and ron.topics == {}
    assert ron.protect is True
    assert state.properties["company"] == Property("company", "string", "n/a")
    assert state.properties["plan_tier"].fallback_value is UNSET
    assert state.properties["company"].location == Location(str(tmp_path / "a.yaml"), 3, 3)
    assert state.segments["newsletter"].membership == "additive"
    assert state.segments["beta-testers"].membership == "authoritative"
    topic = state.topics["product-updates"]
    assert (topic.default_subscription, topic.description, topic.visibility) == (
        "opt_in",
        "Monthly product news",
        "public",
    )
    assert state.policy == Policy()


def test_directory_merges_files_and_references_across_them(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "decl.yaml": HEAD,
            "teams/a.yaml": "version: 1\ncontacts:\n  - {email: a@example.com, segments: [newsletter]}\n",
            "teams/b.yml": "version: 1\ncontacts:\n  - {email: b@example.com, properties: {plan_tier: 2}}\n",
            "policy.yaml": "version: 1\npolicy: {prune_contacts: true, max_delete_fraction: 0.1}\n",
            "more.yaml": "version: 1\npolicy: {prune_contacts: true, prune_topics: true, threshold_min_objects: 5}\n",
            ".hidden/x.yaml": "not: valid: yaml: [",
            "notes.txt": "ignored",
        },
    )
    result = config.read([tmp_path])
    assert result.diagnostics == []
    state = result.state
    assert set(state.contacts) == {"a@example.com", "b@example.com"}
    assert state.policy == Policy(
        prune_contacts=True, prune_topics=True, max_delete_fraction=0.1, threshold_min_objects=5
    )
    assert len(result.files) == 5


def test_csv_rows_convert_types_and_empty_cells_are_unmanaged(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.yaml": HEAD
            + """contacts:
  - csv: seeds/customers.csv
    columns: {Email: email, "First Name": first_name, Company: company, Tier: plan_tier, Unsub: unsubscribed}
    segments: [newsletter]
    topics: {product-updates: opt_out}
    properties: {company: Default Co}
""",
            "seeds/customers.csv": "Email,First Name,Company,Tier,Unsub,Ignored\n"
            " ada@example.com ,Ada,Acme,3,yes,x\n"
            "grace@example.com,,,2.5,0,\n"
            "\n"
            '"linus@example.com","Linus ""T""",,-4,,\n',
        },
    )
    state = config.load([tmp_path / "main.yaml"])
    ada, grace, linus = (
        state.contacts[e] for e in ("ada@example.com", "grace@example.com", "linus@example.com")
    )
    assert ada.email == "ada@example.com" and ada.first_name == "Ada" and ada.unsubscribed is True
    assert ada.properties == {"company": "Acme", "plan_tier": 3}
    assert grace.first_name is UNSET and grace.unsubscribed is False
    assert grace.properties == {
        "company": "Default Co",
        "plan_tier": 2.5,
    }  # entry value where the cell is empty
    assert (
        linus.first_name == 'Linus "T"'
        and linus.unsubscribed is UNSET
        and linus.properties["plan_tier"] == -4
    )
    assert all(
        c.segments == {"newsletter"} and c.topics == {"product-updates": "opt_out"}
        for c in (ada, grace, linus)
    )
    # No shared mutable state between rows: the rows of one entry share one frozenset of
    # segments and one FrozenDict of topics (immutable); their property maps are their own.
    assert isinstance(ada.segments, frozenset) or ada.segments is not grace.segments
    with pytest.raises(AttributeError):
        ada.segments.add("other")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        ada.topics["product-updates"] = "opt_in"
    assert grace.topics == {"product-updates": "opt_out"} and ada.properties is not grace.properties
    csv_file = str(tmp_path / "seeds" / "customers.csv")
    assert [c.location for c in (ada, grace, linus)] == [
        Location(csv_file, 2),
        Location(csv_file, 3),
        Location(csv_file, 5),
    ]


def test_csv_without_columns_uses_header_names_and_counts_multiline_rows(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "main.yaml": HEAD + "contacts:\n  - csv: people.csv\n",
            "people.csv": '\ufeffemail,first_name,company\na@example.com,"Line\nBreak",X\nbad-email,B,Y\n',
        },
    )
    state, diagnostics = config.validate([tmp_path])
    assert state is None
    assert [str(d) for d in diagnostics] == [
        f"{tmp_path / 'people.csv'}:4: 'bad-email' is not a valid email address (it needs exactly one @)"
    ]


def test_emails_shorthand_locations(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": HEAD
            + "contacts:\n  - emails: |\n      ada@example.com, grace@example.com\n      linus@example.com\n"
            "    segments: [beta-testers]\n    unsubscribed: false\n"
            "  - emails: >\n      x@example.com\n      y@example.com\n",
        },
    )
    state = config.load([tmp_path])
    f = str(tmp_path / "a.yaml")
    assert state.contacts["grace@example.com"].location == Location(f, 12, 24)
    assert state.contacts["linus@example.com"].location == Location(f, 13, 7)
    assert state.contacts["y@example.com"].location == Location(f, 18, 7)
    assert state.contacts["ada@example.com"].segments == {"beta-testers"}
    assert state.contacts["ada@example.com"].unsubscribed is False
    assert state.contacts["x@example.com"].first_name is UNSET


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": HEAD + "contacts:\n  - {email: a@example.com, segmnts: []}\n  - {email: nope}\n"
            "  - {email: b@example.com, segments: [ghost]}\n  - csv: missing.csv\n",
            "b.yaml": "version: 1\nsegments:\n  newsletter: {}\n",
        },
    )
    _, diagnostics = config.validate([tmp_path])
    text = "\n".join(map(str, diagnostics))
    assert len(diagnostics) == 5, text
    for wording in (
        "unknown key 'segmnts'",
        "'nope' is not a valid email",
        "segment 'ghost' is not declared",
        "missing.csv' not found",
        "segment 'newsletter' is already declared at",
    ):
        assert wording in text
    assert [d.location.file for d in diagnostics] == sorted(d.location.file for d in diagnostics)


def test_duplicate_keys_in_nested_and_flow_mappings(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "version: 1\ntopics:\n  t: {description: a, description: b}\n"})
    _, diagnostics = config.validate([tmp_path / "a.yaml"])
    assert [str(d) for d in diagnostics] == [
        f"{tmp_path / 'a.yaml'}:3:23: duplicate key 'description' (first at line 3, column 7); "
        "YAML would silently keep only the last one: remove or merge one of them"
    ]


def test_missing_path_and_same_file_twice(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "version: 1\ncontacts: [{email: a@example.com}]\n"})
    state = config.load([tmp_path / "a.yaml", tmp_path, str(tmp_path / "a.yaml")])
    assert list(state.contacts) == ["a@example.com"]
    with pytest.raises(config.ConfigError) as info:
        config.load([tmp_path / "nope.yaml"])
    assert str(info.value.diagnostics[0]).endswith("nope.yaml: no such file or directory")


# ------------------------------------------------------------------ checks (shared with Pulumi)


def test_check_functions_use_the_validate_wording() -> None:
    assert config.check_property({"key": "plan_tier", "type": "number", "fallback_value": 0}) == []
    assert config.check_property({"key": "plan-tier", "type": "number"}) == [
        "property key 'plan-tier' may only contain letters, digits and underscore (found '-'); rename it, e.g. 'plan_tier'"
    ]
    assert config.check_property({"key": "k", "type": "bool"}) == [
        "'type' must be one of string, number, not the string 'bool'"
    ]
    assert config.check_property({"key": "k", "type": "string", "fallback_value": 3}) == [
        "fallback_value: property 'k' is a string, but the value is the number 3: quote it"
    ]
    assert config.check_segment({"name": "vip", "membership": "additive"}) == []
    assert config.check_segment({"name": ""}) == ["a segment name must be a non-empty string"]
    assert config.check_topic({"name": "t", "default_subscription": "opt_in", "visibility": "public"}) == []
    assert config.check_topic({"name": "t" * 51, "description": "d" * 201}) == [
        f"topic name {'t' * 51!r} is 51 characters long; Resend allows at most 50: shorten it",
        "description of topic "
        + repr("t" * 51)
        + " is 201 characters long; Resend allows at most 200: shorten it",
    ]
    props = {"plan_tier": Property("plan_tier", "number")}
    assert config.check_contact({"email": "a@example.com", "properties": {"plan_tier": 2}}, props) == []
    assert config.check_contact({"email": "a@example.com", "properties": {"plan_tier": "2"}}, props) == [
        "property 'plan_tier' is a number, but the value is the string '2': write it without quotes"
    ]
    assert config.check_contact({"email": "a@example.com", "segmnts": []}) == [
        "unknown key 'segmnts' in contact (did you mean 'segments'?)"
    ]
    assert config.check_contact({"email": "a@b.com", "segments": ["x"]}, segments=["y"]) == [
        "segment 'x' is not declared; declare it under segments: or fix the name"
    ]


@pytest.mark.parametrize(
    "email,ok",
    [
        ("a@example.com", True),
        ("first.last+tag@sub.example.co.uk", True),
        ("o'brien@example.ie", True),
        ("josé@exämple.com", True),
        ("a@b", False),
        ("a@@b.com", False),
        ("a b@example.com", False),
        (".a@example.com", False),
        ("a..b@example.com", False),
        ("a@-example.com", False),
        ("a@example.c", False),
        ("a" * 64 + "@example.com", True),
        ("a" * 65 + "@example.com", False),
        ("a@" + "b" * 250 + ".com", False),
        ("", False),
    ],
)
def test_email_syntax(email: str, ok: bool) -> None:
    assert (checks.email_problem(email) is None) is ok


# ------------------------------------------------------------------ the CLI


def test_validate_cli_summary_and_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"ok.yaml": HEAD + "contacts: [{email: a@example.com}]\n", "bad/x.yaml": "version: 1\ncontact: []\n"},
    )
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(tmp_path / "ok.yaml")])
    assert ok.exit_code == 0
    assert ok.stdout == "OK: 1 contacts, 2 properties, 2 segments, 1 topics in 1 file\n"
    bad = runner.invoke(main, ["validate", str(tmp_path / "ok.yaml"), str(tmp_path / "bad")])
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        f"{tmp_path / 'bad' / 'x.yaml'}:2:1: unknown key 'contact' in the top level of the file (did you mean 'contacts'?)",
        "1 error found; nothing was checked against Resend.",
    ]
    assert runner.invoke(main, ["validate"]).exit_code == 2  # a path is required


# ------------------------------------------------------------------ the fast path agrees with the schema

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(["opt_in", "opt_out", "x", ""]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "opt_in"]), inner, max_size=3)
    ),
    max_leaves=6,
)
_entry = st.dictionaries(
    st.sampled_from(
        [
            "email",
            "first_name",
            "last_name",
            "unsubscribed",
            "protect",
            "properties",
            "segments",
            "topics",
            "segmnts",
            "csv",
        ]
    ),
    _value,
    max_size=6,
)


@settings(max_examples=120, deadline=None)
@given(entry=_entry)
def test_plain_contact_fast_path_never_hides_a_schema_error(entry: dict) -> None:
    if checks.plain_contact_ok(entry):
        assert checks.schema_issues(entry, "contactEntry") == []


def test_plain_contact_fast_path_accepts_ordinary_contacts() -> None:
    entry = {
        "email": "a@example.com",
        "first_name": None,
        "unsubscribed": False,
        "protect": True,
        "properties": {"k": 1.5, "j": None},
        "segments": ["s"],
        "topics": {"t": "opt_out"},
    }
    assert checks.plain_contact_ok(entry)
    assert not checks.plain_contact_ok({**entry, "segments": ["s", "s"]})
    assert not checks.plain_contact_ok({**entry, "properties": {"k": True}})


# ------------------------------------------------------------------ never a traceback

_words = st.sampled_from(
    [
        "version",
        "properties",
        "segments",
        "topics",
        "contacts",
        "policy",
        "email",
        "emails",
        "csv",
        "columns",
        "type",
        "string",
        "number",
        "fallback_value",
        "membership",
        "additive",
        "default_subscription",
        "opt_in",
        "description",
        "visibility",
        "public",
        "first_name",
        "unsubscribed",
        "protect",
        "prune_contacts",
        "max_delete_fraction",
        "a@example.com",
        "x",
        "people.csv",
        "Email",
    ]
)
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2), _words)
_doc = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_words, inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None)
@given(doc=st.dictionaries(_words, _doc, max_size=6), version=st.booleans())
def test_any_structure_gets_diagnostics_never_a_crash(doc: dict, version: bool, tmp_path_factory) -> None:
    import yaml

    if version:
        doc["version"] = 1
    root = tmp_path_factory.mktemp("fuzz")
    (root / "people.csv").write_text("email,first_name\nz@example.com,Z\n", encoding="utf-8")
    (root / "a.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with contextlib.chdir(root):  # declared files are read inside the working directory only
        state, diagnostics = config.validate([root / "a.yaml"])
    assert (state is None) == bool(diagnostics)
    for d in diagnostics:
        assert d.location.file.endswith(("a.yaml", "people.csv")) and d.location.line >= 1 and d.message


def test_a_contact_with_a_structural_error_still_gets_its_email_checked(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "version: 1\ncontacts:\n  - {email: nope, segmnts: []}\n"})
    _, diagnostics = config.validate([tmp_path / "a.yaml"])
    assert [(d.location.line, d.location.column, d.message.split(" (")[0]) for d in diagnostics] == [
        (3, 13, "'nope' is not a valid email address"),
        (3, 19, "unknown key 'segmnts' in contact"),
    ]


def test_the_same_contacts_from_yaml_csv_or_shorthand_give_an_equal_state(tmp_path: Path) -> None:
    common = HEAD.replace("version: 1\n", "")
    write(
        tmp_path,
        {
            "yaml/a.yaml": "version: 1\n" + common + "contacts:\n"
            "  - {email: Ada@Example.com, first_name: Ada, properties: {plan_tier: 3}, segments: [newsletter]}\n"
            "  - {email: bob@example.com, segments: [newsletter]}\n",
            "csv/decl.yaml": "version: 1\n" + common,
            "csv/list.yaml": "version: 1\ncontacts:\n  - csv: people.csv\n    segments: [newsletter]\n",
            "csv/people.csv": "email,first_name,plan_tier\nAda@Example.com,Ada,3\nbob@example.com,,\n",
            "mixed/a.yaml": "version: 1\n" + common + "contacts:\n"
            "  - {email: Ada@Example.com, first_name: Ada, properties: {plan_tier: 3}, segments: [newsletter]}\n"
            "  - {emails: 'bob@example.com', segments: [newsletter]}\n",
        },
    )
    from_yaml, from_csv, mixed = (config.load([tmp_path / d]) for d in ("yaml", "csv", "mixed"))
    assert from_yaml == from_csv == mixed
    assert from_csv.contacts["ada@example.com"].location.file.endswith("people.csv")


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.lists(
            st.sampled_from(
                [
                    "a@example.com",
                    "B@example.com",
                    "",
                    " ",
                    "x",
                    "3",
                    "2.5",
                    "yes",
                    "maybe",
                    '"q,"',
                    "é",
                    ",",
                    "\n",
                ]
            ),
            max_size=5,
        ),
        max_size=6,
    ),
    header=st.lists(
        st.sampled_from(["email", "first_name", "plan_tier", "unsubscribed", "company", "Other", ""]),
        max_size=5,
    ),
    mapped=st.booleans(),
)
def test_any_csv_gets_diagnostics_never_a_crash(
    cells: list, header: list, mapped: bool, tmp_path_factory
) -> None:
    root = tmp_path_factory.mktemp("fuzzcsv")
    text = "\n".join(",".join(row) for row in [header, *cells])
    (root / "people.csv").write_text(text, encoding="utf-8")
    columns = "    columns: {email: email, plan_tier: plan_tier, Other: company}\n" if mapped else ""
    (root / "a.yaml").write_text(HEAD + "contacts:\n  - csv: people.csv\n" + columns, encoding="utf-8")
    state, diagnostics = config.validate([root / "a.yaml"])
    assert (state is None) == bool(diagnostics)
    if state is not None:
        for contact in state.contacts.values():
            assert checks.email_problem(contact.email) is None
            assert contact.properties.get("plan_tier") is None or isinstance(
                contact.properties["plan_tier"], (int, float)
            )


def test_validate_touches_no_network(monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("validate tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    result = CliRunner().invoke(main, ["validate", str(ROOT / "examples" / "quickstart")])
    assert result.exit_code == 0, result.output
