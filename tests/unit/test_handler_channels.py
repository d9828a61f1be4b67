"""order_ingestion's handler on each channel (EventBridge, SQS, HTTP), on a moto table."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import pytest

from shared.composition import ledger_repository
from shared.ingress import RejectedEvent
from shared.observability import logger
from tests.helpers import FakeContext, http_event, load_function, order_completed, sqs_event


@pytest.fixture
def app(moto_table: str) -> ModuleType:
    return load_function("order_ingestion")


def points(member_id: str = "shopper-1") -> int:
    item = ledger_repository().get_member("cart-star", member_id)
    return int(item["lifetimePoints"]) if item else 0


def test_eventbridge_event_is_applied(app: ModuleType) -> None:
    result = app.lambda_handler(order_completed(batch_size=2), FakeContext())
    assert result["outcome"] == "credited" and result["points"] == 20
    assert points() == 20


def test_invalid_eventbridge_event_fails_the_invocation_with_its_reason(
    app: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger(logger.name).addHandler(caplog.handler)
    bad = order_completed()
    bad["detail"]["completedAt"] = "2026-11-23T10:00:00"
    with pytest.raises(RejectedEvent, match=r"detail\.completedAt"):
        app.lambda_handler(bad, FakeContext())
    logging.getLogger(logger.name).removeHandler(caplog.handler)
    rejected = [record for record in caplog.records if record.getMessage() == "event rejected"]
    assert rejected and rejected[0].field == "detail.completedAt"  # type: ignore[attr-defined]
    assert "offset" in rejected[0].reason  # type: ignore[attr-defined]
    assert points() == 0


def test_sqs_batch_fails_only_the_poisoned_message(app: ModuleType) -> None:
    batch = sqs_event(
        order_completed(order_id="o-1"),
        "{not json",
        order_completed(order_id="o-2", batch_size=3),
        {"detail-type": "OrderCompleted", "detail": {"orderId": "o-3"}},
    )
    response = app.lambda_handler(batch, FakeContext())
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-3"}]
    }
    assert points() == 40


def test_http_route_applies_and_answers_json(app: ModuleType) -> None:
    response = app.lambda_handler(http_event(order_completed()), FakeContext())
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["result"]["outcome"] == "credited"
    again = json.loads(app.lambda_handler(http_event(order_completed()), FakeContext())["body"])
    assert again["result"]["outcome"] == "duplicate"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ("{oops", 400, "malformed_request", None),
        ("[]", 400, "malformed_request", None),
        ({"detail-type": "OrderCompleted"}, 422, "invalid_input", "detail"),
        ({"detail-type": "Nope", "detail": {}}, 422, "unsupported_event", "detail-type"),
    ],
)
def test_http_route_rejects_bad_input_with_the_field(
    app: ModuleType, body: Any, status: int, code: str, field: str | None
) -> None:
    response = app.lambda_handler(http_event(body), FakeContext())
    assert response["statusCode"] == status
    error = json.loads(response["body"])["error"]
    assert error["code"] == code and error["message"]
    assert error.get("field") == field


def test_http_negative_amount_names_the_field(app: ModuleType) -> None:
    raw = order_completed()
    raw["detail"]["total"]["amount"] = "-3.00"
    response = app.lambda_handler(http_event(raw), FakeContext())
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"]["field"] == "detail.total.amount"


def test_an_unrecognised_invocation_is_rejected(app: ModuleType) -> None:
    with pytest.raises(RejectedEvent):
        app.lambda_handler({"hello": "world"}, FakeContext())
