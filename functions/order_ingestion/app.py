"""order_ingestion: orders become points in members' ledgers, exactly once.

Triggers (template.yaml): an EventBridge rule for OrderCompleted, OrderCancelled, OrderRefunded
and TipAdjusted; an SQS queue of the same events; the IAM-authorised route ``POST /v1/events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import ledger_repository
from shared.domain.events import InboundEvent
from shared.ingress import EventIngress
from shared.logic.ingestion import INGESTED_EVENTS, Outcome, ingest
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
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
}


def _process(event: InboundEvent, now: datetime, attempt_id: str) -> Mapping[str, object]:
    result = ingest(
        event, now, load_program(settings().program_id), ledger_repository(), attempt_id
    )
    metrics.add_metric(name=_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    if result.points:
        metrics.add_metric(name="PointsChanged", unit=MetricUnit.Count, value=abs(result.points))
    if result.tip_baited:
        metrics.add_metric(name="TipBaitedOrders", unit=MetricUnit.Count, value=1)
    logger.info("event applied", extra=result.as_dict())
    return result.as_dict()


ingress = EventIngress(INGESTED_EVENTS, _process)


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return ingress.handle(event, context)
