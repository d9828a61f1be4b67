"""Builders shared by the tests: events in their wire shape, and Lambda plumbing."""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests import iam_calls

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "events" / f"{name}.json").read_text())
    return data


def order_completed(
    order_id: str = "ord-1",
    member_id: str = "shopper-1",
    customer_id: str = "cust-1",
    completed_at: str = "2026-11-23T10:00:00+00:00",
    batch_size: int = 1,
    tip: str = "5.00",
    time: str = "2026-11-23T12:00:00Z",
) -> dict[str, Any]:
    event = fixture_event("order_completed")
    event["time"] = time
    event["detail"] = {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": customer_id,
        "completedAt": completed_at,
        "batchSize": batch_size,
        "total": {"amount": "40.00", "currency": "USD"},
        "tip": {"amount": tip, "currency": "USD"},
    }
    return event


def order_reversed(
    kind: str = "OrderCancelled",
    order_id: str = "ord-1",
    member_id: str = "shopper-1",
    occurred_at: str = "2026-11-23T11:00:00+00:00",
    time: str = "2026-11-23T12:00:00Z",
) -> dict[str, Any]:
    event = fixture_event("order_cancelled")
    event["detail-type"] = kind
    event["time"] = time
    event["detail"] = {"orderId": order_id, "memberId": member_id, "occurredAt": occurred_at}
    return event


def tip_adjusted(
    order_id: str = "ord-1",
    member_id: str = "shopper-1",
    previous: str = "10.00",
    new: str = "2.00",
    reason: str | None = None,
    occurred_at: str = "2026-11-23T13:00:00+00:00",
    time: str = "2026-11-23T14:00:00Z",
) -> dict[str, Any]:
    event = fixture_event("tip_adjusted")
    event["time"] = time
    detail: dict[str, Any] = {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": "cust-1",
        "previousTip": {"amount": previous, "currency": "USD"},
        "newTip": {"amount": new, "currency": "USD"},
        "occurredAt": occurred_at,
    }
    if reason is not None:
        detail["reason"] = reason
    event["detail"] = detail
    return event


def sqs_event(*bodies: Any, sent_ms: int = 1795446245000) -> dict[str, Any]:
    template = fixture_event("sqs_batch")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"msg-{index}"
        record["receiptHandle"] = f"handle-{index}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        record["attributes"]["SentTimestamp"] = str(sent_ms)
        records.append(record)
    return {"Records": records}


def http_event(body: Any) -> dict[str, Any]:
    event = fixture_event("http_post_event")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@dataclass
class FakeContext:
    function_name: str = "order_ingestion"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:order_ingestion"
    aws_request_id: str = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as Lambda does (by file, module name ``app``). Its
    ``lambda_handler`` counts the AWS calls it makes to the function (tests/iam_calls.py)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{name}_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.lambda_handler = iam_calls.wrap_handler(name, module.lambda_handler)  # type: ignore[attr-defined]
    return module
