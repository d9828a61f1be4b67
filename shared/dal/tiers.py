"""Tier state on the member item, and the sparse index of members to look at on a given day.

The index ``ByCheckDate`` (template.yaml) has partition key ``checkShard`` (the program id and
one of ``CHECK_SHARDS`` shards, by a hash of the member id, so that no partition gets hot) and
sort key ``checkOn`` (an ISO date). Only members that hold a tier carry these attributes, so the
index holds only members whose tier can drop, and the daily evaluation reads the members due
today, not every member. It projects keys only: the member item's other attributes are not
copied, so an order's write to the member item costs no index write.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.tiers import TierDecision
from shared.domain.timeutil import parse_instant, to_compact_utc

from .dynamodb import DynamoRepository, Update, from_item

CHECK_INDEX = "ByCheckDate"
CHECK_SHARDS = 16


def check_shard(program_id: str, member_id: str) -> str:
    return f"{program_id}#{zlib.crc32(member_id.encode()) % CHECK_SHARDS:02d}"


class TierRepository(DynamoRepository):
    """Tier decisions on the member item, and the sparse index of check dates (satisfies
    ``shared.logic.tiers.TierStore``)."""

    def apply_tier(
        self,
        program_id: str,
        member_id: str,
        decision: TierDecision,
        version: int | None,
        at: str,
    ) -> bool:
        """Write a decision, only if the member is still at ``version`` and no decision made
        at a later instant was written since: a tier never moves backwards in time. False
        when the condition failed (a newer state will be, or was, evaluated instead).

        ``at`` is an ISO 8601 instant; ``tierAt`` and ``tierChangedAt`` store it in the member
        item's compact form (``to_compact_utc``, to the second), which compares in time order
        as a string."""
        stamp = to_compact_utc(parse_instant(at))
        update = Update()
        if decision.tier is None:
            update.remove("tier")
        else:
            update.set("tier", decision.tier)
        if decision.changed or decision.reason is not None:
            # A kept tier gets a reason only when an override that set it is over.
            update.set("tierReason", decision.reason.value if decision.reason else None)
        if decision.changed:
            update.set("tierChangedAt", stamp)
            if decision.rule_version:
                update.set("tierRuleVersion", decision.rule_version)
            update.set("tierFrom", decision.current or "")
        update.set("tierAt", stamp)
        if decision.check_on is None:
            update.remove("checkShard")
            update.remove("checkOn")
        else:
            update.set("checkShard", check_shard(program_id, member_id))
            update.set("checkOn", decision.check_on.isoformat())
        if decision.at_risk_on is not None:
            update.set("atRiskFor", decision.at_risk_on.isoformat())
            update.set("atRiskDropsTo", decision.drops_to)
            update.set("atRiskTier", decision.tier)
        if decision.below_since is None:
            update.remove("belowSince")
        else:
            update.set("belowSince", decision.below_since.isoformat())
        if decision.held_until is None:
            update.remove("tierHeldUntil")
        else:
            update.set("tierHeldUntil", decision.held_until.isoformat())
        v = update.name("v")
        tier_at = update.name("tierAt")
        version_ok = (
            f"attribute_not_exists({v})" if version is None else (f"{v} = {update.value(version)}")
        )
        condition = (
            f"attribute_exists(pk) AND {version_ok} AND "
            f"(attribute_not_exists({tier_at}) OR {tier_at} <= {update.value(stamp)})"
        )
        request = update.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), condition
        )
        return self._update_if(request)

    def remove_buckets(self, program_id: str, member_id: str, names: Sequence[str]) -> None:
        """Remove window buckets that can never count again (``unreachable_names``). No
        condition on the version: nothing adds to such a bucket any more, and removing one
        changes no points, so the member's version ``v`` stays."""
        if not names:
            return
        update = Update()
        for name in names:
            update.remove(name)
        request = update.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), "attribute_exists(pk)"
        )
        self._update_if(request)

    def due_member_keys(self, program_id: str, today: date) -> Iterator[str]:
        """Member ids whose check date has come, shard by shard (keys only)."""
        for shard in range(CHECK_SHARDS):
            start: dict[str, Any] | None = None
            while True:
                request: dict[str, Any] = {
                    "TableName": self.table_name,
                    "IndexName": CHECK_INDEX,
                    "KeyConditionExpression": "checkShard = :shard AND checkOn <= :today",
                    "ExpressionAttributeValues": {
                        ":shard": {"S": f"{program_id}#{shard:02d}"},
                        ":today": {"S": today.isoformat()},
                    },
                }
                if start:
                    request["ExclusiveStartKey"] = start
                response = self._call("Query", self.client.query, **request)
                for item in response.get("Items", []):
                    yield str(item["pk"]["S"]).rsplit("#M#", 1)[1]
                start = response.get("LastEvaluatedKey")
                if not start:
                    break

    def get_members(self, program_id: str, member_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Member items, strongly consistent, 100 at a time."""
        found: list[dict[str, Any]] = []
        for begin in range(0, len(member_ids), 100):
            keys = [
                {"pk": {"S": member_pk(program_id, member)}, "sk": {"S": MEMBER_SK}}
                for member in member_ids[begin : begin + 100]
            ]
            pending: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while pending:
                response = self._call(
                    "BatchGetItem", self.client.batch_get_item, RequestItems=pending
                )
                found.extend(
                    from_item(item) for item in response["Responses"].get(self.table_name, [])
                )
                pending = response.get("UnprocessedKeys") or {}
        return found
