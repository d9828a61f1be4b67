"""tier_recalculation and event_publisher with real stream records from DynamoDB Local."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from shared import composition
from shared.composition import ledger_repository
from tests.helpers import FakeContext, load_function, order_completed, order_reversed
from tests.integration.streams import RecordingPublisher, StreamReader

# DynamoDB Local stamps stream records with the real clock, and a tier decision never applies
# at an instant before the last one written: the events of these tests happen "now" too.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    yield {
        name: load_function(name)
        for name in ("order_ingestion", "tier_recalculation", "event_publisher")
    }
    composition.reset()


def deliver_stream(apps: dict[str, ModuleType], records: list[dict[str, Any]]) -> None:
    """Both stream consumers get the batch, as each Lambda mapping would."""
    batch = {"Records": records}
    for name in ("tier_recalculation", "event_publisher"):
        response = apps[name].lambda_handler(batch, FakeContext(function_name=name))
        assert response == {"batchItemFailures": []}, response


def orders(apps: dict[str, ModuleType], count: int, batch: int = 3, start: int = 0) -> None:
    for index in range(start, start + count):
        apps["order_ingestion"].lambda_handler(
            order_completed(
                order_id=f"o-{index}",
                batch_size=batch,
                completed_at=(NOW - timedelta(days=index % 5)).isoformat(),
                time=NOW.isoformat(),
            ),
            FakeContext(),
        )


def test_upgrade_from_the_stream_without_reading_and_published_once(
    apps: dict[str, ModuleType], table_name: str, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, 7)  # 210 points: gold
    repo = composition.tier_repository()
    repo.meter.reset()
    records = stream.read()
    deliver_stream(apps, records)
    assert repo.meter.read_units == 0, "evaluated from the stream's new image"
    member = ledger_repository().get_member("cart-star", "shopper-1")
    assert member is not None and member["tier"] == "gold"
    assert member["tierReason"] == "points_gained"
    # The tier write is itself on the stream: the publisher turns it into the event, and the
    # evaluation of that record changes nothing.
    follow_up = stream.read()
    deliver_stream(apps, follow_up)
    changed = [e for e in published.events if e.detail_type == "MemberTierChanged"]
    assert len(changed) == 1
    assert changed[0].detail["from"] is None and changed[0].detail["to"] == "gold"
    assert changed[0].detail["reason"] == "points_gained" and changed[0].detail["eventId"]
    assert changed[0].detail["ruleVersion"] == "cart-star@1"
    # Redelivering both batches changes nothing and publishes the same event id again at most.
    before = ledger_repository().get_member("cart-star", "shopper-1")
    deliver_stream(apps, records)
    deliver_stream(apps, follow_up)
    assert ledger_repository().get_member("cart-star", "shopper-1") == before
    ids = {e.detail["eventId"] for e in published.events if e.detail_type == "MemberTierChanged"}
    assert len(ids) == 1


def test_daily_evaluation_downgrades_after_a_reversal_and_redelivery_is_a_no_op(
    apps: dict[str, ModuleType], table_name: str, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, 7)
    deliver_stream(apps, stream.read())
    apps["order_ingestion"].lambda_handler(
        order_reversed(order_id="o-0", occurred_at=NOW.isoformat(), time=NOW.isoformat()),
        FakeContext(),
    )
    deliver_stream(apps, stream.read())
    member = ledger_repository().get_member("cart-star", "shopper-1")
    assert member is not None and member["tier"] == "gold", "downgrades wait for the schedule"
    assert member["checkOn"] == NOW.date().isoformat()

    schedule = {
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "time": (NOW + timedelta(hours=1)).isoformat(),
        "detail": {},
    }
    first = apps["tier_recalculation"].lambda_handler(schedule, FakeContext())
    assert first["changes"] == {"gold->None": 1}
    again = apps["tier_recalculation"].lambda_handler(schedule, FakeContext())
    assert again["evaluated"] == 0 and again["changes"] == {}
    member = ledger_repository().get_member("cart-star", "shopper-1")
    assert member is not None and "tier" not in member and member["tierReason"] == "points_expired"
    assert "checkOn" not in member
    deliver_stream(apps, stream.read())
    changes = [e.detail["to"] for e in published.events if e.detail_type == "MemberTierChanged"]
    assert changes == ["gold", None]


def test_me_shows_tier_points_and_projection(
    apps: dict[str, ModuleType], table_name: str, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, 7)
    deliver_stream(apps, stream.read())
    api = load_function("member_api")
    event = json.loads(
        json.dumps(
            {
                "version": "2.0",
                "routeKey": "GET /v1/me",
                "rawPath": "/v1/me",
                "rawQueryString": "",
                "headers": {},
                "requestContext": {
                    "http": {"method": "GET", "path": "/v1/me", "sourceIp": "127.0.0.1"},
                    "authorizer": {"jwt": {"claims": {"sub": "shopper-1"}, "scopes": []}},
                    "requestId": "r",
                    "routeKey": "GET /v1/me",
                    "stage": "$default",
                    "timeEpoch": int((NOW + timedelta(days=80)).timestamp() * 1000),
                },
                "isBase64Encoded": False,
            }
        )
    )
    repo = ledger_repository()
    repo.meter.reset()
    response = api.lambda_handler(event, FakeContext(function_name="member_api"))
    assert repo.meter.read_units <= 1
    body = json.loads(response["body"])
    # 80 days later all 7 orders (completed 0 to 4 days before NOW) still count; 7 days
    # further, the 2 orders of days -3 and -4 have aged out: 150 points, below gold.
    assert body["tier"] == "gold" and body["windowPoints"] == 210
    assert body["pointsToNextTier"] == 790
    assert body["projectedTier"] is None
    assert body["rating"] == {"average": None, "count": 0} and body["eligible"] is True
    other = json.loads(json.dumps(event))
    other["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "shopper-2"
    other_body = json.loads(api.lambda_handler(other, FakeContext())["body"])
    assert other_body["windowPoints"] == 0 and other_body["tier"] is None


def test_the_check_index_lists_only_members_with_a_tier(
    apps: dict[str, ModuleType], table_name: str, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, 7)
    apps["order_ingestion"].lambda_handler(
        order_completed(order_id="x", member_id="newcomer", time=NOW.isoformat()), FakeContext()
    )
    deliver_stream(apps, stream.read())
    due = list(composition.tier_repository().due_member_keys("cart-star", date(2027, 12, 31)))
    assert due == ["shopper-1"]
