"""The quality gates' items (docs/tiers.md, "Quality gates"): per member an offer item per
offer (``OFFER#{offerId}``, with a TTL), a window item per gate (``GATES#{gate}``: number sets
``e`` and ``m``, version ``v``), and the standing on the member item (``crN``/``crOk``/``crV``,
``otN``/``otOk``/``otV``).

Every call is an ``UpdateItem`` that returns what it found (``ReturnValues``, no read units):
the event path reads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.domain.gates import COMPLETION_RATE, STANDING_ATTRIBUTES, Standing
from shared.domain.keys import MEMBER_SK, gate_sk, offer_sk
from shared.domain.timeutil import parse_instant, to_utc_iso
from shared.logic.gates import ENTRIES, MARKS, GateWindow, OfferTimes

from .dynamodb import DynamoRepository, Update, av, from_item

_VERSION_ATTRIBUTE = {COMPLETION_RATE: "crV"}


def _version_attribute(gate: str) -> str:
    return _VERSION_ATTRIBUTE.get(gate, "otV")


def _numbers(value: Any) -> frozenset[int]:
    return frozenset(int(number) for number in value) if value else frozenset()


class GateRepository(DynamoRepository):
    def _update_returning(self, request: dict[str, Any], returns: str) -> dict[str, Any]:
        """An ``UpdateItem`` answering the item (``returns`` on success, ALL_OLD when its
        condition failed), as plain values ({} for none)."""
        try:
            response = self._call(
                "UpdateItem",
                self.client.update_item,
                ReturnValues=returns,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item: Any = exc.response.get("Item")
            return from_item(item) if item else {}
        return from_item(response.get("Attributes") or {})

    def mark_offer(
        self,
        program_id: str,
        member_id: str,
        offer_id: str,
        accepted_at: datetime | None,
        declined_at: datetime | None,
        expires_at: datetime,
    ) -> OfferTimes:
        """Keep the earliest acceptance (``a``) or the latest decline (``d``) of the offer; the
        condition refuses a write that would not change it, and the item comes back either
        way."""
        update = Update()
        attribute, moment = ("a", accepted_at) if accepted_at is not None else ("d", declined_at)
        assert moment is not None
        name, value = update.name(attribute), update.value(to_utc_iso(moment))
        update.sets.append(f"{name} = {value}")
        update.set_if_absent("expiresAt", int(expires_at.timestamp()))
        keeps = ">" if attribute == "a" else "<"
        condition = f"attribute_not_exists({name}) OR {name} {keeps} {value}"
        request = update.request(
            self.table_name, self._key(program_id, member_id, offer_sk(offer_id)), condition
        )
        item = self._update_returning(request, "ALL_NEW")
        return OfferTimes(
            parse_instant(item["a"]) if item.get("a") else None,
            parse_instant(item["d"]) if item.get("d") else None,
        )

    def add_to_window(
        self, program_id: str, member_id: str, gate: str, adds: Mapping[str, frozenset[int]]
    ) -> GateWindow:
        update = Update()
        for attribute, values in adds.items():
            if values:
                update.adds.append(f"{update.name(attribute)} {update.value(set(values))}")
        update.add("v", 1)
        request = update.request(self.table_name, self._key(program_id, member_id, gate_sk(gate)))
        item = self._update_returning(request, "ALL_OLD")
        return GateWindow(
            _numbers(item.get(ENTRIES)), _numbers(item.get(MARKS)), int(item.get("v", 0))
        )

    def trim_window(
        self, program_id: str, member_id: str, gate: str, removals: Mapping[str, frozenset[int]]
    ) -> None:
        """Delete entries that can no longer count (idempotent: deleting what is gone is
        nothing); the version is left alone, the standing does not move."""
        parts = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for index, (attribute, numbers) in enumerate(sorted(removals.items())):
            if numbers:
                names[f"#a{index}"] = attribute
                values[f":d{index}"] = av(set(numbers))
                parts.append(f"#a{index} :d{index}")
        if not parts:
            return
        self._call(
            "UpdateItem",
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, gate_sk(gate)),
            UpdateExpression="DELETE " + ", ".join(parts),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def write_standing(
        self, program_id: str, member_id: str, gate: str, standing: Standing, version: int
    ) -> bool:
        """The member item's standing of ``gate``, unless a newer window version wrote it;
        bumps the member's version ``v`` (a tier decision from before is refused)."""
        count_name, good_name = STANDING_ATTRIBUTES[gate]
        update = Update()
        update.set(count_name, standing.count)
        update.set(good_name, standing.good)
        update.set(_version_attribute(gate), version)
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        update.add("v", 1)
        name, value = update.name(_version_attribute(gate)), update.value(version)
        stale = f"attribute_not_exists({name}) OR {name} < {value}"
        request = update.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), stale
        )
        return self._update_if(request)
