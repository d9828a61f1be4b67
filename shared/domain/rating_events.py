"""Outbound events of rating moderation, derived from committed item changes.

- ``MemberEligibilityChanged``: the member item's ``eligible`` flips (absent means eligible,
  so a member first judged below the floor publishes too).
- ``CustomerFlaggedForTipBaiting``: the customer item gains ``tipBaitFlaggedAt`` (set once).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .outbound import Image, OutboundEvent
from .timeutil import stored_instant_iso

MEMBER_SK = "MEMBER"
CUSTOMER_SK = "CUSTOMER"


def _number(value: Any) -> Any:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def eligibility_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None or new.get("sk") != MEMBER_SK:
        return []
    before = bool((old or {}).get("eligible", True))
    after = bool(new.get("eligible", True))
    if before == after:
        return []
    member_id = new.get("memberId")
    changed_at = stored_instant_iso(new.get("eligibilityChangedAt"))
    return [
        OutboundEvent(
            "MemberEligibilityChanged",
            {
                "memberId": member_id,
                "programId": new.get("programId"),
                "eligible": after,
                "previous": before,
                "average": _number(new.get("ratingAverage")),
                "count": _number(new.get("ratingCount", 0)),
                "reason": new.get("eligibilityReason"),
                "occurredAt": changed_at,
            },
        ).with_id(member_id, after, changed_at, new.get("eligibilityFlips", 0))
    ]


def tip_bait_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None or new.get("sk") != CUSTOMER_SK or not new.get("tipBaitFlaggedAt"):
        return []
    if (old or {}).get("tipBaitFlaggedAt"):
        return []
    customer_id = new.get("customerId")
    flagged_at = new["tipBaitFlaggedAt"]
    return [
        OutboundEvent(
            "CustomerFlaggedForTipBaiting",
            {
                "customerId": customer_id,
                "programId": new.get("programId"),
                "orderIds": list(new.get("tipBaitOrderIds", [])),
                "windowDays": _number(new.get("tipBaitWindowDays")),
                "reason": new.get("tipBaitReason", "tip_baited_orders"),
                "occurredAt": flagged_at,
            },
        ).with_id(customer_id, flagged_at)
    ]


def tip_bait_cleared_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    """``CustomerTipBaitFlagCleared``: an administrator lifted the flag (the clearance the
    customer item's audit trail gained)."""
    if new is None or new.get("sk") != CUSTOMER_SK or new.get("tipBaitFlaggedAt"):
        return []
    if not (old or {}).get("tipBaitFlaggedAt") or not new.get("tipBaitClearances"):
        return []
    customer_id = new.get("customerId")
    clearance = new["tipBaitClearances"][-1]
    return [
        OutboundEvent(
            "CustomerTipBaitFlagCleared",
            {
                "customerId": customer_id,
                "programId": new.get("programId"),
                "flaggedAt": clearance.get("flaggedAt"),
                "orderIds": list(clearance.get("orderIds", [])),
                "reason": "admin_cleared",
                "occurredAt": clearance.get("clearedAt"),
            },
        ).with_id(customer_id, "cleared", clearance.get("clearedAt"))
    ]


def rating_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    """The deriver to register with the stream-fed publisher."""
    return [
        *eligibility_events(old, new),
        *tip_bait_events(old, new),
        *tip_bait_cleared_events(old, new),
    ]
