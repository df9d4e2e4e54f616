"""Run the emulator under uvicorn: ``serve`` (blocking) or ``EmulatorProcess`` (a child
process on a free 127.0.0.1 port, for tests and benchmarks)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import uvicorn

from resend_iac.emulator.app import create_app

DEFAULT_DB = os.path.join(".resend-iac", "emulator.db")


def serve(
    host: str = "127.0.0.1",
    port: int = 8025,
    *,
    app: Any = None,
    log_level: str = "warning",
    http: str = "auto",
    **create_app_kwargs: Any,
) -> None:
    """Serve the emulator until interrupted. ``app`` reuses an app already built
    (e.g. seeded); otherwise one is built from ``create_app_kwargs``. ``http`` is uvicorn's
    HTTP implementation (``auto`` uses httptools when installed, else h11)."""
    if app is None:
        app = create_app(**create_app_kwargs)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off", http=http)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The child exits when its stdin closes, so a crashed parent never leaves a server behind.
_CHILD = """
import json, os, sys, threading
def _watch():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
from resend_iac.emulator.server import serve
kw = json.loads(sys.argv[1])
serve(**kw)
"""


class _PortTaken(Exception):
    pass


class EmulatorProcess:
    """The emulator as a real uvicorn server in a child process.

    ``EmulatorProcess(db_path=..., rate_limit=0, ...)`` then ``.start()``; ``.url``,
    ``.stop()`` (SIGTERM), ``.kill()`` (SIGKILL), ``.restart()`` (same port and db)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, **create_app_kwargs: Any) -> None:
        self.host = host
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.kwargs = create_app_kwargs
        self.proc: subprocess.Popen | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmulatorProcess":
        """Start and wait until it answers ``/_emulator/stats``. A port chosen here that
        another process took meanwhile is replaced by a new free port (3 tries)."""
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if self.fixed_port or attempt == 2:
                    raise RuntimeError(f"port {self.port} is in use") from None
                self.port = free_port()
        raise AssertionError("unreachable")

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            conn.request("GET", "/_emulator/stats")
            response = conn.getresponse()
            return response.status == 200 and b'"by_route"' in response.read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _start_once(self, timeout: float) -> "EmulatorProcess":
        kw = dict(self.kwargs, host=self.host, port=self.port)
        if "api_keys" in kw:
            kw["api_keys"] = list(kw["api_keys"])
        # stderr to a file, not a pipe: a pipe nobody reads would block the server once full
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(kw)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")
                self.log.close()
                if "address already in use" in err.lower():
                    raise _PortTaken()
                raise RuntimeError(f"emulator exited with {self.proc.returncode}: {err[-2000:]}")
            if self._ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"emulator did not answer on {self.url} within {timeout}s")

    def _end(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdin:
            proc.stdin.close()
        self.log.close()

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def _admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        import httpx

        response = httpx.request(method, self.url + path, json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``: total, rate_limited, by_route."""
        return self._admin("GET", "/_emulator/stats")

    def reset(self) -> None:
        """``POST /_emulator/reset``: empty the store and the counters."""
        self._admin("POST", "/_emulator/reset")

    def advance(self, seconds: float) -> None:
        """``POST /_emulator/advance``: let ``seconds`` pass for ``list_lag`` at once."""
        self._admin("POST", "/_emulator/advance", {"seconds": seconds})

    def restart(self) -> "EmulatorProcess":
        self.stop()
        return self.start()

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
