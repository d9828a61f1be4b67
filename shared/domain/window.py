"""Points windows, O(1) in the number of orders.

A member's points are kept in *buckets*: one number per calendar day (rolling mode) or per
period (fixed mode), on the member's item. Crediting an order adds to one bucket; computing
window points sums at most ``window.days`` day buckets, whatever the number of orders. Buckets
that can no longer enter any window are removed by the same writes that add points
(``prune_names``), so the member item stays small and its write cost constant.

The member item is written by every order, and DynamoDB bills 1 write unit per started KB of
it, so the day buckets are packed (docs/data-model.md, "Member item size"): the 7 days of a
*block* (days since 2020-01-01 divided by 7) share one number attribute, ``w<block in base
36>``, in which day ``k`` of the block (0-6) holds its points in decimal digits ``5k`` to
``5k + 4``. Crediting day ``k`` is ``ADD w<block> points * 10**(5k)``: still one atomic ADD, no
read, and each day stays its own counter. A window of 90 days spans at most 14 blocks of 21
bytes each, where 90 attributes of their own took 810 bytes. A day holds at most 99,999 points.

A day bucket is named by its day (``d:<days since 2020-01-01>``, what an order item records as
the bucket it credited); ``bucket_increment`` turns it into the member attribute and the amount
to add. Period buckets are attributes of their own: ``q:<year><quarter>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from .program import MAX_DAY_POINTS, Program, WindowMode
from .timeutil import previous_quarter, quarter_of

EPOCH = date(2020, 1, 1)
DAY_PREFIX = "d:"
PERIOD_PREFIX = "q:"
BLOCK_PREFIX = "w"
BLOCK_DAYS = 7
DAY_DIGITS = 5
DAY_SCALE = 10**DAY_DIGITS
"""A day's points occupy ``DAY_DIGITS`` decimal digits of its block: at most 99,999 a day, which
the program's earning rules guarantee (``MAX_DAY_POINTS``, checked when a program is loaded)."""
if MAX_DAY_POINTS != DAY_SCALE - 1:  # pragma: no cover - a constant mismatch, found at import
    raise ImportError("MAX_DAY_POINTS must be the capacity of a packed day")
PRUNE_SPAN_BLOCKS = 26
"""How many blocks before the window each write clears (half a year). A member idle for longer
keeps the blocks of their last window, which never count again; the tier evaluation of the
member's next change removes them (``unreachable_names``), so that the item stays bounded."""
PRUNE_SPAN_PERIODS = 4

_BLOCK_NAME = re.compile(r"w[0-9a-z]{1,6}")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if number == 0:
            return text


def _day_number(day: date) -> int:
    return (day - EPOCH).days


def day_bucket(day: date) -> str:
    """The name of a day's bucket (as an order item records it; see ``bucket_increment``)."""
    return f"{DAY_PREFIX}{_day_number(day)}"


def block_name(day: date) -> str:
    """The member attribute that holds ``day``'s points, with the 6 other days of its block."""
    return f"{BLOCK_PREFIX}{_base36(_day_number(day) // BLOCK_DAYS)}"


@lru_cache(maxsize=4096)
def block_first_day(name: str) -> date | None:
    """The first day of a block attribute, or None for any other attribute name. Cached: every
    member item holds the same few names, and evaluation asks for each of them."""
    if not _BLOCK_NAME.fullmatch(name):
        return None
    return EPOCH + timedelta(days=BLOCK_DAYS * int(name[len(BLOCK_PREFIX) :], 36))


@lru_cache(maxsize=4096)
def _block_days(first: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=offset) for offset in range(BLOCK_DAYS))


def is_window_attribute(name: str) -> bool:
    """Whether a member attribute holds window points (a day block or a period bucket)."""
    return block_first_day(name) is not None or name.startswith(PERIOD_PREFIX)


def period_bucket(day: date) -> str:
    year, quarter = quarter_of(day)
    return f"{PERIOD_PREFIX}{year}{quarter}"


def _quarter_bucket(year: int, quarter: int) -> str:
    return f"{PERIOD_PREFIX}{year}{quarter}"


def bucket_day(name: str) -> date | None:
    """The day of a day bucket, or None for any other name."""
    if not name.startswith(DAY_PREFIX):
        return None
    try:
        return EPOCH + timedelta(days=int(name[len(DAY_PREFIX) :]))
    except ValueError:
        return None


def bucket_increment(bucket: str, points: int) -> tuple[str, int]:
    """The member attribute to ``ADD`` to and the amount that adds ``points`` to ``bucket``."""
    day = bucket_day(bucket)
    if day is None:
        return bucket, points
    if day < EPOCH:
        raise ValueError(f"day bucket {bucket!r} is before {EPOCH}")
    return block_name(day), points * DAY_SCALE ** (_day_number(day) % BLOCK_DAYS)


def pack_days(points: Mapping[date, int]) -> dict[str, int]:
    """Member attributes holding these day buckets, as the credits would leave them (for
    fixtures, benchmarks and the local stack's seed data)."""
    attributes: dict[str, int] = {}
    for day, value in points.items():
        name, amount = bucket_increment(day_bucket(day), value)
        attributes[name] = attributes.get(name, 0) + amount
    return attributes


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


def _first_pruned_block(today: date, program: Program) -> int:
    """The last block wholly before the window: blocks up to it can no longer count."""
    return _day_number(window_start(today, program)) // BLOCK_DAYS - 1


def prune_names(today: date, program: Program) -> tuple[str, ...]:
    """Bucket names that a write on ``today`` removes: just before the window, never inside it
    (a block that still holds a day of the window stays)."""
    if program.window.mode is WindowMode.ROLLING:
        last = _first_pruned_block(today, program)
        return tuple(
            f"{BLOCK_PREFIX}{_base36(block)}"
            for block in range(last, last - PRUNE_SPAN_BLOCKS, -1)
            if block >= 0
        )
    year, quarter = previous_quarter(*quarter_of(today))
    names = []
    for _ in range(PRUNE_SPAN_PERIODS):
        year, quarter = previous_quarter(year, quarter)
        names.append(_quarter_bucket(year, quarter))
    return tuple(names)


def unreachable_names(
    attributes: Mapping[str, object], today: date, program: Program
) -> tuple[str, ...]:
    """Window attributes older than what any write from ``today`` on prunes: those a member
    idle for longer than the prune span left behind. They never count again; the tier
    evaluation removes them, so that the member item keeps at most one window of buckets."""
    if program.window.mode is WindowMode.ROLLING:
        oldest_pruned = _first_pruned_block(today, program) - PRUNE_SPAN_BLOCKS + 1
        limit = EPOCH + timedelta(days=BLOCK_DAYS * oldest_pruned)
        return tuple(
            sorted(
                name
                for name in attributes
                if (first := block_first_day(name)) is not None and first < limit
            )
        )
    oldest = min(prune_names(today, program))
    return tuple(
        sorted(name for name in attributes if name.startswith(PERIOD_PREFIX) and name < oldest)
    )


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError(f"bucket value {value!r} is not a whole number")


def day_buckets(attributes: Mapping[str, object]) -> dict[date, int]:
    """The day buckets found among a member item's attributes (unpacked from their blocks;
    days without points are left out)."""
    buckets: dict[date, int] = {}
    for name, value in attributes.items():
        first = block_first_day(name)
        if first is None:
            continue
        packed = _as_int(value)
        # Below zero only when a reversal reached a block that a later write had already pruned
        # (an event replayed with its original, older time): the block then holds nothing but
        # that reversal, before the window of the writes since; it never counts again and the
        # next prune removes it. Its days are read as negative.
        sign = -1 if packed < 0 else 1
        packed *= sign
        for day in _block_days(first):
            if not packed:
                break
            packed, points = divmod(packed, DAY_SCALE)
            if points:
                buckets[day] = sign * points
        if packed:
            raise ValueError(f"day block {name} holds more than {BLOCK_DAYS} days")
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
