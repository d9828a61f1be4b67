"""A rating of a known order: judged (the rater's hard-to-please verdict, in order or late),
stored on its slot and carried to the member's window and standing in one transaction; and what
waited for an order once it arrives (released, or recorded as expired or rejected, with why).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from shared.domain.errors import Conflict
from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import Given, RaterState, Verdict, add_in_order, add_late, rater_day
from shared.domain.rating_window import RatingWindow
from shared.domain.ratings import RatingFacts, RatingSlot, RatingSubmitted, with_tips
from shared.domain.timeutil import to_utc_iso
from shared.logic.ports import TransientConflict

from .core import (
    MAX_ATTEMPTS,
    ModerationResult,
    Outcome,
    edit_slot,
    new_slot,
    plan_member,
    rating_result,
    slot_write,
    with_bait_of,
)
from .ports import Commit, RatingRef, RatingStore, Waiting, slot_key, slot_key_of
from .reconcile import reconcile
from .tips import apply_tips


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


def apply_rating(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    facts: RatingFacts,
    now: datetime,
    waiting: Waiting | None = None,
) -> ModerationResult:
    """Store a rating of a known order and carry its verdict to the window and the member."""
    assert order.completed_at is not None
    sk = slot_key(order.completed_at, order.order_id)
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, order.member_id, sk)
        if slot is not None and slot.rating is not None:
            if waiting is not None:
                # What waited with it (tip changes) still applies; the rating is settled.
                apply_tips(program, store, order, waiting.tips, now, waiting)
            if slot.rating.rating_id != facts.rating_id:
                raise Conflict(
                    f"order {order.order_id} is already rated (rating {slot.rating.rating_id})",
                    field="detail.orderId",
                )
            # A redelivery; finish what an interrupted delivery may have left undone.
            reconciled = reconcile(program, store, facts.customer_id, now)
            result = rating_result(program, slot, None, Outcome.DUPLICATE)
            return replace(result, reconciled=reconciled)
        base = replace(slot or new_slot(order), order_status=order.status.value)
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
        state = with_bait_of(verdict.state, slot, after, program, now)
        window = store.get_window(program.id, order.member_id)
        plan = plan_member(program, store, order.member_id, window, [(slot, after)], now)
        given = Given(day, facts.stars, order.member_id, order.order_id, sk, facts.rating_id)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=order.member_id,
                slots=[slot_write(after, slot.version if slot else None, program)],
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
            reconciled = reconcile(program, store, facts.customer_id, now) if state.reconcile else 0
            result = rating_result(program, after, plan.window or window, None)
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
    edited = edit_slot(
        program,
        store,
        slot.member_id,
        slot_key_of(slot),
        lambda current: (
            replace(current, order_status=status) if current.order_status != status else None
        ),
        now,
    )
    if edited is None:
        return slot, window
    return edited[1], edited[2] or window


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
