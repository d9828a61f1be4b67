"""Tier arithmetic: which tier a number of points reaches."""

from __future__ import annotations

from .program import Program, Tier


def tier_for(points: int, program: Program) -> Tier | None:
    """The highest tier whose threshold ``points`` reaches; None below the first tier."""
    reached = [tier for tier in program.tiers if points >= tier.min_points]
    return reached[-1] if reached else None


def points_to_next_tier(points: int, program: Program) -> int | None:
    """Points missing to the next tier; None at the top tier."""
    for tier in program.tiers:
        if points < tier.min_points:
            return tier.min_points - points
    return None
