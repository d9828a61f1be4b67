"""A small threaded HTTP/1.1 server on 127.0.0.1, shared by the HTTP API and the AWS endpoints."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK",
    "LoopbackServer",
    "Request",
    "Response",
    "header_problem",
    "json_response",
]

LOOPBACK = "127.0.0.1"
MAX_BODY = 10 * 1024 * 1024  # HTTP API's payload limit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """The raw (still percent-encoded) path."""
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    client: str

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ",".join(values) if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, document: Any, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(document).encode(), [("Content-Type", content_type)])


# A header name is an HTTP token; a value any visible character, space or tab. CR, LF and the
# other control characters never reach the wire: a CR/LF in a value would end the header and
# let whoever chose the value write headers of their own (response splitting).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: str, value: str) -> str | None:
    """Why ``name: value`` cannot be sent as a response header, or None if it can."""
    if not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not an HTTP token"
    if _CONTROL.search(value):
        return f"header {name} holds a control character (CR, LF, ...)"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"header {name} holds characters beyond ISO-8859-1"
    return None


class LoopbackServer:
    """Serves ``handle`` on 127.0.0.1:``port`` (0 picks a free port) from a thread per request."""

    def __init__(self, port: int, handle: Callable[[Request], Response], name: str) -> None:
        self.name = name

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "samlite"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(json_response(413, {"message": "Request Entity Too Large"}))
                    return
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path or "/",
                    query=parts.query,
                    headers=list(self.headers.items()),
                    body=body,
                    client=self.client_address[0],
                )
                try:
                    response = handle(request)
                except Exception as exc:  # a bug in the stack must not kill the server
                    response = json_response(500, {"message": f"local stack error: {exc}"})
                self._send(response)

            def _send(self, response: Response) -> None:
                # The last line of defence, whichever service built the response: a header
                # that would split the response is never written (the HTTP API refuses a
                # function's malformed headers before this; see http_api.HttpApi.response).
                problems = [header_problem(n, v) for n, v in response.headers]
                problem = next((p for p in problems if p is not None), None)
                if problem is not None:
                    response = json_response(500, {"message": f"local stack error: {problem}"})
                self.send_response(response.status)
                names = {name.lower() for name, _ in response.headers}
                for header, value in response.headers:
                    self.send_header(header, value)
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def __getattr__(self, name: str) -> Any:
                """Any other method (TRACE, QUERY, ...) is routed too: the routes or the
                gateway's 404 answer it, never the standard library's 501."""
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the stack prints its own lines

        self._server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http-{name}", daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._server.server_close()
