"""Shared fixtures: the emulator in-process and as a real uvicorn server.

- ``emulator_app``: a fresh in-process app (``:memory:``, rate limiting off).
- ``asgi_client``: an ``httpx.AsyncClient`` on that app through ``ASGITransport``
  (auth and User-Agent headers set, ``base_url="http://emulator"``). Async tests
  (``async def test_…``) run under anyio's pytest plugin without a marker.
- ``emulator_server``: a real uvicorn server in a child process on a free 127.0.0.1 port,
  shared by the session, rate limiting off, emptied (``reset()``) before each test.
  Has ``.url``, ``.stats()``, ``.reset()``.
- ``start_emulator(**create_app_kwargs)``: a factory for a dedicated server (own
  options, e.g. ``rate_limit=5``, ``db_path=...``, ``api_keys=[...]``; ``create_app``'s
  defaults otherwise, so rate limiting is ON at 5 req/s unless you pass ``rate_limit=0``).
  Returns a started ``EmulatorProcess`` (also ``.stop()``, ``.kill()``, ``.restart()``);
  all are stopped at the end of the test.

Servers never outlive the tests: they are stopped at teardown, and a child also exits
by itself when the test process goes away (its stdin closes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from resend_iac.emulator import create_app
from resend_iac.emulator.server import EmulatorProcess

TEST_HEADERS = {"Authorization": "Bearer re_test", "User-Agent": "resend-iac-tests/1"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn) and item.get_closest_marker("anyio") is None:
            item.add_marker(pytest.mark.anyio)


@pytest.fixture(scope="session", autouse=True)
def _refresh_cache_for_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Processes started by session or module fixtures (provider servers) inherit a refresh
    cache outside the working directory too."""
    import os

    old = os.environ.get("RESEND_IAC_CACHE")
    os.environ["RESEND_IAC_CACHE"] = str(tmp_path_factory.mktemp("cache-session") / "cache.sqlite")
    yield
    if old is None:
        os.environ.pop("RESEND_IAC_CACHE", None)
    else:
        os.environ["RESEND_IAC_CACHE"] = old


@pytest.fixture(autouse=True)
def _refresh_cache_per_test(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own refresh cache (engine/cache.py) and consent ledger (engine/ledger.py),
    never one in the working directory or beside the repository's examples."""
    where = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("RESEND_IAC_CACHE", str(where / "cache.sqlite"))
    monkeypatch.setenv("RESEND_IAC_LEDGER", str(where / "consent-ledger.json"))


@pytest.fixture(autouse=True)
def _run_in_tmp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """resend-iac reads declared paths only inside the directory it runs in (the config root
    rule, config/limits.py ``root_problem``): a test that writes its files under ``tmp_path``
    runs there, as a user runs it in their checkout; the default stays strict."""
    if "tmp_path" in request.fixturenames:
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator_app() -> Any:
    return create_app(":memory:", rate_limit=0)


@pytest.fixture
async def asgi_client(emulator_app: Any):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator_app), base_url="http://emulator", headers=TEST_HEADERS
    ) as client:
        yield client


@pytest.fixture(scope="session")
def _shared_emulator_server() -> Iterator[EmulatorProcess]:
    server = EmulatorProcess(db_path=":memory:", rate_limit=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator_server(_shared_emulator_server: EmulatorProcess) -> EmulatorProcess:
    if not _shared_emulator_server.alive:  # a test stopped or killed it: start it again
        _shared_emulator_server.start()
    _shared_emulator_server.reset()
    return _shared_emulator_server


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    started: list[EmulatorProcess] = []

    def start(**create_app_kwargs: Any) -> EmulatorProcess:
        server = EmulatorProcess(**create_app_kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()
