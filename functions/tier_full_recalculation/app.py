"""tier_full_recalculation: recalculates every member's tier after a new configuration version.

Trigger: its own SQS queue (template.yaml: TierFullRecalculationQueue), one message per
(job, segment, page), batch size 1. A worker processes pages of its segment while more than a
minute of its 15 remains, checkpointing after each, then sends itself the continuation message
(or marks the segment done). Jobs are started with ``python -m infra.recalc start``; see
docs/tiers-recalculation.md.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from shared.composition import recalculation_repository, sqs
from shared.domain.recalculation import SegmentMessage
from shared.logic.recalculation import run_segment
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

QUEUE_URL_VARIABLE = "RECALCULATION_QUEUE_URL"


def send(message: SegmentMessage) -> None:
    """Send the continuation message to this function's own queue."""
    queue_url = os.environ.get(QUEUE_URL_VARIABLE)
    if not queue_url:
        raise RuntimeError(f"{QUEUE_URL_VARIABLE} must name the recalculation queue")
    sqs().send_message(QueueUrl=queue_url, MessageBody=message.to_json())


def _handler(context: LambdaContext) -> Any:
    def record_handler(record: SQSRecord) -> None:
        message = SegmentMessage.from_json(record.body)
        store = recalculation_repository()
        store.meter.reset()
        result = run_segment(
            message,
            load_program(settings().program_id),
            store,
            send,
            context.get_remaining_time_in_millis,
        )
        metrics.add_metric(name="RecalculatedMembers", unit=MetricUnit.Count, value=result.members)
        metrics.add_metric(
            name="RecalculationWrites", unit=MetricUnit.Count, value=result.run.written
        )
        if result.failed_members:
            logger.error(
                "members that could not be evaluated",
                extra={"member_ids": result.failed_members, "job_id": message.job_id},
            )
        logger.info(
            "segment worked",
            extra={
                **result.as_dict(),
                "readUnits": round(store.meter.read_units, 1),
                # Computed from item sizes where a batch's answer reports no capacity (DynamoDB
                # Local); on AWS the answers' ConsumedCapacity is in the meter.
                "writeUnits": round(store.meter.write_units + store.computed_write_units, 1),
                "writeRequests": store.meter.by_operation.get("BatchExecuteStatement", 0),
            },
        )

    return record_handler


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    processor = BatchProcessor(EventType.SQS)
    return process_partial_response(
        event=event, record_handler=_handler(context), processor=processor, context=context
    )
