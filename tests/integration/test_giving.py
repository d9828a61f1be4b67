"""Giving on DynamoDB Local: ``POST /v1/me/donations`` (points out of the available balance,
once per Idempotency-Key, never more than available, an unknown cause a 422 naming it), an
order's ``roundUp`` (cash, with the order; a bad cause kept as a refusal, the order credited),
the company's match within the cause's monthly budget (concurrent donations against a nearly
spent budget match exactly the budget), ``GET /v1/causes`` from the counters, the ledger's
``donation`` entry and ``DonationMade``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.audit import audit_members
from shared import composition
from shared.domain.customer_events import customer_events
from shared.domain.keys import cause_month_sk, cause_pk, donation_sk, member_pk
from shared.logic.customers import guesses
from shared.logic.ledger import ledger_projection
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, order_completed
from tests.integration.test_customer_api import customer_http
from tests.integration.test_perks_helpers import call, http

PROGRAM = load_program("customer-rewards")
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
MONTH = "2026-12"


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield {
        "ingestion": load_function("order_ingestion"),
        "api": load_function("perk_redemption"),
        "reads": load_function("member_api"),
    }
    composition.reset()


def order(
    apps: dict[str, ModuleType],
    customer: str,
    order_id: str,
    total: str,
    round_up: dict[str, str] | None = None,
    days_ago: int = 30,
) -> dict[str, Any]:
    """An order ``days_ago`` (2 points a dollar; a donation settles the member first, so the
    points of an order past its pending period can be given)."""
    at = NOW - timedelta(days=days_ago)
    event = order_completed(
        order_id=order_id,
        member_id="shopper-1",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=at.isoformat(),
    )
    event["detail"]["total"] = {"amount": total, "currency": "USD"}
    if round_up is not None:
        event["detail"]["roundUp"] = round_up
    result = apps["ingestion"].lambda_handler(event, FakeContext())
    (mine,) = [entry for entry in result["programs"] if entry["programId"] == PROGRAM.id]
    return dict(mine)


def donate(
    apps: dict[str, ModuleType],
    member: str,
    body: Any,
    key: str | None = None,
    at: datetime = NOW,
) -> tuple[int, Any, dict[str, str]]:
    event = customer_http(
        "POST",
        "/v1/me/donations",
        member,
        body=body,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        at=at,
    )
    status, body, headers = call(apps["api"], event)
    return status, (body["error"] if status >= 400 else body), headers


def causes(apps: dict[str, ModuleType]) -> dict[str, Any]:
    status, body, _ = call(
        apps["reads"],
        http("GET", "/v1/causes", iam=True, query={"programId": PROGRAM.id}, at=NOW),
    )
    assert status == 200, body
    return {cause["causeId"]: cause for cause in body["causes"]}


def member(table: str, customer: str) -> dict[str, Any]:
    item = (
        boto3.resource("dynamodb")
        .Table(table)
        .get_item(Key={"pk": member_pk(PROGRAM.id, customer), "sk": "MEMBER"}, ConsistentRead=True)
    )
    return dict(item["Item"])


def test_points_go_to_the_cause_once_per_key_with_the_match(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    order(apps, "cust-1", "o-1", "250.00")  # 500 points, available
    status, body, headers = donate(apps, "cust-1", {"causeId": "food-bank", "points": 300}, "k1")
    assert status == 201, body
    assert body["points"] == 300 and body["causeId"] == "food-bank"
    assert body["given"] == {"amount": "3.00", "currency": "USD"}
    assert body["matched"] == {"amount": "3.00", "currency": "USD"}
    assert body["campaignId"] == "giving" and body["ruleVersion"] == PROGRAM.rule_version
    # The same key and body again: the same donation, nothing more taken.
    status, again, headers = donate(apps, "cust-1", {"causeId": "food-bank", "points": 300}, "k1")
    assert (status, again, headers.get("Idempotent-Replayed")) == (200, body, "true")
    # The same key with another body is refused, naming the header.
    status, error, _ = donate(apps, "cust-1", {"causeId": "food-bank", "points": 200}, "k1")
    assert status == 422 and error["field"] == "Idempotency-Key", error
    item = member(table_name, "cust-1")
    assert int(item["bal"]) == 200 and int(item["used"]) == 300
    # The audit counts given points out of the balances.
    assert audit_members(boto3.client("dynamodb"), table_name, [(PROGRAM.id, "cust-1")]) == []
    totals = causes(apps)["food-bank"]
    assert totals["donatedThisMonth"]["amount"] == "3.00"
    assert totals["matchedThisMonth"]["amount"] == "3.00"
    assert totals["donatedInAll"]["amount"] == "3.00" and totals["donationsInAll"] == 1
    assert causes(apps)["tree-planting"]["donatedInAll"]["amount"] == "0.00"


def test_never_more_than_available_and_bad_input_names_the_field(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    order(apps, "cust-2", "o-2", "100.00")  # 200 points
    order(apps, "cust-2", "o-3", "100.00", days_ago=1)  # 200 more, pending: not givable
    status, body, _ = donate(apps, "cust-2", {"causeId": "food-bank", "points": 300})
    assert status == 409 and body["code"] == "insufficient_points", body
    assert "200 available" in body["message"] and body["field"] == "points"
    status, body, _ = donate(apps, "cust-2", {"causeId": "no-such-cause", "points": 100})
    assert status == 422 and body["field"] == "causeId", body
    status, body, _ = donate(apps, "cust-2", {"causeId": "food-bank", "points": 99})
    assert status == 422 and body["field"] == "points", body
    status, body, _ = donate(apps, "stranger", {"causeId": "food-bank", "points": 100})
    assert status == 409, body
    item = member(table_name, "cust-2")
    assert int(item["bal"]) == 200 and int(item.get("used", 0)) == 0  # nothing half-written
    assert causes(apps)["food-bank"]["donationsInAll"] == 0


def test_round_up_is_given_with_the_order_and_a_bad_cause_is_kept_refused(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    given = order(
        apps, "cust-3", "o-4", "19.40", {"amount": "0.60", "currency": "USD", "causeId": "trees"}
    )
    assert given["outcome"] == "credited" and given["campaigns"]["giving"] == (
        "refused:unknown_cause"
    )
    given = order(
        apps,
        "cust-3",
        "o-5",
        "19.40",
        {"amount": "0.60", "currency": "USD", "causeId": "tree-planting"},
    )
    assert given["outcome"] == "credited" and given["campaigns"]["giving"] == "donated"
    table = boto3.resource("dynamodb").Table(table_name)
    pk = member_pk(PROGRAM.id, "cust-3")
    refused = table.get_item(Key={"pk": pk, "sk": donation_sk("order", "o-4")})["Item"]
    assert refused["state"] == "refused" and refused["reason"] == "unknown_cause"
    earned = member(table_name, "cust-3")
    assert int(earned.get("bal", 0)) + int(earned.get("pend", 0)) == 76  # both earned: 38 + 38
    totals = causes(apps)["tree-planting"]
    assert totals["donatedInAll"]["amount"] == "0.60"
    assert totals["matchedInAll"]["amount"] == "0.60"
    # A redelivered order gives nothing more.
    order(
        apps,
        "cust-3",
        "o-5",
        "19.40",
        {"amount": "0.60", "currency": "USD", "causeId": "tree-planting"},
    )
    assert causes(apps)["tree-planting"]["donationsInAll"] == 1
    # The outbox: DonationMade from the item's insert; no points entry for cash.
    donated = table.get_item(Key={"pk": pk, "sk": donation_sk("order", "o-5")})["Item"]
    (event,) = customer_events(None, donated)
    assert event.detail_type == "DonationMade"
    assert event.detail["amount"] == {"amount": "0.60", "currency": "USD"}
    assert event.detail["causeId"] == "tree-planting" and event.detail["source"] == "roundUp"
    assert ledger_projection(None, donated) == []
    assert customer_events(None, refused) == []


def cancel_or_refund(
    apps: dict[str, ModuleType], customer: str, order_id: str, amount: str | None = None
) -> dict[str, Any]:
    at = NOW - timedelta(days=1)
    detail: dict[str, Any] = {
        "orderId": order_id,
        "memberId": "shopper-1",
        "customerId": customer,
        "occurredAt": at.isoformat(),
    }
    if amount is not None:
        detail["amount"] = {"amount": amount, "currency": "USD"}
    event = {
        "detail-type": "OrderCancelled" if amount is None else "OrderRefunded",
        "source": "orders.service",
        "time": at.isoformat(),
        "detail": detail,
    }
    result = apps["ingestion"].lambda_handler(event, FakeContext())
    (mine,) = [entry for entry in result["programs"] if entry["programId"] == PROGRAM.id]
    return dict(mine)


def test_a_cancelled_orders_round_up_is_given_back_with_its_match_once(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    tree = {"amount": "0.80", "currency": "USD", "causeId": "tree-planting"}
    order(apps, "cust-9", "o-90", "19.20", tree)
    order(apps, "cust-9", "o-91", "29.20", tree)
    before = causes(apps)["tree-planting"]
    assert (before["donatedInAll"]["amount"], before["donationsInAll"]) == ("1.60", 2)
    assert before["matchedThisMonth"]["amount"] == "0.00"  # the orders were last month
    # A partial refund keeps the round-up; the whole cancellation gives it back, match too.
    partial = cancel_or_refund(apps, "cust-9", "o-90", "5.00")
    assert partial["outcome"] == "refunded" and "giving" not in partial.get("campaigns", {})
    assert causes(apps)["tree-planting"]["donationsInAll"] == 2
    table = boto3.resource("dynamodb").Table(table_name)
    key = {"pk": member_pk(PROGRAM.id, "cust-9"), "sk": donation_sk("order", "o-90")}
    donated = table.get_item(Key=key, ConsistentRead=True)["Item"]
    assert cancel_or_refund(apps, "cust-9", "o-90")["campaigns"]["giving"] == "reversed"
    after = causes(apps)["tree-planting"]
    assert (after["donatedInAll"]["amount"], after["matchedInAll"]["amount"]) == ("0.80", "0.80")
    assert after["donationsInAll"] == 1
    month = (NOW - timedelta(days=30)).strftime("%Y-%m")
    counter = table.get_item(
        Key={"pk": cause_pk(PROGRAM.id, "tree-planting"), "sk": cause_month_sk(month)}
    )
    cents = {name: counter["Item"][name] for name in ("donatedCents", "matchedCents")}
    assert cents == {"donatedCents": 80, "matchedCents": 80}
    reversed_item = table.get_item(Key=key, ConsistentRead=True)["Item"]
    assert reversed_item["state"] == "reversed" and reversed_item["reversedAt"]
    # The outbox: DonationReversed from that change, once; nothing from a later one.
    (event,) = customer_events(donated, reversed_item)
    assert event.detail_type == "DonationReversed" and event.detail["orderId"] == "o-90"
    assert (
        event.detail["amount"] == {"amount": "0.80", "currency": "USD"} == event.detail["matched"]
    )
    assert customer_events(reversed_item, {**reversed_item, "reversedAt": "later"}) == []
    # Redelivered: nothing moves again. The member's list shows it reversed.
    assert cancel_or_refund(apps, "cust-9", "o-90")["campaigns"]["giving"] == "already_reversed"
    assert causes(apps)["tree-planting"]["donationsInAll"] == 1
    status, page = my_donations(apps, "cust-9")
    assert status == 200 and {d["orderId"]: d["state"] for d in page["donations"]} == {
        "o-90": "reversed",
        "o-91": "donated",
    }


def my_donations(
    apps: dict[str, ModuleType], customer: str, **query: str
) -> tuple[int, dict[str, Any]]:
    event = customer_http("GET", "/v1/me/donations", customer, query=query, at=NOW)
    status, body, _ = call(apps["reads"], event)
    return status, body


def test_members_see_their_donations_round_ups_and_refusals_page_by_page(
    apps: dict[str, ModuleType],
) -> None:
    order(apps, "cust-7", "o-70", "250.00")  # 500 points
    assert donate(apps, "cust-7", {"causeId": "food-bank", "points": 200}, "give-1")[0] == 201
    order(apps, "cust-7", "o-71", "9.25", {"amount": "0.75", "currency": "USD", "causeId": "x"})
    tree = {"amount": "0.75", "currency": "USD", "causeId": "tree-planting"}
    order(apps, "cust-7", "o-72", "9.25", tree)
    status, first = my_donations(apps, "cust-7", limit="2")
    assert status == 200, first
    status, rest = my_donations(apps, "cust-7", limit="2", nextToken=first["nextToken"])
    assert status == 200 and rest["nextToken"] is None, rest
    listed = {entry["orderId"] or entry["donationId"]: entry for entry in first["donations"]}
    listed |= {entry["orderId"] or entry["donationId"]: entry for entry in rest["donations"]}
    assert len(listed) == 3, listed
    points = next(entry for entry in listed.values() if entry["source"] == "points")
    assert (points["causeId"], points["points"], points["state"]) == ("food-bank", 200, "donated")
    assert points["given"]["amount"] == points["matched"]["amount"] != "0.00"
    assert (
        listed["o-72"]["given"]
        == {"amount": "0.75", "currency": "USD"}
        == listed["o-72"]["matched"]
    )
    assert (listed["o-72"]["source"], listed["o-72"]["points"]) == ("roundUp", 0)
    refused = listed["o-71"]
    assert (refused["state"], refused["reason"], refused["given"]["amount"]) == (
        "refused",
        "unknown_cause",
        "0.00",
    )
    assert all(entry["ruleVersion"] and entry["occurredAt"] for entry in listed.values())
    # Only the member's own; a token this list did not give is refused, naming it.
    assert my_donations(apps, "cust-8") == (200, {"donations": [], "nextToken": None})
    status, error = my_donations(apps, "cust-7", nextToken="bm9wZQ")
    assert status == 422 and error["error"]["field"] == "nextToken", error


def test_a_points_donation_is_a_ledger_entry_and_an_event(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    order(apps, "cust-4", "o-6", "100.00")
    status, body, _ = donate(apps, "cust-4", {"causeId": "school-meals", "points": 100}, "kk")
    assert status == 201, body
    item = (
        boto3.resource("dynamodb")
        .Table(table_name)
        .get_item(Key={"pk": member_pk(PROGRAM.id, "cust-4"), "sk": donation_sk("api", "kk")})[
            "Item"
        ]
    )
    ((_, _, entry),) = ledger_projection(None, item)
    assert (entry.kind, entry.points) == ("donation", -100)
    assert entry.reason == "campaign:giving:cause:school-meals"
    assert entry.rule_version == PROGRAM.rule_version
    (event,) = customer_events(None, item)
    assert event.detail["points"] == 100 and event.detail["matched"]["amount"] == "1.00"
    assert event.detail["memberId"] == "cust-4" and event.detail["programId"] == PROGRAM.id


def test_concurrent_donations_never_match_past_the_budget(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    """16 donations of $2 at once against a month with $5 of match left: exactly $5 matched,
    every donation given, each trial (GIVING_RACE_TRIALS for more than 3)."""
    trials = int(os.environ.get("GIVING_RACE_TRIALS", "3"))
    client = boto3.client("dynamodb")
    budget = 100_000  # $1,000.00 in cents
    donors = [f"donor-{n}" for n in range(16)]
    for donor in donors:
        order(apps, donor, f"o-{donor}", "10000.00")  # 20,000 points: 100 trials
    for trial in range(trials):
        cause = ("food-bank", "tree-planting", "school-meals")[trial % 3]
        at = NOW + timedelta(minutes=trial)  # a minute each: the member's 20 requests a minute
        key = {"pk": {"S": cause_pk(PROGRAM.id, cause)}, "sk": {"S": cause_month_sk(MONTH)}}
        client.put_item(
            TableName=table_name,
            Item={**key, "matchedCents": {"N": str(budget - 500)}, "causeId": {"S": cause}},
        )
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(
                pool.map(
                    lambda donor, cause=cause, at=at: donate(
                        apps, donor, {"causeId": cause, "points": 200}, at=at
                    ),
                    donors,
                )
            )
        assert all(status == 201 for status, _, _ in answers), answers
        matched = sum(Decimal(body["matched"]["amount"]) for _, body, _ in answers)
        assert matched == Decimal(5), (trial, [body["matched"] for _, body, _ in answers])
        stored = client.get_item(TableName=table_name, Key=key, ConsistentRead=True)["Item"]
        assert int(stored["matchedCents"]["N"]) == budget
        assert int(stored["donatedCents"]["N"]) == 16 * 200
        client.delete_item(TableName=table_name, Key=key)
