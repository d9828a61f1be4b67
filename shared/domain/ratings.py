"""Ratings: the ``RatingSubmitted`` event, the moderation record of a rated order, its
exclusions, and the member's eligibility (docs/ratings.md).

A rating is kept on a *slot*: one record per order of the member that was rated or whose tip
changed. The slot holds every input of the moderation decision (the rating, the order's state,
the tip changes, the hard-to-please verdict, an administrator's exclusion), so that whether the
rating counts is a pure function of the slot (``exclusions``). Use cases change one input and
let the function decide; nothing else stores a verdict.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from msgspec import Struct
from msgspec.structs import replace
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from .events import InboundEvent, TipAdjusted
from .ids import (
    CustomerId,
    CustomerIdField,
    Identifier,
    MemberId,
    MemberIdField,
    OrderId,
    OrderIdField,
)
from .money import Money
from .orders import OrderStatus, is_tip_baited
from .program import Program, RatingFloor
from .timeutil import Instant, to_utc_iso

ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

MAX_TIP_CHANGES = 20
"""Tip changes kept per order (a customer changes a tip once or twice; more is noise)."""
MAX_AUDIT_ENTRIES = 50


class RatingSubmitted(InboundEvent):
    detail_type: ClassVar[str] = "RatingSubmitted"

    rating_id: Identifier
    order_id: OrderIdField
    member_id: MemberIdField
    customer_id: CustomerIdField
    stars: Annotated[int, Field(ge=1, le=5, strict=True)]
    reasons: Annotated[tuple[ReasonCode, ...], Field(max_length=20)] = ()
    submitted_at: Instant

    @field_validator("customer_id")
    @classmethod
    def _never_self(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("member_id"):
            raise ValueError("a rater never rates themselves: customerId equals memberId")
        return value


RATING_EVENTS: dict[str, type[InboundEvent]] = {
    model.detail_type: model for model in (RatingSubmitted, TipAdjusted)
}


class Exclusion(StrEnum):
    """Why a rating does not count. Every exclusion is stored with its reason."""

    ORDER_NOT_DELIVERED = "order_not_delivered"
    """The order was cancelled or refunded (``reversed``), or completed after its cancellation
    (``void``): only a delivered order (``credited``) is rateable."""
    HARD_TO_PLEASE = "hard_to_please"
    TIP_BAITED = "tip_baited"
    OUTSIDE_CONTROL = "outside_control"
    ADMIN = "admin"


class RatingFacts(Struct, frozen=True):
    """The rating as the customer submitted it."""

    rating_id: str
    customer_id: str
    stars: int
    reasons: tuple[str, ...]
    submitted_at: str
    """ISO UTC (``to_utc_iso``)."""

    @classmethod
    def of(cls, event: RatingSubmitted) -> RatingFacts:
        return cls(
            rating_id=event.rating_id,
            customer_id=event.customer_id,
            stars=event.stars,
            reasons=tuple(event.reasons),
            submitted_at=to_utc_iso(event.submitted_at),
        )

    @property
    def submitted(self) -> datetime:
        return datetime.fromisoformat(self.submitted_at)


class TipChange(Struct, frozen=True):
    """One ``TipAdjusted``, as much of it as the verdict needs (the customer's free-text
    reason is not kept, only whether one was given)."""

    occurred_at: str
    previous_tip: Money
    new_tip: Money
    reason_given: bool

    @classmethod
    def of(cls, event: TipAdjusted) -> TipChange:
        return cls(
            occurred_at=to_utc_iso(event.occurred_at),
            previous_tip=event.previous_tip,
            new_tip=event.new_tip,
            reason_given=bool(event.reason and event.reason.strip()),
        )


class AdminAction(Struct, frozen=True):
    """An administrator's exclusion or restore: who (the token's ``sub``), when, why."""

    action: str
    """``exclude`` or ``restore``."""
    by: str
    at: str
    why: str


class RatingSlot(Struct, frozen=True):
    """Everything the moderation of one rated (or tip-adjusted) order depends on."""

    member_id: str
    order_id: str
    customer_id: str
    completed_at: str
    """The order's completion (ISO UTC): it orders the member's ratings (``window_key``)."""
    order_status: str
    tip_at_delivery: Money | None = None
    rating: RatingFacts | None = None
    tips: tuple[TipChange, ...] = ()
    hard_to_please: bool = False
    """The rater's verdict on this rating (only ever true for a low rating)."""
    htp_version: int = 0
    """Version of the rater's state that produced ``hard_to_please`` (a stale decision never
    overwrites a newer one)."""
    rater_after: bool = False
    """The rating (at or above the floor) is counted in the rater's item by a write after its
    transaction, marked there: a redelivery checks the mark (``count_for_rater``)."""
    admin: AdminAction | None = None
    """The administrator's exclusion in force, if any."""
    audit: tuple[AdminAction, ...] = ()
    version: int = 0

    @property
    def completed(self) -> datetime:
        return datetime.fromisoformat(self.completed_at)


def adjustment_baited(slot: RatingSlot, change: TipChange, program: Program) -> bool:
    """The tip-baiting rule (``orders.is_tip_baited``) against the tip at delivery."""
    baseline = slot.tip_at_delivery or change.previous_tip
    adjustment = TipAdjusted.model_construct(
        order_id=OrderId(slot.order_id),
        member_id=MemberId(slot.member_id),
        customer_id=CustomerId(slot.customer_id),
        previous_tip=change.previous_tip,
        new_tip=change.new_tip,
        reason="given" if change.reason_given else None,
        occurred_at=datetime.fromisoformat(change.occurred_at),
    )
    return is_tip_baited(baseline, adjustment, program)


def tip_baited(slot: RatingSlot, program: Program) -> bool:
    """Whether the order stands tip-baited: its latest tip change (by time) is a bait."""
    if not slot.tips:
        return False
    latest = max(slot.tips, key=lambda change: change.occurred_at)
    return adjustment_baited(slot, latest, program)


def first_baited_at(slot: RatingSlot, program: Program) -> str | None:
    """When the customer first baited this order (for the customer's flag), if ever."""
    baits = [c.occurred_at for c in slot.tips if adjustment_baited(slot, c, program)]
    return min(baits) if baits else None


def with_tips(slot: RatingSlot, changes: tuple[TipChange, ...]) -> RatingSlot:
    """The slot with ``changes`` added (a change already known is not added twice)."""
    known = {(c.occurred_at, c.new_tip) for c in slot.tips}
    added = list(slot.tips)
    for change in changes:
        if (change.occurred_at, change.new_tip) not in known:
            known.add((change.occurred_at, change.new_tip))
            added.append(change)
    if len(added) == len(slot.tips):
        return slot
    added.sort(key=lambda change: change.occurred_at)
    return replace(slot, tips=tuple(added[-MAX_TIP_CHANGES:]))


def outside_control(reasons: tuple[str, ...], program: Program) -> bool:
    """All of the rating's reasons are on the program's list (a rating without reasons is not)."""
    listed = set(program.moderation.outside_control_reasons)
    return bool(reasons) and all(reason in listed for reason in reasons)


def is_low(stars: int, program: Program) -> bool:
    """A *low* rating is one below the floor: what a hard-to-please rater loses."""
    return Decimal(stars) < program.rating.floor


def exclusions(slot: RatingSlot, program: Program) -> tuple[Exclusion, ...]:
    """Why the slot's rating does not count (empty: it counts). No rating, no exclusions."""
    if slot.rating is None:
        return ()
    found: list[Exclusion] = []
    if slot.order_status != OrderStatus.CREDITED.value:
        found.append(Exclusion.ORDER_NOT_DELIVERED)
    if slot.hard_to_please:
        found.append(Exclusion.HARD_TO_PLEASE)
    if tip_baited(slot, program):
        found.append(Exclusion.TIP_BAITED)
    if outside_control(slot.rating.reasons, program):
        found.append(Exclusion.OUTSIDE_CONTROL)
    if slot.admin is not None:
        found.append(Exclusion.ADMIN)
    return tuple(found)


def is_counted(slot: RatingSlot | None, program: Program) -> bool:
    return slot is not None and slot.rating is not None and not exclusions(slot, program)


# -- eligibility ---------------------------------------------------------------------------------


class EligibilityReason(StrEnum):
    NOT_JUDGED = "not_judged"
    """Fewer counted ratings than ``rating.minCount``: not judged, so eligible."""
    RATING_OK = "rating_ok"
    RATING_BELOW_FLOOR = "rating_below_floor"
    """Below the floor, or (once below) not yet back at the reinstatement threshold."""
    RATING_REINSTATED = "rating_reinstated"
    """Back at or above the reinstatement threshold after being below the floor."""


class Standing(Struct, frozen=True):
    eligible: bool
    reason: EligibilityReason
    average: Decimal | None
    """The counted average, rounded down to 3 places (never shown above the truth)."""
    count: int


AVERAGE_PLACES = Decimal("0.001")


def average_of(total: int, count: int) -> Decimal | None:
    if count == 0:
        return None
    return (Decimal(total) / Decimal(count)).quantize(AVERAGE_PLACES, rounding=ROUND_FLOOR)


def judge(
    total: int, count: int, was_eligible: bool, was_reason: str, rules: RatingFloor
) -> Standing:
    """The member's standing from their counted ratings (``total`` stars over ``count``).

    Compared exactly (``total >= floor * count``), never through a rounded average. With a
    reinstatement threshold, a member below the floor must reach it to come back (hysteresis:
    the standing then depends on the previous one)."""
    average = average_of(total, count)
    if count < rules.min_count:
        return Standing(True, EligibilityReason.NOT_JUDGED, average, count)
    if was_eligible:
        if Decimal(total) >= rules.floor * count:
            keep = was_reason == EligibilityReason.RATING_REINSTATED.value
            reason = EligibilityReason.RATING_REINSTATED if keep else EligibilityReason.RATING_OK
            return Standing(True, reason, average, count)
        return Standing(False, EligibilityReason.RATING_BELOW_FLOOR, average, count)
    threshold = rules.reinstatement if rules.reinstatement is not None else rules.floor
    if Decimal(total) >= threshold * count:
        return Standing(True, EligibilityReason.RATING_REINSTATED, average, count)
    return Standing(False, EligibilityReason.RATING_BELOW_FLOOR, average, count)


# -- admin ---------------------------------------------------------------------------------------

ADMIN_SCOPE = "loyalty/admin"


class AdminReason(BaseModel):
    """Body of an administrator's exclusion or restore: why (kept in the audit trail)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
