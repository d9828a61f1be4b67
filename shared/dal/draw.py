"""The prize draw's items: a program's draw items (``P#{programId}#DRAWS`` / ``DRAW#{month}``)
and a month's entries from the sparse index ``ByDrawMonth`` (template.yaml), which holds one
keys-only item per credited order of the month. Mechanical: the draw is decided in
``shared.logic.draw``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from msgspec import structs

from shared.domain.draw import Draw, draw_month_key, draw_pk, draw_sk

from .capacity import CapacityMeter
from .dynamodb import DynamoRepository, av, from_item
from .seed_vault import SeedVault

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DRAW_INDEX = "ByDrawMonth"


SEALED = "seedSealed"
"""The draw item's attribute holding the sealed seed until the draw (binary)."""


class DrawRepository(DynamoRepository):
    """Satisfies ``shared.logic.draw.DrawStore``. With a ``vault`` the seed of an opened draw is
    stored sealed (``seedSealed``) and opened when read; without one (the local stack, which has
    no KMS) it is stored as it is."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        meter: CapacityMeter | None = None,
        vault: SeedVault | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(table_name, client, meter, sleep)
        self.vault = vault

    def _draw(self, image: Mapping[str, Any]) -> Draw:
        """The draw of a stored item, its seed opened when sealed (an empty seed when this
        repository has no vault: such a reader, ``loyalty draw verify``, needs a drawn month's
        seed, which is in the clear)."""
        draw = Draw.of(image)
        sealed = image.get(SEALED)
        if not draw.seed and sealed is not None and self.vault is not None:
            seed = self.vault.unseal(bytes(sealed), draw.program_id, draw.month)
            draw = structs.replace(draw, seed=seed)
        return draw

    def month_entry_members(self, program_id: str, month: str) -> Iterator[str]:
        """One member id per entry of the month, grouped by member (the index sorts by the
        order item's ``pk``, the member's partition), page by page. Keys only: about 100
        bytes an entry, so a read unit (eventually consistent, 8 KB) reads about 80 entries."""
        prefix = f"P#{program_id}#M#"
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DRAW_INDEX,
            "KeyConditionExpression": "drawMonth = :month",
            "ExpressionAttributeValues": {":month": av(draw_month_key(program_id, month))},
        }
        for item in self._query_all(request):
            pk = str(item["pk"]["S"])
            if pk.startswith(prefix):
                yield pk[len(prefix) :]

    def get_draw(self, program_id: str, month: str) -> Draw | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(draw_pk(program_id)), "sk": av(draw_sk(month))},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return self._draw(from_item(item)) if item else None

    def open_draws(self, program_id: str) -> Iterator[Draw]:
        """The program's draws not drawn yet (the partition holds one item a month)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "#state = :opened",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":pk": av(draw_pk(program_id)),
                ":opened": av("opened"),
            },
            "ConsistentRead": True,
        }
        for item in self._query_all(request):
            yield self._draw(from_item(item))

    def open_draw(self, draw: Draw) -> Draw | None:
        """Write the month's opened draw once. None when written; else the draw already there
        (its seed is never replaced: its hash may be published)."""
        item = {name: av(value) for name, value in draw.attributes().items()}
        item.update(pk=av(draw_pk(draw.program_id)), sk=av(draw_sk(draw.month)))
        if self.vault is not None:  # the seed, sealed: only its hash is readable before the draw
            del item["seed"]
            item[SEALED] = {"B": self.vault.seal(draw.seed, draw.program_id, draw.month)}
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
        return self._draw(from_item(old)) if old else self.get_draw(draw.program_id, draw.month)

    def record_drawn(self, draw: Draw) -> Draw | None:
        """Mark the month drawn with its result and its seed in the clear (published now), only
        while it is ``opened`` with the same seed (its hash: the seed may be sealed). None when
        written; else the draw as it stands (drawn by an earlier run)."""
        values = draw.attributes()
        names = ["state", "entriesDigest", "totalEntries", "members", "winners", "drawnAt", "seed"]
        request = {
            "TableName": self.table_name,
            "Key": {"pk": av(draw_pk(draw.program_id)), "sk": av(draw_sk(draw.month))},
            "UpdateExpression": "SET "
            + ", ".join(f"#{n} = :{n}" for n in names)
            + f" REMOVE #{SEALED}",
            "ConditionExpression": "#state = :opened AND #seedHash = :seedHash",
            "ExpressionAttributeNames": {
                **{f"#{n}": n for n in names},
                "#seedHash": "seedHash",
                f"#{SEALED}": SEALED,
            },
            "ExpressionAttributeValues": {
                **{f":{n}": av(values[n]) for n in names},
                ":opened": av("opened"),
                ":seedHash": av(draw.seed_hash),
            },
        }
        old = self._conditional_write("UpdateItem", request)
        if old is None:
            return None
        return self._draw(from_item(old)) if old else self.get_draw(draw.program_id, draw.month)
