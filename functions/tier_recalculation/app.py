"""tier_recalculation: keeps every member's tier true to the program.

Triggers (template.yaml): the table's stream, filtered to member items (upgrades within
seconds, evaluated from the new image, no read); a daily EventBridge schedule (downgrades, at
risk notices, for the members due today in the sparse index).

The same stream trigger also carries the order items and the removal of waiting ratings to
rating moderation (``shared.logic.moderation.apply_table_change``), routed by item kind
(``shared.streams.StreamRouter``; other kinds are ignored): an order that arrives
releases the ratings waiting for it, a cancellation or refund stops its rating counting, and a
waiting rating removed by its TTL is recorded as expired. A DynamoDB stream serves two readers
per shard without throttling, and this function and event_publisher are those two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from shared.composition import rating_repository, tier_repository
from shared.domain.tiers import Trigger
from shared.ingress import scheduled_at
from shared.logic.moderation import METRIC_NAMES, apply_table_change
from shared.logic.tiers import TierRun, daily_evaluation, evaluate_member
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.rating_stream import rating_change
from shared.settings import settings
from shared.streams import Change, ItemKind, StreamRouter

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def _record(metrics_run: TierRun) -> None:
    for change, count in metrics_run.changes.items():
        metrics.add_metric(name="TierChanges", unit=MetricUnit.Count, value=count)
        logger.info("tier changed", extra={"change": change, "count": count})
    if metrics_run.at_risk:
        metrics.add_metric(
            name="TierAtRiskNotices", unit=MetricUnit.Count, value=metrics_run.at_risk
        )


def _member(change: Change) -> None:
    if change.new is None:
        return
    program = load_program(settings().program_id)
    _record(evaluate_member(change.new, change.at, program, Trigger.STREAM, tier_repository()))


def _rating(change: Change) -> None:
    """Orders arriving, cancelled or refunded; waiting ratings removed: rating moderation."""
    table_change = rating_change(change)
    if table_change is None:
        return
    program = load_program(settings().program_id)
    for result in apply_table_change(table_change, change.at, program, rating_repository()):
        metrics.add_metric(name=METRIC_NAMES[result.outcome], unit=MetricUnit.Count, value=1)
        logger.info("rating moderation applied", extra=result.as_dict())


stream = StreamRouter(
    {ItemKind.MEMBER: _member, ItemKind.ORDER: _rating, ItemKind.WAITING: _rating},
    programs=lambda: (settings().program_id,),
)
"""The shopper program's items only: a customer program's members and orders share the table
and the stream, and are none of the tier or rating rules' business."""


def _schedule(event: dict[str, Any]) -> dict[str, Any]:
    now = scheduled_at(event)
    run = daily_evaluation(now, load_program(settings().program_id), tier_repository())
    _record(run)
    logger.info("daily evaluation done", extra=run.as_dict())
    return run.as_dict()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    records = event.get("Records")
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:dynamodb":
        processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        return process_partial_response(
            event=event, record_handler=stream, processor=processor, context=context
        )
    if event.get("detail-type") == "Scheduled Event":
        return _schedule(event)
    raise ValueError("tier_recalculation expects a DynamoDB stream batch or a scheduled event")
