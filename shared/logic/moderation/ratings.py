"""A rating of a known order: judged (the rater's hard-to-please verdict, in order or late),
stored on its slot and carried to the member's window and standing in one transaction; and what
waited for an order once it arrives (released, or recorded as expired or rejected, with why).

A low rating (below the floor) commits with the rater's item and its entry in the rater's
index: its verdict depends on them. A rating at or above the floor is never excluded by the
rater, so the rater's item takes it after the transaction, in a write of its own that carries
the rating's mark (``rating_mark``): a redelivery that finds the slot checks the mark and makes
the write if a crash lost it (``count_for_rater``).
"""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from shared.domain.errors import Conflict
from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import Given, RaterState, add_rating, rater_day, rating_mark
from shared.domain.rating_window import RatingWindow
from shared.domain.ratings import RatingFacts, RatingSlot, RatingSubmitted, is_low, with_tips
from shared.domain.timeutil import to_utc_iso
from shared.logic.ports import TransientConflict

from .core import (
    MAX_ATTEMPTS,
    ModerationResult,
    Outcome,
    new_slot,
    plan_member,
    rating_result,
    resync_member,
    slot_write,
    with_bait_of,
)
from .ports import Commit, RatingRef, RatingStore, Waiting, slot_key
from .reconcile import reconcile
from .tips import apply_tips


def count_for_rater(
    program: Program,
    store: RatingStore,
    slot: RatingSlot,
    state: RaterState | None = None,
) -> RaterState | None:
    """Count a stored rating at or above the floor in its rater's item, once: a plain write
    guarded by the rater's version, after the rating's transaction. ``state``: the rater's item
    with the rating counted, as decided from a read that may be stale (a failed condition reads
    it again, strongly). Does nothing if the rating's mark is there already (a redelivery after
    the write, or a concurrent delivery that made it). The rater as written, or None."""
    assert slot.rating is not None
    facts = slot.rating
    if not slot.rater_after:
        return None  # counted in the rating's transaction
    day = rater_day(facts.submitted, program)
    mark = rating_mark(slot.order_id)
    for _ in range(MAX_ATTEMPTS):
        if state is None:
            rater = store.get_rater(program.id, facts.customer_id)
            if rater.holds(day, mark):
                return None
            state = add_rating(rater, day, facts.stars, program, mark).state
            if not state.holds(day, mark):
                return None  # older than the days kept: nothing to count
        if store.put_rater(program.id, state):
            return state
        state = None
    raise TransientConflict(f"rater {facts.customer_id} kept conflicting")


def _claim(program: Program, store: RatingStore, ref: RatingRef) -> bool:
    """Make the rating id name this rating's order before the rating is committed (a plain
    conditional write, outside the transaction). A reference naming another order is a
    conflict, unless that order's slot holds another rating: then it was left by a rating
    refused for that order (its release interrupted), and is taken over. True: the reference
    was there already (a redelivery, most likely)."""
    for _ in range(MAX_ATTEMPTS):
        held = store.claim_ref(program.id, ref)
        if held is None or (held.member_id, held.order_id) == (ref.member_id, ref.order_id):
            return held is not None
        slot = store.get_slot(program.id, held.member_id, held.slot_sk)
        if slot is None or slot.rating is None or slot.rating.rating_id == ref.rating_id:
            raise Conflict(
                f"rating id {ref.rating_id} already names a rating of another order",
                field="detail.ratingId",
            )
        store.release_ref(program.id, held)
    raise TransientConflict(f"rating id {ref.rating_id} kept changing")


def apply_rating(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    facts: RatingFacts,
    now: datetime,
    waiting: Waiting | None = None,
    read: tuple[RatingWindow, RaterState] | None = None,
) -> ModerationResult:
    """Store a rating of a known order and carry its verdict to the window and the member.

    ``read``: the window and the rater as already read (eventually consistent); the slot is
    then taken not to exist (a new rating's usual case): the first commit creates it or fails
    its condition, and the next attempt reads everything again, strongly."""
    assert order.completed_at is not None
    sk = slot_key(order.completed_at, order.order_id)
    ref = RatingRef(facts.rating_id, order.member_id, order.order_id, sk)
    if _claim(program, store, ref):
        read = None  # seen before: read the slot
    indexed = False
    for _ in range(MAX_ATTEMPTS):
        slot = None if read is not None else store.get_slot(program.id, order.member_id, sk)
        if slot is not None and slot.rating is not None:
            if waiting is not None:
                # What waited with it (tip changes) still applies; the rating is settled.
                apply_tips(program, store, order, waiting.tips, now, waiting)
            if slot.rating.rating_id != facts.rating_id:
                store.release_ref(program.id, ref)
                raise Conflict(
                    f"order {order.order_id} is already rated (rating {slot.rating.rating_id})",
                    field="detail.orderId",
                )
            # A redelivery; finish what an interrupted delivery may have left undone.
            count_for_rater(program, store, slot)
            resync_member(program, store, order.member_id)
            reconciled = reconcile(program, store, facts.customer_id, now)
            result = rating_result(program, slot, None, Outcome.DUPLICATE)
            return replace(result, reconciled=reconciled)
        # A slot that exists (tip changes, or a status change after delivery) keeps the order's
        # status as the table's stream maintains it; a new one takes the order's.
        base = slot or new_slot(order)
        if waiting is not None:
            base = with_tips(base, waiting.tips)
        if read is not None:
            window, rater = read
            read = None
        else:
            rater = store.get_rater(program.id, facts.customer_id)
            window = store.get_window(program.id, order.member_id)
        day = rater_day(facts.submitted, program)
        low = is_low(facts.stars, program)
        mark = None if low else rating_mark(order.order_id)
        verdict = add_rating(rater, day, facts.stars, program, mark)
        after = replace(
            base,
            rating=facts,
            hard_to_please=verdict.hard_to_please,
            htp_version=rater.version + 1,
            version=(slot.version if slot else 0) + 1,
        )
        state = with_bait_of(verdict.state, slot, after, program, now)
        # The rater's item commits with the rating when the verdict depends on it (a low
        # rating), when a tip bait changes it, or when the rating waited for its order (the
        # stream's delivery that releases it is not repeated once the waiting item is gone);
        # otherwise it follows the transaction, and the rating's redelivery repairs a crash.
        with_rater = low or waiting is not None or state != verdict.state
        after = replace(after, rater_after=not with_rater)
        plan = plan_member(program, store, order.member_id, window, [(slot, after)], now)
        if low and not indexed:
            # The rater's index entry, before the transaction (a plain idempotent write).
            given = Given(day, facts.stars, order.member_id, order.order_id, sk, facts.rating_id)
            store.put_given(program.id, facts.customer_id, given)
            indexed = True
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=order.member_id,
                slots=[slot_write(after, slot.version if slot else None, program)],
                window=plan.window,
                member=plan.member,
                rater=state if with_rater else None,
                delete_waiting=waiting,
            )
        )
        if written.applied:
            if not with_rater:
                state = count_for_rater(program, store, after, state) or state
            reconciled = reconcile(program, store, facts.customer_id, now) if state.reconcile else 0
            result = rating_result(program, after, plan.window or window, None)
            return replace(result, reconciled=reconciled)
        if "waiting" in written.failed:
            waiting = store.get_waiting(program.id, order.member_id, order.order_id)
    raise TransientConflict(f"rating {facts.rating_id} kept conflicting")


# -- waiting for the order ------------------------------------------------------------------------


def not_applied(
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


def drain(
    program: Program, store: RatingStore, order: OrderRecord, now: datetime
) -> ModerationResult | None:
    """Apply what waits for ``order`` (which has arrived). None: nothing waits."""
    waiting = store.get_waiting(program.id, order.member_id, order.order_id)
    if waiting is None:
        return None
    if waiting.expires_at <= int(now.timestamp()):
        result = None
        if waiting.rating is not None:
            result = not_applied(program, store, waiting, "order_not_delivered_in_time", now)
        store.delete_waiting(program.id, waiting)
        return result
    rating = waiting.rating
    if rating is not None and rating.customer_id != order.customer_id:
        rejected = not_applied(program, store, waiting, "customer_mismatch", now)
        if waiting.tips:
            apply_tips(program, store, order, waiting.tips, now, waiting)
        else:
            store.delete_waiting(program.id, waiting)
        return rejected
    if rating is not None:
        try:
            return apply_rating(program, store, order, rating, now, waiting)
        except Conflict:
            rejected = not_applied(program, store, waiting, "order_already_rated", now)
            if waiting.tips:
                apply_tips(program, store, order, waiting.tips, now, None)
            return rejected
    return apply_tips(program, store, order, waiting.tips, now, waiting)
