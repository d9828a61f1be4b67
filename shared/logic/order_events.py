"""One order event, every program it concerns: the shopper who delivered the order earns in the
shopper program, the customer who bought it in each customer program.

Programs are applied one after the other, the shopper's first (it tells whether the order was
cancelled before it completed), each exactly once on its own: a delivery that fails half-way is
delivered again, and what was applied the first time is then a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.domain.events import (
    InboundEvent,
    MembershipChanged,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    TipAdjusted,
)
from shared.domain.program import Program
from shared.logic.customers import (
    CustomerResult,
    CustomerStore,
    change_membership,
    credit_customer,
    refund_customer,
)
from shared.logic.ingestion import IngestResult, LedgerStore, check_order_total, ingest
from shared.logic.ports import TransientConflict

ORDER_EVENTS: dict[str, type[InboundEvent]] = {
    model.detail_type: model
    for model in (OrderCompleted, OrderCancelled, OrderRefunded, TipAdjusted, MembershipChanged)
}


@dataclass(frozen=True)
class OrderEventResult:
    shopper: IngestResult | None
    customers: list[CustomerResult] = field(default_factory=list)
    shopper_program: str = ""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = dict(self.shopper.as_dict()) if self.shopper else {}
        body["programs"] = [
            *(
                [{"programId": self.shopper_program, **self.shopper.as_dict()}]
                if self.shopper
                else []
            ),
            *(result.as_dict() for result in self.customers),
        ]
        return body


def apply_order_event(
    event: InboundEvent,
    now: datetime,
    shopper: Program,
    customer_programs: Sequence[Program],
    ledger: LedgerStore,
    customers: CustomerStore,
    attempt_id: str,
) -> OrderEventResult:
    if isinstance(event, MembershipChanged):
        return OrderEventResult(
            None, [change_membership(event, program, customers) for program in customer_programs]
        )
    if isinstance(event, OrderCompleted):  # every program's bound, before anything is written
        check_order_total(event, [shopper, *customer_programs])
    result = ingest(event, now, shopper, ledger, attempt_id)
    done: list[CustomerResult] = []
    if isinstance(event, OrderCompleted):
        void = result.void
        for program in customer_programs:
            done.append(credit_customer(event, now, program, customers, attempt_id, void=void))
    elif isinstance(event, OrderCancelled):
        customer_id: str | None = event.customer_id
        if customer_id is None:
            order = ledger.get_order(shopper.id, event.member_id, event.order_id)
            customer_id = order.customer_id if order else None
        if customer_id is None and isinstance(event, OrderRefunded) and event.amount is not None:
            # A partial refund before its order: only the customer's share changes, and nobody
            # knows the customer yet. Retried (bounded) until the completion is there; then the
            # failure destination keeps it with this reason. Producers can send customerId.
            raise TransientConflict(
                f"order {event.order_id} is not known yet: its partial refund waits for the "
                "completion (send customerId to apply it at once)"
            )
        if customer_id is not None:
            for program in customer_programs:
                done.append(refund_customer(event, customer_id, now, program, customers))
    return OrderEventResult(result, done, shopper_program=shopper.id)
