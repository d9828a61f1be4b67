"""The shopper's own time zone on DynamoDB Local: ``ProfileUpdated`` naming the shopper program
keeps it on the member item (a bad zone is a 422 naming ``detail.timeZone``), and an order's
day, the window, the quarter (fixed mode) and a care day's "today" are then the member's, across
a clock change, the turn of the year and a quarter's end. A member with a zone of their own
costs one refused transaction per warm environment, not one per order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from shared import composition
from shared.domain.keys import MEMBER_SK, member_pk, order_sk
from shared.logic import zones
from tests.helpers import FakeContext, http_event, load_function, order_completed
from tests.integration.test_perks_helpers import call, http, seed_member

SHOPPERS = "cart-star"
LA = "America/Los_Angeles"


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    zones._ZONE_HINTS.clear()
    yield {
        name: load_function(name) for name in ("order_ingestion", "member_api", "perk_redemption")
    }
    composition.reset()
    zones._ZONE_HINTS.clear()


def profile(member: str, zone: str | None, at: str = "2026-01-01T00:00:00+00:00") -> dict[str, Any]:
    detail: dict[str, Any] = {"programId": SHOPPERS, "memberId": member, "occurredAt": at}
    if zone is not None:
        detail["timeZone"] = zone
    return {
        "detail-type": "ProfileUpdated",
        "source": "profiles.service",
        "time": at,
        "detail": detail,
    }


def send(apps: dict[str, ModuleType], event: dict[str, Any]) -> dict[str, Any]:
    return dict(apps["order_ingestion"].lambda_handler(event, FakeContext()))


def order(
    apps: dict[str, ModuleType], member: str, order_id: str, completed_at: str, now: str
) -> None:
    event = order_completed(
        order_id=order_id, member_id=member, completed_at=completed_at, time=now
    )
    assert send(apps, event)["outcome"] == "credited"


def get(table: str, member: str, sk: str) -> dict[str, Any]:
    found = boto3.client("dynamodb").get_item(
        TableName=table,
        Key={"pk": {"S": member_pk(SHOPPERS, member)}, "sk": {"S": sk}},
        ConsistentRead=True,
    )
    return dict(found.get("Item", {}))


def test_a_shoppers_zone_comes_from_the_profile_and_a_bad_one_is_refused(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    assert send(apps, profile("ann", LA))["programs"][0]["outcome"] == "profile_updated"
    item = get(table_name, "ann", MEMBER_SK)
    assert item["timeZone"]["S"] == LA and item["v"]["N"] == "1"
    # An older profile changes nothing; one without a zone brings back the program's.
    assert (
        send(apps, profile("ann", "Asia/Tokyo", at="2025-01-01T00:00:00+00:00"))["programs"][0][
            "outcome"
        ]
        == "profile_stale"
    )
    assert (
        send(apps, profile("ann", None, at="2026-02-01T00:00:00+00:00"))["programs"][0]["outcome"]
        == "profile_updated"
    )
    assert "timeZone" not in get(table_name, "ann", MEMBER_SK)
    for zone in ("Mars/Olympus_Mons", "../../etc/passwd"):
        response = apps["order_ingestion"].lambda_handler(
            http_event(profile("bob", zone)), FakeContext()
        )
        assert response["statusCode"] == 422, response
        assert json.loads(response["body"])["error"]["field"] == "detail.timeZone"
    assert get(table_name, "bob", MEMBER_SK) == {}


def test_an_orders_day_is_the_members_across_a_clock_change_and_new_year(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    send(apps, profile("ann", LA))
    # 2027-03-14 is the spring change in Los Angeles: 06:30 UTC is 23:30 PDT on the 13th.
    order(apps, "ann", "dst", "2027-03-14T06:30:00+00:00", "2027-03-14T07:00:00Z")
    assert get(table_name, "ann", order_sk("dst"))["day"]["S"] == "2027-03-13"
    # 2026-11-01 is the autumn change: 08:30 UTC is 01:30 PST, the 1st (the hour repeats).
    order(apps, "ann", "fall", "2026-11-01T08:30:00+00:00", "2026-11-01T09:00:00Z")
    assert get(table_name, "ann", order_sk("fall"))["day"]["S"] == "2026-11-01"
    # 01:00 UTC on Jan 1 is 5 pm on Dec 31 in Los Angeles; a UTC member's is Jan 1.
    order(apps, "ann", "eve", "2027-01-01T01:00:00+00:00", "2027-01-01T01:05:00Z")
    order(apps, "utc", "eve", "2027-01-01T01:00:00+00:00", "2027-01-01T01:05:00Z")
    assert get(table_name, "ann", order_sk("eve"))["day"]["S"] == "2026-12-31"
    assert get(table_name, "utc", order_sk("eve"))["day"]["S"] == "2027-01-01"
    # The hint learnt by the first refused credit: no refusal for the next orders.
    assert zones.zone_hint(SHOPPERS, "ann") == LA
    # GET /v1/me counts the window on the member's days (Nov 1 is out of the 90 days).
    status, body, _ = call(
        apps["member_api"],
        http("GET", "/v1/me", sub="ann", at=datetime(2027, 3, 14, 8, tzinfo=UTC)),
    )
    assert status == 200 and body["windowPoints"] == 20, body


def test_a_care_day_booked_at_5_pm_on_dec_31_in_los_angeles_is_for_dec_31(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    ddb = boto3.client("dynamodb")
    seed_member(ddb, table_name, "ann", tier="diamond", eligible=True, timeZone=LA)
    seed_member(ddb, table_name, "utc", tier="diamond", eligible=True)
    at = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)
    body = {"perkId": "care_days", "careType": "child", "date": "2026-12-31", "unit": "day"}
    status, answer, _ = call(
        apps["perk_redemption"],
        http(
            "POST",
            "/v1/me/redemptions",
            sub="ann",
            body=body,
            headers={"idempotency-key": "k1"},
            at=at,
        ),
    )
    assert status == 201, answer
    assert answer["date"] == "2026-12-31"
    # For a member on UTC, Dec 31 is over: the date is refused, naming it.
    status, error, _ = call(
        apps["perk_redemption"],
        http(
            "POST",
            "/v1/me/redemptions",
            sub="utc",
            body=body,
            headers={"idempotency-key": "k1"},
            at=at,
        ),
    )
    assert status == 422 and error["error"]["field"] == "date", error
    assert date(2026, 12, 31).isoformat() == answer["date"]
    # Jan 1 booked at the same instant: still tomorrow in Los Angeles, so it can be cancelled.
    body["date"] = "2027-01-01"
    status, jan, _ = call(
        apps["perk_redemption"],
        http(
            "POST",
            "/v1/me/redemptions",
            sub="ann",
            body=body,
            headers={"idempotency-key": "k2"},
            at=at,
        ),
    )
    assert status == 201, jan
    path = f"/v1/me/redemptions/{jan['redemptionId']}"
    status, cancelled, _ = call(apps["perk_redemption"], http("DELETE", path, sub="ann", at=at))
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
