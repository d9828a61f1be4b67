"""The shared core of rating moderation: outcomes and results, the member's window and standing
planned from the slots' changes, and one slot's edit carried to them (with retries).

Every use case reads what its decision needs, lets the domain decide, and commits the result in
one transaction guarded by versions; when another writer committed first, it reads again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from msgspec import Struct
from msgspec.structs import replace

from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import RaterState, with_tip_bait
from shared.domain.rating_window import (
    RatingWindow,
    from_spare,
    insert,
    make_entry,
    missing,
    order_key,
    refill,
    remove,
    trim,
)
from shared.domain.ratings import (
    RatingSlot,
    RatingSubmitted,
    average_of,
    exclusions,
    first_baited_at,
    is_counted,
    judge,
)
from shared.domain.timeutil import to_utc_iso
from shared.logic.ports import TransientConflict

from .ports import Commit, MemberRating, RatingStore, SlotWrite, slot_key_of

MAX_ATTEMPTS = 8
"""Reads and commits of one use case before giving up (another writer kept committing first)."""
REFILL_PAGE = 4
"""Slots read per page beyond those wanted when refilling the window (a few excluded ones may
lie in between)."""
MAX_SLOTS_PER_COMMIT = 90
"""A transaction holds at most 100 items: the slots, the window and the member item."""


class Outcome(StrEnum):
    COUNTED = "counted"
    EXCLUDED = "excluded"
    WAITING = "waiting"
    """The rating's order has not arrived: it waits (bounded by ``orderWaitDays``)."""
    DUPLICATE = "duplicate"
    TIP_RECORDED = "tip_recorded"
    TIP_WAITING = "tip_waiting"
    TIP_DUPLICATE = "tip_duplicate"
    EXPIRED = "expired"
    """A waiting rating whose order did not come in time (recorded with the reason)."""
    REJECTED = "rejected"
    """A waiting rating that its order, once arrived, does not accept (recorded with why)."""
    STATUS_APPLIED = "status_applied"


METRIC_NAMES: dict[Outcome, str] = {
    Outcome.COUNTED: "RatingsCounted",
    Outcome.EXCLUDED: "RatingsExcluded",
    Outcome.WAITING: "RatingsWaitingForOrder",
    Outcome.DUPLICATE: "DuplicateDeliveries",
    Outcome.TIP_RECORDED: "TipChangesRecorded",
    Outcome.TIP_WAITING: "TipChangesWaitingForOrder",
    Outcome.TIP_DUPLICATE: "DuplicateDeliveries",
    Outcome.EXPIRED: "RatingsExpired",
    Outcome.REJECTED: "RatingsRejected",
    Outcome.STATUS_APPLIED: "RatingsOrderStatusApplied",
}
"""The metric each outcome counts, in whichever function applies it."""


class ModerationResult(Struct, frozen=True):
    event_type: str
    member_id: str
    order_id: str
    outcome: Outcome
    rating_id: str | None = None
    exclusions: tuple[str, ...] = ()
    tip_baited: bool | None = None
    eligible: bool | None = None
    average: Decimal | None = None
    count: int | None = None
    reconciled: int = 0
    """Other ratings whose hard-to-please verdict this rating changed (retroactively)."""
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "eventType": self.event_type,
            "memberId": self.member_id,
            "orderId": self.order_id,
            "outcome": self.outcome.value,
        }
        optional: dict[str, object | None] = {
            "ratingId": self.rating_id,
            "tipBaited": self.tip_baited,
            "eligible": self.eligible,
            "average": str(self.average) if self.average is not None else None,
            "count": self.count,
            "reason": self.reason,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        if self.exclusions:
            body["exclusions"] = list(self.exclusions)
        if self.reconciled:
            body["reconciled"] = self.reconciled
        return body


# -- the member's window --------------------------------------------------------------------------


def _entry(slot: RatingSlot) -> int:
    assert slot.rating is not None
    return make_entry(order_key(slot.completed, slot.order_id), slot.rating.stars)


def slot_write(slot: RatingSlot, read_version: int | None, program: Program) -> SlotWrite:
    reasons = exclusions(slot, program)
    return SlotWrite(
        slot=slot,
        read_version=read_version,
        exclusions=reasons,
        counted=slot.rating is not None and not reasons,
        entry=_entry(slot) if slot.rating is not None else None,
        rule_version=program.rule_version,
    )


class MemberPlan(Struct, frozen=True):
    window: RatingWindow | None = None
    """The window to write (None: unchanged)."""
    member: MemberRating | None = None
    """The member item's rating attributes to write (None: unchanged)."""


def _older_counted(
    program: Program,
    store: RatingStore,
    member_id: str,
    window: RatingWindow,
    wanted: int,
    in_commit: Mapping[str, tuple[bool, int | None]],
) -> list[int]:
    """The newest ``wanted`` counted ratings older than the window's entries, as they will
    stand after the commit (``in_commit``: slots it changes -> (counts, entry))."""
    boundary = window.oldest
    found = [
        entry
        for counts, entry in in_commit.values()
        if counts
        and entry is not None
        and (boundary is None or entry < boundary)
        and entry not in window.entries
    ]
    stored: list[int] = []
    for sk, entry in store.counted_before(program.id, member_id, boundary, wanted + REFILL_PAGE):
        if sk in in_commit or (boundary is not None and entry >= boundary):
            continue
        stored.append(entry)
        if len(stored) >= wanted:
            break
    return sorted([*found, *stored], reverse=True)[:wanted]


def plan_member(
    program: Program,
    store: RatingStore,
    member_id: str,
    window: RatingWindow,
    changes: Sequence[tuple[RatingSlot | None, RatingSlot]],
    now: datetime,
) -> MemberPlan:
    """Carry the slots' changes of counting to the window, and the window to the member."""
    last_n = program.rating.last_n
    updated = window
    in_commit: dict[str, tuple[bool, int | None]] = {}
    moved = False
    for before, after in changes:
        was, counts = is_counted(before, program), is_counted(after, program)
        entry = _entry(after) if after.rating is not None else None
        in_commit[slot_key_of(after)] = (counts, entry)
        if was != counts:
            moved = True
            entry = _entry(after)
            updated = insert(updated, entry, last_n) if counts else remove(updated, entry)
    if updated.count > last_n:
        updated, moved = trim(updated, last_n), True
    if missing(updated, last_n) and updated.spare:
        updated, moved = from_spare(updated, last_n), True
    wanted = missing(updated, last_n)
    if wanted:
        found = _older_counted(program, store, member_id, updated, wanted, in_commit)
        updated, moved = refill(updated, found, wanted), True
    if not moved:
        return MemberPlan()
    standing = judge(updated.total, updated.count, window.eligible, window.reason, program.rating)
    changed_at = to_utc_iso(now) if standing.eligible != window.eligible else window.changed_at
    updated = replace(
        updated, eligible=standing.eligible, reason=standing.reason.value, changed_at=changed_at
    )
    shown = (average_of(window.total, window.count), window.count, window.eligible, window.reason)
    if shown == (standing.average, standing.count, standing.eligible, standing.reason.value) and (
        window.version
    ):
        return MemberPlan(window=updated)
    return MemberPlan(
        window=updated,
        member=MemberRating(
            average=standing.average,
            count=standing.count,
            eligible=standing.eligible,
            reason=standing.reason.value,
            changed_at=changed_at,
            flipped=standing.eligible != window.eligible,
        ),
    )


def resync_member(program: Program, store: RatingStore, member_id: str) -> None:
    """Write the member's rating attributes from the window once more: a delivery that changes
    nothing (a redelivery, most likely) finishes a commit whose member write was lost."""
    window = store.get_window(program.id, member_id)
    if not window.version:
        return
    store.sync_member(
        program.id,
        member_id,
        MemberRating(
            average=average_of(window.total, window.count),
            count=window.count,
            eligible=window.eligible,
            reason=window.reason,
            changed_at=window.changed_at,
        ),
        window.version,
    )


def new_slot(order: OrderRecord) -> RatingSlot:
    assert order.completed_at is not None and order.customer_id is not None
    return RatingSlot(
        member_id=order.member_id,
        order_id=order.order_id,
        customer_id=order.customer_id,
        completed_at=order.completed_at,
        order_status=order.status.value,
        tip_at_delivery=order.tip_at_delivery,
    )


def with_bait_of(
    state: RaterState,
    before: RatingSlot | None,
    after: RatingSlot,
    program: Program,
    now: datetime,
) -> RaterState:
    """The customer's tip-baiting record after the slot's tip changes: a baited order counts at
    its delivery time (fixed when the order arrives), from the first change that baited it."""
    if first_baited_at(after, program) is None:
        return state
    if before is not None and first_baited_at(before, program) is not None:
        return state  # counted already
    return with_tip_bait(state, after.order_id, after.completed_at, program, now)


def waiting_expiry(now: datetime, program: Program) -> int:
    return int((now + timedelta(days=program.moderation.order_wait_days)).timestamp())


def delivered(order: OrderRecord | None) -> bool:
    """Known to the ledger as completed (credited, or void / reversed: then the rating is
    kept but excluded, ``order_not_delivered``)."""
    return order is not None and order.completed_at is not None


def rating_result(
    program: Program, slot: RatingSlot, window: RatingWindow | None, outcome: Outcome | None
) -> ModerationResult:
    reasons = exclusions(slot, program)
    assert slot.rating is not None
    return ModerationResult(
        event_type=RatingSubmitted.detail_type,
        member_id=slot.member_id,
        order_id=slot.order_id,
        outcome=outcome or (Outcome.EXCLUDED if reasons else Outcome.COUNTED),
        rating_id=slot.rating.rating_id,
        exclusions=tuple(reason.value for reason in reasons),
        eligible=window.eligible if window is not None else None,
        average=average_of(window.total, window.count) if window is not None else None,
        count=window.count if window is not None else None,
    )


def edit_slot(
    program: Program,
    store: RatingStore,
    member_id: str,
    sk: str,
    edit: Callable[[RatingSlot], RatingSlot | None],
    now: datetime,
    create: RatingSlot | None = None,
) -> tuple[RatingSlot, RatingSlot, RatingWindow | None] | None:
    """Change one input of a stored slot and carry the verdict. None: no such slot (then
    ``create``, if given, is stored in its place); the same slot twice: the edit changed
    nothing."""
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, member_id, sk)
        if slot is None:
            if create is None:
                return None
            created = replace(create, version=1)
            written = store.commit(
                Commit(program.id, member_id, slots=[slot_write(created, None, program)])
            )
            if written.applied:
                return None
            continue
        edited = edit(slot)
        if edited is None:
            if slot.rating is not None:
                resync_member(program, store, member_id)
            return slot, slot, None
        after = replace(edited, version=slot.version + 1)
        window = None
        plan = MemberPlan()
        if after.rating is not None:
            window = store.get_window(program.id, member_id)
            plan = plan_member(program, store, member_id, window, [(slot, after)], now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=member_id,
                slots=[slot_write(after, slot.version, program)],
                window=plan.window,
                member=plan.member,
            )
        )
        if written.applied:
            return slot, after, plan.window or window
    raise TransientConflict(f"rating slot {sk} kept conflicting")
