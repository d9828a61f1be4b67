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

The rater's item keeps, for the last 180 days up to the latest day rated, a bucket per day
(ratings, stars, low ratings) and the days the rater was hard to please: a rating on or after
the latest day is judged from the item alone. A rating that arrives after a later one (late)
is judged from the rater's index of ratings (a query over the days it can affect). When a
verdict changes for ratings already stored, the item records the range of days to
*reconcile*; the use case re-decides the low ratings of those days and clears the range.

**Tip baiting** (by default: three tip-baited orders in 90 days flag the customer). An order is
tip-baited from its first baited tip change on, and counts at its delivery time; the customer
is flagged once, when three baited orders were delivered within 90 days of each other. Both
facts are fixed once known (a later raise does not un-bait an order, a delivery time never
moves), so the flag, which is never withdrawn, depends only on the set of events, not on the
order in which the tip changes arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from .program import HardToPlease, Program
from .ratings import is_low
from .timeutil import local_day, to_utc_iso


@dataclass(frozen=True)
class DayStats:
    count: int = 0
    total: int = 0
    low: int = 0

    def plus(self, stars: int, low: bool) -> DayStats:
        return DayStats(self.count + 1, self.total + stars, self.low + int(low))


@dataclass(frozen=True)
class Given:
    """One rating as the rater's index holds it."""

    day: int
    stars: int
    member_id: str
    order_id: str
    slot_sk: str
    rating_id: str


TIP_BAIT_REASON = "tip_baited_orders"


@dataclass(frozen=True)
class RaterState:
    """The rater's (customer's) item."""

    customer_id: str
    last_day: int | None = None
    days: Mapping[int, DayStats] = field(default_factory=dict)
    """Buckets of the days last_day-179 .. last_day that have ratings."""
    htp_days: tuple[int, ...] = ()
    """Days in last_day-179 .. last_day on which the rater was hard to please, ascending."""
    reconcile: tuple[int, int] | None = None
    """Days whose low ratings must be re-decided (a change not yet carried to the ratings)."""
    tip_baits: Mapping[str, str] = field(default_factory=dict)
    """Baited order id -> its delivery time (ISO UTC); no longer kept once flagged."""
    flagged_at: str | None = None
    flagged_orders: tuple[str, ...] = ()
    flag_window_days: int | None = None
    version: int = 0
    """The version read; the repository writes ``version + 1`` under a condition on it."""


@dataclass(frozen=True)
class Verdict:
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


def add_in_order(state: RaterState, day: int, stars: int, program: Program) -> Verdict:
    """A rating on or after the latest day rated: judged from the item alone.

    Only the verdict on ``day`` can change (no later days exist). It excludes or restores low
    ratings on the days from ``day - 179`` up to it that no other day already covers."""
    assert state.last_day is None or day >= state.last_day
    rules = program.moderation.hard_to_please
    span = rules.window_days
    low = is_low(stars, program)
    first = day - span + 1
    days = {d: stats for d, stats in state.days.items() if d >= first}
    days[day] = days.get(day, DayStats()).plus(stars, low)
    count = sum(stats.count for stats in days.values())
    total = sum(stats.total for stats in days.values())
    now_htp = hard_to_please(count, total, rules)
    old_htp = [d for d in state.htp_days if d >= first]
    new_htp = sorted({d for d in old_htp if d != day} | ({day} if now_htp else set()))
    covered_before = max(old_htp, default=None)
    covered_after = max(new_htp, default=None)
    # A low rating on day d (of these days) is excluded iff some HTP day is >= d: the days
    # between the two maxima change verdict. Only days with low ratings other than this one
    # need to be looked at again.
    flip = [
        d
        for d, stats in days.items()
        if stats.low - (1 if d == day and low else 0) > 0
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


def htp_days_of(given: Iterable[Given], days: Iterable[int], rules: HardToPlease) -> set[int]:
    """The days among ``days`` (rated days) on which the rater was hard to please, from
    ``given`` (which must hold every rating of the 180 days up to each of them)."""
    by_day: dict[int, list[int]] = {}
    for rating in given:
        by_day.setdefault(rating.day, []).append(rating.stars)
    found = set()
    for day in days:
        if day not in by_day:
            continue
        window = [s for d in range(day - rules.window_days + 1, day + 1) for s in by_day.get(d, [])]
        if hard_to_please(len(window), sum(window), rules):
            found.add(day)
    return found


def add_late(
    state: RaterState, given: Sequence[Given], day: int, stars: int, program: Program
) -> Verdict:
    """A rating on a day before the latest day rated. ``given`` is the rater's index for the
    days ``day - 179 .. day + 179`` (without this rating): the verdicts on ``day .. day + 179``
    are recomputed with it, and the days whose low ratings they cover are to be reconciled."""
    rules = program.moderation.hard_to_please
    span = rules.window_days
    low = is_low(stars, program)
    assert state.last_day is not None and day < state.last_day
    affected = {rating.day for rating in given if day <= rating.day <= day + span - 1} | {day}
    this = Given(day, stars, "", "", "", "")
    before = htp_days_of(given, affected, rules)
    after = htp_days_of([*given, this], affected, rules)
    changed = before ^ after
    to_reconcile = (min(changed) - span + 1, max(changed)) if changed else None
    last = state.last_day
    days = dict(state.days)
    if day >= last - span + 1:
        days[day] = days.get(day, DayStats()).plus(stars, low)
    kept = {d for d in state.htp_days if not (day <= d <= day + span - 1)}
    kept |= {d for d in after if d >= last - span + 1}
    own = low and bool(after)
    new_state = replace(
        state,
        days=days,
        htp_days=tuple(sorted(kept)),
        reconcile=_merge(state.reconcile, to_reconcile),
    )
    return Verdict(new_state, own)


def decide(given: Sequence[Given], first: int, last: int, program: Program) -> dict[str, bool]:
    """The verdict on each low rating given on days ``first .. last``, by slot key.

    ``given`` must hold the rater's ratings of days ``first - 179 .. last + 179``."""
    rules = program.moderation.hard_to_please
    span = rules.window_days
    rated_days = {rating.day for rating in given if first <= rating.day <= last + span - 1}
    htp = htp_days_of(given, rated_days, rules)
    verdicts: dict[str, bool] = {}
    for rating in given:
        if first <= rating.day <= last and is_low(rating.stars, program):
            verdicts[rating.slot_sk] = any(rating.day <= d <= rating.day + span - 1 for d in htp)
    return verdicts


def with_tip_bait(
    state: RaterState, order_id: str, baited_at: str, program: Program, now: datetime
) -> RaterState:
    """Count a baited order at ``baited_at`` (its delivery time); flag the customer on the third
    within the window. Nothing changes once the customer is flagged (the flag is published
    once)."""
    if state.flagged_at is not None:
        return state
    known = state.tip_baits.get(order_id)
    if known is not None and known <= baited_at:
        return state
    baits = {**state.tip_baits, order_id: baited_at}
    rules = program.moderation.tip_bait
    ordered = sorted(baits.items(), key=lambda item: item[1])
    window = timedelta(days=rules.flag_window_days)
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
