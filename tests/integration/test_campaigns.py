"""Campaign bonuses on DynamoDB Local, through order ingestion: an eco choice earns its bonus
once per order, at most 4 a month per member, never past the campaign's budget however many
orders arrive at once; a cancelled order gives its bonus back; the auditor accounts for all."""

from __future__ import annotations

import os
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
from shared.domain.keys import campaign_budget_key, campaign_count_sk
from shared.domain.program import Program
from shared.logic.customers import guesses
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, order_completed

PROGRAM = load_program("customer-rewards")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield load_function("order_ingestion")
    composition.reset()


def order(
    customer: str,
    order_id: str | None = None,
    eco: tuple[str, ...] = ("no_cutlery",),
    at: datetime = NOW,
    delivered: datetime | None = None,
) -> dict[str, Any]:
    event = order_completed(
        order_id=order_id or f"o-{uuid.uuid4().hex[:10]}",
        member_id="shopper-1",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=(delivered or at).isoformat(),
    )
    event["detail"]["total"] = {"amount": "20.00", "currency": "USD"}
    if eco:
        event["detail"]["ecoChoices"] = list(eco)
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


def bonus(result: dict[str, Any]) -> Any:
    return result["programs"][1].get("campaigns", {}).get("eco_no_cutlery")


def member(customer: str) -> dict[str, Any]:
    return composition.customer_repository().get_member(PROGRAM.id, customer) or {}


def counted(table_name: str, customer: str, period: str) -> int:
    key = {
        "pk": {"S": f"P#{PROGRAM.id}#M#{customer}"},
        "sk": {"S": campaign_count_sk("eco_no_cutlery", period)},
    }
    item = boto3.client("dynamodb").get_item(TableName=table_name, Key=key).get("Item", {})
    return int(item.get("n", {}).get("N", "0"))


def audit(table_name: str, *customers: str) -> list[Any]:
    pairs = [(PROGRAM.id, customer) for customer in customers]
    return audit_members(boto3.client("dynamodb"), table_name, pairs)


def test_an_eco_choice_earns_its_bonus_once_and_four_a_month(
    app: ModuleType, table_name: str
) -> None:
    first = order("eve", "o-1")
    result = app.lambda_handler(first, FakeContext())
    assert bonus(result) == "rewarded"
    eve = member("eve")
    # The order's 40 points are pending; the bonus is available at once, in this month's lot.
    assert (eve["pend"], eve["bal"], eve["av202611"]) == (40, 20, 20)
    again = app.lambda_handler(first, FakeContext())  # a redelivery
    assert bonus(again) == "duplicate"
    assert (member("eve")["pend"], member("eve")["bal"]) == (40, 20)
    plain = app.lambda_handler(order("eve", eco=()), FakeContext())
    assert bonus(plain) is None
    assert (member("eve")["pend"], member("eve")["bal"]) == (80, 20)
    outcomes = [bonus(app.lambda_handler(order("eve"), FakeContext())) for _ in range(4)]
    assert outcomes == ["rewarded", "rewarded", "rewarded", "member_limit"]
    assert counted(table_name, "eve", "2026-11") == 4
    # December is another month (the order's day in the program's zone).
    december = order("eve", at=datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    assert bonus(app.lambda_handler(december, FakeContext())) == "rewarded"
    assert audit(table_name, "eve") == []


def test_a_cancelled_order_gives_its_bonus_back_once(app: ModuleType, table_name: str) -> None:
    app.lambda_handler(order("cal", "o-c"), FakeContext())
    assert (member("cal")["pend"], member("cal")["bal"]) == (40, 20)
    later = NOW + timedelta(hours=2)
    for _ in range(2):
        result = app.lambda_handler(cancel("cal", "o-c", later), FakeContext())
    # The order's pending points and its bonus, out of the balance, once.
    assert (member("cal")["pend"], member("cal")["bal"]) == (0, 0)
    assert counted(table_name, "cal", "2026-11") == 0  # the month's slot is free again
    assert result["programs"][1]["outcome"] == "duplicate"
    assert audit(table_name, "cal") == []
    # Once matured, a bonus comes back out of the balance instead.
    late = order("cal", "o-m", at=NOW - timedelta(days=40), delivered=NOW)  # past pending
    app.lambda_handler(late, FakeContext())
    available = member("cal")["bal"]
    app.lambda_handler(cancel("cal", "o-m", NOW), FakeContext())
    assert member("cal")["bal"] == available - 40 - 20
    assert audit(table_name, "cal") == []


def with_budget(points: int) -> Program:
    campaign = PROGRAM.campaigns[0]
    assert campaign.budget is not None
    budget = campaign.budget.model_copy(update={"points": points})
    return PROGRAM.model_copy(
        update={"campaigns": (campaign.model_copy(update={"budget": budget}),)}
    )


def test_concurrent_orders_never_spend_past_the_budget(
    app: ModuleType, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 customers' orders at once against a budget with room for one bonus left: exactly one
    is paid, every trial (12 in make test, about 10 s; CAMPAIGN_RACE_TRIALS=200 for more)."""
    trials = int(os.environ.get("CAMPAIGN_RACE_TRIALS", "12"))
    client = boto3.client("dynamodb")
    for trial in range(trials):
        budget = 100 * (trial + 1)
        program = with_budget(budget)
        monkeypatch.setattr(app, "customer_programs", lambda _ids, program=program: [program])
        pk, sk = campaign_budget_key(PROGRAM.id, "eco_no_cutlery", "2026-11")
        client.put_item(
            TableName=table_name,
            Item={"pk": {"S": pk}, "sk": {"S": sk}, "spent": {"N": str(budget - 20)}},
        )
        barrier = threading.Barrier(16)

        def deliver(index: int, trial: int = trial, barrier: threading.Barrier = barrier) -> Any:
            event = order(f"t{trial}-c{index}")
            barrier.wait()
            return bonus(app.lambda_handler(event, FakeContext()))

        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(deliver, range(16)))
        assert sorted(outcomes).count("rewarded") == 1, outcomes
        assert set(outcomes) == {"rewarded", "budget_spent"}
        spent = client.get_item(TableName=table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}})[
            "Item"
        ]["spent"]["N"]
        assert int(spent) == budget


def test_the_member_sees_their_progress_this_period(app: ModuleType) -> None:
    """GET /v1/me/challenges: each campaign with what the member earned in its current period,
    one half read unit per campaign, and one for the member's zone (the weekly challenge's week
    is theirs)."""
    from tests.integration.test_customer_api import customer_http  # noqa: PLC0415
    from tests.integration.test_perks_helpers import call  # noqa: PLC0415

    for _ in range(3):
        app.lambda_handler(order("pia"), FakeContext())
    member_api = load_function("member_api")
    request = customer_http("GET", "/v1/me/challenges", "pia")
    request["requestContext"]["timeEpoch"] = int((NOW + timedelta(days=1)).timestamp() * 1000)
    meter = composition.meter()
    meter.reset()
    status, body, _ = call(member_api, request)
    assert status == 200, body
    assert meter.read_units == 1.5
    weekly = body["challenges"].pop()
    assert (weekly["campaignId"], weekly["orders"], weekly["earned"]) == ("three_orders_week", 3, 1)
    assert body == {
        "programId": PROGRAM.id,
        "challenges": [
            {
                "campaignId": "eco_no_cutlery",
                "name": "No plastic cutlery",
                "points": 20,
                "ecoChoice": "no_cutlery",
                "period": "2026-11",
                "earned": 3,
                "limit": 4,
                "remaining": 1,
                "ordersNeeded": None,
                "orders": None,
                "weekStart": None,
                "weekEnd": None,
            }
        ],
    }
    # Next month the count starts again; a shopper's program has no campaigns.
    request["requestContext"]["timeEpoch"] = int(
        datetime(2026, 12, 2, tzinfo=UTC).timestamp() * 1000
    )
    _, december, _ = call(member_api, request)
    assert december["challenges"][0]["earned"] == 0
    assert december["challenges"][0]["period"] == "2026-12"
    from tests.integration.test_perks_helpers import http  # noqa: PLC0415

    _, shopper, _ = call(member_api, http("GET", "/v1/me/challenges", sub="pia"))
    assert shopper == {"programId": "cart-star", "challenges": []}
