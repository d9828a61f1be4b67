"""Re-drive the stream batches a stream consumer gave up on (``loyalty replay``).

When a function reading the table's stream fails on a batch after its retries, Lambda sends the
consumer's on-failure queue (``TierStreamFailureQueue``, ``EventPublisherFailureQueue``) not the
records but where they are: ``DDBStreamBatchInfo`` {streamArn, shardId, startSequenceNumber,
endSequenceNumber, batchSize}. The records themselves live in the stream for 24 hours. This
tool reads each such message, fetches its records from the stream (from the start sequence
number to the end one), hands them to the function again as the same stream event Lambda would
build, and deletes the message once the function took the whole batch. A message whose records
are gone (past the stream's retention, or a stream since replaced) is kept and reported as
lost: its changes must be rebuilt from the table (e.g. a full tier recalculation).

::

    loyalty replay --queue-url URL --function-name NAME [--max 100] [--dry-run]

The consumers are idempotent (docs/data-model.md): replaying a batch that partly went through
changes nothing twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

__all__ = ["BatchInfo", "Outcome", "main", "records_of", "replay_message", "stream_event"]

Invoke = Callable[[dict[str, Any]], Mapping[str, Any] | None]
"""Runs the function on an event; returns its answer (``batchItemFailures`` if any) or raises."""
GONE = {"TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException"}
EMPTY_PAGES = 5
"""An open shard may answer empty pages before the records: give up after this many."""


@dataclass(frozen=True)
class BatchInfo:
    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int

    @classmethod
    def from_message(cls, body: str) -> BatchInfo:
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            return cls(
                str(info["streamArn"]),
                str(info["shardId"]),
                str(info["startSequenceNumber"]),
                str(info["endSequenceNumber"]),
                int(info.get("batchSize") or 0),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a stream failure record: {body[:200]!r}") from exc


@dataclass
class Outcome:
    replayed: int = 0
    records: int = 0
    lost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _when(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


def records_of(streams: Any, info: BatchInfo) -> list[dict[str, Any]]:
    """The batch's records, start to end sequence number (numbers compare as integers)."""
    iterator = streams.get_shard_iterator(
        StreamArn=info.stream_arn,
        ShardId=info.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info.start,
    ).get("ShardIterator")
    found: list[dict[str, Any]] = []
    empty = 0
    end = int(info.end)
    while iterator and empty < EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = page.get("Records", [])
        empty = 0 if records else empty + 1
        for record in records:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return found
            found.append(record)
        if found and int(found[-1]["dynamodb"]["SequenceNumber"]) == end:
            return found
        iterator = page.get("NextShardIterator")
    return found


def stream_event(
    info: BatchInfo, records: Sequence[Mapping[str, Any]], region: str
) -> dict[str, Any]:
    """The event Lambda builds for a stream consumer from these records."""
    converted = []
    for record in records:
        dynamodb = dict(record["dynamodb"])
        if "ApproximateCreationDateTime" in dynamodb:
            dynamodb["ApproximateCreationDateTime"] = _when(dynamodb["ApproximateCreationDateTime"])
        converted.append(
            {
                "eventID": record.get("eventID"),
                "eventName": record.get("eventName"),
                "eventVersion": record.get("eventVersion", "1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": record.get("awsRegion", region),
                "dynamodb": dynamodb,
                "eventSourceARN": info.stream_arn,
            }
        )
    return {"Records": converted}


def replay_message(body: str, streams: Any, invoke: Invoke, region: str, outcome: Outcome) -> bool:
    """Replay one failure message; True when it may be deleted (the batch went through)."""
    try:
        info = BatchInfo.from_message(body)
    except ValueError as exc:
        outcome.failed.append(str(exc))
        return False
    label = f"{info.shard_id} {info.start}..{info.end}"
    try:
        records = records_of(streams, info)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE:
            outcome.lost.append(f"{label}: {exc.response['Error']['Code']}")
            return False
        raise
    if not records or records[0]["dynamodb"]["SequenceNumber"] != info.start:
        outcome.lost.append(f"{label}: the records are no longer in the stream")
        return False
    answer = invoke(stream_event(info, records, region)) or {}
    failures = answer.get("batchItemFailures") or []
    if failures:
        outcome.failed.append(f"{label}: the function failed again on {len(failures)} record(s)")
        return False
    outcome.replayed += 1
    outcome.records += len(records)
    return True


def _messages(sqs: Any, queue_url: str, limit: int) -> Iterator[Mapping[str, Any]]:
    seen = 0
    while seen < limit:
        page = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - seen), WaitTimeSeconds=1
        ).get("Messages", [])
        if not page:
            return
        for message in page:
            seen += 1
            yield message


def _lambda_invoke(function_name: str) -> Invoke:
    client = boto3.client("lambda")

    def invoke(event: dict[str, Any]) -> Mapping[str, Any] | None:
        answer = client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise RuntimeError(f"{function_name} failed: {payload[:500]!r}")
        result = json.loads(payload) if payload else None
        return result if isinstance(result, Mapping) else None

    return invoke


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty replay", description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True, help="the consumer's on-failure queue")
    parser.add_argument("--function-name", required=True, help="the stream consumer to re-drive")
    parser.add_argument("--max", type=int, default=100, help="messages to take at most")
    parser.add_argument("--dry-run", action="store_true", help="fetch and count, invoke nothing")
    args = parser.parse_args(argv)
    sqs, streams = boto3.client("sqs"), boto3.client("dynamodbstreams")
    region = streams.meta.region_name
    invoke: Invoke = (lambda _event: None) if args.dry_run else _lambda_invoke(args.function_name)
    outcome = Outcome()
    for message in _messages(sqs, args.queue_url, args.max):
        if replay_message(message["Body"], streams, invoke, region, outcome) and not args.dry_run:
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
    print(
        f"replayed {outcome.replayed} batches ({outcome.records} records); "
        f"lost {len(outcome.lost)}; failed {len(outcome.failed)}"
    )
    for line in outcome.lost:
        print(f"lost: {line}")
    for line in outcome.failed:
        print(f"failed: {line}")
    return 1 if outcome.lost or outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
