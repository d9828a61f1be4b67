"""Outbound events, derived from committed state changes (a transactional outbox).

Functions never publish from inside a use case: they change state in DynamoDB, and the
``event_publisher`` function, fed by the table's stream, turns each committed change (old image,
new image) into the events it implies. An event is therefore published if and only if its
change was committed; a change whose publication failed is retried by the stream, so nothing is
lost. A retried batch can publish an event twice: every event carries a deterministic
``eventId`` (the same for every publication of the same change) for consumers to deduplicate.

Each feature contributes a *deriver*: a pure function of (old image, new image) returning the
events of that change. Images are plain dicts of the item's attributes (deserialized).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from msgspec import Struct, field

Image = Mapping[str, Any]
Deriver = Callable[[Image | None, Image | None], list["OutboundEvent"]]

SOURCE = "loyalty"


class OutboundEvent(Struct, frozen=True):
    detail_type: str
    detail: dict[str, Any] = field(default_factory=dict)
    """camelCase; always ``memberId`` (or ``customerId``), what changed, ``reason`` and
    ``occurredAt``, plus ``eventId``."""

    def with_id(self, *parts: object) -> OutboundEvent:
        """The same event with a deterministic ``eventId`` made from ``parts``."""
        digest = hashlib.sha256("|".join([self.detail_type, *map(str, parts)]).encode()).hexdigest()
        return OutboundEvent(self.detail_type, {"eventId": digest[:32], **self.detail})


def derive_all(
    derivers: list[Deriver], old: Image | None, new: Image | None
) -> list[OutboundEvent]:
    events: list[OutboundEvent] = []
    for deriver in derivers:
        events.extend(deriver(old, new))
    return events
