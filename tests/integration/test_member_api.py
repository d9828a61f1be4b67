"""member_api on DynamoDB Local: every route with two members (a member only ever reads their
own data), read units per route, the ledger read model fed by the stream."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from shared import composition
from tests.helpers import FakeContext, order_completed, order_reversed
from tests.integration.streams import StreamReader
from tests.integration.test_perks_helpers import (
    NOW,
    apps,
    call,
    http,
    publish_stream,
    seed_member,
)

__all__ = ["apps"]  # fixtures, imported for pytest


def me(apps: dict[str, ModuleType], sub: str, path: str = "/v1/me", **query: str) -> Any:
    status, body, _ = call(apps["member_api"], http("GET", path, sub=sub, query=query or None))
    assert status == 200, body
    return body


def order(apps: dict[str, ModuleType], member: str, order_id: str, minutes_ago: int) -> None:
    apps["order_ingestion"].lambda_handler(
        order_completed(
            order_id=order_id,
            member_id=member,
            completed_at=(NOW - timedelta(minutes=minutes_ago)).isoformat(),
            time=NOW.isoformat(),
        ),
        FakeContext(),
    )


def test_me_is_one_item_read_whatever_the_history(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    for index in range(40):
        order(apps, "ann", f"a-{index}", minutes_ago=index * 600)
    order(apps, "bob", "b-1", minutes_ago=5)
    meter = composition.meter()
    meter.reset()
    ann = me(apps, "ann")
    assert meter.read_units <= 1 and meter.calls == 1
    assert ann["ordersCompleted"] == 40 and ann["windowPoints"] == 400 and ann["tier"] == "gold"
    assert (
        ann["wallet"] == {"balance": "0.00", "held": "0.00", "currency": "USD"}
        and ann["badge"] is None
    )
    bob = me(apps, "bob")
    assert bob["ordersCompleted"] == 1 and bob["tier"] is None
    stranger = me(apps, "nobody")
    assert stranger["ordersCompleted"] == 0 and stranger["eligibilityReason"] == "not_judged"


def test_the_ledger_is_newest_first_paginated_and_only_the_members_own(
    apps: dict[str, ModuleType], table_name: str, published: Any
) -> None:
    stream = StreamReader(table_name)
    for index in range(5):
        order(apps, "ann", f"a-{index}", minutes_ago=100 - index * 10)  # a-4 is the newest
    order(apps, "bob", "b-1", minutes_ago=1)
    order(apps, "bob", "b-0", minutes_ago=200)  # older than every entry of Ann's
    apps["order_ingestion"].lambda_handler(
        order_reversed(
            order_id="a-1", member_id="ann", occurred_at=NOW.isoformat(), time=NOW.isoformat()
        ),
        FakeContext(),
    )
    records = stream.read()
    publish_stream(apps, records)
    publish_stream(apps, records)  # a redelivered batch writes the same entries

    first = me(apps, "ann", "/v1/me/ledger", limit="3")
    assert [(e["orderId"], e["kind"], e["points"]) for e in first["entries"]] == [
        ("a-1", "reversal", -10),
        ("a-4", "credit", 10),
        ("a-3", "credit", 10),
    ]
    assert first["entries"][0]["reason"] == "OrderCancelled"
    assert first["entries"][1]["ruleVersion"] == "cart-star@1"
    second = me(apps, "ann", "/v1/me/ledger", limit="3", nextToken=first["nextToken"])
    assert [e["orderId"] for e in second["entries"]] == ["a-2", "a-1", "a-0"]
    assert (
        second["nextToken"] is None
        or not me(apps, "ann", "/v1/me/ledger", nextToken=second["nextToken"])["entries"]
    )
    # Bob sees his own entries only, even with Ann's page token: the token's position is read
    # in Bob's partition, so the page is Bob's entry older than it (not empty, and none of
    # Ann's entries, which exist at that position).
    bob = me(apps, "bob", "/v1/me/ledger")
    assert [e["orderId"] for e in bob["entries"]] == ["b-1", "b-0"]
    with_anns_token = me(apps, "bob", "/v1/me/ledger", nextToken=first["nextToken"])
    assert [e["orderId"] for e in with_anns_token["entries"]] == ["b-0"]
    status, error, _ = call(
        apps["member_api"],
        http("GET", "/v1/me/ledger", sub="ann", query={"nextToken": "bm90LWEta2V5"}),
    )
    assert (status, error["error"]["field"]) == (422, "nextToken")
    status, error, _ = call(
        apps["member_api"], http("GET", "/v1/me/ledger", sub="ann", query={"limit": "500"})
    )
    assert (status, error["error"]["field"]) == (422, "limit")


def test_perks_say_open_or_not_and_why_with_the_quota_left(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    seed_member(ddb_client, table_name, "bob", tier="gold")
    seed_member(ddb_client, table_name, "ivy", tier="diamond", eligible=False)
    booking = {"perkId": "care_days", "careType": "child", "date": "2026-12-10", "unit": "day"}
    status, _, _ = call(
        apps["perk_redemption"],
        http(
            "POST",
            "/v1/me/redemptions",
            sub="ann",
            body=booking,
            headers={"idempotency-key": "k"},
        ),
    )
    assert status == 201
    meter = composition.meter()
    meter.reset()
    ann = {p["perkId"]: p for p in me(apps, "ann", "/v1/me/perks")["perks"]}
    assert meter.calls == 1 and meter.read_units <= 1
    assert ann["care_days"]["open"] and ann["care_days"]["reason"] == "open"
    assert ann["care_days"]["quota"] == {
        "limit": 2,
        "used": 1,
        "left": 1,
        "period": "2026-Q4",
        "resetsOn": "2027-01-01",
    }
    assert ann["care_days"]["pricePerDay"] == {"amount": "10.00", "currency": "USD"}
    assert ann["gas_cashback"]["rate"] == "0.05" and ann["early_batch_access"]["open"]
    bob = {p["perkId"]: p for p in me(apps, "bob", "/v1/me/perks")["perks"]}
    assert bob["care_days"]["open"] is False and bob["care_days"]["reason"] == "tier_too_low"
    assert bob["care_days"]["quota"]["used"] == 0, "Ann's quota is Ann's"
    assert bob["car_maintenance"]["rate"] == "0.10" and bob["car_maintenance"]["redeemable"]
    ivy = {p["perkId"]: p for p in me(apps, "ivy", "/v1/me/perks")["perks"]}
    assert {p["reason"] for p in ivy.values()} == {"not_eligible"}


def test_redemptions_list_only_the_members_own(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    for member in ("ann", "bob"):
        seed_member(ddb_client, table_name, member, tier="diamond")
    ids = []
    for index, day in enumerate(("2026-12-01", "2026-12-02")):
        event = http(
            "POST",
            "/v1/me/redemptions",
            sub="ann",
            body={"perkId": "care_days", "careType": "child", "date": day, "unit": "day"},
            headers={"idempotency-key": f"k-{index}"},
            at=NOW + timedelta(seconds=index),
        )
        ids.append(call(apps["perk_redemption"], event)[1]["redemptionId"])
    bobs = http(
        "POST",
        "/v1/me/redemptions",
        sub="bob",
        body={"perkId": "care_days", "careType": "child", "date": "2026-12-03", "unit": "day"},
        headers={"idempotency-key": "k-0"},
        at=NOW - timedelta(seconds=5),  # older than Ann's
    )
    status, bob_redemption, _ = call(apps["perk_redemption"], bobs)
    assert status == 201
    page = me(apps, "ann", "/v1/me/redemptions", limit="1")
    assert [r["redemptionId"] for r in page["redemptions"]] == [ids[1]], "newest first"
    rest = me(apps, "ann", "/v1/me/redemptions", nextToken=page["nextToken"])
    assert [r["redemptionId"] for r in rest["redemptions"]] == [ids[0]]
    # Both have redemptions: Bob's page holds his own, none of Ann's; with Ann's page token,
    # the position is read in Bob's partition: his (older) redemption, not Ann's older one.
    listed = [r["redemptionId"] for r in me(apps, "bob", "/v1/me/redemptions")["redemptions"]]
    assert listed == [bob_redemption["redemptionId"]] and not set(listed) & set(ids)
    with_anns_token = me(apps, "bob", "/v1/me/redemptions", nextToken=page["nextToken"])
    assert [r["redemptionId"] for r in with_anns_token["redemptions"]] == listed


def test_entitlements_and_badges_are_for_services_and_read_one_item(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(
        ddb_client,
        table_name,
        "ann",
        tier="diamond",
        ordersCompleted=812,
        memberSince="2024-03-14T09:00:00.000000+00:00",
        lifetimePoints=9000,
        walletBalance=12,
        ratingAverage="4.9",
    )
    seed_member(ddb_client, table_name, "bob", tier="gold")
    api = apps["member_api"]
    meter = composition.meter()
    meter.reset()
    status, ann, _ = call(api, http("GET", "/v1/members/ann/entitlements", iam=True))
    assert status == 200 and meter.calls == 1 and meter.read_units <= 0.5
    assert ann["entitlements"] == [
        {"perkId": "early_batch_access", "granted": True, "reason": "open", "leadMinutes": 10}
    ]
    _, bob, _ = call(api, http("GET", "/v1/members/bob/entitlements", iam=True))
    assert bob["entitlements"][0]["granted"] is False
    assert bob["entitlements"][0]["reason"] == "tier_too_low"
    assert bob["entitlements"][0]["leadMinutes"] is None  # no head start to speak of

    status, badge, _ = call(api, http("GET", "/v1/members/ann/badge", iam=True))
    assert status == 200
    assert badge == {
        "tier": "diamond",
        "tierName": "Diamond",
        "ordersCompleted": 812,
        "memberSince": "2024-03",
        "tenureMonths": 32,
        "memberId": "ann",
        "programId": "cart-star",
    }, "tier, orders, tenure: no points, rating, wallet or exact dates"
    status, error, _ = call(api, http("GET", "/v1/members/bob/badge", iam=True))
    assert (status, error["error"]["code"]) == (404, "not_found")
    assert me(apps, "ann")["badge"]["tierName"] == "Diamond"


@pytest.mark.parametrize("path", ["/v1/members/ann/entitlements", "/v1/members/ann/badge"])
def test_a_members_token_cannot_use_service_routes(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, path: str
) -> None:
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    status, error, _ = call(apps["member_api"], http("GET", path, sub="bob"))
    assert (status, error["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("path", ["/v1/me", "/v1/me/ledger", "/v1/me/perks", "/v1/me/redemptions"])
def test_member_routes_need_a_members_token(apps: dict[str, ModuleType], path: str) -> None:
    status, error, _ = call(apps["member_api"], http("GET", path, iam=True))
    assert (status, error["error"]["code"]) == (401, "unauthorized")
    status, _, _ = call(apps["member_api"], http("GET", path))
    assert status == 401


def test_me_shows_the_day_the_tier_would_drop_from_the_one_item_read(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    # 12 orders on September 10th and 10 on October 15th (UTC, the program's zone): Gold with
    # 220 points. With no more orders, September 10th leaves the 90-day window on December 9th
    # and 100 points remain.
    for index in range(12):
        order(
            apps, "cleo", f"c-sep-{index}", minutes_ago=int((NOW - SEPT_10).total_seconds() // 60)
        )
    for index in range(10):
        order(apps, "cleo", f"c-oct-{index}", minutes_ago=int((NOW - OCT_15).total_seconds() // 60))
    meter = composition.meter()
    meter.reset()
    cleo = me(apps, "cleo")
    assert meter.read_units <= 1 and meter.calls == 1, "tierDropsOn needs no read of its own"
    assert cleo["tier"] == "gold" and cleo["windowPoints"] == 220
    assert cleo["tierDropsOn"] == "2026-12-09"
    order(apps, "dan", "d-1", minutes_ago=5)
    assert me(apps, "dan")["tierDropsOn"] is None, "no tier, nothing to drop"


SEPT_10 = NOW.replace(month=9, day=10)
OCT_15 = NOW.replace(month=10, day=15)
