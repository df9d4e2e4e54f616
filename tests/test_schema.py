"""The field schema (resend_iac/model/schema.py): one declaration per field, and the rest of
the code derived from it. These tests fail when a second home for a field appears."""

from __future__ import annotations

import dataclasses
import io
import json
import tokenize
from pathlib import Path

import pytest

from resend_iac.model import Contact, Property, Segment, Topic
from resend_iac.model.jsonschema import declared, json_types
from resend_iac.model.schema import CONTACT, KINDS, PROPERTY, SEGMENT, TOPIC

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resend_iac"
CONFIG_SCHEMA = PACKAGE / "schemas" / "resend-iac.schema.json"
PLAN_SCHEMA = PACKAGE / "schemas" / "resend-iac-plan.schema.json"


def _types(fragment: dict) -> set[str]:
    """The JSON types a schema fragment allows (an enum: the types of its members)."""
    if "enum" in fragment:
        return {{str: "string", bool: "boolean", type(None): "null"}[type(v)] for v in fragment["enum"]}
    t = fragment.get("type", [])
    return set([t] if isinstance(t, str) else t)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_config_schema_lists_exactly_the_declared_fields(kind: str) -> None:
    k = KINDS[kind]
    definition = json.loads(CONFIG_SCHEMA.read_text("utf-8"))["$defs"][kind]["properties"]
    fields = {f.name: f for f in declared(k)}
    relations = {r.name for r in k.relations}
    assert set(definition) == set(fields) | relations
    for name, f in fields.items():
        assert _types(definition[name]) == set(json_types(f)), name
        if f.choices:
            assert definition[name]["enum"] == list(f.choices), name


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_plan_schema_accepts_every_declared_field(kind: str) -> None:
    """A plan's fields: every declared API field (the live side, ``before``, may carry more
    than the files declare: e.g. boolean property values of Resend's CSV import)."""
    k = KINDS[kind]
    definition = json.loads(PLAN_SCHEMA.read_text("utf-8"))["$defs"][kind]["properties"]
    fields = {f.name: f for f in declared(k, plan=True)}
    assert set(definition) == set(fields) | {r.name for r in k.relations}
    for name, f in fields.items():
        allowed = _types(definition[name])
        assert set(json_types(f)) - {"null"} <= allowed, name
        if f.choices:
            assert set(f.choices) <= set(definition[name]["enum"]), name


def test_the_schemas_exist_once() -> None:
    """``schemas/`` (for editors and the docs) is a link to the package's copy."""
    link = ROOT / "schemas"
    assert link.is_symlink() and link.resolve() == (PACKAGE / "schemas").resolve()


@pytest.mark.parametrize(
    ("cls", "kind"), [(Property, PROPERTY), (Segment, SEGMENT), (Topic, TOPIC), (Contact, CONTACT)]
)
def test_the_model_classes_carry_the_declared_fields(cls: type, kind) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    live_only = ["id", "created_at", "location"]
    assert names[-3:] == live_only
    assert [n for n in names if n not in live_only and n not in {r.name for r in kind.relations}] == list(
        kind.names
    )


def test_contact_is_built_from_the_schema() -> None:
    """Contact's fields are the schema's, in its order (the class is made from it)."""
    names = [f.name for f in dataclasses.fields(Contact)]
    assert names == [
        CONTACT.key.name,
        *(f.name for f in CONTACT.values),
        *(r.name for r in CONTACT.relations),
        *(f.name for f in CONTACT.settings),
        "id",
        "created_at",
        "location",
    ]
    assert Contact.__slots__  # one per field: no per-contact __dict__


def _spellings(path: Path, words: set[str]) -> set[str]:
    """The contact field names ``path`` spells in code: names and string literals (not
    comments, not docstrings or other prose)."""
    found: set[str] = set()
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.NAME and tok.string in words:
            found.add(tok.string)
        elif tok.type == tokenize.STRING:
            prev = tokens[i - 1].type if i else tokenize.NEWLINE
            following = tokens[i + 1].type if i + 1 < len(tokens) else tokenize.NEWLINE
            starts = prev in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT)
            if starts and following in (tokenize.NEWLINE, tokenize.ENDMARKER):
                continue  # a docstring (a statement that is only a string)
            text = tok.string.lstrip("rbuRBUfF")
            inner = text.strip("'\"")
            if inner in words:
                found.add(inner)
    return found


def test_at_most_three_modules_spell_a_contact_field() -> None:
    """Outside emulator/ and testing/, a contact field's API name (email aside: it is the
    key, and ``email`` is every change's address too) appears in code in at most three
    modules: the schema, the model's type-checker view and the Pulumi resource's named
    inputs."""
    words = {f.api for f in CONTACT.values} | {f.name for f in CONTACT.values}
    modules = {
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if not {"emulator", "testing"} & set(p.relative_to(PACKAGE).parts) and _spellings(p, words)
    }
    assert len(modules) <= 3, sorted(modules)
    assert "resend_iac/model/schema.py" in modules


def test_the_spelling_count_can_fail(tmp_path: Path) -> None:
    """The counter finds a field spelled in code, and not in a comment or docstring."""
    code = tmp_path / "m.py"
    code.write_text(
        '"""first_name in a docstring."""\n# last_name\nx = {\n    "unsubscribed": 1,\n}\n', "utf-8"
    )
    assert _spellings(code, {"first_name", "last_name", "unsubscribed"}) == {"unsubscribed"}
