"""Tier rules against a reference model: a plain function of the ledger and a date.

A member's life is simulated day by day: orders arrive (some late, some reversed later), each
change is evaluated as the stream would (upgrades), and every day starts with the daily
evaluation of the members due (downgrades, at-risk notices). After each day the stored tier must
be what the reference says: the tier that the points of the window ending that day reach.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.program import Program, WindowMode, WindowRules
from shared.domain.tier_events import tier_events
from shared.domain.tiers import (
    HORIZON_DAYS,
    TierDecision,
    TierReason,
    Trigger,
    evaluate,
    next_drop_day,
    rank,
    tier_for,
)
from shared.domain.timeutil import local_day, previous_quarter, quarter_of
from shared.domain.window import (
    bucket_increment,
    credit_bucket,
    day_buckets,
    pack_days,
    prune_names,
    rolling_points,
)
from shared.logic.tiers import daily_evaluation, evaluate_member
from shared.programs import load_program

START = date(2026, 1, 1)


def program_with(
    zone: str = "UTC", mode: WindowMode = WindowMode.ROLLING, grace: int = 0
) -> Program:
    data = load_program("cart-star").model_dump()
    data["time_zone"] = zone
    data["window"] = WindowRules(mode=mode)
    data["downgrade"]["grace_days"] = grace
    return Program.model_validate(data)


@dataclass
class FakeMemberStore:
    """One member item, with the repository's write semantics (version and time condition)."""

    item: dict[str, Any] = field(
        default_factory=lambda: {"memberId": "m", "programId": "cart-star", "sk": "MEMBER"}
    )
    events: list[str] = field(default_factory=list)

    def credit(self, completed: date, points: int, now: datetime, program: Program) -> None:
        today = local_day(now, program.zone)
        bucket = credit_bucket(completed, today, program)
        old = dict(self.item)
        target = None
        if bucket is not None:
            target, amount = bucket_increment(bucket, points)
            self.item[target] = self.item.get(target, 0) + amount
        for name in prune_names(today, program):
            if name != target:
                self.item.pop(name, None)
        self.item["v"] = self.item.get("v", 0) + 1
        self.record(old)

    def record(self, old: dict[str, Any]) -> None:
        self.events.extend(e.detail_type for e in tier_events(old, self.item))

    def apply_tier(
        self, program_id: str, member_id: str, decision: TierDecision, version: int | None, at: str
    ) -> bool:
        if self.item.get("v") != version:
            return False
        if self.item.get("tierAt") is not None and self.item["tierAt"] > at:
            return False
        old = dict(self.item)
        if decision.tier is None:
            self.item.pop("tier", None)
        else:
            self.item["tier"] = decision.tier
        if decision.changed:
            self.item["tierReason"] = decision.reason.value if decision.reason else None
            self.item["tierChangedAt"] = at
        self.item["tierAt"] = at
        if decision.check_on is None:
            self.item.pop("checkOn", None)
        else:
            self.item["checkOn"] = decision.check_on.isoformat()
        if decision.at_risk_on is not None:
            self.item["atRiskFor"] = decision.at_risk_on.isoformat()
            self.item["atRiskTier"] = decision.tier
            self.item["atRiskDropsTo"] = decision.drops_to
        if decision.below_since is None:
            self.item.pop("belowSince", None)
        else:
            self.item["belowSince"] = decision.below_since.isoformat()
        if decision.held_until is None:
            self.item.pop("tierHeldUntil", None)
        else:
            self.item["tierHeldUntil"] = decision.held_until.isoformat()
        self.record(old)
        return True

    def remove_buckets(self, program_id: str, member_id: str, names: Sequence[str]) -> None:
        old = dict(self.item)
        for name in names:
            self.item.pop(name, None)
        self.record(old)

    def due_member_keys(self, program_id: str, today: date) -> Iterator[str]:
        if self.item.get("checkOn") is not None and self.item["checkOn"] <= today.isoformat():
            yield "m"

    def get_members(self, program_id: str, member_ids: list[str]) -> list[dict[str, Any]]:
        return [dict(self.item)] if member_ids else []


def reference_tier(ledger: list[tuple[date, int]], day: date, program: Program) -> str | None:
    """Plain definition: the points of the orders of the window (or period) ending on ``day``."""
    if program.window.mode is WindowMode.ROLLING:
        first = day - timedelta(days=program.window.days - 1)
        points = sum(p for completed, p in ledger if first <= completed <= day)
    else:
        current = quarter_of(day)
        previous = previous_quarter(*current)
        points = max(
            sum(
                p
                for completed, p in ledger
                if quarter_of(completed) == current and completed <= day
            ),
            sum(p for completed, p in ledger if quarter_of(completed) == previous),
        )
    tier = tier_for(points, program)
    return tier.id if tier else None


day_activity = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # days late
        st.sampled_from([10, 20, 30]),
        st.booleans(),  # reversed the next day
    ),
    max_size=8,
)


def simulate(days: list[list[tuple[int, int, bool]]], program: Program) -> None:
    store = FakeMemberStore()
    ledger: list[tuple[date, int]] = []
    reversals: dict[date, list[tuple[date, int]]] = {}
    for offset, activity in enumerate(days):
        today = START + timedelta(days=offset)
        morning = datetime.combine(today, time(0, 15), tzinfo=program.zone).astimezone(UTC)
        daily_evaluation(morning, program, store)
        for index, (late, points, reverse) in enumerate(activity):
            completed = today - timedelta(days=late)
            now = morning + timedelta(hours=1, minutes=index)
            store.credit(completed, points, now, program)
            ledger.append((completed, points))
            evaluate_member(store.item, now, program, Trigger.STREAM, store)
            if reverse:
                reversals.setdefault(today + timedelta(days=1), []).append((completed, points))
        for completed, points in reversals.pop(today, []):
            now = morning + timedelta(hours=20)
            store.credit(completed, -points, now, program)
            ledger.remove((completed, points))
            evaluate_member(store.item, now, program, Trigger.STREAM, store)
        evening = datetime.combine(today, time(23, 0), tzinfo=program.zone).astimezone(UTC)
        # A reversal's drop is the daily evaluation's to apply: the stream leaves it due today.
        if store.item.get("checkOn") is not None and store.item["checkOn"] <= today.isoformat():
            daily_evaluation(evening, program, store)
        assert store.item.get("tier") == reference_tier(ledger, today, program), (
            today,
            store.item,
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(day_activity, min_size=1, max_size=130), st.sampled_from(["UTC", "America/New_York"])
)
def test_stored_tier_follows_the_reference_every_day(days: list[Any], zone: str) -> None:
    simulate(days, program_with(zone))


@settings(max_examples=30, deadline=None)
@given(st.lists(day_activity, min_size=1, max_size=200))
def test_fixed_period_mode_follows_the_reference(days: list[Any]) -> None:
    simulate(days, program_with(mode=WindowMode.FIXED))


def busy_member(points_per_day: int, days: int, program: Program) -> FakeMemberStore:
    store = FakeMemberStore()
    for offset in range(days):
        day = START + timedelta(days=offset)
        store.credit(day, points_per_day, datetime.combine(day, time(12), tzinfo=UTC), program)
    return store


def test_upgrade_is_immediate_and_reasoned() -> None:
    program = program_with()
    store = busy_member(20, 10, program)  # 200 points on day 10
    now = datetime.combine(START + timedelta(days=9), time(13), tzinfo=UTC)
    run = evaluate_member(store.item, now, program, Trigger.STREAM, store)
    assert run.written == 1 and store.item["tier"] == "gold"
    assert store.item["tierReason"] == TierReason.POINTS_GAINED
    assert store.events == ["MemberTierChanged"]


def test_one_at_risk_notice_n_days_before_the_drop_then_the_downgrade() -> None:
    program = program_with()
    store = busy_member(20, 10, program)  # gold from day 10; points expire from day 91
    day10 = datetime.combine(START + timedelta(days=9), time(13), tzinfo=UTC)
    evaluate_member(store.item, day10, program, Trigger.STREAM, store)
    drop = START + timedelta(days=90)  # the first bucket leaves the window: 180 < 200
    assert store.item["checkOn"] == (drop - timedelta(days=7)).isoformat()
    for offset in range(10, 100):
        morning = datetime.combine(START + timedelta(days=offset), time(0, 15), tzinfo=UTC)
        daily_evaluation(morning, program, store)
        daily_evaluation(morning + timedelta(hours=1), program, store)  # a redelivered schedule
    assert store.events == ["MemberTierChanged", "MemberTierAtRisk", "MemberTierChanged"]
    assert store.item.get("tier") is None
    assert store.item["tierReason"] == TierReason.POINTS_EXPIRED
    assert store.item["atRiskFor"] == drop.isoformat()
    assert "checkOn" not in store.item, "no tier: out of the sparse index"


def test_grace_period_delays_the_downgrade() -> None:
    program = program_with(grace=3)
    store = busy_member(20, 10, program)
    evaluate_member(
        store.item,
        datetime.combine(START + timedelta(days=9), time(13), tzinfo=UTC),
        program,
        Trigger.STREAM,
        store,
    )
    drop = START + timedelta(days=90)
    for offset in range(10, 100):
        day = START + timedelta(days=offset)
        daily_evaluation(datetime.combine(day, time(0, 15), tzinfo=UTC), program, store)
        expected = "gold" if day < drop + timedelta(days=3) else None
        assert store.item.get("tier") == expected, day


def test_ineligible_member_loses_the_tier_and_gets_it_back() -> None:
    program = program_with()
    store = busy_member(20, 10, program)
    now = datetime.combine(START + timedelta(days=9), time(13), tzinfo=UTC)
    evaluate_member(store.item, now, program, Trigger.STREAM, store)
    # The rating repository's write bumps v with the flip: that is checked on DynamoDB Local
    # (test_rating_moderation.py's eligibility flip test); this fake only mirrors it.
    store.item.update(eligible=False, v=store.item["v"] + 1)
    evaluate_member(store.item, now + timedelta(minutes=1), program, Trigger.STREAM, store)
    assert "tier" not in store.item and store.item["tierReason"] == TierReason.RATING_INELIGIBLE
    store.item.update(eligible=True, v=store.item["v"] + 1)
    evaluate_member(store.item, now + timedelta(minutes=2), program, Trigger.STREAM, store)
    assert store.item["tier"] == "gold" and store.item["tierReason"] == TierReason.RATING_REINSTATED


def test_an_evaluation_of_an_older_state_or_instant_never_applies() -> None:
    program = program_with()
    store = busy_member(20, 10, program)
    stale = dict(store.item)
    store.credit(
        START + timedelta(days=9),
        10,
        datetime.combine(START + timedelta(days=9), time(14), tzinfo=UTC),
        program,
    )
    now = datetime.combine(START + timedelta(days=9), time(15), tzinfo=UTC)
    run = evaluate_member(stale, now, program, Trigger.STREAM, store)
    assert run.stale == 1 and "tier" not in store.item
    evaluate_member(store.item, now, program, Trigger.STREAM, store)
    assert store.item["tier"] == "gold"
    earlier = evaluate(store.item, START, program, Trigger.STREAM)
    assert not store.apply_tier(
        "cart-star", "m", earlier, store.item["v"], "2025-12-31T00:00:00.000000+00:00"
    )


def test_recalculation_keeps_tiers_until_the_period_ends_unless_told() -> None:
    program = program_with()
    store = busy_member(20, 10, program)
    store.item["tier"] = "platinum"
    today = START + timedelta(days=20)
    kept = evaluate(store.item, today, program, Trigger.RECALCULATION, allow_downgrades=False)
    assert kept.tier == "platinum" and kept.check_on == date(2026, 4, 1)
    moved = evaluate(store.item, today, program, Trigger.RECALCULATION, allow_downgrades=True)
    assert moved.tier == "gold" and moved.reason is TierReason.POLICY_CHANGED


def test_orders_that_only_push_the_drop_later_send_no_second_notice() -> None:
    program = program_with()
    store = busy_member(20, 10, program)
    evaluate_member(
        store.item,
        datetime.combine(START + timedelta(days=9), time(13), tzinfo=UTC),
        program,
        Trigger.STREAM,
        store,
    )
    notice_day = START + timedelta(days=83)  # 7 days before the first bucket expires
    daily_evaluation(datetime.combine(notice_day, time(0, 15), tzinfo=UTC), program, store)
    assert store.events.count("MemberTierAtRisk") == 1
    for offset in range(3):  # small orders: each pushes the drop a day later, not out of risk
        now = datetime.combine(notice_day + timedelta(days=offset), time(12), tzinfo=UTC)
        store.credit(now.date(), 10, now, program)
        evaluate_member(store.item, now, program, Trigger.STREAM, store)
    assert store.events.count("MemberTierAtRisk") == 1


def test_a_recalculation_hold_survives_the_members_next_orders() -> None:
    program = program_with()
    store = busy_member(20, 10, program)
    store.item["tier"] = "platinum"  # thresholds raised: 200 points no longer reach platinum
    today = START + timedelta(days=20)
    recalc_at = datetime.combine(today, time(3), tzinfo=UTC)
    evaluate_member(
        store.item, recalc_at, program, Trigger.RECALCULATION, store, allow_downgrades=False
    )
    assert store.item["tierHeldUntil"] == "2026-04-01"
    now = recalc_at + timedelta(hours=5)
    store.credit(today, 10, now, program)
    evaluate_member(store.item, now, program, Trigger.STREAM, store)
    daily_evaluation(now + timedelta(days=1), program, store)
    assert store.item["tier"] == "platinum", "held until the period ends"
    daily_evaluation(datetime.combine(date(2026, 4, 1), time(0, 15), tzinfo=UTC), program, store)
    # The period is over: the hold ends and the tier follows the points (by then 190: none).
    assert store.item.get("tier") is None and "tierHeldUntil" not in store.item


def reference_drop_day(
    attributes: dict[str, Any], today: date, tier_id: str, program: Program
) -> date | None:
    """The previous ``next_drop_day`` (rolling mode): slide the window one day at a time."""
    needed = rank(tier_id, program)
    buckets = day_buckets(attributes)
    span = timedelta(days=program.window.days)
    points = rolling_points(buckets, today, program)
    day = today
    for _ in range(HORIZON_DAYS):
        day += timedelta(days=1)
        points += buckets.get(day, 0) - buckets.get(day - span, 0)
        reached = tier_for(points, program)
        if rank(reached.id if reached else None, program) < needed:
            return day
    return None


@given(
    st.dictionaries(
        st.integers(min_value=-200, max_value=30),  # days from today (future days too)
        st.integers(min_value=1, max_value=900),
        max_size=40,
    ),
    st.sampled_from(["gold", "platinum", "diamond", "retired-tier"]),
)
@settings(max_examples=300)
def test_next_drop_day_visits_only_change_days_and_agrees_with_the_daily_slide(
    offsets: dict[int, int], tier_id: str
) -> None:
    program = load_program("cart-star")
    today = date(2026, 11, 23)
    attributes: dict[str, Any] = dict(
        pack_days({today + timedelta(days=offset): points for offset, points in offsets.items()})
    )
    assert next_drop_day(attributes, today, tier_id, program) == reference_drop_day(
        attributes, today, tier_id, program
    )
