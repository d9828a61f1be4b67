"""The ledger digest's items: a program-day's ledger entries from the sparse index
``ByLedgerDay`` (template.yaml), and the program's digest items (``P#{programId}#DIGEST``,
``D#{yyyy-mm-dd}``). Mechanical: the chain is computed in ``shared.logic.digest``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from shared.domain.digest import (
    DIGEST_SK_PREFIX,
    DayDigest,
    digest_day_key,
    digest_pk,
    digest_sk,
)

from .dynamodb import DynamoRepository, av, from_item

DAY_INDEX = "ByLedgerDay"


class DigestRepository(DynamoRepository):
    """Satisfies ``shared.logic.digest.DigestStore``."""

    def day_entries(self, program_id: str, day: date) -> Iterator[dict[str, Any]]:
        """The program's ledger entries recorded on ``day`` (UTC), in chain order (the index's
        sort key, ``{pk}|{sk}``), page by page: constant memory however long the day. The
        index is read eventually consistently (the only way an index can be read): half a
        read unit per 4 KB."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DAY_INDEX,
            "KeyConditionExpression": "ledgerDay = :day",
            "ExpressionAttributeValues": {":day": av(digest_day_key(program_id, day))},
        }
        for item in self._query_all(request):
            yield from_item(item)

    def get_digest(self, program_id: str, day: date) -> DayDigest | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(digest_pk(program_id)), "sk": av(digest_sk(day))},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return DayDigest.of(from_item(item)) if item else None

    def digests(
        self, program_id: str, first: date | None = None, last: date | None = None
    ) -> Iterator[DayDigest]:
        """The program's digests from ``first`` to ``last`` (both included; open ends: all),
        oldest first."""
        low = digest_sk(first) if first else DIGEST_SK_PREFIX
        high = digest_sk(last) if last else DIGEST_SK_PREFIX + "~"
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": av(digest_pk(program_id)),
                ":low": av(low),
                ":high": av(high),
            },
            "ConsistentRead": True,
        }
        for item in self._query_all(request):
            yield DayDigest.of(from_item(item))

    def latest_digest_before(self, program_id: str, day: date) -> DayDigest | None:
        """The program's last digest of a day before ``day`` (one Query of one item)."""
        response = self._call(
            "Query",
            self.client.query,
            TableName=self.table_name,
            # The partition holds the program's digest items only.
            KeyConditionExpression="pk = :pk AND sk < :day",
            ExpressionAttributeValues={
                ":pk": av(digest_pk(program_id)),
                ":day": av(digest_sk(day)),
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return DayDigest.of(from_item(items[0])) if items else None

    def put_digest(self, digest: DayDigest) -> DayDigest | None:
        """Write the day's digest once. None when written; else the digest already there (the
        item is never overwritten)."""
        item = {name: av(value) for name, value in digest.attributes().items()}
        item.update(pk=av(digest_pk(digest.program_id)), sk=av(digest_sk(digest.day)))
        old = self._conditional_write(
            "PutItem",
            {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            },
        )
        if old is None:
            return None
        if old:
            return DayDigest.of(from_item(old))
        return self.get_digest(digest.program_id, digest.day)
