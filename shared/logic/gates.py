"""Use cases of the quality gates (docs/tiers.md, "Quality gates"): offers accepted and
declined, deliveries completed and reported late, each folded into its gate's window of the
last N events, and the member's standing written when it moves.

No read on the way: each write returns what it found (``ReturnValues``), from which the
standing before and after the event is computed here. A redelivery adds nothing to a set, and
then writes the standing again (a crash may have come between the window's write and the
member's); the standing write is guarded by the window's version, so a late or repeated write
never undoes a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from msgspec import Struct

from shared.domain.events import DeliveryLate, OfferAccepted, OfferDeclined, OrderCompleted
from shared.domain.gates import (
    COMPLETION_RATE,
    ON_TIME_RATE,
    TRIM_BATCH,
    Standing,
    completion_standing,
    entry,
    on_time_standing,
    trim,
)
from shared.domain.program import Program

ENTRIES = "e"
MARKS = "m"


class GateWindow(Struct, frozen=True):
    """A gate's window item as it stood: its entries, marks and version (0: none yet)."""

    entries: frozenset[int] = frozenset()
    marks: frozenset[int] = frozenset()
    version: int = 0


class OfferTimes(Struct, frozen=True):
    """An offer's earliest acceptance and latest decline seen so far (after this event)."""

    accepted_at: datetime | None
    declined_at: datetime | None


class GateStore(Protocol):
    def mark_offer(
        self,
        program_id: str,
        member_id: str,
        offer_id: str,
        accepted_at: datetime | None,
        declined_at: datetime | None,
        expires_at: datetime,
    ) -> OfferTimes: ...

    def add_to_window(
        self, program_id: str, member_id: str, gate: str, adds: Mapping[str, frozenset[int]]
    ) -> GateWindow:
        """Add the entries and marks and bump the version; the window as it stood before."""
        ...

    def trim_window(
        self, program_id: str, member_id: str, gate: str, removals: Mapping[str, frozenset[int]]
    ) -> None: ...

    def write_standing(
        self, program_id: str, member_id: str, gate: str, standing: Standing, version: int
    ) -> bool: ...


class GateResult(Struct, frozen=True):
    event_type: str
    member_id: str
    gate: str
    outcome: str
    """``counted`` (the window took it), ``duplicate`` (it held it already), ``not_accepted``
    (a decline of an offer never accepted, or accepted later), ``not_gated`` (no tier of the
    program asks for this gate)."""
    standing: Standing | None = None

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "eventType": self.event_type,
            "memberId": self.member_id,
            "gate": self.gate,
            "outcome": self.outcome,
        }
        if self.standing is not None:
            body["count"] = self.standing.count
            body["good"] = self.standing.good
        return body


def standing(window: GateWindow, gate: str, program: Program) -> Standing:
    rules = program.quality_gates
    if gate == COMPLETION_RATE:
        return completion_standing(window.entries, window.marks, rules.last_n)
    return on_time_standing(
        window.entries, window.marks, rules.last_n, rules.late_report_slack_hours
    )


def _slack_ms(gate: str, program: Program) -> int:
    return program.quality_gates.late_report_slack_hours * 3_600_000 if gate == ON_TIME_RATE else 0


def _fold(
    event_type: str,
    member_id: str,
    gate: str,
    adds: Mapping[str, frozenset[int]],
    program: Program,
    store: GateStore,
) -> GateResult:
    before = store.add_to_window(program.id, member_id, gate, adds)
    after = GateWindow(
        before.entries | adds.get(ENTRIES, frozenset()),
        before.marks | adds.get(MARKS, frozenset()),
        before.version + 1,
    )
    duplicate = after.entries == before.entries and after.marks == before.marks
    now_standing = standing(after, gate, program)
    if duplicate or standing(before, gate, program) != now_standing:
        store.write_standing(program.id, member_id, gate, now_standing, after.version)
    old_entries, old_marks = trim(
        after.entries, after.marks, program.quality_gates.last_n, _slack_ms(gate, program)
    )
    if len(old_entries) + len(old_marks) >= TRIM_BATCH:
        removals = {ENTRIES: frozenset(old_entries), MARKS: frozenset(old_marks)}
        store.trim_window(program.id, member_id, gate, removals)
    outcome = "duplicate" if duplicate else "counted"
    return GateResult(event_type, member_id, gate, outcome, now_standing)


OFFER_MEMORY = timedelta(days=30)
"""How long an offer's item is kept after its first event (the table's TTL): a decline
delivered later than that finds no acceptance and is taken as a plain decline."""


def accept_offer(
    event: OfferAccepted, now: datetime, program: Program, store: GateStore
) -> GateResult:
    if COMPLETION_RATE not in program.gated:
        return GateResult(event.detail_type, event.member_id, COMPLETION_RATE, "not_gated")
    times = store.mark_offer(
        program.id, event.member_id, event.offer_id, event.occurred_at, None, now + OFFER_MEMORY
    )
    accepted_at = times.accepted_at or event.occurred_at
    value = frozenset({entry(accepted_at, event.offer_id)})
    adds = {ENTRIES: value}
    if times.declined_at is not None and times.declined_at >= accepted_at:
        adds[MARKS] = value
    return _fold(event.detail_type, event.member_id, COMPLETION_RATE, adds, program, store)


def decline_offer(
    event: OfferDeclined, now: datetime, program: Program, store: GateStore
) -> GateResult:
    if COMPLETION_RATE not in program.gated:
        return GateResult(event.detail_type, event.member_id, COMPLETION_RATE, "not_gated")
    times = store.mark_offer(
        program.id, event.member_id, event.offer_id, None, event.occurred_at, now + OFFER_MEMORY
    )
    accepted_at, declined_at = times.accepted_at, times.declined_at
    if accepted_at is None or declined_at is None or declined_at < accepted_at:
        return GateResult(event.detail_type, event.member_id, COMPLETION_RATE, "not_accepted")
    value = frozenset({entry(accepted_at, event.offer_id)})
    # The acceptance's entry too: its own delivery may not have reached the window yet.
    adds = {ENTRIES: value, MARKS: value}
    return _fold(event.detail_type, event.member_id, COMPLETION_RATE, adds, program, store)


def record_delivery(event: OrderCompleted, program: Program, store: GateStore) -> GateResult:
    if ON_TIME_RATE not in program.gated:
        return GateResult(event.detail_type, event.member_id, ON_TIME_RATE, "not_gated")
    adds = {ENTRIES: frozenset({entry(event.completed_at, event.order_id)})}
    return _fold(event.detail_type, event.member_id, ON_TIME_RATE, adds, program, store)


def report_late(event: DeliveryLate, program: Program, store: GateStore) -> GateResult:
    if ON_TIME_RATE not in program.gated:
        return GateResult(event.detail_type, event.member_id, ON_TIME_RATE, "not_gated")
    adds = {MARKS: frozenset({entry(event.occurred_at, event.order_id)})}
    return _fold(event.detail_type, event.member_id, ON_TIME_RATE, adds, program, store)


def apply_quality_event(
    event: OfferAccepted | DeliveryLate, now: datetime, program: Program, store: GateStore
) -> GateResult:
    if isinstance(event, OfferDeclined):
        return decline_offer(event, now, program, store)
    if isinstance(event, OfferAccepted):
        return accept_offer(event, now, program, store)
    return report_late(event, program, store)
