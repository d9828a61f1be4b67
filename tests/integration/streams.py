"""The table's stream read from DynamoDB Local, as Lambda hands it to a consumer, and a publisher
that records what the stream consumers would publish."""

from __future__ import annotations

from typing import Any

import boto3

from shared.domain.outbound import OutboundEvent


class StreamReader:
    """Reads the table's stream as Lambda receives it (same record shape)."""

    def __init__(self, table_name: str) -> None:
        self.streams = boto3.client("dynamodbstreams")
        arn = boto3.client("dynamodb").describe_table(TableName=table_name)["Table"][
            "LatestStreamArn"
        ]
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self.iterators = [
            self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        ]

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for index, iterator in enumerate(self.iterators):
            response = self.streams.get_records(ShardIterator=iterator)
            records.extend(response["Records"])
            self.iterators[index] = response["NextShardIterator"]
        for record in records:
            created = record["dynamodb"]["ApproximateCreationDateTime"]
            record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
        return records


class RecordingPublisher:
    """Stands in for the EventBridge publisher: keeps the events instead of sending them."""

    def __init__(self) -> None:
        self.events: list[OutboundEvent] = []

    def publish(self, events: list[OutboundEvent]) -> int:
        self.events.extend(events)
        return len(events)

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [event.detail for event in self.events if event.detail_type == detail_type]
