"""The weekly challenge on DynamoDB Local, through order ingestion: the 3rd credited order of the
member's calendar week (Monday to Sunday, their profile zone) pays 300 points once a week; a
redelivery counts once; orders completing at once never pay twice; a cancelled order is
uncounted and takes the bonus back when the week no longer holds 3; the member sees the week."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.audit import audit_members
from shared import composition
from shared.domain.keys import challenge_week_sk, reward_sk
from shared.logic.customers import guesses
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, order_completed

PROGRAM = load_program("customer-rewards")
CHALLENGE = "three_orders_week"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # week 2026-W48: 23 to 29 November


@pytest.fixture
def app(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield load_function("order_ingestion")
    composition.reset()


def order(customer: str, order_id: str | None = None, at: datetime = MONDAY) -> dict[str, Any]:
    event = order_completed(
        order_id=order_id or f"o-{uuid.uuid4().hex[:10]}",
        member_id="shopper-1",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=at.isoformat(),
    )
    event["detail"]["total"] = {"amount": "20.00", "currency": "USD"}  # 40 points
    return event


def cancel(customer: str, order_id: str, at: datetime) -> dict[str, Any]:
    return {
        "detail-type": "OrderCancelled",
        "source": "orders.service",
        "time": at.isoformat(),
        "detail": {
            "orderId": order_id,
            "memberId": "shopper-1",
            "customerId": customer,
            "occurredAt": at.isoformat(),
        },
    }


def challenge(result: dict[str, Any]) -> Any:
    return result["programs"][1].get("campaigns", {}).get(CHALLENGE)


def member(customer: str) -> dict[str, Any]:
    return composition.customer_repository().get_member(PROGRAM.id, customer) or {}


def week(table_name: str, customer: str, key: str = "2026-W48") -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=table_name,
        Key={
            "pk": {"S": f"P#{PROGRAM.id}#M#{customer}"},
            "sk": {"S": challenge_week_sk(CHALLENGE, key)},
        },
    )
    found = item.get("Item", {})
    return {
        "n": int(found.get("n", {}).get("N", "0")),
        "paid": int(found.get("paid", {}).get("N", "0")),
    }


def reward_state(table_name: str, customer: str, order_id: str) -> str | None:
    item = boto3.client("dynamodb").get_item(
        TableName=table_name,
        Key={
            "pk": {"S": f"P#{PROGRAM.id}#M#{customer}"},
            "sk": {"S": reward_sk(CHALLENGE, order_id)},
        },
    )
    state = item.get("Item", {}).get("state", {}).get("S")
    return str(state) if state else None


def audit(table_name: str, *customers: str) -> list[Any]:
    pairs = [(PROGRAM.id, customer) for customer in customers]
    return audit_members(boto3.client("dynamodb"), table_name, pairs)


def test_the_third_order_of_the_week_pays_once(app: ModuleType, table_name: str) -> None:
    outcomes = [challenge(app.lambda_handler(order("ann"), FakeContext())) for _ in range(2)]
    assert outcomes == ["counted", "counted"]
    third = order("ann", "o-3", at=MONDAY + timedelta(days=6, hours=14))  # Sunday 23:00
    assert challenge(app.lambda_handler(third, FakeContext())) == "rewarded"
    assert (member("ann")["pend"], member("ann")["bal"]) == (3 * 40, 300)  # the bonus at once
    assert week(table_name, "ann") == {"n": 3, "paid": 1}
    # A redelivery counts nothing and pays nothing.
    assert challenge(app.lambda_handler(third, FakeContext())) == "duplicate"
    assert (member("ann")["pend"], member("ann")["bal"]) == (3 * 40, 300)
    # A fourth order that week counts, without a second bonus.
    assert challenge(app.lambda_handler(order("ann"), FakeContext())) == "counted"
    assert (member("ann")["pend"], member("ann")["bal"]) == (4 * 40, 300)
    assert week(table_name, "ann") == {"n": 4, "paid": 1}
    # Monday 00:00 UTC begins the next week (the program's zone: no profile zone).
    next_week = order("ann", at=MONDAY + timedelta(days=7, hours=-9))
    assert challenge(app.lambda_handler(next_week, FakeContext())) == "counted"
    assert week(table_name, "ann", "2026-W49") == {"n": 1, "paid": 0}
    assert audit(table_name, "ann") == []


def test_the_week_is_the_members_own(app: ModuleType, table_name: str) -> None:
    """Sunday 29 November 12:00 UTC is already Monday in Auckland: a member there counts it in
    the next week."""
    profile = {
        "detail-type": "ProfileUpdated",
        "source": "profiles.service",
        "time": MONDAY.isoformat(),
        "detail": {
            "programId": PROGRAM.id,
            "memberId": "kiri",
            "birthday": None,
            "timeZone": "Pacific/Auckland",
            "occurredAt": MONDAY.isoformat(),
        },
    }
    app.lambda_handler(profile, FakeContext())
    for customer in ("kiri", "lou"):
        for day in (1, 2):
            app.lambda_handler(order(customer, at=MONDAY + timedelta(days=day)), FakeContext())
    sunday_noon = MONDAY + timedelta(days=6, hours=3)
    assert challenge(app.lambda_handler(order("lou", at=sunday_noon), FakeContext())) == "rewarded"
    assert challenge(app.lambda_handler(order("kiri", at=sunday_noon), FakeContext())) == "counted"
    assert week(table_name, "kiri") == {"n": 2, "paid": 0}
    assert week(table_name, "kiri", "2026-W49") == {"n": 1, "paid": 0}


def test_orders_completing_a_week_at_once_pay_once(app: ModuleType, table_name: str) -> None:
    """Two orders completing a week at once (the member had 2), and six at once from none: one
    bonus each time, every order counted (20 trials)."""
    for trial in range(20):
        customer = f"race-{trial}"
        before = 2 if trial % 2 == 0 else 0
        for _ in range(before):
            app.lambda_handler(order(customer), FakeContext())
        at_once = 2 if before else 6
        barrier = threading.Barrier(at_once)

        def deliver(_: int, customer: str = customer, barrier: threading.Barrier = barrier) -> Any:
            event = order(customer)
            barrier.wait()
            return challenge(app.lambda_handler(event, FakeContext()))

        with ThreadPoolExecutor(at_once) as pool:
            outcomes = list(pool.map(deliver, range(at_once)))
        assert outcomes.count("rewarded") == 1, outcomes
        assert set(outcomes) == {"rewarded", "counted"}
        assert week(table_name, customer) == {"n": before + at_once, "paid": 1}
        assert (member(customer)["pend"], member(customer)["bal"]) == ((before + at_once) * 40, 300)
    assert audit(table_name, *(f"race-{trial}" for trial in range(20))) == []


def test_a_cancelled_order_is_uncounted_and_takes_the_bonus_back(
    app: ModuleType, table_name: str
) -> None:
    for index in range(3):
        app.lambda_handler(order("bo", f"b-{index}"), FakeContext())
    assert (member("bo")["pend"], member("bo")["bal"]) == (3 * 40, 300)
    later = MONDAY + timedelta(hours=5)
    for _ in range(2):  # the cancellation, and its redelivery
        app.lambda_handler(cancel("bo", "b-2", later), FakeContext())
    assert week(table_name, "bo") == {"n": 2, "paid": 0}
    assert reward_state(table_name, "bo", "b-2") == "reversed"
    assert (member("bo")["pend"], member("bo")["bal"]) == (
        2 * 40,
        0,
    )  # the order's points and the bonus are gone
    # The week is open again: the next order completes it.
    assert challenge(app.lambda_handler(order("bo", "b-3"), FakeContext())) == "rewarded"
    assert challenge(app.lambda_handler(order("bo", "b-4"), FakeContext())) == "counted"
    assert week(table_name, "bo") == {"n": 4, "paid": 1}
    # Cancelling an order of a week that still holds 3 keeps the bonus; below 3, it goes.
    app.lambda_handler(cancel("bo", "b-0", later), FakeContext())
    assert week(table_name, "bo") == {"n": 3, "paid": 1}
    assert (member("bo")["pend"], member("bo")["bal"]) == (3 * 40, 300)
    app.lambda_handler(cancel("bo", "b-4", later), FakeContext())
    assert week(table_name, "bo") == {"n": 2, "paid": 0}
    assert reward_state(table_name, "bo", "b-3") == "reversed"
    assert (member("bo")["pend"], member("bo")["bal"]) == (2 * 40, 0)
    # A partial refund keeps the order counted.
    refund = cancel("bo", "b-1", later)
    refund["detail-type"] = "OrderRefunded"
    refund["detail"]["amount"] = {"amount": "5.00", "currency": "USD"}
    app.lambda_handler(refund, FakeContext())
    assert week(table_name, "bo") == {"n": 2, "paid": 0}
    assert audit(table_name, "bo") == []


def test_a_bonus_taken_back_after_maturing_comes_out_of_the_balance(
    app: ModuleType, table_name: str
) -> None:
    old = MONDAY - timedelta(days=28)  # past its pending period when it arrives
    events = [order("cy", f"c-{index}", at=old) for index in range(3)]
    for event in events:
        event["time"] = MONDAY.isoformat()
        app.lambda_handler(event, FakeContext())
    assert member("cy")["bal"] == 3 * 40 + 300
    app.lambda_handler(cancel("cy", "c-0", MONDAY), FakeContext())
    assert member("cy")["bal"] == 2 * 40
    assert audit(table_name, "cy") == []


def test_the_member_sees_the_week(app: ModuleType) -> None:
    from tests.integration.test_customer_api import customer_http  # noqa: PLC0415
    from tests.integration.test_perks_helpers import call  # noqa: PLC0415

    for _ in range(2):
        app.lambda_handler(order("dee"), FakeContext())
    member_api = load_function("member_api")
    request = customer_http("GET", "/v1/me/challenges", "dee")
    request["requestContext"]["timeEpoch"] = int((MONDAY + timedelta(days=2)).timestamp() * 1000)
    status, body, _ = call(member_api, request)
    assert status == 200, body
    weekly = next(c for c in body["challenges"] if c["campaignId"] == CHALLENGE)
    assert weekly == {
        "campaignId": CHALLENGE,
        "name": "3 orders in a week",
        "points": 300,
        "ecoChoice": None,
        "period": "2026-W48",
        "earned": 0,
        "limit": 1,
        "remaining": 1,
        "ordersNeeded": 3,
        "orders": 2,
        "weekStart": "2026-11-23",
        "weekEnd": "2026-11-29",
    }
    app.lambda_handler(order("dee"), FakeContext())
    _, body, _ = call(member_api, request)
    weekly = next(c for c in body["challenges"] if c["campaignId"] == CHALLENGE)
    assert (weekly["orders"], weekly["earned"], weekly["remaining"]) == (3, 1, 0)
