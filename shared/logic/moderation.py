"""Use cases of rating moderation (SPEC: Rating floor, Rating moderation; docs/ratings.md).

Each use case reads what its decision needs, lets the domain decide, and commits the result in
one transaction guarded by versions; when another writer committed first, it reads again.
Events never publish anything: ``MemberEligibilityChanged`` and
``CustomerFlaggedForTipBaiting`` are derived from the committed member and customer items by
``shared.domain.rating_events``.

Entry points:
- ``moderate``: one ``RatingSubmitted`` or ``TipAdjusted`` (EventBridge, SQS or HTTP).
- ``apply_table_change``: one change of the table's stream, for the stream consumer: an order
  that arrives releases the ratings and tip changes waiting for it; an order cancelled or
  refunded after delivery stops its rating counting; a waiting rating removed by its TTL is
  recorded as expired, with its reason.
- ``exclude_rating``, ``restore_rating``, ``member_ratings``: the admin API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from shared.dal.dynamodb import order_record
from shared.dal.keys import ORDER_SK_PREFIX, WAITING_SK_PREFIX, rating_sk
from shared.dal.ratings import (
    Commit,
    CommitResult,
    MemberRating,
    RatingRef,
    SlotWrite,
    Waiting,
    decode_cursor,
    encode_cursor,
    slot_sk,
    waiting_of,
)
from shared.domain.errors import Conflict, InvalidInput, NotFound
from shared.domain.events import InboundEvent, TipAdjusted
from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import (
    Given,
    RaterState,
    Verdict,
    add_in_order,
    add_late,
    decide,
    rater_day,
    with_tip_bait,
)
from shared.domain.rating_window import (
    RatingWindow,
    insert,
    make_entry,
    missing,
    order_key,
    refill,
    remove,
    trim,
)
from shared.domain.ratings import (
    MAX_AUDIT_ENTRIES,
    AdminAction,
    Exclusion,
    RatingFacts,
    RatingSlot,
    RatingSubmitted,
    TipChange,
    average_of,
    exclusions,
    first_baited_at,
    is_counted,
    judge,
    tip_baited,
    with_tips,
)
from shared.domain.timeutil import stored_instant_iso, to_utc_iso
from shared.logic.ports import TransientConflict

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


@dataclass(frozen=True)
class ModerationResult:
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


class RatingStore(Protocol):
    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None: ...
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...
    def get_slot(self, program_id: str, member_id: str, sk: str) -> RatingSlot | None: ...
    def get_slots(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> dict[str, RatingSlot]: ...
    def get_window(self, program_id: str, member_id: str) -> RatingWindow: ...
    def get_rater(self, program_id: str, customer_id: str) -> RaterState: ...
    def get_waiting(self, program_id: str, member_id: str, order_id: str) -> Waiting | None: ...
    def get_ref(self, program_id: str, rating_id: str) -> RatingRef | None: ...
    def query_given(
        self, program_id: str, customer_id: str, first_day: int, last_day: int
    ) -> list[Given]: ...
    def counted_before(
        self, program_id: str, member_id: str, boundary: int | None, page: int
    ) -> Iterator[tuple[str, int]]: ...
    def list_slots(
        self, program_id: str, member_id: str, limit: int, after: str | None
    ) -> tuple[list[tuple[str, RatingSlot, dict[str, Any]]], str | None]: ...
    def list_waiting(self, program_id: str, member_id: str) -> list[Waiting]: ...
    def list_expired(self, program_id: str, member_id: str) -> list[dict[str, Any]]: ...
    def put_waiting(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        since: str,
        expires_at: int,
        rating: RatingFacts | None = None,
        tip: TipChange | None = None,
        max_tips: int = 20,
    ) -> tuple[bool, Waiting | None]: ...
    def delete_waiting(self, program_id: str, waiting: Waiting) -> bool: ...
    def record_expired(
        self, program_id: str, waiting: Waiting, reason: str, at: str, now_epoch: int
    ) -> None: ...
    def commit(self, commit: Commit) -> CommitResult: ...
    def clear_reconcile(self, program_id: str, customer_id: str, version: int) -> bool: ...


# -- the member's window --------------------------------------------------------------------------


def _entry(slot: RatingSlot) -> int:
    assert slot.rating is not None
    return make_entry(order_key(slot.completed, slot.order_id), slot.rating.stars)


def _write(slot: RatingSlot, read_version: int | None, program: Program) -> SlotWrite:
    reasons = exclusions(slot, program)
    return SlotWrite(
        slot=slot,
        read_version=read_version,
        exclusions=reasons,
        counted=slot.rating is not None and not reasons,
        entry=_entry(slot) if slot.rating is not None else None,
    )


@dataclass(frozen=True)
class _MemberPlan:
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


def _plan_member(
    program: Program,
    store: RatingStore,
    member_id: str,
    window: RatingWindow,
    changes: Sequence[tuple[RatingSlot | None, RatingSlot]],
    now: datetime,
) -> _MemberPlan:
    """Carry the slots' changes of counting to the window, and the window to the member."""
    last_n = program.rating.last_n
    updated = window
    in_commit: dict[str, tuple[bool, int | None]] = {}
    moved = False
    for before, after in changes:
        was, counts = is_counted(before, program), is_counted(after, program)
        in_commit[slot_sk(after)] = (counts, _entry(after) if after.rating is not None else None)
        if was != counts:
            moved = True
            entry = _entry(after)
            updated = insert(updated, entry, last_n) if counts else remove(updated, entry)
    if updated.count > last_n:
        updated, moved = trim(updated, last_n), True
    wanted = missing(updated, last_n)
    if wanted:
        found = _older_counted(program, store, member_id, updated, wanted, in_commit)
        updated, moved = refill(updated, found, wanted), True
    if not moved:
        return _MemberPlan()
    standing = judge(updated.total, updated.count, window.eligible, window.reason, program.rating)
    changed_at = to_utc_iso(now) if standing.eligible != window.eligible else window.changed_at
    updated = replace(
        updated, eligible=standing.eligible, reason=standing.reason.value, changed_at=changed_at
    )
    shown = (average_of(window.total, window.count), window.count, window.eligible, window.reason)
    if shown == (standing.average, standing.count, standing.eligible, standing.reason.value) and (
        window.version
    ):
        return _MemberPlan(window=updated)
    return _MemberPlan(
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


def _new_slot(order: OrderRecord) -> RatingSlot:
    assert order.completed_at is not None and order.customer_id is not None
    return RatingSlot(
        member_id=order.member_id,
        order_id=order.order_id,
        customer_id=order.customer_id,
        completed_at=order.completed_at,
        order_status=order.status.value,
        tip_at_delivery=order.tip_at_delivery,
    )


def _with_bait(
    state: RaterState,
    before: RatingSlot | None,
    after: RatingSlot,
    program: Program,
    now: datetime,
) -> RaterState:
    """The customer's tip-baiting record after the slot's tip changes."""
    baited_at = first_baited_at(after, program)
    if baited_at is None or (before is not None and first_baited_at(before, program) == baited_at):
        return state
    return with_tip_bait(state, after.order_id, baited_at, program, now)


def _expires_at(now: datetime, program: Program) -> int:
    return int((now + timedelta(days=program.moderation.order_wait_days)).timestamp())


def _delivered(order: OrderRecord | None) -> bool:
    """Known to the ledger as completed (credited, or void / reversed: then the rating is
    kept but excluded, ``order_not_delivered``)."""
    return order is not None and order.completed_at is not None


# -- ratings ------------------------------------------------------------------------------------


def _rating_result(
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


def _verdict(
    program: Program, store: RatingStore, rater: RaterState, day: int, stars: int
) -> Verdict:
    if rater.last_day is None or day >= rater.last_day:
        return add_in_order(rater, day, stars, program)
    span = program.moderation.hard_to_please.window_days
    given = store.query_given(
        program.id, rater.customer_id, day - span + 1, min(rater.last_day, day + span - 1)
    )
    return add_late(rater, given, day, stars, program)


def _apply_rating(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    facts: RatingFacts,
    now: datetime,
    waiting: Waiting | None = None,
) -> ModerationResult:
    """Store a rating of a known order and carry its verdict to the window and the member."""
    assert order.completed_at is not None
    sk = rating_sk(order.completed_at, order.order_id)
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, order.member_id, sk)
        if slot is not None and slot.rating is not None:
            if waiting is not None:
                # What waited with it (tip changes) still applies; the rating is settled.
                _apply_tips(program, store, order, waiting.tips, now, waiting)
            if slot.rating.rating_id != facts.rating_id:
                raise Conflict(
                    f"order {order.order_id} is already rated (rating {slot.rating.rating_id})",
                    field="detail.orderId",
                )
            # A redelivery; finish what an interrupted delivery may have left undone.
            reconciled = _reconcile(program, store, facts.customer_id, now)
            result = _rating_result(program, slot, None, Outcome.DUPLICATE)
            return replace(result, reconciled=reconciled)
        base = replace(slot or _new_slot(order), order_status=order.status.value)
        if waiting is not None:
            base = with_tips(base, waiting.tips)
        rater = store.get_rater(program.id, facts.customer_id)
        day = rater_day(facts.submitted, program)
        verdict = _verdict(program, store, rater, day, facts.stars)
        after = replace(
            base,
            rating=facts,
            hard_to_please=verdict.hard_to_please,
            htp_version=rater.version + 1,
            version=(slot.version if slot else 0) + 1,
        )
        state = _with_bait(verdict.state, slot, after, program, now)
        window = store.get_window(program.id, order.member_id)
        plan = _plan_member(program, store, order.member_id, window, [(slot, after)], now)
        given = Given(day, facts.stars, order.member_id, order.order_id, sk, facts.rating_id)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=order.member_id,
                slots=[_write(after, slot.version if slot else None, program)],
                window=plan.window,
                member=plan.member,
                rater=state,
                given=(facts.customer_id, given, date.fromordinal(day).isoformat()),
                ref=RatingRef(facts.rating_id, order.member_id, order.order_id, sk),
                delete_waiting=waiting,
            )
        )
        if written.applied:
            if slot is None:
                after, window = _recheck_status(
                    program, store, order, after, plan.window or window, now
                )
            reconciled = (
                _reconcile(program, store, facts.customer_id, now) if state.reconcile else 0
            )
            result = _rating_result(program, after, plan.window or window, None)
            return replace(result, reconciled=reconciled)
        if "ref" in written.failed:
            raise Conflict(
                f"rating id {facts.rating_id} already names a rating of another order",
                field="detail.ratingId",
            )
        if "waiting" in written.failed:
            waiting = store.get_waiting(program.id, order.member_id, order.order_id)
    raise TransientConflict(f"rating {facts.rating_id} kept conflicting")


def _recheck_status(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    slot: RatingSlot,
    window: RatingWindow,
    now: datetime,
) -> tuple[RatingSlot, RatingWindow]:
    """After creating a slot: a cancellation or refund committed between our read of the
    order and our commit found no slot to update (its stream record came too early), so look
    at the order once more."""
    fresh = store.get_order(program.id, order.member_id, order.order_id)
    if fresh is None or fresh.status.value == slot.order_status:
        return slot, window
    status = fresh.status.value
    edited = _edit_slot(
        program,
        store,
        slot.member_id,
        slot_sk(slot),
        lambda current: (
            replace(current, order_status=status) if current.order_status != status else None
        ),
        now,
    )
    if edited is None:
        return slot, window
    return edited[1], edited[2] or window


def _apply_tips(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    changes: Sequence[TipChange],
    now: datetime,
    waiting: Waiting | None = None,
) -> ModerationResult:
    """Record tip changes of a known order; re-decide its rating if it has one."""
    assert order.completed_at is not None and order.customer_id is not None
    sk = rating_sk(order.completed_at, order.order_id)
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, order.member_id, sk)
        base = slot or _new_slot(order)
        after = with_tips(base, tuple(changes))
        result = ModerationResult(
            TipAdjusted.detail_type,
            order.member_id,
            order.order_id,
            Outcome.TIP_DUPLICATE,
            tip_baited=tip_baited(after, program),
        )
        if slot is not None and after == slot:
            if waiting is not None:
                store.delete_waiting(program.id, waiting)
            return result
        after = replace(after, version=base.version + 1)
        rater: RaterState | None = None
        state: RaterState | None = None
        baited_at = first_baited_at(after, program)
        if baited_at is not None and (slot is None or first_baited_at(slot, program) != baited_at):
            rater = store.get_rater(program.id, order.customer_id)
            state = _with_bait(rater, slot, after, program, now)
        window = None
        plan = _MemberPlan()
        if after.rating is not None:
            window = store.get_window(program.id, order.member_id)
            plan = _plan_member(program, store, order.member_id, window, [(slot, after)], now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=order.member_id,
                slots=[_write(after, slot.version if slot else None, program)],
                window=plan.window,
                member=plan.member,
                rater=state if state is not None and state != rater else None,
                delete_waiting=waiting,
            )
        )
        if written.applied:
            return replace(
                result,
                outcome=Outcome.TIP_RECORDED,
                rating_id=after.rating.rating_id if after.rating else None,
                exclusions=tuple(reason.value for reason in exclusions(after, program)),
            )
        if "waiting" in written.failed:
            waiting = store.get_waiting(program.id, order.member_id, order.order_id)
    raise TransientConflict(f"tip change of order {order.order_id} kept conflicting")


def _edit_slot(
    program: Program,
    store: RatingStore,
    member_id: str,
    sk: str,
    edit: Callable[[RatingSlot], RatingSlot | None],
    now: datetime,
) -> tuple[RatingSlot, RatingSlot, RatingWindow | None] | None:
    """Change one input of a stored slot and carry the verdict. None: no such slot; the same
    slot twice: the edit changed nothing."""
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, member_id, sk)
        if slot is None:
            return None
        edited = edit(slot)
        if edited is None:
            return slot, slot, None
        after = replace(edited, version=slot.version + 1)
        window = None
        plan = _MemberPlan()
        if after.rating is not None:
            window = store.get_window(program.id, member_id)
            plan = _plan_member(program, store, member_id, window, [(slot, after)], now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=member_id,
                slots=[_write(after, slot.version, program)],
                window=plan.window,
                member=plan.member,
            )
        )
        if written.applied:
            return slot, after, plan.window or window
    raise TransientConflict(f"rating slot {sk} kept conflicting")


# -- retroactive hard-to-please verdicts ----------------------------------------------------------


def _apply_verdicts(
    program: Program,
    store: RatingStore,
    member_id: str,
    wanted: Mapping[str, bool],
    version: int,
    now: datetime,
) -> int:
    """Set the hard-to-please verdict of some of one member's ratings (one transaction per
    up to 90 of them, with the window and the member item)."""
    applied = 0
    for _ in range(MAX_ATTEMPTS * 4):
        slots = store.get_slots(program.id, member_id, list(wanted))
        changes = [
            (
                slot,
                replace(slot, hard_to_please=want, htp_version=version, version=slot.version + 1),
            )
            for sk, want in wanted.items()
            if (slot := slots.get(sk)) is not None
            and slot.rating is not None
            and slot.htp_version <= version
            and slot.hard_to_please != want
        ]
        if not changes:
            return applied
        chunk = changes[:MAX_SLOTS_PER_COMMIT]
        window = store.get_window(program.id, member_id)
        plan = _plan_member(program, store, member_id, window, chunk, now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=member_id,
                slots=[_write(after, before.version, program) for before, after in chunk],
                window=plan.window,
                member=plan.member,
            )
        )
        if written.applied:
            applied += len(chunk)
            if len(changes) == len(chunk):
                return applied
    raise TransientConflict(f"hard-to-please verdicts of member {member_id} kept conflicting")


def _reconcile(program: Program, store: RatingStore, customer_id: str, now: datetime) -> int:
    """Carry the rater's pending change of verdict to the low ratings of the days it covers.

    Idempotent and resumable: the pending range stays on the rater's item until every rating
    in it holds the verdict of the rater's current state (any later delivery resumes it)."""
    span = program.moderation.hard_to_please.window_days
    changed = 0
    for _ in range(MAX_ATTEMPTS):
        rater = store.get_rater(program.id, customer_id)
        if rater.reconcile is None:
            return changed
        first, last = rater.reconcile
        given = store.query_given(program.id, customer_id, first - span + 1, last + span - 1)
        verdicts = decide(given, first, last, program)
        by_member: dict[str, dict[str, bool]] = {}
        for rating in given:
            if rating.slot_sk in verdicts:
                by_member.setdefault(rating.member_id, {})[rating.slot_sk] = verdicts[
                    rating.slot_sk
                ]
        for member_id, wanted in sorted(by_member.items()):
            changed += _apply_verdicts(program, store, member_id, wanted, rater.version, now)
        if store.clear_reconcile(program.id, customer_id, rater.version):
            return changed
    raise TransientConflict(f"rater {customer_id} kept changing while reconciled")


# -- waiting for the order ------------------------------------------------------------------------


def _not_applied(
    program: Program, store: RatingStore, waiting: Waiting, reason: str, now: datetime
) -> ModerationResult:
    """Record a waiting rating that will never count, with why."""
    assert waiting.rating is not None
    store.record_expired(program.id, waiting, reason, to_utc_iso(now), int(now.timestamp()))
    return ModerationResult(
        RatingSubmitted.detail_type,
        waiting.member_id,
        waiting.order_id,
        Outcome.EXPIRED if reason == "order_not_delivered_in_time" else Outcome.REJECTED,
        rating_id=waiting.rating.rating_id,
        reason=reason,
    )


def _drain(
    program: Program, store: RatingStore, order: OrderRecord, now: datetime
) -> ModerationResult | None:
    """Apply what waits for ``order`` (which has arrived). None: nothing waits."""
    waiting = store.get_waiting(program.id, order.member_id, order.order_id)
    if waiting is None:
        return None
    if waiting.expires_at <= int(now.timestamp()):
        result = None
        if waiting.rating is not None:
            result = _not_applied(program, store, waiting, "order_not_delivered_in_time", now)
        store.delete_waiting(program.id, waiting)
        return result
    rating = waiting.rating
    if rating is not None and rating.customer_id != order.customer_id:
        rejected = _not_applied(program, store, waiting, "customer_mismatch", now)
        if waiting.tips:
            _apply_tips(program, store, order, waiting.tips, now, waiting)
        else:
            store.delete_waiting(program.id, waiting)
        return rejected
    if rating is not None:
        try:
            return _apply_rating(program, store, order, rating, now, waiting)
        except Conflict:
            rejected = _not_applied(program, store, waiting, "order_already_rated", now)
            if waiting.tips:
                _apply_tips(program, store, order, waiting.tips, now, None)
            return rejected
    return _apply_tips(program, store, order, waiting.tips, now, waiting)


def _check_customer(order: OrderRecord, facts: RatingFacts) -> None:
    if order.customer_id != facts.customer_id:
        raise InvalidInput(
            f"order {order.order_id} was delivered to another customer",
            field="detail.customerId",
        )


def submit_rating(
    event: RatingSubmitted, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    facts = RatingFacts.of(event)
    order = store.get_order(program.id, event.member_id, event.order_id)
    if not _delivered(order):
        applied, existing = store.put_waiting(
            program.id,
            event.member_id,
            event.order_id,
            to_utc_iso(now),
            _expires_at(now, program),
            rating=facts,
        )
        if not applied and existing is not None and existing.rating is not None:
            raise Conflict(
                f"order {event.order_id} already has a rating waiting for it "
                f"(rating {existing.rating.rating_id})",
                field="detail.orderId",
            )
        # The order may have arrived meanwhile (its stream record finding nothing yet).
        order = store.get_order(program.id, event.member_id, event.order_id)
        if not _delivered(order):
            return ModerationResult(
                event.detail_type,
                event.member_id,
                event.order_id,
                Outcome.WAITING,
                rating_id=event.rating_id,
            )
        assert order is not None
        drained = _drain(program, store, order, now)
        if drained is not None and drained.rating_id == event.rating_id:
            return drained
    assert order is not None
    _check_customer(order, facts)
    return _apply_rating(program, store, order, facts, now)


def adjust_tip(
    event: TipAdjusted, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    change = TipChange.of(event)
    order = store.get_order(program.id, event.member_id, event.order_id)
    if not _delivered(order):
        store.put_waiting(
            program.id,
            event.member_id,
            event.order_id,
            to_utc_iso(now),
            _expires_at(now, program),
            tip=change,
        )
        order = store.get_order(program.id, event.member_id, event.order_id)
        if not _delivered(order):
            return ModerationResult(
                event.detail_type, event.member_id, event.order_id, Outcome.TIP_WAITING
            )
        assert order is not None
        drained = _drain(program, store, order, now)
        result = _apply_tips(program, store, order, [change], now)
        if drained is not None and result.outcome is Outcome.TIP_DUPLICATE:
            return replace(result, outcome=Outcome.TIP_RECORDED)
        return result
    assert order is not None
    return _apply_tips(program, store, order, [change], now)


def moderate(
    event: InboundEvent, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    """Apply one validated event. ``now`` is its delivery time (the same on a redelivery)."""
    if isinstance(event, RatingSubmitted):
        return submit_rating(event, now, program, store)
    if isinstance(event, TipAdjusted):
        return adjust_tip(event, now, program, store)
    raise TypeError(f"no use case for {type(event).__name__}")


# -- the table's stream ---------------------------------------------------------------------------


def apply_table_change(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    now: datetime,
    program: Program,
    store: RatingStore,
) -> list[ModerationResult]:
    """What rating moderation does with one committed change of the table (images as the
    stream gives them, deserialized; ``now`` the record's creation time). Idempotent."""
    image = new if new is not None else old
    sk = str((image or {}).get("sk", ""))
    if sk.startswith(ORDER_SK_PREFIX) and new is not None and new.get("completedAt"):
        order = order_record(new)
        results: list[ModerationResult] = []
        if not (old or {}).get("completedAt"):
            drained = _drain(program, store, order, now)
            if drained is not None:
                results.append(drained)
        elif (old or {}).get("status") != new.get("status"):
            status = order.status.value
            edited = _edit_slot(
                program,
                store,
                order.member_id,
                rating_sk(str(new["completedAt"]), order.order_id),
                lambda slot: (
                    replace(slot, order_status=status) if slot.order_status != status else None
                ),
                now,
            )
            if edited is not None and edited[0] is not edited[1] and edited[1].rating:
                results.append(
                    replace(
                        _rating_result(program, edited[1], edited[2], Outcome.STATUS_APPLIED),
                        event_type="OrderStatusChanged",
                    )
                )
        return results
    if sk.startswith(WAITING_SK_PREFIX) and new is None and old is not None:
        waiting = waiting_of(old)
        if waiting.rating is not None and waiting.expires_at <= int(now.timestamp()):
            return [_not_applied(program, store, waiting, "order_not_delivered_in_time", now)]
    return []


# -- admin ----------------------------------------------------------------------------------------


def _exclusion_details(slot: RatingSlot, program: Program) -> list[dict[str, object]]:
    details: list[dict[str, object]] = []
    for reason in exclusions(slot, program):
        detail: dict[str, object] = {"reason": reason.value}
        if reason is Exclusion.ADMIN and slot.admin is not None:
            detail.update(by=slot.admin.by, at=slot.admin.at, why=slot.admin.why)
        elif reason is Exclusion.TIP_BAITED and slot.tips:
            latest = max(slot.tips, key=lambda change: change.occurred_at)
            detail.update(
                at=latest.occurred_at,
                tipAtDelivery=str(slot.tip_at_delivery.amount) if slot.tip_at_delivery else None,
                tip=str(latest.new_tip.amount),
            )
        elif reason is Exclusion.OUTSIDE_CONTROL and slot.rating is not None:
            detail["ratingReasons"] = list(slot.rating.reasons)
        elif reason is Exclusion.ORDER_NOT_DELIVERED:
            detail["orderStatus"] = slot.order_status
        details.append(detail)
    return details


def rating_view(slot: RatingSlot, program: Program) -> dict[str, object]:
    assert slot.rating is not None
    return {
        "ratingId": slot.rating.rating_id,
        "orderId": slot.order_id,
        "customerId": slot.customer_id,
        "stars": slot.rating.stars,
        "reasons": list(slot.rating.reasons),
        "submittedAt": slot.rating.submitted_at,
        "completedAt": slot.completed_at,
        "counted": is_counted(slot, program),
        "exclusions": _exclusion_details(slot, program),
        "audit": [{"action": a.action, "by": a.by, "at": a.at, "why": a.why} for a in slot.audit],
    }


def _admin_edit(
    program: Program,
    store: RatingStore,
    rating_id: str,
    edit: Callable[[RatingSlot], RatingSlot | None],
    now: datetime,
) -> tuple[bool, dict[str, object]]:
    ref = store.get_ref(program.id, rating_id)
    if ref is None:
        raise NotFound(f"no rating {rating_id}", field="ratingId")
    edited = _edit_slot(program, store, ref.member_id, ref.slot_sk, edit, now)
    if edited is None or edited[1].rating is None:
        raise NotFound(f"no rating {rating_id}", field="ratingId")
    before, after, _window = edited
    return before is not after, rating_view(after, program)


def exclude_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> tuple[bool, dict[str, object]]:
    """Exclude a rating (audited). Idempotent: excluding an excluded rating changes nothing."""
    action = AdminAction("exclude", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is not None:
            return None
        return replace(slot, admin=action, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return _admin_edit(program, store, rating_id, edit, now)


def restore_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> tuple[bool, dict[str, object]]:
    """Lift an administrator's exclusion (audited); the other exclusions still apply."""
    action = AdminAction("restore", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is None:
            return None
        return replace(slot, admin=None, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return _admin_edit(program, store, rating_id, edit, now)


def member_ratings(
    program: Program, store: RatingStore, member_id: str, limit: int, cursor: str | None
) -> dict[str, object]:
    """The member's standing and ratings (newest first, a page of slots), counted and
    excluded with their reasons, and those waiting for their order or expired."""
    after = None
    if cursor is not None:
        after = decode_cursor(cursor)
        if after is None:
            raise InvalidInput("nextToken is not one this API gave", field="nextToken")
    member = store.get_member(program.id, member_id) or {}
    window = store.get_window(program.id, member_id)
    rows, last = store.list_slots(program.id, member_id, limit, after)
    if not member and not rows and window.version == 0 and after is None:
        raise NotFound(f"no member {member_id}", field="memberId")
    counted: list[dict[str, object]] = []
    excluded: list[dict[str, object]] = []
    for _sk, slot, _item in rows:
        if slot.rating is None:
            continue
        view = rating_view(slot, program)
        (counted if view["counted"] else excluded).append(view)
    body: dict[str, object] = {
        "memberId": member_id,
        "rating": {
            "average": str(average_of(window.total, window.count)) if window.count else None,
            "count": window.count,
            "countedTotal": window.counted_total,
            "lastN": program.rating.last_n,
        },
        "eligible": bool(member.get("eligible", True)),
        "eligibilityReason": member.get("eligibilityReason", "not_judged"),
        "eligibilityChangedAt": stored_instant_iso(member.get("eligibilityChangedAt")),
        "counted": counted,
        "excluded": excluded,
        "nextToken": encode_cursor(last) if last else None,
    }
    if after is None:
        body["waiting"] = [
            {
                "ratingId": w.rating.rating_id,
                "orderId": w.order_id,
                "waitingSince": w.since,
                "expiresAt": w.expires_at,
                "reason": "order_not_arrived",
            }
            for w in store.list_waiting(program.id, member_id)
            if w.rating is not None
        ]
        body["expired"] = [
            {
                "ratingId": item.get("rating", {}).get("ratingId"),
                "orderId": item.get("orderId"),
                "reason": item.get("reason"),
                "at": item.get("expiredAt"),
            }
            for item in store.list_expired(program.id, member_id)
        ]
    return body
