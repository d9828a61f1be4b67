"""The local stack on the repository's own template.yaml: order_ingestion driven through the
EventBridge endpoint (PutEvents on the template's bus and on `default`) and through the
IAM-authorised HTTP route."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.ddb_local import DynamoDBLocal
from shared.domain.keys import member_pk, order_sk

from .test_local_stack import RunningStack, eventually, http, running_stack, signed_headers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(
    ddb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("local-stack-real")
    with running_stack(ROOT / "template.yaml", state, ddb_local) as running:
        yield running
    assert running.process.returncode == 0, running.output.read_text()[-3000:]


def order_completed(order_id: str, member_id: str, batch_size: int = 1) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": "customer-1",
        "completedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "batchSize": batch_size,
        "total": {"amount": "42.00", "currency": "USD"},
        "tip": {"amount": "5.00", "currency": "USD"},
    }


def order_item(stack: RunningStack, member: str, order: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        stack.client("dynamodb")
        .get_item(
            TableName=stack.description["tables"]["LoyaltyTable"],
            Key={"pk": {"S": member_pk("cart-star", member)}, "sk": {"S": order_sk(order)}},
        )
        .get("Item")
    )
    return item


def test_order_events_through_put_events_reach_order_ingestion(stack: RunningStack) -> None:
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    bus = stack.description["functions"]["OrderIngestionFunction"]["environment"]["EVENT_BUS_NAME"]
    response = stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "orders.service",
                "DetailType": "OrderCompleted",
                "Detail": json.dumps(order_completed("order-1", member, batch_size=3)),
            },
            {  # a producer that leaves out EventBusName lands on `default`, routed all the same
                "Source": "orders.service",
                "DetailType": "OrderCompleted",
                "Detail": json.dumps(order_completed("order-2", member)),
            },
        ]
    )
    assert response["FailedEntryCount"] == 0
    first = eventually(lambda: order_item(stack, member, "order-1"))
    assert first["points"]["N"] == "30"
    eventually(lambda: order_item(stack, member, "order-2"))


def test_the_iam_route_ingests_signed_requests_only(stack: RunningStack) -> None:
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    url = f"{stack.http}/v1/events"
    body = json.dumps(
        {"detail-type": "OrderCompleted", "detail": order_completed("order-http", member)}
    ).encode()
    assert http("POST", url, body=body)[::2] == (403, {"message": "Forbidden"})
    status, _, answer = http("POST", url, body=body, headers=signed_headers("POST", url, body))
    assert status == 200, answer
    assert answer["result"]["outcome"] == "credited"
    assert order_item(stack, member, "order-http") is not None
    status, _, answer = http(
        "POST",
        url,
        body=b'{"detail-type": "OrderCompleted"}',
        headers=signed_headers("POST", url, b'{"detail-type": "OrderCompleted"}'),
    )
    assert status in (400, 422), answer
