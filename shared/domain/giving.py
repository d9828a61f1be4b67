"""Giving (docs/campaigns.md, "Giving"): a member gives points to a cause, or an order's change
(``roundUp``); the company matches what is given, up to a monthly budget per cause.

Everything is counted in whole cents of the program's currency: points are worth
``points.value`` each (100 points = $1.00 by default), so a donation of points is
``points x value`` rounded down to the cent. The match is ``ratio x`` the donation, limited to
what the cause's budget of the month has left: a donation that finds less left is matched in
part (the rest of the budget), one that finds none is not matched. The month is the calendar
month of the donation in the program's zone. Pure: the writes are ``shared.dal.giving``'s.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Literal

from msgspec import Struct

from .errors import InvalidInput
from .events import RoundUp
from .keys import donation_sk
from .program import Cause, GivingRules, Program
from .timeutil import local_day, to_utc_iso

CENTS = Decimal(100)
DONATED = "donated"
REFUSED = "refused"
REVERSED = "reversed"
"""A round-up whose order was cancelled or wholly refunded: given back, its match too."""

Source = Literal["points", "roundUp"]


class DonationPlan(Struct, frozen=True):
    """One donation, as it will be written (the match is decided against the counter read)."""

    sk: str
    donation_id: str
    cause_id: str
    source: Source
    points: int
    """Points given (0 for a round-up, which is cash)."""
    cents: int
    """What was given, in cents of ``currency``."""
    currency: str
    month: str
    """The calendar month (``YYYY-MM``, the program's zone) whose match budget it draws on."""
    budget_cents: int
    ratio: Decimal
    occurred_at: str
    campaign_id: str
    rule_version: str
    order_id: str | None = None
    request_hash: str | None = None
    """The API body's fingerprint: the same Idempotency-Key with another body is refused."""

    def match_for(self, matched_so_far: int) -> int:
        """The match this donation gets when the cause's month has ``matched_so_far`` cents
        matched: ``ratio x`` the donation, at most what is left of the budget."""
        wanted = int((Decimal(self.cents) * self.ratio).to_integral_value(ROUND_DOWN))
        return max(0, min(wanted, self.budget_cents - matched_so_far))


class DonationWrite(StrEnum):
    DONATED = "donated"
    DUPLICATE = "duplicate"
    """The donation item exists already (a retry with the same key, a redelivered order)."""
    INSUFFICIENT = "insufficient_points"
    MATCH_CHANGED = "match_changed"
    """The month's match counter moved past what the match assumed: decide it again."""


class DonationOutcome(Struct, frozen=True):
    write: DonationWrite
    matched_cents: int = 0
    available: int | None = None
    """The member's ``bal`` when the points were refused."""


class RoundUpRefusal(Struct, frozen=True):
    """A round-up that is not given: kept with why (the order still counts)."""

    sk: str
    order_id: str
    cause_id: str
    reason: str
    """``unknown_cause``, ``currency`` (not the program's) or ``amount`` (0, or above
    ``giving.maxRoundUp``)."""
    amount: str
    currency: str
    occurred_at: str
    rule_version: str


def giving_rules(program: Program) -> GivingRules:
    if program.giving is None or program.points is None:
        raise InvalidInput(f"program {program.id} has no causes", field="programId")
    return program.giving


def to_cents(amount: Decimal) -> int:
    return int((amount * CENTS).to_integral_value(ROUND_DOWN))


def points_cents(program: Program, points: int) -> int:
    """What ``points`` are worth, in whole cents (rounded down)."""
    value = program.points.value if program.points else Decimal(0)
    return to_cents(Decimal(points) * value)


def month_of(now: datetime, program: Program) -> str:
    return local_day(now, program.zone).strftime("%Y-%m")


def _plan(
    program: Program,
    cause: Cause,
    sk: str,
    donation_id: str,
    source: Source,
    points: int,
    cents: int,
    now: datetime,
    order_id: str | None = None,
    request_hash: str | None = None,
) -> DonationPlan:
    rules = giving_rules(program)
    return DonationPlan(
        sk=sk,
        donation_id=donation_id,
        cause_id=cause.id,
        source=source,
        points=points,
        cents=cents,
        currency=program.currency,
        month=month_of(now, program),
        budget_cents=to_cents(rules.match_budget(cause)),
        ratio=rules.match.ratio,
        occurred_at=to_utc_iso(now),
        campaign_id=rules.campaign_id,
        rule_version=program.rule_version,
        order_id=order_id,
        request_hash=request_hash,
    )


def plan_points_donation(
    program: Program,
    idempotency_key: str,
    cause_id: str,
    points: int,
    now: datetime,
    request_hash: str,
) -> DonationPlan:
    """A member's donation of points; an unknown cause or too few points is a 422 naming the
    field."""
    rules = giving_rules(program)
    cause = rules.cause(cause_id)
    if cause is None:
        known = ", ".join(c.id for c in rules.causes)
        raise InvalidInput(f"unknown cause {cause_id!r} (known: {known})", field="causeId")
    if points < rules.min_points:
        raise InvalidInput(f"at least {rules.min_points} points", field="points")
    return _plan(
        program,
        cause,
        donation_sk("api", idempotency_key),
        idempotency_key,
        "points",
        points,
        points_cents(program, points),
        now,
        request_hash=request_hash,
    )


def plan_round_up(
    program: Program, order_id: str, round_up: RoundUp, completed_at: datetime
) -> DonationPlan | RoundUpRefusal:
    """An order's change given to a cause, or why not. Dated by the order's completion, so a
    redelivery plans the same donation."""
    rules = giving_rules(program)
    cause = rules.cause(round_up.cause_id)
    reason = None
    if cause is None:
        reason = "unknown_cause"
    elif round_up.currency != program.currency:
        reason = "currency"
    elif not Decimal(0) < round_up.amount <= rules.max_round_up:
        reason = "amount"
    sk = donation_sk("order", order_id)
    if cause is None or reason is not None:
        return RoundUpRefusal(
            sk=sk,
            order_id=order_id,
            cause_id=round_up.cause_id,
            reason=reason or "unknown_cause",
            amount=str(round_up.amount),
            currency=round_up.currency,
            occurred_at=to_utc_iso(completed_at),
            rule_version=program.rule_version,
        )
    return _plan(
        program,
        cause,
        sk,
        order_id,
        "roundUp",
        0,
        to_cents(round_up.amount),
        completed_at,
        order_id=order_id,
    )


def cents_text(cents: int) -> str:
    """Cents as a decimal amount (``1234`` -> ``"12.34"``)."""
    return str((Decimal(cents) / CENTS).quantize(Decimal("0.01")))
