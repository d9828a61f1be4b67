"""What the table's stream brings to rating moderation (parsed by the stream's router,
``shared.streams``): an order that arrives releases the ratings and tip changes waiting for it;
an order cancelled or refunded after delivery stops its rating counting; a waiting rating
removed by its TTL is recorded as expired, with its reason.
"""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from shared.domain.program import Program

from .core import ModerationResult, Outcome, edit_slot, new_slot, rating_result
from .ports import OrderChanged, RatingStore, TableChange, WaitingRemoved, slot_key
from .ratings import drain, not_applied


def _order_changed(
    change: OrderChanged, now: datetime, program: Program, store: RatingStore
) -> list[ModerationResult]:
    order, before = change.after, change.before
    if not order.completed_at:
        return []
    if before is None or not before.completed_at:
        drained = drain(program, store, order, now)
        return [drained] if drained is not None else []
    if before.status == order.status:
        return []
    status = order.status.value
    # Without a slot, one is created holding the status: a rating committed after our read
    # of the order but before this change would otherwise keep the status it read (the
    # rating's commit requires the slot not to exist, so it then reads this one).
    edited = edit_slot(
        program,
        store,
        order.member_id,
        slot_key(order.completed_at, order.order_id),
        lambda slot: replace(slot, order_status=status) if slot.order_status != status else None,
        now,
        create=new_slot(order) if order.customer_id is not None else None,
    )
    if edited is None or edited[0] is edited[1] or not edited[1].rating:
        return []
    result = rating_result(program, edited[1], edited[2], Outcome.STATUS_APPLIED)
    return [replace(result, event_type="OrderStatusChanged")]


def _waiting_removed(
    change: WaitingRemoved, now: datetime, program: Program, store: RatingStore
) -> list[ModerationResult]:
    waiting = change.waiting
    if waiting.rating is None or waiting.expires_at > int(now.timestamp()):
        return []  # tip changes alone, or removed once applied
    return [not_applied(program, store, waiting, "order_not_delivered_in_time", now)]


def apply_table_change(
    change: TableChange, now: datetime, program: Program, store: RatingStore
) -> list[ModerationResult]:
    """What rating moderation does with one committed change of the table (``now``: the
    record's creation time). Idempotent."""
    if isinstance(change, OrderChanged):
        return _order_changed(change, now, program, store)
    return _waiting_removed(change, now, program, store)
