"""config.dump: State -> our YAML; loading it gives back an equal State."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resend_iac import config
from resend_iac.model import (
    MEMBERSHIPS,
    SUBSCRIPTIONS,
    UNSET,
    VISIBILITIES,
    Contact,
    Policy,
    Property,
    Segment,
    State,
    Topic,
)

ROOT = Path(__file__).resolve().parent.parent

text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
name = text.map(str.strip).filter(bool)
number = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False, width=64))
key = st.from_regex(r"[A-Za-z0-9_]{1,50}", fullmatch=True).filter(
    lambda k: k not in ("email", "first_name", "last_name", "unsubscribed")
)
email = st.builds(
    lambda local, domain, upper: (
        (f"{local}@{domain}.example").upper() if upper else f"{local}@{domain}.example"
    ),
    st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,10}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s),
    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
    st.booleans(),
)


def maybe(strategy: st.SearchStrategy, null: bool = True) -> st.SearchStrategy:
    options = [st.just(UNSET), strategy]
    if null:
        options.append(st.none())
    return st.one_of(*options)


@st.composite
def states(draw: st.DrawFn) -> State:
    state = State()
    for k in draw(st.lists(key, max_size=4, unique=True)):
        type_ = draw(st.sampled_from(["string", "number"]))
        value = text if type_ == "string" else number
        state.properties[k] = Property(k, type_, draw(maybe(value)))
    for n in draw(st.lists(name, max_size=3, unique=True)):
        state.segments[n] = Segment(n, draw(st.sampled_from(MEMBERSHIPS)))
    for n in draw(st.lists(name.filter(lambda s: len(s) <= 50), max_size=3, unique=True)):
        state.topics[n] = Topic(
            n,
            draw(st.sampled_from(SUBSCRIPTIONS)),
            draw(maybe(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))),
            draw(maybe(st.sampled_from(VISIBILITIES), null=False)),
        )
    for address in draw(st.lists(email, max_size=6, unique_by=str.lower)):
        props = {}
        for k in (
            draw(st.lists(st.sampled_from(sorted(state.properties)), unique=True)) if state.properties else []
        ):
            p = state.properties[k]
            props[k] = draw(st.one_of(st.none(), text if p.type == "string" else number))
        state.add_contact(
            Contact(
                email=address,
                first_name=draw(maybe(text)),
                last_name=draw(maybe(text)),
                unsubscribed=draw(maybe(st.booleans(), null=False)),
                properties=props,
                segments=set(draw(st.lists(st.sampled_from(sorted(state.segments)))))
                if state.segments
                else set(),
                topics={
                    t: draw(st.sampled_from(SUBSCRIPTIONS))
                    for t in draw(st.lists(st.sampled_from(sorted(state.topics))))
                }
                if state.topics
                else {},
                protect=draw(st.booleans()),
            )
        )
    state.policy = Policy(
        prune_contacts=draw(st.booleans()),
        prune_segments=draw(st.booleans()),
        max_delete_fraction=draw(st.sampled_from([0.0, 0.05, 0.3, 1.0])),
        max_update_fraction=draw(st.floats(0, 1)),
        threshold_min_objects=draw(st.integers(0, 1000)),
    )
    return state


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=states())
def test_dump_then_load_round_trips(state: State, tmp_path_factory) -> None:
    text_out = config.dump_yaml(state)
    path = tmp_path_factory.mktemp("dump") / "export.yaml"
    path.write_text(text_out, encoding="utf-8")
    with contextlib.chdir(path.parent):  # declared files are read inside the working directory
        loaded = config.load([path])
    assert loaded == state
    assert config.dump_yaml(loaded) == text_out  # deterministic


def test_dump_is_sorted_and_omits_unset() -> None:
    state = State()
    state.segments["b"] = Segment("b")
    state.segments["a"] = Segment("a", "additive")
    state.add_contact(Contact("Zed@example.com", segments={"b", "a"}))
    state.add_contact(Contact("amy@example.com", first_name=None))
    out = config.dump_yaml(state)
    assert out.splitlines()[1:] == [
        "version: 1",
        "segments:",
        "  a:",
        "    membership: additive",
        "  b: {}",
        "contacts:",
        "- email: amy@example.com",
        "  first_name: null",
        "- email: Zed@example.com",
        "  segments:",
        "  - a",
        "  - b",
    ]


def test_dump_of_the_quickstart_loads_back_equal(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "examples" / "quickstart", "quickstart", ignore=shutil.ignore_patterns(".resend-iac")
    )
    state = config.load(["quickstart"])
    path = tmp_path / "export.yaml"
    path.write_text(config.dump_yaml(state), encoding="utf-8")
    assert config.load([path]) == state
