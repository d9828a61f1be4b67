"""Administrators' actions on DynamoDB (docs/admin.md): mechanical, like every repository.

Each action is one transaction of two items: its audit record in the member's partition
(``ADMIN#...``, who, when, why) and the member item's change. A points adjustment's record is
keyed by its Idempotency-Key and put once (``attribute_not_exists``), so a retry can never
apply the points twice; it also carries the points' change (the buckets or the lot), from
which ``loyalty audit invariants`` and the ledger's projector read it. A tier override's
record is keyed by its instant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from msgspec import Struct

from shared.domain.keys import ADMIN_SK_PREFIX, MEMBER_SK, due_shard
from shared.domain.tiers import OVERRIDE_TIER, OVERRIDE_UNTIL
from shared.domain.window import bucket_increment

from .dynamodb import DynamoRepository, Update, av, from_item

MAX_RECORDS = 200
"""The audit records ``admin_records`` reads at most (newest by key first)."""


class AdminWrite(StrEnum):
    DONE = "done"
    DUPLICATE = "duplicate"
    """The record's key was taken (the same Idempotency-Key): nothing applied."""
    NO_MEMBER = "no_member"
    STALE = "stale"
    """The member item changed since it was read: plan again."""
    INSUFFICIENT = "insufficient"


class AdminOutcome(Struct, frozen=True):
    write: AdminWrite
    available: int | None = None


class AdminActionRepository(DynamoRepository):
    """Satisfies ``shared.logic.admin_actions.AdminActionStore``."""

    def get_record(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None:
        return self._get_item(program_id, member_id, sk)

    def admin_records(self, program_id: str, member_id: str) -> list[dict[str, Any]]:
        """The member's audit records (one strongly consistent Query of the ``ADMIN#`` range)."""
        return self._partition_page(
            program_id, member_id, MAX_RECORDS, None, prefix=ADMIN_SK_PREFIX, newest_first=True
        ).items

    def _record_put(
        self, program_id: str, member_id: str, sk: str, record: Mapping[str, Any]
    ) -> dict[str, Any]:
        item = {name: av(value) for name, value in record.items() if value is not None}
        item.update(self._key(program_id, member_id, sk))
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }

    def _member_write(
        self, program_id: str, member_id: str, update: Update, condition: str
    ) -> dict[str, Any]:
        request = update.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), condition
        )
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": request}

    def _outcome(
        self, reasons: list[dict[str, Any]] | None, insufficient: str | None
    ) -> AdminOutcome:
        if reasons is None:
            return AdminOutcome(AdminWrite.DONE)
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return AdminOutcome(AdminWrite.DUPLICATE)
        old = from_item(reasons[1].get("Item") or {})
        if not old:
            return AdminOutcome(AdminWrite.NO_MEMBER)
        if insufficient is not None:
            return AdminOutcome(AdminWrite.INSUFFICIENT, int(old.get(insufficient) or 0))
        return AdminOutcome(AdminWrite.STALE)

    @staticmethod
    def _version_condition(update: Update, version: int | None) -> str:
        v = update.name("v")
        held = f"attribute_not_exists({v})" if version is None else f"{v} = {update.value(version)}"
        return f"attribute_exists(pk) AND {held}"

    def adjust_shopper(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        buckets: Sequence[tuple[str, int]],
        version: int | None,
    ) -> AdminOutcome:
        """Put the adjustment's record and move the member's lifetime points and window
        buckets by it, while the member is at ``version`` (the buckets planned from)."""
        member = Update()
        member.add("lifetimePoints", int(record["points"]))
        for bucket, points in buckets:
            # Day buckets are packed 7 to an attribute: the day's digits get the points.
            name, amount = bucket_increment(bucket, points)
            member.add(name, amount)
        member.add("v", 1)
        condition = self._version_condition(member, version)
        items = [
            self._record_put(program_id, member_id, sk, record),
            self._member_write(program_id, member_id, member, condition),
        ]
        return self._outcome(self._transact(items), None)

    def adjust_customer(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        lot: str | None,
        check_on: str | None,
    ) -> AdminOutcome:
        """Put the adjustment's record and credit a lot (``lot``) or take available points,
        while ``bal`` covers them (DynamoDB evaluates it: concurrent spends never overdraw)."""
        points = int(record["points"])
        member = Update()
        member.add("bal", points)
        member.add("v", 1)
        condition = "attribute_exists(pk)"
        if lot is not None:
            member.add(lot, points)
            if check_on is not None:
                member.set_if_absent("checkShard", due_shard(program_id, member_id))
                member.set_if_absent("checkOn", check_on)
        else:
            member.add("used", -points)
            balance = member.name("bal")
            condition += f" AND {balance} >= {member.value(-points)}"
        items = [
            self._record_put(program_id, member_id, sk, record),
            self._member_write(program_id, member_id, member, condition),
        ]
        return self._outcome(self._transact(items), "bal" if lot is None else None)

    def set_override(
        self,
        program_id: str,
        member_id: str,
        sk: str,
        record: Mapping[str, Any],
        override: tuple[str, str] | None,
        version: int | None,
    ) -> AdminOutcome:
        """Put the record and set the member's override (tier, last day), or remove it (None),
        while the member is at ``version`` (as read). Bumps ``v``: a tier decision computed
        before the override must not apply after it."""
        member = Update()
        if override is None:
            member.remove(OVERRIDE_TIER)
            member.remove(OVERRIDE_UNTIL)
        else:
            member.set(OVERRIDE_TIER, override[0])
            member.set(OVERRIDE_UNTIL, override[1])
        member.add("v", 1)
        condition = self._version_condition(member, version)
        items = [
            self._record_put(program_id, member_id, sk, record),
            self._member_write(program_id, member_id, member, condition),
        ]
        return self._outcome(self._transact(items), None)
