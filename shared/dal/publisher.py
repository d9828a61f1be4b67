"""Publishes outbound events to the EventBridge bus named by ``EVENT_BUS_NAME``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.domain.outbound import SOURCE, OutboundEvent

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

BATCH = 10  # PutEvents takes at most 10 entries


class PublishFailed(Exception):
    """EventBridge refused some entries; the caller lets the batch be retried."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient, source: str = SOURCE) -> None:
        self.bus_name = bus_name
        self.client = client
        self.source = source

    def publish(self, events: Sequence[OutboundEvent]) -> int:
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            response = self.client.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": self.source,
                        "DetailType": event.detail_type,
                        "Detail": json.dumps(event.detail, default=_json_default),
                    }
                    for event in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                errors = {
                    entry.get("ErrorCode", "?")
                    for entry in response.get("Entries", [])
                    if entry.get("ErrorCode")
                }
                raise PublishFailed(
                    f"EventBridge refused {response['FailedEntryCount']} of {len(chunk)} "
                    f"entries: {', '.join(sorted(errors))}"
                )
        return len(events)
