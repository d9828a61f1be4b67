"""The answer of ``GET /v1/admin/stats`` (``functions/admin_api``), built from
``shared.logic.stats.ProgramStats``: counts as integers, money as decimal strings in the
program's currency, a share as a decimal string.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.stats import NO_TIER
from shared.logic.stats import ProgramStats

CENT = Decimal("0.01")
NOT_BUILT = ("donations", "matches")
"""Figures the statistics will carry once the engine has them (not built yet)."""


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    def answer_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def _money(cents: int) -> str:
    return str((Decimal(cents) * CENT).quantize(CENT))


class StatsPointsFigure(_Out):
    points: int
    value: str | None = Field(
        description="What the points are worth in the program's currency (points times the "
        "program's point value); null where points are not money (the shopper program)."
    )

    @classmethod
    def of(cls, points: int, point_value: Decimal | None) -> Self:
        if point_value is None:
            return cls(points=points, value=None)
        worth = (Decimal(points) * point_value).quantize(CENT, rounding=ROUND_HALF_EVEN)
        return cls(points=points, value=str(worth))


class StatsPoints(_Out):
    pending: StatsPointsFigure
    available: StatsPointsFigure
    held: StatsPointsFigure = Field(description="On checkout holds, not captured yet.")
    liability: StatsPointsFigure = Field(description="Pending, available and held: what is owed.")


class StatsAtRisk(_Out):
    week: str = Field(description="The ISO week (UTC), e.g. 2026-W48.")
    members: int = Field(description="Tier-at-risk notices decided this week.")


class StatsPerkUse(_Out):
    perk_id: str
    period: str = Field(description="The perk's current quota period.")
    redemptions: int = Field(description="Confirmed in the period, net of cancellations.")


class StatsCashback(_Out):
    month: str
    credited: str = Field(
        description="Credited to wallets for the month's purchases, net of refunds."
    )


class StatsCampaign(_Out):
    campaign_id: str
    period: str
    spent: int = Field(description="Points paid in the period, net of reversals.")
    budget: int
    remaining: int


class ProgramStatsView(_Out):
    """A program's live statistics, kept by the table's stream (no scan behind a request)."""

    program_id: str
    currency: str
    members: int
    members_by_tier: dict[str, int] = Field(
        description='Members by stored tier; "none": below the first tier.'
    )
    eligible: int = Field(description="Members above the rating floor.")
    eligible_share: str | None = Field(description="eligible / members, 4 decimals.")
    at_risk: StatsAtRisk
    points: StatsPoints
    wallet_credit: str = Field(description="Cashback credit in members' wallets (a liability).")
    wallet_held: str = Field(
        description="Wallet credit on checkout holds (another program's checkout), still owed."
    )
    cashback: StatsCashback
    perk_use: list[StatsPerkUse]
    campaigns: list[StatsCampaign]
    not_counted: list[str] = Field(description="Figures not kept yet: the engine lacks them.")

    @classmethod
    def of(cls, stats: ProgramStats) -> Self:
        value = stats.point_value
        share = None
        if stats.members:
            share = str(
                (Decimal(stats.eligible) / Decimal(stats.members)).quantize(Decimal("0.0001"))
            )
        return cls(
            program_id=stats.program_id,
            currency=stats.currency,
            members=stats.members,
            members_by_tier={
                ("none" if tier == NO_TIER else tier): count
                for tier, count in stats.by_tier.items()
            },
            eligible=stats.eligible,
            eligible_share=share,
            at_risk=StatsAtRisk(week=stats.at_risk_week, members=stats.at_risk),
            points=StatsPoints(
                pending=StatsPointsFigure.of(stats.pending, value),
                available=StatsPointsFigure.of(stats.available, value),
                held=StatsPointsFigure.of(stats.held, value),
                liability=StatsPointsFigure.of(stats.pending + stats.available + stats.held, value),
            ),
            wallet_credit=_money(stats.wallet_cents),
            wallet_held=_money(stats.wallet_held_cents),
            cashback=StatsCashback(
                month=stats.cashback_month, credited=_money(stats.cashback_cents)
            ),
            perk_use=[
                StatsPerkUse(perk_id=use.perk_id, period=use.period, redemptions=use.redemptions)
                for use in stats.perk_use
            ],
            campaigns=[
                StatsCampaign(
                    campaign_id=spend.campaign_id,
                    period=spend.period,
                    spent=spend.spent,
                    budget=spend.budget,
                    remaining=max(spend.budget - spend.spent, 0),
                )
                for spend in stats.campaigns
            ],
            not_counted=list(NOT_BUILT),
        )
