"""Referral codes as typed and drawn, the week of the weekly challenge, and the program file's
rules for both (pure: no table)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared.domain.challenges import member_week, week_of
from shared.domain.program import Campaign
from shared.domain.referral import ALPHABET, CODE_LENGTH, lot_day, new_code, read_code
from shared.programs import load_program

PROGRAM = load_program("customer-rewards")


def test_codes_are_drawn_from_crockfords_alphabet() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000  # 50 bits: no repeat in a few thousand
    assert all(len(code) == CODE_LENGTH and set(code) <= set(ALPHABET) for code in codes)
    assert not set(ALPHABET) & set("ILOU")


def test_a_typed_code_forgives_case_spaces_hyphens_and_lookalikes() -> None:
    assert read_code("abcde-fghjk") == "ABCDEFGHJK"
    assert read_code(" 0o1Il 23456 ") == "0011123456"
    assert read_code("ABCDEFGHJ") is None  # too short
    assert read_code("ABCDEFGHJKM") is None  # too long
    assert read_code("ABCDEFGHJU") is None  # U is in no code


def test_weeks_run_monday_to_sunday_on_the_members_clock() -> None:
    assert week_of(date(2026, 11, 29)).key == "2026-W48"  # a Sunday
    assert week_of(date(2026, 11, 30)).start == date(2026, 11, 30)
    assert week_of(date(2027, 1, 1)).key == "2026-W53"  # ISO year of the week
    sunday_noon = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert member_week(sunday_noon, {}, PROGRAM).key == "2026-W48"
    assert member_week(sunday_noon, {"timeZone": "Pacific/Auckland"}, PROGRAM).key == "2026-W49"


def test_lot_days() -> None:
    assert lot_day("pd20261208") == date(2026, 12, 8)
    assert lot_day("av202612") == date(2026, 12, 1)
    assert lot_day("xp20270101") is None


@pytest.mark.parametrize(
    "campaign",
    [
        {"id": "w", "points": 1, "perMember": {"count": 1, "period": "week"}},
        {
            "id": "w",
            "points": 1,
            "when": {"ordersPerWeek": 3},
            "perMember": {"count": 2, "period": "week"},
        },
        {
            "id": "w",
            "points": 1,
            "when": {"ordersPerWeek": 3},
            "perMember": {"count": 1, "period": "month"},
        },
        {
            "id": "r",
            "points": 1,
            "when": {"event": "CustomerSignedUp", "ecoChoice": "no_cutlery"},
            "perMember": {"count": 1, "period": "year"},
        },
    ],
)
def test_the_program_file_refuses_what_the_engine_cannot_mean(campaign: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Campaign.model_validate(campaign)
