"""The annual dividend (docs/campaigns.md, "The annual dividend"): pure rules.

A customer who held the program's paid plan (``dividend.plan``) at some time in a calendar year
is paid, early the next year, a share (``dividend.rate``) of that year's order totals as points
at the program's point value, at most ``dividend.maxPoints``, once. The year's order total is
kept on the member item (``ot{YYYY}``, whole cents, net of refunds) by the order's credit and
its refunds; the members to pay are those a ``MembershipChanged`` of the plan registered for the
year. Here: which years a membership covers, which year is due, what a total pays.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from msgspec import Struct

from .customer import available_attr
from .program import Dividend, Program
from .timeutil import local_day, to_utc_iso

MAX_YEARS = 3
"""A membership registers its member in at most this many calendar years (the year it changed
and the two after): a ``validUntil`` decades ahead is a billing error, not a member to pay for
thirty years."""


def refunded_cents(program: Program, currency: str, before: Decimal, after: Decimal) -> int:
    """What a refund takes off the year's total: the amount refunded by it, in cents (``before``
    and ``after`` are the order's refunded amounts, so refunds in parts add up to the order)."""
    if currency != program.currency:
        return 0
    return int(((after - before) * 100).to_integral_value(rounding=ROUND_FLOOR))


def plan_years(
    program: Program, occurred_at: datetime, valid_until: datetime | None
) -> tuple[int, ...]:
    """The calendar years (the program's zone) in which a membership of the dividend's plan,
    changed at ``occurred_at`` and valid until ``valid_until``, was held: none when it ends
    before it starts."""
    if valid_until is None or valid_until <= occurred_at:
        return ()
    first = local_day(occurred_at, program.zone).year
    # The last instant it is held is just before validUntil: a plan until 1 January 00:00
    # was not held in the new year.
    last = local_day(valid_until - timedelta(microseconds=1), program.zone).year
    return tuple(range(first, min(last, first + MAX_YEARS - 1) + 1))


def due_year(program: Program, now: datetime) -> int | None:
    """The year whose dividend is due at ``now``: last year's, from its ``startsOn`` on (the
    program's zone); None before it, or for a program without a dividend."""
    dividend = program.dividend
    if dividend is None:
        return None
    today = local_day(now, program.zone)
    year = today.year - 1
    return year if today >= dividend.starts(year) else None


def dividend_points(program: Program, dividend: Dividend, cents: int) -> int:
    """``rate`` of ``cents`` as points at the program's point value, rounded down once, at most
    ``maxPoints`` (0 for a year without orders, or a total refunds brought below zero)."""
    if cents <= 0 or program.points is None:
        return 0
    money = Decimal(cents) / 100 * dividend.rate
    points = int((money / program.points.value).to_integral_value(rounding=ROUND_FLOOR))
    return min(points, dividend.max_points)


class DividendPlan(Struct, frozen=True):
    """One member's dividend of one year."""

    campaign_id: str
    year: int
    points: int
    order_cents: int
    rate: str
    lot: str
    """This month's available lot (``av{YYYYMM}``): available at once, expiring as this month's
    points do."""
    today: str
    occurred_at: str
    rule_version: str
    budget: int | None

    @property
    def occasion(self) -> str:
        return str(self.year)


def plan_dividend(
    program: Program, dividend: Dividend, year: int, cents: int, now: datetime
) -> DividendPlan:
    today = local_day(now, program.zone)
    return DividendPlan(
        campaign_id=dividend.campaign_id,
        year=year,
        points=dividend_points(program, dividend, cents),
        order_cents=cents,
        rate=str(dividend.rate),
        lot=available_attr(today),
        today=today.isoformat(),
        occurred_at=to_utc_iso(now),
        rule_version=program.rule_version,
        budget=dividend.budget,
    )
