"""order_ingestion: orders become points in members' ledgers, exactly once.

Triggers (template.yaml): an EventBridge rule for OrderCompleted, OrderCancelled, OrderRefunded,
TipAdjusted, MembershipChanged, ProfileUpdated and the quality gates' OfferAccepted,
OfferDeclined and DeliveryLate; an SQS queue of the same events; the IAM-authorised route
``POST /v1/events``. Each event is applied to every program it concerns: the shopper program
(the order's ``memberId``) and the customer programs (its ``customerId``); a profile to the
customer program it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import customer_repository, gate_repository, ledger_repository
from shared.domain.events import InboundEvent
from shared.ingress import EventIngress
from shared.logic.customers import CustomerOutcome
from shared.logic.ingestion import Outcome
from shared.logic.order_events import ORDER_EVENTS, apply_order_event
from shared.observability import logger, metrics, tracer
from shared.programs import customer_programs, load_program
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_METRICS = {
    Outcome.CREDITED: "OrdersCredited",
    Outcome.DUPLICATE: "DuplicateDeliveries",
    Outcome.VOIDED: "OrdersVoided",
    Outcome.REVERSED: "OrdersReversed",
    Outcome.CANCELLED_BEFORE_COMPLETION: "CancellationsBeforeCompletion",
    Outcome.ALREADY_REVERSED: "DuplicateDeliveries",
    Outcome.TIP_RECORDED: "TipAdjustments",
    Outcome.TIP_STALE: "DuplicateDeliveries",
    Outcome.PARTIAL_REFUND: "PartialRefundsKept",
}
_CUSTOMER_METRICS = {
    CustomerOutcome.CREDITED: "CustomerOrdersCredited",
    CustomerOutcome.DUPLICATE: "DuplicateDeliveries",
    CustomerOutcome.VOIDED: "OrdersVoided",
    CustomerOutcome.REFUNDED: "CustomerRefunds",
    CustomerOutcome.CANCELLED_BEFORE_COMPLETION: "CancellationsBeforeCompletion",
    CustomerOutcome.REFUND_PENDING: "RefundsBeforeCompletion",
    CustomerOutcome.NOTHING_TO_REFUND: "DuplicateDeliveries",
    CustomerOutcome.MEMBERSHIP_CHANGED: "MembershipChanges",
    CustomerOutcome.MEMBERSHIP_STALE: "DuplicateDeliveries",
    CustomerOutcome.PROFILE_UPDATED: "ProfileUpdates",
    CustomerOutcome.PROFILE_STALE: "DuplicateDeliveries",
    CustomerOutcome.REFERRAL_RECORDED: "ReferralsRecorded",
    CustomerOutcome.REFERRAL_REFUSED: "ReferralsRefused",
    CustomerOutcome.NO_REFERRAL: "SignupsWithoutReferral",
}


def _process(event: InboundEvent, now: datetime, attempt_id: str) -> Mapping[str, object]:
    config = settings()
    result = apply_order_event(
        event,
        now,
        load_program(config.program_id),
        customer_programs(config.program_ids),
        ledger_repository(),
        customer_repository(),
        attempt_id,
        gate_repository(),
    )
    shopper = result.shopper
    if shopper is not None:
        metrics.add_metric(name=_METRICS[shopper.outcome], unit=MetricUnit.Count, value=1)
        if shopper.points:
            metrics.add_metric(
                name="PointsChanged", unit=MetricUnit.Count, value=abs(shopper.points)
            )
        if shopper.tip_baited:
            metrics.add_metric(name="TipBaitedOrders", unit=MetricUnit.Count, value=1)
    if result.quality is not None and result.quality.outcome == "counted":
        metrics.add_metric(name="QualityEventsCounted", unit=MetricUnit.Count, value=1)
    for customer in result.customers:
        metrics.add_metric(name=_CUSTOMER_METRICS[customer.outcome], unit=MetricUnit.Count, value=1)
    body = result.as_dict()
    logger.info("event applied", extra=body)
    return body


ingress = EventIngress(ORDER_EVENTS, _process)


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return ingress.handle(event, context)
