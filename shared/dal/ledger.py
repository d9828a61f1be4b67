"""The ledger: orders, credits, reversals and the member's totals (what order ingestion writes).

Exactly-once is enforced here, by conditions on keys derived from upstream ids (the order id),
evaluated inside the same ``TransactWriteItems`` as the effect on the member's totals. The
repository is mechanical: it carries out plans the domain computed and reports what it found
when a condition fails; the use cases in ``shared.logic.ingestion`` decide what that means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.events import OrderCancelled, OrderCompleted, TipAdjusted
from shared.domain.keys import MEMBER_SK, ORDER_SK_PREFIX, order_sk
from shared.domain.money import Money
from shared.domain.orders import CreditPlan, OrderRecord, OrderStatus, ReversalPlan
from shared.domain.timeutil import to_compact_utc, to_utc_iso
from shared.domain.window import bucket_increment
from shared.domain.zones import ZONE_ATTR, member_zone_name
from shared.logic.ports import WriteResult

from .dynamodb import DynamoRepository, Update, from_item, money, order_record


def _order_or_none(item: Mapping[str, Any] | None) -> OrderRecord | None:
    """The order an ALL_OLD answer carries; None for no item or an item of another kind (a
    conditional write on a member item returns the member as it stood)."""
    if not item or not str(item.get("sk", {}).get("S", "")).startswith(ORDER_SK_PREFIX):
        return None
    return order_record(from_item(item))


class LedgerRepository(DynamoRepository):
    """Orders and the member's totals, in the member's partition (satisfies
    ``shared.logic.ingestion.LedgerStore``)."""

    def _conditional_update(self, request: dict[str, Any]) -> WriteResult:
        old = self._conditional_write("UpdateItem", request)
        return WriteResult(applied=True) if old is None else WriteResult(False, _order_or_none(old))

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
        return order_record(from_item(item)) if item else None

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
        zone: str | None,
    ) -> dict[str, Any]:
        """The member item's part of a credit or reversal. ``first_seen`` (``memberSince``) is
        in the member item's compact form (``to_compact_utc``). It holds only while the member
        item names ``zone`` (None: no zone of its own), the zone the plan counted days in; a
        refusal returns the member item as it stood, which names the right one."""
        update = Update()
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
        attr = update.name(ZONE_ATTR)
        condition = (
            f"attribute_not_exists({attr})" if zone is None else f"{attr} = {update.value(zone)}"
        )
        request = update.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), condition
        )
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return request

    @staticmethod
    def _refusal(reasons: list[dict[str, Any]]) -> WriteResult:
        """What a refused credit or reversal found: the order as it stood, or, when only the
        member's zone differed from the plan's, the zone the member item names."""
        existing = LedgerRepository._existing(reasons, 0)
        order_refused = reasons[0].get("Code") == "ConditionalCheckFailed" if reasons else False
        member = reasons[1] if len(reasons) > 1 else {}
        if not order_refused and member.get("Code") == "ConditionalCheckFailed":
            item = from_item(member["Item"]) if member.get("Item") else {}
            return WriteResult(False, None, zone_refused=True, member_zone=member_zone_name(item))
        return WriteResult(applied=False, existing=existing)

    # -- writes -----------------------------------------------------------------------------

    def credit_order(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult:
        """Record the completion and credit its points, unless the order was completed or
        cancelled before (then nothing changes and the item as it stood is returned)."""
        order = Update()
        for attribute, value in (
            ("memberId", event.member_id),
            ("orderId", event.order_id),
            ("customerId", event.customer_id),
            ("completedAt", to_utc_iso(event.completed_at)),
            ("day", plan.day.isoformat()),
            ("batchSize", event.batch_size),
            ("total", money(event.total)),
            ("tipAtDelivery", money(event.tip)),
            ("points", plan.points),
            ("ruleVersion", plan.rule_version),
            ("status", OrderStatus.CREDITED.value),
            ("creditedBy", attempt_id),
        ):
            order.set(attribute, value)
        order.set_if_absent("tip", money(event.tip))
        if event.batch_id is not None:
            order.set("batchId", event.batch_id)
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
            # The badge counts orders: one event for a batch completes batchSize of them.
            event.batch_size,
            plan.bucket,
            plan.prune,
            to_compact_utc(event.completed_at),
            plan.zone,
        )
        reasons = self._transact([{"Update": order_request}, {"Update": member_request}])
        if reasons is None:
            return WriteResult(applied=True)
        return self._refusal(reasons)

    def record_void_completion(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult:
        """Record a completion whose cancellation arrived first: no points, ever."""
        order = Update()
        for attribute, value in (
            ("customerId", event.customer_id),
            ("completedAt", to_utc_iso(event.completed_at)),
            ("day", plan.day.isoformat()),
            ("batchSize", event.batch_size),
            ("total", money(event.total)),
            ("tipAtDelivery", money(event.tip)),
            ("status", OrderStatus.VOID.value),
            ("creditedBy", attempt_id),
        ):
            order.set(attribute, value)
        order.set_if_absent("tip", money(event.tip))
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
        update = Update()
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
            program_id,
            order.member_id,
            plan.points,
            -order.batch_size,
            plan.bucket,
            plan.prune,
            None,
            plan.zone,
        )
        reasons = self._transact([{"Update": request}, {"Update": member_request}])
        if reasons is None:
            return WriteResult(applied=True)
        return self._refusal(reasons)

    def set_member_zone(
        self, program_id: str, member_id: str, zone: str | None, at: str, read_at: str | None
    ) -> bool:
        """Keep the member's zone (None: the program's), only while the member's ``profileAt``
        is as read (``read_at``, None: no profile yet) and older than ``at``. Bumps the
        member's version: their days move, so a tier decision computed on the old clock must
        not apply, and the stream evaluates the member again on the new one."""
        update = Update()
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        update.set("profileAt", at)
        if zone is None:
            update.remove(ZONE_ATTR)
        else:
            update.set(ZONE_ATTR, zone)
        update.add("v", 1)
        name = update.name("profileAt")
        condition = (
            f"attribute_not_exists({name})"
            if read_at is None
            else f"{name} = {update.value(read_at)}"
        )
        condition += f" AND (attribute_not_exists({name}) OR {name} < {update.value(at)})"
        return self._update_if(
            update.request(self.table_name, self._key(program_id, member_id, MEMBER_SK), condition)
        )

    def record_early_cancellation(
        self, program_id: str, event: OrderCancelled, attempt_id: str
    ) -> WriteResult:
        """Keep a cancellation that arrived before its completion, so that the completion is
        then recorded without credit."""
        update = Update()
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
        update = Update()
        update.set_if_absent("memberId", event.member_id)
        update.set_if_absent("orderId", event.order_id)
        update.set_if_absent("customerId", event.customer_id)
        update.set_if_absent("status", OrderStatus.PENDING.value)
        update.set_if_absent("tipBaseline", money(baseline))
        update.set("tip", money(event.new_tip))
        update.set("tipPrevious", money(event.previous_tip))
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
