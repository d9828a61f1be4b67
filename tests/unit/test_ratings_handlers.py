"""rating_moderation's handler on each channel (EventBridge, SQS, HTTP, the table's stream),
on a moto table."""

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


def test_the_stream_releases_a_waiting_rating(app: ModuleType) -> None:
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    w.deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    # World applied the change itself; the handler's stream path must find nothing left.
    order = w._order_item(MEMBER, "o-1")
    response = app.lambda_handler({"Records": [stream_record(None, order)]}, FakeContext())
    assert response == {"batchItemFailures": []}
    assert count() == 1


def test_the_stream_path_applies_order_arrivals(app: ModuleType) -> None:
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    w.simple_ledger = True
    # Write the order without the world's own stream delivery, then hand the record over.
    put_delivered_order(w)
    order = w._order_item(MEMBER, "o-1")
    response = app.lambda_handler({"Records": [stream_record(None, order)]}, FakeContext())
    assert response == {"batchItemFailures": []}
    assert count() == 1


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


def test_the_deployed_stream_consumer_releases_waiting_ratings(app: ModuleType) -> None:
    """template.yaml gives the stream to tier_recalculation, which hands order changes to rating
    moderation: an order arriving there releases the rating waiting for it, once."""
    consumer = load_function("tier_recalculation")
    assert app.lambda_handler(rating(), FakeContext())["outcome"] == "waiting"
    w = world()
    put_delivered_order(w)
    record = stream_record(None, w._order_item(MEMBER, "o-1"))
    for _ in range(2):  # a redelivered batch changes nothing
        response = consumer.lambda_handler({"Records": [record]}, FakeContext())
        assert response == {"batchItemFailures": []}
        assert count() == 1
