"""rating_moderation's handler on each channel (EventBridge, SQS, HTTP), and the table's stream
through its router (tier_recalculation's stream trigger), on a moto table."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from shared.composition import rating_repository
from shared.ingress import RejectedEvent
from shared.programs import load_program
from tests.helpers import FakeContext, fixture_event, http_event, load_function, sqs_event
from tests.ratings_support import (
    NOW,
    World,
    order_completed,
    rating_submitted,
    stream_record,
)

MEMBER, CUSTOMER = "shopper-42", "cust-7"


@pytest.fixture
def app(moto_table: str) -> ModuleType:
    return load_function("rating_moderation")


@pytest.fixture
def consumer(moto_table: str) -> ModuleType:
    """The stream's reader (tier_recalculation), whose router hands order and waiting items to
    rating moderation."""
    return load_function("tier_recalculation")


def world() -> World:
    return World(load_program("cart-star"), rating_repository(), simple_ledger=True)


def rating(rating_id: str = "r-1", order_id: str = "o-1", stars: int = 5) -> dict[str, Any]:
    return rating_submitted(rating_id, order_id, MEMBER, CUSTOMER, stars, NOW - timedelta(hours=1))


def count() -> int:
    member = rating_repository().get_member("cart-star", MEMBER) or {}
    return int(member.get("ratingCount", 0))


def put_delivered_order(w: World) -> None:
    """Order o-1, delivered, written without the world's own stream delivery."""
    w._put_order(
        MEMBER,
        "o-1",
        {
            "memberId": MEMBER,
            "orderId": "o-1",
            "customerId": CUSTOMER,
            "completedAt": "2026-11-23T09:00:00.000000+00:00",
            "status": "credited",
            "tipAtDelivery": {"amount": 5, "currency": "USD"},
        },
    )


def test_the_fixture_rating_waits_for_its_order(app: ModuleType) -> None:
    result = app.lambda_handler(fixture_event("rating_submitted"), FakeContext())
    assert result["outcome"] == "waiting" and result["ratingId"] == "rating-9001"


def test_eventbridge_rating_of_a_delivered_order_counts(app: ModuleType) -> None:
    world().deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    result = app.lambda_handler(rating(), FakeContext())
    assert result["outcome"] == "counted" and result["count"] == 1
    again = app.lambda_handler(rating(), FakeContext())
    assert again["outcome"] == "duplicate"
    assert count() == 1


def test_a_second_rating_for_the_order_is_a_conflict(app: ModuleType) -> None:
    world().deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    app.lambda_handler(rating(), FakeContext())
    with pytest.raises(RejectedEvent, match="conflict"):
        app.lambda_handler(rating("r-2", stars=1), FakeContext())
    assert count() == 1


def test_the_stream_releases_a_waiting_rating(app: ModuleType, consumer: ModuleType) -> None:
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    w.deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    # World applied the change itself; the router's order handler must find nothing left.
    order = w._order_item(MEMBER, "o-1")
    response = consumer.lambda_handler({"Records": [stream_record(None, order)]}, FakeContext())
    assert response == {"batchItemFailures": []}
    assert count() == 1


def test_the_stream_path_applies_order_arrivals(app: ModuleType, consumer: ModuleType) -> None:
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    w.simple_ledger = True
    # Write the order without the world's own stream delivery, then hand the record over.
    put_delivered_order(w)
    order = w._order_item(MEMBER, "o-1")
    response = consumer.lambda_handler({"Records": [stream_record(None, order)]}, FakeContext())
    assert response == {"batchItemFailures": []}
    assert count() == 1


def test_rating_moderation_takes_no_stream_batch(app: ModuleType) -> None:
    """Its stream branch is gone: the stream reaches rating moderation through the router."""
    order = {"pk": "P#cart-star#M#" + MEMBER, "sk": "ORDER#o-1", "memberId": MEMBER}
    with pytest.raises(RejectedEvent):
        app.lambda_handler({"Records": [stream_record(None, order)]}, FakeContext())


def test_sqs_fails_only_the_bad_messages(app: ModuleType) -> None:
    world().deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    self_rated = rating("r-self")
    self_rated["detail"]["customerId"] = MEMBER
    response = app.lambda_handler(
        sqs_event(rating(), "{not json", self_rated, rating("r-3", order_id="o-unknown")),
        FakeContext(),
    )
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]
    }
    assert count() == 1


def test_http_route_answers_with_the_result_or_the_field(app: ModuleType) -> None:
    world().deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    request = http_event(rating())
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/v1/events/ratings"
    response = app.lambda_handler(request, FakeContext())
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["result"]["outcome"] == "counted"
    bad = rating("r-9", stars=6)
    request = http_event(bad)
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/v1/events/ratings"
    response = app.lambda_handler(request, FakeContext())
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"]["field"] == "detail.stars"


def test_a_rating_naming_another_customer_is_refused(app: ModuleType) -> None:
    world().deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    other = rating()
    other["detail"]["customerId"] = "cust-other"
    with pytest.raises(RejectedEvent, match="another customer"):
        app.lambda_handler(other, FakeContext())
    assert count() == 0
    # The refusal is kept with its reason (once, however often the rating comes back).
    app.lambda_handler(http_event(other), FakeContext())
    refused = rating_repository().list_expired("cart-star", MEMBER)
    assert [(r["orderId"], r["reason"], r["rating"]["customerId"]) for r in refused] == [
        ("o-1", "customer_mismatch", "cust-other")
    ]
    # The order's own customer still rates it.
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "counted"


def test_the_deployed_stream_consumer_releases_waiting_ratings(
    app: ModuleType, consumer: ModuleType
) -> None:
    """template.yaml gives the stream to tier_recalculation, which hands order changes to rating
    moderation: an order arriving there releases the rating waiting for it, once."""
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    put_delivered_order(w)
    record = stream_record(None, w._order_item(MEMBER, "o-1"))
    for _ in range(2):  # a redelivered batch changes nothing
        response = consumer.lambda_handler({"Records": [record]}, FakeContext())
        assert response == {"batchItemFailures": []}
        assert count() == 1


def test_the_router_records_a_waiting_rating_removed_by_its_ttl(
    app: ModuleType, consumer: ModuleType
) -> None:
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    repo = rating_repository()
    waiting = repo.list_prefixed("cart-star", MEMBER, "WAITING#")
    assert len(waiting) == 1
    # Removed before it expired (applied, say): nothing to record.
    early = stream_record(waiting[0], None, at=NOW)
    assert consumer.lambda_handler({"Records": [early]}, FakeContext()) == {"batchItemFailures": []}
    assert repo.list_expired("cart-star", MEMBER) == []
    # Removed by its TTL: recorded as expired, with the reason.
    late = stream_record(waiting[0], None, at=NOW + timedelta(days=8))
    assert consumer.lambda_handler({"Records": [late]}, FakeContext()) == {"batchItemFailures": []}
    (expired,) = repo.list_expired("cart-star", MEMBER)
    assert (expired["orderId"], expired["reason"]) == ("o-1", "order_not_delivered_in_time")


def test_the_router_ignores_items_of_other_kinds(consumer: ModuleType) -> None:
    slot = {"pk": f"P#cart-star#M#{MEMBER}", "sk": "RATING#2026-11-23T09:00:00Z#o-1", "v": 1}
    customer = {"pk": "P#cart-star#C#cust-7", "sk": "CUSTOMER", "v": 1}
    records = [stream_record(None, slot), stream_record(customer, None)]
    assert consumer.lambda_handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}
    repo = rating_repository()
    assert repo.list_prefixed("cart-star", MEMBER, "RATING") == []
    assert repo.get_member("cart-star", MEMBER) is None
