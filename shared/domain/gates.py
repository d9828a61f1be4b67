"""Quality gates: a tier may ask for a completion rate and an on-time rate beyond its points
(docs/tiers.md, "Quality gates"). Pure functions of sets of numbers and the program.

The last N events of a kind are kept as a *set* of entries, one number each: the event's time
in milliseconds since 1970 in the high bits and 32 bits of a hash of its id (offer or order) in
the low bits. A set because adding an entry twice is adding it once (a redelivery changes
nothing) and a set has no arrival order (the rates depend on which events happened, never on
the order they arrived in). Sorting the numbers sorts the events by time (ties by hash), so
"the last N" is the N largest numbers.

- **Completion rate.** ``accepted``: one entry per ``OfferAccepted`` (acceptance time, offer);
  ``dropped``: the same entry again once a ``OfferDeclined`` of that offer occurred at or after
  its acceptance. Of the N newest accepted entries, the share not in ``dropped``.
- **On-time rate.** ``delivered``: one entry per ``OrderCompleted`` (completion time, order);
  ``late``: one entry per ``DeliveryLate`` (its own time, order). A delivery is late when a
  mark of its order occurred no earlier than ``lateReportSlackHours`` before its completion.
  Of the N newest deliveries, the share not late.

Entries that can never be among the last N again are *trimmed* (``trim``): the last N of a
larger set only gets newer, so an entry below the N-th newest stays below it forever, and a
mark that cannot match any entry from there up can go with it. Which entries a later event
makes count therefore never depends on what was trimmed before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from hashlib import blake2b
from typing import Any

from msgspec import Struct

from .program import Program, Tier

HASH_BITS = 32
_HASH_MASK = (1 << HASH_BITS) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

COMPLETION_RATE = "completionRate"
ON_TIME_RATE = "onTimeRate"
GATE_NAMES = (COMPLETION_RATE, ON_TIME_RATE)

STANDING_ATTRIBUTES = {COMPLETION_RATE: ("crN", "crOk"), ON_TIME_RATE: ("otN", "otOk")}
"""The member item's attributes of each gate's standing: events in the last N, and how many of
them were good (completed, on time)."""

COUNTS = {
    COMPLETION_RATE: "your last {n} accepted offers: the share you did not drop after accepting",
    ON_TIME_RATE: "your last {n} completed deliveries: the share not reported late",
}
HINTS = {
    COMPLETION_RATE: "Accept only offers you can finish: dropping an accepted offer lowers it.",
    ON_TIME_RATE: "Leave margin on each delivery window: late deliveries lower it.",
}

TRIM_BATCH = 16
"""Entries that can no longer count are deleted once this many have gathered (one write for
16 events): the window item holds at most N + 15 entries of a kind, plus its marks."""


def entry(at: datetime, ident: str) -> int:
    """The set entry of an event: ``at`` in ms since 1970, then 32 bits of ``ident``'s hash."""
    digest = blake2b(ident.encode(), digest_size=HASH_BITS // 8).digest()
    return ((at - _EPOCH) // _MS << HASH_BITS) | int.from_bytes(digest, "big")


def entry_ms(value: int) -> int:
    return value >> HASH_BITS


def entry_hash(value: int) -> int:
    return value & _HASH_MASK


class Standing(Struct, frozen=True):
    """One gate's standing: ``count`` events in the last N, ``good`` of them completed (on
    time)."""

    count: int
    good: int

    def rate(self) -> Decimal | None:
        if not self.count:
            return None
        share = Decimal(self.good) / Decimal(self.count)
        return share.quantize(Decimal("0.001"), rounding=ROUND_FLOOR).normalize()


def newest(entries: Iterable[int], last_n: int) -> list[int]:
    """The ``last_n`` newest entries, newest first."""
    return sorted(set(entries), reverse=True)[:last_n]


def completion_standing(accepted: Iterable[int], dropped: Iterable[int], last_n: int) -> Standing:
    kept = newest(accepted, last_n)
    gone = set(dropped)
    return Standing(len(kept), sum(1 for value in kept if value not in gone))


def _latest_marks(marks: Iterable[int]) -> dict[int, int]:
    latest: dict[int, int] = {}
    for mark in marks:
        key = entry_hash(mark)
        latest[key] = max(latest.get(key, mark), mark)
    return latest


def on_time_standing(
    delivered: Iterable[int], late: Iterable[int], last_n: int, slack_hours: int
) -> Standing:
    kept = newest(delivered, last_n)
    marks = _latest_marks(late)
    slack = slack_hours * 3_600_000
    late_count = 0
    for value in kept:
        mark = marks.get(entry_hash(value))
        if mark is not None and entry_ms(mark) >= entry_ms(value) - slack:
            late_count += 1
    return Standing(len(kept), len(kept) - late_count)


def trim(
    entries: Collection[int], marks: Collection[int], last_n: int, slack_ms: int = 0
) -> tuple[set[int], set[int]]:
    """The entries and marks that can never count again: entries below the ``last_n``-th
    newest, marks more than ``slack_ms`` older than it. Nothing while fewer than ``last_n``."""
    kept = newest(entries, last_n)
    if len(kept) < last_n:
        return set(), set()
    oldest = kept[-1]
    floor_ms = entry_ms(oldest) - slack_ms
    old_entries = {value for value in entries if value < oldest}
    return old_entries, {value for value in marks if entry_ms(value) < floor_ms}


def standing_of(attributes: Mapping[str, Any], gate: str) -> Standing:
    count_name, good_name = STANDING_ATTRIBUTES[gate]
    return Standing(int(attributes.get(count_name, 0) or 0), int(attributes.get(good_name, 0) or 0))


def floors(tier: Tier) -> dict[str, Decimal]:
    """The gates ``tier`` asks for, with their floors."""
    found = {COMPLETION_RATE: tier.gates.completion_rate, ON_TIME_RATE: tier.gates.on_time_rate}
    return {name: floor for name, floor in found.items() if floor is not None}


def judged(standing: Standing, program: Program) -> bool:
    return standing.count >= program.quality_gates.min_count


def gate_met(standing: Standing, floor: Decimal, program: Program) -> bool:
    """Met while not judged (fewer than ``minCount`` events); compared exactly after."""
    return not judged(standing, program) or standing.good >= floor * standing.count


def tier_gates_met(attributes: Mapping[str, Any], tier: Tier, program: Program) -> bool:
    return all(
        gate_met(standing_of(attributes, name), floor, program)
        for name, floor in floors(tier).items()
    )


def gate_cap(tier_id: str | None, attributes: Mapping[str, Any], program: Program) -> str | None:
    """The highest tier at or below ``tier_id`` whose gates the member meets (None: none).
    A tier id the program does not know (removed by a new configuration) is left as it is."""
    if tier_id is None:
        return None
    ids = [tier.id for tier in program.tiers]
    if tier_id not in ids:
        return tier_id
    for tier in reversed(program.tiers[: ids.index(tier_id) + 1]):
        if tier_gates_met(attributes, tier, program):
            return tier.id
    return None
