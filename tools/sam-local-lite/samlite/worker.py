"""One Lambda execution environment for the local stack (standard library only).

Run by :mod:`samlite.functions` as ``python -I -u worker.py RESPONSE_FD CODE_DIR ROOT
HANDLER`` with the function's environment. Like Lambda's Python runtime, it imports the handler
module once (the function's code folder first on ``sys.path``, then the template's folder, which
stands for the layers), reports ``{"ready": ...}``, then reads one invocation
per line on stdin (``{"requestId", "event", "context"}``) and writes one response per line on
RESPONSE_FD (``{"ok": true, "result"}`` or ``{"ok": false, "error": {...}}`` in Lambda's error
shape). The function's own output (stdout, stderr) is its log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import IO, Any


class LambdaContext:
    """The attributes and method of Lambda's Python context object."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.function_name: str = data["functionName"]
        self.function_version: str = "$LATEST"
        self.invoked_function_arn: str = data["functionArn"]
        self.memory_limit_in_mb: int = int(data["memoryLimitInMB"])
        self.aws_request_id: str = data["requestId"]
        self.log_group_name: str = data["logGroupName"]
        self.log_stream_name: str = data["logStreamName"]
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms: int = int(data["deadlineMs"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


def main(argv: list[str]) -> int:
    response_fd, code_dir, root, handler = argv
    out = os.fdopen(int(response_fd), "w", encoding="utf-8")
    # -I leaves the script's folder off sys.path: the function's code comes first, as on Lambda.
    sys.path[:0] = [code_dir, root]
    os.chdir(code_dir)
    try:
        module_name, _, function_name = handler.rpartition(".")
        module = importlib.import_module(module_name.replace("/", "."))
        function = getattr(module, function_name)
    except Exception as exc:
        print(f"[ERROR] Runtime.ImportModuleError: {handler}: {exc}", file=sys.stderr, flush=True)
        traceback.print_exc()
        _send(out, {"ready": False, "error": _error(exc, "Runtime.ImportModuleError")})
        return 1
    _send(out, {"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["context"])
        try:
            result = function(request["event"], context)
        except Exception as exc:
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            traceback.print_exc()
            _send(out, {"ok": False, "error": _error(exc)})
            continue
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            _send(out, {"ok": True, "result": result})
        except (TypeError, ValueError) as exc:
            _send(out, {"ok": False, "error": _error(exc, "Runtime.MarshalError")})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
