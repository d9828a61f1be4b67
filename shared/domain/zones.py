"""The member's clock: the time zone a shopper's days, quarters and periods are counted in.

A marketplace spans zones, so the shopper program counts each member's calendar days in the
member's own zone (``timeZone`` on the member item, kept from ``ProfileUpdated``), else in the
program's. The domain's rules already compute every day from ``program.zone``; rather than thread
a second argument through each of them, a use case hands them ``in_zone(program, name)``: the
same program, read on the member's clock. Copies are cached, one per program and zone.

The member item is what every hot path already holds (``GET /v1/me``, the tier evaluation, the
perks view), so the zone costs no read there. The writes that do not read the member item first
(an order's credit, a care-day booking) guess the zone and make the guess a condition of their
transaction (``zone_condition``): a wrong guess is refused with the item as it stood, which
says the right zone, and the write is planned again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .program import MemberRole, Program

ZONE_ATTR = "timeZone"
"""The member item's attribute holding the member's IANA zone; absent: the program's zone."""

_COPIES: dict[tuple[int, str], tuple[Program, Program]] = {}
_MAX_COPIES = 4096


def member_zone_name(member: Mapping[str, Any] | None) -> str | None:
    """The zone a member item names; None when it names none (the program's zone applies)."""
    name = (member or {}).get(ZONE_ATTR)
    return str(name) if name else None


def stored_zone(program: Program, name: str | None) -> str | None:
    """What the member item keeps for a chosen zone: nothing for the program's own zone (so that
    the usual guess, "no zone of their own", holds for those members too)."""
    return None if name is None or name == program.time_zone else name


def in_zone(program: Program, name: str | None) -> Program:
    """``program`` with its days counted in zone ``name`` (None: its own zone)."""
    if name is None or name == program.time_zone:
        return program
    key = (id(program), name)
    cached = _COPIES.get(key)
    if cached is not None and cached[0] is program:
        return cached[1]
    copy = program.model_copy(update={"time_zone": name})
    copy.__dict__.pop("zone", None)  # the cached ZoneInfo of the original: compute anew
    if len(_COPIES) >= _MAX_COPIES:
        _COPIES.clear()
    _COPIES[key] = (program, copy)
    return copy


def for_member(program: Program, member: Mapping[str, Any] | None) -> Program:
    """``program`` on the clock of the member whose item is ``member``: a shopper program's
    days are the member's. A customer program keeps its own clock (its points' days, years and
    expiry are the program's; its weekly challenge and birthday read the member's zone
    themselves)."""
    if program.members is not MemberRole.SHOPPER:
        return program
    return in_zone(program, member_zone_name(member))


LATEST_OFFSET = timedelta(hours=14)
"""The furthest any zone runs ahead of UTC (Pacific/Kiritimati, UTC+14)."""
EARLIEST_OFFSET = timedelta(hours=12)
"""The furthest any zone runs behind UTC (Etc/GMT+12, UTC-12)."""


def earliest_local_day(now: datetime) -> date:
    """The earliest calendar day anywhere at ``now``: a member's day can be no earlier."""
    return (now.astimezone(UTC) - EARLIEST_OFFSET).date()


def latest_local_day(now: datetime) -> date:
    """The latest calendar day anywhere at ``now``: a member's day can be no later."""
    return (now.astimezone(UTC) + LATEST_OFFSET).date()
