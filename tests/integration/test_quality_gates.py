"""Quality gates on DynamoDB Local, through order_ingestion's and member_api's handlers with the
test program (tests/fixtures/programs/cart-star-gated.yaml: on-time 0.8 for Platinum, completion
and on-time 0.9 for Diamond, judged from 20 events).

Offers and late reports read nothing (ReturnValues, no GetItem); a redelivery on any channel
changes nothing; the 101st delivery pushes the oldest out; ``GET /v1/me`` shows every gate and
why the tier is held below what the points reach.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from shared import composition
from shared.dal.dynamodb import from_item
from shared.domain.keys import MEMBER_SK, gate_sk, member_pk
from shared.domain.program import Program
from shared.domain.window import pack_days
from tests.helpers import FakeContext, http_event, load_function, order_completed, sqs_event
from tests.integration.streams import RecordingPublisher, StreamReader
from tests.integration.test_perks_helpers import NOW, apps, call, http, seed_member
from tests.unit.test_gates import gated_program

__all__ = ["apps"]  # fixtures, imported for pytest

PROGRAM = "cart-star"


@pytest.fixture
def gated(apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> Iterator[Program]:
    """The gated shopper program, served alone: the gates are the shopper program's, and a
    delivery would otherwise also credit the customer program (two more transactions and a read
    each, a third of these tests' time; test_customer_points covers that path)."""
    program = gated_program()
    monkeypatch.setenv("PROGRAM_IDS", PROGRAM)
    composition.reset()
    monkeypatch.setattr(apps["order_ingestion"], "load_program", lambda _id: program)
    monkeypatch.setattr(apps["member_api"], "token_program", lambda _app, _id: program)
    yield program


def envelope(detail_type: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"ev-{detail_type}-{json.dumps(detail, sort_keys=True)}"[:64],
        "detail-type": detail_type,
        "source": "dispatch.service",
        "time": NOW.isoformat(),
        "detail": detail,
    }


def accepted(member: str, offer: str, minutes_ago: int) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return envelope("OfferAccepted", offerId=offer, memberId=member, occurredAt=at)


def declined(member: str, offer: str, minutes_ago: int) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return envelope("OfferDeclined", offerId=offer, memberId=member, occurredAt=at)


def late(member: str, order: str, minutes_ago: int, minutes: int = 15) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return envelope(
        "DeliveryLate", orderId=order, memberId=member, minutesLate=minutes, occurredAt=at
    )


def delivered(member: str, order: str, minutes_ago: int) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return order_completed(order_id=order, member_id=member, completed_at=at, time=NOW.isoformat())


def send(app: ModuleType, event: dict[str, Any], channel: str = "eventbridge") -> Any:
    if channel == "eventbridge":
        return app.lambda_handler(event, FakeContext())
    if channel == "sqs":
        response = app.lambda_handler(sqs_event(event), FakeContext())
        assert response == {"batchItemFailures": []}, response
        return response
    response = app.lambda_handler(http_event(event), FakeContext())
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])["result"]


def member_item(table: str, member: str) -> dict[str, Any]:
    client = boto3.client("dynamodb")
    key = {"pk": {"S": member_pk(PROGRAM, member)}, "sk": {"S": MEMBER_SK}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
    return from_item(item)


def window_item(table: str, member: str, gate: str) -> dict[str, Any]:
    client = boto3.client("dynamodb")
    key = {"pk": {"S": member_pk(PROGRAM, member)}, "sk": {"S": gate_sk(gate)}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}
    return {k: v for k, v in from_item(item).items() if k != "v"}


def history(member: str) -> list[dict[str, Any]]:
    """25 accepted offers (4 dropped after acceptance, one of them declined before too; 1
    declined before only: not a drop) and 25 deliveries (5 reported late): completion 21/25 =
    0.84, on time 20/25 = 0.8."""
    events: list[dict[str, Any]] = []
    for index in range(25):
        minutes_ago = 3_000 - index * 100
        if index == 4:  # declined before it was accepted, then dropped after: a drop
            events.append(declined(member, f"of-{index}", minutes_ago + 5))
        events.append(accepted(member, f"of-{index}", minutes_ago))
        if index == 4:
            events.append(declined(member, f"of-{index}", minutes_ago - 5))
        events.append(delivered(member, f"or-{index}", minutes_ago - 30))
        if index < 3:
            events.append(declined(member, f"of-{index}", minutes_ago - 5))
        if index == 3:
            events.append(declined(member, f"of-{index}", minutes_ago + 5))
        if index >= 20:
            events.append(late(member, f"or-{index}", minutes_ago - 31))
    events.append(declined(member, "of-never-accepted", 10))
    return events


def me(apps: dict[str, ModuleType], member: str) -> dict[str, Any]:
    status, body, _ = call(apps["member_api"], http("GET", "/v1/me", sub=member))
    assert status == 200, body
    return dict(body)


def test_gates_are_computed_and_hold_the_tier_and_me_shows_them(
    apps: dict[str, ModuleType], gated: Program, table_name: str
) -> None:
    points: dict[str, Any] = dict(pack_days({date(2026, 11, 23): 2500}))
    seed_member(boto3.client("dynamodb"), table_name, "ann", tier="diamond", extra=points)
    for event in history("ann"):
        send(apps["order_ingestion"], event)
    item = member_item(table_name, "ann")
    assert (item["crN"], item["crOk"]) == (25, 21)
    assert (item["otN"], item["otOk"]) == (25, 20)

    view = me(apps, "ann")
    # completion 0.84 < 0.9 and on time 0.8 < 0.9: not Diamond; 0.8 >= Platinum's 0.8
    assert view["tier"] == "platinum"
    assert view["tierReason"] == "quality_gate_unmet"
    gates = {(gate["tier"], gate["gate"]): gate for gate in view["gates"]}
    diamond_completion = gates[("diamond", "completionRate")]
    assert diamond_completion["value"] == "0.84" and diamond_completion["floor"] == "0.9"
    assert diamond_completion["met"] is False and diamond_completion["count"] == 25
    assert gates[("diamond", "onTimeRate")]["met"] is False
    assert gates[("platinum", "onTimeRate")]["met"] is True
    assert all(gate["hint"] and gate["counts"] for gate in view["gates"])

    # one more on-time delivery with an accepted, completed offer: 22/26, 21/26: still below
    send(apps["order_ingestion"], accepted("ann", "of-extra", 5))
    send(apps["order_ingestion"], delivered("ann", "or-extra", 4))
    assert me(apps, "ann")["tier"] == "platinum"


def test_a_member_meeting_every_gate_keeps_the_tier(
    apps: dict[str, ModuleType], gated: Program, table_name: str
) -> None:
    points: dict[str, Any] = dict(pack_days({date(2026, 11, 23): 2500}))
    seed_member(boto3.client("dynamodb"), table_name, "bob", tier="diamond", extra=points)
    for index in range(30):
        send(apps["order_ingestion"], accepted("bob", f"of-{index}", 3_000 - index * 60))
        send(apps["order_ingestion"], delivered("bob", f"or-{index}", 3_000 - index * 60 - 30))
    view = me(apps, "bob")
    assert view["tier"] == "diamond" and view["tierReason"] != "quality_gate_unmet"
    assert all(gate["met"] and gate["judged"] for gate in view["gates"])


def test_redelivery_on_any_channel_changes_nothing_and_offers_read_nothing(
    apps: dict[str, ModuleType], gated: Program, table_name: str
) -> None:
    events = history("cid")
    for event in events:
        send(apps["order_ingestion"], event)
    before = member_item(table_name, "cid")
    windows = {gate: window_item(table_name, "cid", gate) for gate in gated.gated}
    meter = composition.meter()
    meter.reset()
    for channel in ("sqs", "http", "eventbridge"):
        for event in reversed(events):
            if event["detail-type"] != "OrderCompleted":
                send(apps["order_ingestion"], event, channel)
    assert meter.read_units == 0  # offers and late reports: UpdateItem with ReturnValues only
    after = member_item(table_name, "cid")
    standing = ("crN", "crOk", "otN", "otOk")
    assert {name: after[name] for name in standing} == {name: before[name] for name in standing}
    assert {gate: window_item(table_name, "cid", gate) for gate in gated.gated} == windows


def test_concurrent_redeliveries_in_any_order_on_any_channel_count_once(
    apps: dict[str, ModuleType], gated: Program, table_name: str
) -> None:
    """The history delivered 1 to 3 times each, shuffled, 8 at a time, over the three channels
    (as order_ingestion's own property test does): the standing of one delivery of each."""
    rng = random.Random(14)
    deliveries = [
        (event, rng.choice(["eventbridge", "sqs", "http"]))
        for event in history("fay")
        for _ in range(rng.randint(1, 3))
    ]
    rng.shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda d: send(apps["order_ingestion"], *d), deliveries))
    item = member_item(table_name, "fay")
    assert (item["crN"], item["crOk"], item["otN"], item["otOk"]) == (25, 21, 25, 20)


def test_the_101st_delivery_pushes_the_oldest_out(
    apps: dict[str, ModuleType], gated: Program, table_name: str
) -> None:
    app = apps["order_ingestion"]
    for index in range(100):
        send(app, delivered("dee", f"or-{index}", 20_000 - index * 60))
    send(app, late("dee", "or-0", 20_000 - 30))  # the oldest delivery was late
    item = member_item(table_name, "dee")
    assert (item["otN"], item["otOk"]) == (100, 99)
    send(app, delivered("dee", "or-100", 10))
    item = member_item(table_name, "dee")
    assert (item["otN"], item["otOk"]) == (100, 100)
    # a delivery older than all 100, and its late report, arriving now: beyond the window
    send(app, delivered("dee", "or-ancient", 40_000))
    send(app, late("dee", "or-ancient", 40_000))
    item = member_item(table_name, "dee")
    assert (item["otN"], item["otOk"]) == (100, 100)
    # 20 more, the newest late: the entries that can no longer count are deleted in a batch
    for index in range(20):
        send(app, delivered("dee", f"or-new-{index}", 9 - index // 4))
    send(app, late("dee", "or-new-19", 1))
    item = member_item(table_name, "dee")
    assert (item["otN"], item["otOk"]) == (100, 99)
    window = window_item(table_name, "dee", "onTimeRate")
    assert 100 <= len(window["e"]) < 116
    # the ancient report is gone; or-0's stays while within 24 h of the oldest kept delivery
    assert len(window["m"]) == 2


def test_the_stream_takes_the_tier_down_at_once_and_gives_it_back(
    apps: dict[str, ModuleType],
    gated: Program,
    table_name: str,
    published: RecordingPublisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiers = load_function("tier_recalculation")
    monkeypatch.setattr(tiers, "load_program", lambda _id: gated)
    stream = StreamReader(table_name)

    def flush() -> None:
        for _ in range(3):  # the tier write is on the stream too
            records = stream.read()
            if not records:
                return
            for app in (tiers, apps["event_publisher"]):
                response = app.lambda_handler({"Records": records}, FakeContext())
                assert response == {"batchItemFailures": []}, response

    def triple(order: str, minutes_ago: int) -> dict[str, Any]:
        at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
        return order_completed(
            order_id=order, member_id="eve", completed_at=at, batch_size=3, time=NOW.isoformat()
        )

    for index in range(70):  # 2,100 points, on time: Diamond
        send(apps["order_ingestion"], triple(f"or-{index}", 2_000 - index * 10))
    flush()
    assert member_item(table_name, "eve")["tier"] == "diamond"
    for index in range(20):  # 50 of 70 on time (0.71): below Platinum's 0.8 too
        send(apps["order_ingestion"], late("eve", f"or-{index}", 2_000 - index * 10))
    flush()
    item = member_item(table_name, "eve")
    assert (item["tier"], item["tierReason"]) == ("gold", "quality_gate_unmet")
    assert item["lifetimePoints"] == 2_100  # points keep accruing
    for index in range(100):  # the late ones leave the last 100
        send(apps["order_ingestion"], triple(f"or-new-{index}", 900 - index))
    flush()
    item = member_item(table_name, "eve")
    assert (item["tier"], item["tierReason"]) == ("diamond", "quality_gate_met")
    reasons = [e.detail["reason"] for e in published.events if e.detail_type == "MemberTierChanged"]
    assert reasons == ["points_gained", "quality_gate_unmet", "quality_gate_met"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (envelope("OfferAccepted", memberId="m", occurredAt=NOW.isoformat()), "detail.offerId"),
        (
            envelope(
                "DeliveryLate",
                orderId="o",
                memberId="m",
                minutesLate=-3,
                occurredAt="2026-11-01T10:00Z",
            ),
            "detail.minutesLate",
        ),
        (
            envelope("OfferDeclined", offerId="o", memberId="m", occurredAt="2026-11-01 10:00"),
            "detail.occurredAt",
        ),
    ],
)
def test_bad_quality_events_are_a_422_naming_the_field(
    apps: dict[str, ModuleType], gated: Program, event: dict[str, Any], field: str
) -> None:
    response = apps["order_ingestion"].lambda_handler(http_event(event), FakeContext())
    assert response["statusCode"] == 422, response
    assert json.loads(response["body"])["error"]["field"] == field
    failures = apps["order_ingestion"].lambda_handler(sqs_event(event), FakeContext())
    assert len(failures["batchItemFailures"]) == 1
