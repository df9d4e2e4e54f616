"""The pytest side of ``benchmarks/mutation.py``: a plugin (``-p mutation_worker``) that
replaces pytest's test loop for one module under test.

1. Baseline: every selected test runs once, unmutated, while the lines it executes in the
   module are recorded (``sys.settrace``, this process and its threads). A failing test stops
   the run: mutants are only measured against a passing selection.
2. Each mutant: the mutated module is compiled; the code of the one function it is in is
   swapped in place (``function.__code__``, so every reference to the function sees it), or,
   for a mutant at module level, the names that statement binds are rebound (here and in every
   loaded module that imported them). Only the tests that executed the mutated statement run,
   fastest first, stopping at the first failure (killed); each test has a time limit (a
   timeout counts as killed). Then the original code is put back, the module's caches are
   cleared and the fixtures wider than a test that were set up under the mutant are torn down
   (so no value computed by a mutant outlives it).

Job (JSON, path in ``$MUTATION_JOB``): ``module``, ``indices`` (mutants to run), ``out`` (a
JSON-lines file this plugin appends to), ``factor`` and ``floor`` (the time limit of a test: its
baseline time x factor, at least floor seconds). Code run in a child process (a CLI started
with ``subprocess``) is never mutated, and its lines are not recorded.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

sys.path.insert(0, str(Path(__file__).parent))
from mutation_ops import Mutant, mutants, mutated_tree  # noqa: E402


class MutantTimeout(BaseException):
    """A test ran past its time limit under a mutant."""


def _emit(out: Path, record: dict[str, Any]) -> None:
    with out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


class _Tracer:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: set[int] = set()

    def global_trace(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == self.filename:
            self.lines.add(frame.f_lineno)
            return self.local_trace
        return None

    def local_trace(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines.add(frame.f_lineno)
        return self.local_trace


_wide_fixtures: list[tuple[Any, Any]] | None = None


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    if _wide_fixtures is not None and fixturedef.scope != "function":
        _wide_fixtures.append((fixturedef, request))
    return (yield)


def _function(container: Any, path: list[str]) -> Any:
    """The plain function at ``path`` (``["Class", "method"]``) in a module or namespace."""
    obj = container.get(path[0]) if isinstance(container, dict) else getattr(container, path[0])
    for name in path[1:]:
        obj = obj.__dict__[name]
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    return obj


class _Patch:
    """One mutant in place; ``undo()`` puts the original back."""

    def __init__(self, module: Any, source: str, mutant: Mutant) -> None:
        self.module = module
        self.undo_steps: list[Any] = []
        code = compile(mutated_tree(source, mutant), module.__file__, "exec")
        ns: dict[str, Any] = {
            "__name__": module.__name__,
            "__file__": module.__file__,
            "__package__": module.__package__,
            "__builtins__": builtins,
        }
        exec(code, ns)
        if mutant.func_path:
            old, new = _function(module, mutant.func_path), _function(ns, mutant.func_path)
            saved = old.__code__
            old.__code__ = new.__code__
            self.undo_steps.append(lambda: setattr(old, "__code__", saved))
        else:
            for name in mutant.top_names:
                self._rebind(name, module.__dict__.get(name), ns[name])
        self._clear_caches()

    def _rebind(self, name: str, old: Any, new: Any) -> None:
        for m in list(sys.modules.values()):
            d = getattr(m, "__dict__", None)
            if isinstance(d, dict) and name in d and (d[name] is old or m is self.module):
                d[name] = new
                self.undo_steps.append(lambda d=d: d.__setitem__(name, old))

    def _clear_caches(self) -> None:
        for v in list(vars(self.module).values()):
            if callable(getattr(v, "cache_clear", None)):
                v.cache_clear()

    def undo(self) -> None:
        for step in reversed(self.undo_steps):
            step()
        self._clear_caches()


def _imported_elsewhere(module: Any, names: list[str]) -> bool:
    """Does a module other than ``module`` (tests included) hold one of its ``names``' values?"""
    for name in names:
        value = module.__dict__.get(name)
        if value is None or isinstance(value, (bool, int, float)):
            continue  # small constants are shared objects: identity says nothing; see below
        for m in list(sys.modules.values()):
            d = getattr(m, "__dict__", None)
            if m is not module and isinstance(d, dict) and d.get(name) is value:
                return True
    for name in names:
        value = module.__dict__.get(name)
        if isinstance(value, (bool, int, float)):
            for m in list(sys.modules.values()):
                d = getattr(m, "__dict__", None)
                if m is not module and isinstance(d, dict) and name in d and d[name] == value:
                    return True
    return False


def _alarm(signum: int, frame: Any) -> None:
    raise MutantTimeout()


def _run(session: pytest.Session, item: pytest.Item, nextitem: pytest.Item | None) -> tuple[bool, str]:
    session._setupstate.teardown_exact(item)
    reports = runtestprotocol(item, log=False, nextitem=nextitem)
    for r in reports:
        if r.failed:
            text = str(r.longrepr)
            return False, ("timeout" if "MutantTimeout" in text else f"{r.when}: {text[-1500:]}")
    return True, ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool:
    global _wide_fixtures
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    job = json.loads(Path(os.environ["MUTATION_JOB"]).read_text())
    out = Path(job["out"])
    module = importlib.import_module(job["module"])
    filename = module.__file__
    source = Path(filename).read_text(encoding="utf-8")
    found = mutants(source)
    items = list(session.items)
    try:
        from hypothesis import settings

        settings.register_profile("mutation", database=None, deadline=None, derandomize=True)
        settings.load_profile("mutation")
    except ImportError:  # pragma: no cover
        pass

    # 1. baseline
    lines: dict[str, set[int]] = {}
    took: dict[str, float] = {}
    for i, item in enumerate(items):
        tracer = _Tracer(filename)
        sys.settrace(tracer.global_trace)
        threading.settrace(tracer.global_trace)
        t0 = time.perf_counter()
        try:
            ok, when = _run(session, item, items[i + 1] if i + 1 < len(items) else None)
        finally:
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]
        took[item.nodeid] = time.perf_counter() - t0
        lines[item.nodeid] = tracer.lines
        if not ok:
            _emit(out, {"event": "baseline_failed", "test": item.nodeid, "when": when})
            return True
    _emit(
        out,
        {"event": "baseline", "tests": len(items), "seconds": round(sum(took.values()), 2)},
    )
    order = sorted(items, key=lambda it: took[it.nodeid])
    signal.signal(signal.SIGALRM, _alarm)

    # 2. mutants
    for index in job["indices"]:
        m = found[index]
        if m.func_path:
            lo, hi = m.lines
            chosen = [it for it in order if any(lo <= n <= hi for n in lines[it.nodeid])]
        elif _imported_elsewhere(module, m.top_names):
            chosen = order  # another module reads the name too: its lines are not traced
        else:
            uses = set(m.uses)
            chosen = [it for it in order if uses & lines[it.nodeid]]
        limits = [max(job["floor"], took[it.nodeid] * job["factor"]) for it in chosen]
        _emit(out, {"event": "start", "index": index, "limit": sum(limits) + 30, "tests": len(chosen)})
        t0 = time.perf_counter()
        status, killer = "survived", ""
        _wide_fixtures = []
        try:
            patch = _Patch(module, source, m)
        except Exception as e:  # the mutated module does not even load
            status, killer = "killed", f"import: {type(e).__name__}"
            patch = None
        try:
            if patch is not None:
                for j, item in enumerate(chosen):
                    nextitem = order[0] if order[0] is not item else (order[1] if len(order) > 1 else None)
                    signal.setitimer(signal.ITIMER_REAL, limits[j])
                    try:
                        ok, when = _run(session, item, nextitem)
                    except MutantTimeout:
                        ok, when = False, "timeout"
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    if not ok:
                        status = "timeout" if when == "timeout" else "killed"
                        killer = item.nodeid
                        break
        finally:
            if not gc.isenabled():  # a mutant that leaves the cyclic collector off
                gc.enable()
            if patch is not None:
                patch.undo()
            for fixturedef, request in reversed(_wide_fixtures):
                try:
                    fixturedef.finish(request)
                except BaseException:  # noqa: BLE001 - a mutant's fixture may fail to finish
                    pass
            _wide_fixtures = None
        _emit(
            out,
            {
                "event": "result",
                "index": index,
                "status": status,
                "killer": killer,
                "tests": len(chosen),
                "seconds": round(time.perf_counter() - t0, 3),
            },
        )
    # 3. the selection once more, unmutated: a failure here means a mutant's effect outlived it
    # (and its kills are suspect)
    for j, item in enumerate(order):
        ok, when = _run(session, item, order[j + 1] if j + 1 < len(order) else None)
        if not ok:
            _emit(out, {"event": "contaminated", "test": item.nodeid, "when": when})
            break
    else:
        _emit(out, {"event": "clean"})
    session._setupstate.teardown_exact(None)
    return True
