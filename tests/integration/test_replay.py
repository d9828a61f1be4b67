"""``loyalty replay`` (infra/replay.py): a stream consumer's failure record points at a batch of
the table's stream; the tool fetches exactly those records from DynamoDB Local's stream and
hands them to the consumer again, which then does what the first delivery should have."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.replay import BatchInfo, Outcome, records_of, replay_message
from shared import composition
from shared.composition import ledger_repository
from tests.helpers import FakeContext, load_function, order_completed
from tests.integration.streams import StreamReader

NOW = datetime.now(UTC).replace(microsecond=0)
REGION = "us-east-1"


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    yield {name: load_function(name) for name in ("order_ingestion", "tier_recalculation")}
    composition.reset()


def failure_record(stream_arn: str, records: list[dict[str, Any]]) -> str:
    """What Lambda sends a stream consumer's on-failure destination for a batch it gave up on
    (the shape AWS documents, as the local stack writes it)."""
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    return json.dumps(
        {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "DDBStreamBatchInfo": {
                "shardId": records[0]["shard"],
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": stream_arn,
            },
        }
    )


def _stream(table_name: str) -> tuple[str, str]:
    arn = boto3.client("dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return arn, shard


def test_a_failed_batch_is_fetched_again_and_applied(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    reader = StreamReader(table_name)
    for index in range(7):  # 7 orders of 3 deliveries: 210 points, Gold once evaluated
        apps["order_ingestion"].lambda_handler(
            order_completed(
                order_id=f"o-{index}",
                batch_size=3,
                completed_at=(NOW - timedelta(hours=index)).isoformat(),
                time=NOW.isoformat(),
            ),
            FakeContext(),
        )
    records = reader.read()
    assert len(records) >= 7
    # The consumer never saw the batch (it failed, Lambda gave up): the member has no tier.
    member = ledger_repository().get_member("cart-star", "shopper-1")
    assert member is not None and member.get("tier") is None
    arn, shard = _stream(table_name)
    batch = [dict(record, shard=shard) for record in records[2:]]  # a batch in the middle
    seen: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> Mapping[str, Any] | None:
        seen.append(event)
        answer: Mapping[str, Any] = apps["tier_recalculation"].lambda_handler(
            event, FakeContext(function_name="tier_recalculation")
        )
        return answer

    outcome = Outcome()
    assert replay_message(
        failure_record(arn, batch), boto3.client("dynamodbstreams"), invoke, REGION, outcome
    )
    assert (outcome.replayed, outcome.records, outcome.lost, outcome.failed) == (
        1,
        len(batch),
        [],
        [],
    )
    (event,) = seen
    wanted = [r["dynamodb"]["SequenceNumber"] for r in records[2:]]
    assert [r["dynamodb"]["SequenceNumber"] for r in event["Records"]] == wanted
    assert {r["eventSourceARN"] for r in event["Records"]} == {arn}
    assert all(
        isinstance(r["dynamodb"]["ApproximateCreationDateTime"], float) for r in event["Records"]
    )
    member = ledger_repository().get_member("cart-star", "shopper-1")
    assert member is not None and member["tier"] == "gold"
    # Replaying it again (a message delivered twice) changes nothing.
    assert replay_message(
        failure_record(arn, batch), boto3.client("dynamodbstreams"), invoke, REGION, outcome
    )
    assert ledger_repository().get_member("cart-star", "shopper-1") == member


def test_a_batch_the_function_fails_again_is_kept(table_name: str) -> None:
    composition.reset()
    boto3.client("dynamodb").put_item(
        TableName=table_name, Item={"pk": {"S": "P#x#M#y"}, "sk": {"S": "MEMBER"}}
    )
    records = StreamReader(table_name).read()
    arn, shard = _stream(table_name)
    outcome = Outcome()
    refused = replay_message(
        failure_record(arn, [dict(records[0], shard=shard)]),
        boto3.client("dynamodbstreams"),
        lambda event: {"batchItemFailures": [{"itemIdentifier": "x"}]},
        REGION,
        outcome,
    )
    assert not refused and outcome.replayed == 0 and len(outcome.failed) == 1


class _Trimmed:
    """A stream whose records are past their 24 hours."""

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}},
            "GetShardIterator",
        )


def test_records_past_the_streams_retention_are_reported_lost_and_kept() -> None:
    body = json.dumps(
        {
            "DDBStreamBatchInfo": {
                "shardId": "shard-1",
                "startSequenceNumber": "100",
                "endSequenceNumber": "200",
                "batchSize": 2,
                "streamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
            }
        }
    )
    outcome = Outcome()
    assert not replay_message(body, _Trimmed(), lambda event: None, REGION, outcome)
    assert outcome.lost == ["shard-1 100..200: TrimmedDataAccessException"]


def test_a_message_that_is_no_failure_record_is_reported() -> None:
    outcome = Outcome()
    assert not replay_message('{"hello": 1}', _Trimmed(), lambda event: None, REGION, outcome)
    assert outcome.failed and "not a stream failure record" in outcome.failed[0]
    with pytest.raises(ValueError, match="not a stream failure record"):
        BatchInfo.from_message("not json")


def test_records_of_stops_at_the_end_sequence_number(table_name: str) -> None:
    client = boto3.client("dynamodb")
    for index in range(5):
        client.put_item(
            TableName=table_name, Item={"pk": {"S": f"P#x#M#{index}"}, "sk": {"S": "MEMBER"}}
        )
    records = StreamReader(table_name).read()
    arn, shard = _stream(table_name)
    start, end = (records[i]["dynamodb"]["SequenceNumber"] for i in (1, 3))
    found = records_of(boto3.client("dynamodbstreams"), BatchInfo(arn, shard, start, end, 3))
    assert [r["dynamodb"]["SequenceNumber"] for r in found] == [
        r["dynamodb"]["SequenceNumber"] for r in records[1:4]
    ]
