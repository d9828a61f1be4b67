"""Raters (customers): the hard-to-please verdict and the tip-baiting flag.

**Hard to please** (default: at least 10 ratings given in the last 180 days with a mean of at most
3.5). Days are calendar days of ``submittedAt`` in the program's time zone, as ordinals. The
rater is hard to please *on* day D (a day they rated) when the ratings they gave on days
D-179 .. D are at least ``minRatings`` with a mean at most ``maxMean``. A low rating (below the
floor) given on day d is excluded when the rater is hard to please on some day D in
d .. d+179: the day they cross the line excludes their low ratings already counted in the
window that made them cross (retroactively), and once they are back over the line, their new
ratings count again, while the excluded ones stay excluded. Every verdict is a function of the
set of ratings, whatever the order in which they arrive.

The rater's item keeps, for the last 360 days (the window and 180 days) up to the latest day
rated, a bucket per day (ratings, stars, low ratings, a mark per rating at or above the floor)
and the days the rater was hard to please: every rating is judged from the item alone, a late
one (after a later one) too, since the days it can affect (179 either side) are kept as long as
it is at most 180 days older than the latest (``LATE_DAYS``). When a verdict changes for
ratings already stored, the item records the range of days to *reconcile*; the use case
re-decides the low ratings of those days (the rater's index holds only low ratings: nothing
else is ever re-decided) from the hard-to-please days kept, and clears the range.

A rating at or above the floor is never excluded by the rater's verdict, so the rater's item
takes it outside the rating's transaction, as a write of its own after it; its *mark* (a hash
of the order id in the day's bucket) tells a redelivery whether that write was made.

**Tip baiting** (by default: three tip-baited orders in 90 days flag the customer). An order is
tip-baited from its first baited tip change on, and counts at its delivery time; the customer
is flagged once, when three baited orders were delivered within 90 days of each other. Both
facts are fixed once known (a later raise does not un-bait an order, a delivery time never
moves). Old baits age out: when a bait is recorded at ``now``, the orders delivered more than
90 days before ``now`` leave the customer's record (it stays a handful of entries, however long
the customer's history), and a bait that old is not counted. So the flag, which is never
withdrawn, depends on the set of baits and the time each was recorded, not on the order in
which the tip changes arrive among those recorded at one time.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from msgspec import Struct, field
from msgspec.structs import replace

from .program import HardToPlease, Program
from .ratings import is_low
from .timeutil import local_day, to_utc_iso


class DayStats(Struct, frozen=True):
    count: int = 0
    total: int = 0
    low: int = 0
    marks: tuple[int, ...] = ()
    """``rating_mark`` of each rating at or above the floor counted here outside a transaction."""

    def plus(self, stars: int, low: bool, mark: int | None = None) -> DayStats:
        marks = self.marks if mark is None else (*self.marks, mark)
        return DayStats(self.count + 1, self.total + stars, self.low + int(low), marks)


def rating_mark(order_id: str) -> int:
    """A rating's mark in its day's bucket: 32 bits of its order id (one rating per order)."""
    return zlib.crc32(order_id.encode())


LATE_DAYS = 180
"""How much older than the rater's latest rating a rating may be and still be judged exactly
(a rating arrives days late at most; the dead-letter queue keeps a message 14 days)."""


def kept_days(rules: HardToPlease) -> int:
    """Days of buckets and hard-to-please days kept up to the latest day rated: the window and
    ``LATE_DAYS`` (360 days by default), so that a rating up to ``LATE_DAYS`` older than the
    latest (and a reconciliation of the days it covers) is judged from the item alone."""
    return rules.window_days + LATE_DAYS


class Given(Struct, frozen=True):
    """One rating as the rater's index holds it."""

    day: int
    stars: int
    member_id: str
    order_id: str
    slot_sk: str
    rating_id: str


TIP_BAIT_REASON = "tip_baited_orders"


MAX_CLEARANCES = 20
"""How many lifted flags a customer's item keeps in its audit trail (about 150 bytes each)."""


class Clearance(Struct, frozen=True):
    """An administrator lifted a customer's tip-baiting flag: who, when, why, and the flag."""

    flagged_at: str
    orders: tuple[str, ...]
    cleared_at: str
    by: str
    reason: str


class RaterState(Struct, frozen=True):
    """The rater's (customer's) item."""

    customer_id: str
    last_day: int | None = None
    days: Mapping[int, DayStats] = field(default_factory=dict)
    """Buckets of the days last_day-359 .. last_day that have ratings (``kept_days``)."""
    htp_days: tuple[int, ...] = ()
    """Days in last_day-359 .. last_day on which the rater was hard to please, ascending."""
    reconcile: tuple[int, int] | None = None
    """Days whose low ratings must be re-decided (a change not yet carried to the ratings)."""
    tip_baits: Mapping[str, str] = field(default_factory=dict)
    """Baited order id -> its delivery time (ISO UTC); no longer kept once flagged."""
    flagged_at: str | None = None
    flagged_orders: tuple[str, ...] = ()
    flag_window_days: int | None = None
    cleared_at: str | None = None
    """When an administrator last lifted the flag: baits of orders delivered up to then no
    longer count (a late tip change of such an order flags nobody again)."""
    clearances: tuple[Clearance, ...] = ()
    """The audit trail of lifted flags, oldest first (the last ``MAX_CLEARANCES``)."""
    version: int = 0
    """The version read; the repository writes ``version + 1`` under a condition on it."""

    def holds(self, day: int, mark: int) -> bool:
        """Whether the rating of this mark, on ``day``, is counted already."""
        stats = self.days.get(day)
        return stats is not None and mark in stats.marks


class Verdict(Struct, frozen=True):
    """The rater's state after a new rating, and the verdict on that rating."""

    state: RaterState
    hard_to_please: bool
    """Whether the new rating is excluded (it is low and the rater is hard to please)."""


def rater_day(submitted_at: datetime, program: Program) -> int:
    return local_day(submitted_at, program.zone).toordinal()


def hard_to_please(count: int, total: int, rules: HardToPlease) -> bool:
    return count >= rules.min_ratings and Decimal(total) <= rules.max_mean * count


def _merge(
    range_a: tuple[int, int] | None, range_b: tuple[int, int] | None
) -> tuple[int, int] | None:
    if range_a is None:
        return range_b
    if range_b is None:
        return range_a
    return min(range_a[0], range_b[0]), max(range_a[1], range_b[1])


def add_in_order(
    state: RaterState, day: int, stars: int, program: Program, mark: int | None = None
) -> Verdict:
    """A rating on or after the latest day rated: judged from the item alone.

    Only the verdict on ``day`` can change (no later days exist). It excludes or restores low
    ratings on the days from ``day - 179`` up to it that no other day already covers.
    ``mark``: the rating's ``rating_mark``, kept in its bucket (for a rating counted outside
    the rating's transaction)."""
    assert state.last_day is None or day >= state.last_day
    rules = program.moderation.hard_to_please
    span = rules.window_days
    low = is_low(stars, program)
    first = day - span + 1
    kept_from = day - kept_days(rules) + 1
    days = {d: stats for d, stats in state.days.items() if d >= kept_from}
    days[day] = days.get(day, DayStats()).plus(stars, low, mark)
    count = sum(stats.count for d, stats in days.items() if d >= first)
    total = sum(stats.total for d, stats in days.items() if d >= first)
    now_htp = hard_to_please(count, total, rules)
    kept_htp = [d for d in state.htp_days if kept_from <= d != day]
    old_htp = [d for d in state.htp_days if d >= first]
    new_htp = sorted(set(kept_htp) | ({day} if now_htp else set()))
    covered_before = max(old_htp, default=None)
    covered_after = max((d for d in new_htp if d >= first), default=None)
    # A low rating on day d (of these days) is excluded iff some HTP day is >= d: the days
    # between the two maxima change verdict. Only days with low ratings other than this one
    # need to be looked at again.
    flip = [
        d
        for d, stats in days.items()
        if d >= first
        and stats.low - (1 if d == day and low else 0) > 0
        and (covered_before is not None and d <= covered_before)
        != (covered_after is not None and d <= covered_after)
    ]
    to_reconcile = (min(flip), max(flip)) if flip else None
    new_state = replace(
        state,
        last_day=day,
        days=days,
        htp_days=tuple(new_htp),
        reconcile=_merge(state.reconcile, to_reconcile),
    )
    return Verdict(new_state, low and now_htp)


def htp_days_of(
    days: Mapping[int, DayStats], which: Iterable[int], rules: HardToPlease
) -> set[int]:
    """The days among ``which`` (rated days) on which the rater was hard to please, from the
    day buckets (which must hold the 180 days up to each of them)."""
    found = set()
    for day in which:
        if day not in days:
            continue
        window = [days[d] for d in range(day - rules.window_days + 1, day + 1) if d in days]
        count = sum(stats.count for stats in window)
        if hard_to_please(count, sum(stats.total for stats in window), rules):
            found.add(day)
    return found


def add_late(
    state: RaterState, day: int, stars: int, program: Program, mark: int | None = None
) -> Verdict:
    """A rating on a day before the latest day rated, judged from the buckets kept: the
    verdicts on ``day .. day + 179`` are recomputed with it, and the days whose low ratings
    they cover are to be reconciled. Exact for a rating at most ``LATE_DAYS`` older than the
    latest (the buckets of the 179 days either side are kept); an older one is judged from what is
    kept (see docs/ratings.md, Known limits)."""
    rules = program.moderation.hard_to_please
    span = rules.window_days
    low = is_low(stars, program)
    assert state.last_day is not None and day < state.last_day
    last = state.last_day
    kept_from = last - kept_days(rules) + 1
    affected = {d for d in state.days if day <= d <= day + span - 1} | {day}
    days = dict(state.days)
    days[day] = days.get(day, DayStats()).plus(stars, low, mark)
    before = htp_days_of(state.days, affected, rules)
    after = htp_days_of(days, affected, rules)
    changed = before ^ after
    to_reconcile = (min(changed) - span + 1, max(changed)) if changed else None
    if day < kept_from:
        del days[day]
    kept = {d for d in state.htp_days if not (day <= d <= day + span - 1)}
    kept |= {d for d in after if d >= kept_from}
    own = low and bool(after)
    new_state = replace(
        state,
        days=days,
        htp_days=tuple(sorted(kept)),
        reconcile=_merge(state.reconcile, to_reconcile),
    )
    return Verdict(new_state, own)


def add_rating(
    state: RaterState, day: int, stars: int, program: Program, mark: int | None = None
) -> Verdict:
    """A rating given on ``day``: in order (on or after the latest day rated) or late."""
    if state.last_day is None or day >= state.last_day:
        return add_in_order(state, day, stars, program, mark)
    return add_late(state, day, stars, program, mark)


def decide(
    state: RaterState, given: Sequence[Given], first: int, last: int, program: Program
) -> dict[str, bool]:
    """The verdict on each low rating given on days ``first .. last``, by rating id, from the
    hard-to-please days of ``state``.

    ``given`` (the rater's index) holds the low ratings of those days; a low rating is
    excluded when the rater was hard to please on one of the 180 days from its own. Days
    older than those kept are left as they stand."""
    rules = program.moderation.hard_to_please
    span = rules.window_days
    if state.last_day is not None:  # older days' hard-to-please days are no longer kept
        first = max(first, state.last_day - kept_days(rules) + 1)
    verdicts: dict[str, bool] = {}
    for rating in given:
        if first <= rating.day <= last and is_low(rating.stars, program):
            verdicts[rating.rating_id] = any(
                rating.day <= d <= rating.day + span - 1 for d in state.htp_days
            )
    return verdicts


def with_tip_bait(
    state: RaterState, order_id: str, baited_at: str, program: Program, now: datetime
) -> RaterState:
    """Count a baited order at ``baited_at`` (its delivery time); flag the customer on the third
    within the window. Baits delivered more than the window before ``now`` (this one too) are
    dropped from the record: they age out of the count, and the record stays small. Nothing
    changes once the customer is flagged (the flag is published once)."""
    if state.flagged_at is not None:
        return state
    if state.cleared_at is not None and baited_at <= state.cleared_at:
        return state  # delivered before the flag was lifted: the administrator weighed it
    known = state.tip_baits.get(order_id)
    if known is not None and known <= baited_at:
        return state
    rules = program.moderation.tip_bait
    window = timedelta(days=rules.flag_window_days)
    since = now - window
    baits = {
        order: at
        for order, at in {**state.tip_baits, order_id: baited_at}.items()
        if datetime.fromisoformat(at) >= since
    }
    ordered = sorted(baits.items(), key=lambda item: item[1])
    for start in range(len(ordered) - rules.flag_after + 1):
        group = ordered[start : start + rules.flag_after]
        first = datetime.fromisoformat(group[0][1])
        last = datetime.fromisoformat(group[-1][1])
        if last - first <= window:
            return replace(
                state,
                tip_baits={},
                flagged_at=to_utc_iso(now),
                flagged_orders=tuple(order for order, _ in group),
                flag_window_days=rules.flag_window_days,
            )
    return replace(state, tip_baits=baits)


def cleared_of_tip_baiting(
    state: RaterState, by: str, reason: str, now: datetime
) -> RaterState | None:
    """The customer with the tip-baiting flag lifted by ``by`` for ``reason`` (audited), and the
    baits counted so far forgotten; None when the customer is not flagged (nothing to lift)."""
    if state.flagged_at is None:
        return None
    at = to_utc_iso(now)
    clearance = Clearance(state.flagged_at, state.flagged_orders, at, by, reason)
    return replace(
        state,
        tip_baits={},
        flagged_at=None,
        flagged_orders=(),
        flag_window_days=None,
        cleared_at=at,
        clearances=(*state.clearances, clearance)[-MAX_CLEARANCES:],
    )
