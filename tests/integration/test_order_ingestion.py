"""order_ingestion against DynamoDB Local, through its real handler and real event shapes.

The central property: any event delivered 1 to 5 times, concurrently, in any order and through
any channel, leaves the same ledger and balance as one delivery of each.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import composition
from shared.composition import ledger_repository
from shared.domain.orders import OrderStatus
from shared.domain.window import window_points
from shared.logic.members import public_badge
from shared.programs import load_program
from tests.helpers import (
    FakeContext,
    http_event,
    load_function,
    order_completed,
    order_reversed,
    sqs_event,
    tip_adjusted,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    yield load_function("order_ingestion")
    composition.reset()


def deliver(app: ModuleType, event: dict[str, Any], channel: str) -> Any:
    """Send one event through one channel; raise if the channel reports a failure."""
    if channel == "eventbridge":
        return app.lambda_handler(event, FakeContext())
    if channel == "sqs":
        response = app.lambda_handler(sqs_event(event), FakeContext())
        assert response == {"batchItemFailures": []}, response
        return response
    response = app.lambda_handler(http_event(event), FakeContext())
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])["result"]


@dataclass(frozen=True)
class Order:
    order_id: str
    batch: int
    completed_at: datetime
    cancel: str | None  # None, OrderCancelled, OrderRefunded or both ("both")


orders_strategy = st.lists(
    st.builds(
        Order,
        order_id=st.uuids().map(lambda u: f"ord-{u.hex[:12]}"),
        batch=st.integers(min_value=1, max_value=3),
        completed_at=st.integers(min_value=0, max_value=120 * 24).map(
            lambda hours: NOW - timedelta(hours=hours)
        ),
        cancel=st.sampled_from([None, None, "OrderCancelled", "OrderRefunded", "both"]),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda order: order.order_id,
)


def events_of(order: Order, member_id: str, customer_id: str = "cust-1") -> list[dict[str, Any]]:
    completed = order_completed(
        order_id=order.order_id,
        member_id=member_id,
        customer_id=customer_id,
        batch_size=order.batch,
        completed_at=order.completed_at.isoformat(),
        time=NOW.isoformat(),
    )
    kinds = {"both": ["OrderCancelled", "OrderRefunded"], None: []}.get(
        order.cancel, [order.cancel]
    )
    reversals = [
        order_reversed(
            kind=str(kind),
            order_id=order.order_id,
            member_id=member_id,
            occurred_at=(order.completed_at + timedelta(minutes=30)).isoformat(),
            time=NOW.isoformat(),
        )
        for kind in kinds
    ]
    return [completed, *reversals]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=orders_strategy,
    copies=st.lists(st.integers(min_value=1, max_value=5), min_size=18, max_size=18),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_concurrent_duplicate_delivery_in_any_order_is_exactly_once(
    app: ModuleType, orders: list[Order], copies: list[int], seed: int
) -> None:
    member_id = f"shopper-{uuid.uuid4().hex[:10]}"
    customer_id = f"customer-{uuid.uuid4().hex[:10]}"
    rng = random.Random(seed)
    deliveries = []
    events = (e for order in orders for e in events_of(order, member_id, customer_id))
    for index, event in enumerate(events):
        for _ in range(copies[index % len(copies)]):
            deliveries.append((event, rng.choice(["eventbridge", "sqs", "http"])))
    rng.shuffle(deliveries)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda delivery: deliver(app, *delivery), deliveries))

    program = load_program("cart-star")
    kept = [order for order in orders if order.cancel is None]
    expected_points = sum(10 * order.batch for order in kept)
    item = ledger_repository().get_member("cart-star", member_id) or {}
    assert int(item.get("lifetimePoints", 0)) == expected_points
    # The badge counts orders: an event for a batch of n is n orders.
    assert int(item.get("ordersCompleted", 0)) == sum(order.batch for order in kept)
    today = NOW.date()
    expected_window = sum(
        10 * order.batch for order in kept if order.completed_at.date() > today - timedelta(days=90)
    )
    assert window_points(item, today, program) == expected_window
    for order in orders:
        record = ledger_repository().get_order("cart-star", member_id, order.order_id)
        assert record is not None
        if order.cancel is None:
            assert record.status is OrderStatus.CREDITED and record.reversal is None
        else:
            assert record.status in {OrderStatus.REVERSED, OrderStatus.VOID}
            if record.status is OrderStatus.REVERSED:
                assert record.reversal is not None
                assert record.reversal.points == -record.points == -10 * order.batch
    # The customer of the same orders, in the customer program: $40 is 80 points, pending for
    # 14 days after the order's day, available at once when the order arrives later than that.
    customer = ledger_repository().get_member("customer-rewards", customer_id) or {}
    available_from = NOW.date() - timedelta(days=15)
    assert int(customer.get("lifetimePoints", 0)) == 80 * len(kept)
    # A cancelled order counts as completed if it was credited before its cancellation came.
    assert len(kept) <= int(customer.get("ordersCompleted", 0)) <= len(orders)
    # The weekly challenge pays 300 for each calendar week holding 3 kept orders, into the lot of
    # whichever order completed the week (the deliveries' order decides which).
    weeks = Counter(order.completed_at.isocalendar()[:2] for order in kept)
    bonus = 300 * sum(1 for n in weeks.values() if n >= 3)
    available = 80 * sum(1 for order in kept if order.completed_at.date() <= available_from)
    pending = 80 * sum(1 for order in kept if order.completed_at.date() > available_from)
    bal, pend = int(customer.get("bal", 0)), int(customer.get("pend", 0))
    assert bal + pend == available + pending + bonus
    assert bal in {available, available + bonus} and pend in {pending, pending + bonus}


def test_a_poisoned_message_fails_alone_and_redelivery_changes_nothing(app: ModuleType) -> None:
    poisoned = order_completed(order_id="ord-bad")
    poisoned["detail"]["tip"] = {"amount": "-2.00", "currency": "USD"}
    batch = sqs_event(
        order_completed(order_id="ord-a"),
        poisoned,
        order_completed(order_id="ord-b", batch_size=2),
    )
    for _receive in range(3):  # maxReceiveCount in template.yaml; then SQS moves it to the DLQ
        response = app.lambda_handler(batch, FakeContext())
        assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    item = ledger_repository().get_member("cart-star", "shopper-1")
    assert item is not None and item["lifetimePoints"] == 30
    assert ledger_repository().get_order("cart-star", "shopper-1", "ord-bad") is None


def test_a_batch_is_several_orders_whichever_way_it_is_sent(
    app: ModuleType, table_name: str
) -> None:
    """One event with batchSize 3, or three events with one batchId (each its own customer):
    30 points and 3 orders either way, in the badge too; a cancellation of the batch event
    takes its 3 orders back, one of the batch's own events its one."""
    repo = ledger_repository()
    deliver(app, order_completed(order_id="b-one", member_id="s-one", batch_size=3), "http")
    for index in range(3):
        event = order_completed(
            order_id=f"b-{index}", member_id="s-three", customer_id=f"cust-{index}"
        )
        event["detail"]["batchId"] = "batch-7"
        for channel in ("eventbridge", "sqs", "http"):  # redelivered: still one order each
            deliver(app, event, channel)
    for member in ("s-one", "s-three"):
        item = repo.get_member("cart-star", member) or {}
        assert (item["lifetimePoints"], item["ordersCompleted"]) == (30, 3), member
        diamond = {**item, "tier": "diamond"}  # the badge is shown from Platinum on
        badge = public_badge(member, diamond, NOW, load_program("cart-star"))
        assert badge is not None and badge.orders_completed == 3
    for index in range(3):  # each order of the batch is its own, with its customer
        record = repo.get_order("cart-star", "s-three", f"b-{index}")
        assert record is not None and record.customer_id == f"cust-{index}"
        assert (record.batch_id, record.batch_size, record.points) == ("batch-7", 1, 10)
    deliver(app, order_reversed(order_id="b-one", member_id="s-one"), "http")
    deliver(app, order_reversed(order_id="b-1", member_id="s-three"), "http")
    assert (repo.get_member("cart-star", "s-one") or {})["ordersCompleted"] == 0
    assert (repo.get_member("cart-star", "s-three") or {})["ordersCompleted"] == 2


def test_a_batch_id_with_a_batch_size_is_refused_naming_the_field(app: ModuleType) -> None:
    """An event with a batchId is one order: a batchSize above 1 with it is bad input."""
    event = order_completed(order_id="b-bad", batch_size=2)
    event["detail"]["batchId"] = "batch-8"
    response = app.lambda_handler(http_event(event), FakeContext())
    assert response["statusCode"] == 422, response
    error = json.loads(response["body"])["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "detail.batchSize")
    assert "batchId" in error["message"]
    event["detail"]["batchSize"] = 1
    assert deliver(app, event, "http")["points"] == 10
    assert ledger_repository().get_order("cart-star", "shopper-1", "b-bad") is not None


def test_late_event_counts_on_its_own_day(app: ModuleType) -> None:
    three_days_ago = (NOW - timedelta(days=3)).isoformat()
    app.lambda_handler(
        order_completed(completed_at=three_days_ago, time=NOW.isoformat()), FakeContext()
    )
    item = ledger_repository().get_member("cart-star", "shopper-1")
    assert item is not None
    assert window_points(item, date(2026, 11, 23), load_program("cart-star")) == 10
    assert window_points(item, NOW.date() + timedelta(days=86), load_program("cart-star")) == 10
    assert window_points(item, NOW.date() + timedelta(days=87), load_program("cart-star")) == 0


def test_tip_bait_is_recorded_through_http(app: ModuleType) -> None:
    deliver(app, order_completed(tip="10.00"), "http")
    result = deliver(app, tip_adjusted(previous="10.00", new="5.00"), "http")
    assert result["outcome"] == "tip_recorded" and result["tipBaited"] is True
    record = ledger_repository().get_order("cart-star", "shopper-1", "ord-1")
    assert record is not None and record.tip_baited


def test_completion_reads_nothing_and_writes_one_transaction_per_program(
    app: ModuleType,
) -> None:
    """The shopper's credit and the customer's: one transaction each, no read; the customer
    program's weekly challenge adds its count (one transaction) and the member's zone (one
    eventually consistent read of half a unit). The billed units, doubled for transactions as
    AWS bills them, are `make bench`'s."""
    repo = ledger_repository()
    repo.meter.reset()
    result = app.lambda_handler(order_completed(order_id="ord-cost"), FakeContext())
    assert [p["programId"] for p in result["programs"]] == ["cart-star", "customer-rewards"]
    assert result["programs"][1]["campaigns"] == {"three_orders_week": "counted"}
    assert repo.meter.read_units == 0.5
    assert repo.meter.by_operation == {"TransactWriteItems": 3, "GetItem": 1}


def test_an_order_total_above_the_programs_limit_is_refused_on_every_channel(
    app: ModuleType,
) -> None:
    """limits.maxOrderTotal (10000.00 in both programs): above it the order is refused, naming
    the field, never clamped, and nothing is written in either program; at it, credited."""
    cap = load_program("cart-star").limits.max_order_total
    assert cap == load_program("customer-rewards").limits.max_order_total
    over = order_completed(order_id="ord-huge")
    over["detail"]["total"] = {"amount": f"{cap + Decimal('0.01')}", "currency": "USD"}
    response = app.lambda_handler(http_event(over), FakeContext())
    assert response["statusCode"] == 422, response
    error = json.loads(response["body"])["error"]
    assert error["code"] == "invalid_input" and error["field"] == "detail.total.amount"
    assert "maxOrderTotal" in error["message"]
    # SQS: the message fails alone (then the DLQ); EventBridge: the invocation fails (then the
    # failure destination).
    batch = sqs_event(over, order_completed(order_id="ord-fine"))
    assert app.lambda_handler(batch, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }
    with pytest.raises(Exception, match=r"detail\.total\.amount"):
        app.lambda_handler(over, FakeContext())
    repo = ledger_repository()
    assert repo.get_order("cart-star", "shopper-1", "ord-huge") is None
    assert repo.get_member("customer-rewards", "cust-1") is not None  # ord-fine's credit only
    item = repo.get_member("cart-star", "shopper-1")
    assert item is not None and item["ordersCompleted"] == 1
    customer = repo.get_member("customer-rewards", "cust-1")
    assert customer is not None and customer["ordersCompleted"] == 1
    at_cap = order_completed(order_id="ord-cap")
    at_cap["detail"]["total"] = {"amount": f"{cap}", "currency": "USD"}
    assert deliver(app, at_cap, "http")["outcome"] == "credited"
