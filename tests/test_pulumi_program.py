"""examples/pulumi as a Pulumi program, under ``pulumi.runtime.set_mocks`` (no CLI needed).

1. With plain mocks: the resources the program declares, their types and inputs, and the
   dill-serialised provider each one carries.
2. As a whole ``pulumi up``: mocks that hand every registration to the real provider through
   the SDK's dynamic-provider server (check, then create), against a real emulator, so the
   example is shown to create what it declares.
"""

from __future__ import annotations

import asyncio
import base64
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import httpx
import pulumi
import pytest
from pulumi.runtime import Mocks
from pulumi_harness import PROVIDER_KEY, Engine, ProviderServer

from resend_iac.config import validate
from resend_iac.emulator.server import EmulatorProcess
from resend_iac.pulumi import (
    ContactListProvider,
    ContactPropertyProvider,
    ContactProvider,
    SegmentProvider,
    TopicProvider,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pulumi"
KEY = "re_pulumi_program_test"
T = "pulumi-python:dynamic/resend:"


def _unwrap(value: Any) -> Any:
    """Inputs as the mock monitor sees them: secrets arrive wrapped."""
    if isinstance(value, dict) and "value" in value and len(value) == 2:
        return value["value"]
    return value


def _provider(inputs: dict) -> Any:
    return dill.loads(base64.b64decode(_unwrap(inputs[PROVIDER_KEY])))


class Recorder(Mocks):
    """Records registrations; ids are '<name>-id', outputs echo the inputs."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


class Deployer(Mocks):
    """``pulumi up`` of a fresh stack: each registration is checked and created by its real
    provider through the dynamic-provider server, as the engine would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.created: dict[str, tuple[str, str, dict]] = {}  # name -> (type, id, outputs)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = {k: v for k, v in args.inputs.items() if k != PROVIDER_KEY}
        step = self.engine.up(_provider(args.inputs), args.name, inputs)
        self.created[args.name] = (args.typ, step.state.id, step.state.outputs)
        return step.state.id, step.state.outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


def _run_program(mocks: Mocks, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Run examples/pulumi/__main__.py under ``mocks`` from the project directory (as the
    CLI does) and wait for every registration; returns the stack's exports."""
    monkeypatch.chdir(EXAMPLE)
    # Pulumi's mocks need a current event loop in this thread; an earlier asyncio.run()
    # in the same process (other tests) leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project="resend-contacts", stack="dev", preview=False)
    exports: dict = {}

    @pulumi.runtime.test
    def program() -> Any:
        ns = runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__")
        contacts = ns["contacts"]
        return pulumi.Output.all(
            ns["customers"].id, [c.id for c in contacts], ns["newsletter"].plan_summary
        ).apply(lambda v: exports.update(segment=v[0], contacts=v[1], plan=v[2]))

    program()
    return exports


def test_example_files() -> None:
    assert (
        "runtime:" in (EXAMPLE / "Pulumi.yaml").read_text()
        and "python" in (EXAMPLE / "Pulumi.yaml").read_text()
    )
    reqs = [
        line.strip()
        for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert any(r.startswith("pulumi") for r in reqs)
    # resend-iac is installed from this repository, relative to the example's directory
    local = [r.split()[-1].removesuffix("[pulumi]") for r in reqs if r.startswith("-e ")]
    assert len(local) == 1
    assert 'name = "resend-iac"' in (EXAMPLE / local[0] / "pyproject.toml").read_text()
    state, diagnostics = validate([EXAMPLE / "contacts.yaml"])
    assert diagnostics == [] and state is not None and len(state.contacts) == 4


def test_program_declares_the_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESEND_API_KEY", KEY)  # as under `pulumi up`
    mocks = Recorder()
    exports = _run_program(mocks, monkeypatch)
    # Nothing registered (what the state would hold) carries the key.
    for r in mocks.resources:
        assert KEY not in repr(r.inputs)
        if PROVIDER_KEY in r.inputs:
            assert KEY.encode() not in base64.b64decode(_unwrap(r.inputs[PROVIDER_KEY]))
    by_name = {r.name: r for r in mocks.resources if r.typ.startswith(T)}
    assert {n: r.typ for n, r in by_name.items()} == {
        "company": T + "ContactProperty",
        "plan-tier": T + "ContactProperty",
        "customers": T + "Segment",
        "product-updates": T + "Topic",
        "ada": T + "Contact",
        "grace": T + "Contact",
        "alan": T + "Contact",
        "newsletter": T + "ContactList",
    }
    company = by_name["company"].inputs
    assert (company["key"], company["type"], company["fallback_value"]) == ("company", "string", "n/a")
    topic = by_name["product-updates"].inputs
    assert (topic["name"], topic["default_subscription"], topic["visibility"]) == (
        "product-updates",
        "opt_in",
        "public",
    )
    ada = by_name["ada"].inputs
    assert ada["email"] == "ada@example.com" and ada["first_name"] == "Ada"
    assert ada["properties"] == {"company": "Analytical Engines", "plan_tier": 3}
    assert ada["segment_ids"] == ["customers-id"]  # the Segment's id, resolved
    assert ada["topics"] == {"product-updates-id": "opt_in"}  # the Topic's id, resolved
    assert by_name["newsletter"].inputs["path"] == "contacts.yaml"
    assert exports["segment"] == "customers-id" and exports["contacts"] == ["ada-id", "grace-id", "alan-id"]

    # Each carries its provider, dill-serialised, as the dynamic-provider server loads it.
    kinds = {n: type(_provider(r.inputs)) for n, r in by_name.items()}
    assert kinds["company"] is ContactPropertyProvider and kinds["customers"] is SegmentProvider
    assert kinds["product-updates"] is TopicProvider and kinds["ada"] is ContactProvider
    assert kinds["newsletter"] is ContactListProvider


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(db_path=":memory:", rate_limit=500).start()
    try:
        yield emu
    finally:
        emu.stop()


def test_pulumi_up_of_the_example(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"RESEND_API_URL": emulator.url, "RESEND_API_KEY": KEY}
    with ProviderServer(env, cwd=EXAMPLE) as server:  # the project directory, as under the CLI
        mocks = Deployer(Engine(server))
        exports = _run_program(mocks, monkeypatch)

    assert len(mocks.created) == 8
    headers = {"Authorization": f"Bearer {KEY}", "User-Agent": "resend-iac-tests/1"}
    with httpx.Client(base_url=emulator.url, headers=headers) as api:
        contacts = {c["email"]: c for c in api.get("/contacts").json()["data"]}
        assert set(contacts) == {
            "ada@example.com",
            "grace@example.com",
            "alan@example.com",  # Contact resources
            "linus@example.com",
            "margaret@example.com",
            "dennis@example.com",  # ContactList
            "barbara@example.com",
        }
        segments = {s["name"]: s["id"] for s in api.get("/segments").json()["data"]}
        assert exports["segment"] == segments["customers"]
        members = {c["email"] for c in api.get(f"/segments/{segments['customers']}/contacts").json()["data"]}
        assert members == {"ada@example.com", "grace@example.com", "alan@example.com"}
        ada = api.get(f"/contacts/{contacts['ada@example.com']['id']}").json()
        assert ada["properties"]["company"]["value"] == "Analytical Engines"
        topics = api.get(f"/contacts/{ada['id']}/topics").json()["data"]
        assert [(t["name"], t["subscription"]) for t in topics] == [("product-updates", "opt_in")]
    assert mocks.created["newsletter"][2]["applied"] == "Plan: 1 segment to create; 4 contacts to create."
