"""Points windows, O(1) in the number of orders.

A member's points are kept in *buckets*: one number per calendar day (rolling mode) or per
period (fixed mode), stored as attributes of the member's item. Crediting an order adds to
one bucket; computing window points sums at most ``window.days`` buckets, whatever the number
of orders. Buckets that can no longer enter any window are removed by the same writes that add
points (``prune_names``), so the member item stays small and its write cost constant.

Bucket names are short on purpose (they are attribute names, and attribute names count in the
item size that DynamoDB bills): ``d:<days since 2020-01-01>`` and ``q:<year><quarter>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from .program import Program, WindowMode
from .timeutil import previous_quarter, quarter_of

EPOCH = date(2020, 1, 1)
DAY_PREFIX = "d:"
PERIOD_PREFIX = "q:"
PRUNE_SPAN_DAYS = 62
"""How many days before the window each write clears: a member inactive for longer keeps a few
stale buckets, which never count (they are outside every window) and which the next write that
reaches them, or the daily evaluation, removes."""
PRUNE_SPAN_PERIODS = 4


def day_bucket(day: date) -> str:
    return f"{DAY_PREFIX}{(day - EPOCH).days}"


def period_bucket(day: date) -> str:
    year, quarter = quarter_of(day)
    return f"{PERIOD_PREFIX}{year}{quarter}"


def _quarter_bucket(year: int, quarter: int) -> str:
    return f"{PERIOD_PREFIX}{year}{quarter}"


def bucket_day(name: str) -> date | None:
    """The day of a day bucket, or None for any other attribute name."""
    if not name.startswith(DAY_PREFIX):
        return None
    try:
        return EPOCH + timedelta(days=int(name[len(DAY_PREFIX) :]))
    except ValueError:
        return None


def window_start(today: date, program: Program) -> date:
    """First day of the rolling window that ends on ``today`` (today included)."""
    return today - timedelta(days=program.window.days - 1)


def credit_bucket(day: date, today: date, program: Program) -> str | None:
    """The bucket an order completed on ``day`` credits when processed on ``today``.

    None when the order can no longer count in any current or future window (a very late
    event): its points still reach the ledger and the lifetime total.
    """
    if program.window.mode is WindowMode.ROLLING:
        if day < EPOCH or day < window_start(today, program):
            return None
        return day_bucket(day)
    year, quarter = quarter_of(today)
    if quarter_of(day) < previous_quarter(year, quarter):
        return None
    return period_bucket(day)


def is_live(bucket: str, today: date, program: Program) -> bool:
    """Whether a bucket credited earlier still belongs to a current or future window."""
    day = bucket_day(bucket)
    if day is not None:
        return program.window.mode is WindowMode.ROLLING and day >= window_start(today, program)
    if bucket.startswith(PERIOD_PREFIX) and program.window.mode is WindowMode.FIXED:
        year, quarter = quarter_of(today)
        return bucket >= _quarter_bucket(*previous_quarter(year, quarter))
    return False


def prune_names(today: date, program: Program) -> tuple[str, ...]:
    """Bucket names that a write on ``today`` removes: just before the window, never inside it."""
    if program.window.mode is WindowMode.ROLLING:
        first = window_start(today, program)
        return tuple(
            day_bucket(first - timedelta(days=offset))
            for offset in range(1, PRUNE_SPAN_DAYS + 1)
            if first - timedelta(days=offset) >= EPOCH
        )
    year, quarter = previous_quarter(*quarter_of(today))
    names = []
    for _ in range(PRUNE_SPAN_PERIODS):
        year, quarter = previous_quarter(year, quarter)
        names.append(_quarter_bucket(year, quarter))
    return tuple(names)


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError(f"bucket value {value!r} is not a whole number")


def day_buckets(attributes: Mapping[str, object]) -> dict[date, int]:
    """The day buckets found among a member item's attributes."""
    buckets: dict[date, int] = {}
    for name, value in attributes.items():
        day = bucket_day(name)
        if day is not None:
            buckets[day] = _as_int(value)
    return buckets


def rolling_points(buckets: Mapping[date, int], today: date, program: Program) -> int:
    """Points earned in the rolling window ending on ``today`` (today included)."""
    first = window_start(today, program)
    return sum(points for day, points in buckets.items() if first <= day <= today)


def period_points(attributes: Mapping[str, object], year: int, quarter: int) -> int:
    """Points credited to one period (quarter), in fixed mode."""
    return _as_int(attributes.get(_quarter_bucket(year, quarter), 0))


def window_points(attributes: Mapping[str, object], today: date, program: Program) -> int:
    """Tier points on ``today``.

    Rolling mode: the sum of the last ``window.days`` day buckets. Fixed mode: the points of the
    previous period (they set this period's tier) or of the current period so far, whichever is
    higher, since upgrades take effect as soon as the points are there (as Uber Pro).
    """
    if program.window.mode is WindowMode.ROLLING:
        return rolling_points(day_buckets(attributes), today, program)
    year, quarter = quarter_of(today)
    return max(
        period_points(attributes, year, quarter),
        period_points(attributes, *previous_quarter(year, quarter)),
    )
