"""Campaigns: bonuses as program data (docs/campaigns.md).

A campaign says which orders earn it (``when``), how many points (``points``), how many times a
member may earn it per period (``perMember``) and, optionally, what it may pay in all per period
(``budget``). An order that qualifies earns the bonus once, in one transaction with the member's
count for the period and the campaign's budget, each conditioned so that neither is ever
exceeded, however many orders arrive at once. Pure: the rules here, the writes in
``shared.dal.campaigns``, the sequencing in ``shared.logic.campaigns``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from msgspec import Struct

from .customer import available_attr
from .events import OrderCompleted
from .periods import period_key
from .program import Campaign, Program
from .timeutil import local_day, to_utc_iso

REWARDED = "credited"
REVERSED = "reversed"


class RewardPlan(Struct, frozen=True):
    """One campaign's bonus for one order."""

    campaign: Campaign
    order_id: str
    points: int
    period: str
    """The member's count's period (``perMember.period``) of the order's local day."""
    budget_period: str | None
    lot: str
    """``av{YYYYMM}`` of the day it is paid: a bonus is available at once (it expires with the
    points that became available that month)."""
    paid_on: date
    """The day it is paid (the program's zone)."""
    occurred_at: str
    rule_version: str

    @property
    def limit(self) -> int:
        return self.campaign.per_member.count

    @property
    def budget(self) -> int | None:
        return self.campaign.budget.points if self.campaign.budget else None


def qualifying(program: Program, event: OrderCompleted) -> list[Campaign]:
    """The program's campaigns the order qualifies for (a bonus per order; the weekly
    challenges count orders: ``shared.domain.challenges``)."""
    choices = set(event.eco_choices)
    return [
        campaign
        for campaign in program.campaigns
        if campaign.per_order
        and (campaign.when.eco_choice is None or campaign.when.eco_choice in choices)
    ]


def plan_reward(
    campaign: Campaign, event: OrderCompleted, today: date, program: Program
) -> RewardPlan:
    """The bonus of a credited order, paid ``today`` (the program's zone): available at once,
    whether the order's own points are still pending or not."""
    day: date = local_day(event.completed_at, program.zone)
    budget = campaign.budget
    return RewardPlan(
        campaign=campaign,
        order_id=event.order_id,
        points=campaign.points,
        period=period_key(day, campaign.per_member.period),
        budget_period=period_key(day, budget.period) if budget else None,
        lot=available_attr(today),
        paid_on=today,
        occurred_at=to_utc_iso(event.completed_at),
        rule_version=program.rule_version,
    )


class RewardReversal(Struct, frozen=True):
    """Taking back a bonus whose order was cancelled or wholly refunded."""

    campaign_id: str
    order_id: str
    points: int
    period: str
    budget_period: str | None
    lot: str
    from_pending: bool
    """The bonus is still in a pending lot (bonuses paid before they became available at once
    joined their order's pending lot); else it is taken from the balance, which may go below
    zero, as a refund's clawback does."""


def plan_reversal(reward: Mapping[str, Any], member: Mapping[str, Any]) -> RewardReversal | None:
    """How to take back a stored bonus (None: already taken back)."""
    if reward.get("state") != REWARDED:
        return None
    points = int(reward.get("points") or 0)
    lot = str(reward.get("lot") or "")
    in_lot = int(member.get(lot) or 0) if lot.startswith("pd") else 0
    return RewardReversal(
        campaign_id=str(reward["campaignId"]),
        order_id=str(reward["orderId"]),
        points=points,
        period=str(reward["period"]),
        budget_period=str(reward["budgetPeriod"]) if reward.get("budgetPeriod") else None,
        lot=lot,
        from_pending=in_lot >= points,
    )
