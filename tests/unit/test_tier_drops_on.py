"""``GET /v1/me``'s ``tierDropsOn``: the day the tier would drop with no more points.

Checked against hand-computed days across month and quarter boundaries, with and without a
grace period, and against the evaluator itself: the day the daily evaluation really takes the
tier away is the day ``tierDropsOn`` announced beforehand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from shared.domain.program import WindowMode
from shared.domain.tiers import Trigger, tier_drops_on
from shared.domain.window import pack_days, period_bucket
from shared.logic.members import member_view
from shared.logic.tiers import daily_evaluation, evaluate_member
from tests.unit.test_tiers import FakeMemberStore, program_with


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def drops_on(item: dict[str, Any], today: date, grace: int = 0) -> Any:
    view = member_view(item, at_noon(today), program_with(grace=grace))
    return view.model_dump(by_alias=True, mode="json")["tierDropsOn"]


def test_rolling_drop_is_the_day_the_oldest_needed_points_leave_the_window() -> None:
    # 150 points on March 1st and 100 on March 20th: Gold (250). On May 30th the window is
    # March 2nd .. May 30th: the 150 have left, 100 < 200.
    item: dict[str, Any] = pack_days({date(2026, 3, 1): 150, date(2026, 3, 20): 100})
    assert drops_on(item, date(2026, 4, 10)) == "2026-05-30"
    # A grace period of 3 days moves it past the month's end.
    assert drops_on(item, date(2026, 4, 10), grace=3) == "2026-06-02"


def test_points_that_keep_the_tier_after_the_first_leaves_move_the_drop_later() -> None:
    # 150 + 100 + 120: when March 1st leaves, 220 remain (still Gold); when March 20th leaves
    # (June 18th), 120 < 200.
    days = {date(2026, 3, 1): 150, date(2026, 3, 20): 100, date(2026, 4, 30): 120}
    assert drops_on(pack_days(days), date(2026, 5, 1)) == "2026-06-18"


def test_no_tier_no_drop_and_ineligible_no_drop() -> None:
    assert drops_on(pack_days({date(2026, 3, 1): 150}), date(2026, 3, 2)) is None
    assert drops_on({}, date(2026, 3, 2)) is None
    gold = pack_days({date(2026, 3, 1): 300})
    assert drops_on({**gold, "eligible": False}, date(2026, 3, 2)) is None


def test_points_already_below_drop_at_the_end_of_the_grace_the_evaluation_started() -> None:
    # The stored tier is Gold but the points fell below on May 30th (the daily evaluation saw
    # it then and wrote belowSince): with 3 grace days the tier goes on June 2nd.
    item = {**pack_days({date(2026, 3, 1): 250}), "tier": "gold", "belowSince": "2026-05-30"}
    assert drops_on(item, date(2026, 5, 31), grace=3) == "2026-06-02"
    # Before the daily evaluation saw it: counted from today.
    del item["belowSince"]
    assert drops_on(item, date(2026, 5, 31), grace=3) == "2026-06-03"
    # A recalculation's hold keeps it longer.
    item["tierHeldUntil"] = "2026-07-01"
    assert drops_on(item, date(2026, 5, 31), grace=3) == "2026-07-01"


@pytest.mark.parametrize("grace", [0, 2])
def test_the_daily_evaluation_drops_the_tier_on_the_announced_day(grace: int) -> None:
    program = program_with(grace=grace)
    store = FakeMemberStore()
    start = date(2026, 1, 20)
    for offset, points in ((0, 120), (5, 60), (40, 90)):  # Gold from day 40 on (270)
        store.credit(
            start + timedelta(days=offset), points, at_noon(start + timedelta(offset)), program
        )
    now = at_noon(start + timedelta(days=41))
    evaluate_member(store.item, now, program, Trigger.STREAM, store)
    assert store.item["tier"] == "gold"
    announced = member_view(store.item, now, program).tier_drops_on
    assert announced == start + timedelta(days=90 + grace)  # 120 leave: 150 < 200
    day = now.date()
    while store.item.get("tier") == "gold":
        day += timedelta(days=1)
        daily_evaluation(datetime.combine(day, time(0, 15), tzinfo=UTC), program, store)
        assert day <= announced, "the tier held past the announced day"
    assert day == announced


def fixed_item(previous: int, current: int, today: date) -> dict[str, Any]:
    """Fixed mode: last quarter's and this quarter's points."""
    last_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1) - timedelta(days=1)
    return {period_bucket(last_quarter): previous, period_bucket(today): current}


def test_fixed_periods_drop_at_the_next_period_start_when_its_tier_is_lower() -> None:
    program = program_with(mode=WindowMode.FIXED)
    today = date(2026, 12, 20)
    # Platinum from Q3's 1,200; Q4 so far earns Gold: Platinum ends when Q1 starts.
    item = fixed_item(1200, 300, today)
    assert tier_drops_on(item, today, "platinum", program) == date(2027, 1, 1)
    # Q4 already earns Platinum for Q1: with nothing more, Q1 earns nothing for Q2.
    item = fixed_item(1200, 1500, today)
    assert tier_drops_on(item, today, "platinum", program) == date(2027, 4, 1)
    # The quarter's last day in a zone behind UTC: still Q4 there, so still January 1st.
    late = program_with(zone="America/New_York", mode=WindowMode.FIXED)
    view = member_view(fixed_item(1200, 300, today), datetime(2027, 1, 1, 4, 30, tzinfo=UTC), late)
    assert view.tier == "platinum" and view.tier_drops_on == date(2027, 1, 1)
