"""The DynamoDB repository: the only place where boto3 touches data.

Exactly-once is enforced here, by conditions on keys derived from upstream ids (the order id),
evaluated inside the same ``TransactWriteItems`` as the effect on the member's totals. The
repository is mechanical: it carries out plans the domain computed and reports what it found
when a condition fails; the use cases in ``shared.logic`` decide what that means.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from shared.domain.events import OrderCancelled, OrderCompleted, TipAdjusted
from shared.domain.money import Money
from shared.domain.orders import (
    CreditPlan,
    OrderRecord,
    OrderStatus,
    Reversal,
    ReversalPlan,
)
from shared.domain.timeutil import to_compact_utc, to_utc_iso
from shared.domain.window import bucket_increment
from shared.logic.ports import TransientConflict, WriteResult

from .capacity import CapacityMeter
from .keys import MEMBER_SK, ORDER_SK_PREFIX, member_pk, order_sk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

T = TypeVar("T")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

MAX_TRANSACTION_ATTEMPTS = 8


def _av(value: Any) -> dict[str, Any]:
    return dict(_serializer.serialize(value))


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _money(value: Money) -> dict[str, Any]:
    return {"amount": value.amount, "currency": value.currency}


def _money_or_none(value: Any) -> Money | None:
    if not isinstance(value, Mapping):
        return None
    return Money(amount=Decimal(value["amount"]), currency=str(value["currency"]))


def order_record(item: Mapping[str, Any]) -> OrderRecord:
    """The domain view of an order item (already deserialized)."""
    reversal = item.get("reversal")
    return OrderRecord(
        member_id=str(item["memberId"]),
        order_id=str(item["orderId"]),
        status=OrderStatus(item.get("status", OrderStatus.PENDING)),
        customer_id=item.get("customerId"),
        completed_at=item.get("completedAt"),
        cancelled_at=item.get("cancelledAt"),
        points=int(item.get("points", 0)),
        bucket=item.get("bucket"),
        rule_version=item.get("ruleVersion"),
        credited_by=item.get("creditedBy"),
        cancelled_by=item.get("cancelledBy"),
        tip_at_delivery=_money_or_none(item.get("tipAtDelivery")),
        tip=_money_or_none(item.get("tip")),
        tip_baseline=_money_or_none(item.get("tipBaseline")),
        tip_adjusted_at=item.get("tipAdjustedAt"),
        tip_baited=bool(item.get("tipBaited", False)),
        reversal=Reversal(
            kind=str(reversal["kind"]),
            occurred_at=str(reversal["occurredAt"]),
            points=int(reversal["points"]),
            rule_version=str(reversal["ruleVersion"]),
            by=str(reversal["by"]),
        )
        if isinstance(reversal, Mapping)
        else None,
    )


def _order_or_none(item: Mapping[str, Any] | None) -> OrderRecord | None:
    """The order an ALL_OLD answer carries; None for no item or an item of another kind (a
    conditional write on a member item returns the member as it stood)."""
    if not item or not str(item.get("sk", {}).get("S", "")).startswith(ORDER_SK_PREFIX):
        return None
    return order_record(_from_item(item))


class _Update:
    """Builds one UpdateExpression with placeholder names and values."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _av(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")

    def set_if_absent(self, attribute: str, value: Any) -> None:
        name = self.name(attribute)
        self.sets.append(f"{name} = if_not_exists({name}, {self.value(value)})")

    def add(self, attribute: str, value: int) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(value)}")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        if self.adds:
            parts.append("ADD " + ", ".join(self.adds))
        return " ".join(parts)

    def request(
        self, table: str, key: dict[str, Any], condition: str | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if condition:
            request["ConditionExpression"] = condition
        return request


class DynamoRepository:
    """Ledger and member totals in one DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        meter: CapacityMeter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.meter = meter if meter is not None else CapacityMeter()
        self._sleep = sleep

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, operation: str, function: Callable[..., Any], **request: Any) -> Any:
        started = time.perf_counter()
        try:
            response = function(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as exc:
            self.meter.add(operation, dict(exc.response), time.perf_counter() - started)
            raise
        self.meter.add(operation, response, time.perf_counter() - started)
        return response

    def _key(self, program_id: str, member_id: str, sk: str) -> dict[str, Any]:
        return {"pk": _av(member_pk(program_id, member_id)), "sk": _av(sk)}

    def _transact(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None when it applied, else the cancellation reasons.

        Conflicts with concurrent transactions are retried with jittered backoff; a condition
        failure is returned to the caller (with the item as it stood, ALL_OLD). Each try gets
        its own ClientRequestToken, which botocore's own retries of that try reuse: a retry
        after a lost response then succeeds without applying twice.
        """
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                self._call(
                    "TransactWriteItems",
                    self.client.transact_write_items,
                    TransactItems=list(items),
                    ClientRequestToken=str(uuid.uuid4()),
                )
                return None
            except ClientError as exc:
                error = exc.response.get("Error", {}).get("Code")
                reasons: list[dict[str, Any]] = [
                    dict(reason) for reason in exc.response.get("CancellationReasons", [])
                ]
                codes = {reason.get("Code") for reason in reasons}
                if error == "TransactionCanceledException" and "ConditionalCheckFailed" in codes:
                    return reasons
                retryable = error in {
                    "TransactionConflictException",
                    "TransactionInProgressException",
                } or (
                    error == "TransactionCanceledException"
                    and codes & {"TransactionConflict", "ThrottlingError"}
                )
                if not retryable:
                    raise
                self._sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311
        raise TransientConflict(
            f"transaction kept conflicting after {MAX_TRANSACTION_ATTEMPTS} tries"
        )

    def _conditional_update(self, request: dict[str, Any]) -> WriteResult:
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                self._call(
                    "UpdateItem",
                    self.client.update_item,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                )
                return WriteResult(applied=True)
            except ClientError as exc:
                error = exc.response.get("Error", {}).get("Code")
                if error == "ConditionalCheckFailedException":
                    item: Any = exc.response.get("Item")
                    return WriteResult(False, _order_or_none(item))
                if error != "TransactionConflictException":
                    raise
                self._sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311
        raise TransientConflict(f"update kept conflicting after {MAX_TRANSACTION_ATTEMPTS} tries")

    @staticmethod
    def _existing(reasons: list[dict[str, Any]], index: int) -> OrderRecord | None:
        return _order_or_none(reasons[index].get("Item") if index < len(reasons) else None)

    # -- reads ------------------------------------------------------------------------------

    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, order_sk(order_id)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return order_record(_from_item(item)) if item else None

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        """The member item's attributes (totals and window buckets), or None."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, MEMBER_SK),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _from_item(item) if item else None

    # -- member totals ------------------------------------------------------------------------

    def _member_update(
        self,
        program_id: str,
        member_id: str,
        points: int,
        orders: int,
        bucket: str | None,
        prune: Sequence[str],
        first_seen: str | None,
    ) -> dict[str, Any]:
        """The member item's part of a credit or reversal. ``first_seen`` (``memberSince``) is
        in the member item's compact form (``to_compact_utc``)."""
        update = _Update()
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        if first_seen is not None:
            update.set_if_absent("memberSince", first_seen)
        update.add("lifetimePoints", points)
        update.add("ordersCompleted", orders)
        # The member's version: every change of points or eligibility bumps it, and a tier
        # decision applies only to the version it was computed from.
        update.add("v", 1)
        target = None
        if bucket is not None:
            # Day buckets are packed 7 to an attribute: the day's digits get the points.
            target, amount = bucket_increment(bucket, points)
            update.add(target, amount)
        for name in prune:
            if name != target:
                update.remove(name)
        return update.request(self.table_name, self._key(program_id, member_id, MEMBER_SK))

    # -- writes -----------------------------------------------------------------------------

    def credit_order(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult:
        """Record the completion and credit its points, unless the order was completed or
        cancelled before (then nothing changes and the item as it stood is returned)."""
        order = _Update()
        for attribute, value in (
            ("memberId", event.member_id),
            ("orderId", event.order_id),
            ("customerId", event.customer_id),
            ("completedAt", to_utc_iso(event.completed_at)),
            ("day", plan.day.isoformat()),
            ("batchSize", event.batch_size),
            ("total", _money(event.total)),
            ("tipAtDelivery", _money(event.tip)),
            ("points", plan.points),
            ("ruleVersion", plan.rule_version),
            ("status", OrderStatus.CREDITED.value),
            ("creditedBy", attempt_id),
        ):
            order.set(attribute, value)
        order.set_if_absent("tip", _money(event.tip))
        if plan.bucket is not None:
            order.set("bucket", plan.bucket)
        order_request = order.request(
            self.table_name,
            self._key(program_id, event.member_id, order_sk(event.order_id)),
            "attribute_not_exists(completedAt) AND attribute_not_exists(cancelledAt)",
        )
        order_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member_request = self._member_update(
            program_id,
            event.member_id,
            plan.points,
            1,
            plan.bucket,
            plan.prune,
            to_compact_utc(event.completed_at),
        )
        reasons = self._transact([{"Update": order_request}, {"Update": member_request}])
        if reasons is None:
            return WriteResult(applied=True)
        return WriteResult(applied=False, existing=self._existing(reasons, 0))

    def record_void_completion(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult:
        """Record a completion whose cancellation arrived first: no points, ever."""
        order = _Update()
        for attribute, value in (
            ("customerId", event.customer_id),
            ("completedAt", to_utc_iso(event.completed_at)),
            ("day", plan.day.isoformat()),
            ("batchSize", event.batch_size),
            ("total", _money(event.total)),
            ("tipAtDelivery", _money(event.tip)),
            ("status", OrderStatus.VOID.value),
            ("creditedBy", attempt_id),
        ):
            order.set(attribute, value)
        order.set_if_absent("tip", _money(event.tip))
        return self._conditional_update(
            order.request(
                self.table_name,
                self._key(program_id, event.member_id, order_sk(event.order_id)),
                "attribute_not_exists(completedAt) AND attribute_exists(cancelledAt)",
            )
        )

    def reverse_order(
        self,
        program_id: str,
        order: OrderRecord,
        event: OrderCancelled,
        plan: ReversalPlan,
        attempt_id: str,
    ) -> WriteResult:
        """Append the reversal entry and take the points back, once: only while the order is
        still ``credited``. The credit entry itself is never changed."""
        update = _Update()
        update.set("status", OrderStatus.REVERSED.value)
        update.set(
            "reversal",
            {
                "kind": event.detail_type,
                "occurredAt": to_utc_iso(event.occurred_at),
                "points": plan.points,
                "ruleVersion": plan.rule_version,
                "by": attempt_id,
            },
        )
        condition = (
            f"{update.name('status')} = {update.value(OrderStatus.CREDITED.value)} "
            f"AND attribute_not_exists({update.name('reversal')})"
        )
        request = update.request(
            self.table_name,
            self._key(program_id, order.member_id, order_sk(order.order_id)),
            condition,
        )
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member_request = self._member_update(
            program_id, order.member_id, plan.points, -1, plan.bucket, plan.prune, None
        )
        reasons = self._transact([{"Update": request}, {"Update": member_request}])
        if reasons is None:
            return WriteResult(applied=True)
        return WriteResult(applied=False, existing=self._existing(reasons, 0))

    def record_early_cancellation(
        self, program_id: str, event: OrderCancelled, attempt_id: str
    ) -> WriteResult:
        """Keep a cancellation that arrived before its completion, so that the completion is
        then recorded without credit."""
        update = _Update()
        update.set("memberId", event.member_id)
        update.set("orderId", event.order_id)
        update.set("cancelledAt", to_utc_iso(event.occurred_at))
        update.set("cancelKind", event.detail_type)
        update.set("status", OrderStatus.CANCELLED.value)
        update.set("cancelledBy", attempt_id)
        return self._conditional_update(
            update.request(
                self.table_name,
                self._key(program_id, event.member_id, order_sk(event.order_id)),
                "attribute_not_exists(completedAt) AND attribute_not_exists(cancelledAt)",
            )
        )

    def record_tip_adjustment(
        self,
        program_id: str,
        event: TipAdjusted,
        baseline: Money,
        tip_baited: bool,
        attempt_id: str,
    ) -> WriteResult:
        """Record the latest tip change (older or repeated adjustments change nothing)."""
        update = _Update()
        update.set_if_absent("memberId", event.member_id)
        update.set_if_absent("orderId", event.order_id)
        update.set_if_absent("customerId", event.customer_id)
        update.set_if_absent("status", OrderStatus.PENDING.value)
        update.set_if_absent("tipBaseline", _money(baseline))
        update.set("tip", _money(event.new_tip))
        update.set("tipPrevious", _money(event.previous_tip))
        update.set("tipAdjustedAt", to_utc_iso(event.occurred_at))
        update.set("tipReason", event.reason)
        update.set("tipBaited", tip_baited)
        update.set("tipAdjustedBy", attempt_id)
        at = update.name("tipAdjustedAt")
        later = update.value(to_utc_iso(event.occurred_at))
        return self._conditional_update(
            update.request(
                self.table_name,
                self._key(program_id, event.member_id, order_sk(event.order_id)),
                f"attribute_not_exists({at}) OR {at} < {later}",
            )
        )
