"""event_publisher with its real EventBridge publisher (moto's bus, a rule to a queue): what a
committed change puts on the bus, and what it leaves alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from shared import composition
from shared.domain.outbound import SOURCE
from shared.domain.timeutil import to_compact_utc
from tests.helpers import FakeContext, load_function

BUS = "loyalty-unit-events"
AT = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


@pytest.fixture
def sent(moto_table: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A bus named as EVENT_BUS_NAME says (moto's); the entries the publisher's client sent it,
    as the client sent them."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    boto3.client("events").create_event_bus(Name=BUS)
    entries: list[dict[str, Any]] = []
    client = composition.publisher().client
    put_events = client.put_events

    def spy(**request: Any) -> Any:
        response = put_events(**request)
        entries.extend(request["Entries"])
        return response

    monkeypatch.setattr(client, "put_events", spy)
    return entries


def record(sk: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    serialize = TypeSerializer().serialize
    pk = "P#cart-star#M#s-1"
    image = {
        name: {k: serialize(v) for k, v in {"pk": pk, "sk": sk, **item}.items()}
        for name, item in (("OldImage", old), ("NewImage", new))
        if item is not None
    }
    return {
        "eventID": f"e-{sk}",
        "eventName": "MODIFY" if old and new else ("INSERT" if new else "REMOVE"),
        "eventSource": "aws:dynamodb",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
        "dynamodb": {
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "SequenceNumber": str(100 + len(sk)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            **image,
        },
    }


def test_a_tier_change_goes_on_the_bus_and_a_request_count_does_not(
    sent: list[dict[str, Any]],
) -> None:
    app = load_function("event_publisher")
    member = {"memberId": "s-1", "programId": "cart-star", "v": 4}
    upgraded = {
        **member,
        "v": 5,
        "tier": "platinum",
        "tierReason": "points_gained",
        "tierChangedAt": to_compact_utc(AT),
        "tierRuleVersion": "cart-star@3",
    }
    counted = {"n": 3, "mw": "23:30", "mn": 1}
    batch = {
        "Records": [
            record("MEMBER", {**member, "tier": "gold"}, upgraded),
            record("LIMIT#2026-11-30", {"n": 2, "mw": "23:29", "mn": 2}, counted),
        ]
    }

    assert app.lambda_handler(batch, FakeContext()) == {"batchItemFailures": []}

    assert [(e["EventBusName"], e["Source"], e["DetailType"]) for e in sent] == [
        (BUS, SOURCE, "MemberTierChanged")
    ]
    detail = json.loads(sent[0]["Detail"])
    assert (detail["memberId"], detail["from"], detail["to"]) == ("s-1", "gold", "platinum")
    assert detail["effectiveAt"] == "2026-11-30T23:30:00.000000+00:00" and detail["eventId"]
    assert detail["ruleVersion"] == "cart-star@3"  # the rules that decided it


def test_a_bus_that_refuses_fails_the_record_for_the_stream_to_retry(
    moto_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    app = load_function("event_publisher")
    member = {"memberId": "s-1", "programId": "cart-star", "v": 4, "tier": "gold"}
    changed = {**member, "tier": "diamond", "tierChangedAt": to_compact_utc(AT)}
    response = app.lambda_handler({"Records": [record("MEMBER", member, changed)]}, FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "106"}]}
