"""The rating moderation repository: slots, the window, raters, waiting ratings (docs/ratings.md).

Every change is one ``TransactWriteItems`` whose items are guarded by a version (optimistic
concurrency): the slot(s) changed, the member's window, and for a new low rating the rater's
item and the rater's index entry. The rating id's reference is claimed before, by a plain
conditional write; the member item's rating attributes, and the rater's item for a rating at or
above the floor, are written after, by plain conditional writes. The use cases read, decide,
and commit; a failed condition means someone else committed first, and the use case reads
again. First reads may be eventually consistent (``read_for_rating``,
``read_slots_and_window``): a stale item only fails a condition.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.domain.keys import (
    CUSTOMER_SK,
    EXPIRED_SK_PREFIX,
    GIVEN_SK_PREFIX,
    MEMBER_SK,
    RATING_REF_SK,
    RATING_SK_PREFIX,
    RATING_WINDOW_SK,
    WAITING_SK_PREFIX,
    customer_pk,
    expired_sk,
    given_sk,
    member_pk,
    order_sk,
    rating_ref_pk,
    rating_sk,
    waiting_sk,
)
from shared.domain.orders import OrderRecord
from shared.domain.raters import Clearance, DayStats, Given, RaterState
from shared.domain.rating_window import RatingWindow, decode, encode, entry_time
from shared.domain.ratings import AdminAction, RatingFacts, RatingSlot, TipChange
from shared.domain.timeutil import parse_instant, to_compact_utc, to_utc_iso
from shared.logic.moderation.ports import (
    Commit,
    CommitResult,
    MemberRating,
    RatingRef,
    SlotWrite,
    Waiting,
)
from shared.logic.ports import TransientConflict

from .dynamodb import (
    MAX_TRANSACTION_ATTEMPTS,
    DynamoRepository,
    Update,
    av,
    from_item,
    money,
    money_or_none,
    order_record,
)
from .ledger import LedgerRepository

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MAX_TRANSACTION_ITEMS = 100
BATCH_GET = 100
EXPIRED_KEPT_SECONDS = 365 * 86_400
"""An expired rating's record is kept a year (then TTL removes it)."""


def slot_sk(slot: RatingSlot) -> str:
    return rating_sk(slot.completed_at, slot.order_id)


# -- item mapping --------------------------------------------------------------------------------


def _facts_item(facts: RatingFacts) -> dict[str, Any]:
    return {
        "ratingId": facts.rating_id,
        "customerId": facts.customer_id,
        "stars": facts.stars,
        "reasons": list(facts.reasons),
        "submittedAt": facts.submitted_at,
    }


def _facts(item: Mapping[str, Any]) -> RatingFacts:
    return RatingFacts(
        rating_id=str(item["ratingId"]),
        customer_id=str(item["customerId"]),
        stars=int(item["stars"]),
        reasons=tuple(str(reason) for reason in item.get("reasons", [])),
        submitted_at=str(item["submittedAt"]),
    )


def _tip_item(change: TipChange) -> dict[str, Any]:
    return {
        "at": change.occurred_at,
        "previous": money(change.previous_tip),
        "new": money(change.new_tip),
        "reasonGiven": change.reason_given,
    }


def _tip(item: Mapping[str, Any]) -> TipChange:
    previous = money_or_none(item["previous"])
    new = money_or_none(item["new"])
    assert previous is not None and new is not None
    return TipChange(str(item["at"]), previous, new, bool(item.get("reasonGiven", False)))


def _action_item(action: AdminAction) -> dict[str, Any]:
    return {"action": action.action, "by": action.by, "at": action.at, "why": action.why}


def _action(item: Mapping[str, Any]) -> AdminAction:
    return AdminAction(str(item["action"]), str(item["by"]), str(item["at"]), str(item["why"]))


def slot_item(write: SlotWrite) -> dict[str, Any]:
    slot = write.slot
    item: dict[str, Any] = {
        "memberId": slot.member_id,
        "orderId": slot.order_id,
        "customerId": slot.customer_id,
        "completedAt": slot.completed_at,
        "orderStatus": slot.order_status,
        "htp": slot.hard_to_please,
        "htpV": slot.htp_version,
        "v": slot.version,
        "counted": write.counted,
        "exclusions": [reason.value for reason in write.exclusions],
    }
    if write.rule_version:
        item["ruleVersion"] = write.rule_version
    if slot.tip_at_delivery is not None:
        item["tipAtDelivery"] = money(slot.tip_at_delivery)
    if slot.rating is not None:
        item["rating"] = _facts_item(slot.rating)
    if slot.tips:
        item["tips"] = [_tip_item(change) for change in slot.tips]
    if slot.admin is not None:
        item["admin"] = _action_item(slot.admin)
    if slot.audit:
        item["audit"] = [_action_item(action) for action in slot.audit]
    if slot.rater_after:
        item["rA"] = True
    if write.entry is not None:
        item["entry"] = write.entry
    return item


def slot_of(item: Mapping[str, Any]) -> RatingSlot:
    rating = item.get("rating")
    admin = item.get("admin")
    return RatingSlot(
        member_id=str(item["memberId"]),
        order_id=str(item["orderId"]),
        customer_id=str(item["customerId"]),
        completed_at=str(item["completedAt"]),
        order_status=str(item["orderStatus"]),
        tip_at_delivery=money_or_none(item.get("tipAtDelivery")),
        rating=_facts(rating) if isinstance(rating, Mapping) else None,
        tips=tuple(_tip(change) for change in item.get("tips", [])),
        hard_to_please=bool(item.get("htp", False)),
        htp_version=int(item.get("htpV", 0)),
        rater_after=bool(item.get("rA", False)),
        admin=_action(admin) if isinstance(admin, Mapping) else None,
        audit=tuple(_action(action) for action in item.get("audit", [])),
        version=int(item.get("v", 0)),
    )


def window_of(item: Mapping[str, Any] | None) -> RatingWindow:
    if not item:
        return RatingWindow()
    blob = item.get("w")
    raw = bytes(blob.value) if blob is not None and hasattr(blob, "value") else bytes(blob or b"")
    spare = item.get("s")
    spare_raw = (
        bytes(spare.value) if spare is not None and hasattr(spare, "value") else bytes(spare or b"")
    )
    return RatingWindow(
        entries=decode(raw),
        older=int(item.get("older", 0)),
        spare=decode(spare_raw),
        version=int(item.get("v", 0)),
        eligible=bool(item.get("eligible", True)),
        reason=str(item.get("reason", "not_judged")),
        changed_at=item.get("changedAt"),
    )


def _binary(value: Any) -> bytes:
    return bytes(value.value) if hasattr(value, "value") else bytes(value or b"")


def encode_days(last_day: int, days: Mapping[int, DayStats]) -> bytes:
    """The rater's day buckets in one binary attribute (``b``), 10 bytes a day rated and 4 a
    mark (a map of lists took about 25 bytes a day): per day, ascending, days before the latest
    day rated, ratings, stars, low ratings and the number of marks (5 unsigned 16-bit numbers),
    then its marks (32 bits each)."""
    out = bytearray()
    for day in sorted(days):
        stats = days[day]
        out += struct.pack(
            ">5H", last_day - day, stats.count, stats.total, stats.low, len(stats.marks)
        )
        out += struct.pack(f">{len(stats.marks)}I", *stats.marks)
    return bytes(out)


def decode_days(last_day: int, raw: bytes) -> dict[int, DayStats]:
    days: dict[int, DayStats] = {}
    offset = 0
    while offset < len(raw):
        back, count, total, low, marks = struct.unpack_from(">5H", raw, offset)
        offset += 10
        days[last_day - back] = DayStats(
            count, total, low, struct.unpack_from(f">{marks}I", raw, offset)
        )
        offset += 4 * marks
    return days


def rater_of(customer_id: str, item: Mapping[str, Any] | None) -> RaterState:
    if not item:
        return RaterState(customer_id)
    last_day = int(item["last"]) if "last" in item else None
    if "b" in item and last_day is not None:
        days = decode_days(last_day, _binary(item["b"]))
    else:  # written before the buckets were binary
        days = {
            int(day): DayStats(int(stats[0]), int(stats[1]), int(stats[2]))
            for day, stats in item.get("days", {}).items()
        }
    if "hb" in item and last_day is not None:
        raw = _binary(item["hb"])
        htp_days = tuple(last_day - back for back in struct.unpack(f">{len(raw) // 2}H", raw))
    else:
        htp_days = tuple(int(day) for day in item.get("htp", []))
    reconcile = item.get("rc")
    window = item.get("tipBaitWindowDays")
    return RaterState(
        customer_id=customer_id,
        last_day=last_day,
        days=days,
        htp_days=tuple(sorted(htp_days)),
        reconcile=(int(reconcile[0]), int(reconcile[1])) if reconcile else None,
        tip_baits={str(order): str(at) for order, at in item.get("baits", {}).items()},
        flagged_at=item.get("tipBaitFlaggedAt"),
        flagged_orders=tuple(str(order) for order in item.get("tipBaitOrderIds", [])),
        flag_window_days=int(window) if window is not None else None,
        cleared_at=item.get("tipBaitClearedAt"),
        clearances=tuple(
            Clearance(
                str(entry["flaggedAt"]),
                tuple(str(order) for order in entry.get("orderIds", [])),
                str(entry["clearedAt"]),
                str(entry["by"]),
                str(entry["reason"]),
            )
            for entry in item.get("tipBaitClearances", [])
        ),
        version=int(item.get("v", 0)),
    )


def _rater_item(program_id: str, state: RaterState) -> dict[str, Any]:
    item: dict[str, Any] = {
        "customerId": state.customer_id,
        "programId": program_id,
        "v": state.version + 1,
    }
    # Empty maps, lists and binaries are left out: the stream renders an empty map as ``{}``,
    # which stream deserializers reject. Days are kept relative to the latest day rated.
    if state.last_day is not None:
        item["last"] = state.last_day
        if state.days:
            item["b"] = encode_days(state.last_day, state.days)
        if state.htp_days:
            backs = [state.last_day - day for day in state.htp_days]
            item["hb"] = struct.pack(f">{len(backs)}H", *backs)
    if state.reconcile is not None:
        item["rc"] = list(state.reconcile)
    if state.tip_baits:
        item["baits"] = dict(state.tip_baits)
    if state.flagged_at is not None:
        item["tipBaitFlaggedAt"] = state.flagged_at
        item["tipBaitOrderIds"] = list(state.flagged_orders)
        item["tipBaitReason"] = "tip_baited_orders"
        if state.flag_window_days is not None:
            item["tipBaitWindowDays"] = state.flag_window_days
    if state.cleared_at is not None:
        item["tipBaitClearedAt"] = state.cleared_at
    if state.clearances:
        item["tipBaitClearances"] = [
            {
                "flaggedAt": entry.flagged_at,
                "orderIds": list(entry.orders),
                "clearedAt": entry.cleared_at,
                "by": entry.by,
                "reason": entry.reason,
            }
            for entry in state.clearances
        ]
    return item


def _ref_of(rating_id: str, item: Mapping[str, Any]) -> RatingRef:
    return RatingRef(rating_id, str(item["memberId"]), str(item["orderId"]), str(item["slotSk"]))


def waiting_of(item: Mapping[str, Any]) -> Waiting:
    rating = item.get("rating")
    return Waiting(
        member_id=str(item["memberId"]),
        order_id=str(item["orderId"]),
        rating=_facts(rating) if isinstance(rating, Mapping) else None,
        tips=tuple(_tip(change) for change in item.get("tips", [])),
        expires_at=int(item["expiresAt"]),
        since=str(item.get("since", "")),
        version=int(item.get("v", 0)),
    )


# -- the repository ------------------------------------------------------------------------------


def _versioned(put: dict[str, Any], version: int | None, name: str = "v") -> dict[str, Any]:
    """Guard a Put with the version read (None or 0: the item must not exist)."""
    if not version:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        put["ConditionExpression"] = "#version = :version"
        put["ExpressionAttributeNames"] = {"#version": name}
        put["ExpressionAttributeValues"] = {":version": av(version)}
    return put


class RatingRepository(DynamoRepository):
    """Rating moderation on the loyalty table (extends the DynamoDB plumbing; reads orders
    through the ledger repository)."""

    def __init__(self, table_name: str, client: DynamoDBClient, **kwargs: Any) -> None:
        super().__init__(table_name, client, **kwargs)

    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None:
        """The order as the ledger recorded it: the ledger's read, on this client and meter."""
        ledger = LedgerRepository(self.table_name, self.client, self.meter, self._sleep)
        return ledger.get_order(program_id, member_id, order_id)

    # -- plumbing ---------------------------------------------------------------------------

    def _pk_key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": av(pk), "sk": av(sk)}

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._pk_key(pk, sk),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def _put(self, pk: str, sk: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        item = {"pk": av(pk), "sk": av(sk)}
        item.update({name: av(value) for name, value in attributes.items()})
        return {"TableName": self.table_name, "Item": item}

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self._call("Query", self.client.query, TableName=self.table_name, **request)
            for item in response.get("Items", []):
                yield from_item(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    # -- reads ------------------------------------------------------------------------------

    def get_slot(self, program_id: str, member_id: str, sk: str) -> RatingSlot | None:
        item = self._get(member_pk(program_id, member_id), sk)
        return slot_of(item) if item else None

    def get_slots(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> dict[str, RatingSlot]:
        """Several slots of one member (BatchGetItem, strongly consistent)."""
        pk = member_pk(program_id, member_id)
        keys = [self._pk_key(pk, sk) for sk in dict.fromkeys(sks)]
        return {sk: slot_of(item) for (_pk, sk), item in self._batch_get(keys, True).items()}

    def read_slots_and_window(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> tuple[dict[str, RatingSlot], RatingWindow]:
        """Eventually consistent ``BatchGetItem`` (half a read unit per item)."""
        pk = member_pk(program_id, member_id)
        keys = [self._pk_key(pk, sk) for sk in dict.fromkeys([*sks, RATING_WINDOW_SK])]
        found = {sk: item for (_pk, sk), item in self._batch_get(keys, False).items()}
        window = window_of(found.pop(RATING_WINDOW_SK, None))
        return {sk: slot_of(item) for sk, item in found.items()}, window

    def get_window(self, program_id: str, member_id: str) -> RatingWindow:
        return window_of(self._get(member_pk(program_id, member_id), RATING_WINDOW_SK))

    def get_rater(self, program_id: str, customer_id: str) -> RaterState:
        return rater_of(customer_id, self._get(customer_pk(program_id, customer_id), CUSTOMER_SK))

    def get_rater_item(self, program_id: str, customer_id: str) -> dict[str, Any] | None:
        return self._get(customer_pk(program_id, customer_id), CUSTOMER_SK)

    def get_waiting(self, program_id: str, member_id: str, order_id: str) -> Waiting | None:
        item = self._get(member_pk(program_id, member_id), waiting_sk(order_id))
        return waiting_of(item) if item else None

    def read_for_rating(
        self, program_id: str, member_id: str, order_id: str, customer_id: str
    ) -> tuple[OrderRecord | None, RatingWindow, RaterState]:
        """The order, the member's window and the rater: one eventually consistent
        ``BatchGetItem`` (half a read unit each)."""
        pk = member_pk(program_id, member_id)
        rater_key = self._pk_key(customer_pk(program_id, customer_id), CUSTOMER_SK)
        keys = [self._pk_key(pk, order_sk(order_id)), self._pk_key(pk, RATING_WINDOW_SK)]
        found = self._batch_get([*keys, rater_key], consistent=False)
        order = found.get((pk, order_sk(order_id)))
        return (
            order_record(order) if order else None,
            window_of(found.get((pk, RATING_WINDOW_SK))),
            rater_of(customer_id, found.get((customer_pk(program_id, customer_id), CUSTOMER_SK))),
        )

    def _batch_get(
        self, keys: Sequence[dict[str, Any]], consistent: bool
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by (pk, sk), up to 100 keys a request, unprocessed keys retried."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": list(keys[start : start + BATCH_GET]),
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(MAX_TRANSACTION_ATTEMPTS):
                response = self._call(
                    "BatchGetItem", self.client.batch_get_item, RequestItems=request
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    attributes = from_item(item)
                    found[(str(attributes["pk"]), str(attributes["sk"]))] = attributes
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                self._sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311
            else:
                raise TransientConflict("BatchGetItem kept returning unprocessed keys")
        return found

    def get_ref(self, program_id: str, rating_id: str) -> RatingRef | None:
        item = self._get(rating_ref_pk(program_id, rating_id), RATING_REF_SK)
        return _ref_of(rating_id, item) if item else None

    def claim_ref(self, program_id: str, ref: RatingRef) -> RatingRef | None:
        """A plain conditional ``PutItem`` (1 write unit): the reference names this order
        unless it named another one. Answers the reference as it stood before."""
        put = self._put(
            rating_ref_pk(program_id, ref.rating_id),
            RATING_REF_SK,
            {"memberId": ref.member_id, "orderId": ref.order_id, "slotSk": ref.slot_sk},
        )
        try:
            response = self._call(
                "PutItem",
                self.client.put_item,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (orderId = :order AND memberId = :member)"
                ),
                ExpressionAttributeValues={
                    ":order": av(ref.order_id),
                    ":member": av(ref.member_id),
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **put,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item")
            if not old:  # removed meanwhile: claim again
                return self.claim_ref(program_id, ref)
            return _ref_of(ref.rating_id, from_item(old))
        before = response.get("Attributes")
        return _ref_of(ref.rating_id, from_item(before)) if before else None

    def release_ref(self, program_id: str, ref: RatingRef) -> bool:
        try:
            self._call(
                "DeleteItem",
                self.client.delete_item,
                TableName=self.table_name,
                Key=self._pk_key(rating_ref_pk(program_id, ref.rating_id), RATING_REF_SK),
                ConditionExpression="orderId = :order AND memberId = :member",
                ExpressionAttributeValues={
                    ":order": av(ref.order_id),
                    ":member": av(ref.member_id),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def query_given(
        self, program_id: str, customer_id: str, first_day: int, last_day: int
    ) -> list[Given]:
        """The rater's index for days ``first_day .. last_day`` (ordinals)."""
        first = date.fromordinal(max(1, first_day)).isoformat()
        last = date.fromordinal(max(1, last_day)).isoformat()
        return [
            Given(
                day=int(item["day"]),
                stars=int(item["stars"]),
                member_id=str(item["memberId"]),
                order_id=str(item["orderId"]),
                slot_sk=str(item["slotSk"]),
                rating_id=str(item["ratingId"]),
            )
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
                ExpressionAttributeValues={
                    ":pk": av(customer_pk(program_id, customer_id)),
                    ":first": av(f"{GIVEN_SK_PREFIX}{first}#"),
                    ":last": av(f"{GIVEN_SK_PREFIX}{last}#~"),
                },
                ConsistentRead=True,
            )
        ]

    def put_given(self, program_id: str, customer_id: str, given: Given) -> None:
        """A plain ``PutItem`` (1 write unit instead of 2 in the transaction) of the same
        content whenever it is made: idempotent. The key ends with the rating id, so a refused
        rating of the same order and day never overwrites the counted one's entry."""
        day = date.fromordinal(given.day).isoformat()
        put = self._put(
            customer_pk(program_id, customer_id),
            f"{given_sk(day, given.order_id)}#{given.rating_id}",
            {
                "day": given.day,
                "stars": given.stars,
                "memberId": given.member_id,
                "orderId": given.order_id,
                "slotSk": given.slot_sk,
                "ratingId": given.rating_id,
            },
        )
        self._call("PutItem", self.client.put_item, **put)

    def counted_before(
        self, program_id: str, member_id: str, boundary: int | None, page: int
    ) -> Iterator[tuple[str, int]]:
        """The member's counted ratings (slot key, entry), newest first, from the completion
        time of ``boundary`` down (all of them if None). Pages of ``page`` slots."""
        upper = (
            f"{RATING_SK_PREFIX}{to_utc_iso(entry_time(boundary))}#~"
            if boundary is not None
            else f"{RATING_SK_PREFIX}~"
        )
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            FilterExpression="#counted = :yes",
            ProjectionExpression="sk, #entry",
            ExpressionAttributeNames={"#counted": "counted", "#entry": "entry"},
            ExpressionAttributeValues={
                ":pk": av(member_pk(program_id, member_id)),
                ":first": av(RATING_SK_PREFIX),
                ":last": av(upper),
                ":yes": av(True),
            },
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=page,
        ):
            if "entry" in item:
                yield str(item["sk"]), int(item["entry"])

    def list_slots(
        self, program_id: str, member_id: str, limit: int, after: str | None
    ) -> tuple[list[tuple[str, RatingSlot, dict[str, Any]]], str | None]:
        """A page of the member's slots, newest first: (sk, slot, stored item)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": av(member_pk(program_id, member_id)),
                ":prefix": av(RATING_SK_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = self._pk_key(member_pk(program_id, member_id), after)
        response = self._call("Query", self.client.query, **request)
        rows = []
        for raw in response.get("Items", []):
            item = from_item(raw)
            rows.append((str(item["sk"]), slot_of(item), item))
        last = response.get("LastEvaluatedKey")
        return rows, (str(from_item(last)["sk"]) if last else None)

    def list_prefixed(self, program_id: str, member_id: str, prefix: str) -> list[dict[str, Any]]:
        return list(
            self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": av(member_pk(program_id, member_id)),
                    ":prefix": av(prefix),
                },
            )
        )

    def list_waiting(self, program_id: str, member_id: str) -> list[Waiting]:
        return [
            waiting_of(item)
            for item in self.list_prefixed(program_id, member_id, WAITING_SK_PREFIX)
        ]

    def list_expired(self, program_id: str, member_id: str) -> list[dict[str, Any]]:
        return self.list_prefixed(program_id, member_id, EXPIRED_SK_PREFIX)

    # -- waiting ----------------------------------------------------------------------------

    def put_waiting(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        since: str,
        expires_at: int,
        rating: RatingFacts | None = None,
        tip: TipChange | None = None,
        max_tips: int = 20,
    ) -> tuple[bool, Waiting | None]:
        """Keep a rating (unless another rating waits for the order) or a tip change until
        the order arrives. On a failed condition, the waiting item as it stood."""
        update = Update()
        update.set("memberId", member_id)
        update.set("orderId", order_id)
        update.set_if_absent("since", since)
        update.set_if_absent("expiresAt", expires_at)
        update.add("v", 1)
        conditions = []
        if rating is not None:
            update.set("rating", _facts_item(rating))
            field = f"{update.name('rating')}.{update.name('ratingId')}"
            conditions.append(
                f"(attribute_not_exists({update.name('rating')}) "
                f"OR {field} = {update.value(rating.rating_id)})"
            )
        if tip is not None:
            tips = update.name("tips")
            update.sets.append(
                f"{tips} = list_append(if_not_exists({tips}, {update.value([])}), "
                f"{update.value([_tip_item(tip)])})"
            )
            conditions.append(
                f"(attribute_not_exists({tips}) OR size({tips}) < {update.value(max_tips)})"
            )
        request = update.request(
            self.table_name,
            self._pk_key(member_pk(program_id, member_id), waiting_sk(order_id)),
            " AND ".join(conditions) or None,
        )
        try:
            self._call(
                "UpdateItem",
                self.client.update_item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item")
            return False, waiting_of(from_item(old)) if old else None
        return True, None

    def delete_waiting(self, program_id: str, waiting: Waiting) -> bool:
        try:
            self._call(
                "DeleteItem",
                self.client.delete_item,
                TableName=self.table_name,
                Key=self._pk_key(
                    member_pk(program_id, waiting.member_id), waiting_sk(waiting.order_id)
                ),
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "v"},
                ExpressionAttributeValues={":v": av(waiting.version)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_expired(
        self, program_id: str, waiting: Waiting, reason: str, at: str, now_epoch: int
    ) -> None:
        """Keep what happened to a waiting rating whose order never came (idempotent)."""
        assert waiting.rating is not None
        put = self._put(
            member_pk(program_id, waiting.member_id),
            expired_sk(waiting.order_id),
            {
                "memberId": waiting.member_id,
                "orderId": waiting.order_id,
                "rating": _facts_item(waiting.rating),
                "reason": reason,
                "waitingSince": waiting.since,
                "expiredAt": at,
                "expiresAt": now_epoch + EXPIRED_KEPT_SECONDS,
            },
        )
        try:
            self._call(
                "PutItem",
                self.client.put_item,
                ConditionExpression="attribute_not_exists(pk)",
                **put,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    # -- commits ----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> CommitResult:
        items: list[dict[str, Any]] = []
        kinds: list[str] = []
        pk = member_pk(commit.program_id, commit.member_id)
        for write in commit.slots:
            put = self._put(pk, slot_sk(write.slot), slot_item(write))
            items.append({"Put": _versioned(put, write.read_version)})
            kinds.append("slot")
        if commit.window is not None:
            window = commit.window
            put = self._put(
                pk,
                RATING_WINDOW_SK,
                {
                    "memberId": commit.member_id,
                    "w": encode(window.entries),
                    "older": window.older,
                    **({"s": encode(window.spare)} if window.spare else {}),
                    "v": window.version + 1,
                    "eligible": window.eligible,
                    "reason": window.reason,
                    **({"changedAt": window.changed_at} if window.changed_at else {}),
                },
            )
            items.append({"Put": _versioned(put, window.version)})
            kinds.append("window")
        if commit.rater is not None:
            rater = commit.rater
            put = self._put(
                customer_pk(commit.program_id, rater.customer_id),
                CUSTOMER_SK,
                _rater_item(commit.program_id, rater),
            )
            items.append({"Put": _versioned(put, rater.version)})
            kinds.append("rater")
        if commit.delete_waiting is not None:
            waiting = commit.delete_waiting
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": self._pk_key(pk, waiting_sk(waiting.order_id)),
                        "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#v": "v"},
                        "ExpressionAttributeValues": {":v": av(waiting.version)},
                    }
                }
            )
            kinds.append("waiting")
        if not items:
            return CommitResult(applied=True)
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"a commit holds at most {MAX_TRANSACTION_ITEMS} items")
        for item in items:
            (operation,) = item.values()
            if operation.get("ConditionExpression"):
                operation["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        reasons = self._transact(items)
        if reasons is None:
            if commit.member is not None:
                assert commit.window is not None
                self.sync_member(
                    commit.program_id, commit.member_id, commit.member, commit.window.version + 1
                )
            return CommitResult(applied=True)
        failed = tuple(
            kinds[index]
            for index, reason in enumerate(reasons)
            if index < len(kinds) and reason.get("Code") == "ConditionalCheckFailed"
        )
        return CommitResult(applied=False, failed=failed)

    def sync_member(
        self, program_id: str, member_id: str, rating: MemberRating, version: int
    ) -> bool:
        """Write the member item's rating attributes (a plain ``UpdateItem``, after the
        window's transaction) unless a newer standing is there: ``rV`` is the version of
        the window they come from, so a late or repeated write never undoes a newer one. A
        write that applies bumps the member's version ``v`` (docs/data-model.md)."""
        request = self._member_rating(program_id, member_id, rating, version)
        return self._update_if(request)

    def _member_rating(
        self, program_id: str, member_id: str, rating: MemberRating, version: int
    ) -> dict[str, Any]:
        update = Update()
        update.set("rV", version)
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        if rating.average is None:
            update.remove("ratingAverage")
        else:
            update.set("ratingAverage", rating.average)
        update.set("ratingCount", rating.count)
        update.set("eligible", rating.eligible)
        update.set("eligibilityReason", rating.reason)
        if rating.changed_at is not None:
            # The member item's compact form (to_compact_utc): it is billed per KB per order.
            update.set("eligibilityChangedAt", to_compact_utc(parse_instant(rating.changed_at)))
        if rating.flipped:
            update.add("eligibilityFlips", 1)
        # The member's version: every change of points or eligibility bumps it, and a tier
        # decision (or a perk's pinned guard) applies only to the version it was read from.
        update.add("v", 1)
        name, value = update.name("rV"), update.value(version)
        stale = f"attribute_not_exists({name}) OR {name} < {value}"
        return update.request(
            self.table_name, self._pk_key(member_pk(program_id, member_id), MEMBER_SK), stale
        )

    def put_rater(self, program_id: str, state: RaterState) -> bool:
        """The rater's item as a plain conditional ``PutItem`` (1 write unit per KB instead of
        2 in a transaction), unless it changed since ``state.version`` was read."""
        put = self._put(
            customer_pk(program_id, state.customer_id),
            CUSTOMER_SK,
            _rater_item(program_id, state),
        )
        try:
            self._call("PutItem", self.client.put_item, **_versioned(put, state.version))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def clear_reconcile(self, program_id: str, customer_id: str, version: int) -> bool:
        """Drop the rater's pending range, unless the rater changed since ``version``."""
        try:
            self._call(
                "UpdateItem",
                self.client.update_item,
                TableName=self.table_name,
                Key=self._pk_key(customer_pk(program_id, customer_id), CUSTOMER_SK),
                UpdateExpression="REMOVE rc SET #v = :next",
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "v"},
                ExpressionAttributeValues={":v": av(version), ":next": av(version + 1)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
