"""Which AWS calls each function's code makes, as IAM sees them: recorded while the tests run
the functions' handlers (``tests.helpers.load_function`` marks the function whose handler is
running), compared with the function's role in template.yaml by tests/test_roles_cover_calls.py.

Every botocore API call goes through ``BaseClient._make_api_call``; :func:`install` wraps it
once per session, so clients made before or after (moto's or DynamoDB Local's) are all seen.
A call made while no handler runs (a test's own setup) is not recorded. One handler runs at a
time, so a plain module global (not thread-local) names it, and the worker threads a handler
starts (the full recalculation's) are counted to it too.

A call becomes one or more IAM permissions (``service:Action``, resource kind): a transaction
needs the action of each of its parts on the table, a PartiQL statement ``PartiQL<Verb>``, a
Query on an index the index's resource.
"""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

Permission = tuple[str, str]
"""(``service:Action``, resource): resource is ``table``, ``index/<name>``, ``stream``, a queue
or bus name, or ``*``."""

RECORDED: dict[str, set[Permission]] = defaultdict(set)
_ROOT = str(Path(__file__).resolve().parents[1]) + "/"
WHERE: dict[tuple[str, Permission], str] = {}
"""The first place in the project's code each (function, permission) was needed from."""
_current: list[str] = []
_installed: list[bool] = []

_TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def permissions(service: str, operation: str, params: Mapping[str, Any]) -> Iterator[Permission]:
    """The IAM permissions one API call needs."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            for part in params.get("TransactItems", []):
                for kind in part:
                    yield f"dynamodb:{_TRANSACT_PARTS[kind]}", "table"
        elif operation in ("ExecuteStatement", "BatchExecuteStatement"):
            statements = (
                [params] if operation == "ExecuteStatement" else params.get("Statements", [])
            )
            for statement in statements:
                verb = str(statement.get("Statement", "")).split(None, 1)[0].capitalize()
                yield f"dynamodb:PartiQL{verb}", "table"
        elif operation in ("Query", "Scan") and params.get("IndexName"):
            yield f"dynamodb:{operation}", f"index/{params['IndexName']}"
        else:
            yield f"dynamodb:{operation}", "table"
    elif service == "events":
        yield f"events:{operation}", str(params.get("Entries", [{}])[0].get("EventBusName", "*"))
    elif service == "sqs":
        yield f"sqs:{operation}", str(params.get("QueueUrl", "*")).rsplit("/", 1)[-1]
    else:
        yield f"{service}:{operation}", "*"


def _call_site() -> str:
    """``path:line`` of the innermost frame in shared/ or functions/ (not botocore's)."""
    frame: Any = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        local = path[len(_ROOT) :] if path.startswith(_ROOT) else ""
        if local.startswith(("shared/", "functions/")) and local != "shared/dal/dynamodb.py":
            return f"{path[len(_ROOT) :]}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def record(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Count one call to the handler running, if any (also for a call a test's stand-in
    answers without botocore, such as tests/faults.py's EventBridge)."""
    if not _current:
        return
    function = _current[-1]
    for permission in permissions(service, operation, params):
        if permission not in RECORDED[function]:
            RECORDED[function].add(permission)
            WHERE[function, permission] = _call_site()


def install() -> None:
    """Wrap botocore's one entry point for API calls (once)."""
    if _installed:
        return
    original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private)

    @functools.wraps(original)
    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.signing_name or self.meta.service_model.service_name
        record(service, operation_name, api_params)
        return original(self, operation_name, api_params)

    setattr(BaseClient, "_make_api_call", recording)  # noqa: B010 (private, typed stubs lack it)
    _installed.append(True)


@contextmanager
def running(function: str) -> Iterator[None]:
    """Count the calls made meanwhile to ``function`` (a folder name under functions/)."""
    _current.append(function)
    try:
        yield
    finally:
        _current.pop()


def wrap_handler(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        with running(function):
            return handler(*args, **kwargs)

    return recorded
