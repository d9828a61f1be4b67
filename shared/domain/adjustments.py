"""Administrators' points adjustments and tier overrides (docs/admin.md): what a request asks
and where its points go, as pure functions of the member item, a day and the program.

- Customer programs: points are money. A credit is a lot available from today (it expires like
  the month's other available points); a removal takes available points (``bal``), never more
  than there are.
- Shopper programs: points count toward tiers in a window of day buckets. A credit goes into
  today's bucket (the member's local day), so it ages out of the window like points earned
  today; a removal takes points off the window's days, the newest first (it lowers the
  standing for as long as possible, like a reversal of recent orders), never more than the
  window holds. Fixed-period programs use the current quarter's bucket both ways. Lifetime
  points move by the same amount; the tier then follows on the stream's evaluation, as after
  an order (upgrades at once, downgrades at the daily evaluation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from msgspec import Struct

from .customer import available_attr, notice_on
from .errors import InsufficientPoints, InvalidInput
from .program import MemberRole, Program, WindowMode
from .window import credit_bucket, day_bucket, day_buckets, period_bucket, window_start

MAX_POINTS = 1_000_000
"""The largest change one adjustment may make, either way (a typo guard)."""
MAX_OVERRIDE_DAYS = 366
"""How far ahead an override may end."""


def request_hash(points: int, reason: str, kind: str | None) -> str:
    """What an Idempotency-Key was first used with: the same key with another body is a 422."""
    return hashlib.sha256(f"{points}\n{reason}\n{kind or ''}".encode()).hexdigest()


class ShopperAdjustment(Struct, frozen=True):
    points: int
    day: date
    """The member's local day the adjustment was made on."""
    buckets: tuple[tuple[str, int], ...]
    """(window bucket, points added to it): ``d:{day number}`` or ``q:{year}{quarter}``, as an
    order item records its ``bucket``; empty when no window bucket is live."""


def _window_days(attributes: Mapping[str, Any], today: date, program: Program) -> list[date]:
    start = window_start(today, program)
    buckets = day_buckets(attributes)
    return sorted((day for day in buckets if start <= day <= today and buckets[day]), reverse=True)


def plan_shopper_adjustment(
    program: Program, attributes: Mapping[str, Any], points: int, today: date
) -> ShopperAdjustment:
    """Where a shopper's adjustment goes (``program`` on the member's clock). A removal of more
    than the window holds is refused naming what it holds."""
    if points > 0:
        bucket = credit_bucket(today, today, program)
        return ShopperAdjustment(points, today, ((bucket, points),) if bucket else ())
    wanted = -points
    taken: list[tuple[str, int]] = []
    if program.window.mode is WindowMode.FIXED:
        bucket = period_bucket(today)
        available = int(attributes.get(bucket) or 0)
        if available >= wanted:
            taken.append((bucket, points))
    else:
        buckets = day_buckets(attributes)
        days = _window_days(attributes, today, program)
        available = sum(buckets[day] for day in days)
        left = wanted
        for day in days:
            if left == 0:
                break
            share = min(left, buckets[day])
            taken.append((day_bucket(day), -share))
            left -= share
    if available < wanted:
        raise InsufficientPoints(
            f"points: {wanted} to remove, {available} available in the window", field="points"
        )
    return ShopperAdjustment(points, today, tuple(taken))


class CustomerAdjustment(Struct, frozen=True):
    points: int
    day: date
    lot: str | None
    """A credit's lot (``av{YYYYMM}``, available now); None for a removal."""
    check_on: str | None
    """A credit's due day for the settlement (its expiry notice), set only when the member item
    has none: any due day already set comes sooner, and the settlement then plans the rest."""


def plan_customer_adjustment(program: Program, points: int, today: date) -> CustomerAdjustment:
    if points < 0:
        return CustomerAdjustment(points, today, None, None)
    month = today.replace(day=1)
    return CustomerAdjustment(
        points, today, available_attr(today), notice_on(program, month).isoformat()
    )


def check_points(points: int) -> None:
    """Non-zero, and at most ``MAX_POINTS`` either way (422 naming ``points``)."""
    if points == 0:
        raise InvalidInput(
            "points: must not be 0 (positive adds, negative removes)", field="points"
        )
    if abs(points) > MAX_POINTS:
        raise InvalidInput(f"points: at most {MAX_POINTS:,} either way", field="points")


def check_override(program: Program, tier: str, until: date, today: date) -> None:
    """A tier of this program's, ending after today and within ``MAX_OVERRIDE_DAYS``."""
    require_tiers(program)
    known = [t.id for t in program.tiers]
    if tier not in known:
        raise InvalidInput(f"tier: not a tier of {program.id} ({', '.join(known)})", field="tier")
    if until <= today:
        raise InvalidInput(
            f"until: must be after today ({today.isoformat()}, the member's day)", field="until"
        )
    if until > today + timedelta(days=MAX_OVERRIDE_DAYS):
        raise InvalidInput(f"until: at most {MAX_OVERRIDE_DAYS} days ahead", field="until")


def require_tiers(program: Program) -> None:
    """Overrides are for tier programs: a customer program's statuses follow spending."""
    if program.members is MemberRole.CUSTOMER:
        raise InvalidInput(
            f"programId: {program.id} has statuses from spending, not tiers to override",
            field="programId",
        )
