"""The emulator for tests: a uvicorn server in a thread (:class:`EmulatorThread`) that serves
whichever emulator app is current, recording the requests it answers, and the per-test
handle (:class:`ResendEmulator`) with the helpers a test asserts with.

Seeding and reading the team's state go *around* the wire of the test's app (its rate
limit, injected faults and latency) and are not recorded: they use a second, plain app over
the same store, in-process. So what ``requests()`` and ``stats()`` show is what the
application under test did, and a test with ``fail_rate=0.5`` still seeds and reads
reliably. The store's profile applies to them (``unknowns="hostile"`` keys emails
case-sensitively), but not its ``list_lag``: the helpers see every stored contact.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

# Options of create_app that the plugin knows; "neutral" = the value that changes nothing,
# so an emulator without that option (an older one) can ignore it.
NEUTRAL = {"unknowns": "benign", "list_lag": 0.0}


class RecordedRequest(NamedTuple):
    """One request the application made (admin and UI paths are not recorded)."""

    method: str
    path: str  # as sent, percent-encoded, without the query
    query: str
    route: str  # "METHOD template", e.g. "GET /contacts/{id}" (the keys of /_emulator/stats)
    status: int
    body: bytes = b""  # the request body as sent (the first BODY_LIMIT bytes)

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body.strip() else None


BODY_LIMIT = 64 * 1024  # per recorded request: a CSV import's body is kept only in part


def create_app_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` restricted to what this emulator's ``create_app`` accepts. A neutral value
    of an option it lacks is dropped; any other value of an option it lacks is an error."""
    from resend_iac.emulator import create_app

    accepted = inspect.signature(create_app).parameters
    out = {}
    for name, value in options.items():
        if name in accepted:
            out[name] = value
        elif name in NEUTRAL and value == NEUTRAL[name]:
            continue
        else:
            raise ValueError(
                f"this version of the emulator has no `{name}` option "
                f"(create_app accepts: {', '.join(sorted(accepted))})"
            )
    return out


def _route(app: Any, scope: dict) -> str:
    match = getattr(app, "_match", None)
    template = ""
    if match is not None:
        try:
            template = match(scope)[0]
        except Exception:  # an emulator whose matcher changed shape: fall back to the path
            template = ""
    return f"{scope['method']} {template or scope['path']}"


_NO_APP = json.dumps(
    {"statusCode": 503, "name": "service_unavailable", "message": "No test is using the emulator right now."}
).encode()


class Switch:
    """The ASGI app the server runs: forwards to the current emulator app and records
    each API request (method, path, route, status) in ``log``."""

    def __init__(self) -> None:
        self.app: Any = None
        self.log: list[RecordedRequest] = []

    def use(self, app: Any, log: list[RecordedRequest] | None = None) -> None:
        self.app = app
        self.log = log if log is not None else []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        app, log = self.app, self.log
        if scope["type"] != "http":
            return
        if app is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": _NO_APP})
            return
        if scope["path"].startswith("/_emulator/"):
            await app(scope, receive, send)
            return
        body = bytearray()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            raw = scope.get("raw_path")
            path = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
            log.append(
                RecordedRequest(
                    scope["method"],
                    path,
                    scope.get("query_string", b"").decode("latin-1"),
                    _route(app, scope),
                    status,
                    bytes(body),
                )
            )

        async def send_status(message: dict) -> None:
            # recorded before the answer leaves: the client may look at the log as soon as
            # it has the answer, before this coroutine runs again
            if message["type"] == "http.response.start" and not recorded:
                record(message["status"])
            await send(message)

        async def receive_body() -> dict:
            message = await receive()
            if message["type"] == "http.request" and len(body) < BODY_LIMIT:
                body.extend(message.get("body", b"")[: BODY_LIMIT - len(body)])
            return message

        try:
            await app(scope, receive_body, send_status)
        finally:
            if not recorded:  # no answer at all (the client went away)
                record(0)


class EmulatorThread:
    """A uvicorn server on a free 127.0.0.1 port, in a daemon thread of this process,
    serving ``switch.app`` (set it with ``switch.use(app)``). ``start()``, ``url``,
    ``stop()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.switch = Switch()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmulatorThread":
        import uvicorn

        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for
        # sockets whose proto says TCP (with proto 0, Nagle + delayed ACK cost 40 ms per
        # keep-alive request)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((self.host, 0))  # the port is ours from here on: no race with others
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.switch, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="resend-emulator", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.server = self.thread = None


def _direct_app(app: Any) -> Any:
    """A plain emulator app (no rate limit, faults, latency or profile) over ``app``'s
    store: for seeding and reading without going through the test app's wire."""
    from resend_iac.emulator import create_app

    direct = create_app(":memory:", rate_limit=0)
    direct.store.close()
    direct.store = app.store
    direct.importer = app.importer
    return direct


def _files_key(paths: Sequence[Path]) -> tuple:
    """What a seeding depends on: every file under ``paths``, with mtime and size."""
    key: list[tuple] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            try:
                st = f.stat()
                key.append((str(f.resolve()), st.st_mtime_ns, st.st_size))
            except OSError:
                key.append((str(f), None, None))
    return tuple(key)


def run_sync(fn: Callable[[], T]) -> T:
    """Run ``fn`` (which may call ``asyncio.run``) here, or in a worker thread when this
    thread already runs an event loop (an async test)."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


class ResendEmulator:
    """What the ``resend_emulator`` fixture gives a test.

    - ``url``, ``api_key``: where the emulator is and the key it accepts (the only one);
      ``ui_url``: its web view;
      ``app``: the emulator app of this test (``create_app(...)``), ``options`` it was made with.
    - ``requests(route=None)``: the requests the application made, in order
      (:class:`RecordedRequest`: method, path, query, route, status, body, ``.json()``),
      all or those of one route (``"POST /contacts"``);
      ``request_counts()``: ``{route: n}``; ``stats()``: ``/_emulator/stats``.
    - ``reset()``: empty the team again; ``seed(*paths)``: apply declared state (files or directories); paths relative to
      ``base`` (the test file's folder).
    - ``state()``: the team as a ``resend_iac.model.State`` (what ``resend-iac export``
      reads); ``state_yaml()``: the same in the YAML format (``export``'s output).
    - ``plan(*paths)``: the plan from the team to declared files (empty = they match);
      ``assert_matches(*paths)``: fails listing the differences.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        app: Any,
        *,
        options: dict[str, Any] | None = None,
        base: str | os.PathLike[str] = ".",
        log: list[RecordedRequest] | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.app = app
        self.options = dict(options or {})
        self.base = Path(base)
        self.log: list[RecordedRequest] = log if log is not None else []
        self._direct_app: Any = None

    @property
    def _direct(self) -> Any:
        if self._direct_app is None:
            self._direct_app = _direct_app(self.app)
        return self._direct_app

    @property
    def ui_url(self) -> str:
        """The emulator's read-only web view of this team."""
        return self.url + "/_emulator/ui"

    def __repr__(self) -> str:
        return f"<ResendEmulator {self.url}>"

    # -- what the application did ---------------------------------------------------

    def requests(self, route: str | None = None) -> list[RecordedRequest]:
        items = list(self.log)
        return items if route is None else [r for r in items if r.route == route]

    def request_counts(self) -> Counter[str]:
        return Counter(r.route for r in list(self.log))

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    # -- the team -------------------------------------------------------------------

    def _paths(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        if not paths:
            raise ValueError("give at least one config file or directory")
        return [p if p.is_absolute() else self.base / p for p in map(Path, paths)]

    def seed(self, *paths: str | os.PathLike[str]) -> Any:
        """Apply the declared state (through the engine, like ``emulator --seed``).
        Raises ``resend_iac.config.ConfigError`` for bad files."""
        from resend_iac.local import seed_app

        resolved = self._paths(paths)
        with self._unlagged():
            return run_sync(lambda: seed_app(self._direct, resolved))

    def seed_fresh(self, paths: Sequence[str | os.PathLike[str]], cache: dict[Any, Any]) -> None:
        """``seed(*paths)`` of a new, empty team, fast: the first time a set of files is
        seeded, into a template app kept in ``cache``; then the template's database is
        copied (SQLite's backup API), ids and ``created_at`` included. Changed files
        (mtime, size) are seeded again."""
        from resend_iac.emulator import create_app
        from resend_iac.local import seed_app

        resolved = self._paths(paths)
        # the same profile as the test's app: how emails are keyed depends on it
        profile = create_app_kwargs({"unknowns": getattr(self.app, "unknowns", "benign")})
        key = (_files_key(resolved), tuple(sorted(profile.items())))
        template = cache.get(key)
        if template is None:
            template = create_app(":memory:", rate_limit=0, **profile)
            run_sync(lambda: seed_app(template, resolved))
            cache[key] = template
        with template.store.lock, self.app.store.lock:
            template.store.conn.backup(self.app.store.conn)

    def reset(self) -> None:
        """Empty the team, its counters and the request log (``POST /_emulator/reset``), e.g.
        between the examples of a Hypothesis test."""
        import httpx

        httpx.post(self.url + "/_emulator/reset", timeout=30).raise_for_status()
        self.log.clear()

    @contextlib.contextmanager
    def _unlagged(self) -> Iterator[None]:
        """Lists show every stored contact while the helpers read (an emulator with
        ``list_lag`` leaves recent writes out of its lists: the state is what is stored)."""
        store = self.app.store
        lag = getattr(store, "list_lag", 0)
        if not lag:
            yield
            return
        store.list_lag = 0
        try:
            yield
        finally:
            store.list_lag = lag

    def state(self) -> Any:
        from resend_iac.engine.live import read_everything
        from resend_iac.local import client_for_app

        async def read() -> Any:
            async with client_for_app(self._direct) as client:
                return await read_everything(client)

        with self._unlagged():
            return run_sync(lambda: asyncio.run(read()))

    def state_yaml(self) -> str:
        from resend_iac.config import dump_yaml

        return dump_yaml(self.state())

    def plan(self, *paths: str | os.PathLike[str]) -> Any:
        """``diff(declared, live)``: what ``resend-iac plan`` would show (under the files'
        policy: without ``prune_*``, extra live objects are not differences)."""
        from resend_iac.client import read_live
        from resend_iac.config import load
        from resend_iac.engine import diff, read_scope
        from resend_iac.local import client_for_app

        desired = load(self._paths(paths))

        async def run() -> Any:
            async with client_for_app(self._direct) as client:
                property_emails, topic_emails = read_scope(desired)
                live = await read_live(client, property_emails=property_emails, topic_emails=topic_emails)
                return diff(desired, live)

        with self._unlagged():
            return run_sync(lambda: asyncio.run(run()))

    def assert_matches(self, *paths: str | os.PathLike[str]) -> None:
        plan = self.plan(*paths)
        if plan.changes:
            lines = [
                f"  {c.action} {c.kind} {c.label}" + (f" in {c.parent}" if c.parent else "")
                for c in plan.changes[:50]
            ]
            more = len(plan.changes) - 50
            raise AssertionError(
                f"the emulator's team differs from {', '.join(map(str, paths))} "
                f"({len(plan.changes)} changes to make it match):\n"
                + "\n".join(lines)
                + (f"\n  ... and {more} more" if more > 0 else "")
            )
