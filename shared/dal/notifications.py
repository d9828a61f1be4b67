"""The notifier's items: the member's preferences, one record per notified event, and the
marketing counter of each member and ISO week (docs/notifications.md).

All in the member's partition: ``PREFS``, ``NOTE#{eventId}`` (TTL) and ``NOTEWEEK#{week}``
(TTL). A marketing claim is one transaction of the record's put (if absent) and the week's
counter (``sent < limit``), so concurrent deliveries cannot send more than the limit; a
transactional claim is one conditional put.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.keys import MEMBER_SK, PREFERENCES_SK, member_pk, note_sk, note_week_sk
from shared.domain.notifications import Preferences
from shared.logic.notifications import NOTE_DAYS, Claim, Note
from shared.logic.ports import TransientConflict

from .dynamodb import DynamoRepository, Update, av, from_item

WEEK_DAYS = 15
"""The week's counter is kept this many days (TTL) after the message that last counted."""


def _note_item(pk: str, note: Note, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": pk,
        "sk": note_sk(note.event_id),
        "eventId": note.event_id,
        "detailType": note.detail_type,
        "category": note.category,
        "state": note.state,
        "token": note.token,
        "at": note.at,
        "channels": list(note.channels),
        "done": list(note.done),
        "expiresAt": expires_at,
    }
    for name, value in (("reason", note.reason), ("week", note.week), ("locale", note.locale)):
        if value is not None:
            item[name] = value
    return {name: av(value) for name, value in item.items()}


def _note(item: Mapping[str, Any]) -> Note:
    plain = from_item(item)
    return Note(
        event_id=str(plain["eventId"]),
        detail_type=str(plain.get("detailType", "")),
        category=str(plain.get("category", "")),
        state=str(plain.get("state", "")),
        token=str(plain.get("token", "")),
        at=str(plain.get("at", "")),
        reason=plain.get("reason"),
        channels=tuple(plain.get("channels") or ()),
        done=tuple(plain.get("done") or ()),
        week=plain.get("week"),
        locale=plain.get("locale"),
    )


def _existing(item: Mapping[str, Any] | None) -> Note:
    """The record a refused put found (DynamoDB returns it: ``ALL_OLD``). Without it (expired
    by its TTL at that very moment), the delivery is retried rather than guessed."""
    if not item:
        raise TransientConflict("the event's record refused the put but was not returned")
    return _note(item)


def _preferences(item: Mapping[str, Any]) -> Preferences:
    plain = from_item(item)
    return Preferences(
        push=bool(plain.get("push", True)),
        email=bool(plain.get("email", True)),
        quiet_start=plain.get("quietStart"),
        quiet_end=plain.get("quietEnd"),
        locale=plain.get("locale"),
        marketing_opt_out=bool(plain.get("marketingOptOut", False)),
        updated_at=plain.get("updatedAt"),
    )


class NotificationRepository(DynamoRepository):
    def member_settings(
        self, program_id: str, member_id: str
    ) -> tuple[Preferences | None, Mapping[str, Any] | None]:
        """The preferences and the member item's zone and language, in one ``BatchGetItem``
        (strongly consistent: a preference just saved holds for the next message)."""
        pk = member_pk(program_id, member_id)
        keys = [{"pk": av(pk), "sk": av(sk)} for sk in (PREFERENCES_SK, MEMBER_SK)]
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "sk, push, email, quietStart, quietEnd, #l, "
                "marketingOptOut, updatedAt, #z",
                "ExpressionAttributeNames": {"#l": "locale", "#z": "timeZone"},
            }
        }
        found: dict[str, Mapping[str, Any]] = {}
        while request:
            response = self._call("BatchGetItem", self.client.batch_get_item, RequestItems=request)
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[str(item["sk"]["S"])] = item
            request = dict(response.get("UnprocessedKeys") or {})
        prefs = found.get(PREFERENCES_SK)
        member = found.get(MEMBER_SK)
        return (
            _preferences(prefs) if prefs is not None else None,
            from_item(member) if member is not None else None,
        )

    def save_preferences(self, program_id: str, member_id: str, preferences: Preferences) -> None:
        item: dict[str, Any] = {
            "pk": member_pk(program_id, member_id),
            "sk": PREFERENCES_SK,
            "memberId": member_id,
            "push": preferences.push,
            "email": preferences.email,
            "marketingOptOut": preferences.marketing_opt_out,
            "updatedAt": preferences.updated_at,
        }
        for name, value in (
            ("quietStart", preferences.quiet_start),
            ("quietEnd", preferences.quiet_end),
            ("locale", preferences.locale),
        ):
            if value is not None:
                item[name] = value
        self._call(
            "PutItem",
            self.client.put_item,
            TableName=self.table_name,
            Item={name: av(value) for name, value in item.items()},
        )

    def claim(
        self, program_id: str, member_id: str, note: Note, limit: int, expires_at: int
    ) -> tuple[Claim, Note | None]:
        pk = member_pk(program_id, member_id)
        put: dict[str, Any] = {
            "Put": {
                "TableName": self.table_name,
                "Item": _note_item(pk, note, expires_at),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        if note.week is None:
            existing = self.put_note(program_id, member_id, note, expires_at)
            return (Claim.CLAIMED, None) if existing is None else (Claim.EXISTS, existing)
        update = Update()
        update.add("sent", 1)
        update.set("expiresAt", expires_at - (NOTE_DAYS - WEEK_DAYS) * 86400)
        sent = update.name("sent")
        counter = update.request(
            self.table_name,
            {"pk": av(pk), "sk": av(note_week_sk(note.week))},
            f"attribute_not_exists({sent}) OR {sent} < {update.value(limit)}",
        )
        del counter["TableName"]
        reasons = self._transact([put, {"Update": {"TableName": self.table_name, **counter}}])
        if reasons is None:
            return Claim.CLAIMED, None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return Claim.EXISTS, _existing(reasons[0].get("Item"))
        return Claim.CAPPED, None

    def put_note(self, program_id: str, member_id: str, note: Note, expires_at: int) -> Note | None:
        pk = member_pk(program_id, member_id)
        refused = self._conditional_write(
            "PutItem",
            {
                "TableName": self.table_name,
                "Item": _note_item(pk, note, expires_at),
                "ConditionExpression": "attribute_not_exists(pk)",
            },
        )
        return None if refused is None else _existing(refused)

    def take_over(self, program_id: str, member_id: str, old: Note, new: Note) -> bool:
        update = Update()
        update.set("state", new.state)
        update.set("token", new.token)
        update.set("at", new.at)
        update.set("channels", list(new.channels))
        request = update.request(
            self.table_name,
            {"pk": av(member_pk(program_id, member_id)), "sk": av(note_sk(old.event_id))},
            f"{update.name('token')} = {update.value(old.token)} AND "
            f"{update.name('state')} = {update.value(old.state)}",
        )
        return self._conditional_write("UpdateItem", request) is None

    def finish(self, program_id: str, member_id: str, note: Note) -> None:
        update = Update()
        update.set("state", note.state)
        update.set("done", list(note.done))
        request = update.request(
            self.table_name,
            {"pk": av(member_pk(program_id, member_id)), "sk": av(note_sk(note.event_id))},
            f"{update.name('token')} = {update.value(note.token)}",
        )
        # Refused: taken over meanwhile (this delivery outlived its lease); the other finishes.
        self._conditional_write("UpdateItem", request)
