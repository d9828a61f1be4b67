"""Earning rules: how many points an order is worth, from the program configuration."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from .program import PeakMultiplier, Program, Weekday


def _bonus_applies(bonus: PeakMultiplier, completed_at: datetime, program: Program) -> bool:
    local = completed_at.astimezone(program.zone)
    weekday = list(Weekday)[local.weekday()]
    return weekday in bonus.days and bonus.start <= local.time() < bonus.end


def order_points(program: Program, completed_at: datetime, batch_size: int) -> int:
    """Points for a completed order: ``pointsPerOrder x batchSize``, times the largest peak
    multiplier whose local time slot contains the completion (multipliers do not stack),
    rounded half up to a whole point."""
    base = Decimal(program.earning.points_per_order * batch_size)
    factors = [
        bonus.factor
        for bonus in program.earning.bonuses
        if _bonus_applies(bonus, completed_at, program)
    ]
    factor = max(factors, default=Decimal(1))
    return int((base * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))
