"""The inbound events: ``RatingSubmitted`` and ``TipAdjusted`` (EventBridge, SQS or HTTP). A
rating or tip change whose order is not in the ledger yet waits for it (``orderWaitDays``).
"""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from shared.domain.errors import Conflict, InvalidInput
from shared.domain.events import InboundEvent, TipAdjusted
from shared.domain.orders import OrderRecord
from shared.domain.program import Program
from shared.domain.raters import RaterState
from shared.domain.rating_window import RatingWindow
from shared.domain.ratings import RatingFacts, RatingSubmitted, TipChange
from shared.domain.timeutil import to_utc_iso

from .core import ModerationResult, Outcome, delivered, waiting_expiry
from .ports import RatingStore, Waiting
from .ratings import apply_rating, drain, not_applied
from .tips import apply_tips


def _check_customer(
    order: OrderRecord, facts: RatingFacts, now: datetime, program: Program, store: RatingStore
) -> None:
    """A rating must come from the customer the order was delivered to (in a batch, each order
    has its own). Another customer's rating is kept as refused, with the reason, as a waiting
    rating refused once its order arrives is (the admin API shows both), and answered as bad
    input naming the field."""
    if order.customer_id == facts.customer_id:
        return
    refused = Waiting(
        member_id=order.member_id,
        order_id=order.order_id,
        rating=facts,
        tips=(),
        expires_at=0,
        since=to_utc_iso(now),
        version=0,
    )
    not_applied(program, store, refused, "customer_mismatch", now)
    raise InvalidInput(
        f"order {order.order_id} was delivered to another customer (refused: customer_mismatch)",
        field="detail.customerId",
    )


def submit_rating(
    event: RatingSubmitted, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    facts = RatingFacts.of(event)
    order, window, rater = store.read_for_rating(
        program.id, event.member_id, event.order_id, facts.customer_id
    )
    read: tuple[RatingWindow, RaterState] | None = (window, rater)
    if not delivered(order):
        # Read eventually consistent: make sure before the rating waits.
        order, read = store.get_order(program.id, event.member_id, event.order_id), None
    if not delivered(order):
        applied, existing = store.put_waiting(
            program.id,
            event.member_id,
            event.order_id,
            to_utc_iso(now),
            waiting_expiry(now, program),
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
        if not delivered(order):
            return ModerationResult(
                event.detail_type,
                event.member_id,
                event.order_id,
                Outcome.WAITING,
                rating_id=event.rating_id,
            )
        assert order is not None
        drained = drain(program, store, order, now)
        if drained is not None and drained.rating_id == event.rating_id:
            return drained
    assert order is not None
    _check_customer(order, facts, now, program, store)
    return apply_rating(program, store, order, facts, now, read=read)


def adjust_tip(
    event: TipAdjusted, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    change = TipChange.of(event)
    order = store.get_order(program.id, event.member_id, event.order_id)
    if not delivered(order):
        store.put_waiting(
            program.id,
            event.member_id,
            event.order_id,
            to_utc_iso(now),
            waiting_expiry(now, program),
            tip=change,
        )
        order = store.get_order(program.id, event.member_id, event.order_id)
        if not delivered(order):
            return ModerationResult(
                event.detail_type, event.member_id, event.order_id, Outcome.TIP_WAITING
            )
        assert order is not None
        drained = drain(program, store, order, now)
        result = apply_tips(program, store, order, [change], now)
        if drained is not None and result.outcome is Outcome.TIP_DUPLICATE:
            return replace(result, outcome=Outcome.TIP_RECORDED)
        return result
    assert order is not None
    return apply_tips(program, store, order, [change], now)


def moderate(
    event: InboundEvent, now: datetime, program: Program, store: RatingStore
) -> ModerationResult:
    """Apply one validated event. ``now`` is its delivery time (the same on a redelivery)."""
    if isinstance(event, RatingSubmitted):
        return submit_rating(event, now, program, store)
    if isinstance(event, TipAdjusted):
        return adjust_tip(event, now, program, store)
    raise TypeError(f"no use case for {type(event).__name__}")
