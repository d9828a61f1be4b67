"""Reading the table's stream: records to (old image, new image, when), for stream handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord


@dataclass(frozen=True)
class Change:
    keys: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: datetime
    """When the change was committed (the record's ApproximateCreationDateTime)."""

    @property
    def sk(self) -> str:
        return str(self.keys.get("sk", ""))


def change_of(record: DynamoDBRecord) -> Change:
    stream = record.dynamodb
    if stream is None:
        raise ValueError("stream record without a dynamodb section")
    created = stream.approximate_creation_date_time
    at = datetime.fromtimestamp(created, tz=UTC) if created is not None else datetime.now(UTC)
    return Change(
        keys=stream.keys or {},
        old=stream.old_image or None,
        new=stream.new_image or None,
        at=at,
    )
