"""Time helpers. Pure functions of their arguments: nothing here reads the clock.

Timestamps are ISO 8601 strings *with* an offset; they are stored in UTC. Calendar days, quarters
and windows are computed in the program's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BeforeValidator


def _iso_with_offset(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry a UTC offset, e.g. 2026-11-23T10:15:00+00:00")
        return value
    if not isinstance(value, str):
        raise ValueError("timestamp must be an ISO 8601 string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset, e.g. 2026-11-23T10:15:00+00:00")
    return parsed


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_with_offset)]
"""An aware datetime parsed strictly from an ISO 8601 string with an offset."""


def to_utc_iso(moment: datetime) -> str:
    """The storage form of an instant: UTC, ISO 8601 with microseconds and a ``+00:00`` offset.

    Fixed width, so that stored timestamps compare as strings in time order (DynamoDB conditions
    such as ``tipAdjustedAt < :at`` rely on it)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day on which ``moment`` falls in time zone ``tz``."""
    return moment.astimezone(tz).date()


def quarter_of(day: date) -> tuple[int, int]:
    """(year, quarter 1-4) of a calendar day."""
    return day.year, (day.month - 1) // 3 + 1


def quarter_start(day: date) -> date:
    year, quarter = quarter_of(day)
    return date(year, 3 * (quarter - 1) + 1, 1)


def previous_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year, quarter - 1) if quarter > 1 else (year - 1, 4)
