"""Outbound events of perks, derived from committed item changes (see ``outbound.py``).

- ``PerkRedeemed``: a redemption item appears, confirmed.
- ``RedemptionCancelled``: a redemption item goes from confirmed to cancelled (its quota came
  back in the same transaction).
- ``CashbackCredited``: a fuel purchase item appears with cashback credited to the wallet.

Each carries the member id, what changed, why (``reason``) and when (``occurredAt``), and a
deterministic ``eventId``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .outbound import Image, OutboundEvent

REDEMPTION_PREFIX = "REDEMPTION#"
FUEL_PREFIX = "FUEL#"


def _sk(image: Image | None) -> str:
    return str((image or {}).get("sk", ""))


def _redemption_detail(image: Image) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "memberId": image.get("memberId"),
        "programId": image.get("programId"),
        "redemptionId": image.get("redemptionId"),
        "perkId": image.get("perkId"),
        "kind": image.get("kind"),
        "period": image.get("period"),
        "price": image.get("price"),
    }
    for optional in (
        "date",
        "unit",
        "hours",
        "careType",
        "code",
        "discountRate",
        "validUntil",
        "tier",
        "ruleVersion",
    ):
        if image.get(optional) is not None:
            detail[optional] = image[optional]
    return detail


def perk_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None:
        return []
    sk = _sk(new)
    before = old or {}
    if sk.startswith(REDEMPTION_PREFIX):
        return _redemption_events(before, new)
    if sk.startswith(FUEL_PREFIX) and not before:
        return _cashback_events(new)
    return []


def _redemption_events(before: Image, new: Image) -> list[OutboundEvent]:
    status = new.get("status")
    if not before and status == "confirmed":
        return [
            OutboundEvent(
                "PerkRedeemed",
                {
                    **_redemption_detail(new),
                    "status": status,
                    "reason": "member_request",
                    "occurredAt": new.get("createdAt"),
                },
            ).with_id(new.get("memberId"), new.get("redemptionId"), "redeemed")
        ]
    if before.get("status") == "confirmed" and status == "cancelled":
        return [
            OutboundEvent(
                "RedemptionCancelled",
                {
                    **_redemption_detail(new),
                    "status": status,
                    "quotaReturned": True,
                    "reason": new.get("cancelReason", "member_request"),
                    "occurredAt": new.get("cancelledAt"),
                },
            ).with_id(new.get("memberId"), new.get("redemptionId"), "cancelled")
        ]
    return []


def _cashback_events(new: Image) -> list[OutboundEvent]:
    cashback = new.get("cashback")
    if new.get("status") != "credited" or not isinstance(cashback, dict):
        return []
    if Decimal(str(cashback.get("amount", 0))) <= 0:
        return []
    return [
        OutboundEvent(
            "CashbackCredited",
            {
                "memberId": new.get("memberId"),
                "programId": new.get("programId"),
                "purchaseId": new.get("purchaseId"),
                "purchase": new.get("amount"),
                "cashback": cashback,
                "rate": new.get("rate"),
                "tier": new.get("tier"),
                "ruleVersion": new.get("ruleVersion"),
                "reason": "fuel_purchase",
                "occurredAt": new.get("occurredAt"),
                "creditedAt": new.get("creditedAt"),
            },
        ).with_id(new.get("memberId"), new.get("purchaseId"), "cashback")
    ]
