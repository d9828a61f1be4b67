"""Orders and their ledger effects, as plans the repository carries out atomically.

Every change of points is a ledger entry stamped with the rule version that produced it. An
order's entries live on the order's own item (its credit, and later its reversal), because the
order id is what makes each effect happen exactly once: the credit and the reversal are each
guarded by a condition on that one item, inside the same transaction as the change to the
member's totals.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from msgspec import Struct

from .earning import order_points
from .events import OrderCancelled, OrderCompleted, TipAdjusted
from .money import Money
from .program import Program
from .timeutil import local_day
from .window import credit_bucket, is_live, prune_names
from .zones import in_zone, stored_zone


class OrderStatus(StrEnum):
    CREDITED = "credited"
    """Completed and credited."""
    REVERSED = "reversed"
    """Completed, credited, then cancelled or refunded: the reversal entry took the points back."""
    CANCELLED = "cancelled"
    """A cancellation arrived before the completion: the completion will credit nothing."""
    VOID = "void"
    """Completed after its cancellation had arrived: recorded, never credited."""
    PENDING = "pending"
    """Only a tip adjustment has arrived so far."""


class CreditPlan(Struct, frozen=True):
    """What crediting one completed order does."""

    points: int
    day: date
    """Calendar day of the completion in the member's time zone (else the program's)."""
    bucket: str | None
    """Window bucket to add to; None when the order is too old to count in any window."""
    prune: tuple[str, ...]
    rule_version: str
    zone: str | None = None
    """The member's zone the plan counted days in (None: the program's); the write holds only
    while the member item still names it."""


class ReversalPlan(Struct, frozen=True):
    points: int
    """Negative: what the reversal takes back (exactly what the credit gave)."""
    bucket: str | None
    prune: tuple[str, ...]
    rule_version: str
    zone: str | None = None
    """As ``CreditPlan.zone``."""


def plan_credit(
    program: Program, event: OrderCompleted, now: datetime, zone: str | None = None
) -> CreditPlan:
    """The credit of a completed order, its day and peak hours on the member's clock (``zone``,
    None: the program's), whenever the event arrives."""
    clock = in_zone(program, zone)
    today = local_day(now, clock.zone)
    day = local_day(event.completed_at, clock.zone)
    return CreditPlan(
        points=order_points(clock, event.completed_at, event.batch_size),
        day=day,
        bucket=credit_bucket(day, today, clock),
        prune=prune_names(today, clock),
        rule_version=program.rule_version,
        zone=stored_zone(program, zone),
    )


def plan_reversal(
    program: Program,
    credited_points: int,
    credited_bucket: str | None,
    now: datetime,
    zone: str | None = None,
) -> ReversalPlan:
    """Take back exactly ``credited_points``; from the window bucket only while it still counts
    (the bucket the credit chose, whatever the member's zone has become since)."""
    clock = in_zone(program, zone)
    today = local_day(now, clock.zone)
    live = credited_bucket is not None and is_live(credited_bucket, today, clock)
    return ReversalPlan(
        points=-credited_points,
        bucket=credited_bucket if live else None,
        prune=prune_names(today, clock),
        rule_version=program.rule_version,
        zone=stored_zone(program, zone),
    )


def reversal_kind(event: OrderCancelled) -> str:
    return event.detail_type


def tip_drop_threshold(baseline: Money, program: Program) -> Decimal | None:
    """The smallest drop from ``baseline`` (the tip at delivery) that baits: ``minDropRatio`` of
    it; None when the tip is below ``minTipAtDelivery`` (a small tip is never baited). A tip in
    another currency than the program's has no amount to compare with: the ratio alone."""
    rules = program.moderation.tip_bait
    if baseline.currency == program.currency and baseline.amount < rules.min_tip_at_delivery:
        return None
    return baseline.amount * rules.min_drop_ratio


def is_tip_baited(baseline: Money, adjustment: TipAdjusted, program: Program) -> bool:
    """Tip baiting: a tip at delivery of at least ``minTipAtDelivery`` ($5) lowered afterwards by
    at least ``minDropRatio`` (50%) of it, without a reason. ``baseline`` is the tip at
    delivery (not the previous step: two small cuts add up)."""
    if adjustment.reason is not None and adjustment.reason.strip():
        return False
    if adjustment.new_tip.currency != baseline.currency:
        return False
    threshold = tip_drop_threshold(baseline, program)
    drop = baseline.amount - adjustment.new_tip.amount
    return threshold is not None and drop > 0 and drop >= threshold


class Reversal(Struct, frozen=True):
    kind: str
    """``OrderCancelled`` or ``OrderRefunded``."""
    occurred_at: str
    points: int
    rule_version: str
    by: str


class OrderRecord(Struct, frozen=True):
    """What the ledger knows of one order (the repository's view of the order item)."""

    member_id: str
    order_id: str
    status: OrderStatus
    customer_id: str | None = None
    completed_at: str | None = None
    cancelled_at: str | None = None
    points: int = 0
    bucket: str | None = None
    rule_version: str | None = None
    credited_by: str | None = None
    cancelled_by: str | None = None
    total: Money | None = None
    tip_at_delivery: Money | None = None
    tip: Money | None = None
    tip_baseline: Money | None = None
    tip_adjusted_at: str | None = None
    tip_baited: bool = False
    reversal: Reversal | None = None
    batch_size: int = 1
    """Orders this completion counts for (an event for a whole batch counts its size)."""
    batch_id: str | None = None

    @property
    def tip_reference(self) -> Money | None:
        """The tip at delivery, or, while the completion has not arrived, the tip before the
        first adjustment (the same amount, as the customer saw it)."""
        return self.tip_at_delivery or self.tip_baseline
