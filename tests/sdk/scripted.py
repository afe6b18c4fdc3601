"""A real HTTP server whose config answers and stream bytes a test writes itself: what a
broken proxy, a buggy server or an attacker on the path could send an SDK."""

from __future__ import annotations

import gzip
import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONFIG = "/api/v1/sdk/config"
STREAM = "/api/v1/sdk/stream"


@dataclass
class Answer:
    """One HTTP answer: status, headers and the raw body bytes."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def config_answer(document: dict[str, Any], version: int, **headers: str) -> Answer:
    """A config the way the Graylane server gives it (`headers` add to or replace its own)."""
    return Answer(
        200,
        {
            "Content-Type": "application/json",
            "ETag": f'"{version}"',
            "X-Graylane-Version": str(version),
            "X-Graylane-Environment": "production",
            **headers,
        },
        json.dumps(document).encode(),
    )


def gzipped(answer: Answer) -> Answer:
    return Answer(
        answer.status,
        {**answer.headers, "Content-Encoding": "gzip"},
        gzip.compress(answer.body, compresslevel=9),
    )


def notice(version: int) -> bytes:
    """A change notice as the Graylane server sends it."""
    data = {"type": "refetchEvaluation", "etag": f'"{version}"', "version": version}
    return f"data: {json.dumps(data)}\n\n".encode()


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients drop connections mid-answer on purpose here


class ScriptedServer:
    """`config` answers every config request; bytes given to `send` go down every open
    stream as they are. Each request's path and headers are kept in `requests`. A POST is
    answered by the next of `post_answers` (202 once none is left), and its body is kept
    in `posted`."""

    def __init__(self, config: Answer) -> None:
        self.config = config
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.post_answers: list[Answer] = []
        self.posted: list[bytes] = []
        self._streams: list[queue.Queue[bytes | None]] = []
        self._lock = threading.Lock()
        self._http = _Quiet(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            for stream in self._streams:
                stream.put(None)
        self._http.shutdown()
        self._http.server_close()

    def send(self, data: bytes) -> None:
        with self._lock:
            for stream in self._streams:
                stream.put(data)

    def streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def config_requests(self) -> list[dict[str, str]]:
        return [headers for path, headers in list(self.requests) if path == CONFIG]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                headers = {key.lower(): value for key, value in self.headers.items()}
                server.requests.append((self.path, headers))
                if self.path == CONFIG:
                    self._answer(server.config)
                elif self.path == STREAM:
                    self._stream()
                else:
                    self._answer(Answer(404, {}, b"{}"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.posted.append(self.rfile.read(length))
                with server._lock:
                    scripted = server.post_answers.pop(0) if server.post_answers else None
                self._answer(scripted or Answer(202, {}, b"{}"))

            def _answer(self, answer: Answer) -> None:
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def _stream(self) -> None:
                events: queue.Queue[bytes | None] = queue.Queue()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                # Like the Graylane server: first a notice of the version it serves now.
                version = server.config.headers.get("X-Graylane-Version", "")
                if version.isascii() and version.isdigit():
                    self.wfile.write(notice(int(version)))
                self.wfile.flush()
                with server._lock:
                    server._streams.append(events)
                try:
                    while (data := events.get()) is not None:
                        self.wfile.write(data)
                        self.wfile.flush()
                except OSError:
                    pass  # the client went away
                finally:
                    with server._lock:
                        server._streams.remove(events)
                    self.close_connection = True

        return Handler
