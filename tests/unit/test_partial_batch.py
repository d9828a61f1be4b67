"""shared.batch's partial batches answer as Powertools' batch utility does (SQS, streams)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities import batch as powertools
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared import batch as shared_batch


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
        "awsRegion": "us-east-1",
    }


def stream_record(sequence: str, sk: str) -> dict[str, Any]:
    return {
        "eventID": sequence,
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": "M#1"}, "sk": {"S": sk}},
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def sqs_handler(record: SQSRecord) -> None:
    assert isinstance(record, SQSRecord)
    if record.body == "bad":
        raise ValueError("bad body")


def stream_handler(record: DynamoDBRecord) -> None:
    assert isinstance(record, DynamoDBRecord)
    assert record.dynamodb is not None
    if record.dynamodb.keys["sk"] == "BAD":
        raise ValueError("bad key")


def both(
    event: dict[str, Any], kind: str, handler: Any, raise_on_entire_batch_failure: bool
) -> tuple[Any, Any]:
    ours = shared_batch.process_partial_response(
        event=event,
        record_handler=handler,
        processor=shared_batch.BatchProcessor(
            shared_batch.EventType(kind),
            raise_on_entire_batch_failure=raise_on_entire_batch_failure,
        ),
    )
    theirs = powertools.process_partial_response(
        event=event,
        record_handler=handler,
        processor=powertools.BatchProcessor(
            powertools.EventType(kind), raise_on_entire_batch_failure=raise_on_entire_batch_failure
        ),
    )
    return ours, theirs


@pytest.mark.parametrize("raise_on_entire_batch_failure", [True, False])
def test_sqs_failures_are_the_failed_message_ids(raise_on_entire_batch_failure: bool) -> None:
    event = {
        "Records": [
            sqs_record("m-1", "good"),
            sqs_record("m-2", "bad"),
            sqs_record("m-3", "good"),
            sqs_record("m-4", "bad"),
        ]
    }
    ours, theirs = both(event, "SQS", sqs_handler, raise_on_entire_batch_failure)
    assert (
        ours
        == theirs
        == {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-4"}]}
    )


def test_stream_failures_are_the_failed_sequence_numbers() -> None:
    event = {"Records": [stream_record("100", "A"), stream_record("101", "BAD")]}
    ours, theirs = both(event, "DynamoDBStreams", stream_handler, False)
    assert ours == theirs == {"batchItemFailures": [{"itemIdentifier": "101"}]}


def test_a_batch_without_failures_reports_none() -> None:
    event = {"Records": [stream_record("100", "A"), stream_record("101", "B")]}
    ours, theirs = both(event, "DynamoDBStreams", stream_handler, True)
    assert ours == theirs == {"batchItemFailures": []}


def test_an_entirely_failed_batch_fails_the_invocation_when_asked() -> None:
    event = {"Records": [sqs_record("m-1", "bad"), sqs_record("m-2", "bad")]}
    with pytest.raises(shared_batch.BatchProcessingError) as raised:
        shared_batch.process_partial_response(
            event, sqs_handler, shared_batch.BatchProcessor(shared_batch.EventType.SQS)
        )
    assert [str(error) for error in raised.value.errors] == ["bad body", "bad body"]
    with pytest.raises(powertools.exceptions.BatchProcessingError):
        powertools.process_partial_response(
            event, sqs_handler, powertools.BatchProcessor(powertools.EventType.SQS)
        )
    ours, theirs = both(event, "SQS", sqs_handler, False)
    assert (
        ours
        == theirs
        == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}
    )


@pytest.mark.parametrize("event", [{"Records": []}, {}, {"Records": "m-1"}])
def test_an_event_without_records_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(shared_batch.BatchProcessingError, match="Unexpected batch event type"):
        shared_batch.process_partial_response(
            event, sqs_handler, shared_batch.BatchProcessor(shared_batch.EventType.SQS)
        )
    with pytest.raises(powertools.exceptions.BatchProcessingError):
        powertools.process_partial_response(
            event, sqs_handler, powertools.BatchProcessor(powertools.EventType.SQS)
        )
