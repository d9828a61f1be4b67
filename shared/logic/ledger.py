"""The ledger's read model: one small item per points entry
(``LEDGER#{occurredAt}#{orderId}#{kind}``), projected from the order items (and, for customer
programs, the member item's settlements) by the stream-fed ``event_publisher``
(``project_ledger``) and read by ``GET /v1/me/ledger`` (``shared.logic.members``).

Kinds: ``credit`` and ``reversal`` (both programs); for customer programs also ``spend`` (a
checkout hold captured), ``clawback`` (a refund's share of the earned points), ``return`` (a
refund's share of the spent points, back) and ``expiry``; ``adjustment`` (both programs) is an
administrator's, with its reason and who made it (``actor``). Each carries the rule version that
produced it.

Each entry is also stamped for the daily digest (``shared.domain.digest``): the UTC day its
change was committed, its place in that day's chain and its own hash (docs/audit.md).

A module of its own so that the publisher loads only the projection, not the member API's views
and the program they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.digest import (
    DAY_KEY,
    HASH_KEY,
    ORDER_KEY,
    digest_day_key,
    entry_hash,
    entry_order_key,
    utc_day,
)
from shared.domain.keys import (
    ADJUSTMENT_SK_PREFIX,
    DONATION_SK_PREFIX,
    MEMBER_SK,
    ORDER_SK_PREFIX,
    REWARD_SK_PREFIX,
    ledger_sk,
)
from shared.domain.outbound import Image
from shared.domain.timeutil import to_utc_iso

EntryKind = Literal[
    "credit",
    "reversal",
    "spend",
    "clawback",
    "return",
    "expiry",
    "bonus",
    "bonus_reversal",
    "donation",
    "adjustment",
]


class LedgerEntry(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    order_id: str = Field(description="The order (empty for an expiry).")
    kind: EntryKind
    points: int = Field(description="Positive for a credit or a return, negative otherwise.")
    rule_version: str = Field(description="The program version that computed the points.")
    reason: str = Field(
        description="OrderCompleted, OrderCancelled, OrderRefunded, checkout, expiry, "
        "campaign:{campaignId} (a bonus), campaign:{campaignId}:cause:{causeId} (a donation) "
        "or admin:{why} (an administrator's adjustment)."
    )
    occurred_at: str = Field(description="When it happened (completion, refund, capture...).")
    batch_size: int | None = None
    available_on: str | None = Field(
        default=None, description="Customer programs: the day a credit's points are available."
    )
    actor: str | None = Field(
        default=None, description="An adjustment: the administrator who made it (token sub)."
    )


def _customer_entries(image: Image, order_id: str) -> dict[str, LedgerEntry]:
    """A customer order's spend (its captured hold) and its refunds' clawbacks and returns."""
    found: dict[str, LedgerEntry] = {}
    version = str(image.get("ruleVersion", ""))
    raw_hold = image.get("hold")
    hold: Mapping[str, Any] = raw_hold if isinstance(raw_hold, Mapping) else {}
    # A spend of points (a hold the wallet alone paid spends none: no entry).
    if hold.get("state") == "captured" and hold.get("capturedAt") and int(hold.get("points") or 0):
        entry = LedgerEntry(
            order_id=order_id,
            kind="spend",
            points=-int(hold.get("points", 0)),
            rule_version=version,
            reason="checkout",
            occurred_at=str(hold["capturedAt"]),
        )
        found[ledger_sk(entry.occurred_at, order_id, "spend")] = entry
    for refund in image.get("refunds") or []:
        if not isinstance(refund, Mapping):
            continue
        at = str(refund.get("occurredAt", ""))
        for kind, points in (
            ("clawback", -int(refund.get("clawed", 0))),
            ("return", int(refund.get("returned", 0))),
        ):
            if points:
                entry = LedgerEntry(
                    order_id=order_id,
                    kind=kind,
                    points=points,
                    rule_version=str(refund.get("ruleVersion", version)),
                    reason=str(refund.get("kind", "OrderRefunded")),
                    occurred_at=at,
                )
                found[ledger_sk(at, order_id, kind)] = entry
    return found


def _expiry_entries(image: Image) -> dict[str, LedgerEntry]:
    """A customer member item's settlement that expired points."""
    due = image.get("lastDue")
    if not isinstance(due, Mapping) or not int(due.get("expired") or 0):
        return {}
    at = str(due.get("at", ""))
    entry = LedgerEntry(
        order_id="",
        kind="expiry",
        points=-int(due["expired"]),
        rule_version=str(due.get("ruleVersion", "")),
        reason="expiry",
        occurred_at=at,
    )
    return {ledger_sk(at, "", "expiry"): entry}


def _bonus_entries(image: Image) -> dict[str, LedgerEntry]:
    """A campaign's bonus for an order, and its reversal when the order was cancelled."""
    order_id = str(image.get("orderId", ""))
    points = int(image.get("points") or 0)
    campaign = f"campaign:{image.get('campaignId')}"
    version = str(image.get("ruleVersion", ""))
    at = str(image.get("occurredAt", ""))
    found = {
        ledger_sk(at, order_id, f"bonus:{image.get('campaignId')}"): LedgerEntry(
            order_id=order_id,
            kind="bonus",
            points=points,
            rule_version=version,
            reason=campaign,
            occurred_at=at,
        )
    }
    if image.get("state") == "reversed" and image.get("reversedAt"):
        back = str(image["reversedAt"])
        found[ledger_sk(back, order_id, f"bonus_reversal:{image.get('campaignId')}")] = LedgerEntry(
            order_id=order_id,
            kind="bonus_reversal",
            points=-points,
            rule_version=version,
            reason=campaign,
            occurred_at=back,
        )
    return found


def _donation_entries(image: Image) -> dict[str, LedgerEntry]:
    """Points given to a cause (a round-up is cash: no points entry)."""
    points = int(image.get("points") or 0)
    if image.get("state") != "donated" or not points:
        return {}
    at = str(image.get("occurredAt", ""))
    donation = str(image.get("donationId", ""))
    entry = LedgerEntry(
        order_id="",
        kind="donation",
        points=-points,
        rule_version=str(image.get("ruleVersion", "")),
        reason=f"campaign:{image.get('campaignId')}:cause:{image.get('causeId')}",
        occurred_at=at,
    )
    return {ledger_sk(at, donation, "donation"): entry}


def _adjustment_entries(image: Image) -> dict[str, LedgerEntry]:
    """An administrator's points adjustment (docs/admin.md): its record is written once."""
    points = int(image.get("points") or 0)
    if not points:
        return {}
    at = str(image.get("occurredAt", ""))
    entry = LedgerEntry(
        order_id="",
        kind="adjustment",
        points=points,
        rule_version=str(image.get("ruleVersion", "")),
        reason=f"admin:{image.get('reason', '')}",
        occurred_at=at,
        actor=str(image.get("by", "")),
    )
    return {ledger_sk(at, str(image.get("adjustmentId", "")), "adjustment"): entry}


_ITEM_ENTRIES = (
    (REWARD_SK_PREFIX, _bonus_entries),
    (DONATION_SK_PREFIX, _donation_entries),
    (ADJUSTMENT_SK_PREFIX, _adjustment_entries),
)
"""Items other than orders and the member item that hold ledger entries, by key prefix."""


def _entries(image: Image | None) -> dict[str, LedgerEntry]:
    """The ledger entries an item holds: an order's credit and its reversal (a customer order's
    spend and refunds too), a campaign's bonus, a customer member item's last expiry."""
    if not image:
        return {}
    if image.get("sk") == MEMBER_SK:
        return _expiry_entries(image)
    sk = str(image.get("sk", ""))
    for prefix, entries in _ITEM_ENTRIES:
        if sk.startswith(prefix):
            return entries(image)
    if not str(image.get("sk", "")).startswith(ORDER_SK_PREFIX):
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
            available_on=str(image["availableOn"]) if image.get("availableOn") else None,
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
    if image.get("shopperId"):
        found.update(_customer_entries(image, order_id))
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


def _program_of(pk: str) -> str:
    parts = pk.split("#", 2)
    return parts[1] if len(parts) > 2 and parts[0] == "P" else ""


def project_ledger(
    old: Image | None, new: Image | None, store: LedgerEntryWriter, at: datetime
) -> int:
    """The ``event_publisher``'s projector step: write the entries a change adds (idempotent:
    a redelivered record writes the same items). Returns how many were written.

    ``at`` is when the change was committed (the stream record's creation time, the same for
    every delivery of the record): the entry is recorded on that UTC day, which puts it in that
    day's digest (``ByLedgerDay`` index keys), with its own hash (docs/audit.md)."""
    added = ledger_projection(old, new)
    if not added:
        return 0
    recorded_at = to_utc_iso(at)
    day = utc_day(at)
    for pk, sk, entry in added:
        attributes: dict[str, Any] = entry.model_dump(by_alias=True, exclude_none=True)
        attributes["memberId"] = new.get("memberId") if new else None
        attributes["recordedAt"] = recorded_at
        attributes[HASH_KEY] = entry_hash({**attributes, "pk": pk, "sk": sk})
        attributes[DAY_KEY] = digest_day_key(_program_of(pk), day)
        attributes[ORDER_KEY] = entry_order_key(pk, sk)
        store.put_ledger_entry(pk, sk, attributes)
    return len(added)
