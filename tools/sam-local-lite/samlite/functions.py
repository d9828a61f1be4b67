"""Functions as Lambda runs them: one worker process per execution environment.

Each function of the template gets a :class:`FunctionRuntime`: a pool of up to ``concurrency``
worker processes (:mod:`samlite.worker`), started on first use and kept warm. A worker has
the function's own environment variables, imports the handler module once (so each function
has its own ``app`` module and its own cached settings and clients, as in separate Lambda
environments), and is killed when an invocation runs past the function's ``Timeout`` (the
next invocation starts a fresh one, as after a Lambda timeout).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .template import FunctionSpec

__all__ = ["FunctionRuntime", "InvokeResult", "LogSink"]

WORKER = Path(__file__).resolve().parent / "worker.py"
INIT_TIMEOUT_S = 10.0
"""Lambda gives a function's initialisation 10 seconds."""

LogSink = Callable[[str, str], None]
"""(function logical id, one line of its output)."""


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    ok: bool
    payload: Any
    """The handler's result, or Lambda's error object (errorType, errorMessage, stackTrace)."""
    duration_ms: float

    @property
    def error(self) -> str:
        if self.ok:
            return ""
        payload = self.payload if isinstance(self.payload, Mapping) else {}
        return f"{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"


class _WorkerGone(Exception):
    pass


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": []}


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(
        self, spec: FunctionSpec, environment: Mapping[str, str], root: Path, sink: LogSink
    ):
        self.spec = spec
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    sys.executable,
                    "-I",
                    "-u",
                    str(WORKER),
                    str(write_fd),
                    str(spec.code_dir),
                    str(root),
                    spec.handler,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(environment),
                cwd=spec.code_dir,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._responses = read_fd
        self._buffer = b""
        self._pump = threading.Thread(
            target=self._copy_output, args=(sink,), name=f"log-{spec.logical_id}", daemon=True
        )
        self._pump.start()

    def _copy_output(self, sink: LogSink) -> None:
        stream = self.process.stdout
        if stream is None:
            return
        for raw in stream:
            sink(self.spec.logical_id, raw.decode("utf-8", errors="replace").rstrip("\n"))

    def read_message(self, timeout: float) -> dict[str, Any] | None:
        """The next line from the worker; None on timeout; raises _WorkerGone if it exited."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._responses], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._responses, 65536)
            if not chunk:
                raise _WorkerGone(f"the worker exited with code {self.process.wait()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def start(self) -> dict[str, Any] | None:
        """None when the handler was imported, else Lambda's init error."""
        try:
            message = self.read_message(INIT_TIMEOUT_S)
        except _WorkerGone as exc:
            return _error("Runtime.ExitError", str(exc))
        if message is None:
            return _error("Runtime.InitTimeout", f"init took longer than {INIT_TIMEOUT_S:.0f}s")
        if not message.get("ready"):
            error: dict[str, Any] = message.get("error") or _error("Runtime.Unknown", "init failed")
            return error
        return None

    def invoke(self, request: Mapping[str, Any], timeout: float) -> dict[str, Any] | None:
        stdin: IO[bytes] | None = self.process.stdin
        if stdin is None:
            raise _WorkerGone("no stdin")
        try:
            stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerGone(str(exc)) from exc
        return self.read_message(timeout)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._responses)
        self._pump.join(timeout=2)


class FunctionRuntime:
    """Invokes one function synchronously; up to ``concurrency`` invocations at once."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        *,
        root: Path,
        sink: LogSink,
        concurrency: int = 1,
    ) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.root = root
        self.sink = sink
        self.concurrency = max(1, concurrency)
        self._idle: list[_Worker] = []
        self._alive = 0
        self._closed = False
        self._condition = threading.Condition()
        self.in_flight = 0
        self.invocations = 0
        self.errors = 0

    def _acquire(self) -> _Worker | dict[str, Any]:
        with self._condition:
            while not self._idle and self._alive >= self.concurrency:
                self._condition.wait()
            if self._closed:
                return _error("Runtime.Stopped", "the local stack is stopping")
            if self._idle:
                return self._idle.pop()
            self._alive += 1
        worker = _Worker(self.spec, self.environment, self.root, self.sink)
        failure = worker.start()
        if failure is not None:
            worker.stop()
            self._release(None)
            return failure
        return worker

    def _release(self, worker: _Worker | None) -> None:
        with self._condition:
            if worker is None or self._closed:
                self._alive -= 1
                if worker is not None:
                    worker.stop()
            else:
                self._idle.append(worker)
            self._condition.notify()

    def context(self, request_id: str) -> dict[str, Any]:
        return {
            "functionName": self.spec.name,
            "functionArn": self.spec.arn,
            "memoryLimitInMB": self.spec.memory,
            "requestId": request_id,
            "logGroupName": f"/aws/lambda/{self.spec.name}",
            "logStreamName": f"local/{self.spec.logical_id}",
            "deadlineMs": int((time.time() + self.spec.timeout) * 1000),
        }

    def invoke(self, event: Any) -> InvokeResult:
        request_id = str(uuid.uuid4())
        with self._condition:
            self.in_flight += 1
            self.invocations += 1
        began = time.monotonic()
        try:
            result = self._invoke(request_id, event)
        finally:
            with self._condition:
                self.in_flight -= 1
        duration = (time.monotonic() - began) * 1000
        ok, payload = result
        if not ok:
            with self._condition:
                self.errors += 1
        return InvokeResult(request_id, ok, payload, duration)

    def _invoke(self, request_id: str, event: Any) -> tuple[bool, Any]:
        acquired = self._acquire()
        if isinstance(acquired, dict):
            return False, acquired
        worker = acquired
        request = {"requestId": request_id, "event": event, "context": self.context(request_id)}
        try:
            message = worker.invoke(request, self.spec.timeout)
        except _WorkerGone as exc:
            worker.stop()
            self._release(None)
            return False, _error("Runtime.ExitError", f"the function's process exited: {exc}")
        if message is None:
            worker.stop()
            self._release(None)
            self.sink(
                self.spec.logical_id,
                f"{request_id} Task timed out after {self.spec.timeout:.2f} seconds",
            )
            return False, _error(
                "Sandbox.Timedout", f"Task timed out after {self.spec.timeout:.2f} seconds"
            )
        self._release(worker)
        if message.get("ok"):
            return True, message.get("result")
        return False, message.get("error") or _error("Runtime.Unknown", "no error object")

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
