"""Partial batch responses for SQS and the table's stream, as Powertools' batch utility gives
them (same names and arguments), without importing that package: it also loads its parser
models, Kafka support and asyncio, about 0.3 of the floor of a cold start
(``python -m bench.coldstart``). This module imports nothing heavy, so a stream function that
needs only this pays for nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["BatchProcessingError", "BatchProcessor", "EventType", "process_partial_response"]


class EventType(StrEnum):
    """The batches a function can be given: SQS messages, DynamoDB stream records."""

    SQS = "SQS"
    DynamoDBStreams = "DynamoDBStreams"


class BatchProcessingError(Exception):
    """Every record of the batch failed (and the processor was asked to fail the invocation)."""

    def __init__(self, message: str, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.errors = errors


class BatchProcessor:
    """Partial batch responses, as Powertools' ``BatchProcessor`` gives them for SQS and DynamoDB
    streams (same names and arguments), without importing Powertools' batch utility: that
    package also loads its parser models, Kafka support and asyncio, about 0.3 of the
    floor of a cold start (``python -m bench.coldstart``).

    Each record goes to the handler as Powertools' data class (``SQSRecord``,
    ``DynamoDBRecord``); a record whose handler raised is reported in ``batchItemFailures``
    (SQS: its message id; stream: its sequence number), so Lambda retries it alone. When every
    record failed and ``raise_on_entire_batch_failure`` is true, the invocation fails instead.
    Handlers take the record alone (not Powertools' optional ``lambda_context``).
    """

    def __init__(self, event_type: EventType, raise_on_entire_batch_failure: bool = True) -> None:
        self.event_type = event_type
        self.raise_on_entire_batch_failure = raise_on_entire_batch_failure

    def wrap(self, record: dict[str, Any]) -> Any:
        """The record as the handler receives it (imported here: only batches need them)."""
        if self.event_type is EventType.SQS:
            from aws_lambda_powertools.utilities.data_classes.sqs_event import (  # noqa: PLC0415
                SQSRecord,
            )

            return SQSRecord(record)
        from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (  # noqa: PLC0415
            DynamoDBRecord,
        )

        return DynamoDBRecord(record)

    def identifier(self, record: dict[str, Any]) -> str:
        if self.event_type is EventType.SQS:
            return str(record["messageId"])
        return str(record["dynamodb"]["SequenceNumber"])

    def process(
        self, records: list[dict[str, Any]], record_handler: Callable[[Any], object]
    ) -> dict[str, list[dict[str, str]]]:
        failures: list[dict[str, str]] = []
        errors: list[BaseException] = []
        for record in records:
            try:
                record_handler(self.wrap(record))
            except Exception as error:
                logger.debug("batch record failed", extra={"error": repr(error)})
                errors.append(error)
                failures.append({"itemIdentifier": self.identifier(record)})
        if errors and len(errors) == len(records) and self.raise_on_entire_batch_failure:
            raise BatchProcessingError(
                f"All records failed processing. {len(errors)} individual errors", errors
            )
        return {"batchItemFailures": failures}


def process_partial_response(
    event: Mapping[str, Any],
    record_handler: Callable[[Any], object],
    processor: BatchProcessor,
    context: LambdaContext | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Apply ``record_handler`` to each record of the batch ``event``; the failures to retry."""
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise BatchProcessingError(
            f"Unexpected batch event type: expected the records of a {processor.event_type.value} "
            "batch",
            [],
        )
    return processor.process(records, record_handler)
