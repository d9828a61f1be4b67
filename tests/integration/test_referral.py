"""Referrals on DynamoDB Local: the member's code (``GET /v1/me/referral``: made once, the same
after, one code for concurrent first requests), ``CustomerSignedUp`` through order ingestion
(the first referrer wins, no self-referral, an unknown code refused, every refusal stored with
why), and the payment by ``points_settlement`` once the new customer's first order has survived
its pending period: 1,000 points to each, at most 10 a year to a referrer; a first order
cancelled while pending pays nothing, and no later order becomes the first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from infra.audit import audit_members
from shared import composition
from shared.domain.keys import campaign_count_sk
from shared.domain.referral import ALPHABET
from shared.logic.customers import guesses
from shared.programs import load_program
from tests.helpers import FakeContext, http_event, load_function, order_completed
from tests.integration.test_customer_api import customer_http
from tests.integration.test_perks_helpers import call, http

PROGRAM = load_program("customer-rewards")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AVAILABLE = datetime(2026, 12, 8, 0, 5, tzinfo=UTC)  # an order of 23 November: from 8 December


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield {
        "ingestion": load_function("order_ingestion"),
        "settlement": load_function("points_settlement"),
        "api": load_function("perk_redemption"),
    }
    composition.reset()


def code_of(apps: dict[str, ModuleType], member: str) -> str:
    status, body, _ = call(apps["api"], customer_http("GET", "/v1/me/referral", member))
    assert status == 200, body
    return str(body["code"])


def signup(customer: str, code: str | None, at: datetime = NOW) -> dict[str, Any]:
    return {
        "detail-type": "CustomerSignedUp",
        "source": "signup.service",
        "time": at.isoformat(),
        "detail": {"customerId": customer, "referralCode": code, "signedUpAt": at.isoformat()},
    }


def send(apps: dict[str, ModuleType], event: dict[str, Any]) -> dict[str, Any]:
    result = apps["ingestion"].lambda_handler(event, FakeContext())
    return dict(result["programs"][0])


def order(
    apps: dict[str, ModuleType], customer: str, order_id: str, at: datetime = NOW
) -> dict[str, Any]:
    event = order_completed(
        order_id=order_id,
        member_id="shopper-1",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=at.isoformat(),
    )
    event["detail"]["total"] = {"amount": "20.00", "currency": "USD"}  # 40 points
    return dict(apps["ingestion"].lambda_handler(event, FakeContext()))


def cancel(apps: dict[str, ModuleType], customer: str, order_id: str, at: datetime) -> None:
    event = {
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
    apps["ingestion"].lambda_handler(event, FakeContext())


def partial_refund(apps: dict[str, ModuleType], customer: str, order_id: str) -> None:
    at = NOW + timedelta(days=2)
    event = {
        "detail-type": "OrderRefunded",
        "source": "orders.service",
        "time": at.isoformat(),
        "detail": {
            "orderId": order_id,
            "memberId": "shopper-1",
            "customerId": customer,
            "amount": {"amount": "5.00", "currency": "USD"},
            "occurredAt": at.isoformat(),
        },
    }
    apps["ingestion"].lambda_handler(event, FakeContext())


def settle(apps: dict[str, ModuleType], at: datetime) -> dict[str, Any]:
    schedule = {"detail-type": "Scheduled Event", "time": at.isoformat()}
    run = apps["settlement"].lambda_handler(schedule, FakeContext("points_settlement"))
    return dict(run["programs"][0])


def member(customer: str) -> dict[str, Any]:
    return composition.customer_repository().get_member(PROGRAM.id, customer) or {}


def items(table_name: str, customer: str, prefix: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(table_name)
    found = table.query(
        KeyConditionExpression=Key("pk").eq(f"P#{PROGRAM.id}#M#{customer}")
        & Key("sk").begins_with(prefix)
    )
    return list(found["Items"])


def audit(table_name: str, *customers: str) -> list[Any]:
    pairs = [(PROGRAM.id, customer) for customer in customers]
    return audit_members(boto3.client("dynamodb"), table_name, pairs)


def test_a_members_code_is_made_once_and_unguessable(apps: dict[str, ModuleType]) -> None:
    code = code_of(apps, "ria")
    assert len(code) == 10 and set(code) <= set(ALPHABET)  # 50 random bits
    assert code_of(apps, "ria") == code  # stable
    assert code_of(apps, "sam") != code
    # Concurrent first requests: one code for all (16 trials of 8 requests at once).
    for trial in range(16):
        barrier = threading.Barrier(8)

        def ask(index: int, trial: int = trial, barrier: threading.Barrier = barrier) -> str:
            request = customer_http("GET", "/v1/me/referral", f"race-{trial}")
            barrier.wait()
            status, body, _headers = call(apps["api"], request)
            assert status == 200, body
            return str(body["code"])

        with ThreadPoolExecutor(8) as pool:
            codes = set(pool.map(ask, range(8)))
        assert len(codes) == 1, codes
        assert code_of(apps, f"race-{trial}") in codes
    # The shopper program has no referrals: 404 naming the program.
    status, body, _ = call(apps["api"], http("GET", "/v1/me/referral", sub="ria"))
    assert status == 404 and body["error"]["field"] == "programId"


def test_signups_record_one_referrer_and_store_every_refusal(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    code = code_of(apps, "ria")
    other = code_of(apps, "sam")
    typed = f"{code[:5].lower()}-{code[5:]}".replace("0", "o").replace("1", "l")
    first = send(apps, signup("neo", typed))
    assert (first["outcome"], first["campaigns"]) == ("referral_recorded", {"referral": "recorded"})
    assert send(apps, signup("neo", typed))["outcome"] == "duplicate"  # a redelivery
    second = send(apps, signup("neo", other, NOW + timedelta(minutes=1)))
    assert second["campaigns"] == {"referral": "already_referred"}
    assert member("neo")["refBy"] == "ria"  # the first referrer wins
    selfish = send(apps, signup("ria", code))
    assert (selfish["outcome"], selfish["campaigns"]) == (
        "referral_refused",
        {"referral": "self_referral"},
    )
    unknown = send(apps, signup("uma", "ZZZZZ-ZZZZZ"))
    assert unknown["campaigns"] == {"referral": "unknown_code"}
    nonsense = send(apps, signup("uma", "hello", NOW + timedelta(minutes=2)))
    assert nonsense["campaigns"] == {"referral": "unknown_code"}
    assert send(apps, signup("vic", None))["outcome"] == "no_referral"
    # Each refusal is kept, with why, in the customer's partition.
    reasons = {
        customer: sorted(str(i["reason"]) for i in items(table_name, customer, "REFERRAL#REFUSED#"))
        for customer in ("neo", "ria", "uma")
    }
    assert reasons == {
        "neo": ["already_referred"],
        "ria": ["self_referral"],
        "uma": ["unknown_code", "unknown_code"],
    }
    assert items(table_name, "neo", "REFERRAL#REFUSED#")[0]["referrerId"] == "sam"
    # A code that is not text of a code's kind is bad input: 422 naming the field.
    response = apps["ingestion"].lambda_handler(http_event(signup("bad", "no;code")), FakeContext())
    assert response["statusCode"] == 422, response
    assert json.loads(response["body"])["error"]["field"] == "detail.referralCode"


def test_the_referral_pays_both_once_the_first_order_survives_its_pending_period(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    send(apps, signup("neo", code_of(apps, "ria")))
    order(apps, "neo", "first")
    order(apps, "neo", "second", NOW + timedelta(days=1))
    partial_refund(apps, "neo", "first")  # a partial refund keeps the first order
    # Not before the first order's points are available (8 December in the program's zone),
    # even when the schedule finds the member for something else due sooner.
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": {"S": f"P#{PROGRAM.id}#M#neo"}, "sk": {"S": "MEMBER"}},
        UpdateExpression="SET checkOn = :early",
        ExpressionAttributeValues={":early": {"S": "2026-11-30"}},
    )
    assert settle(apps, NOW + timedelta(days=7))["referralsPaid"] == 0
    assert settle(apps, AVAILABLE - timedelta(minutes=10))["referralsPaid"] == 0
    assert member("neo").get("bal", 0) == 0 and member("ria") == {}
    run = settle(apps, AVAILABLE)
    assert run["referralsPaid"] == 1 and run["referralsRefused"] == {}
    assert member("neo")["bal"] == 30 + 1000  # the first order's points left, and the reward
    assert member("ria")["bal"] == 1000  # available at once, though ria never ordered
    assert settle(apps, AVAILABLE + timedelta(minutes=5))["referralsPaid"] == 0  # once
    referral = items(table_name, "neo", "REFERRAL")[0]
    assert (referral["state"], referral["referrerOutcome"]) == ("paid", "paid")
    rewards = items(table_name, "ria", "REWARD#referral#")
    assert [(r["orderId"], r["points"], r["period"]) for r in rewards] == [("first", 1000, "2026")]
    # The second order maturing changes nothing; the referrer's lot is found by the schedule.
    assert settle(apps, AVAILABLE + timedelta(days=1))["referralsPaid"] == 0
    assert member("ria")["checkOn"] is not None
    assert audit(table_name, "neo", "ria") == []


def test_a_first_order_cancelled_while_pending_pays_nothing(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    send(apps, signup("neo", code_of(apps, "ria")))
    order(apps, "neo", "first")
    order(apps, "neo", "second", NOW + timedelta(days=1))
    cancel(apps, "neo", "first", NOW + timedelta(days=3))
    run = settle(apps, AVAILABLE)
    assert run["referralsPaid"] == 0 and run["referralsRefused"] == {"first_order_cancelled": 1}
    settle(apps, AVAILABLE + timedelta(days=1))  # the second order matures: not the first
    assert member("neo")["bal"] == 40 and member("ria") == {}
    assert member("neo")["firstOrder"] == "first"
    referral = items(table_name, "neo", "REFERRAL")[0]
    assert (referral["state"], referral["reason"]) == ("void", "first_order_cancelled")
    assert audit(table_name, "neo") == []


def test_a_signup_after_the_first_order_matured_pays_on_the_next_run(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    order(apps, "late", "first")
    settle(apps, AVAILABLE)
    send(apps, signup("late", code_of(apps, "ria"), AVAILABLE + timedelta(days=2)))
    run = settle(apps, AVAILABLE + timedelta(days=2, minutes=5))
    assert run["referralsPaid"] == 1
    assert member("late")["bal"] == 40 + 1000 and member("ria")["bal"] == 1000


def test_a_referrer_is_paid_ten_times_a_year_the_new_customer_always(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    code = code_of(apps, "ria")
    boto3.client("dynamodb").put_item(  # ria was paid for 10 referrals in 2026 already
        TableName=table_name,
        Item={
            "pk": {"S": f"P#{PROGRAM.id}#M#ria"},
            "sk": {"S": campaign_count_sk("referral", "2026")},
            "n": {"N": "9"},
        },
    )
    for customer in ("tenth", "eleventh"):
        send(apps, signup(customer, code))
        order(apps, customer, f"{customer}-first")
    settle_run = settle(apps, AVAILABLE)
    assert settle_run["referralsPaid"] == 2
    assert settle_run["referralsRefused"] == {"referrer_yearly_cap": 1}
    assert member("ria")["bal"] == 1000  # the tenth
    assert member("tenth")["bal"] == member("eleventh")["bal"] == 40 + 1000
    outcomes = sorted(
        str(items(table_name, customer, "REFERRAL")[0]["referrerOutcome"])
        for customer in ("tenth", "eleventh")
    )
    assert outcomes == ["paid", "referrer_yearly_cap"]
    # Next year the referrer is paid again.
    send(apps, signup("next-year", code, datetime(2027, 1, 4, tzinfo=UTC)))
    order(apps, "next-year", "ny-first", datetime(2027, 1, 4, 12, tzinfo=UTC))
    assert settle(apps, datetime(2027, 1, 19, 0, 5, tzinfo=UTC))["referralsPaid"] == 1
    assert member("ria")["bal"] == 2000
