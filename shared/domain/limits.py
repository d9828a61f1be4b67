"""Per-member request limits on the routes that write for a member (docs/perks.md, "Request
limits"): at most ``per_minute`` requests in a calendar minute and ``per_day`` in a calendar
day, both in UTC (a limit is about load, not about the member's local day).

One item per member and day counts both: ``n`` (the day's requests), ``mw`` (the minute being
counted, ``HH:MM``) and ``mn`` (its requests). A request is one conditional ``UpdateItem``:
within the same minute ``ADD n 1, mn 1`` while both stay within their limits; the first request
of a new minute sets ``mw`` and ``mn = 1`` instead. The day's count is also the bound on what a
member can make the engine store (each new ``Idempotency-Key`` keeps its first answer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import Struct

from shared.domain.errors import RateLimited

__all__ = ["RequestWindow", "refusal"]


class RequestWindow(Struct, frozen=True):
    """The windows a request made at ``now`` counts in."""

    day: str
    """``YYYY-MM-DD`` (UTC): the counting item's key."""
    minute: str
    """``HH:MM`` (UTC)."""
    per_minute: int
    per_day: int
    seconds_to_next_minute: int
    seconds_to_next_day: int
    expires_at: int
    """Epoch seconds when DynamoDB's TTL may remove the item (two days after the day ends)."""

    @classmethod
    def at(cls, now: datetime, per_minute: int, per_day: int) -> RequestWindow:
        utc = now.astimezone(UTC)
        minute_start = utc.replace(second=0, microsecond=0)
        day_start = minute_start.replace(hour=0, minute=0)
        next_minute = minute_start + timedelta(minutes=1)
        next_day = day_start + timedelta(days=1)
        return cls(
            day=utc.strftime("%Y-%m-%d"),
            minute=utc.strftime("%H:%M"),
            per_minute=per_minute,
            per_day=per_day,
            seconds_to_next_minute=max(1, int((next_minute - utc).total_seconds() + 0.999)),
            seconds_to_next_day=max(1, int((next_day - utc).total_seconds() + 0.999)),
            expires_at=int((next_day + timedelta(days=2)).timestamp()),
        )


def refusal(window: RequestWindow, counted: Mapping[str, Any]) -> RateLimited | None:
    """Why the counting item as it stands refuses one more request, or None when it does not
    (the minute it counts is over: the new minute's update applies)."""
    day_count = int(counted.get("n") or 0)
    if day_count >= window.per_day:
        return RateLimited(
            f"at most {window.per_day} requests a day (UTC) for a member: "
            f"retry after {window.seconds_to_next_day} s",
            retry_after=window.seconds_to_next_day,
        )
    if counted.get("mw") == window.minute and int(counted.get("mn") or 0) >= window.per_minute:
        return RateLimited(
            f"at most {window.per_minute} requests a minute for a member: "
            f"retry after {window.seconds_to_next_minute} s",
            retry_after=window.seconds_to_next_minute,
        )
    return None
