"""Retroactive hard-to-please verdicts: when a rater crosses the line (or a late rating changes
their verdict on days already rated), the low ratings of the days it covers are re-decided, and
each member's slots, window and standing updated in one transaction per member.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from msgspec.structs import replace

from shared.domain.program import Program
from shared.domain.raters import decide
from shared.domain.ratings import RatingSlot
from shared.logic.ports import TransientConflict

from .core import MAX_ATTEMPTS, MAX_SLOTS_PER_COMMIT, plan_member, resync_member, slot_write
from .ports import Commit, RatingStore


def _want(slot: RatingSlot | None, verdicts: Mapping[str, bool]) -> bool | None:
    """The verdict on the slot's rating (by its rating id), if it is one of those decided: an
    index entry left by a rating that never committed names a slot holding another rating, or
    none."""
    if slot is None or slot.rating is None:
        return None
    return verdicts.get(slot.rating.rating_id)


def _changes(slot: RatingSlot | None, verdicts: Mapping[str, bool], version: int) -> bool:
    """The verdict (of the rater's state ``version``) changes this rating."""
    want = _want(slot, verdicts)
    return (
        slot is not None
        and want is not None
        and slot.htp_version <= version
        and slot.hard_to_please != want
    )


def _apply_verdicts(
    program: Program,
    store: RatingStore,
    member_id: str,
    wanted: Mapping[str, Mapping[str, bool]],
    version: int,
    now: datetime,
) -> int:
    """Set the hard-to-please verdict of some of one member's ratings (``wanted``: slot key ->
    rating id -> verdict; one transaction per up to 90 of them, with the window)."""
    applied = 0
    strong = False
    for _ in range(MAX_ATTEMPTS * 4):
        if strong:
            slots = store.get_slots(program.id, member_id, list(wanted))
            window = store.get_window(program.id, member_id)
        else:
            # First read eventually consistent: a stale slot or window to change fails the
            # commit's conditions; a slot read as needing no change is read again, strongly.
            slots, window = store.read_slots_and_window(program.id, member_id, list(wanted))
            settled = [
                sk
                for sk, verdicts in wanted.items()
                if not _changes(slots.get(sk), verdicts, version)
            ]
            if settled:
                slots.update(store.get_slots(program.id, member_id, settled))
        changes = [
            (
                slot,
                replace(
                    slot,
                    hard_to_please=not slot.hard_to_please,  # the verdict wanted differs
                    htp_version=version,
                    version=slot.version + 1,
                ),
            )
            for sk, verdicts in wanted.items()
            if (slot := slots.get(sk)) is not None and _changes(slot, verdicts, version)
        ]
        if not changes:
            if not applied:  # resumed, most likely: the member write may have been lost
                resync_member(program, store, member_id)
            return applied
        chunk = changes[:MAX_SLOTS_PER_COMMIT]
        plan = plan_member(program, store, member_id, window, chunk, now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=member_id,
                slots=[slot_write(after, before.version, program) for before, after in chunk],
                window=plan.window,
                member=plan.member,
            )
        )
        if written.applied:
            applied += len(chunk)
            if len(changes) == len(chunk):
                return applied
        strong = True
    raise TransientConflict(f"hard-to-please verdicts of member {member_id} kept conflicting")


def reconcile(program: Program, store: RatingStore, customer_id: str, now: datetime) -> int:
    """Carry the rater's pending change of verdict to the low ratings of the days it covers
    (the rater's index holds the low ratings; the verdicts come from the rater's item).

    Idempotent and resumable: the pending range stays on the rater's item until every rating
    in it holds the verdict of the rater's current state (any later delivery resumes it)."""
    changed = 0
    for _ in range(MAX_ATTEMPTS):
        rater = store.get_rater(program.id, customer_id)
        if rater.reconcile is None:
            return changed
        first, last = rater.reconcile
        given = store.query_given(program.id, customer_id, first, last)
        verdicts = decide(rater, given, first, last, program)
        by_member: dict[str, dict[str, dict[str, bool]]] = {}
        for rating in given:
            if rating.rating_id in verdicts:
                slot_verdicts = by_member.setdefault(rating.member_id, {})
                slot_verdicts.setdefault(rating.slot_sk, {})[rating.rating_id] = verdicts[
                    rating.rating_id
                ]
        for member_id, wanted in sorted(by_member.items()):
            changed += _apply_verdicts(program, store, member_id, wanted, rater.version, now)
        if store.clear_reconcile(program.id, customer_id, rater.version):
            return changed
    raise TransientConflict(f"rater {customer_id} kept changing while reconciled")
