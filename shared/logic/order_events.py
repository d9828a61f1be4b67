"""One order event, every program it concerns: the shopper who delivered the order earns in the
shopper program, the customer who bought it in each customer program.

Programs are applied one after the other, the shopper's first (it tells whether the order was
cancelled before it completed), each exactly once on its own: a delivery that fails half-way is
delivered again, and what was applied the first time is then a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from msgspec import Struct, field
from msgspec.structs import replace

from shared.domain.events import (
    CustomerSignedUp,
    DeliveryLate,
    InboundEvent,
    MembershipChanged,
    OfferAccepted,
    OfferDeclined,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    ProfileUpdated,
    TipAdjusted,
)
from shared.domain.program import Program
from shared.logic.birthday import BirthdayStore, update_profile
from shared.logic.campaigns import CampaignStore, reverse_order_rewards, reward_order
from shared.logic.challenges import ChallengeStore, count_order, uncount_order
from shared.logic.customers import (
    CustomerOutcome,
    CustomerResult,
    change_membership,
    credit_customer,
    refund_customer,
)
from shared.logic.gates import GateResult, GateStore, apply_quality_event, record_delivery
from shared.logic.giving import GivingStore, give_round_up, take_back_round_up
from shared.logic.ingestion import (
    IngestResult,
    LedgerStore,
    Outcome,
    check_order_total,
    ingest,
)
from shared.logic.ports import TransientConflict
from shared.logic.referrals import ReferralStore, record_signups
from shared.logic.zones import update_shopper_zone

_MAY_EARN_BONUSES = {CustomerOutcome.CREDITED, CustomerOutcome.DUPLICATE}
_MAY_TAKE_BONUSES = {CustomerOutcome.REFUNDED, CustomerOutcome.DUPLICATE}
"""A duplicate may be a redelivery whose first delivery stopped before the bonus step."""


class CustomerAndCampaignStore(
    ReferralStore, CampaignStore, ChallengeStore, BirthdayStore, GivingStore, Protocol
):
    """The customer repository: points, campaign bonuses, weekly challenges, referrals and the
    member's profile."""


ORDER_EVENTS: dict[str, type[InboundEvent]] = {
    model.detail_type: model
    for model in (
        OrderCompleted,
        OrderCancelled,
        OrderRefunded,
        TipAdjusted,
        MembershipChanged,
        OfferAccepted,
        OfferDeclined,
        DeliveryLate,
        ProfileUpdated,
        CustomerSignedUp,
    )
}


class OrderEventResult(Struct, frozen=True):
    shopper: IngestResult | None
    customers: list[CustomerResult] = field(default_factory=list)
    shopper_program: str = ""
    quality: GateResult | None = None
    """The shopper's quality gate the event counted for (offers, deliveries, lateness)."""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = dict(self.shopper.as_dict()) if self.shopper else {}
        if self.quality is not None:
            body["quality"] = self.quality.as_dict()
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
    customers: CustomerAndCampaignStore,
    attempt_id: str,
    gates: GateStore | None = None,
) -> OrderEventResult:
    other = _apply_other_event(event, now, shopper, customer_programs, ledger, customers, gates)
    if other is not None:
        return other
    if isinstance(event, OrderCompleted):  # every program's bound, before anything is written
        check_order_total(event, [shopper, *customer_programs])
    result = ingest(event, now, shopper, ledger, attempt_id)
    done: list[CustomerResult] = []
    quality: GateResult | None = None
    if isinstance(event, OrderCompleted):
        void = result.void
        delivered = result.outcome in {Outcome.CREDITED, Outcome.DUPLICATE} and not void
        if delivered and gates is not None:  # a delivery for the on-time rate
            quality = record_delivery(event, shopper, gates)
        for program in customer_programs:
            done.append(_complete(event, now, program, customers, attempt_id, void))
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
                done.append(_cancel(event, customer_id, now, program, customers))
    return OrderEventResult(result, done, shopper_program=shopper.id, quality=quality)


def _apply_other_event(
    event: InboundEvent,
    now: datetime,
    shopper: Program,
    customer_programs: Sequence[Program],
    ledger: LedgerStore,
    customers: CustomerAndCampaignStore,
    gates: GateStore | None,
) -> OrderEventResult | None:
    """The events that are not an order's: the quality gates' and the customers' own (plan,
    profile); None for an order's event."""
    if isinstance(event, OfferAccepted | DeliveryLate):  # OfferDeclined too
        if gates is None:
            raise TypeError("quality events need the gate store")
        counted = apply_quality_event(event, now, shopper, gates)
        return OrderEventResult(None, shopper_program=shopper.id, quality=counted)
    if isinstance(event, MembershipChanged):
        return OrderEventResult(
            None, [change_membership(event, program, customers) for program in customer_programs]
        )
    if isinstance(event, ProfileUpdated) and event.program_id == shopper.id:
        # The shopper's zone (docs/tiers.md, "Time zones"): their days, quarters and periods.
        return OrderEventResult(
            None, [update_shopper_zone(event, now, shopper, ledger)], shopper_program=shopper.id
        )
    if isinstance(event, ProfileUpdated):  # a customer program's: birthday, zone, language
        updated = update_profile(event, now, customer_programs, customers, shopper.id)
        return OrderEventResult(None, [updated])
    if isinstance(event, CustomerSignedUp):  # the referral, in each customer program with one
        return OrderEventResult(None, record_signups(event, now, customer_programs, customers))
    return None


def _complete(
    event: OrderCompleted,
    now: datetime,
    program: Program,
    customers: CustomerAndCampaignStore,
    attempt_id: str,
    void: bool,
) -> CustomerResult:
    """The customer's credit, then the campaign bonuses the order earns."""
    credited = credit_customer(event, now, program, customers, attempt_id, void=void)
    if credited.outcome not in _MAY_EARN_BONUSES:
        return credited
    bonuses: dict[str, object] = {}
    if program.campaigns:
        lot = credited.lot if credited.outcome is CustomerOutcome.CREDITED else None
        bonuses.update(reward_order(event, now, program, customers, lot))
        bonuses.update(count_order(event, now, program, customers, lot))
    # The order's change to a cause, after its credit (a redelivery finds it written).
    given = give_round_up(event, program, customers)
    if given is not None and program.giving is not None:
        bonuses[program.giving.campaign_id] = given
    return replace(credited, campaigns=bonuses) if bonuses else credited


def _cancel(
    event: OrderCancelled,
    customer_id: str,
    now: datetime,
    program: Program,
    customers: CustomerAndCampaignStore,
) -> CustomerResult:
    """The customer's refund; a cancellation or whole refund also takes the bonuses back and
    gives the order's round-up back."""
    refunded = refund_customer(event, customer_id, now, program, customers)
    whole = not isinstance(event, OrderRefunded) or event.amount is None
    if not (whole and refunded.outcome in _MAY_TAKE_BONUSES):
        return refunded
    outcomes: dict[str, object] = {}
    if program.campaigns:
        taken = reverse_order_rewards(event.order_id, customer_id, now, program, customers)
        taken += uncount_order(event.order_id, customer_id, now, program, customers)
        if taken:
            outcomes["pointsTakenBack"] = taken
    given_back = take_back_round_up(event.order_id, customer_id, now, program, customers)
    if given_back is not None and program.giving is not None:
        outcomes[program.giving.campaign_id] = given_back
    return replace(refunded, campaigns=outcomes) if outcomes else refunded
