"""Inbound event validation: bad input is rejected with the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.errors import InvalidInput, MalformedRequest, UnsupportedEvent
from shared.domain.events import OrderCompleted, TipAdjusted, parse_detail, parse_envelope
from shared.logic.ingestion import INGESTED_EVENTS
from tests.helpers import order_completed, tip_adjusted


def parse(event: dict[str, Any]) -> Any:
    envelope = parse_envelope(event)
    return parse_detail(envelope.detail_type, envelope.detail, INGESTED_EVENTS)


def test_valid_order_completed_is_parsed_with_types() -> None:
    event = parse(order_completed(batch_size=3, completed_at="2026-11-23T09:58:00-05:00"))
    assert isinstance(event, OrderCompleted)
    assert event.batch_size == 3
    assert event.completed_at == datetime(2026, 11, 23, 14, 58, tzinfo=UTC)
    assert event.tip.amount == Decimal("5.00")


def test_batch_size_defaults_to_one() -> None:
    raw = order_completed()
    del raw["detail"]["batchSize"]
    assert parse(raw).batch_size == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d.pop("memberId"), "detail.memberId", "Field required"),
        (lambda d: d.update(batchSize=4), "detail.batchSize", "less than or equal to 3"),
        (lambda d: d.update(batchSize=0), "detail.batchSize", "greater than or equal to 1"),
        (lambda d: d.update(batchSize="2"), "detail.batchSize", "valid integer"),
        (lambda d: d.update(batchSize=2.5), "detail.batchSize", "valid integer"),
        (lambda d: d.update(completedAt="2026-11-23T10:00:00"), "detail.completedAt", "offset"),
        (lambda d: d.update(completedAt="yesterday"), "detail.completedAt", "ISO 8601"),
        (lambda d: d.update(completedAt=1795446245), "detail.completedAt", "ISO 8601"),
        (lambda d: d.update(tip={"amount": -1, "currency": "USD"}), "detail.tip.amount", ">= 0"),
        (lambda d: d.update(total={"amount": 5, "currency": "usd"}), "detail.total.currency", ""),
        (
            lambda d: d.update(total={"amount": "1.234", "currency": "USD"}),
            "detail.total.amount",
            "",
        ),
        (lambda d: d.update(orderId="a#b"), "detail.orderId", "pattern"),
        (lambda d: d.update(customerId=17), "detail.customerId", "string"),
    ],
)
def test_bad_order_completed_names_the_field(change: Any, field: str, words: str) -> None:
    raw = order_completed()
    change(raw["detail"])
    with pytest.raises(InvalidInput) as caught:
        parse(raw)
    assert caught.value.field == field
    assert field in caught.value.message
    assert words.replace(">= 0", "greater than or equal to 0") in caught.value.message


def test_unknown_detail_type_is_unsupported() -> None:
    raw = order_completed()
    raw["detail-type"] = "OrderTeleported"
    with pytest.raises(UnsupportedEvent) as caught:
        parse(raw)
    assert caught.value.field == "detail-type"
    assert "OrderCompleted" in caught.value.message


def test_envelope_without_detail_is_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_envelope({"detail-type": "OrderCompleted"})
    assert caught.value.field == "detail"


def test_non_object_is_malformed() -> None:
    with pytest.raises(MalformedRequest):
        parse_envelope(["not", "an", "object"])


def test_unknown_fields_are_tolerated_and_reported() -> None:
    raw = order_completed()
    raw["detail"]["storeId"] = "store-9"
    event = parse(raw)
    assert event.unknown_fields == ["storeId"]


def test_tip_reason_is_optional_but_not_empty() -> None:
    assert isinstance(parse(tip_adjusted()), TipAdjusted)
    with pytest.raises(InvalidInput) as caught:
        parse(tip_adjusted(reason=""))
    assert caught.value.field == "detail.reason"
