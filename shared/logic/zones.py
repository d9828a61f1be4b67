"""Use case: the shopper's own time zone (docs/tiers.md, "Time zones").

``ProfileUpdated`` naming the shopper program keeps the member's zone on their member item
(``timeZone``; the latest by ``occurredAt`` wins, an older or repeated one changes nothing, and an
event without a zone brings the member back to the program's). The change bumps the member's
version: the stream's tier evaluation then looks at the member on their new clock, and a tier
decision computed on the old one no longer applies.

The writes that do not read the member item (an order's credit, a care-day booking) plan in a
guessed zone under a condition (``shared.domain.zones``); the guess is the zone last learnt for
the member in this execution environment (``zone_hint``), else the program's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from shared.domain.events import ProfileUpdated
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso
from shared.domain.zones import member_zone_name, stored_zone
from shared.logic.customers import MAX_TRIES, CustomerOutcome, CustomerResult
from shared.logic.ports import TransientConflict

MAX_ZONE_GUESSES = 3
"""How many times a write is planned again after the member item named another zone than the
plan's (a zone changed between two tries needs the third)."""

_ZONE_HINTS: dict[tuple[str, str], str | None] = {}
_MAX_HINTS = 100_000
"""Zones learnt from refused writes, per execution environment: only a first guess (the write's
condition makes any guess safe), so that a member with a zone of their own pays one refused
transaction per warm environment, not one per order. Members without one (most) pay nothing."""


def zone_hint(program_id: str, member_id: str) -> str | None:
    """The zone to plan a member's write in: the last one learnt, else the program's (None)."""
    return _ZONE_HINTS.get((program_id, member_id))


def learn_zone(program_id: str, member_id: str, zone: str | None) -> None:
    """Remember the zone a refused write found on the member item (None: the program's)."""
    if len(_ZONE_HINTS) >= _MAX_HINTS:
        _ZONE_HINTS.clear()
    _ZONE_HINTS[(program_id, member_id)] = zone


class ZoneStore(Protocol):
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def set_member_zone(
        self, program_id: str, member_id: str, zone: str | None, at: str, read_at: str | None
    ) -> bool: ...


def update_shopper_zone(
    event: ProfileUpdated, now: datetime, program: Program, store: ZoneStore
) -> CustomerResult:
    """Keep the shopper's zone (the profile's other fields are the customer programs' matter:
    the shopper program keeps no birthday and no language). ``now`` is unused: a zone change
    takes effect for what is written after it, whenever the event arrives."""
    del now
    zone = stored_zone(program, event.time_zone)
    at = to_utc_iso(event.occurred_at)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, event.member_id) or {}
        read_at = member.get("profileAt")
        if read_at is not None and str(read_at) >= at:
            return CustomerResult(program.id, event.member_id, CustomerOutcome.PROFILE_STALE)
        if store.set_member_zone(
            program.id, event.member_id, zone, at, str(read_at) if read_at else None
        ):
            if member_zone_name(member) != zone:
                learn_zone(program.id, event.member_id, zone)
            return CustomerResult(program.id, event.member_id, CustomerOutcome.PROFILE_UPDATED)
    raise TransientConflict(f"the profile of {event.member_id} kept changing")
