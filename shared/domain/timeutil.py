"""Time helpers. Pure functions of their arguments: nothing here reads the clock.

Timestamps are ISO 8601 strings *with* an offset; they are stored in UTC. Calendar days, quarters
and windows are computed in the program's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema


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


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone_name(value: Any) -> Any:
    """An IANA zone name this runtime knows (``Europe/Berlin``), checked against the zone
    database's own list: never a file path, never a zone the clock cannot compute."""
    if not isinstance(value, str) or value not in _zone_names():
        raise ValueError(f"not an IANA time zone name: {value!r} (e.g. Europe/Berlin)")
    return value


TimeZoneName = Annotated[
    str,
    BeforeValidator(_zone_name),
    WithJsonSchema({"type": "string", "description": "An IANA time zone, e.g. Europe/Berlin"}),
]


def _month_day(value: Any) -> Any:
    """``MM-DD`` of a day that exists in some year: 02-29 is one (a leap day), 02-30 is not."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != "-":
        raise ValueError(f"not a birthday MM-DD: {value!r} (e.g. 07-14)")
    month, day = value[:2], value[3:]
    if not (month.isdigit() and day.isdigit()):
        raise ValueError(f"not a birthday MM-DD: {value!r} (e.g. 07-14)")
    try:
        date(2000, int(month), int(day))  # 2000 is a leap year: every real MM-DD exists in it
    except ValueError as exc:
        raise ValueError(f"no such day: {value!r}") from exc
    return value


Birthday = Annotated[
    str,
    BeforeValidator(_month_day),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{2}-\d{2}$",
            "description": "MM-DD of a real day (02-29 is one: it falls on 02-28 in other years)",
        }
    ),
]
"""A day of the year as ``MM-DD`` (no year: the member's age is none of the program's business)."""


def to_utc_iso(moment: datetime) -> str:
    """The storage form of an instant: UTC, ISO 8601 with microseconds and a ``+00:00`` offset.

    Fixed width, so that stored timestamps compare as strings in time order (DynamoDB conditions
    such as ``tipAdjustedAt < :at`` rely on it)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def to_compact_utc(moment: datetime) -> str:
    """The member item's form of an instant: ISO 8601 basic format, UTC, to the second
    (``20261123T101542Z``, 16 bytes where ``to_utc_iso`` takes 32). Fixed width, so it compares
    as a string in time order too. The member item is written by every order and billed per KB
    (docs/data-model.md, "Member item size"); the other items keep ``to_utc_iso``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_instant(value: str) -> datetime:
    """An instant stored in either form (``to_utc_iso`` or ``to_compact_utc``)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"stored instant without an offset: {value!r}")
    return moment


def stored_instant_iso(value: object) -> str | None:
    """A stored instant in the contract's form (``to_utc_iso``), for events and API bodies;
    None when absent."""
    if not isinstance(value, str) or not value:
        return None
    return to_utc_iso(parse_instant(value))


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
