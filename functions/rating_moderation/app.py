"""rating_moderation: ratings and tip changes become each member's counted average over their
last N counted ratings, and their eligibility (SPEC: Rating floor, Rating moderation).

Triggers (template.yaml): an EventBridge rule for RatingSubmitted and TipAdjusted; an SQS queue
of the same events; the IAM-authorised route ``POST /v1/events/ratings``. It also accepts a
batch of the table's stream records (orders arriving, cancelled or refunded; waiting ratings
expiring), should it be given its own stream trigger. In template.yaml it has none: a DynamoDB
stream serves at most two readers per shard without throttling, and those are taken
(tier_recalculation and event_publisher), so tier_recalculation's stream trigger passes order
and waiting-rating changes to ``shared.logic.moderation.apply_table_change``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.composition import rating_repository
from shared.domain.events import InboundEvent
from shared.domain.ratings import RATING_EVENTS
from shared.ingress import EventIngress
from shared.logic.moderation import METRIC_NAMES, ModerationResult, apply_table_change, moderate
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings
from shared.streams import change_of


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


def _stream_record(record: DynamoDBRecord) -> None:
    change = change_of(record)
    program = load_program(settings().program_id)
    for result in apply_table_change(
        change.old, change.new, change.at, program, rating_repository()
    ):
        _observe(result)


def _is_stream(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        bool(records)
        and isinstance(records, list)
        and records[0].get("eventSource") == "aws:dynamodb"
    )


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if _is_stream(event):
        processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        return process_partial_response(
            event=event, record_handler=_stream_record, processor=processor, context=context
        )
    return ingress.handle(event, context)
