"""DynamoDB plumbing shared by every repository: the only place where boto3 touches data.

``DynamoRepository`` holds the client, the table name and the capacity meter; every call goes
through ``_call`` (which meters it), transactions through ``_transact`` (conflicts retried with
jittered backoff, condition failures reported with the items as they stood) and conditional
single-item writes through ``_conditional_write``. The repositories extend it: the ledger
(``ledger.py``), tiers, the full recalculation, perks and ratings. They are mechanical: they carry
out plans the domain computed and report what they found when a condition fails; the use cases
in ``shared.logic`` decide what that means.

The item codec (``av``, ``from_item``, ``money``, ``money_or_none``, ``order_record``) and the
``Update`` expression builder are shared by the repositories too.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.money import Money
from shared.logic.ports import Page, TransientConflict, encode_token

from .capacity import CapacityMeter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from shared.domain.orders import OrderRecord

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

MAX_TRANSACTION_ATTEMPTS = 8


# -- the item codec -------------------------------------------------------------------------------


def av(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value."""
    return dict(_serializer.serialize(value))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def money(value: Money) -> dict[str, Any]:
    return {"amount": value.amount, "currency": value.currency}


def money_or_none(value: Any) -> Money | None:
    if not isinstance(value, Mapping):
        return None
    return Money(amount=Decimal(value["amount"]), currency=str(value["currency"]))


def order_record(item: Mapping[str, Any]) -> OrderRecord:
    """The domain view of an order item (already deserialized): what the ledger reads back, and
    what rating moderation reads from the stream's order images."""
    # Imported here, not with the module: the perk repository (event_publisher's) needs no
    # order model, and the orders module brings the program and the event models.
    from shared.domain.orders import OrderRecord, OrderStatus, Reversal  # noqa: PLC0415

    reversal = item.get("reversal")
    return OrderRecord(
        member_id=str(item["memberId"]),
        order_id=str(item["orderId"]),
        status=OrderStatus(item.get("status", OrderStatus.PENDING)),
        customer_id=item.get("customerId"),
        completed_at=item.get("completedAt"),
        cancelled_at=item.get("cancelledAt"),
        points=int(item.get("points", 0)),
        bucket=item.get("bucket"),
        rule_version=item.get("ruleVersion"),
        credited_by=item.get("creditedBy"),
        cancelled_by=item.get("cancelledBy"),
        total=money_or_none(item.get("total")),
        tip_at_delivery=money_or_none(item.get("tipAtDelivery")),
        tip=money_or_none(item.get("tip")),
        tip_baseline=money_or_none(item.get("tipBaseline")),
        tip_adjusted_at=item.get("tipAdjustedAt"),
        tip_baited=bool(item.get("tipBaited", False)),
        batch_size=int(item.get("batchSize") or 1),
        batch_id=item.get("batchId"),
        reversal=Reversal(
            kind=str(reversal["kind"]),
            occurred_at=str(reversal["occurredAt"]),
            points=int(reversal["points"]),
            rule_version=str(reversal["ruleVersion"]),
            by=str(reversal["by"]),
        )
        if isinstance(reversal, Mapping)
        else None,
    )


class Update:
    """Builds one UpdateExpression with placeholder names and values."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = av(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> None:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")

    def set_if_absent(self, attribute: str, value: Any) -> None:
        name = self.name(attribute)
        self.sets.append(f"{name} = if_not_exists({name}, {self.value(value)})")

    def add(self, attribute: str, value: int | Decimal) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(value)}")

    def remove(self, attribute: str) -> None:
        self.removes.append(self.name(attribute))

    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        if self.adds:
            parts.append("ADD " + ", ".join(self.adds))
        return " ".join(parts)

    def request(
        self, table: str, key: dict[str, Any], condition: str | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        if condition:
            request["ConditionExpression"] = condition
        return request


_WRITES = {"UpdateItem": "update", "PutItem": "put"}


class DynamoRepository:
    """The table behind every repository: client, table name, capacity meter, and the calls."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        meter: CapacityMeter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.meter = meter if meter is not None else CapacityMeter()
        self._sleep = sleep

    def _call(self, operation: str, function: Callable[..., Any], **request: Any) -> Any:
        started = time.perf_counter()
        try:
            response = function(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as exc:
            self.meter.add(operation, dict(exc.response), time.perf_counter() - started)
            raise
        self.meter.add(operation, response, time.perf_counter() - started)
        return response

    def _key(self, program_id: str, member_id: str, sk: str) -> dict[str, Any]:
        """The key of an item in the member's partition."""
        return {"pk": av(member_pk(program_id, member_id)), "sk": av(sk)}

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311

    def _transact(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None when it applied, else the cancellation reasons.

        Conflicts with concurrent transactions are retried with jittered backoff; a condition
        failure is returned to the caller (with the item as it stood, ALL_OLD). Each try gets
        its own ClientRequestToken, which botocore's own retries of that try reuse: a retry
        after a lost response then succeeds without applying twice.
        """
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                self._call(
                    "TransactWriteItems",
                    self.client.transact_write_items,
                    TransactItems=list(items),
                    ClientRequestToken=str(uuid.uuid4()),
                )
                return None
            except ClientError as exc:
                error = exc.response.get("Error", {}).get("Code")
                reasons: list[dict[str, Any]] = [
                    dict(reason) for reason in exc.response.get("CancellationReasons", [])
                ]
                codes = {reason.get("Code") for reason in reasons}
                if error == "TransactionCanceledException" and "ConditionalCheckFailed" in codes:
                    return reasons
                retryable = error in {
                    "TransactionConflictException",
                    "TransactionInProgressException",
                } or (
                    error == "TransactionCanceledException"
                    and codes & {"TransactionConflict", "ThrottlingError"}
                )
                if not retryable:
                    raise
                self._backoff(attempt)
        raise TransientConflict(
            f"transaction kept conflicting after {MAX_TRANSACTION_ATTEMPTS} tries"
        )

    def _conditional_write(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """One conditional ``UpdateItem`` or ``PutItem``, retried while a transaction conflicts
        with it. None when it applied; else the item as it stood (raw, ALL_OLD; {} for none)."""
        function: Callable[..., Any] = (
            self.client.update_item if operation == "UpdateItem" else self.client.put_item
        )
        request = {**request, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                self._call(operation, function, **request)
                return None
            except ClientError as exc:
                error = exc.response.get("Error", {}).get("Code")
                if error == "ConditionalCheckFailedException":
                    item: Any = exc.response.get("Item")
                    return dict(item) if item else {}
                if error != "TransactionConflictException":
                    raise
                self._backoff(attempt)
        raise TransientConflict(
            f"{_WRITES[operation]} kept conflicting after {MAX_TRANSACTION_ATTEMPTS} tries"
        )

    def _update_if(self, request: dict[str, Any]) -> bool:
        """A conditional ``UpdateItem``: whether it applied."""
        return self._conditional_write("UpdateItem", request) is None

    # -- the member item, which every repository reads --------------------------------------

    def _get_item(
        self, program_id: str, member_id: str, sk: str, consistent: bool = True
    ) -> dict[str, Any] | None:
        """One item of the member's partition as plain values, or None (one GetItem: a read
        unit per 4 KB strongly consistent, half eventually)."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, sk),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def _partition_page(
        self,
        program_id: str,
        member_id: str,
        limit: int,
        after: str | None,
        *,
        prefix: str = "",
        newest_first: bool = False,
        consistent: bool = True,
    ) -> Page:
        """A page of the member's partition (items under ``prefix``, all without), in key order
        or newest (highest key) first; the next page's token is the last key's sort key."""
        values: dict[str, Any] = {":pk": self._key(program_id, member_id, MEMBER_SK)["pk"]}
        condition = "pk = :pk"
        if prefix:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": prefix}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "Limit": limit,
            "ConsistentRead": consistent,
        }
        if after is not None:
            request["ExclusiveStartKey"] = self._key(program_id, member_id, after)
        response = self._call("Query", self.client.query, **request)
        items = [from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return Page(items, encode_token(str(last["sk"]["S"])) if last else None)

    def _query_all(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item a Query answers (DynamoDB's attribute-value form), page after page."""
        request = dict(request)
        while True:
            page = self._call("Query", self.client.query, **request)
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            request["ExclusiveStartKey"] = start

    def member_zone_item(self, program_id: str, member_id: str) -> dict[str, Any]:
        """The member's profile zone alone (half a read unit: eventually consistent, projected):
        the week is the member's."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, MEMBER_SK),
            ProjectionExpression="#z",
            ExpressionAttributeNames={"#z": "timeZone"},
            ConsistentRead=False,
        )
        item = response.get("Item") or {}
        zone = item.get("timeZone", {}).get("S")
        return {"timeZone": zone} if zone else {}

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        """The member item's attributes (totals and window buckets), or None."""
        return self._get_item(program_id, member_id, MEMBER_SK)
