"""The stats counters' items (docs/stats.md): one item per program, shard and bucket
(``P#{programId}#STATS#{shard}`` / ``NOW`` or ``PER#{period}``), numbers added with ``ADD``;
one marker per counted stream record (``STATSREC#{eventID}`` / ``STATS``, with a TTL), written
in the same transaction as the counts. Mechanical: what to count is ``shared.domain.stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.domain.stats import MARK_SK, Delta, mark_pk, stats_pk

from .dynamodb import DynamoRepository, Update, av, from_item

BATCH_GET_LIMIT = 100
"""Keys per BatchGetItem call (DynamoDB's limit)."""
MAX_UNPROCESSED_ROUNDS = 8


class StatsRepository(DynamoRepository):
    """Satisfies ``shared.logic.stats_counting.CounterStore`` and
    ``shared.logic.stats.StatsStore``."""

    def apply_once(self, record_id: str, deltas: Sequence[Delta], expires_at: int) -> bool:
        """One transaction: Put the record's marker (condition: absent) and ADD each delta to its
        counter item. Each item is small (< 1 KB), so 2 write units each: 4 for a change that
        moves one counter item. False, with nothing written, when the marker exists."""
        marker = {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    "pk": av(mark_pk(record_id)),
                    "sk": av(MARK_SK),
                    "expiresAt": av(expires_at),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        items: list[dict[str, Any]] = [marker]
        for delta in deltas:
            update = Update()
            for name, value in delta.counts.items():
                update.add(name, value)
            key = {"pk": av(stats_pk(delta.program_id, delta.shard)), "sk": av(delta.bucket)}
            items.append({"Update": update.request(self.table_name, key)})
        reasons = self._transact(items)
        if reasons is None:
            return True
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise RuntimeError(f"stats counters refused: {reasons}")

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items with these keys, by BatchGetItem (100 keys a call), eventually consistent:
        half a read unit per item under 4 KB. Keys DynamoDB leaves unprocessed are asked
        again."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            pending: list[dict[str, Any]] = [
                {"pk": av(pk), "sk": av(sk)} for pk, sk in unique[start : start + BATCH_GET_LIMIT]
            ]
            for attempt in range(MAX_UNPROCESSED_ROUNDS):
                response = self._call(
                    "BatchGetItem",
                    self.client.batch_get_item,
                    RequestItems={self.table_name: {"Keys": pending}},
                )
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = from_item(raw)
                    found[(str(item["pk"]), str(item["sk"]))] = item
                left = response.get("UnprocessedKeys", {}).get(self.table_name, {})
                pending = list(left.get("Keys", []))
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise RuntimeError("BatchGetItem left keys unprocessed after retries")
        return found
