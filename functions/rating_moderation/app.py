"""rating_moderation: ratings and tip changes become each member's counted average over their
last N counted ratings, and their eligibility (docs/ratings.md).

Triggers (template.yaml): an EventBridge rule for RatingSubmitted and TipAdjusted; an SQS queue
of the same events; the IAM-authorised route ``POST /v1/events/ratings``. The table's stream
changes rating moderation acts upon (orders arriving, cancelled or refunded; waiting ratings
expiring) reach ``shared.logic.moderation.apply_table_change`` through tier_recalculation's
stream trigger, not this function.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import rating_repository
from shared.domain.events import InboundEvent
from shared.domain.ratings import RATING_EVENTS
from shared.ingress import EventIngress
from shared.logic.moderation import METRIC_NAMES, ModerationResult, moderate
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _observe(result: ModerationResult) -> Mapping[str, object]:
    metrics.add_metric(name=METRIC_NAMES[result.outcome], unit=MetricUnit.Count, value=1)
    if result.reconciled:
        metrics.add_metric(
            name="RatingsReconsidered", unit=MetricUnit.Count, value=result.reconciled
        )
    body = result.as_dict()
    logger.info("rating moderation applied", extra=body)
    return body


def _process(event: InboundEvent, now: datetime, attempt_id: str) -> Mapping[str, object]:
    program = load_program(settings().program_id)
    return _observe(moderate(event, now, program, rating_repository()))


ingress = EventIngress(RATING_EVENTS, _process, http_path="/v1/events/ratings")


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return ingress.handle(event, context)
