"""Helpers for tests that run a local stack: :func:`running_stack` starts ``samlite serve`` in
its own process on free ports and yields a :class:`RunningStack` (its description, boto3 clients
of its endpoints, its control routes, tokens); :func:`http` and :func:`signed_headers` call its
HTTP API; :func:`eventually` waits for an asynchronous outcome.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from . import cli

__all__ = ["RunningStack", "eventually", "http", "running_stack", "signed_headers"]

REGION = "us-east-1"
START_TIMEOUT_S = 60

T = TypeVar("T")


_TOKENS: dict[tuple[Path, tuple[str, ...]], str] = {}
"""Tokens minted by :meth:`RunningStack.token`, by state folder (its key pair) and arguments."""


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    description: dict[str, Any]
    state_dir: Path
    template: Path
    output: Path

    @property
    def http(self) -> str:
        return str(self.description["httpApi"])

    @property
    def aws(self) -> str:
        return str(self.description["awsEndpoint"])

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.description["dynamodbEndpoint"]
            if service == "dynamodb"
            else self.aws,
            region_name=REGION,
            aws_access_key_id="tester",
            aws_secret_access_key="tester",  # noqa: S106 - the local stack ignores it
        )

    def control(self, path: str) -> Any:
        with urllib.request.urlopen(self.aws + path, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def wait_idle(self, timeout: float = 30) -> None:
        eventually(lambda: self.control("/_local/stats")["idle"] or None, timeout)

    def token(self, *arguments: str) -> str:
        """``samlite token`` for this stack, minted once per arguments (reading the template
        takes about 0.3 s; a token lives an hour unless ``--ttl`` says otherwise)."""
        minted = _TOKENS.get((self.state_dir, arguments))
        if minted is None:
            minted = _TOKENS[(self.state_dir, arguments)] = self._mint(*arguments)
        return minted

    def _mint(self, *arguments: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            where = ["--template", str(self.template), "--state-dir", str(self.state_dir)]
            code = cli.main(["token", *where, *arguments])
        assert code == 0
        return out.getvalue().strip()

    def table(self) -> str:
        return str(next(iter(self.description["tables"].values())))


@contextlib.contextmanager
def running_stack(
    template: Path, state_dir: Path, dynamodb_endpoint: str, *extra: str, cwd: Path | None = None
) -> Iterator[RunningStack]:
    """`samlite serve` on free ports against ``dynamodb_endpoint``, in its own process; stopped
    (SIGTERM, then SIGKILL) afterwards. ``extra``: more ``serve`` options."""
    ready = state_dir / "ready.json"
    output = state_dir / "serve.out"
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "samlite",
        "serve",
        "--template",
        str(template),
        "--state-dir",
        str(state_dir),
        "--http-port",
        "0",
        "--events-port",
        "0",
        "--dynamodb-endpoint",
        dynamodb_endpoint,
        "--stack-name",
        f"t{uuid.uuid4().hex[:8]}",
        "--ready-file",
        str(ready),
        *extra,
    ]
    with output.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            command, cwd=cwd or template.parent, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the stack did not start:\n{output.read_text()[-4000:]}")
            time.sleep(0.1)
        description = json.loads(ready.read_text())
        yield RunningStack(process, description, state_dir, template, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def eventually(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.1)


def http(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 - the stack's loopback URLs
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), error.headers
    document = json.loads(raw) if raw else None
    return status, {key.lower(): value for key, value in got.items()}, document


def signed_headers(method: str, url: str, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method=method, url=url, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials("AKIDLOCALTEST", "secret"), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())
