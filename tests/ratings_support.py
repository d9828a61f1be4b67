"""Test support for rating moderation: events in their wire shape, a small program with small
thresholds, and a ``World`` that delivers events the way production does (order events to
order_ingestion, then the order item's change, parsed as the stream's router does, to
``apply_table_change``; ratings and tip changes to rating moderation, tip changes to
order_ingestion too)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from boto3.dynamodb.types import TypeSerializer

from shared.dal.dynamodb import av
from shared.dal.ledger import LedgerRepository
from shared.dal.ratings import RatingRepository
from shared.domain.errors import DomainError
from shared.domain.events import (
    InboundEvent,
    OrderCancelled,
    OrderCompleted,
    parse_detail,
    parse_envelope,
)
from shared.domain.keys import member_pk, order_sk
from shared.domain.orders import OrderStatus
from shared.domain.program import Program
from shared.domain.ratings import RATING_EVENTS
from shared.domain.timeutil import to_utc_iso
from shared.logic.ingestion import INGESTED_EVENTS, ingest
from shared.logic.moderation import ModerationResult, apply_table_change, moderate
from shared.programs import PROGRAMS_DIR, parse_program
from shared.rating_stream import rating_change
from shared.streams import Change
from tests.fake_rating_store import FakeRatingStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "events"


def small_program(**overrides: Any) -> Program:
    """cart-star with small thresholds, so that a few events reach every rule."""
    document = yaml.safe_load((PROGRAMS_DIR / "cart-star.yaml").read_text())
    document["rating"] = {"floor": "4.0", "reinstatement": None, "lastN": 3, "minCount": 2}
    document["moderation"] = {
        "hardToPlease": {"minRatings": 3, "windowDays": 10, "maxMean": "3.0"},
        "tipBait": {
            "minTipAtDelivery": "5.00",
            "minDropRatio": "0.5",
            "flagAfter": 2,
            # Long enough that the property tests' orders (10 to 40 days old) both age out
            # of the customer's record and count.
            "flagWindowDays": 30,
        },
        "outsideControlReasons": ["item_out_of_stock", "store_closed"],
        "orderWaitDays": 7,
    }
    for path, value in overrides.items():
        target = document
        *parents, last = path.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return parse_program(yaml.safe_dump(document))


def envelope(detail_type: str, detail: dict[str, Any], time: datetime = NOW) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-{detail_type}-{detail.get('ratingId') or detail.get('orderId')}",
        "detail-type": detail_type,
        "source": "tests",
        "time": time.isoformat(),
        "detail": detail,
    }


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def rating_submitted(
    rating_id: str,
    order_id: str,
    member_id: str,
    customer_id: str,
    stars: int,
    submitted_at: datetime,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    return envelope(
        "RatingSubmitted",
        {
            "ratingId": rating_id,
            "orderId": order_id,
            "memberId": member_id,
            "customerId": customer_id,
            "stars": stars,
            "reasons": list(reasons),
            "submittedAt": submitted_at.isoformat(),
        },
    )


def order_completed(
    order_id: str,
    member_id: str,
    customer_id: str,
    completed_at: datetime,
    tip: str = "10.00",
    batch_id: str | None = None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": customer_id,
        "completedAt": completed_at.isoformat(),
        "batchSize": 1,
        "total": money("40.00"),
        "tip": money(tip),
    }
    if batch_id is not None:
        detail["batchId"] = batch_id
    return envelope("OrderCompleted", detail)


def order_refunded(order_id: str, member_id: str, occurred_at: datetime) -> dict[str, Any]:
    return envelope(
        "OrderRefunded",
        {"orderId": order_id, "memberId": member_id, "occurredAt": occurred_at.isoformat()},
    )


def tip_adjusted(
    order_id: str,
    member_id: str,
    customer_id: str,
    previous: str,
    new: str,
    occurred_at: datetime,
    reason: str | None = None,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": customer_id,
        "previousTip": money(previous),
        "newTip": money(new),
        "occurredAt": occurred_at.isoformat(),
    }
    if reason is not None:
        detail["reason"] = reason
    return envelope("TipAdjusted", detail)


def parse(raw: dict[str, Any]) -> InboundEvent:
    parsed = parse_envelope(raw)
    return parse_detail(parsed.detail_type, parsed.detail, {**INGESTED_EVENTS, **RATING_EVENTS})


@dataclass
class World:
    program: Program
    repo: RatingRepository | FakeRatingStore
    now: datetime = NOW
    results: list[ModerationResult] = field(default_factory=list)
    rejected: list[tuple[str, DomainError]] = field(default_factory=list)
    attempts: int = 0
    simple_ledger: bool = False

    def _order_item(self, member_id: str, order_id: str) -> dict[str, Any] | None:
        if isinstance(self.repo, FakeRatingStore):
            return self.repo.order_image(member_id, order_id)
        return self.repo._get(member_pk(self.program.id, member_id), order_sk(order_id))

    def _put_order(self, member_id: str, order_id: str, item: dict[str, Any]) -> None:
        pk, sk = member_pk(self.program.id, member_id), order_sk(order_id)
        if isinstance(self.repo, FakeRatingStore):
            self.repo.put_order_image(member_id, order_id, {"pk": pk, "sk": sk, **item})
            return
        self.repo.client.put_item(
            TableName=self.repo.table_name,
            Item={
                "pk": {"S": pk},
                "sk": {"S": sk},
                **{name: av(value) for name, value in item.items()},
            },
        )

    def stored(self, member_id: str, sk: str) -> tuple[set[str], bool]:
        """The exclusions and counted flag stored on a slot."""
        if isinstance(self.repo, FakeRatingStore):
            slot = self.repo.stored_slot(member_id, sk)
            assert slot is not None
            return set(slot.exclusions), slot.counted
        item = self.repo._get(member_pk(self.program.id, member_id), sk) or {}
        return set(item["exclusions"]), bool(item["counted"])

    def _simple_ledger(self, event: InboundEvent) -> None:
        """What order_ingestion leaves on the order item, for the attributes rating moderation
        reads (completion, customer, tip at delivery, status), without the points: moto spends
        most of its time on the ledger's member-item expressions."""
        assert isinstance(event, OrderCompleted | OrderCancelled)
        item = self._order_item(event.member_id, event.order_id) or {
            "memberId": event.member_id,
            "orderId": event.order_id,
        }
        item = {k: v for k, v in item.items() if k not in {"pk", "sk"}}
        if isinstance(event, OrderCompleted):
            if "completedAt" in item:
                return
            item.update(
                customerId=event.customer_id,
                completedAt=to_utc_iso(event.completed_at),
                tipAtDelivery={"amount": event.tip.amount, "currency": event.tip.currency},
                status=(OrderStatus.VOID if "cancelledAt" in item else OrderStatus.CREDITED).value,
            )
        else:
            if "cancelledAt" in item or item.get("status") == OrderStatus.REVERSED.value:
                return
            if "completedAt" in item:
                item["status"] = OrderStatus.REVERSED.value
            else:
                item.update(cancelledAt=to_utc_iso(event.occurred_at), status="cancelled")
        self._put_order(event.member_id, event.order_id, item)

    def deliver(self, raw: dict[str, Any]) -> None:
        """Deliver one event (a copy) to every function that takes it."""
        raw = copy.deepcopy(raw)
        event = parse(raw)
        detail_type = raw["detail-type"]
        self.attempts += 1
        if detail_type in INGESTED_EVENTS:
            member_id, order_id = raw["detail"]["memberId"], raw["detail"]["orderId"]
            old = self._order_item(member_id, order_id)
            if not self.simple_ledger:
                assert isinstance(self.repo, RatingRepository)
                repo = self.repo
                ledger = LedgerRepository(repo.table_name, repo.client, repo.meter, repo._sleep)
                ingest(event, self.now, self.program, ledger, f"attempt-{self.attempts}")
            elif detail_type != "TipAdjusted":
                self._simple_ledger(event)
            new = self._order_item(member_id, order_id)
            if new != old:  # the stream carries the change to the consumer
                keys = {"sk": order_sk(order_id)}
                change = rating_change(Change(keys, old, new, self.now))
                if change is not None:
                    self.results += apply_table_change(change, self.now, self.program, self.repo)
        if detail_type in RATING_EVENTS:
            try:
                self.results.append(moderate(event, self.now, self.program, self.repo))
            except DomainError as error:
                self.rejected.append((detail_type, error))

    def member(self, member_id: str) -> dict[str, Any]:
        return self.repo.get_member(self.program.id, member_id) or {}


def admin_request(
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    sub: str | None = "admin-7",
    scopes: tuple[str, ...] = ("loyalty/admin",),
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request on an admin route, as the JWT authorizer passes it."""
    event: dict[str, Any] = json.loads((FIXTURES / "http_admin_request.json").read_text())
    context = event["requestContext"]
    context["http"]["method"] = method
    context["http"]["path"] = path
    event["rawPath"] = path
    event["routeKey"] = context["routeKey"] = f"{method} {path}"
    claims: dict[str, Any] = {"scope": " ".join(scopes), "token_use": "access"}
    if sub is not None:
        claims["sub"] = sub
    context["authorizer"]["jwt"] = {"claims": claims, "scopes": list(scopes) or None}
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["body"] = None if body is None else body if isinstance(body, str) else json.dumps(body)
    return event


def stream_record(
    old: dict[str, Any] | None, new: dict[str, Any] | None, at: datetime = NOW
) -> dict[str, Any]:
    """One record of the table's stream (NEW_AND_OLD_IMAGES), for the handlers that take it."""
    image = new if new is not None else old
    assert image is not None
    serializer = TypeSerializer()

    def serialized(item: dict[str, Any]) -> dict[str, Any]:
        return {name: serializer.serialize(value) for name, value in item.items()}

    record: dict[str, Any] = {
        "Keys": serialized({"pk": image["pk"], "sk": image["sk"]}),
        "ApproximateCreationDateTime": int(at.timestamp()),
        "SequenceNumber": "100",
        "SizeBytes": 200,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        record["OldImage"] = serialized(old)
    if new is not None:
        record["NewImage"] = serialized(new)
    name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    return {
        "eventID": "1",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": record,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/loyalty/stream/1",
    }
