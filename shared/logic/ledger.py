"""The ledger's read model: one small item per points entry
(``LEDGER#{occurredAt}#{orderId}#{credit|reversal}``), projected from the order items by the
stream-fed ``event_publisher`` (``project_ledger``) and read by ``GET /v1/me/ledger``
(``shared.logic.members``).

A module of its own so that the publisher loads only the projection, not the member API's views
and the program they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.keys import ORDER_SK_PREFIX, ledger_sk
from shared.domain.outbound import Image

EntryKind = Literal["credit", "reversal"]


class LedgerEntry(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    order_id: str
    kind: EntryKind
    points: int = Field(description="Positive for a credit, negative for a reversal.")
    rule_version: str = Field(description="The program version that computed the points.")
    reason: str = Field(description="OrderCompleted, OrderCancelled or OrderRefunded.")
    occurred_at: str = Field(description="When the order completed, or was cancelled/refunded.")
    batch_size: int | None = None


def _entries(image: Image | None) -> dict[str, LedgerEntry]:
    """The ledger entries an order item holds: its credit, and its reversal if any."""
    if not image or not str(image.get("sk", "")).startswith(ORDER_SK_PREFIX):
        return {}
    order_id = str(image.get("orderId", str(image["sk"])[len(ORDER_SK_PREFIX) :]))
    found: dict[str, LedgerEntry] = {}
    if image.get("status") in {"credited", "reversed"} and image.get("completedAt"):
        entry = LedgerEntry(
            order_id=order_id,
            kind="credit",
            points=int(image.get("points", 0)),
            rule_version=str(image.get("ruleVersion", "")),
            reason="OrderCompleted",
            occurred_at=str(image["completedAt"]),
            batch_size=int(image["batchSize"]) if image.get("batchSize") is not None else None,
        )
        found[ledger_sk(entry.occurred_at, order_id, "credit")] = entry
    reversal = image.get("reversal")
    if isinstance(reversal, Mapping) and reversal.get("occurredAt"):
        entry = LedgerEntry(
            order_id=order_id,
            kind="reversal",
            points=int(reversal.get("points", 0)),
            rule_version=str(reversal.get("ruleVersion", "")),
            reason=str(reversal.get("kind", "OrderCancelled")),
            occurred_at=str(reversal["occurredAt"]),
        )
        found[ledger_sk(entry.occurred_at, order_id, "reversal")] = entry
    return found


def ledger_projection(old: Image | None, new: Image | None) -> list[tuple[str, str, LedgerEntry]]:
    """(pk, sk, entry) of the ledger entries a committed order change adds. Pure; entries are
    never removed (a reversal is an entry of its own, never a deletion)."""
    if new is None:
        return []
    before = _entries(old)
    pk = str(new.get("pk", ""))
    return [(pk, sk, entry) for sk, entry in _entries(new).items() if sk not in before]


class LedgerEntryWriter(Protocol):
    """Where the ledger's read model is written (``shared.dal.perks.PerkRepository``)."""

    def put_ledger_entry(self, pk: str, sk: str, attributes: Mapping[str, Any]) -> None: ...


def project_ledger(old: Image | None, new: Image | None, store: LedgerEntryWriter) -> int:
    """The ``event_publisher``'s projector step: write the entries a change adds (idempotent:
    a redelivered record writes the same items). Returns how many were written."""
    added = ledger_projection(old, new)
    if not added:
        return 0
    for pk, sk, entry in added:
        attributes = entry.model_dump(by_alias=True, exclude_none=True)
        attributes["memberId"] = new.get("memberId") if new else None
        store.put_ledger_entry(pk, sk, attributes)
    return len(added)
