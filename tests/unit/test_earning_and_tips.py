"""Earning rules and the tip-baiting rule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.earning import order_points
from shared.domain.events import TipAdjusted
from shared.domain.money import Money
from shared.domain.orders import is_tip_baited
from shared.domain.program import PeakMultiplier, Program, Weekday
from shared.programs import load_program


def with_peak(zone: str = "America/New_York") -> Program:
    base = load_program("cart-star")
    peak = PeakMultiplier(
        id="friday-rush", factor=Decimal("1.5"), days=(Weekday.FRI,), start=time(17), end=time(21)
    )
    data = base.model_dump()
    data["time_zone"] = zone
    data["earning"]["bonuses"] = [peak.model_dump()]
    return Program.model_validate(data)


@given(st.integers(min_value=1, max_value=3), st.datetimes(timezones=st.just(UTC)))
def test_points_are_ten_per_order_in_the_batch(batch: int, at: datetime) -> None:
    assert order_points(load_program("cart-star"), at, batch) == 10 * batch


@settings(max_examples=200)
@given(
    st.dates(min_value=datetime(2025, 1, 1).date(), max_value=datetime(2028, 12, 31).date()),
    st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_peak_multiplier_follows_local_time_across_dst(day: object, minute: int) -> None:
    program = with_peak()
    local = datetime.combine(day, time(0), tzinfo=program.zone) + timedelta(minutes=minute)  # type: ignore[arg-type]
    local = local.astimezone(program.zone)
    in_slot = local.weekday() == 4 and time(17) <= local.time() < time(21)
    expected = 15 if in_slot else 10
    assert order_points(program, local.astimezone(UTC), 1) == expected


def test_peak_multiplier_rounds_half_up() -> None:
    program = with_peak()
    friday_6pm_new_york = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    assert order_points(program, friday_6pm_new_york, 3) == 45
    assert order_points(program, friday_6pm_new_york - timedelta(hours=2), 3) == 30


def adjustment(previous: str, new: str, reason: str | None = None) -> TipAdjusted:
    return TipAdjusted.model_validate(
        {
            "orderId": "o",
            "memberId": "m",
            "customerId": "c",
            "previousTip": {"amount": previous, "currency": "USD"},
            "newTip": {"amount": new, "currency": "USD"},
            "reason": reason,
            "occurredAt": "2026-11-23T10:00:00+00:00",
        }
    )


@pytest.mark.parametrize(
    ("at_delivery", "new", "reason", "baited"),
    [
        ("10.00", "5.00", None, True),  # half of a $10 tip taken back
        ("10.00", "5.01", None, False),  # $4.99 of $10: less than half
        ("10.00", "8.00", None, False),  # $2 of $10 (the old min($2, 50%) rule baited it)
        ("5.00", "2.50", None, True),  # a $5 tip is the smallest that can be baited
        ("4.99", "0.00", None, False),  # all of a tip below $5: not a bait
        ("3.00", "1.50", None, False),  # (the old rule baited it)
        ("10.00", "0.00", "wrong address", False),  # a reason clears it
        ("10.00", "0.00", "   ", True),  # a blank reason is no reason
        ("10.00", "12.00", None, False),  # a raise is no bait
        ("0.00", "0.00", None, False),
    ],
)
def test_tip_bait_needs_a_5_dollar_tip_lowered_by_half(
    at_delivery: str, new: str, reason: str | None, baited: bool
) -> None:
    baseline = Money(amount=Decimal(at_delivery), currency="USD")
    program = load_program("cart-star")
    assert is_tip_baited(baseline, adjustment(at_delivery, new, reason), program) is baited


def test_tip_bait_compares_with_the_tip_at_delivery_not_the_previous_step() -> None:
    program = load_program("cart-star")
    # 10 -> 7 -> 5: each step is less than half, but the tip fell by half since delivery.
    baseline = Money(amount=Decimal("10.00"), currency="USD")
    assert not is_tip_baited(baseline, adjustment("10.00", "7.00"), program)
    assert is_tip_baited(baseline, adjustment("7.00", "5.00"), program)
