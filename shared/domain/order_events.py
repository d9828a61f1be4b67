"""Outbound events of shopper programs' orders, derived from committed order item changes (see
``outbound.py``); customer programs' orders have theirs in ``customer_events.py``.

- ``PointsEarned``: a shopper's order item becomes ``credited``: its points, batch size and rule
  version, so that apps can show points as they come (the tier follows later, from the stream's
  evaluation: ``MemberTierChanged``).

Each carries a deterministic ``eventId`` (the same for every publication of the same change).
"""

from __future__ import annotations

from .keys import ORDER_SK_PREFIX
from .outbound import Image, OutboundEvent


def shopper_order_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    if new is None or not str(new.get("sk", "")).startswith(ORDER_SK_PREFIX):
        return []
    if new.get("shopperId"):  # a customer program's order (customer_events.py)
        return []
    before = old or {}
    if new.get("status") != "credited" or before.get("status") == "credited":
        return []
    if not new.get("completedAt"):
        return []
    pk = str(new.get("pk", ""))
    parts = pk.split("#", 2)
    order_id = new.get("orderId")
    detail = {
        "programId": parts[1] if len(parts) > 2 else None,
        "memberId": new.get("memberId"),
        "orderId": order_id,
        "points": int(new.get("points") or 0),
        "status": "available",
        "ruleVersion": new.get("ruleVersion"),
        "reason": "order_completed",
        "occurredAt": new.get("completedAt"),
    }
    if new.get("batchSize") is not None:
        detail["batchSize"] = int(new["batchSize"])
    return [OutboundEvent("PointsEarned", detail).with_id(pk, order_id, "earned")]
