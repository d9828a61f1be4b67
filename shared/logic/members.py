"""Use case: what a member sees of their own standing (``GET /v1/me``), from one item read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.domain.program import Program
from shared.domain.tiers import earned_tier, is_eligible, points_to_next_tier
from shared.domain.timeutil import local_day
from shared.domain.window import window_points


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value if isinstance(value, int | float) else None


def member_view(item: Mapping[str, Any] | None, now: datetime, program: Program) -> dict[str, Any]:
    """The ``GET /v1/me`` body. A member never seen before gets the zero view, not a 404."""
    attributes = item or {}
    today = local_day(now, program.zone)
    points = window_points(attributes, today, program)
    eligible = is_eligible(attributes)
    projected_day = today + timedelta(days=program.downgrade.projection_days)
    projected = earned_tier(attributes, projected_day, program) if eligible else None
    tier = attributes.get("tier")
    # The stored tier can lag an upgrade by the seconds the stream takes; never show less than
    # what the points earn today.
    earned_now = earned_tier(attributes, today, program) if eligible else None
    if earned_now is not None and tier is None:
        tier = earned_now
    return {
        "programId": program.id,
        "tier": tier,
        "windowPoints": points,
        "pointsToNextTier": points_to_next_tier(points, program),
        "projectedTier": projected,
        "projectedOn": projected_day.isoformat(),
        "lifetimePoints": _number(attributes.get("lifetimePoints")) or 0,
        "ordersCompleted": _number(attributes.get("ordersCompleted")) or 0,
        "rating": {
            "average": _number(attributes.get("ratingAverage")),
            "count": _number(attributes.get("ratingCount")) or 0,
        },
        "eligible": eligible,
        "eligibilityReason": attributes.get("eligibilityReason", "not_judged"),
        "wallet": {
            "balance": _number(attributes.get("walletBalance")) or 0,
            "currency": program.currency,
        },
        "badge": None,
    }
