"""A member's items for the privacy requests an administrator makes: the export of everything
kept under the member's partition, and the erasure of the personal fields of the member item
and of the member's notification preferences (``shared.logic.privacy``). Mechanical, like
every repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.keys import MEMBER_SK, PREFERENCES_SK
from shared.domain.zones import ZONE_ATTR
from shared.logic.ports import Page

from .dynamodb import DynamoRepository, Update


class PrivacyRepository(DynamoRepository):
    """Satisfies ``shared.logic.privacy.PrivacyStore``."""

    def member_items(self, program_id: str, member_id: str, limit: int, after: str | None) -> Page:
        """A page of the member's items in key order (strongly consistent Query)."""
        return self._partition_page(program_id, member_id, limit, after)

    def preference_fields(
        self, program_id: str, member_id: str, names: Sequence[str]
    ) -> tuple[str, ...]:
        """Which of ``names`` the member's preferences item holds (strongly consistent GetItem
        of those attributes alone: half a read unit; none without the item)."""
        projection = {f"#p{index}": name for index, name in enumerate(names)}
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, PREFERENCES_SK),
            ConsistentRead=True,
            ProjectionExpression=", ".join(projection),
            ExpressionAttributeNames=projection,
        )
        item = response.get("Item") or {}
        return tuple(name for name in names if name in item)

    def erase(
        self,
        program_id: str,
        member_id: str,
        removed: Sequence[str],
        audit: Mapping[str, Any],
        profile_at: str,
        preferences: Sequence[str] = (),
    ) -> bool:
        """Remove ``removed`` from the member item and append ``audit`` to its erasures, while
        the item holds them as read (a profile change in between: False, read again), and
        ``preferences`` from the preferences item in the same transaction, while it holds them.
        ``profileAt`` moves to the erasure, so an older profile change arriving later is
        stale and cannot bring the fields back."""
        update = Update()
        for name in removed:
            update.remove(name)
        update.set("profileAt", profile_at)
        if ZONE_ATTR in removed:
            # The member's days move back to the program's zone, as a zone change moves them:
            # a tier decision computed under the old zone must be refused (docs/tiers.md).
            update.add("v", 1)
        erasures = update.name("erasures")
        update.sets.append(
            f"{erasures} = list_append(if_not_exists({erasures}, {update.value([])}), "
            f"{update.value([dict(audit)])})"
        )
        conditions = [f"attribute_exists({update.name(name)})" for name in ["pk", *removed]]
        key = self._key(program_id, member_id, MEMBER_SK)
        member = update.request(self.table_name, key, " AND ".join(conditions))
        if not preferences:
            return self._update_if(member)
        chosen = Update()
        for name in preferences:
            chosen.remove(name)
        held = " AND ".join(f"attribute_exists({chosen.name(name)})" for name in preferences)
        prefs = chosen.request(
            self.table_name, self._key(program_id, member_id, PREFERENCES_SK), held
        )
        return self._transact([{"Update": member}, {"Update": prefs}]) is None
