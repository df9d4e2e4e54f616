"""A tiny HTTP server on 127.0.0.1 (ephemeral port) answering what a test scripts: for the
answers the emulator never gives (redirects, malformed 200s). Records every request (method,
path, headers); stopped by the fixture that started it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], Any]  # status, headers, body (JSON-able, bytes, or None)
Respond = Callable[[str, str], Answer]  # (method, path with query) -> answer

EMPTY_LIST = {"object": "list", "has_more": False, "data": []}
MAX_BODY = 1 << 20


class FakeAPI:
    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
                if length:
                    self.rfile.read(length)
                fake.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = fake.respond(self.command, self.path)
                data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that hung up (the CLI stops at the first error and cancels the
                # other reads) is not the test's business; never print a traceback into the
                # output the tests read.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def lists(overrides: dict[str, Any]) -> Respond:
    """Every list route answers an empty list, but the paths (without query) in ``overrides``,
    which answer 200 with the given body."""

    def respond(method: str, path: str) -> Answer:
        route = path.split("?", 1)[0]
        if route in overrides:
            return 200, {}, overrides[route]
        return 200, {}, EMPTY_LIST

    return respond
