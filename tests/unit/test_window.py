"""Window arithmetic against a reference model, across day, month, quarter and DST boundaries.

The reference is the plain definition: the points of orders whose completion falls, in the
program's time zone, on one of the last ``days`` calendar days (today included), or in fixed
mode in the current or previous quarter. The implementation keeps buckets, credits them when
each event is processed (possibly days late) and prunes as it goes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.orders import plan_reversal
from shared.domain.program import Program, WindowMode, WindowRules
from shared.domain.timeutil import local_day, previous_quarter, quarter_of
from shared.domain.window import (
    DAY_SCALE,
    EPOCH,
    PRUNE_SPAN_BLOCKS,
    block_name,
    bucket_increment,
    credit_bucket,
    day_bucket,
    day_buckets,
    is_live,
    pack_days,
    prune_names,
    unreachable_names,
    window_points,
    window_start,
)
from shared.programs import load_program

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
# Instants next to the boundaries that matter: DST changes, month and quarter ends, year end.
BOUNDARIES = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # US DST starts
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # US DST ends
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # EU DST starts
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # EU DST ends
    datetime(2026, 4, 5, 15, 0, tzinfo=UTC),  # Lord Howe DST ends (30 min)
    datetime(2026, 3, 31, 23, 30, tzinfo=UTC),  # quarter end
    datetime(2026, 6, 30, 23, 59, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),  # year end
    datetime(2027, 2, 28, 23, 0, tzinfo=UTC),  # month end
]


def program_in(zone: str, mode: WindowMode = WindowMode.ROLLING, days: int = 90) -> Program:
    base = load_program("cart-star")
    return Program.model_validate(
        {
            **base.model_dump(),
            "time_zone": zone,
            "window": WindowRules(mode=mode, days=days),
        }
    )


instants = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(BOUNDARIES),
    st.integers(min_value=-200 * 24 * 60, max_value=3 * 24 * 60),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[datetime, datetime, int, bool]], datetime]:
    """Orders as (completed_at, processed_at, points, reversed) and an evaluation instant."""
    orders = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        completed = draw(instants)
        lateness = draw(st.sampled_from([0, 5, 60 * 24, 3 * 60 * 24, 100 * 60 * 24]))
        points = draw(st.sampled_from([10, 20, 30, 15]))
        orders.append(
            (completed, completed + timedelta(minutes=lateness), points, draw(st.booleans()))
        )
    latest = max((processed for _, processed, _, _ in orders), default=BOUNDARIES[0])
    evaluation = latest + timedelta(
        hours=1, minutes=draw(st.integers(min_value=0, max_value=120 * 24 * 60))
    )
    return orders, evaluation


def replay(
    orders: list[tuple[datetime, datetime, int, bool]], program: Program
) -> dict[str, object]:
    """What the repository does to the member item: credits at their processing time, and each
    reversal an hour after its credit, all in processing order; ADD on a missing attribute
    starts from zero, as DynamoDB's ADD does, and day buckets are packed in their blocks."""
    attributes: dict[str, int] = {}
    steps: list[tuple[datetime, int, str, int]] = []
    for index, (_, processed, _, reverse) in enumerate(orders):
        steps.append((processed, index, "credit", 0))
        if reverse:
            steps.append((processed + timedelta(hours=1), index, "reverse", 0))
    credited: dict[int, str | None] = {}
    for at, index, kind, _ in sorted(steps):
        completed, _, points, _ = orders[index]
        today = local_day(at, program.zone)
        if kind == "credit":
            bucket = credit_bucket(local_day(completed, program.zone), today, program)
            credited[index] = bucket
            delta = points
        else:
            plan = plan_reversal(program, points, credited[index], at)
            bucket, delta = plan.bucket, plan.points
        target = None
        if bucket is not None:
            target, amount = bucket_increment(bucket, delta)
            attributes[target] = attributes.get(target, 0) + amount
        for name in prune_names(today, program):
            if name != target:
                attributes.pop(name, None)
    return dict(attributes)


def reference_rolling(
    orders: list[tuple[datetime, datetime, int, bool]], at: datetime, program: Program
) -> int:
    today = at.astimezone(ZoneInfo(program.time_zone)).date()
    first = today - timedelta(days=program.window.days - 1)
    return sum(
        points
        for completed, _, points, reverse in orders
        if not reverse
        and first <= completed.astimezone(ZoneInfo(program.time_zone)).date() <= today
    )


def reference_fixed(
    orders: list[tuple[datetime, datetime, int, bool]], at: datetime, program: Program
) -> int:
    zone = ZoneInfo(program.time_zone)
    current = quarter_of(at.astimezone(zone).date())
    previous = previous_quarter(*current)

    def total(quarter: tuple[int, int]) -> int:
        return sum(
            points
            for completed, _, points, reverse in orders
            if not reverse and quarter_of(completed.astimezone(zone).date()) == quarter
        )

    return max(total(current), total(previous))


@settings(max_examples=300, deadline=None)
@given(histories(), st.sampled_from(ZONES))
def test_rolling_window_points_equal_the_reference(
    history: tuple[list[tuple[datetime, datetime, int, bool]], datetime], zone: str
) -> None:
    orders, evaluation = history
    program = program_in(zone)
    attributes = replay(orders, program)
    assert window_points(attributes, local_day(evaluation, program.zone), program) == (
        reference_rolling(orders, evaluation, program)
    )


@settings(max_examples=200, deadline=None)
@given(histories(), st.sampled_from(ZONES))
def test_fixed_quarter_points_equal_the_reference(
    history: tuple[list[tuple[datetime, datetime, int, bool]], datetime], zone: str
) -> None:
    orders, evaluation = history
    program = program_in(zone, WindowMode.FIXED)
    attributes = replay(orders, program)
    today = local_day(evaluation, program.zone)
    assert window_points(attributes, today, program) == reference_fixed(orders, evaluation, program)


@settings(max_examples=300, deadline=None)
@given(instants, st.sampled_from(ZONES), st.integers(min_value=1, max_value=366))
def test_pruning_never_touches_a_bucket_inside_the_window(
    now: datetime, zone: str, days: int
) -> None:
    program = program_in(zone, days=days)
    today = local_day(now, program.zone)
    first = window_start(today, program)
    inside = {block_name(first + timedelta(days=offset)) for offset in range(days)}
    pruned = set(prune_names(today, program))
    assert not inside & pruned
    # Every block wholly before the window goes, a week or half a year back.
    assert block_name(first - timedelta(days=7)) in pruned
    assert block_name(first - timedelta(days=7 * PRUNE_SPAN_BLOCKS)) in pruned
    assert block_name(first - timedelta(days=7 * PRUNE_SPAN_BLOCKS + 7)) not in pruned


def test_window_is_90_calendar_days_including_today() -> None:
    program = program_in("UTC")
    today = date(2026, 11, 23)
    assert window_start(today, program) == date(2026, 8, 26)
    packed = pack_days({date(2026, 8, 26): 10, date(2026, 8, 25): 20, today: 5})
    # Numbers come back from boto3 as Decimal.
    attributes = {name: Decimal(value) for name, value in packed.items()}
    assert window_points(attributes, today, program) == 15


def test_late_event_counts_on_its_own_day_in_the_program_zone() -> None:
    program = program_in("America/New_York")
    completed = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)  # 22:30 on Nov 19 in New York
    processed = completed + timedelta(days=3)
    bucket = credit_bucket(
        local_day(completed, program.zone), local_day(processed, program.zone), program
    )
    assert bucket == day_bucket(date(2026, 11, 19))


def test_an_order_older_than_the_window_credits_no_bucket() -> None:
    program = program_in("UTC")
    assert credit_bucket(date(2026, 8, 25), date(2026, 11, 23), program) is None
    assert credit_bucket(date(2026, 8, 26), date(2026, 11, 23), program) is not None


def test_a_reversal_leaves_buckets_that_aged_out_alone() -> None:
    program = program_in("UTC")
    bucket = day_bucket(date(2026, 8, 1))
    assert not is_live(bucket, date(2026, 11, 23), program)
    assert plan_reversal(program, 20, bucket, datetime(2026, 11, 23, tzinfo=UTC)).bucket is None
    assert plan_reversal(program, 20, bucket, datetime(2026, 8, 2, tzinfo=UTC)).bucket == bucket


def test_a_block_packs_seven_days_each_in_its_own_five_digits() -> None:
    start = EPOCH + timedelta(days=7 * 360)  # the first day of block 360, "wa0"
    assert block_name(start) == "wa0" == block_name(start + timedelta(days=6))
    assert block_name(start + timedelta(days=7)) == "wa1"
    assert bucket_increment(day_bucket(start), 30) == ("wa0", 30)
    assert bucket_increment(day_bucket(start + timedelta(days=2)), 30) == ("wa0", 30 * 10**10)
    assert bucket_increment(day_bucket(start + timedelta(days=6)), -20) == ("wa0", -20 * 10**30)
    assert bucket_increment("q:20264", 30) == ("q:20264", 30)
    week = {start + timedelta(days=offset): DAY_SCALE - 1 - offset for offset in range(7)}
    packed = pack_days(week)
    assert list(packed) == ["wa0"] and len(str(packed["wa0"])) == 35
    assert day_buckets({**packed, "walletBalance": Decimal("1.5"), "v": 3}) == week
    # A reversal that takes a day back to zero leaves the other days alone.
    name, amount = bucket_increment(day_bucket(start + timedelta(days=3)), -(DAY_SCALE - 4))
    assert day_buckets({name: packed[name] + amount}) == {
        day: points for day, points in week.items() if day != start + timedelta(days=3)
    }


def test_buckets_left_behind_by_a_long_absence_are_unreachable_until_removed() -> None:
    program = program_in("UTC")
    today = date(2026, 11, 23)
    first = window_start(today, program)
    recent = pack_days({first - timedelta(days=1): 10, today: 10})
    old_day = first - timedelta(days=7 * PRUNE_SPAN_BLOCKS + 7)
    old = pack_days({old_day: 20, old_day - timedelta(days=60): 30})
    attributes = {**recent, **old, "lifetimePoints": 70, "q:20241": 5}
    assert set(unreachable_names(attributes, today, program)) == set(old)
    assert not set(unreachable_names(attributes, today, program)) & set(prune_names(today, program))
    assert unreachable_names(recent, today, program) == ()
