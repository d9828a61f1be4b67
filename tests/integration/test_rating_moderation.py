"""rating_moderation and admin_api on DynamoDB Local, through their real handlers, with the
table's real stream wired as template.yaml wires it: the records its filters pass go to
tier_recalculation's stream handler (which hands order and waiting-rating changes to rating
moderation), and every record to the outbox's derivers (event_publisher's).

The central property: whatever the order in which the events arrive, through whichever channel
and however often, the outcome equals a plain recomputation from the set of events.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samlite.cfn import create_table
from samlite.patterns import matches
from samlite.template import read_stack

from shared import composition
from shared.dal.ratings import RatingRepository
from shared.dal.tiers import TierRepository
from shared.domain.errors import InvalidInput
from shared.domain.keys import RATING_SK_PREFIX, member_pk
from shared.domain.outbound import OutboundEvent, derive_all
from shared.domain.program import Program
from shared.domain.raters import RaterState, rating_mark
from shared.domain.tiers import Trigger, evaluate
from shared.domain.timeutil import to_utc_iso
from shared.logic.outbox import DERIVERS
from shared.streams import change_of
from tests.helpers import FakeContext, http_event, load_function, sqs_event
from tests.integration.conftest import TEMPLATE_PATH
from tests.integration.streams import StreamReader
from tests.ratings_support import (
    NOW,
    World,
    admin_request,
    order_completed,
    rating_submitted,
    small_program,
    tip_adjusted,
)
from tests.unit.test_ratings_property import Scenario, check, scenarios

CHANNELS = ("eventbridge", "sqs", "http")


RATING_EVENT_TYPES = {
    "MemberEligibilityChanged",
    "CustomerFlaggedForTipBaiting",
    "CustomerTipBaitFlagCleared",
}
STREAM_FILTERS = next(
    mapping.filters
    for mapping in read_stack(TEMPLATE_PATH).mappings
    if mapping.function == "TierRecalculationFunction" and mapping.kind == "dynamodb"
)


class Pipeline(World):
    """Events through the handlers; the stream through tier_recalculation's stream handler
    (the records the template's filters pass) and the outbox's derivers, as deployed."""

    ingestion: ModuleType
    moderation: ModuleType
    consumer: ModuleType
    admin: ModuleType
    stream: StreamReader
    published: list[OutboundEvent]
    rng: random.Random
    stream_time: datetime | None = None
    """The creation time stamped on the stream's records; None: the deliveries' clock (``now``).
    DynamoDB Local stamps them with the wall clock, while the events are delivered at ``now``:
    left as stamped, a rating that waited for its order would be judged by a clock days apart
    from its delivery's (and expire once the wall clock passes ``now`` plus the wait)."""

    def _moderate(self, raw: dict[str, Any], channel: str) -> None:
        if channel == "eventbridge":
            try:
                self.moderation.lambda_handler(raw, FakeContext())
            except Exception as error:  # the rejection Lambda would send to the DLQ
                self.rejected.append((raw["detail-type"], InvalidInput(str(error))))
        elif channel == "sqs":
            response = self.moderation.lambda_handler(sqs_event(raw), FakeContext())
            if response["batchItemFailures"]:
                self.rejected.append((raw["detail-type"], InvalidInput("sqs failure")))
        else:
            request = http_event(raw)
            request["rawPath"] = request["requestContext"]["http"]["path"] = "/v1/events/ratings"
            response = self.moderation.lambda_handler(request, FakeContext())
            if response["statusCode"] != 200:
                self.rejected.append((raw["detail-type"], InvalidInput(response["body"])))

    def deliver(self, raw: dict[str, Any]) -> None:
        detail_type = raw["detail-type"]
        if detail_type in {"OrderCompleted", "OrderCancelled", "OrderRefunded", "TipAdjusted"}:
            self.ingestion.lambda_handler(raw, FakeContext())
        if detail_type in {"RatingSubmitted", "TipAdjusted"}:
            self._moderate(raw, self.rng.choice(CHANNELS))
        self.pump()

    def pump(self) -> None:
        """Hand the new stream records to the stream consumer and the derivers."""
        records = self.stream.read()
        at = self.stream_time or self.now
        for record in records:
            record["dynamodb"]["ApproximateCreationDateTime"] = at.timestamp()
            if any(matches(pattern, record) for pattern in STREAM_FILTERS):
                response = self.consumer.lambda_handler({"Records": [record]}, FakeContext())
                assert response == {"batchItemFailures": []}, response
            change = change_of(DynamoDBRecord(record))
            self.published += [
                event
                for event in derive_all(DERIVERS, change.old, change.new)
                if event.detail_type in RATING_EVENT_TYPES
            ]
        if records:
            self.pump()


@pytest.fixture
def pipeline(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    program = small_program()
    world = Pipeline(program, RatingRepository(table_name, boto3.client("dynamodb")))
    world.ingestion = load_function("order_ingestion")
    world.moderation = load_function("rating_moderation")
    world.consumer = load_function("tier_recalculation")
    world.admin = load_function("admin_api")
    for module in (world.moderation, world.consumer, world.admin):
        monkeypatch.setattr(module, "load_program", lambda _id: program)
    # The admin routes that take ?programId= find it through service_program.
    monkeypatch.setattr(world.admin, "service_program", lambda _id, _default: program)
    world.stream = StreamReader(table_name)
    world.published = []
    world.rng = random.Random(7)
    yield world
    composition.reset()


def new_pipeline(table_name: str, template: Pipeline, program: Program) -> Pipeline:
    """A pipeline on a fresh table for one hypothesis example (reusing the loaded modules)."""
    world = Pipeline(program, RatingRepository(table_name, boto3.client("dynamodb")))
    world.ingestion, world.moderation = template.ingestion, template.moderation
    world.consumer = template.consumer
    world.stream = StreamReader(table_name)
    world.published = []
    world.rng = random.Random(len(table_name))
    return world


# -- the property, end to end -------------------------------------------------------------------


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios(), seed=st.integers(0, 1000))
def test_arrival_order_channel_and_redelivery_change_nothing(
    pipeline: Pipeline, scenario: Scenario, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("dynamodb")
    name = f"loyalty-prop-{uuid.uuid4().hex[:10]}"
    create_table(client, TEMPLATE_PATH, name)
    try:
        monkeypatch.setenv("TABLE_NAME", name)
        composition.reset()
        world = new_pipeline(name, pipeline, pipeline.program)
        world.rng = random.Random(seed)
        for raw in scenario.arrival:
            world.deliver(raw)
        check(world, scenario)
        # Eligibility events: one per flip, never twice for the same change.
        ids = [event.detail["eventId"] for event in world.published]
        assert len(ids) == len(set(ids))
    finally:
        client.delete_table(TableName=name)


# -- concurrency --------------------------------------------------------------------------------


def test_concurrent_deliveries_count_each_rating_once(pipeline: Pipeline) -> None:
    member, start = "m-busy", NOW - timedelta(days=3)
    for index in range(8):
        pipeline.deliver(
            order_completed(f"o{index}", member, f"c{index}", start + timedelta(minutes=index))
        )
    ratings = [
        rating_submitted(f"r{i}", f"o{i}", member, f"c{i}", 3 + i % 3, start + timedelta(hours=1))
        for i in range(8)
    ]
    deliveries = [raw for raw in ratings for _ in range(3)]
    random.Random(1).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(lambda raw: pipeline.moderation.lambda_handler(raw, FakeContext()), deliveries)
        )
    window = pipeline.repo.get_window(pipeline.program.id, member)
    assert window.counted_total == 8 and window.count == 3  # lastN = 3
    newest = sorted(ratings, key=lambda raw: raw["detail"]["orderId"])[-3:]
    assert window.total == sum(raw["detail"]["stars"] for raw in newest)
    item = pipeline.member(member)
    assert item["ratingCount"] == 3


# -- batches -------------------------------------------------------------------------------------


def test_each_order_of_a_batch_takes_its_own_customers_rating_and_tip(
    pipeline: Pipeline,
) -> None:
    """A batch of 3 orders sent as 3 events with one batchId, completed at the same instant,
    each with its own customer: each customer's rating counts on their own order (none waits
    or expires), a tip change excludes only its order's rating, and a rating naming the wrong
    customer of the batch is refused and kept with why."""
    at = NOW - timedelta(hours=4)
    customers = ("c-ann", "c-bob", "c-cy")
    for index, customer in enumerate(customers):
        pipeline.deliver(order_completed(f"b-{index}", "m-1", customer, at, batch_id="batch-1"))
    assert pipeline.member("m-1")["ordersCompleted"] == 3
    # Bob's rating names Ann's order: refused (a 422 on HTTP), kept with the reason.
    wrong = rating_submitted("r-wrong", "b-0", "m-1", "c-bob", 1, at + timedelta(hours=1))
    request = http_event(wrong)
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/v1/events/ratings"
    response = pipeline.moderation.lambda_handler(request, FakeContext())
    assert response["statusCode"] == 422, response
    assert json.loads(response["body"])["error"]["field"] == "detail.customerId"
    for index, (customer, stars) in enumerate(zip(customers, (5, 4, 5), strict=True)):
        pipeline.deliver(rating_submitted(f"r-{index}", f"b-{index}", "m-1", customer, stars, at))
    item = pipeline.member("m-1")
    assert (item["ratingCount"], item["ratingAverage"]) == (3, Decimal("4.666"))
    assert pipeline.repo.list_waiting(pipeline.program.id, "m-1") == []
    refused = pipeline.repo.list_expired(pipeline.program.id, "m-1")
    assert [(r["orderId"], r["reason"]) for r in refused] == [("b-0", "customer_mismatch")]
    window = pipeline.repo.get_window(pipeline.program.id, "m-1")
    assert window.counted_total == 3
    # Cy takes his whole tip back: his order's rating only is excluded.
    pipeline.deliver(tip_adjusted("b-2", "m-1", "c-cy", "10.00", "0.00", at + timedelta(hours=2)))
    item = pipeline.member("m-1")
    assert (item["ratingCount"], item["ratingAverage"]) == (2, Decimal("4.5"))
    for index, customer in enumerate(customers):
        view = admin(pipeline, "GET", "/v1/admin/members/m-1")["body"]
        counted = {r["orderId"]: r for r in view["counted"]}
        excluded = {r["orderId"]: r for r in view["excluded"]}
        assert ((f"b-{index}" in counted), (f"b-{index}" in excluded)) == (
            (True, False) if index < 2 else (False, True)
        ), customer


# -- retroactive exclusion, tip bait, expiry ----------------------------------------------------


def test_a_rater_crossing_the_line_corrects_the_members_averages(pipeline: Pipeline) -> None:
    start = NOW - timedelta(days=5)
    members = ("m-a", "m-b", "m-c")
    lows = []
    # Each member has 2 five-star ratings from a fair customer, then a 1-star from the grump.
    for index, member in enumerate(members):
        for k in range(2):
            order = f"{member}-fair-{k}"
            pipeline.deliver(order_completed(order, member, "fair", start + timedelta(minutes=k)))
            pipeline.deliver(
                rating_submitted(f"r-{order}", order, member, "fair", 5, start + timedelta(hours=1))
            )
        order = f"{member}-grump"
        at = start + timedelta(hours=2 + index)
        pipeline.deliver(order_completed(order, member, "grump", at))
        lows.append(rating_submitted(f"r-{order}", order, member, "grump", 1, at))
    pipeline.deliver(lows[0])
    pipeline.deliver(lows[1])
    # Two 1-star ratings: the grump is not hard to please yet (3 needed); the two members stand
    # at 11/3 < 4.0, ineligible, published once each.
    assert [pipeline.member(m)["eligible"] for m in members] == [False, False, True]
    flips = [e for e in pipeline.published if e.detail_type == "MemberEligibilityChanged"]
    assert [(e.detail["memberId"], e.detail["reason"]) for e in flips] == [
        ("m-a", "rating_below_floor"),
        ("m-b", "rating_below_floor"),
    ]
    assert flips[0].detail["average"] == Decimal("3.666")
    assert flips[0].detail["count"] == 3
    # The third low rating makes the grump hard to please: it is excluded, and so, now, are
    # the two counted before; the averages are corrected and both members are back.
    pipeline.deliver(lows[2])
    for member in members:
        item = pipeline.member(member)
        assert (item["ratingCount"], item["ratingAverage"], item["eligible"]) == (2, 5, True)
    back = [e for e in pipeline.published if e.detail.get("eligible") is True]
    assert [(e.detail["memberId"], e.detail["reason"]) for e in back] == [
        ("m-a", "rating_reinstated"),
        ("m-b", "rating_reinstated"),
    ]
    # Redelivering the low ratings changes nothing and publishes nothing.
    published = len(pipeline.published)
    for raw in lows:
        pipeline.deliver(raw)
    assert len(pipeline.published) == published
    rater = pipeline.repo.get_rater(pipeline.program.id, "grump")
    assert rater.reconcile is None


def test_an_eligibility_flip_bumps_the_members_version_and_refuses_a_stale_tier_decision(
    pipeline: Pipeline, table_name: str
) -> None:
    """The member item's ``v`` moves with every change of points or eligibility: a rating that
    flips eligibility bumps it by one (the real repository's write, not a fake's), so a tier
    decision computed from the member as it stood before is refused."""
    start, member = NOW - timedelta(days=2), "m-flip"
    for k in range(2):
        order = f"fair-{k}"
        pipeline.deliver(order_completed(order, member, "fair", start + timedelta(minutes=k)))
        pipeline.deliver(
            rating_submitted(f"r-{order}", order, member, "fair", 5, start + timedelta(hours=1))
        )
    pipeline.deliver(order_completed("grump", member, "grump", start + timedelta(hours=2)))
    before = pipeline.member(member)
    assert before["eligible"] is True
    version = int(before["v"])
    pipeline.deliver(rating_submitted("r-grump", "grump", member, "grump", 1, start))
    after = pipeline.member(member)
    assert after["eligible"] is False and after["eligibilityReason"] == "rating_below_floor"
    assert int(after["v"]) == version + 1
    # A decision made from the member before the flip (eligible, so keeping its tier) is
    # refused by the version; the same decision at the current version applies.
    tiers = TierRepository(table_name, boto3.client("dynamodb"))
    decision = evaluate(before, NOW.date(), pipeline.program, Trigger.STREAM)
    at = to_utc_iso(datetime.now(UTC) + timedelta(days=1))
    assert not tiers.apply_tier(pipeline.program.id, member, decision, version, at)
    assert tiers.apply_tier(pipeline.program.id, member, decision, version + 1, at)
    # A redelivery of the flip's rating writes nothing: the version stays.
    pipeline.deliver(rating_submitted("r-grump", "grump", member, "grump", 1, start))
    assert int(pipeline.member(member)["v"]) == version + 1


def test_a_crash_between_the_rating_and_its_raters_write_is_finished_by_the_redelivery(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rating at or above the floor reaches its rater by a write after the rating's
    transaction; a crash in between is finished by the rating's redelivery, once."""
    at = NOW - timedelta(hours=3)
    pipeline.deliver(order_completed("o-crash", "m-1", "c-1", at))
    raw = rating_submitted("r-crash", "o-crash", "m-1", "c-1", 5, at + timedelta(hours=1))
    day = (at + timedelta(hours=1)).astimezone(pipeline.program.zone).date().toordinal()
    real = RatingRepository.put_rater

    def crash(self: RatingRepository, program_id: str, state: RaterState) -> bool:
        raise RuntimeError("the function died before the rater's write")

    monkeypatch.setattr(RatingRepository, "put_rater", crash)
    with pytest.raises(RuntimeError):
        pipeline.moderation.lambda_handler(raw, FakeContext())
    # The rating is stored and counted; its rater does not know it yet.
    assert pipeline.repo.get_window(pipeline.program.id, "m-1").count == 1
    assert day not in pipeline.repo.get_rater(pipeline.program.id, "c-1").days
    monkeypatch.setattr(RatingRepository, "put_rater", real)
    for _ in range(3):  # the redelivery finishes it; more redeliveries change nothing
        pipeline.moderation.lambda_handler(raw, FakeContext())
        rater = pipeline.repo.get_rater(pipeline.program.id, "c-1")
        assert rater.days[day].count == 1 and rater.days[day].total == 5
        assert rater.holds(day, rating_mark("o-crash"))
        assert pipeline.repo.get_window(pipeline.program.id, "m-1").count == 1
    # A low rating commits with its rater: nothing follows its transaction.
    pipeline.deliver(order_completed("o-low", "m-1", "c-1", at + timedelta(minutes=5)))
    monkeypatch.setattr(RatingRepository, "put_rater", crash)
    pipeline.deliver(rating_submitted("r-low", "o-low", "m-1", "c-1", 2, at + timedelta(hours=1)))
    assert pipeline.repo.get_rater(pipeline.program.id, "c-1").days[day].count == 2


def test_tip_bait_after_the_rating_excludes_it_and_flags_the_customer_once(
    pipeline: Pipeline,
) -> None:
    start = NOW - timedelta(days=2)
    for index in range(3):
        order = f"o-{index}"
        pipeline.deliver(order_completed(order, "m-1", "baiter", start + timedelta(minutes=index)))
        pipeline.deliver(
            rating_submitted(f"r-{index}", order, "m-1", "baiter", 4, start + timedelta(hours=1))
        )
    assert pipeline.member("m-1")["ratingCount"] == 3
    for index in range(2):
        raw = tip_adjusted(
            f"o-{index}", "m-1", "baiter", "10.00", "0.00", start + timedelta(hours=5 + index)
        )
        pipeline.deliver(raw)
        pipeline.deliver(raw)
    item = pipeline.member("m-1")
    assert item["ratingCount"] == 1 and item["eligible"] is True  # not judged below 2
    flags = [e for e in pipeline.published if e.detail_type == "CustomerFlaggedForTipBaiting"]
    assert len(flags) == 1
    assert flags[0].detail["customerId"] == "baiter"
    assert sorted(flags[0].detail["orderIds"]) == ["o-0", "o-1"]
    assert flags[0].detail["windowDays"] == 30


def test_an_administrator_lifts_a_tip_baiting_flag_once_and_old_baits_stay_lifted(
    pipeline: Pipeline,
) -> None:
    start = NOW - timedelta(days=2)

    def bait(order: str, changed: datetime) -> dict[str, Any]:
        return tip_adjusted(order, "m-1", "baiter", "10.00", "0.00", changed)

    for index in range(3):
        delivered = start + timedelta(minutes=index)
        pipeline.deliver(order_completed(f"o-{index}", "m-1", "baiter", delivered))
    for index in range(2):
        pipeline.deliver(bait(f"o-{index}", start + timedelta(hours=5 + index)))
    assert pipeline.repo.get_rater(pipeline.program.id, "baiter").flagged_at is not None

    path = "/v1/admin/customers/baiter/tip-bait-flag"
    assert admin(pipeline, "DELETE", path)["status"] == 422  # a reason is required
    lifted = admin(pipeline, "DELETE", path, body={"reason": "tips disputed with support"})
    assert lifted["status"] == 200, lifted
    body = lifted["body"]
    assert (body["customerId"], body["flagged"], body["changed"]) == ("baiter", False, True)
    (clearance,) = body["clearances"]
    assert clearance["by"] == "admin-7" and clearance["reason"] == "tips disputed with support"
    assert sorted(clearance["orderIds"]) == ["o-0", "o-1"]
    pipeline.pump()
    cleared = [e for e in pipeline.published if e.detail_type == "CustomerTipBaitFlagCleared"]
    assert len(cleared) == 1 and cleared[0].detail["customerId"] == "baiter"

    # Again: nothing to lift, nothing audited.
    again = admin(pipeline, "DELETE", path, query={"reason": "double click"})
    assert again["status"] == 200 and again["body"]["changed"] is False
    assert len(again["body"]["clearances"]) == 1

    # A late tip change of an order delivered before the lift flags nobody again ...
    pipeline.deliver(bait("o-2", start + timedelta(hours=8)))
    assert pipeline.repo.get_rater(pipeline.program.id, "baiter").flagged_at is None
    # ... but baits of orders delivered after it count afresh.
    later = NOW + timedelta(days=1)
    for index in (3, 4):
        pipeline.deliver(order_completed(f"o-{index}", "m-1", "baiter", later))
        pipeline.deliver(bait(f"o-{index}", later + timedelta(hours=index)))
    state = pipeline.repo.get_rater(pipeline.program.id, "baiter")
    assert state.flagged_at is not None and sorted(state.flagged_orders) == ["o-3", "o-4"]
    assert len(state.clearances) == 1  # the audit trail survives the rater's own writes

    missing = admin(
        pipeline, "DELETE", "/v1/admin/customers/nobody/tip-bait-flag", query={"reason": "check"}
    )
    assert missing["status"] == 404


def test_a_rating_whose_order_never_comes_expires_with_its_reason(pipeline: Pipeline) -> None:
    raw = rating_submitted("r-lost", "o-lost", "m-1", "c-1", 5, NOW - timedelta(hours=1))
    pipeline.deliver(raw)
    waiting = pipeline.repo.get_waiting(pipeline.program.id, "m-1", "o-lost")
    assert waiting is not None and waiting.rating is not None
    since = datetime.fromisoformat(waiting.since)  # delivery time, from the channel
    assert waiting.expires_at == int((since + timedelta(days=7)).timestamp())
    # The order arrives after the wait: the rating is not applied, and why is kept.
    late = NOW + timedelta(days=8)
    pipeline.stream_time = late
    event = order_completed("o-lost", "m-1", "c-1", NOW - timedelta(hours=2))
    event["time"] = late.isoformat()
    pipeline.deliver(event)
    assert pipeline.repo.get_waiting(pipeline.program.id, "m-1", "o-lost") is None
    assert pipeline.member("m-1").get("ratingCount") is None
    view = admin(pipeline, "GET", "/v1/admin/members/m-1")
    assert view["status"] == 200
    assert view["body"]["expired"] == [
        {
            "ratingId": "r-lost",
            "orderId": "o-lost",
            "reason": "order_not_delivered_in_time",
            "at": view["body"]["expired"][0]["at"],
        }
    ]


# -- the admin API ------------------------------------------------------------------------------


def admin(pipeline: Pipeline, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = pipeline.admin.lambda_handler(admin_request(method, path, **kwargs), FakeContext())
    return {"status": response["statusCode"], "body": json.loads(response["body"])}


def rated_member(pipeline: Pipeline) -> None:
    start = NOW - timedelta(days=1)
    for index, stars in enumerate((5, 5, 3)):
        order = f"o-{index}"
        pipeline.deliver(
            order_completed(order, "m-1", f"c-{index}", start + timedelta(hours=index))
        )
        pipeline.deliver(
            rating_submitted(
                f"r-{index}", order, "m-1", f"c-{index}", stars, start + timedelta(hours=5)
            )
        )


def test_admin_routes_need_the_admin_scope_and_a_subject(pipeline: Pipeline) -> None:
    rated_member(pipeline)
    path = "/v1/admin/ratings/r-2/exclusion"
    denied = admin(pipeline, "POST", path, body={"reason": "rude"}, scopes=("loyalty/member",))
    assert denied["status"] == 403 and denied["body"]["error"]["code"] == "forbidden"
    anonymous = admin(pipeline, "POST", path, body={"reason": "rude"}, sub=None)
    assert anonymous["status"] == 401
    denied = admin(pipeline, "GET", "/v1/admin/members/m-1", scopes=())
    assert denied["status"] == 403
    assert pipeline.member("m-1")["ratingCount"] == 3


def test_admin_exclusion_and_restore_are_audited_and_move_the_average(
    pipeline: Pipeline,
) -> None:
    rated_member(pipeline)
    assert pipeline.member("m-1")["ratingAverage"] == Decimal("4.333")
    path = "/v1/admin/ratings/r-2/exclusion"
    excluded = admin(pipeline, "POST", path, body={"reason": "customer abused the shopper"})
    assert excluded["status"] == 200 and excluded["body"]["changed"] is True
    rating = excluded["body"]["rating"]
    assert rating["counted"] is False
    assert rating["exclusions"] == [
        {
            "reason": "admin",
            "by": "admin-7",
            "at": rating["exclusions"][0]["at"],
            "why": "customer abused the shopper",
        }
    ]
    assert pipeline.member("m-1")["ratingAverage"] == 5
    again = admin(pipeline, "POST", path, body={"reason": "twice"})
    assert again["status"] == 200 and again["body"]["changed"] is False
    view = admin(pipeline, "GET", "/v1/admin/members/m-1")["body"]
    assert [r["ratingId"] for r in view["counted"]] == ["r-1", "r-0"]
    assert [r["ratingId"] for r in view["excluded"]] == ["r-2"]
    assert view["rating"] == {"average": "5.000", "count": 2, "countedTotal": 2, "lastN": 3}
    restored = admin(pipeline, "DELETE", path, query={"reason": "appeal accepted"})
    assert restored["status"] == 200 and restored["body"]["rating"]["counted"] is True
    audit = restored["body"]["rating"]["audit"]
    assert [(a["action"], a["by"], a["why"]) for a in audit] == [
        ("exclude", "admin-7", "customer abused the shopper"),
        ("restore", "admin-7", "appeal accepted"),
    ]
    assert pipeline.member("m-1")["ratingAverage"] == Decimal("4.333")
    # Every slot's decision (the moderation's and the administrator's) names the rule version.
    assert isinstance(pipeline.repo, RatingRepository)
    slots = pipeline.repo.client.query(
        TableName=pipeline.repo.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :slot)",
        ExpressionAttributeValues={
            ":pk": {"S": member_pk(pipeline.program.id, "m-1")},
            ":slot": {"S": RATING_SK_PREFIX},
        },
    )["Items"]
    assert len(slots) == 3
    assert {slot["ruleVersion"]["S"] for slot in slots} == {pipeline.program.rule_version}


def test_admin_errors_name_the_field(pipeline: Pipeline) -> None:
    rated_member(pipeline)
    missing = admin(pipeline, "POST", "/v1/admin/ratings/r-404/exclusion", body={"reason": "x y z"})
    assert missing["status"] == 404 and missing["body"]["error"]["code"] == "not_found"
    no_reason = admin(pipeline, "POST", "/v1/admin/ratings/r-1/exclusion", body={})
    assert no_reason["status"] == 422 and no_reason["body"]["error"]["field"] == "reason"
    extra = admin(
        pipeline, "POST", "/v1/admin/ratings/r-1/exclusion", body={"reason": "abc", "by": "me"}
    )
    assert extra["status"] == 422 and extra["body"]["error"]["field"] == "by"
    not_json = admin(pipeline, "POST", "/v1/admin/ratings/r-1/exclusion", body="{oops")
    assert not_json["status"] == 400
    limit = admin(pipeline, "GET", "/v1/admin/members/m-1", query={"limit": "0"})
    assert limit["status"] == 422 and limit["body"]["error"]["field"] == "limit"
    unknown = admin(pipeline, "GET", "/v1/admin/members/nobody")
    assert unknown["status"] == 404


def test_admin_member_view_pages_newest_first(pipeline: Pipeline) -> None:
    rated_member(pipeline)
    first = admin(pipeline, "GET", "/v1/admin/members/m-1", query={"limit": "2"})["body"]
    assert [r["ratingId"] for r in first["counted"] + first["excluded"]] == ["r-2", "r-1"]
    assert first["nextToken"]
    second = admin(
        pipeline,
        "GET",
        "/v1/admin/members/m-1",
        query={"limit": "2", "nextToken": first["nextToken"]},
    )["body"]
    assert [r["ratingId"] for r in second["counted"]] == ["r-0"]
    assert second["nextToken"] is None
