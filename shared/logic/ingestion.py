"""Use case: turn order events into ledger entries, exactly once.

One function per event type, each a small decision over what the repository reports. The
repository enforces the conditions; this module decides what a failed condition means
(a duplicate, our own earlier write after an ambiguous retry, a race to look at again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from msgspec import Struct

from shared.domain.errors import InvalidInput
from shared.domain.events import (
    InboundEvent,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    TipAdjusted,
)
from shared.domain.money import Money
from shared.domain.orders import (
    CreditPlan,
    OrderRecord,
    OrderStatus,
    ReversalPlan,
    is_tip_baited,
    plan_credit,
    plan_reversal,
)
from shared.domain.program import Program
from shared.logic.ports import TransientConflict, WriteResult
from shared.logic.zones import MAX_ZONE_GUESSES, learn_zone, zone_hint

INGESTED_EVENTS: dict[str, type[InboundEvent]] = {
    model.detail_type: model
    for model in (OrderCompleted, OrderCancelled, OrderRefunded, TipAdjusted)
}

MAX_LOOKS = 4
"""How many times a reversal re-reads the order when a concurrent write changed it meanwhile."""


class Outcome(StrEnum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    VOIDED = "voided"
    """Completion recorded without points: its cancellation had arrived first."""
    REVERSED = "reversed"
    CANCELLED_BEFORE_COMPLETION = "cancelled_before_completion"
    ALREADY_REVERSED = "already_reversed"
    TIP_RECORDED = "tip_recorded"
    TIP_STALE = "tip_stale"
    """The adjustment was seen before, or a later one is already recorded."""
    PARTIAL_REFUND = "partial_refund"
    """A refund of part of a delivered order: the shopper keeps the order's points (customer
    programs take back their share)."""


class IngestResult(Struct, frozen=True):
    event_type: str
    member_id: str
    order_id: str
    outcome: Outcome
    points: int = 0
    """Change to the member's points made by this delivery (0 for duplicates)."""
    tip_baited: bool | None = None
    void: bool = False
    """The order is void (its cancellation came before its completion), whether this delivery
    recorded it or an earlier one did: the other programs must not credit it either."""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "eventType": self.event_type,
            "memberId": self.member_id,
            "orderId": self.order_id,
            "outcome": self.outcome.value,
            "points": self.points,
        }
        if self.tip_baited is not None:
            body["tipBaited"] = self.tip_baited
        return body


class LedgerStore(Protocol):
    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None: ...

    def credit_order(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult: ...

    def record_void_completion(
        self, program_id: str, event: OrderCompleted, plan: CreditPlan, attempt_id: str
    ) -> WriteResult: ...

    def reverse_order(
        self,
        program_id: str,
        order: OrderRecord,
        event: OrderCancelled,
        plan: ReversalPlan,
        attempt_id: str,
    ) -> WriteResult: ...

    def record_early_cancellation(
        self, program_id: str, event: OrderCancelled, attempt_id: str
    ) -> WriteResult: ...

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def set_member_zone(
        self, program_id: str, member_id: str, zone: str | None, at: str, read_at: str | None
    ) -> bool: ...

    def record_tip_adjustment(
        self,
        program_id: str,
        event: TipAdjusted,
        baseline: Money,
        tip_baited: bool,
        attempt_id: str,
    ) -> WriteResult: ...


def check_order_total(event: OrderCompleted, programs: Sequence[Program]) -> None:
    """Refuse an order whose total is above a program's ``limits.maxOrderTotal``: never
    clamped, nothing written (InvalidInput naming the field: 422, or the failure
    destination)."""
    for program in programs:
        cap = program.limits.max_order_total
        if event.total.amount > cap:
            raise InvalidInput(
                f"detail.total.amount: {event.total.amount} is above the limit of {cap} "
                f"(program {program.id}, limits.maxOrderTotal)",
                field="detail.total.amount",
            )


def complete_order(
    event: OrderCompleted, now: datetime, program: Program, store: LedgerStore, attempt_id: str
) -> IngestResult:
    check_order_total(event, [program])

    def result(outcome: Outcome, points: int = 0, void: bool = False) -> IngestResult:
        return IngestResult(
            event.detail_type, event.member_id, event.order_id, outcome, points, void=void
        )

    for _ in range(MAX_ZONE_GUESSES):
        plan = plan_credit(program, event, now, zone_hint(program.id, event.member_id))
        written = store.credit_order(program.id, event, plan, attempt_id)
        if not written.zone_refused:
            break
        learn_zone(program.id, event.member_id, written.member_zone)
    else:
        raise TransientConflict(f"the zone of {event.member_id} kept changing")
    if written.applied:
        return result(Outcome.CREDITED, plan.points)
    existing = written.existing
    if existing is not None and existing.credited_by == attempt_id:
        # Our own write, committed by a try whose answer was lost.
        return result(Outcome.CREDITED, plan.points)
    if existing is not None and existing.completed_at is None and existing.cancelled_at:
        voided = store.record_void_completion(program.id, event, plan, attempt_id)
        if voided.applied:
            return result(Outcome.VOIDED, void=True)
        existing = voided.existing or store.get_order(program.id, event.member_id, event.order_id)
    void = existing is not None and existing.status is OrderStatus.VOID
    return result(Outcome.DUPLICATE, void=void)


def is_partial_refund(event: OrderCancelled, order: OrderRecord) -> bool:
    """A refund of less than the order's total (a missing item, say) is the customer's matter:
    the shopper delivered the order. A whole refund (no amount, or the total) reverses it."""
    if not isinstance(event, OrderRefunded) or event.amount is None or order.total is None:
        return False
    same_currency = event.amount.currency == order.total.currency
    return same_currency and event.amount.amount < order.total.amount


def reverse_order(  # noqa: PLR0911 (one return per outcome reads best)
    event: OrderCancelled, now: datetime, program: Program, store: LedgerStore, attempt_id: str
) -> IngestResult:
    def result(outcome: Outcome, points: int = 0) -> IngestResult:
        return IngestResult(event.detail_type, event.member_id, event.order_id, outcome, points)

    for _ in range(MAX_LOOKS):
        order = store.get_order(program.id, event.member_id, event.order_id)
        if order is None or (order.completed_at is None and order.cancelled_at is None):
            if isinstance(event, OrderRefunded) and event.amount is not None:
                # A refund of an amount before the order's completion: the shopper keeps the
                # order (a whole refund comes without an amount, or after the completion).
                return result(Outcome.PARTIAL_REFUND)
            if store.record_early_cancellation(program.id, event, attempt_id).applied:
                return result(Outcome.CANCELLED_BEFORE_COMPLETION)
            continue  # the completion (or another cancellation) won the race: look again
        if order.status is OrderStatus.CREDITED and is_partial_refund(event, order):
            return result(Outcome.PARTIAL_REFUND)
        if order.status is OrderStatus.CREDITED:
            zone = zone_hint(program.id, event.member_id)
            plan = plan_reversal(program, order.points, order.bucket, now, zone)
            written = store.reverse_order(program.id, order, event, plan, attempt_id)
            if written.applied:
                return result(Outcome.REVERSED, plan.points)
            if written.zone_refused:
                learn_zone(program.id, event.member_id, written.member_zone)
            continue
        if order.reversal is not None and order.reversal.by == attempt_id:
            return result(Outcome.REVERSED, order.reversal.points)
        if order.cancelled_by == attempt_id and order.status is OrderStatus.CANCELLED:
            return result(Outcome.CANCELLED_BEFORE_COMPLETION)
        return result(Outcome.ALREADY_REVERSED)
    raise TransientConflict(f"order {event.order_id} kept changing while being reversed")


def adjust_tip(
    event: TipAdjusted, now: datetime, program: Program, store: LedgerStore, attempt_id: str
) -> IngestResult:
    order = store.get_order(program.id, event.member_id, event.order_id)
    baseline = (order.tip_reference if order else None) or event.previous_tip
    baited = is_tip_baited(baseline, event, program)
    written = store.record_tip_adjustment(program.id, event, baseline, baited, attempt_id)
    outcome = Outcome.TIP_RECORDED if written.applied else Outcome.TIP_STALE
    return IngestResult(
        event.detail_type, event.member_id, event.order_id, outcome, 0, tip_baited=baited
    )


def ingest(
    event: InboundEvent, now: datetime, program: Program, store: LedgerStore, attempt_id: str
) -> IngestResult:
    """Apply one validated event. ``now`` is when it was delivered (from the envelope)."""
    if isinstance(event, OrderCompleted):
        return complete_order(event, now, program, store, attempt_id)
    if isinstance(event, OrderCancelled):  # OrderRefunded too
        return reverse_order(event, now, program, store, attempt_id)
    if isinstance(event, TipAdjusted):
        return adjust_tip(event, now, program, store, attempt_id)
    raise TypeError(f"no use case for {type(event).__name__}")
