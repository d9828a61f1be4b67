"""Administrators' actions on a member (docs/admin.md): points adjustments, once per
Idempotency-Key, and tier overrides until a day, each audited (who: the token's subject, when,
why) by a record in the member's partition, written in the same transaction as its effect.

Adjustments are planned from the member item as read (``shared.domain.adjustments``) and
written under a condition that it still stands so (a shopper's version; a customer's balance,
evaluated by DynamoDB), planned again when it moved meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

from msgspec import Struct

from shared.domain.adjustments import (
    check_override,
    check_points,
    plan_customer_adjustment,
    plan_shopper_adjustment,
    request_hash,
    require_tiers,
)
from shared.domain.errors import InsufficientPoints, InvalidInput, NotFound
from shared.domain.keys import adjustment_sk, override_sk
from shared.domain.program import MemberRole, Program
from shared.domain.tiers import active_override, override_of
from shared.domain.timeutil import local_day, to_utc_iso
from shared.domain.zones import for_member
from shared.logic.customers import CustomerStore, settle
from shared.logic.ports import TransientConflict

MAX_TRIES = 6
ADJUSTMENT = "adjustment"
OVERRIDE_SET = "tier_override"
OVERRIDE_LIFTED = "tier_override_lifted"


class Outcome(Protocol):
    @property
    def write(self) -> str: ...

    @property
    def available(self) -> int | None: ...


class AdminActionStore(Protocol):
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def get_record(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None: ...

    def admin_records(self, program_id: str, member_id: str) -> list[dict[str, Any]]: ...

    def adjust_shopper(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        buckets: Any,
        version: int | None,
    ) -> Outcome: ...

    def adjust_customer(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        lot: str | None,
        check_on: str | None,
    ) -> Outcome: ...

    def set_override(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        override: tuple[str, str] | None,
        version: int | None,
    ) -> Outcome: ...


class Adjustment(Struct, frozen=True):
    record: Mapping[str, Any]
    """The stored audit record (the first result of its Idempotency-Key)."""
    created: bool
    """False: a replay of the same key and body, nothing applied again."""


def _version(member: Mapping[str, Any]) -> int | None:
    value = member.get("v")
    return int(value) if value is not None else None


def _no_member(program: Program, member_id: str) -> NotFound:
    return NotFound(f"memberId: no member {member_id} in {program.id}", field="memberId")


def _replay(stored: Mapping[str, Any] | None, digest: str) -> Adjustment:
    if stored is None or stored.get("requestHash") != digest:
        raise InvalidInput(
            "Idempotency-Key: this key was first used with another body; use a new key for a "
            "new adjustment",
            field="Idempotency-Key",
        )
    return Adjustment(stored, False)


def adjust_points(
    program: Program,
    member_id: str,
    key: str,
    request: tuple[int, str, str | None],
    by: str,
    now: datetime,
    store: AdminActionStore,
    customers: CustomerStore,
) -> Adjustment:
    """Add (positive) or remove (negative) points, once per Idempotency-Key. ``request`` is
    (points, reason, kind). A removal of more than is available is a 409 naming what is."""
    points, reason, kind = request
    check_points(points)
    digest = request_hash(points, reason, kind)
    sk = adjustment_sk(key)
    stored = store.get_record(program.id, member_id, sk)
    if stored is not None:
        return _replay(stored, digest)
    at = to_utc_iso(now)
    record: dict[str, Any] = {
        "memberId": member_id,
        "programId": program.id,
        "action": ADJUSTMENT,
        "adjustmentId": key,
        "points": points,
        "reason": reason,
        "kind": kind,
        "by": by,
        "at": at,
        "occurredAt": at,
        "ruleVersion": program.rule_version,
        "requestHash": digest,
    }
    customer = program.members is MemberRole.CUSTOMER
    for _ in range(MAX_TRIES):
        if customer:
            # Pending points that fell due are available first (as a donation does).
            member = settle(member_id, now, program, customers)
            if member is None:
                raise _no_member(program, member_id)
            plan = plan_customer_adjustment(program, points, local_day(now, program.zone))
            written = {**record, "day": plan.day.isoformat(), "lot": plan.lot}
            outcome = store.adjust_customer(
                program.id, member_id, sk, written, plan.lot, plan.check_on
            )
        else:
            member = store.get_member(program.id, member_id)
            if member is None:
                raise _no_member(program, member_id)
            clock = for_member(program, member)  # the member's days
            shopper = plan_shopper_adjustment(clock, member, points, local_day(now, clock.zone))
            written = {
                **record,
                "day": shopper.day.isoformat(),
                "buckets": [[bucket, change] for bucket, change in shopper.buckets],
            }
            outcome = store.adjust_shopper(
                program.id, member_id, sk, written, shopper.buckets, _version(member)
            )
        if outcome.write == "done":
            return Adjustment(written, True)
        if outcome.write == "duplicate":
            return _replay(store.get_record(program.id, member_id, sk), digest)
        if outcome.write == "no_member":
            raise _no_member(program, member_id)
        if outcome.write == "insufficient":
            raise InsufficientPoints(
                f"points: {-points} to remove, {max(outcome.available or 0, 0)} available",
                field="points",
            )
    raise TransientConflict(f"member {member_id} kept changing during the adjustment")


class OverrideChange(Struct, frozen=True):
    member: Mapping[str, Any]
    """The member item as read before the change (or as it stands, unchanged)."""
    override: tuple[str, date] | None
    """The override as it now stands (active or not)."""
    active: bool
    changed: bool
    record: Mapping[str, Any] | None
    """The audit record written (None when nothing changed)."""


def _today(program: Program, member: Mapping[str, Any], now: datetime) -> date:
    return local_day(now, for_member(program, member).zone)


def set_tier_override(
    program: Program,
    member_id: str,
    override: tuple[str, date],
    reason: str,
    by: str,
    now: datetime,
    store: AdminActionStore,
) -> OverrideChange:
    """Hold the member at exactly ``override``'s tier through its last day (audited).
    Idempotent: the same override already in force changes nothing."""
    tier, until = override
    require_tiers(program)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, member_id)
        if member is None:
            raise _no_member(program, member_id)
        today = _today(program, member, now)
        check_override(program, tier, until, today)
        if active_override(member, today) == (tier, until):
            return OverrideChange(member, (tier, until), True, False, None)
        at = to_utc_iso(now)
        record = _override_record(program, member_id, OVERRIDE_SET, by, at, reason, member)
        record.update(tier=tier, until=until.isoformat())
        outcome = store.set_override(
            program.id,
            member_id,
            override_sk(at, uuid.uuid4().hex[:12]),
            record,
            (tier, until.isoformat()),
            _version(member),
        )
        if outcome.write == "done":
            return OverrideChange(member, (tier, until), True, True, record)
        if outcome.write == "no_member":
            raise _no_member(program, member_id)
    raise TransientConflict(f"member {member_id} kept changing during the override")


def lift_tier_override(
    program: Program, member_id: str, reason: str, by: str, now: datetime, store: AdminActionStore
) -> OverrideChange:
    """End the member's override now (audited); the rules decide the tier again at the
    stream's evaluation, seconds later. Idempotent: a member without one changes nothing."""
    require_tiers(program)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, member_id)
        if member is None:
            raise _no_member(program, member_id)
        found = override_of(member)
        if found is None:
            return OverrideChange(member, None, False, False, None)
        at = to_utc_iso(now)
        record = _override_record(program, member_id, OVERRIDE_LIFTED, by, at, reason, member)
        outcome = store.set_override(
            program.id,
            member_id,
            override_sk(at, uuid.uuid4().hex[:12]),
            record,
            None,
            _version(member),
        )
        if outcome.write == "done":
            return OverrideChange(member, None, False, True, record)
        if outcome.write == "no_member":
            raise _no_member(program, member_id)
    raise TransientConflict(f"member {member_id} kept changing while lifting the override")


def _override_record(
    program: Program,
    member_id: str,
    action: str,
    by: str,
    at: str,
    reason: str,
    member: Mapping[str, Any],
) -> dict[str, Any]:
    found = override_of(member)
    return {
        "memberId": member_id,
        "programId": program.id,
        "action": action,
        "reason": reason,
        "by": by,
        "at": at,
        "ruleVersion": program.rule_version,
        "previous": {"tier": found[0], "until": found[1].isoformat()} if found else None,
    }


class AdminTrail(Struct, frozen=True):
    records: tuple[Mapping[str, Any], ...]
    """Newest first."""
    override: tuple[str, date] | None
    active: bool


def admin_trail(
    program: Program, member_id: str, now: datetime, store: AdminActionStore
) -> AdminTrail:
    """The member's administrators' actions (newest first) and their tier override."""
    records = sorted(
        store.admin_records(program.id, member_id),
        key=lambda record: str(record.get("at", "")),
        reverse=True,
    )
    member = store.get_member(program.id, member_id) or {}
    found = override_of(member)
    active = active_override(member, _today(program, member, now)) is not None
    return AdminTrail(tuple(records), found, active)
