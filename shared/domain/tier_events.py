"""Outbound events of tier changes, derived from the member item's old and new images.

The member item keeps its instants in the compact form (``to_compact_utc``); events carry them
in the contract's form (``to_utc_iso``)."""

from __future__ import annotations

from .outbound import Image, OutboundEvent
from .timeutil import stored_instant_iso


def tier_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None or new.get("sk") != "MEMBER":
        return []
    before = old or {}
    events: list[OutboundEvent] = []
    member_id = new.get("memberId")
    if before.get("tier") != new.get("tier") and new.get("tierChangedAt"):
        changed_at = stored_instant_iso(new["tierChangedAt"])
        events.append(
            OutboundEvent(
                "MemberTierChanged",
                {
                    "memberId": member_id,
                    "programId": new.get("programId"),
                    "from": before.get("tier"),
                    "to": new.get("tier"),
                    "reason": new.get("tierReason"),
                    "ruleVersion": new.get("tierRuleVersion"),
                    "effectiveAt": changed_at,
                    "occurredAt": changed_at,
                },
            ).with_id(member_id, before.get("tier"), new.get("tier"), changed_at)
        )
    if new.get("atRiskFor") and before.get("atRiskFor") != new.get("atRiskFor"):
        events.append(
            OutboundEvent(
                "MemberTierAtRisk",
                {
                    "memberId": member_id,
                    "programId": new.get("programId"),
                    "tier": new.get("atRiskTier"),
                    "dropsTo": new.get("atRiskDropsTo"),
                    "dropsOn": new["atRiskFor"],
                    "reason": "points_expiring",
                    "occurredAt": stored_instant_iso(new.get("tierAt")),
                },
            ).with_id(member_id, new.get("atRiskTier"), new["atRiskFor"])
        )
    return events
