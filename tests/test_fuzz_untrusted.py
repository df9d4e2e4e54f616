"""Fuzzing the untrusted inputs (issue 12) with hypothesis: random and mutated config files
(YAML + CSV) and plan files. Whatever they hold: never a traceback, never a secret in the
output, and never a request before validation has finished (requests are counted at an
in-process emulator behind a counting transport)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resend_iac import config
from resend_iac.cli import apply_cmd, main, plan_cmd
from resend_iac.client import ResendClient
from resend_iac.emulator import create_app
from resend_iac.engine import Change, Plan, PlanFileError, load_plan
from resend_iac.engine.planfile import seal

KEY = "re_test_0123456789_not_a_real_key"
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class Counting(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.ASGITransport(app=create_app(":memory:", rate_limit=0))
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)


def invoke(*args: str) -> tuple[object, int]:
    """Run the CLI with its API client replaced by one that counts requests."""
    counting = Counting()
    with pytest.MonkeyPatch.context() as mp:
        for module in (plan_cmd, apply_cmd):
            mp.setattr(
                module,
                "make_client",
                lambda *a, **k: ResendClient(KEY, "http://emulator", transport=counting, rate_limit=None),
            )
        mp.setenv("NO_COLOR", "1")
        result = CliRunner().invoke(main, list(args))
    return result, counting.requests


def assert_clean(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert KEY not in result.output and "0123456789_not_a" not in result.output


# ---------------------------------------------------------------------------- config files

WORDS = [
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
    "first_name",
    "last_name",
    "unsubscribed",
    "protect",
    "type",
    "fallback_value",
    "membership",
    "default_subscription",
    "visibility",
    "description",
    "prune_contacts",
    "max_delete_fraction",
    "x-a",
    "company",
    "news",
    "members",
    "string",
    "number",
    "opt_in",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.sampled_from(
        [
            "a@example.com",
            "B@Example.com",
            "bad@@x",
            "p.csv",
            "../secret.csv",
            "/proc/self/environ",
            "sub/../p.csv",
            "link.csv",
            "1e400",
            "yes",
            "",
        ]
    ),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=25,
)
SNIPPETS = [
    '"a\\0b"',
    'csv: "p\\0.csv"\n',
    "&a ",
    "*a",
    "<<: *a\n",
    "!!python/object/apply:os.system ['id']",
    "\t",
    "{",
    "[",
    "]",
    ": ",
    "- ",
    "\n  ",
    "csv: ../secret.csv\n",
    "csv: /proc/self/environ\n",
    "\x00",
    "\ufeff",
    "'",
    '"',
    "1.0e+400",
    ".nan",
    ".inf",
    "? ",
    "%YAML 1.1\n",
    "---\n",
    "!!binary aGk=",
    "&b [*b]",
    "#",
]


@st.composite
def config_files(draw) -> tuple[str, str]:
    doc = {"version": draw(st.sampled_from([1, 1, 1, 2, "1"]))}
    doc.update(draw(st.dictionaries(st.sampled_from(WORDS), VALUES, max_size=6)))
    if draw(st.booleans()):
        csv_entry = st.fixed_dictionaries(
            {
                "csv": st.sampled_from(
                    [
                        "p.csv",
                        "../secret.csv",
                        "link.csv",
                        "/proc/self/environ",
                        "sub/../../secret.csv",
                        "p\x00.csv",
                        "p.csv\n",
                        "a" * 300,
                        "a/" * 3000,
                        ".",
                        "",
                        " ",
                        "~root/x",
                    ]
                )
            },
            optional={
                "columns": st.dictionaries(
                    st.sampled_from(["email", "Email", "x", "nope"]),
                    st.sampled_from(["email", "first_name", "company"]),
                    max_size=2,
                )
            },
        )
        doc["contacts"] = draw(
            st.lists(st.dictionaries(st.sampled_from(WORDS), VALUES, max_size=5) | csv_entry, max_size=4)
        )
    try:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:  # pragma: no cover
        text = "version: 1\n"
    for _ in range(draw(st.integers(0, 4))):  # mutations at random places
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    csv = draw(
        st.sampled_from(["email\na@example.com\n", "", 'Email,x\n"a,b\n', f"email,{KEY}\n", "email\n1e400\n"])
        | st.text(max_size=40)
    )
    return text, csv


@SETTINGS
@given(config_files())
def test_fuzz_config_files(files):
    text, csv = files
    base = Path(tempfile.mkdtemp())
    try:
        (base / "secret.csv").write_text(f"email,{KEY}\n{KEY}@x.com\n")
        root = base / "team"
        root.mkdir()
        (root / "t.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        (root / "p.csv").write_text(csv, encoding="utf-8", errors="surrogatepass")
        (root / "link.csv").symlink_to(base / "secret.csv")
        result = config.read([root])  # never raises
        for d in result.diagnostics:
            assert isinstance(d.message, str) and KEY not in str(d)
            assert str(d.location.file).startswith(str(root)), d  # nothing outside the root was read
        assert all(f.startswith(str(root)) for f in result.files), result.files
        cli, requests = invoke("plan", str(root))
        assert_clean(cli)
        if result.state is None:
            assert cli.exit_code == 1 and requests == 0, cli.output  # no request before validation passed
        else:
            assert cli.exit_code in (0, 1)
    finally:
        shutil.rmtree(base)


# ------------------------------------------------------------------------------ plan files

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(
            [
                "create",
                "update",
                "delete",
                "replace",
                "contact",
                "membership",
                "frobnicate",
                "a@x.com",
                "A@X.com",
                "bad@@",
                "sha256:00",
            ]
        ),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


def base_plan() -> dict:
    plan = Plan(
        changes=[
            Change("create", "property", "tier", None, {"key": "tier", "type": "number"}),
            Change("create", "segment", "s", None, {"name": "s"}),
            Change(
                "create",
                "contact",
                "a@x.com",
                None,
                {"email": "a@x.com", "segments": ["s"], "properties": {"tier": 1}},
                email="a@x.com",
            ),
            Change("create", "membership", "b@x.com", None, {"segment": "s"}, parent="s", email="b@x.com"),
            Change(
                "update", "subscription", "b@x.com", {"news": "opt_out"}, {"news": "opt_in"}, email="b@x.com"
            ),
        ],
        fingerprint="sha256:" + "0" * 64,
        live_counts={"contact": 0},
    )
    return json.loads(json.dumps(seal(plan.to_dict())))


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


@st.composite
def plan_texts(draw) -> str:
    data = base_plan()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(paths(data))[1:]))
        parent = data
        for step in where[:-1]:
            parent = parent[step]
        how = draw(st.sampled_from(["set", "delete", "add"]))
        if how == "delete":
            del parent[where[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(JSON)
        else:
            parent[where[-1]] = draw(JSON)
    if draw(st.booleans()):
        data = seal(data)  # the digest matches: the other checks must hold
    text = json.dumps(data, indent=2)
    if draw(st.integers(0, 5)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@SETTINGS
@given(plan_texts())
def test_fuzz_plan_files(text):
    base = Path(tempfile.mkdtemp())
    try:
        path = base / "p.json"
        path.write_text(text)
        try:
            load_plan(path)
            loaded = True
        except PlanFileError as e:
            loaded = False
            assert str(e).startswith(str(path))
        result, requests = invoke("apply", "--plan", str(path), "--auto-approve")
        assert_clean(result)
        if not loaded:
            assert result.exit_code == 1 and requests == 0, result.output
    finally:
        shutil.rmtree(base)


def test_fuzz_finds_the_reported_plan_cases(tmp_path):
    """The cases of the issue, fixed: each refused, no request."""
    for edit in ({"action": "frobnicate"}, {"kind": "webhook"}):
        data = base_plan()
        data["changes"][0].update(edit)
        (tmp_path / "p.json").write_text(json.dumps(seal(data)))
        result, requests = invoke("apply", "--plan", str(tmp_path / "p.json"), "--auto-approve")
        assert result.exit_code == 1 and requests == 0 and "is not one of" in result.output
    data = base_plan()
    data["changes"] = "oops"
    (tmp_path / "p.json").write_text(json.dumps(seal(data)))
    result, requests = invoke("apply", "--plan", str(tmp_path / "p.json"), "--auto-approve")
    assert result.exit_code == 1 and requests == 0 and "changes: must be array" in result.output


FIELD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.sampled_from(["opt_in", "opt_out", "s", "a@x.com"]),
    st.lists(st.sampled_from(["s", 1, None]), max_size=2),
    st.dictionaries(
        st.sampled_from(["news", "tier", "segment"]),
        st.sampled_from(["opt_in", "opt_out", 1, None, "s", True]),
        max_size=2,
    ),
)
TEMPLATES = [
    {
        "action": "create",
        "kind": "contact",
        "key": "a@x.com",
        "before": None,
        "email": "a@x.com",
        "after": {
            "email": "a@x.com",
            "first_name": "A",
            "unsubscribed": False,
            "properties": {"tier": 1, "co": None},
            "segments": ["s"],
            "topics": {"news": "opt_in"},
        },
    },
    {
        "action": "update",
        "kind": "contact",
        "key": "a@x.com",
        "id": "c1",
        "email": "a@x.com",
        "before": {"first_name": None, "properties": {"tier": 1}},
        "after": {"first_name": "B", "properties": {"tier": 2.5}},
    },
    {
        "action": "delete",
        "kind": "contact",
        "key": "a@x.com",
        "id": "c1",
        "before": {"email": "a@x.com"},
        "after": None,
    },
    {
        "action": "create",
        "kind": "membership",
        "key": "a@x.com",
        "parent": "s",
        "before": None,
        "after": {"segment": "s"},
    },
    {
        "action": "delete",
        "kind": "membership",
        "key": "a@x.com",
        "parent": "s",
        "before": {"segment": "s"},
        "after": None,
    },
]


@st.composite
def perturbed_changes(draw) -> dict:
    change = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(list(paths(change))[1:]))
        parent = change
        for step in where[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[where[-1]]
        else:
            parent[where[-1]] = draw(FIELD)
    return change


CHANGES = perturbed_changes()


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(CHANGES)
def test_the_plan_fast_path_never_accepts_what_the_schema_refuses(change):
    """`_plain_change_ok` skips jsonschema for the common changes: it must be a strict subset."""
    from resend_iac.engine.planfile import _plain_change_ok, _validator

    if _plain_change_ok(change):
        assert list(_validator("change").iter_errors(change)) == [], change
