"""Drive Pulumi dynamic providers the way the Pulumi engine does, without the Pulumi CLI.

``ProviderServer`` starts the SDK's own dynamic-provider server (``python -m pulumi.dynamic``,
the program the CLI launches for ``pulumi-python:dynamic`` resources) as a subprocess, reads
the port it prints, and talks to it over gRPC with the SDK's ``ResourceProviderStub``. Like
the engine, it first calls ``GetPluginInfo`` and ``Configure``, then sends every request with
the dill-serialised provider (``pulumi.dynamic.dynamic.serialize_provider``, exactly what
``pulumi.dynamic.Resource`` stores) under the ``__provider`` input.

Values travel as protobuf ``Struct``s, as from the engine: numbers become floats, ``None``
disappears, an unknown (preview) value is the string ``UNKNOWN``. The engine strips secrets
for the dynamic provider (its ``Configure`` answers ``acceptSecrets=False``), so plain values
are what a provider sees.

The low-level calls (``check``, ``diff``, ``create``, ``read``, ``update``, ``delete``) take
and return plain dicts without ``__provider``. ``Engine`` strings them together into the step
sequences the engine runs for ``pulumi up`` (check, then create, or diff then update/replace),
``pulumi refresh`` (read with the prior outputs and inputs), an import
(``ResourceOptions(import_=id)``: read with only the program's inputs) and ``pulumi destroy``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

PROVIDER_KEY = "__provider"
UNKNOWN = rpc.UNKNOWN  # what the engine sends for a value not known during preview

STACK = "dev"
PROJECT = "resend-iac-tests"


class ProviderError(Exception):
    """The provider raised: the server aborted the call (``grpc.StatusCode.UNKNOWN``) with the
    provider's traceback as details."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method} failed ({code.name}): {details}")
        self.method = method
        self.code = code
        self.details = details


def type_token(provider: Any) -> str:
    """The resource type the SDK registers for a dynamic resource: the class's
    ``_resource_type_name`` when a resource class is known, else the default."""
    name = getattr(provider, "resource_type_name", None) or "dynamic:Resource"
    return f"pulumi-python:{name}"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{type_}::{name}"


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({k: v for k, v in props.items() if v is not None})
    return s


def from_struct(s: struct_pb2.Struct) -> dict[str, Any]:
    return MessageToDict(s) if s is not None else {}


def _strip(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


@dataclass
class Failure:
    property: str
    reason: str


@dataclass
class DiffResult:
    changes: str  # "DIFF_SOME" | "DIFF_NONE" | "DIFF_UNKNOWN"
    replaces: list[str] = field(default_factory=list)
    delete_before_replace: bool = False

    @property
    def some(self) -> bool:
        return self.changes == "DIFF_SOME"


class ProviderServer:
    """``python -m pulumi.dynamic`` in a subprocess, with a typed gRPC stub.

    ``env`` is added to the server's environment (e.g. ``RESEND_API_URL``, ``RESEND_API_KEY``):
    providers read it when called, like under ``pulumi up``. ``cwd``: the Pulumi project
    directory the CLI would run it in.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.env = dict(env or {})
        self.cwd = cwd  # the CLI runs providers in the Pulumi project directory
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: provider_pb2_grpc.ResourceProviderStub | None = None
        self._serialized: dict[int, tuple[Any, str]] = {}

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "ProviderServer":
        # The tests directory on the path too, so that providers defined in test modules
        # unpickle (dill pickles importable classes by reference).
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PULUMI_PROJECT": PROJECT, "PYTHONPATH": path, **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"],
            stdout=subprocess.PIPE,
            stderr=None,  # the provider's own prints and tracebacks go to the test's stderr
            env=env,
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"pulumi.dynamic did not print a port (got {line!r})")
        self.port = int(line)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=self.timeout)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        # What the engine does with any provider plugin before using it.
        self.plugin_version = self.stub.GetPluginInfo(empty_pb2.Empty()).version
        self.configure_response = self.stub.Configure(
            provider_pb2.ConfigureRequest(args=to_struct({}), acceptSecrets=True, acceptResources=True)
        )
        return self

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> "ProviderServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------
    def serialized(self, provider: Any) -> str:
        """The provider as ``pulumi.dynamic.Resource`` stores it under ``__provider``
        (cached per instance so that the server's per-string provider cache is hit, as in a
        real deployment where every resource of a class carries the same string)."""
        # The entry keeps the provider alive: were it freed, a new provider of another class
        # could be allocated at the same address (same id()) and get this one's string.
        key = id(provider)
        if key not in self._serialized:
            self._serialized[key] = (provider, serialize_provider(provider))
        return self._serialized[key][1]

    def _with_provider(self, provider: Any, props: Mapping[str, Any] | None) -> struct_pb2.Struct:
        if props is None:
            return struct_pb2.Struct()
        return to_struct({**props, PROVIDER_KEY: self.serialized(provider)})

    def _call(self, method: str, request: Any) -> Any:
        assert self.stub is not None, "server not started"
        try:
            return getattr(self.stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:  # the provider raised: surface its traceback
            raise ProviderError(method, e.code(), e.details() or "") from None

    # -- the ResourceProvider calls, as the engine makes them ----------------------------
    def check(
        self,
        provider: Any,
        news: Mapping[str, Any],
        olds: Mapping[str, Any] | None = None,
        *,
        name: str = "r",
    ) -> tuple[dict[str, Any], list[Failure]]:
        t = type_token(provider)
        resp = self._call(
            "Check",
            provider_pb2.CheckRequest(
                urn=urn(t, name),
                name=name,
                type=t,
                olds=self._with_provider(provider, olds) if olds else struct_pb2.Struct(),
                news=self._with_provider(provider, news),
            ),
        )
        failures = [Failure(f.property, f.reason) for f in resp.failures]
        return _strip(from_struct(resp.inputs)), failures

    def diff(
        self,
        provider: Any,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        name: str = "r",
    ) -> DiffResult:
        t = type_token(provider)
        resp = self._call(
            "Diff",
            provider_pb2.DiffRequest(
                id=id_,
                urn=urn(t, name),
                name=name,
                type=t,
                olds=self._with_provider(provider, olds),
                news=self._with_provider(provider, news),
                old_inputs=self._with_provider(provider, old_inputs or olds),
            ),
        )
        return DiffResult(
            changes=provider_pb2.DiffResponse.DiffChanges.Name(resp.changes),
            replaces=list(resp.replaces),
            delete_before_replace=resp.deleteBeforeReplace,
        )

    def create(
        self, provider: Any, inputs: Mapping[str, Any], *, name: str = "r"
    ) -> tuple[str, dict[str, Any]]:
        t = type_token(provider)
        resp = self._call(
            "Create",
            provider_pb2.CreateRequest(
                urn=urn(t, name),
                name=name,
                type=t,
                properties=self._with_provider(provider, inputs),
            ),
        )
        return resp.id, _strip(from_struct(resp.properties))

    def read(
        self,
        provider: Any,
        id_: str,
        properties: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        *,
        name: str = "r",
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """Refresh passes the prior outputs and inputs; an import passes no outputs (and, for
        ``import_``, the program's inputs). Returns (id, outputs, inputs or None); an empty id
        means the object is gone."""
        t = type_token(provider)
        resp = self._call(
            "Read",
            provider_pb2.ReadRequest(
                id=id_,
                urn=urn(t, name),
                name=name,
                type=t,
                properties=self._with_provider(provider, properties),
                inputs=self._with_provider(provider, inputs if inputs is not None else {}),
            ),
        )
        new_inputs = _strip(from_struct(resp.inputs)) if resp.HasField("inputs") else None
        return resp.id, _strip(from_struct(resp.properties)), new_inputs

    def update(
        self,
        provider: Any,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        name: str = "r",
    ) -> dict[str, Any]:
        t = type_token(provider)
        resp = self._call(
            "Update",
            provider_pb2.UpdateRequest(
                id=id_,
                urn=urn(t, name),
                name=name,
                type=t,
                olds=self._with_provider(provider, olds),
                news=self._with_provider(provider, news),
                old_inputs=self._with_provider(provider, old_inputs or olds),
            ),
        )
        return _strip(from_struct(resp.properties))

    def delete(
        self,
        provider: Any,
        id_: str,
        properties: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        name: str = "r",
    ) -> None:
        t = type_token(provider)
        self._call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=id_,
                urn=urn(t, name),
                name=name,
                type=t,
                properties=self._with_provider(provider, properties),
                old_inputs=self._with_provider(provider, old_inputs or properties),
            ),
        )


# -- the engine's step sequences ---------------------------------------------------------


class CheckFailed(Exception):
    def __init__(self, failures: list[Failure]) -> None:
        super().__init__("; ".join(f"{f.property}: {f.reason}" for f in failures))
        self.failures = failures


@dataclass
class ResourceState:
    """What the engine keeps in the stack state for one resource."""

    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class StepResult:
    op: str  # "create" | "same" | "update" | "replace"
    state: ResourceState
    diff: DiffResult | None = None


class Engine:
    """The engine's sequences for one resource at a time, over a ``ProviderServer``."""

    def __init__(self, server: ProviderServer) -> None:
        self.server = server

    def up(
        self,
        provider: Any,
        name: str,
        inputs: Mapping[str, Any],
        prior: ResourceState | None = None,
    ) -> StepResult:
        """``pulumi up`` for one resource: Check, then Create (new) or Diff and then nothing,
        Update or a replacement (delete-before-replace if the provider asks for it)."""
        s = self.server
        checked, failures = s.check(provider, inputs, prior.inputs if prior else None, name=name)
        if failures:
            raise CheckFailed(failures)
        if prior is None:
            id_, outs = s.create(provider, checked, name=name)
            return StepResult("create", ResourceState(name, id_, checked, outs))
        d = s.diff(provider, prior.id, prior.outputs, checked, old_inputs=prior.inputs, name=name)
        if not d.some:
            return StepResult("same", ResourceState(name, prior.id, checked, prior.outputs), d)
        if d.replaces:
            if d.delete_before_replace:
                s.delete(provider, prior.id, prior.outputs, old_inputs=prior.inputs, name=name)
                id_, outs = s.create(provider, checked, name=name)
            else:
                id_, outs = s.create(provider, checked, name=name)
                s.delete(provider, prior.id, prior.outputs, old_inputs=prior.inputs, name=name)
            return StepResult("replace", ResourceState(name, id_, checked, outs), d)
        outs = s.update(provider, prior.id, prior.outputs, checked, old_inputs=prior.inputs, name=name)
        return StepResult("update", ResourceState(name, prior.id, checked, outs), d)

    def refresh(self, provider: Any, state: ResourceState) -> ResourceState | None:
        """``pulumi refresh``: Read with the prior outputs and inputs. None = gone."""
        id_, outs, inputs = self.server.read(provider, state.id, state.outputs, state.inputs, name=state.name)
        if not id_:
            return None
        return ResourceState(state.name, id_, inputs if inputs is not None else state.inputs, outs)

    def import_(self, provider: Any, name: str, id_: str, inputs: Mapping[str, Any]) -> StepResult:
        """``ResourceOptions(import_=id)``: Read with no prior outputs (the SDK falls back to
        the program's inputs to find ``__provider``), then Check and Diff the program's inputs
        against what was read; the engine refuses the import when they differ."""
        s = self.server
        got_id, outs, read_inputs = s.read(provider, id_, None, inputs, name=name)
        if not got_id:
            raise LookupError(f"import: {id_} does not exist")
        olds = read_inputs if read_inputs is not None else outs
        checked, failures = s.check(provider, inputs, olds, name=name)
        if failures:
            raise CheckFailed(failures)
        d = s.diff(provider, got_id, outs, checked, old_inputs=olds, name=name)
        state = ResourceState(name, got_id, checked, outs)
        return StepResult("import" if not d.some else "import-mismatch", state, d)

    def destroy(self, provider: Any, state: ResourceState) -> None:
        self.server.delete(provider, state.id, state.outputs, old_inputs=state.inputs, name=state.name)


# The engine protobuf types, re-exported for tests that build requests by hand.
__all__ = [
    "PROVIDER_KEY",
    "UNKNOWN",
    "ProviderServer",
    "ProviderError",
    "Engine",
    "ResourceState",
    "StepResult",
    "CheckFailed",
    "Failure",
    "DiffResult",
    "plugin_pb2",
    "provider_pb2",
]
