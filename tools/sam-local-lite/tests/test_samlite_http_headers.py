"""Nothing a function returns or a request carries splits the local HTTP API's responses: a
header name, value or cookie holding CR or LF (or another control character) is refused as the
HTTP API refuses a malformed integration response, 500 ``{"message":"Internal Server Error"}``;
and the server itself never writes such a header, whichever service built the response.
Through the running stack: test_samlite_stack.py (a function reflecting the request into its
headers, a forged token's header in ``www-authenticate``)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from samlite.http_api import HttpApi
from samlite.httpd import LoopbackServer, Request, Response, header_problem

INTERNAL_ERROR = (500, {"message": "Internal Server Error"})


def answer(payload: Any) -> tuple[int, Any, list[tuple[str, str]]]:
    response = HttpApi.response(payload)
    return response.status, json.loads(response.body or b"null"), response.headers


@pytest.mark.parametrize(
    "payload",
    [
        {"statusCode": 200, "headers": {"x-a": "1\r\nSet-Cookie: evil=1"}},
        {"statusCode": 200, "headers": {"x-a": "1\nx-b: 2"}},
        {"statusCode": 200, "headers": {"x-a": "1\rx"}},
        {"statusCode": 200, "headers": {"x-a": "1\x00"}},
        {"statusCode": 200, "headers": {"x-a\r\nSet-Cookie": "evil=1"}},
        {"statusCode": 200, "headers": {"x a": "1"}},
        {"statusCode": 200, "multiValueHeaders": {"x-a": ["ok", "2\r\nSet-Cookie: evil=1"]}},
        {"statusCode": 200, "cookies": ["a=1\r\nx-injected: 1"]},
    ],
)
def test_a_function_header_with_cr_or_lf_is_a_malformed_response(payload: Any) -> None:
    status, body, headers = answer(payload)
    assert (status, body) == INTERNAL_ERROR
    assert all(header_problem(name, value) is None for name, value in headers)
    assert not any(name.lower() in ("set-cookie", "x-a", "x-b") for name, _ in headers)


def test_well_formed_headers_pass_unchanged() -> None:
    response = HttpApi.response(
        {
            "statusCode": 201,
            "headers": {"x-a": 'v1, "quoted"\tand tab', "Content-Type": "text/plain"},
            "multiValueHeaders": {"x-b": ["1", "2"]},
            "cookies": ["a=1; Path=/; HttpOnly"],
            "body": "hi",
        }
    )
    assert (response.status, response.body) == (201, b"hi")
    assert response.headers == [
        ("x-a", 'v1, "quoted"\tand tab'),
        ("Content-Type", "text/plain"),
        ("x-b", "1"),
        ("x-b", "2"),
        ("Set-Cookie", "a=1; Path=/; HttpOnly"),
    ]


@pytest.mark.parametrize(
    ("name", "value", "refused"),
    [
        ("x-ok", "a b\tc ~!", False),
        ("x-ok", "caf\u00e9", False),
        ("x-bad", "a\r\nb", True),
        ("x-bad", "a\nb", True),
        ("x-bad", "a\rb", True),
        ("x-bad", "a\x7fb", True),
        ("x-bad", "\u2028", True),
        ("x bad", "a", True),
        ("x:bad", "a", True),
        ("", "a", True),
    ],
)
def test_header_problem(name: str, value: str, refused: bool) -> None:
    assert (header_problem(name, value) is not None) is refused


@pytest.fixture
def raw_server() -> Iterator[LoopbackServer]:
    def handle(request: Request) -> Response:
        return Response(200, b"{}", [("x-echo", request.query.replace("%0D%0A", "\r\n"))])

    server = LoopbackServer(0, handle, "raw")
    server.start()
    yield server
    server.stop()


def raw_get(port: int, target: str, extra: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_server_never_writes_a_header_that_splits_the_response(
    raw_server: LoopbackServer,
) -> None:
    ok = raw_get(raw_server.port, "/?fine")
    assert ok.startswith(b"HTTP/1.1 200 ") and b"\r\nx-echo: fine\r\n" in ok
    split = raw_get(raw_server.port, "/?a%0D%0ASet-Cookie:%20evil=1")
    head, _, body = split.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"evil" not in head and b"x-echo" not in head
    assert json.loads(body)["message"].startswith("local stack error: header x-echo")
