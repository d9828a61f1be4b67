"""Outbound events of the customer program, derived from committed item changes (see
``outbound.py``). The customer is named ``memberId``, with ``programId``.

- ``PointsEarned``: a customer's order item becomes ``credited`` (points, pending or available,
  ``availableOn``, the rule version).
- ``PointsAvailable``: points became available: an order credited after its pending period, or
  pending lots whose day came (the member item's ``lastDue.matured``).
- ``PointsSpent``: an order's checkout hold is captured by its completion (its points);
  ``WalletSpent`` for the part the shopper's wallet paid (``amount``, ``walletProgramId``).
- ``PointsExpiring``: the oldest lot's points expire on ``expiresOn`` (once per lot).
- ``PointsExpired``: lots past their expiry left the balance.
- ``DonationMade``: points or an order's change given to a cause, with the company's match
  (a refused round-up publishes nothing; it is kept with its reason).
- ``DonationReversed``: an order's round-up given back (the order was cancelled or wholly
  refunded), its match too.
- ``CampaignRewarded`` / ``CampaignRewardReversed``: a campaign's bonus paid for an order, and
  taken back when the order was cancelled (docs/campaigns.md).

Each carries a deterministic ``eventId`` (the same for every publication of the same change).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .keys import DONATION_SK_PREFIX, MEMBER_SK, ORDER_SK_PREFIX, REWARD_SK_PREFIX
from .outbound import Image, OutboundEvent


def _program_id(image: Image) -> str:
    parts = str(image.get("pk", "")).split("#", 2)
    return parts[1] if len(parts) > 2 else ""


def _is_customer_order(image: Image | None) -> bool:
    """Customer programs' order items name the shopper who delivered them."""
    return (
        bool(image)
        and str((image or {}).get("sk", "")).startswith(ORDER_SK_PREFIX)
        and bool((image or {}).get("shopperId"))
    )


def _hold_state(image: Image | None) -> str | None:
    hold = (image or {}).get("hold")
    return str(hold.get("state")) if isinstance(hold, Mapping) else None


def customer_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None:
        return []
    if str(new.get("sk", "")).startswith(REWARD_SK_PREFIX):
        return _reward_events(old or {}, new)
    if str(new.get("sk", "")).startswith(DONATION_SK_PREFIX):
        return _donation_events(old or {}, new)
    if _is_customer_order(new):
        return _order_events(old or {}, new)
    if new.get("sk") == MEMBER_SK and isinstance(new.get("lastDue"), Mapping):
        return _due_events(old or {}, new)
    return []


def _base(image: Image) -> dict[str, Any]:
    return {"programId": _program_id(image), "memberId": image.get("memberId")}


def _order_events(before: Image, new: Image) -> list[OutboundEvent]:
    events: list[OutboundEvent] = []
    order_id = new.get("orderId")
    if new.get("status") == "credited" and before.get("status") != "credited":
        pending = str(new.get("lot", "")).startswith("pd")
        points = int(new.get("points") or 0)
        events.append(
            OutboundEvent(
                "PointsEarned",
                {
                    **_base(new),
                    "orderId": order_id,
                    "points": points,
                    "status": "pending" if pending else "available",
                    "availableOn": new.get("availableOn"),
                    "ruleVersion": new.get("ruleVersion"),
                    "reason": "order_completed",
                    "occurredAt": new.get("completedAt"),
                },
            ).with_id(new.get("pk"), order_id, "earned")
        )
        if not pending and points:
            events.append(
                OutboundEvent(
                    "PointsAvailable",
                    {
                        **_base(new),
                        "orderId": order_id,
                        "points": points,
                        "reason": "order_past_pending_period",
                        "occurredAt": new.get("completedAt"),
                    },
                ).with_id(new.get("pk"), order_id, "available")
            )
    if _hold_state(new) == "captured" and _hold_state(before) != "captured":
        hold = new["hold"]
        if int(hold.get("points") or 0):
            events.append(
                OutboundEvent(
                    "PointsSpent",
                    {
                        **_base(new),
                        "orderId": order_id,
                        "points": int(hold.get("points") or 0),
                        "reason": "checkout_capture",
                        "occurredAt": hold.get("capturedAt"),
                    },
                ).with_id(new.get("pk"), order_id, "spent")
            )
        if hold.get("wallet") is not None:
            events.append(
                OutboundEvent(
                    "WalletSpent",
                    {
                        **_base(new),
                        "walletProgramId": hold.get("walletFrom"),
                        "orderId": order_id,
                        "amount": str(hold["wallet"]),
                        "reason": "checkout_capture",
                        "occurredAt": hold.get("capturedAt"),
                    },
                ).with_id(new.get("pk"), order_id, "wallet-spent")
            )
    return events


def _due_events(before: Image, new: Image) -> list[OutboundEvent]:
    due = new["lastDue"]
    previous = before.get("lastDue")
    if isinstance(previous, Mapping) and previous.get("at") == due.get("at"):
        return []
    at = due.get("at")
    events: list[OutboundEvent] = []
    if int(due.get("matured") or 0):
        events.append(
            OutboundEvent(
                "PointsAvailable",
                {
                    **_base(new),
                    "points": int(due["matured"]),
                    "reason": "pending_period_ended",
                    "occurredAt": at,
                },
            ).with_id(new.get("pk"), at, "matured")
        )
    if int(due.get("expired") or 0):
        events.append(
            OutboundEvent(
                "PointsExpired",
                {
                    **_base(new),
                    "points": int(due["expired"]),
                    "reason": "expiry",
                    "occurredAt": at,
                },
            ).with_id(new.get("pk"), at, "expired")
        )
    if int(due.get("expiring") or 0):
        events.append(
            OutboundEvent(
                "PointsExpiring",
                {
                    **_base(new),
                    "points": int(due["expiring"]),
                    "expiresOn": due.get("expiresOn"),
                    "reason": "expiry_notice",
                    "occurredAt": at,
                },
            ).with_id(new.get("pk"), due.get("expiresOn"), "expiring")
        )
    return events


def _reward_events(before: Image, new: Image) -> list[OutboundEvent]:
    """``CampaignRewarded`` when a bonus is paid, ``CampaignRewardReversed`` when its order's
    cancellation takes it back."""
    detail = {
        **_base(new),
        "campaignId": new.get("campaignId"),
        "orderId": new.get("orderId"),
        "points": int(new.get("points") or 0),
        "period": new.get("period"),
        "ruleVersion": new.get("ruleVersion"),
    }
    if not before:
        reason = "order_completed"
        if new.get("occasion"):  # a gift of the member's calendar (the birthday), no order
            reason = str(new.get("campaignId"))
            detail.update(occasion=new.get("occasion"), expiresOn=new.get("expiresOn"))
        if new.get("referral"):  # a referral: the order is the referred customer's first
            reason = "referral"
            detail.update(
                role=new.get("referral"),
                referredId=new.get("referredId"),
                referrerId=new.get("referrerId"),
            )
        return [
            OutboundEvent(
                "CampaignRewarded",
                {**detail, "reason": reason, "occurredAt": new.get("occurredAt")},
            ).with_id(new.get("pk"), new.get("sk"), "rewarded")
        ]
    if new.get("state") == "reversed" and before.get("state") != "reversed":
        return [
            OutboundEvent(
                "CampaignRewardReversed",
                {**detail, "reason": "order_cancelled", "occurredAt": new.get("reversedAt")},
            ).with_id(new.get("pk"), new.get("sk"), "reversed")
        ]
    return []


def _donation_events(before: Image, new: Image) -> list[OutboundEvent]:
    """``DonationMade`` when a donation item is written (once: its key is put once);
    ``DonationReversed`` when a round-up's goes from donated to reversed (once: conditioned)."""
    reversed_now = (before or {}).get("state") == "donated" and new.get("state") == "reversed"
    if (before and not reversed_now) or (not before and new.get("state") != "donated"):
        return []
    cents, matched = int(new.get("cents") or 0), int(new.get("matchedCents") or 0)
    detail = {
        **_base(new),
        "donationId": new.get("donationId"),
        "campaignId": new.get("campaignId"),
        "causeId": new.get("causeId"),
        "source": new.get("source"),
        "points": int(new.get("points") or 0),
        "amount": {"amount": f"{cents / 100:.2f}", "currency": new.get("currency")},
        "matched": {"amount": f"{matched / 100:.2f}", "currency": new.get("currency")},
        "orderId": new.get("orderId"),
        "ruleVersion": new.get("ruleVersion"),
        "reason": str(new.get("source")),
        "occurredAt": new.get("occurredAt"),
    }
    if reversed_now:
        detail = {**detail, "reason": "order_cancelled", "occurredAt": new.get("reversedAt")}
        event = OutboundEvent("DonationReversed", detail)
        return [event.with_id(new.get("pk"), new.get("sk"), "reversed")]
    return [OutboundEvent("DonationMade", detail).with_id(new.get("pk"), new.get("sk"), "donated")]
