"""Tip changes of a known order: recorded on its slot, and its rating re-decided (a tip lowered
without a reason excludes it, ``tip_baited``); a first bait goes on the customer's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from msgspec.structs import replace

from shared.domain.events import TipAdjusted
from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import RaterState
from shared.domain.ratings import (
    TipChange,
    exclusions,
    first_baited_at,
    tip_baited,
    with_tips,
)
from shared.logic.ports import TransientConflict

from .core import (
    MAX_ATTEMPTS,
    MemberPlan,
    ModerationResult,
    Outcome,
    new_slot,
    plan_member,
    resync_member,
    slot_write,
    with_bait_of,
)
from .ports import Commit, RatingStore, Waiting, slot_key


def apply_tips(
    program: Program,
    store: RatingStore,
    order: OrderRecord,
    changes: Sequence[TipChange],
    now: datetime,
    waiting: Waiting | None = None,
) -> ModerationResult:
    """Record tip changes of a known order; re-decide its rating if it has one."""
    assert order.completed_at is not None and order.customer_id is not None
    sk = slot_key(order.completed_at, order.order_id)
    for _ in range(MAX_ATTEMPTS):
        slot = store.get_slot(program.id, order.member_id, sk)
        base = slot or new_slot(order)
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
            if slot.rating is not None:
                resync_member(program, store, order.member_id)
            return result
        after = replace(after, version=base.version + 1)
        rater: RaterState | None = None
        state: RaterState | None = None
        baited_at = first_baited_at(after, program)
        if baited_at is not None and (slot is None or first_baited_at(slot, program) != baited_at):
            rater = store.get_rater(program.id, order.customer_id)
            state = with_bait_of(rater, slot, after, program, now)
        window = None
        plan = MemberPlan()
        if after.rating is not None:
            window = store.get_window(program.id, order.member_id)
            plan = plan_member(program, store, order.member_id, window, [(slot, after)], now)
        written = store.commit(
            Commit(
                program_id=program.id,
                member_id=order.member_id,
                slots=[slot_write(after, slot.version if slot else None, program)],
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
