"""The annual dividend's rules (shared.domain.dividend) and its program data: which years a
Plus membership registers, when a year falls due, what a year's total pays, and bad ``dividend:``
data refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml

from shared.domain.dividend import dividend_points, due_year, plan_years, refunded_cents
from shared.domain.errors import ProgramConfigError
from shared.programs import PROGRAMS_DIR, load_program, parse_program

PROGRAM = load_program("customer-rewards")
TEXT = (PROGRAMS_DIR / "customer-rewards.yaml").read_text(encoding="utf-8")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_customer_program_pays_a_tenth_of_plus_members_orders_from_15_march() -> None:
    dividend = PROGRAM.dividend
    assert dividend is not None
    assert (dividend.campaign_id, dividend.plan, str(dividend.rate)) == (
        "annual_dividend",
        "plus",
        "0.10",
    )
    assert dividend.starts(2026).isoformat() == "2027-03-15"


@pytest.mark.parametrize(
    ("start", "until", "years"),
    [
        ("2026-03-01T00:00:00", "2026-09-01T00:00:00", (2026,)),
        ("2025-11-01T00:00:00", "2026-02-01T00:00:00", (2025, 2026)),
        ("2026-12-01T00:00:00", "2027-01-01T00:00:00", (2026,)),  # ends as 2027 begins
        ("2026-05-01T00:00:00", "2026-05-01T00:00:00", ()),  # never valid
        ("2026-05-01T00:00:00", "2090-05-01T00:00:00", (2026, 2027, 2028)),  # at most 3
    ],
)
def test_a_membership_registers_the_years_it_was_held(
    start: str, until: str, years: tuple[int, ...]
) -> None:
    assert plan_years(PROGRAM, at(start), at(until)) == years


def test_last_years_dividend_is_due_from_its_start_day() -> None:
    assert due_year(PROGRAM, at("2027-03-14T23:59:59")) is None
    assert due_year(PROGRAM, at("2027-03-15T00:00:00")) == 2026
    assert due_year(PROGRAM, at("2027-12-31T12:00:00")) == 2026
    assert due_year(PROGRAM, at("2028-01-01T00:00:00")) is None


def test_a_years_total_pays_its_rate_in_points_rounded_down_and_capped() -> None:
    dividend = PROGRAM.dividend
    assert dividend is not None
    assert dividend_points(PROGRAM, dividend, 27050) == 2705  # $27.05
    assert dividend_points(PROGRAM, dividend, 12345) == 1234  # $12.345: rounded down
    assert dividend_points(PROGRAM, dividend, 0) == 0
    assert dividend_points(PROGRAM, dividend, -500) == 0
    assert dividend_points(PROGRAM, dividend, 900_000_00) == dividend.max_points == 50_000
    assert refunded_cents(PROGRAM, "USD", Decimal("10.00"), Decimal("35.50")) == 2550
    assert refunded_cents(PROGRAM, "EUR", Decimal("0"), Decimal("35.50")) == 0


def _with_dividend(**changes: object) -> str:
    document = yaml.safe_load(TEXT)
    document["dividend"].update(changes)
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rate": "0"}, "dividend.rate"),
        ({"rate": "1.5"}, "dividend.rate"),
        ({"startsOn": "02-30"}, "dividend.startsOn"),
        ({"startsOn": "02-29"}, "dividend.startsOn"),
        ({"startsOn": "3-15"}, "dividend.startsOn"),
        ({"maxPoints": 0}, "dividend.maxPoints"),
        ({"budget": -1}, "dividend.budget"),
        ({"plan": "gold"}, "dividend.plan"),
        ({"campaignId": "birthday"}, "dividend.campaignId"),
        ({"percent": 10}, "dividend.percent"),
    ],
)
def test_bad_dividend_data_is_refused_naming_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ProgramConfigError) as refused:
        parse_program(_with_dividend(**changes), source="customer-rewards.yaml")
    assert refused.value.field == field
    assert field in str(refused.value)


def test_a_dividend_without_a_plan_is_refused() -> None:
    document = yaml.safe_load(TEXT)
    del document["dividend"]["plan"]
    with pytest.raises(ProgramConfigError) as refused:
        parse_program(yaml.safe_dump(document))
    assert refused.value.field == "dividend.plan"
