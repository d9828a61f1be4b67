"""perk_redemption on DynamoDB Local: redemptions (idempotent, never overdrawn under concurrent
requests, cancellable before the date), cashback on fuel purchases, and the events of both."""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from shared import composition
from shared.dal.perks import PerkRepository
from shared.domain.keys import IDEMPOTENCY_SK_PREFIX, MEMBER_SK, QUOTA_SK_PREFIX, member_pk
from shared.domain.perks import FuelPurchaseReported
from shared.domain.program import Program
from shared.domain.tiers import TierDecision, TierReason
from shared.domain.window import pack_days
from shared.logic.perks import credit_fuel_purchase
from shared.programs import load_program, parse_program
from tests.helpers import FakeContext, sqs_event
from tests.integration.streams import RecordingPublisher, StreamReader
from tests.integration.test_perks_helpers import (
    NOW,
    PROGRAM,
    Environments,
    apps,
    call,
    environments,
    http,
    publish_stream,
    seed_member,
)

__all__ = ["apps", "environments"]  # fixtures, imported for pytest

TRIALS = int(os.environ.get("PERK_RACE_TRIALS", "20"))
"""Trials of the 16-request race: 20 in ``make test`` (a quota check that lets a second request
through fails the first trial already); ``make race`` runs the issue's 200."""
CARE_DAY = (NOW + timedelta(days=20)).date()  # 2026-12-13, in 2026-Q4
LAST_DAY_OF_QUARTER = date(2026, 12, 31)


def redeem_event(
    sub: str, key: str | None, body: Any, at: Any = NOW, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    extra = dict(headers or {})
    if key is not None:
        extra["idempotency-key"] = key
    return http("POST", "/v1/me/redemptions", sub=sub, body=body, headers=extra, at=at)


def care_day(day: date = CARE_DAY, unit: str = "day", hours: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "perkId": "care_days",
        "careType": "child",
        "date": day.isoformat(),
        "unit": unit,
    }
    if hours is not None:
        body["hours"] = hours
    return body


def items(client: Any, table: str, member_id: str, prefix: str) -> list[dict[str, Any]]:
    """The member's items under ``prefix`` (all of them for "")."""
    condition = "pk = :pk AND begins_with(sk, :prefix)" if prefix else "pk = :pk"
    values = {":pk": {"S": member_pk(PROGRAM, member_id)}}
    if prefix:
        values[":prefix"] = {"S": prefix}
    response = client.query(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        ConsistentRead=True,
    )
    found: list[dict[str, Any]] = response["Items"]
    return found


def quota_used(client: Any, table: str, member_id: str) -> int:
    return sum(int(item["used"]["N"]) for item in items(client, table, member_id, QUOTA_SK_PREFIX))


# -- redeeming ------------------------------------------------------------------------------------


def test_a_care_day_is_confirmed_and_the_same_key_answers_the_first_result(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    status, body, headers = call(app, redeem_event("ann", "k-1", care_day()))
    assert status == 201, body
    assert body["status"] == "confirmed" and body["perkId"] == "care_days"
    assert body["price"] == {"amount": "10.00", "currency": "USD"}
    assert body["date"] == CARE_DAY.isoformat() and body["period"] == "2026-Q4"
    assert body["ruleVersion"] == "cart-star@1"  # the rules that allowed and priced it
    assert headers["Location"] == f"/v1/me/redemptions/{body['redemptionId']}"

    # A retry, even a day later and once the quota is gone, answers the first result.
    call(app, redeem_event("ann", "k-2", care_day(CARE_DAY + timedelta(days=1))))
    again_status, again, again_headers = call(
        app, redeem_event("ann", "k-1", care_day(), at=NOW + timedelta(days=1))
    )
    assert (again_status, again) == (201, body)
    assert again_headers["Idempotent-Replayed"] == "true"
    assert quota_used(ddb_client, table_name, "ann") == 2

    # The same key with another body is refused, naming the header.
    status, error, _ = call(app, redeem_event("ann", "k-1", care_day(unit="hour", hours=3)))
    assert status == 422
    assert error["error"]["code"] == "idempotency_key_reused"
    assert error["error"]["field"] == "Idempotency-Key"


def test_an_hour_booking_uses_a_day_of_quota_and_costs_by_the_hour(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    status, body, _ = call(app, redeem_event("ann", "h-1", care_day(unit="hour", hours=3)))
    assert status == 201 and body["price"]["amount"] == "3.00" and body["hours"] == 3
    # One booking per date: the same date again is a conflict naming the date.
    status, error, _ = call(app, redeem_event("ann", "h-2", care_day(unit="hour", hours=2)))
    assert status == 409 and error["error"]["code"] == "already_booked"
    assert error["error"]["field"] == "date"
    assert quota_used(ddb_client, table_name, "ann") == 1


def test_a_refusal_is_the_keys_result_too(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    first = [
        call(app, redeem_event("ann", f"q-{n}", care_day(CARE_DAY + timedelta(days=n))))
        for n in range(3)
    ]
    assert [status for status, _, _ in first] == [201, 201, 409]
    assert first[2][1]["error"]["code"] == "quota_exhausted"
    # Give a day back: the refused key still answers its refusal; a new key gets the day.
    cancelled = call(
        app, http("DELETE", f"/v1/me/redemptions/{first[0][1]['redemptionId']}", sub="ann")
    )
    assert cancelled[0] == 200
    replay = call(app, redeem_event("ann", "q-2", care_day(CARE_DAY + timedelta(days=2))))
    assert replay[0] == 409 and replay[1] == first[2][1]
    fresh = call(app, redeem_event("ann", "q-3", care_day(CARE_DAY + timedelta(days=2))))
    assert fresh[0] == 201


def test_ten_concurrent_requests_with_one_key_make_one_redemption(
    apps: dict[str, ModuleType],
    table_name: str,
    ddb_client: Any,
    environments: Environments,
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    events = [redeem_event("ann", "same-key", care_day()) for _ in range(10)]
    answers = environments.at_once(table_name, events)
    assert {status for status, _ in answers} == {201}
    assert len({body["redemptionId"] for _, body in answers}) == 1
    redemptions = items(ddb_client, table_name, "ann", "REDEMPTION#")
    assert len(redemptions) == 1 and quota_used(ddb_client, table_name, "ann") == 1


def test_sixteen_concurrent_requests_for_the_last_care_day_never_overdraw(
    apps: dict[str, ModuleType],
    table_name: str,
    ddb_client: Any,
    environments: Environments,
) -> None:
    """Each trial: a Diamond member with one care day left in the quarter, and 16 requests at
    once, from 16 execution environments (16 keys, 16 dates including the quarter's last
    day). Exactly one gets it; the others are refused with 409; the quota never goes past 2."""
    dates = [LAST_DAY_OF_QUARTER - timedelta(days=n) for n in range(16)]
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        member = f"racer-{trial}"
        seed_member(ddb_client, table_name, member, tier="diamond")
        first = call(
            apps["perk_redemption"], redeem_event(member, "first", care_day(date(2026, 12, 1)))
        )
        assert first[0] == 201
        events = [
            redeem_event(member, f"race-{index}", care_day(dates[index])) for index in range(16)
        ]
        answers = environments.at_once(table_name, events)
        statuses = [status for status, _ in answers]
        assert statuses.count(201) == 1, statuses
        assert set(statuses) == {201, 409}, answers
        codes = {body["error"]["code"] for status, body in answers if status == 409}
        assert codes == {"quota_exhausted"}
        stored = items(ddb_client, table_name, member, "")
        quota = [item for item in stored if item["sk"]["S"].startswith(QUOTA_SK_PREFIX)]
        assert [int(item["used"]["N"]) for item in quota] == [2], "never overdrawn"
        redemptions = [item for item in stored if item["sk"]["S"].startswith("REDEMPTION#")]
        assert len(redemptions) == 2
        winner = next(body for status, body in answers if status == 201)
        assert winner["redemptionId"] in {item["redemptionId"]["S"] for item in redemptions}
        outcomes[f"winner {statuses.index(201):02d}"] += 1
    assert sum(outcomes.values()) == TRIALS


@pytest.mark.parametrize("field", ["tier", "points", "memberId", "status", "price", "nickname"])
def test_bodies_with_unknown_or_read_only_fields_are_refused_naming_the_field(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, field: str
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    body = {**care_day(), field: "diamond"}
    status, error, _ = call(apps["perk_redemption"], redeem_event("ann", "k", body))
    assert status == 422
    assert error["error"]["field"] == field and field in error["error"]["message"]
    assert not items(ddb_client, table_name, "ann", IDEMPOTENCY_SK_PREFIX), "nothing stored"
    # The key stays free for a valid request.
    assert call(apps["perk_redemption"], redeem_event("ann", "k", care_day()))[0] == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"perkId": "care_days", "careType": "child", "unit": "day"}, "date"),
        ({"perkId": "care_days", "careType": "child", "date": "2026-11-22", "unit": "day"}, "date"),
        ({"perkId": "care_days", "careType": "child", "date": "2027-06-01", "unit": "day"}, "date"),
        (
            {"perkId": "care_days", "careType": "child", "date": "2026-12-01", "unit": "week"},
            "unit",
        ),
        (
            {"perkId": "care_days", "careType": "child", "date": "2026-12-01", "unit": "hour"},
            "hours",
        ),
        (
            {
                "perkId": "care_days",
                "careType": "child",
                "date": "2026-12-01",
                "unit": "hour",
                "hours": 11,
            },
            "hours",
        ),
        (
            {
                "perkId": "care_days",
                "careType": "child",
                "date": "2026-12-01",
                "unit": "day",
                "hours": 2,
            },
            "hours",
        ),
        (
            {
                "perkId": "care_days",
                "careType": "child",
                "date": "2026-12-01",
                "unit": "hour",
                "hours": "3",
            },
            "hours",
        ),
        ({"perkId": "care_days", "careType": "child", "date": "01/12/2026", "unit": "day"}, "date"),
        ({"perkId": "car_maintenance", "date": "2026-12-01"}, "date"),
        ({"perkId": "early_batch_access"}, "perkId"),
        ({"perkId": "gas_cashback"}, "perkId"),
        ({"perkId": "spa_days"}, "perkId"),
        ({}, "perkId"),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, body: Any, field: str
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    status, error, _ = call(apps["perk_redemption"], redeem_event("ann", "k", body))
    assert (status, error["error"]["field"]) == (422, field), error


def test_missing_key_and_malformed_bodies(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    app = apps["perk_redemption"]
    status, error, _ = call(app, redeem_event("ann", None, care_day()))
    assert (status, error["error"]["field"]) == (422, "Idempotency-Key")
    status, error, _ = call(app, redeem_event("ann", "k", "{not json"))
    assert (status, error["error"]["code"]) == (400, "malformed_request")
    status, error, _ = call(app, redeem_event("ann", "k", [care_day()]))
    assert (status, error["error"]["code"]) == (400, "malformed_request")
    status, error, _ = call(app, redeem_event("ann", "k" * 256, care_day()))
    assert (status, error["error"]["field"]) == (422, "Idempotency-Key")
    no_subject = redeem_event("ann", "k", care_day())
    no_subject["requestContext"]["authorizer"] = {}
    assert call(app, no_subject)[0] == 401


def test_closed_perks_are_refused(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "gail", tier="gold")
    seed_member(ddb_client, table_name, "ivy", tier="diamond", eligible=False)
    app = apps["perk_redemption"]
    status, error, _ = call(app, redeem_event("gail", "k", care_day()))
    assert (status, error["error"]["code"]) == (403, "perk_closed")
    status, error, _ = call(app, redeem_event("ivy", "k", {"perkId": "car_maintenance"}))
    assert (status, error["error"]["code"]) == (403, "perk_closed")
    assert "rating" in error["error"]["message"]


def test_a_stored_tier_that_lags_the_points_does_not_close_the_perk(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    # 2,010 points today (day bucket of NOW), the stream has not written diamond yet.
    seed_member(ddb_client, table_name, "ann", tier="platinum", extra=pack_days({NOW.date(): 2010}))
    status, body, _ = call(apps["perk_redemption"], redeem_event("ann", "k", care_day()))
    assert status == 201 and body["status"] == "confirmed"
    # Not when the points are gone (the same read decides, the guard pins the points).
    seed_member(ddb_client, table_name, "bob", tier="platinum", extra=pack_days({NOW.date(): 1500}))
    status, error, _ = call(apps["perk_redemption"], redeem_event("bob", "k", care_day()))
    assert (status, error["error"]["code"]) == (403, "perk_closed")


def test_a_code_once_a_month_at_the_tiers_discount(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    app = apps["perk_redemption"]
    status, body, _ = call(app, redeem_event("new", "c-1", {"perkId": "car_maintenance"}))
    assert status == 201, body
    assert body["discountRate"] == "0.05" and body["tier"] is None
    assert len(body["code"]) == 14 and body["price"]["amount"] == "0.00"
    assert body["validUntil"] == "2026-12-23" and body["period"] == "2026-11"
    status, error, _ = call(app, redeem_event("new", "c-2", {"perkId": "car_maintenance"}))
    assert (status, error["error"]["code"]) == (409, "quota_exhausted")
    assert "2026-12-01" in error["error"]["message"]
    next_month = NOW + timedelta(days=10)
    status, _, _ = call(app, redeem_event("new", "c-3", {"perkId": "car_maintenance"}, next_month))
    assert status == 201
    # An issued code cannot be cancelled (it may have been used).
    status, error, _ = call(
        app, http("DELETE", f"/v1/me/redemptions/{body['redemptionId']}", sub="new")
    )
    assert (status, error["error"]["code"]) == (409, "not_cancellable")


# -- cancelling -----------------------------------------------------------------------------------


def test_cancel_before_the_date_gives_the_quota_back_and_is_idempotent(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    _, booked, _ = call(app, redeem_event("ann", "k", care_day()))
    path = f"/v1/me/redemptions/{booked['redemptionId']}"
    status, cancelled, _ = call(app, http("DELETE", path, sub="ann"))
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["cancelledAt"]
    assert quota_used(ddb_client, table_name, "ann") == 0
    assert call(app, http("DELETE", path, sub="ann"))[1] == cancelled
    assert quota_used(ddb_client, table_name, "ann") == 0
    # The date can be booked again.
    assert call(app, redeem_event("ann", "k-2", care_day()))[0] == 201


def test_cancellations_close_when_the_date_begins(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    _, booked, _ = call(app, redeem_event("ann", "k", care_day()))
    path = f"/v1/me/redemptions/{booked['redemptionId']}"
    on_the_day = http("DELETE", path, sub="ann", at=NOW + timedelta(days=20))
    status, error, _ = call(app, on_the_day)
    assert (status, error["error"]["code"]) == (409, "not_cancellable")
    eve = http("DELETE", path, sub="ann", at=NOW + timedelta(days=19, hours=11))
    assert call(app, eve)[0] == 200


def test_a_tier_drop_does_not_void_a_confirmed_redemption(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    _, booked, _ = call(app, redeem_event("ann", "k", care_day()))
    seed_member(ddb_client, table_name, "ann", tier="gold")  # the daily evaluation downgraded
    status, listing, _ = call(apps["member_api"], http("GET", "/v1/me/redemptions", sub="ann"))
    assert status == 200 and listing["redemptions"][0]["status"] == "confirmed"
    assert listing["redemptions"][0]["redemptionId"] == booked["redemptionId"]
    # No new booking at gold; the confirmed one can still be cancelled, quota back.
    assert call(app, redeem_event("ann", "k-2", care_day(CARE_DAY + timedelta(days=1))))[0] == 403
    path = f"/v1/me/redemptions/{booked['redemptionId']}"
    assert call(app, http("DELETE", path, sub="ann"))[0] == 200
    assert quota_used(ddb_client, table_name, "ann") == 0


def test_a_member_cannot_cancel_another_members_redemption(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    seed_member(ddb_client, table_name, "bob", tier="diamond")
    app = apps["perk_redemption"]
    _, booked, _ = call(app, redeem_event("ann", "k", care_day()))
    path = f"/v1/me/redemptions/{booked['redemptionId']}"
    status, error, _ = call(app, http("DELETE", path, sub="bob"))
    assert (status, error["error"]["code"]) == (404, "not_found")
    assert quota_used(ddb_client, table_name, "ann") == 1
    # Bob's own key "k" is his own: it does not replay Ann's redemption.
    status, bobs, _ = call(app, redeem_event("bob", "k", care_day()))
    assert status == 201 and bobs["redemptionId"] != booked["redemptionId"]
    status, error, _ = call(app, http("DELETE", "/v1/me/redemptions/not-an-id", sub="ann"))
    assert (status, error["error"]["field"]) == (422, "redemptionId")


# -- cashback -------------------------------------------------------------------------------------


def fuel(purchase_id: str, member_id: str, amount: str, currency: str = "USD") -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-{purchase_id}",
        "detail-type": "FuelPurchaseReported",
        "source": "fuel.partner",
        "time": NOW.isoformat(),
        "detail": {
            "purchaseId": purchase_id,
            "memberId": member_id,
            "amount": {"amount": amount, "currency": currency},
            "occurredAt": (NOW - timedelta(hours=2)).isoformat(),
        },
    }


def wallet(apps: dict[str, ModuleType], member_id: str) -> str:
    _, me, _ = call(apps["member_api"], http("GET", "/v1/me", sub=member_id))
    return str(me["wallet"]["balance"])


def test_fuel_purchases_credit_the_wallet_at_the_tier_rate_once(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    result = app.lambda_handler(fuel("p-1", "ann", "45.50"), FakeContext())
    assert result["outcome"] == "credited" and result["cashback"] == "2.28"  # 5% half up
    assert result["rate"] == "0.05"
    assert app.lambda_handler(fuel("p-1", "ann", "45.50"), FakeContext())["outcome"] == (
        "duplicate"
    )
    # The same purchase through SQS and the IAM route changes nothing either.
    assert app.lambda_handler(sqs_event(fuel("p-1", "ann", "45.50")), FakeContext()) == {
        "batchItemFailures": []
    }
    route = http("POST", "/v1/events/fuel-purchases", iam=True, body=fuel("p-1", "ann", "45.50"))
    status, body, _ = call(app, route)
    assert status == 200 and body["result"]["outcome"] == "duplicate"
    app.lambda_handler(fuel("p-2", "ann", "10.00"), FakeContext())
    assert wallet(apps, "ann") == "2.78"
    member = composition.ledger_repository().get_member(PROGRAM, "ann")
    assert member is not None and int(member["v"]) == 1, "the wallet does not bump v"

    seed_member(ddb_client, table_name, "nobody")
    assert app.lambda_handler(fuel("p-3", "nobody", "100"), FakeContext())["cashback"] == "2.00"
    seed_member(ddb_client, table_name, "ivy", tier="gold", eligible=False)
    declined = app.lambda_handler(fuel("p-4", "ivy", "100"), FakeContext())
    assert declined["outcome"] == "declined" and declined["reason"] == "not_eligible"
    assert wallet(apps, "ivy") == "0.00"


def test_a_purchase_made_while_gold_reported_after_the_upgrade_earns_golds_rate(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="gold")
    # The stream evaluation upgrades Ann to Platinum an hour before NOW; the write records the
    # tier it replaced (tierFrom) in the same update.
    upgrade = TierDecision("gold", "platinum", TierReason.POINTS_GAINED, 1000, None)
    at = (NOW - timedelta(hours=1)).isoformat()
    assert composition.tier_repository().apply_tier(PROGRAM, "ann", upgrade, 1, at)
    member = composition.ledger_repository().get_member(PROGRAM, "ann")
    assert member is not None and member["tierFrom"] == "gold"
    app = apps["perk_redemption"]
    # Made two hours ago (while Gold), reported now: 3%, not Platinum's 4%.
    made_while_gold = app.lambda_handler(fuel("p-gold", "ann", "100.00"), FakeContext())
    assert made_while_gold["rate"] == "0.03" and made_while_gold["cashback"] == "3.00"
    record = PerkRepository(table_name, boto3.client("dynamodb")).get_purchase(
        PROGRAM, "ann", "p-gold"
    )
    assert record is not None and record["tier"] == "gold"
    after = fuel("p-plat", "ann", "100.00")
    after["detail"]["occurredAt"] = (NOW - timedelta(minutes=30)).isoformat()
    made_while_platinum = app.lambda_handler(after, FakeContext())
    assert made_while_platinum["rate"] == "0.04" and made_while_platinum["cashback"] == "4.00"
    # The refund takes back what the purchase earned, at Gold's rate.
    refund = app.lambda_handler(fuel_refund("p-gold", "ann"), FakeContext())
    assert refund["outcome"] == "refunded" and refund["cashback"] == "-3.00"
    assert wallet(apps, "ann") == "4.00"


def fuel_refund(purchase_id: str, member_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-refund-{purchase_id}",
        "detail-type": "FuelPurchaseRefunded",
        "source": "fuel.partner",
        "time": NOW.isoformat(),
        "detail": {
            "purchaseId": purchase_id,
            "memberId": member_id,
            "occurredAt": (NOW - timedelta(hours=1)).isoformat(),
        },
    }


def test_a_fuel_refund_takes_the_cashback_back_at_the_purchase_rate_once(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    app.lambda_handler(fuel("p-1", "ann", "45.50"), FakeContext())  # 2.28 at 5%
    app.lambda_handler(fuel("p-2", "ann", "10.00"), FakeContext())  # 0.50
    # The member falls to gold (3%): the refund still takes back what the purchase earned.
    ddb_client.update_item(
        TableName=table_name,
        Key={"pk": {"S": member_pk(PROGRAM, "ann")}, "sk": {"S": "MEMBER"}},
        UpdateExpression="SET tier = :gold",
        ExpressionAttributeValues={":gold": {"S": "gold"}},
    )
    refund = app.lambda_handler(fuel_refund("p-1", "ann"), FakeContext())
    assert refund["outcome"] == "refunded" and refund["cashback"] == "-2.28"
    assert refund["eventType"] == "FuelPurchaseRefunded"
    for _ in range(2):  # redelivered: nothing more
        assert app.lambda_handler(fuel_refund("p-1", "ann"), FakeContext())["outcome"] == (
            "duplicate"
        )
    assert wallet(apps, "ann") == "0.50"
    # A refund before its purchase: the purchase then earns nothing.
    early = app.lambda_handler(fuel_refund("p-9", "ann"), FakeContext())
    assert early["outcome"] == "refunded_before_report"
    late = app.lambda_handler(fuel("p-9", "ann", "100.00"), FakeContext())
    assert late["outcome"] == "duplicate"
    assert wallet(apps, "ann") == "0.50"


def test_a_fuel_refund_without_its_purchase_id_is_refused(apps: dict[str, ModuleType]) -> None:
    bad = fuel_refund("p-1", "ann")
    del bad["detail"]["purchaseId"]
    route = http("POST", "/v1/events/fuel-purchases", iam=True, body=bad)
    status, error, _ = call(apps["perk_redemption"], route)
    assert status == 422 and error["error"]["field"] == "detail.purchaseId"


def test_a_fuel_purchase_in_another_currency_is_rejected(apps: dict[str, ModuleType]) -> None:
    route = http(
        "POST", "/v1/events/fuel-purchases", iam=True, body=fuel("p-1", "ann", "10", "EUR")
    )
    status, error, _ = call(apps["perk_redemption"], route)
    assert status == 422 and error["error"]["field"] == "detail.amount.currency"


def test_a_fuel_purchase_above_the_limit_is_refused_on_every_channel_never_clamped(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    app = apps["perk_redemption"]
    cap = load_program(PROGRAM).limits.max_fuel_purchase
    over = fuel("p-big", "ann", f"{cap + Decimal('0.01')}")
    status, error, _ = call(app, http("POST", "/v1/events/fuel-purchases", iam=True, body=over))
    assert status == 422 and error["error"]["field"] == "detail.amount.amount"
    assert "maxFuelPurchase" in error["error"]["message"]
    batch = sqs_event(over, fuel("p-fine", "ann", "10.00"))
    assert app.lambda_handler(batch, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }
    with pytest.raises(Exception, match=r"detail\.amount\.amount"):
        app.lambda_handler(over, FakeContext())
    repo = composition.perk_repository()
    assert repo.get_purchase(PROGRAM, "ann", "p-big") is None
    assert wallet(apps, "ann") == "0.50"  # p-fine's 5% only
    # At the limit: credited (5% of 500.00 is the default per-purchase cap, 25.00).
    at_cap = app.lambda_handler(fuel("p-cap", "ann", f"{cap}"), FakeContext())
    assert at_cap["outcome"] == "credited" and at_cap["cashback"] == "25.00"


def capped_program() -> Program:
    """cart-star in New York's zone, with small cashback caps."""
    document = load_program(PROGRAM).model_dump(mode="json", by_alias=True)
    document["timeZone"] = "America/New_York"
    document["limits"] = {"maxCashbackPerPurchase": "3.00", "maxCashbackPerMonth": "5.00"}
    return parse_program(json.dumps(document), source="test.json")


def purchase(purchase_id: str, amount: str, at: datetime) -> FuelPurchaseReported:
    return FuelPurchaseReported.model_validate(
        {
            "purchaseId": purchase_id,
            "memberId": "ann",
            "amount": {"amount": amount, "currency": "USD"},
            "occurredAt": at.isoformat(),
        }
    )


def test_cashback_is_capped_per_purchase_and_per_month_in_the_programs_zone(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    program = capped_program()
    repo = composition.perk_repository()
    seed_member(ddb_client, table_name, "ann", tier="diamond")  # 5%
    new_york = ZoneInfo("America/New_York")
    last_of_november = datetime(2026, 11, 30, 23, 30, tzinfo=new_york)  # 12-01 04:30 UTC
    first_of_december = datetime(2026, 12, 1, 0, 10, tzinfo=new_york)
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)

    def credit(purchase_id: str, amount: str, at: datetime) -> str:
        result = credit_fuel_purchase(purchase(purchase_id, amount, at), now, program, repo)
        assert result.outcome.value == "credited", result
        return f"{result.cashback:.2f}"

    # Per purchase: 5% of 100.00 is 5.00, credited 3.00; the record keeps both.
    assert credit("p-1", "100.00", datetime(2026, 11, 10, 12, tzinfo=new_york)) == "3.00"
    record = repo.get_purchase(PROGRAM, "ann", "p-1")
    assert record is not None
    assert record["earned"]["amount"] == "5.00" and record["cashback"]["amount"] == "3.00"
    assert record["cappedBy"] == "max_cashback_per_purchase" and record["month"] == "2026-11"
    # Per month (November in New York, though it is already December in UTC): 2.00 are left
    # of the 5.00, then nothing.
    assert credit("p-2", "60.00", last_of_november) == "2.00"
    assert credit("p-3", "20.00", last_of_november + timedelta(minutes=15)) == "0.00"
    record = repo.get_purchase(PROGRAM, "ann", "p-3")
    assert record is not None and record["earned"]["amount"] == "1.00"
    assert record["cappedBy"] == "max_cashback_per_month" and record["month"] == "2026-11"
    # December starts afresh at local midnight.
    assert credit("p-4", "40.00", first_of_december) == "2.00"
    assert repo.get_purchase(PROGRAM, "ann", "p-4")["month"] == "2026-12"  # type: ignore[index]
    # Redelivered: nothing more.
    again = credit_fuel_purchase(purchase("p-2", "60.00", last_of_november), now, program, repo)
    assert again.outcome.value == "duplicate"
    assert wallet(apps, "ann") == "7.00"  # 5.00 for November, 2.00 for December
    months = {
        item["period"]: Decimal(str(item["credited"]))
        for item in repo.member_and_quotas(
            PROGRAM, "ann", MEMBER_SK, f"{QUOTA_SK_PREFIX}~"
        ).values()
        if item.get("perkId") == "gas_cashback"
    }
    assert months == {"2026-11": Decimal("5.00"), "2026-12": Decimal("2.00")}


def test_concurrent_purchases_never_credit_a_month_beyond_its_limit(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    program = capped_program()
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)

    def credit(index: int) -> Decimal:
        repo = PerkRepository(table_name, boto3.client("dynamodb"))
        event = purchase(f"p-{index}", "40.00", at)  # 2.00 each
        return credit_fuel_purchase(event, now, program, repo).cashback

    with ThreadPoolExecutor(max_workers=6) as pool:
        credited = list(pool.map(credit, range(6)))
    assert sum(credited) == Decimal("5.00") and sorted(credited)[-1] == Decimal("2.00")
    assert wallet(apps, "ann") == "5.00"


# -- outbound events ------------------------------------------------------------------------------


def test_redemptions_cancellations_and_cashback_are_published_once_committed(
    apps: dict[str, ModuleType],
    table_name: str,
    ddb_client: Any,
    published: RecordingPublisher,
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    stream = StreamReader(table_name)
    app = apps["perk_redemption"]
    _, booked, _ = call(app, redeem_event("ann", "k", care_day()))
    call(app, redeem_event("ann", "k", care_day()))  # a replay commits nothing
    call(app, http("DELETE", f"/v1/me/redemptions/{booked['redemptionId']}", sub="ann"))
    app.lambda_handler(fuel("p-1", "ann", "20.00"), FakeContext())
    app.lambda_handler(fuel("p-1", "ann", "20.00"), FakeContext())
    records = stream.read()
    publish_stream(apps, records)

    (redeemed,) = published.of("PerkRedeemed")
    assert redeemed["memberId"] == "ann" and redeemed["redemptionId"] == booked["redemptionId"]
    assert redeemed["perkId"] == "care_days" and redeemed["reason"] == "member_request"
    assert redeemed["occurredAt"] == booked["createdAt"] and redeemed["date"] == booked["date"]
    assert redeemed["ruleVersion"] == "cart-star@1"
    (cancelled,) = published.of("RedemptionCancelled")
    assert cancelled["quotaReturned"] is True and cancelled["occurredAt"]
    (credited,) = published.of("CashbackCredited")
    assert credited["cashback"] == {"amount": "1.00", "currency": "USD"}
    assert credited["reason"] == "fuel_purchase" and credited["tier"] == "diamond"
    assert credited["ruleVersion"] == "cart-star@1"
    # A redelivered batch publishes the same event ids, for consumers to drop.
    first_ids = {event.detail["eventId"] for event in published.events}
    publish_stream(apps, records)
    assert {event.detail["eventId"] for event in published.events} == first_ids
    assert len(first_ids) == 3
