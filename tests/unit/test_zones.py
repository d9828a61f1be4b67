"""The shopper's clock (``shared.domain.zones``): an order's day, its window bucket and its quarter
(fixed mode) are counted in the member's zone, else the program's; customer programs keep their
own clock; the daily evaluation asks the index up to the latest day anywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime

from shared.domain.events import OrderCompleted
from shared.domain.orders import plan_credit, plan_reversal
from shared.domain.program import WindowMode
from shared.domain.zones import for_member, in_zone, latest_local_day, stored_zone
from shared.programs import load_program
from tests.unit.test_window import program_in

NY = "America/New_York"
LA = "America/Los_Angeles"


def completed(at: str) -> OrderCompleted:
    return OrderCompleted.model_validate(
        {
            "orderId": "o-1",
            "memberId": "ann",
            "customerId": "c-1",
            "completedAt": at,
            "total": {"amount": "40.00", "currency": "USD"},
            "tip": {"amount": "5.00", "currency": "USD"},
        }
    )


def test_an_order_at_2330_on_march_31_in_new_york_counts_in_q1_there_and_q2_on_utc() -> None:
    program = program_in("UTC", WindowMode.FIXED)
    event = completed("2027-03-31T23:30:00-04:00")  # 03:30 UTC on April 1
    now = datetime(2027, 4, 1, 4, 0, tzinfo=UTC)
    assert plan_credit(program, event, now, NY).bucket == "q:20271"
    assert plan_credit(program, event, now, NY).day == date(2027, 3, 31)
    assert plan_credit(program, event, now, None).bucket == "q:20272"
    assert plan_credit(program, event, now, NY).zone == NY
    assert plan_credit(program, event, now, None).zone is None


def test_the_programs_own_zone_is_kept_as_no_zone_of_the_members() -> None:
    program = program_in(NY)
    assert stored_zone(program, NY) is None
    assert stored_zone(program, LA) == LA
    assert in_zone(program, NY) is program
    clock = in_zone(program, LA)
    assert str(clock.zone) == LA and str(program.zone) == NY
    assert in_zone(program, LA) is clock  # one copy per program and zone


def test_a_reversal_plans_on_the_members_today() -> None:
    program = program_in("UTC")
    # Day 90 of the window: Jan 1 2027 01:00 UTC is still Dec 31 in Los Angeles, where the
    # bucket of 2026-10-03 is the window's first day; on UTC it has left the window.
    now = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)
    bucket = "d:2467"  # 2026-10-03 (days since 2020-01-01)
    assert plan_reversal(program, 10, bucket, now, LA).bucket == bucket
    assert plan_reversal(program, 10, bucket, now, None).bucket is None


def test_customer_programs_keep_their_own_clock() -> None:
    customers = load_program("customer-rewards")
    assert for_member(customers, {"timeZone": LA}) is customers
    shoppers = load_program("cart-star")
    assert str(for_member(shoppers, {"timeZone": LA}).zone) == LA
    assert for_member(shoppers, {}) is shoppers


def test_the_latest_day_anywhere_is_at_most_one_after_utcs() -> None:
    assert latest_local_day(datetime(2026, 12, 5, 0, 15, tzinfo=UTC)) == date(2026, 12, 5)
    assert latest_local_day(datetime(2026, 12, 5, 10, 0, tzinfo=UTC)) == date(2026, 12, 6)


def test_the_daily_evaluation_drops_a_los_angeles_member_on_their_own_day() -> None:
    from shared.domain.tiers import Trigger  # noqa: PLC0415
    from shared.logic.tiers import daily_evaluation, evaluate_member  # noqa: PLC0415
    from tests.unit.test_tiers import FakeMemberStore  # noqa: PLC0415

    program = load_program("cart-star")  # UTC
    earned = datetime(2026, 9, 1, 18, 0, tzinfo=UTC)
    for zone, still_held_at, dropped_at in (
        # 200 points on Sep 1 count through Nov 29: the drop is Nov 30, on the member's clock.
        (LA, datetime(2026, 11, 30, 0, 15, tzinfo=UTC), datetime(2026, 12, 1, 0, 15, tzinfo=UTC)),
        (
            None,
            datetime(2026, 11, 29, 0, 15, tzinfo=UTC),
            datetime(2026, 11, 30, 0, 15, tzinfo=UTC),
        ),
    ):
        store = FakeMemberStore()
        if zone is not None:
            store.item["timeZone"] = zone
        clock = in_zone(program, zone)
        store.credit(date(2026, 9, 1), 200, earned, clock)
        evaluate_member(store.item, earned, program, Trigger.STREAM, store)
        assert store.item["tier"] == "gold" and store.item["checkOn"] <= "2026-11-30", store.item
        daily_evaluation(still_held_at, program, store)
        assert store.item.get("tier") == "gold", (zone, store.item)
        daily_evaluation(dropped_at, program, store)
        assert store.item.get("tier") is None, (zone, store.item)
