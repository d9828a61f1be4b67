"""The customer program's rules (docs/customer-program.md): points that are money.

Pure functions of the program, the member item's attributes and ``now``; no I/O. The member item
of a customer keeps its points as *lots*:

- ``pd{YYYYMMDD}``: points pending until that local day (the day they become available);
- ``av{YYYYMM}``: points that became available in that month (they expire together);
- ``xp{YYYYMMDD}``: points available now that expire on that day (a birthday gift: a bonus
  with an expiry of its own);
- ``used``: how much of the ``av`` and ``xp`` lots, the first to expire first, has been spent or
  clawed back;
- ``bal`` (spendable now), ``held`` (on checkout holds), ``pend`` (the sum of the ``pd`` lots);
- ``yp{YYYY}``: points earned in that calendar year (the status);
- ``plan``, ``planUntil``: the paid membership.

So spending never rewrites lots (``ADD used``), and what expires is a function of the lots and
``used``: the oldest lot's points beyond what was used from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from msgspec import Struct

from .errors import InvalidInput
from .money import Money
from .program import MembershipPlan, PointsRules, Program, Tier
from .referral import referral_due
from .timeutil import local_day, to_utc_iso

CENT = Decimal("0.01")

PENDING_PREFIX = "pd"
AVAILABLE_PREFIX = "av"
EXPIRING_PREFIX = "xp"
YEAR_PREFIX = "yp"


def rules(program: Program) -> PointsRules:
    if program.points is None:
        raise ValueError(f"program {program.id} has no points rules (not a customer program)")
    return program.points


# -- attribute names ------------------------------------------------------------------------------


def pending_attr(day: date) -> str:
    return f"{PENDING_PREFIX}{day:%Y%m%d}"


def available_attr(day: date) -> str:
    return f"{AVAILABLE_PREFIX}{day:%Y%m}"


def year_attr(year: int) -> str:
    return f"{YEAR_PREFIX}{year}"


def order_total_attr(year: int) -> str:
    """The member item's order total of the calendar ``year`` (the program's zone), in whole
    cents, net of refunds: what the annual dividend pays a share of (docs/campaigns.md)."""
    return f"ot{year}"


def order_cents(program: Program, total: Money) -> int:
    """What an order's total adds to its year's total: whole cents, 0 in another currency (it
    earned no points either)."""
    if total.currency != program.currency:
        return 0
    return int((total.amount * 100).to_integral_value(rounding=ROUND_FLOOR))


def _pending_day(name: str) -> date | None:
    digits = name[len(PENDING_PREFIX) :]
    if not name.startswith(PENDING_PREFIX) or len(digits) != 8 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def _available_month(name: str) -> date | None:
    digits = name[len(AVAILABLE_PREFIX) :]
    if not name.startswith(AVAILABLE_PREFIX) or len(digits) != 6 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:]), 1)


def pending_lots(attributes: Mapping[str, Any]) -> list[tuple[date, int]]:
    """The pending lots, by the day they become available, oldest first."""
    lots = []
    for name, value in attributes.items():
        day = _pending_day(name)
        if day is not None and int(value):
            lots.append((day, int(value)))
    return sorted(lots)


def _expiring_day(name: str) -> date | None:
    digits = name[len(EXPIRING_PREFIX) :]
    if not name.startswith(EXPIRING_PREFIX) or len(digits) != 8 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def expiring_lots(attributes: Mapping[str, Any]) -> list[tuple[date, int]]:
    """The lots that expire on a day of their own (a birthday gift), by that day."""
    lots = []
    for name, value in attributes.items():
        day = _expiring_day(name)
        if day is not None and int(value):
            lots.append((day, int(value)))
    return sorted(lots)


def available_lots(attributes: Mapping[str, Any]) -> list[tuple[date, int]]:
    """The available lots, by their month (first day), oldest first."""
    lots = []
    for name, value in attributes.items():
        month = _available_month(name)
        if month is not None and int(value):
            lots.append((month, int(value)))
    return sorted(lots)


def _int(attributes: Mapping[str, Any], name: str) -> int:
    return int(attributes.get(name) or 0)


# -- time -----------------------------------------------------------------------------------------


def available_on(program: Program, completed_at: datetime) -> date:
    """The local day an order's points become available: the start of the day after the pending
    period ends (never less than ``pendingDays`` after the completion), or the order's day when
    nothing is pending."""
    days = rules(program).pending_days
    if days == 0:
        return local_day(completed_at, program.zone)
    return local_day(completed_at + timedelta(days=days), program.zone) + timedelta(days=1)


def _add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def expires_on(program: Program, month: date) -> date:
    """Points that became available in ``month`` expire at the start of the month after their
    ``expiryMonths``-th month (never less than ``expiryMonths`` after they became available)."""
    return _add_months(month, rules(program).expiry_months + 1)


def notice_on(program: Program, month: date) -> date:
    return expires_on(program, month) - timedelta(days=rules(program).expiring_notice_days)


# -- earning --------------------------------------------------------------------------------------


def status_index(program: Program, year_points: int) -> int:
    """0 below the first status, else 1 + the index of the highest status reached."""
    index = 0
    for position, tier in enumerate(program.tiers, start=1):
        if year_points >= tier.min_points:
            index = position
    return index


def status_tier(program: Program, index: int) -> Tier | None:
    return program.tiers[index - 1] if index else None


def band(program: Program, index: int) -> tuple[int | None, int | None]:
    """The year points ``[low, high)`` of status index ``index`` (None: unbounded)."""
    low = program.tiers[index - 1].min_points if index else None
    high = program.tiers[index].min_points if index < len(program.tiers) else None
    return low, high


class Standing(Struct, frozen=True):
    """What an order's points depend on, as the member item stood before it: the status bands of
    the previous and the current calendar year, and the membership plan valid at completion."""

    year: int
    previous_band: int = 0
    current_band: int = 0
    plan: str | None = None

    @property
    def status_band(self) -> int:
        return max(self.previous_band, self.current_band)


def standing_of(
    program: Program, attributes: Mapping[str, Any] | None, completed_at: datetime
) -> Standing:
    """The standing an order completed at ``completed_at`` earns under (attributes of the member
    item before the order; None: no member yet)."""
    year = local_day(completed_at, program.zone).year
    attributes = attributes or {}
    plan = attributes.get("plan")
    until = attributes.get("planUntil")
    active = isinstance(plan, str) and isinstance(until, str) and until > to_utc_iso(completed_at)
    return Standing(
        year=year,
        previous_band=status_index(program, _int(attributes, year_attr(year - 1))),
        current_band=status_index(program, _int(attributes, year_attr(year))),
        plan=plan if active else None,
    )


def base_points(program: Program, total: Money) -> int:
    """``pointsPerDollar`` per whole unit of the order's total; 0 in another currency."""
    per_dollar = program.earning.points_per_dollar or 0
    if total.currency != program.currency:
        return 0
    return int(total.amount.to_integral_value(rounding=ROUND_FLOOR)) * per_dollar


def multiplier(program: Program, standing: Standing) -> Decimal:
    factor = Decimal(1)
    tier = status_tier(program, standing.status_band)
    if tier is not None:
        factor *= tier.multiplier
    plan: MembershipPlan | None = program.membership(standing.plan)
    if plan is not None:
        factor *= plan.multiplier
    return factor


def order_points(program: Program, total: Money, standing: Standing) -> int:
    """Multipliers multiply; the order's points are rounded down once."""
    points = Decimal(base_points(program, total)) * multiplier(program, standing)
    return int(points.to_integral_value(rounding=ROUND_FLOOR))


class CustomerCredit(Struct, frozen=True):
    """What crediting one completed order to its customer does."""

    points: int
    base: int
    standing: Standing
    available_on: date
    pending: bool
    """False: the order arrived after its pending period, its points are available at once."""
    rule_version: str
    bounds: tuple[tuple[str, int | None, int | None], ...] = ()
    """The member item's year points as the standing assumes them: (attribute, low, high)."""
    due_on: date | None = None
    """The first day the lot needs the settlement (its availability day, or, for points
    available at once, its expiry notice day); None: no points, no lot."""
    order_cents: int = 0
    """The order's total in cents, added to its year's ``ot{YYYY}`` (the annual dividend)."""

    @property
    def lot(self) -> str:
        on = self.available_on
        return pending_attr(on) if self.pending else available_attr(on)


def plan_customer_credit(
    program: Program, total: Money, completed_at: datetime, standing: Standing, now: datetime
) -> CustomerCredit:
    on = available_on(program, completed_at)
    today = local_day(now, program.zone)
    pending = today < on
    points = order_points(program, total, standing)
    due = on if pending else max(notice_on(program, on.replace(day=1)), today)
    return CustomerCredit(
        points=points,
        base=base_points(program, total),
        standing=standing,
        available_on=on,
        pending=pending,
        due_on=due if points else None,
        order_cents=order_cents(program, total),
        rule_version=program.rule_version,
        bounds=(
            (year_attr(standing.year - 1), *band(program, standing.previous_band)),
            (year_attr(standing.year), *band(program, standing.current_band)),
        ),
    )


# -- refunds --------------------------------------------------------------------------------------


def refunded_share(total: Money, refunded: Decimal) -> Decimal:
    """The refunded share of the order, 0 to 1 (a whole refund of a free order is 1)."""
    if total.amount <= 0:
        return Decimal(1)
    return min(Decimal(1), max(Decimal(0), refunded / total.amount))


def money_share(amount: Decimal, share: Decimal) -> Decimal:
    """``amount`` times ``share``, rounded down to the cent (cumulatively, as points are)."""
    return (amount * share).quantize(CENT, rounding=ROUND_FLOOR)


def wallet_amount(hold: Mapping[str, Any] | None) -> Decimal:
    """What the wallet pays of a checkout hold (0: points only)."""
    if not hold or hold.get("wallet") is None:
        return Decimal(0)
    return Decimal(str(hold["wallet"]))


def share_of(points: int, share: Decimal) -> int:
    """``points`` times ``share``, rounded down (what a refund takes back, cumulatively)."""
    return int((Decimal(points) * share).to_integral_value(rounding=ROUND_FLOOR))


class Refund(Struct, frozen=True):
    """One refund's effect on the order and member items (decided by
    ``shared.logic.customers``)."""

    key: str
    kind: str
    occurred_at: str
    amount: dict[str, Any] | None
    refunded: str
    whole: bool
    clawed: int
    clawed_total: int
    from_pending: int
    from_pending_lot: str
    returned: int
    returned_total: int
    returned_lot: str
    year: int
    rule_version: str
    wallet_returned: Decimal = Decimal(0)
    """The wallet money this refund gives back (the wallet paid a part of the order)."""
    wallet_returned_total: Decimal = Decimal(0)
    drop_draw_entry: bool = False
    """A whole refund before the month's draw closes: the order leaves the prize draw."""
    order_cents: int = 0
    """What this refund takes off the year's order total ``ot{year}`` (the amount refunded, in
    cents; the annual dividend)."""


# -- checkout holds -------------------------------------------------------------------------------


def check_hold(program: Program, points: int, wallet: Decimal | None = None) -> str | None:
    """Refuse a hold the program does not allow (4xx with the field); the program whose wallet
    pays ``wallet`` (None: no wallet)."""
    holds = rules(program).holds
    if not points and wallet is None:
        raise InvalidInput("points: a hold pays with points, the wallet or both", field="points")
    if points and points < holds.min_points:
        raise InvalidInput(f"points: at least {holds.min_points} points", field="points")
    if points % holds.multiple_of:
        raise InvalidInput(f"points: a multiple of {holds.multiple_of} points", field="points")
    if wallet is None:
        return None
    if holds.wallet_from is None:
        raise InvalidInput(f"wallet: {program.id} takes no wallet at checkout", field="wallet")
    if wallet <= 0 or wallet != wallet.quantize(CENT):
        raise InvalidInput("wallet: a positive amount in whole cents", field="wallet")
    return holds.wallet_from


def points_value(program: Program, points: int) -> Money:
    amount = (Decimal(points) * rules(program).value).quantize(Decimal("0.01"))
    return Money(amount=amount, currency=program.currency)


def hold_expires_at(program: Program, now: datetime) -> datetime:
    return now + timedelta(minutes=rules(program).holds.minutes)


# -- what falls due: maturation, expiry, notices --------------------------------------------------


class DuePlan(Struct, frozen=True):
    """What the member item needs on ``today``: lots to make available, lots to expire, and the
    next day anything falls due."""

    matured: tuple[tuple[str, str, int], ...]
    """(pending attribute, available attribute, points), oldest first."""
    expired: tuple[tuple[str, int], ...]
    """(available attribute, points that expire from it), oldest first."""
    expired_points: int
    used_after: int
    notice: tuple[int, date] | None
    """Points of the oldest lot that expire on the given day, to announce today (once per lot:
    the member item's ``noticed`` names the lot announced)."""
    noticed: str | None
    """The lot announced (``YYYYMM``), to keep on the member item as ``noticed``."""
    next_due: date | None
    rule_version: str = ""

    @property
    def changes(self) -> bool:
        return bool(self.matured or self.expired or self.notice)


def _lots_by_expiry(
    program: Program, months: Mapping[date, int], attributes: Mapping[str, Any]
) -> list[tuple[date, str, int]]:
    """Every available lot as (the day it expires, its attribute, points), the first to expire
    first: the order ``used`` is taken in (for lots of months alone, oldest first, as ever)."""
    lots = [(expires_on(program, month), available_attr(month), n) for month, n in months.items()]
    lots += [(day, f"{EXPIRING_PREFIX}{day:%Y%m%d}", n) for day, n in expiring_lots(attributes)]
    return sorted(lots)


def plan_due(program: Program, attributes: Mapping[str, Any], today: date) -> DuePlan:
    """Mature every pending lot due by ``today``, expire every lot past its expiry (the first to
    expire first: a lot's points beyond what was ``used`` of it; points on holds are spared), and
    announce the points of the next monthly lot to expire when its notice day has come and no
    notice went out today. A lot of its own expiry (``xp``: a gift that lasts 30 days) has no
    notice: the gift's event says when it expires."""
    matured = tuple(
        (pending_attr(day), available_attr(day), points)
        for day, points in pending_lots(attributes)
        if day <= today
    )
    months: dict[date, int] = dict(available_lots(attributes))
    for _, available, points in matured:
        month = _available_month(available)
        assert month is not None
        months[month] = months.get(month, 0) + points
    used = _int(attributes, "used")
    spendable = _int(attributes, "bal") + sum(points for _, _, points in matured)
    expired: list[tuple[str, int]] = []
    expired_points = 0
    remaining = _lots_by_expiry(program, months, attributes)
    while remaining and remaining[0][0] <= today:
        _, name, lot = remaining.pop(0)
        left = max(0, lot - used)
        gone = min(left, max(0, spendable - expired_points))
        used = max(0, used - lot)
        expired.append((name, gone))
        expired_points += gone
    notice: tuple[int, date] | None = None
    noticed: str | None = None
    dues = [day for day, _ in pending_lots(attributes) if day > today]
    referral = referral_due(attributes)
    if referral is not None:  # a referral waits for the first order's lot: the schedule pays it
        dues.append(referral)
    if remaining:
        # The first to expire falls due first; a notice is for the first monthly lot.
        dues.append(remaining[0][0])
    ahead = used
    for expires, name, lot in remaining:
        left = max(0, lot - ahead)
        ahead = max(0, ahead - lot)
        if not name.startswith(AVAILABLE_PREFIX):
            continue
        first = _available_month(name)
        assert first is not None
        announced = attributes.get("noticed") == f"{first:%Y%m}"
        if left and not announced:
            if notice_on(program, first) <= today:
                notice = (left, expires)
                noticed = f"{first:%Y%m}"
            else:
                dues.append(notice_on(program, first))
        break
    return DuePlan(
        matured=matured,
        expired=tuple(expired),
        expired_points=expired_points,
        used_after=used,
        notice=notice,
        noticed=noticed,
        next_due=min(dues) if dues else None,
        rule_version=program.rule_version,
    )


# -- the member's points as they stand ------------------------------------------------------------


class PointsStanding(Struct, frozen=True):
    available: int
    pending: int
    held: int
    expiring: tuple[int, date] | None
    year_points: int
    status: Tier | None
    status_until: date | None
    plan: MembershipPlan | None
    plan_until: str | None


def points_standing(
    program: Program, attributes: Mapping[str, Any] | None, now: datetime
) -> PointsStanding:
    """The member's points at ``now``, as if everything due had been applied (a sweep that has
    not run yet changes nothing a member sees)."""
    attributes = attributes or {}
    today = local_day(now, program.zone)
    due = plan_due(program, attributes, today)
    matured = sum(points for _, _, points in due.matured)
    available = _int(attributes, "bal") + matured - due.expired_points
    pending = sum(points for day, points in pending_lots(attributes) if day > today)
    months = dict(available_lots(attributes))
    expired = {name for name, _ in due.expired}
    used = due.used_after
    expiring = None
    for expires, name, points in _lots_by_expiry(program, months, attributes):
        if name in expired:
            continue
        left = max(0, points - used)
        if left:
            expiring = (left, expires)
        break
    year = today.year
    band_now = max(
        status_index(program, _int(attributes, year_attr(year - 1))),
        status_index(program, _int(attributes, year_attr(year))),
    )
    this_year = status_index(program, _int(attributes, year_attr(year)))
    status = status_tier(program, band_now)
    until = date(year + 1, 12, 31) if this_year and this_year == band_now else None
    if status is not None and until is None:
        until = date(year, 12, 31)
    standing = standing_of(program, attributes, now)
    return PointsStanding(
        available=available,
        pending=pending,
        held=_int(attributes, "held"),
        expiring=expiring,
        year_points=_int(attributes, year_attr(year)),
        status=status,
        status_until=until,
        plan=program.membership(standing.plan),
        plan_until=attributes.get("planUntil") if standing.plan else None,
    )
