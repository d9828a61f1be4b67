"""tier_recalculation: keeps every member's tier true to the program.

Triggers (template.yaml): the table's stream, filtered to member items (upgrades within
seconds, evaluated from the new image, no read); a daily EventBridge schedule (downgrades, at
risk notices, for the members due today in the sparse index).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.dal.factory import tier_repository
from shared.dal.keys import MEMBER_SK
from shared.domain.tiers import Trigger
from shared.logic.tiers import TierRun, daily_evaluation, evaluate_member
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings
from shared.streams import change_of


def _record(metrics_run: TierRun) -> None:
    for change, count in metrics_run.changes.items():
        metrics.add_metric(name="TierChanges", unit=MetricUnit.Count, value=count)
        logger.info("tier changed", extra={"change": change, "count": count})
    if metrics_run.at_risk:
        metrics.add_metric(
            name="TierAtRiskNotices", unit=MetricUnit.Count, value=metrics_run.at_risk
        )


def _stream_record(record: DynamoDBRecord) -> None:
    change = change_of(record)
    if change.sk != MEMBER_SK or change.new is None:
        return
    run = evaluate_member(
        change.new,
        change.at,
        load_program(settings().program_id),
        Trigger.STREAM,
        tier_repository(),
    )
    _record(run)


def _schedule(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("time")
    now = datetime.fromisoformat(raw) if isinstance(raw, str) else datetime.now(UTC)
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
            event=event, record_handler=_stream_record, processor=processor, context=context
        )
    if event.get("detail-type") == "Scheduled Event":
        return _schedule(event)
    raise ValueError("tier_recalculation expects a DynamoDB stream batch or a scheduled event")
