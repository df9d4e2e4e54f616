"""pytest plugin (entry point ``pytest11``): the ``resend_emulator`` fixture.

- One emulator server per test session (uvicorn in a thread, 127.0.0.1, a free port),
  started the first time a test asks for ``resend_emulator``: tests that don't ask start
  nothing and see no change.
- Each test gets a new, empty team (a fresh in-memory emulator app behind the same server)
  made with the options below; ``@pytest.mark.resend_seed("team.yaml", ...)`` (paths
  relative to the test file; the closest marker wins) applies declared state first.
- For the test's duration ``RESEND_API_URL``, ``RESEND_BASE_URL`` and ``RESEND_API_KEY`` point
  at the emulator, and so do ``resend.api_url`` / ``resend.api_key`` of the official Python
  SDK (which reads the variables once, at import); all are restored after.

Options, each as a command-line flag, an ini key, or a keyword of
``@pytest.mark.resend_emulator(...)`` (marker > command line > ini > default):

=========================  ========================  ==========  ==================================
marker keyword             flag / ini key            default     meaning
=========================  ========================  ==========  ==================================
``rate_limit``             ``--resend-rate-limit``   ``0``       requests/s for the team (0 = off)
``fail_rate``              ``--resend-fail-rate``    ``0``       share answered 500/503
``latency_ms``             ``--resend-latency-ms``   ``0``       delay added to every answer
``seed``                   ``--resend-fault-seed``   random      seeds the fault injector
``unknowns``               ``--resend-unknowns``     ``benign``  emulator profile (benign|hostile)
``list_lag``               ``--resend-list-lag``     ``0``       seconds lists lag behind writes
``api_key``                ``--resend-api-key``      see below   the one key the emulator accepts
=========================  ========================  ==========  ==================================

(ini keys are the flags without the leading dashes, ``-`` as ``_``: ``resend_rate_limit``.)
``unknowns`` and ``list_lag`` are passed on only to an emulator that has them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resend_iac.testing.emulator import (
    EmulatorThread,
    RecordedRequest,
    ResendEmulator,
    create_app_kwargs,
)

DEFAULT_API_KEY = "re_test_emulator"
ENV_VARS = ("RESEND_API_URL", "RESEND_BASE_URL", "RESEND_API_KEY")

# marker keyword -> (flag, type, help)
OPTIONS: dict[str, tuple[str, type, str]] = {
    "rate_limit": (
        "--resend-rate-limit",
        float,
        "emulator rate limit in requests/s for the team (default 0 = off)",
    ),
    "fail_rate": ("--resend-fail-rate", float, "share of emulator requests answered 500/503 (default 0)"),
    "latency_ms": ("--resend-latency-ms", float, "delay added to every emulator answer (ms)"),
    "seed": ("--resend-fault-seed", int, "seed of the emulator's fault injector"),
    "unknowns": (
        "--resend-unknowns",
        str,
        "emulator profile for unknown API behaviour: benign or hostile (emulators that have it)",
    ),
    "list_lag": (
        "--resend-list-lag",
        float,
        "seconds the emulator's lists lag behind writes (emulators that have it)",
    ),
    "api_key": ("--resend-api-key", str, f"the API key the emulator accepts (default {DEFAULT_API_KEY})"),
}
DEFAULTS: dict[str, Any] = {"rate_limit": 0.0}
# resend_seed file sets already seeded in this session -> a template app to copy from
_SEED_TEMPLATES: dict[Any, Any] = {}


def _ini_name(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resend-iac", "resend-iac emulator (the resend_emulator fixture)")
    for _keyword, (flag, _type, help_) in OPTIONS.items():
        group.addoption(flag, dest=_ini_name(flag), default=None, help=help_)
        parser.addini(_ini_name(flag), help_, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "resend_seed(*paths): apply these resend-iac config files/directories "
        "(relative to the test file) to the resend_emulator team before the test",
    )
    config.addinivalue_line(
        "markers",
        "resend_emulator(**options): options of the resend_emulator fixture for "
        "this test (rate_limit, fail_rate, latency_ms, seed, unknowns, list_lag, api_key)",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    config = request.config
    values: dict[str, Any] = dict(DEFAULTS)
    for keyword, (flag, type_, _help) in OPTIONS.items():
        name = _ini_name(flag)
        raw = config.getoption(name, None)
        source = flag
        if raw is None:
            raw = config.getini(name)
            source = f"ini {name}"
        if raw in (None, "", []):
            continue
        try:
            values[keyword] = type_(raw)
        except ValueError:
            raise pytest.UsageError(f"{source}={raw!r} is not a {type_.__name__}") from None
    marker = request.node.get_closest_marker("resend_emulator")
    if marker is not None:
        if marker.args:
            pytest.fail(
                "@pytest.mark.resend_emulator takes keywords only, e.g. resend_emulator(rate_limit=5)",
                pytrace=False,
            )
        unknown = set(marker.kwargs) - set(OPTIONS)
        if unknown:
            pytest.fail(
                f"@pytest.mark.resend_emulator: unknown option(s) {sorted(unknown)}; "
                f"known: {', '.join(OPTIONS)}",
                pytrace=False,
            )
        values.update(marker.kwargs)
    return values


def _test_file(request: pytest.FixtureRequest) -> Path:
    path = getattr(request, "path", None)  # pytest >= 7
    return Path(path if path is not None else str(request.fspath))  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def _resend_emulator_server() -> Iterator[EmulatorThread]:
    server = EmulatorThread().start()
    try:
        yield server
    finally:
        server.stop()


def _resend_sdk() -> Any:
    """The official ``resend`` package, imported, when it is installed (else None)."""
    if "resend" in sys.modules:
        return sys.modules["resend"]
    if importlib.util.find_spec("resend") is None:
        return None
    import resend

    return resend


@pytest.fixture
def resend_emulator(
    request: pytest.FixtureRequest, _resend_emulator_server: EmulatorThread
) -> Iterator[ResendEmulator]:
    """An empty Resend team in the emulator (or the ``resend_seed`` marker's state), with the
    SDK environment pointing at it. See ``resend_iac.testing.ResendEmulator``."""
    from resend_iac.config import ConfigError
    from resend_iac.emulator import create_app

    options = _options(request)
    api_key = str(options.pop("api_key", DEFAULT_API_KEY))
    problem = None
    try:
        kwargs = create_app_kwargs(options)
    except ValueError as e:
        problem = f"resend_emulator: {e}"
    if problem:
        pytest.fail(problem, pytrace=False)
    app = create_app(":memory:", api_keys=[api_key], **kwargs)
    server = _resend_emulator_server
    log: list[RecordedRequest] = []
    handle = ResendEmulator(
        server.url, api_key, app, options=kwargs, base=_test_file(request).parent, log=log
    )
    marker = request.node.get_closest_marker("resend_seed")
    if marker is not None:
        try:
            handle.seed_fresh(marker.args, _SEED_TEMPLATES)
        except (ConfigError, ValueError) as e:
            problem = f"@pytest.mark.resend_seed({', '.join(map(repr, marker.args))}): {e}"
        if problem:
            pytest.fail(problem, pytrace=False)

    saved_env = {name: os.environ.get(name) for name in ENV_VARS}
    os.environ.update(
        {"RESEND_API_URL": handle.url, "RESEND_BASE_URL": handle.url, "RESEND_API_KEY": api_key}
    )
    sdk = _resend_sdk()
    saved_sdk = {
        name: getattr(sdk, name) for name in ("api_url", "api_key") if sdk is not None and hasattr(sdk, name)
    }
    for name in saved_sdk:
        setattr(sdk, name, handle.url if name == "api_url" else api_key)
    server.switch.use(app, log)
    try:
        yield handle
    finally:
        server.switch.use(None)
        for name, value in saved_sdk.items():
            setattr(sdk, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
