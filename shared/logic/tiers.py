"""Use cases of tier recalculation: the stream evaluation, the daily evaluation and the full
recalculation. Each evaluates a member item with ``shared.domain.tiers.evaluate`` and writes
only what changed, conditioned on the member's version (see ``TierRepository.apply_tier``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.program import Program
from shared.domain.tiers import TierDecision, Trigger, evaluate
from shared.domain.timeutil import local_day, to_utc_iso
from shared.domain.window import unreachable_names
from shared.domain.zones import for_member, latest_local_day


class TierStore(Protocol):
    def apply_tier(
        self,
        program_id: str,
        member_id: str,
        decision: TierDecision,
        version: int | None,
        at: str,
    ) -> bool: ...

    def remove_buckets(self, program_id: str, member_id: str, names: Sequence[str]) -> None: ...

    def due_member_keys(self, program_id: str, today: date) -> Iterable[str]: ...

    def get_members(self, program_id: str, member_ids: list[str]) -> list[dict[str, Any]]: ...


class TierRun(Struct):
    """Counts of one evaluation run (a stream batch, a daily sweep, a segment page)."""

    evaluated: int = 0
    written: int = 0
    stale: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    at_risk: int = 0

    def add(self, other: TierRun) -> None:
        self.evaluated += other.evaluated
        self.written += other.written
        self.stale += other.stale
        self.changes.update(other.changes)
        self.at_risk += other.at_risk

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluated": self.evaluated,
            "written": self.written,
            "stale": self.stale,
            "changes": dict(self.changes),
            "atRisk": self.at_risk,
        }


def _needs_write(item: Mapping[str, Any], decision: TierDecision, trigger: Trigger) -> bool:
    if decision.changed or decision.at_risk_on is not None:
        return True
    if decision.reason is not None and decision.reason.value != item.get("tierReason"):
        return True  # the tier stays, its reason does not (an override is over)
    stored = item.get("checkOn")
    new = decision.check_on.isoformat() if decision.check_on else None
    below = decision.below_since.isoformat() if decision.below_since else None
    if trigger is Trigger.STREAM:
        # Between two daily evaluations a check date only ever moves earlier (or appears):
        # new points move a drop later, and the daily evaluation catches up then.
        if new is None:
            return False
        return stored is None or new < str(stored)
    held = decision.held_until.isoformat() if decision.held_until else None
    return stored != new or item.get("belowSince") != below or item.get("tierHeldUntil") != held


class Evaluation(Struct, frozen=True):
    """What evaluating one member item concluded, before any write (``evaluate_item``)."""

    item: Mapping[str, Any]
    decision: TierDecision
    write: bool
    """The decision must be written (the tier, a check date, a hold or a notice changes)."""
    left_behind: tuple[str, ...] = ()
    """Buckets no write reaches any more, to remove (``unreachable_names``)."""

    @property
    def needs_store(self) -> bool:
        return self.write or bool(self.left_behind)


def evaluate_item(
    item: Mapping[str, Any],
    today: date,
    program: Program,
    trigger: Trigger,
    allow_downgrades: bool = True,
) -> Evaluation:
    """Evaluate a member item, no I/O: the CPU half of ``evaluate_member``."""
    # A member back after a long idle period still carries the buckets of their last window,
    # which no order's write reaches any more: drop them, to keep the member item under 1 KB
    # (one small write, once per return; never for a member who orders at least twice a year).
    left_behind = unreachable_names(item, today, program)
    decision = evaluate(item, today, program, trigger, allow_downgrades)
    return Evaluation(item, decision, _needs_write(item, decision, trigger), left_behind)


def store_evaluation(
    evaluation: Evaluation, now: datetime, program: Program, store: TierStore
) -> TierRun:
    """Carry out an evaluation: remove the buckets left behind, write the decision
    conditioned on the member's version (the I/O half of ``evaluate_member``)."""
    run = TierRun(evaluated=1)
    item, decision = evaluation.item, evaluation.decision
    if evaluation.left_behind:
        store.remove_buckets(program.id, str(item["memberId"]), evaluation.left_behind)
    if not evaluation.write:
        return run
    version = item.get("v")
    applied = store.apply_tier(
        program.id,
        str(item["memberId"]),
        decision,
        int(version) if version is not None else None,
        to_utc_iso(now),
    )
    if not applied:
        run.stale += 1
        return run
    run.written += 1
    if decision.changed:
        run.changes[f"{decision.current}->{decision.tier}"] += 1
    if decision.at_risk_on is not None:
        run.at_risk += 1
    return run


def evaluate_member(
    item: Mapping[str, Any],
    now: datetime,
    program: Program,
    trigger: Trigger,
    store: TierStore,
    allow_downgrades: bool = True,
) -> TierRun:
    clock = for_member(program, item)  # the member's days: their zone, else the program's
    today = local_day(now, clock.zone)
    evaluation = evaluate_item(item, today, clock, trigger, allow_downgrades)
    return store_evaluation(evaluation, now, program, store)


def daily_evaluation(now: datetime, program: Program, store: TierStore) -> TierRun:
    """Evaluate the members whose check date has come (the sparse index), 100 at a time.

    Check dates are the members' own local days, so the index is asked for those up to the
    latest day anywhere (``latest_local_day``); each member is then evaluated on their clock,
    and one whose day has not come yet is left as it is (read again by the next run)."""
    today = latest_local_day(now)
    run = TierRun()
    batch: list[str] = []

    def flush() -> None:
        for item in store.get_members(program.id, batch):
            run.add(evaluate_member(item, now, program, Trigger.SCHEDULE, store))
        batch.clear()

    for member_id in store.due_member_keys(program.id, today):
        batch.append(member_id)
        if len(batch) == 100:
            flush()
    if batch:
        flush()
    return run
