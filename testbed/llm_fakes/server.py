"""A scriptable local HTTP server for LLM provider protocols (tests and benchmarks only).

Each test queues what the next requests get: a `Stream` of server-sent events (sent with chunked
transfer encoding, optionally slow, optionally cut in the middle) or an `Error`. The server
records every request (path, headers, JSON body) and notices when a client goes away in the
middle of a stream (a write fails), which is how tests prove that cancelling closes the upstream
connection. Provider-specific formats live beside this module (`openai.py`, `anthropic.py`, …).

Loopback only: it binds 127.0.0.1 on a free port.
"""

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Stream:
    """A 200 text/event-stream response made of `events` (each a complete SSE block, bytes)."""

    events: list[bytes]
    first_delay: float = 0.0
    """Seconds before the first event (a slow first token)."""
    delay: float = 0.0
    """Seconds between events."""
    cut_after: int | None = None
    """Close the connection abruptly after this many events (a stream cut in the middle)."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Json:
    """A plain (non-streaming) JSON response."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Response = Stream | Error | Json


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: optional `event:` line, one `data:` line (JSON unless str), blank."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n".encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client resetting an idle keep-alive connection is normal here, not an error."""


class FakeProviderServer:
    """Serves queued responses in order; when the queue is empty, `default(request)` answers."""

    def __init__(self, default: Callable[[Recorded], Response] | None = None) -> None:
        self._queue: deque[Response] = deque()
        self._default = default
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.disconnects = 0
        """Streams the client abandoned before the end (the server's write failed)."""
        self._disconnected = threading.Condition()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> "FakeProviderServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeProviderServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def queue(self, *responses: Response) -> None:
        with self._lock:
            self._queue.extend(responses)

    def wait_for_disconnects(self, count: int, timeout: float = 10.0) -> bool:
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self.disconnects >= count, timeout)

    def _next(self, request: Recorded) -> Response:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self._default is None:
            return Error(500, {"error": {"message": "no response queued", "type": "server_error"}})
        return self._default(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                self._serve(body)

            def _serve(self, body: Any) -> None:
                request = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                response = server._next(request)
                if isinstance(response, Stream):
                    self._stream(response)
                else:
                    self._json(response.status, response.body, response.headers)

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, stream: Stream) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                for name, value in stream.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.flush()
                    if stream.first_delay:
                        time.sleep(stream.first_delay)
                    for n, event in enumerate(stream.events):
                        if stream.cut_after is not None and n >= stream.cut_after:
                            self.close_connection = True
                            self.connection.shutdown(2)  # abrupt: no final chunk
                            return
                        if n and stream.delay:
                            time.sleep(stream.delay)
                        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    with server._disconnected:
                        server.disconnects += 1
                        server._disconnected.notify_all()

        return Handler
