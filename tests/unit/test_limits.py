"""The request windows of the per-member limit (shared/domain/limits.py): UTC minutes and days,
whatever the offset of ``now``, across minute, day, month, quarter and DST boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.domain.errors import RateLimited
from shared.domain.limits import RequestWindow, refusal


@pytest.mark.parametrize(
    ("now", "day", "minute", "to_minute", "to_day"),
    [
        (datetime(2026, 12, 4, 10, 15, 30, tzinfo=UTC), "2026-12-04", "10:15", 30, 49470),
        # The last second of a day, a month, a quarter and a year: the next request is tomorrow's.
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12-31", "23:59", 1, 1),
        (datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), "2027-01-01", "00:00", 60, 86400),
        (datetime(2026, 3, 31, 23, 59, 0, 500_000, tzinfo=UTC), "2026-03-31", "23:59", 60, 60),
        # An offset: the UTC day counts, not the caller's (01:30 in Berlin is 00:30 UTC).
        (
            datetime(2026, 7, 1, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),
            "2026-06-30",
            "23:30",
            60,
            1800,
        ),
        # The night New York's clocks go back (2026-11-01 01:30 happens twice): both instants
        # are distinct UTC minutes.
        (
            datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
            "2026-11-01",
            "05:30",
            60,
            66600,
        ),
        (
            datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
            "2026-11-01",
            "06:30",
            60,
            63000,
        ),
    ],
)
def test_the_windows_are_utc_minutes_and_days(
    now: datetime, day: str, minute: str, to_minute: int, to_day: int
) -> None:
    window = RequestWindow.at(now, per_minute=20, per_day=500)
    assert (window.day, window.minute) == (day, minute)
    assert (window.seconds_to_next_minute, window.seconds_to_next_day) == (to_minute, to_day)
    day_end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
    assert window.expires_at == int((day_end + timedelta(days=2)).timestamp())


def test_refusal_names_the_window_that_is_full() -> None:
    now = datetime(2026, 12, 4, 10, 15, 30, tzinfo=timezone(timedelta(hours=-5)))
    window = RequestWindow.at(now, per_minute=3, per_day=10)
    assert refusal(window, {}) is None
    assert refusal(window, {"n": 5, "mw": window.minute, "mn": 2}) is None
    # Another minute's count does not refuse: the request starts the new minute.
    assert refusal(window, {"n": 9, "mw": "00:00", "mn": 3}) is None
    minute = refusal(window, {"n": 5, "mw": window.minute, "mn": 3})
    assert isinstance(minute, RateLimited) and minute.status == 429
    assert minute.retry_after == 30 and "3 requests a minute" in minute.message
    day = refusal(window, {"n": 10, "mw": "00:00", "mn": 1})
    assert day is not None and day.retry_after == window.seconds_to_next_day
    assert "10 requests a day" in day.message and day.to_dict()["code"] == "rate_limited"
