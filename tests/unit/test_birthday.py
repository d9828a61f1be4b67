"""The birthday gift's rules, pure (shared.domain.birthday): the day a birthday falls on, the
instant it begins in the member's zone (clock changes included), and what the sweep decides."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.birthday import (
    MISSED,
    PAY,
    STALE,
    TOO_RECENT,
    birthday_campaign,
    birthday_in,
    day_starts,
    decide,
    index_keys,
    next_birthday,
)
from shared.domain.program import Campaign
from shared.programs import load_program

PROGRAM = load_program("customer-rewards")


def campaign() -> Campaign:
    found = birthday_campaign(PROGRAM)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("month_day", "year", "day"),
    [
        ("02-29", 2027, date(2027, 2, 28)),
        ("02-29", 2028, date(2028, 2, 29)),
        ("02-28", 2028, date(2028, 2, 28)),
        ("12-31", 2026, date(2026, 12, 31)),
        ("01-01", 2027, date(2027, 1, 1)),
    ],
)
def test_the_day_a_birthday_falls_on(month_day: str, year: int, day: date) -> None:
    assert birthday_in(month_day, year) == day


def test_a_day_begins_in_the_members_zone_clock_changes_included() -> None:
    # Los Angeles: 2027-03-14 is the day the clocks go forward (at 02:00): it begins in PST.
    assert day_starts(date(2027, 3, 14), ZoneInfo("America/Los_Angeles")) == datetime(
        2027, 3, 14, 8, tzinfo=UTC
    )
    assert day_starts(date(2027, 3, 15), ZoneInfo("America/Los_Angeles")) == datetime(
        2027, 3, 15, 7, tzinfo=UTC
    )
    # Santiago skips midnight on 2026-09-06 (00:00 becomes 01:00): the day begins at the change.
    santiago = ZoneInfo("America/Santiago")
    start = day_starts(date(2026, 9, 6), santiago)
    assert start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert start.astimezone(santiago).date() == date(2026, 9, 6)
    # Auckland is ahead: its 01-01 begins on 12-31 in UTC, which is the index's day.
    keys = index_keys(PROGRAM.id, date(2027, 1, 1), ZoneInfo("Pacific/Auckland"))
    assert keys == {
        "bdayDay": f"{PROGRAM.id}#2026-12-31",
        "bdayAt": "2026-12-31T11:00:00.000000+00:00",
    }


def test_the_next_birthday_is_today_while_it_is_today() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 2026-12-31T16:00Z is 2027-01-01 01:00 in Tokyo.
    assert next_birthday("01-01", tokyo, datetime(2026, 12, 31, 16, tzinfo=UTC)) == date(2027, 1, 1)
    assert next_birthday("12-31", tokyo, datetime(2026, 12, 31, 16, tzinfo=UTC)) == date(
        2027, 12, 31
    )
    assert next_birthday("02-29", ZoneInfo("UTC"), datetime(2027, 3, 1, tzinfo=UTC)) == date(
        2028, 2, 29
    )


def member(changed: str, at: str = "2027-06-20T00:00:00.000000+00:00") -> dict[str, str]:
    return {"birthday": "06-20", "bdayAt": at, "birthdayChangedAt": changed}


def test_what_the_sweep_decides() -> None:
    now = datetime(2027, 6, 20, 0, 5, tzinfo=UTC)
    paid = decide(PROGRAM, campaign(), member("2027-05-21T23:59:00+00:00"), now)
    assert (paid.verdict, paid.day) == (PAY, date(2027, 6, 20))
    assert paid.next_keys["bdayAt"] == "2028-06-20T00:00:00.000000+00:00"
    late = decide(PROGRAM, campaign(), member("2027-05-22T00:00:00+00:00"), now)
    assert late.verdict == TOO_RECENT  # 29 days before
    # Found the day after: still paid; two days after: missed, moved on.
    next_day = decide(PROGRAM, campaign(), member("2026-01-01T00:00:00+00:00"), now.replace(day=21))
    assert next_day.verdict == PAY
    missed = decide(PROGRAM, campaign(), member("2026-01-01T00:00:00+00:00"), now.replace(day=22))
    assert missed.verdict == MISSED
    # An index entry that is not the start of the member's birthday: recomputed.
    odd = decide(
        PROGRAM, campaign(), member("2026-01-01T00:00:00+00:00", at="2027-06-19T00:00:00Z"), now
    )
    assert odd.verdict == STALE
    assert odd.next_keys["bdayAt"] == "2027-06-20T00:00:00.000000+00:00"
