"""Plan files are untrusted (issue 12): `apply --plan` checks the schema, the digest (and
the HMAC when RESEND_IAC_PLAN_KEY is set) and every change with validate's rules before the
first request. A tampered plan makes no request at all: counted at a real emulator server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from resend_iac.cli import main
from resend_iac.engine import Change, Plan, PlanFileError, load_plan, save_plan
from resend_iac.engine.planfile import check_plan_data, plan_schema, seal

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture
def remote(emulator_server, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESEND_API_KEY", "re_test_key")
    monkeypatch.setenv("RESEND_API_URL", emulator_server.url)
    monkeypatch.setenv("RESEND_IAC_RATE_LIMIT", "0")
    monkeypatch.delenv("RESEND_IAC_PLAN_KEY", raising=False)
    return emulator_server


def saved_plan(tmp_path: Path, env=None) -> Path:
    doc = {
        "version": 1,
        "properties": {"tier": {"type": "number"}},
        "segments": {"members": {}},
        "topics": {"news": {}},
        "contacts": [
            {
                "email": f"p{i}@example.com",
                "first_name": f"P{i}",
                "segments": ["members"],
                "properties": {"tier": i},
                "topics": {"news": "opt_in"},
            }
            for i in range(3)
        ],
    }
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(doc))
    r = run("plan", tmp_path / "team.yaml", "--out", tmp_path / "p.json", env=env)
    assert r.exit_code == 0, r.output
    return tmp_path / "p.json"


def test_schema_copies_are_identical_and_valid():
    import jsonschema

    top = (ROOT / "schemas" / "resend-iac-plan.schema.json").read_bytes()
    packaged = (ROOT / "resend_iac" / "schemas" / "resend-iac-plan.schema.json").read_bytes()
    assert top == packaged, "copy schemas/resend-iac-plan.schema.json to resend_iac/schemas/ (package data)"
    jsonschema.Draft202012Validator.check_schema(json.loads(top))
    assert plan_schema() == json.loads(top)


def test_saved_plan_is_sealed_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.delenv("RESEND_IAC_PLAN_KEY", raising=False)
    plan = Plan(changes=[Change("create", "segment", "s", None, {"name": "s"})], fingerprint="sha256:x")
    save_plan(plan, tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["digest"].startswith("sha256:") and "hmac" not in data
    assert load_plan(tmp_path / "p.json").to_dict() == plan.to_dict()
    data["freshness"] = {"refresh": "auto", "read_now": 1, "from_cache": 2}  # added by the cache (#10)
    assert check_plan_data(seal(data)) == []


# (what the tamperer does to the saved JSON, wording of the refusal)
def _set(path, value):
    def edit(d):
        node = d
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return edit


TAMPERS = [
    ("edited", lambda d: d["changes"][0]["after"].update(type="string"), "digest does not match"),
    (
        "unknown action",
        _set(["changes", 0, "action"], "frobnicate"),
        'changes[0].action: "frobnicate" is not one of create, update, replace, delete',
    ),
    (
        "unknown kind",
        _set(["changes", 0, "kind"], "webhook"),
        'changes[0].kind: "webhook" is not one of property',
    ),
    ("changes a string", _set(["changes"], "oops"), 'changes: must be array, not "oops"'),
    (
        "action not of kind",
        _set(["changes", 1, "action"], "replace"),
        'changes[1].action: "replace" is not one of create, update, delete',
    ),
    ("extra key", _set(["changes", 0, "shell"], "rm -rf /"), 'unknown key "shell"'),
    ("no digest", lambda d: d.pop("digest"), "has no digest"),
    ("bad policy", _set(["policy", "max_delete_fraction"], 7), "policy.max_delete_fraction: 7 does not fit"),
    ("format", _set(["format_version"], 2), "format_version 2 is not supported"),
]
# sealed again after the edit: the digest matches, the rules refuse
RESEALED = [
    (
        "bad email",
        lambda d: _contact(d).update(key="not-an-email", email="not-an-email"),
        "changes[",
        "not a valid email address",
    ),
    (
        "email not the key",
        lambda d: _contact(d).update(email="other@example.com"),
        "changes[",
        "is not the address of the change's key",
    ),
    (
        "key not normalised",
        lambda d: _contact(d).update(key="P0@Example.com"),
        "changes[",
        "not a normalised address",
    ),
    (
        "property key",
        lambda d: d["changes"][0].update(key="bad-key"),
        "changes[0",
        "may only contain letters, digits and underscore",
    ),
    (
        "fallback type",
        lambda d: d["changes"][0]["after"].update(fallback_value="x"),
        "changes[0]",
        "fallback_value",
    ),
    (
        "property value type",
        lambda d: _contact(d)["after"]["properties"].update(tier=[1]),
        "changes[",
        "must be string or number or boolean or null, not [1]",
    ),
    (
        "value of the plan's type",
        lambda d: _contact(d)["after"]["properties"].update(tier="high"),
        "changes[",
        "property 'tier' is a number, but the value is the string 'high'",
    ),
    (
        "boolean to write",
        lambda d: _contact(d)["after"]["properties"].update(tier=True),
        "changes[",
        "a value to write is a string, a number or null, not True",
    ),
    (
        "boolean property type",
        lambda d: d["changes"][0]["after"].update(type="boolean"),
        "changes[0]",
        "needs its type, string or number",
    ),
    ("twice", lambda d: d["changes"].append(dict(d["changes"][1])), "changes[", "a second change of segment"),
    ("summary", lambda d: d["summary"].update({"segment.create": 9}), "summary", "do not match"),
    ("redacted", lambda d: d.update(redacted=True), "", "redacted plan"),
]


def _contact(d):
    return next(c for c in d["changes"] if c["kind"] == "contact")


@pytest.mark.parametrize("name,edit,wording", TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_plan_is_refused_before_any_request(remote, tmp_path, name, edit, wording):
    path = saved_plan(tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))
    before = remote.stats()["total"]
    r = run("apply", "--plan", path, "--auto-approve")
    assert r.exit_code == 1 and r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code == 1
    assert wording in r.output, r.output
    if wording.startswith("changes["):  # the line the change starts on, as plan --out laid it out
        index = int(wording[len("changes[") :].split("]")[0])
        starts = [n for n, text in enumerate(path.read_text().splitlines(), 1) if text == "    {"]
        assert f"{path}:{starts[index]}: {wording}" in r.output, r.output
    assert "Traceback" not in r.output
    assert remote.stats()["total"] == before  # not one request


@pytest.mark.parametrize("name,edit,where,wording", RESEALED, ids=[t[0] for t in RESEALED])
def test_resealed_plan_is_rechecked_with_validate_rules(remote, tmp_path, name, edit, where, wording):
    path = saved_plan(tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(seal(data), indent=2))
    before = remote.stats()["total"]
    r = run("apply", "--plan", path, "--auto-approve")
    assert r.exit_code == 1, r.output
    assert wording in r.output and where in r.output, r.output
    assert remote.stats()["total"] == before


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_plan_is_refused(remote, tmp_path, cut):
    path = saved_plan(tmp_path)
    text = path.read_text()
    path.write_text(text[: int(len(text) * cut)])
    before = remote.stats()["total"]
    r = run("apply", "--plan", path, "--auto-approve")
    assert r.exit_code == 1 and "not a plan file (invalid JSON" in r.output
    assert f"{path}:" in r.output  # file:line:col
    assert remote.stats()["total"] == before


@pytest.mark.parametrize(
    "text,wording",
    [
        ('{"changes": [], "x": NaN}', "NaN is not allowed"),
        ('{"changes": [], "x": 1e400}', "beyond what JSON numbers"),
        ('{"changes": [], "x": ' + "9" * 5000 + "}", "not a plan file"),
        ('{"changes": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deep"),
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_hostile_json_is_an_error_not_a_traceback(tmp_path, text, wording):
    path = tmp_path / "p.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(PlanFileError, match=wording):
        load_plan(path)


def test_hmac_when_the_key_is_set(remote, tmp_path, monkeypatch):
    env = {"RESEND_IAC_PLAN_KEY": "team-secret-1"}
    path = saved_plan(tmp_path, env=env)
    data = json.loads(path.read_text())
    assert data["hmac"].startswith("hmac-sha256:")
    before = remote.stats()["total"]
    # a tamperer who recomputes the digest cannot recompute the HMAC
    data["changes"][0]["after"]["type"] = "string"
    forged = {**seal(data), "hmac": data["hmac"]}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    r = run("apply", "--plan", tmp_path / "forged.json", "--auto-approve", env=env)
    assert r.exit_code == 1 and "hmac does not verify" in r.output
    # signed, but verified without the key: refused
    r = run("apply", "--plan", path, "--auto-approve", env={"RESEND_IAC_PLAN_KEY": ""})
    assert r.exit_code == 1 and "RESEND_IAC_PLAN_KEY is not set" in r.output
    # an unsigned plan where the key is required
    (tmp_path / "unsigned.json").write_text(json.dumps(seal(json.loads(path.read_text()))))
    r = run("apply", "--plan", tmp_path / "unsigned.json", "--auto-approve", env=env)
    assert r.exit_code == 1 and "carries no hmac" in r.output
    # another key
    r = run("apply", "--plan", path, "--auto-approve", env={"RESEND_IAC_PLAN_KEY": "other"})
    assert r.exit_code == 1 and "hmac does not verify" in r.output
    assert remote.stats()["total"] == before
    assert "team-secret-1" not in r.output
    # the real thing applies
    r = run("apply", "--plan", path, "--auto-approve", env=env)
    assert r.exit_code == 0, r.output
    assert "Apply complete: 7 created" in r.output or "created" in r.output


def test_every_kind_of_change_passes_the_checks(tmp_path):
    """A plan holding every (kind, action) diff makes is accepted as written."""
    ch = [
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
        Change(
            "delete", "property", "flag", {"key": "flag", "type": "boolean"}, None, id="p4"
        ),  # made by an import
        Change("create", "segment", "s", None, {"name": "s"}),
        Change("delete", "segment", "t", {"name": "t"}, None, id="s1"),
        Change(
            "create",
            "topic",
            "news",
            None,
            {"name": "news", "default_subscription": "opt_in", "visibility": "public"},
        ),
        Change("update", "topic", "b", {"description": None}, {"description": "x"}, id="t1"),
        Change(
            "replace",
            "topic",
            "c",
            {"name": "c", "default_subscription": "opt_in"},
            {"name": "c", "default_subscription": "opt_out"},
            id="t2",
        ),
        Change("delete", "topic", "d", {"name": "d", "default_subscription": "opt_in"}, None, id="t3"),
        Change(
            "create",
            "contact",
            "a@x.com",
            None,
            {
                "email": "A@x.com",
                "first_name": "A",
                "segments": ["s"],
                "topics": {"news": "opt_in"},
                "properties": {"tier": 2.5},
            },
            email="A@x.com",
        ),
        Change(
            "update",
            "contact",
            "b@x.com",
            {"first_name": None, "properties": {"co": True}},
            {"first_name": "B", "properties": {"co": "Acme"}},
            id="c1",
            email="b@x.com",
        ),
        Change("delete", "contact", "odd+addr@localhost", {"email": "odd+addr@localhost"}, None, id="c2"),
        Change(
            "create", "membership", "b@x.com", None, {"segment": "s"}, parent="s", id="c1", email="b@x.com"
        ),
        Change(
            "delete", "membership", "b@x.com", {"segment": "t"}, None, parent="t", id="c1", email="b@x.com"
        ),
        Change(
            "update",
            "subscription",
            "b@x.com",
            {"news": "opt_out"},
            {"news": "opt_in"},
            id="c1",
            email="b@x.com",
        ),
    ]
    save_plan(Plan(changes=ch), tmp_path / "p.json")
    assert len(load_plan(tmp_path / "p.json").changes) == len(ch)
