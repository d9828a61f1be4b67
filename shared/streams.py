"""Reading the table's stream: records to changes (old image, new image, when), and one router by
item kind for whichever function reads the stream.

The kind of an item is recognised from its key (``sk``); a router maps the kinds it handles to
handlers and ignores every other kind explicitly. A handler parses the images of its kind into
the values its use case takes (``shared.rating_stream`` for rating moderation), so the use
cases never see a raw item.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from shared.domain.keys import MEMBER_SK, ORDER_SK_PREFIX, WAITING_SK_PREFIX

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord


class Change(Struct, frozen=True):
    keys: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: datetime
    """When the change was committed (the record's ApproximateCreationDateTime)."""
    record_id: str = ""
    """The stream record's ``eventID`` (unique in the stream, the same on every delivery of the
    record; else its sequence number): what the stats counters mark as applied."""

    @property
    def sk(self) -> str:
        return str(self.keys.get("sk", ""))

    @property
    def program_id(self) -> str | None:
        """The program of the item (its partition key is ``P#{programId}#...``)."""
        pk = str(self.keys.get("pk", ""))
        parts = pk.split("#", 2)
        return parts[1] if len(parts) > 2 and parts[0] == "P" else None


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
        record_id=record.event_id or stream.sequence_number or "",
    )


class ItemKind(StrEnum):
    """The kinds of items stream readers act upon (see docs/data-model.md)."""

    MEMBER = "member"
    ORDER = "order"
    WAITING = "waiting"
    """A rating or tip change waiting for its order."""


def kind_of(sk: str) -> ItemKind | None:
    """The kind of the item with this sort key; None: a kind no stream reader acts upon."""
    if sk == MEMBER_SK:
        return ItemKind.MEMBER
    if sk.startswith(ORDER_SK_PREFIX):
        return ItemKind.ORDER
    if sk.startswith(WAITING_SK_PREFIX):
        return ItemKind.WAITING
    return None


Handler = Callable[[Change], None]


class StreamRouter(Struct, frozen=True):
    """Hands each change to the handler of its item's kind; changes of other kinds are ignored
    (a stream trigger's filter may pass them, and a record of no interest is not a failure)."""

    handlers: Mapping[ItemKind, Handler]
    programs: Callable[[], Collection[str]] | None = None
    """The programs whose items this router handles (None: every program's): the shopper
    program's tier and rating rules never see a customer program's items."""

    def route(self, change: Change) -> bool:
        """Handle one change; False: its kind (or program) is not one this router handles."""
        if self.programs is not None and change.program_id not in self.programs():
            return False
        kind = kind_of(change.sk)
        handler = self.handlers.get(kind) if kind is not None else None
        if handler is None:
            return False
        handler(change)
        return True

    def __call__(self, record: DynamoDBRecord) -> None:
        """The record handler of a batch of stream records (``process_partial_response``)."""
        self.route(change_of(record))
