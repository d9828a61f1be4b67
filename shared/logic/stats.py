"""Live program statistics: the stream keeps counters (``shared.logic.stats_counting``), a
request sums them (docs/stats.md).

- ``program_stats``: ``GET /v1/admin/stats``: the program's counter items for now, this week,
  this month and the perks' and campaigns' current periods, every shard, in one batch read,
  summed; plus the campaigns' budget items. The same handful of items whatever the number of
  members or orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from msgspec import Struct

from shared.domain.keys import campaign_budget_key
from shared.domain.periods import period_key
from shared.domain.program import PerkKind, Program, QuotaPeriod
from shared.domain.stats import (
    AT_RISK,
    AVAILABLE,
    CASHBACK_CENTS,
    ELIGIBLE,
    HELD,
    MEMBERS,
    NO_TIER,
    NOW,
    PENDING,
    REDEEMED_PREFIX,
    SHARDS,
    TIER_PREFIX,
    WALLET_CENTS,
    WALLET_HELD_CENTS,
    period_bucket,
    stats_pk,
    week_of,
)
from shared.domain.timeutil import local_day

Key = tuple[str, str]


class StatsStore(Protocol):
    """Where the counters are read (``shared.dal.stats.StatsRepository``)."""

    def get_many(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """The items with these keys (absent ones are left out)."""
        ...


class PerkUse(Struct, frozen=True):
    perk_id: str
    period: str
    redemptions: int


class CampaignSpend(Struct, frozen=True):
    campaign_id: str
    period: str
    spent: int
    budget: int


class ProgramStats(Struct, frozen=True):
    """A program's figures, summed over the shards (points in points, money in cents)."""

    program_id: str
    currency: str
    members: int
    by_tier: dict[str, int]
    eligible: int
    at_risk_week: str
    at_risk: int
    pending: int
    available: int
    held: int
    point_value: Decimal | None
    """What a point is worth (customer programs), None where points are not money."""
    wallet_cents: int
    wallet_held_cents: int
    """Wallet credit on checkout holds (still owed until captured)."""
    cashback_month: str
    cashback_cents: int
    perk_use: list[PerkUse]
    campaigns: list[CampaignSpend]


def _sum(items: Mapping[Key, Mapping[str, Any]], program_id: str, bucket: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for shard in range(SHARDS):
        for name, value in items.get((stats_pk(program_id, shard), bucket), {}).items():
            if name in {"pk", "sk"} or isinstance(value, str):
                continue
            total[name] = total.get(name, 0) + int(value)
    return total


def program_stats(program: Program, store: StatsStore, now: datetime) -> ProgramStats:
    """The program's live statistics: one batch read of every shard's current counter items
    and the campaigns' current budget items."""
    today = local_day(now, ZoneInfo(program.time_zone))
    week = period_bucket(week_of(now.date()))
    month = period_key(today, QuotaPeriod.MONTH)
    perk_periods = {
        perk.id: period_key(today, perk.quota.period)
        for perk in program.perks
        if perk.quota is not None and perk.kind is not PerkKind.CASHBACK
    }
    buckets = {NOW, week, period_bucket(month)} | {period_bucket(p) for p in perk_periods.values()}
    budgets = {
        campaign.id: (campaign, period_key(today, campaign.budget.period))
        for campaign in program.campaigns
        if campaign.budget is not None
    }
    keys: list[Key] = [
        (stats_pk(program.id, shard), bucket)
        for bucket in sorted(buckets)
        for shard in range(SHARDS)
    ]
    budget_keys = {
        campaign_id: campaign_budget_key(program.id, campaign_id, period)
        for campaign_id, (_, period) in budgets.items()
    }
    items = store.get_many(keys + list(budget_keys.values()))
    state = _sum(items, program.id, NOW)
    tiers = [NO_TIER, *(tier.id for tier in program.tiers)]
    by_tier = {tier: state.get(f"{TIER_PREFIX}{tier}", 0) for tier in tiers}
    for name, value in state.items():  # a tier the program no longer has
        if name.startswith(TIER_PREFIX) and name[len(TIER_PREFIX) :] not in by_tier:
            by_tier[name[len(TIER_PREFIX) :]] = value
    perk_use = [
        PerkUse(
            perk_id=perk_id,
            period=period,
            redemptions=_sum(items, program.id, period_bucket(period)).get(
                f"{REDEEMED_PREFIX}{perk_id}", 0
            ),
        )
        for perk_id, period in perk_periods.items()
    ]
    campaigns = []
    for campaign_id, (campaign, period) in budgets.items():
        assert campaign.budget is not None
        spent = items.get(budget_keys[campaign_id], {}).get("spent", 0)
        campaigns.append(
            CampaignSpend(
                campaign_id=campaign_id,
                period=period,
                spent=int(spent),
                budget=campaign.budget.points,
            )
        )
    return ProgramStats(
        program_id=program.id,
        currency=program.currency,
        members=state.get(MEMBERS, 0),
        by_tier=by_tier,
        eligible=state.get(ELIGIBLE, 0),
        at_risk_week=week[len(period_bucket("")) :],
        at_risk=_sum(items, program.id, week).get(AT_RISK, 0),
        pending=state.get(PENDING, 0),
        available=state.get(AVAILABLE, 0),
        held=state.get(HELD, 0),
        point_value=program.points.value if program.points is not None else None,
        wallet_cents=state.get(WALLET_CENTS, 0),
        wallet_held_cents=state.get(WALLET_HELD_CENTS, 0),
        cashback_month=month,
        cashback_cents=_sum(items, program.id, period_bucket(month)).get(CASHBACK_CENTS, 0),
        perk_use=perk_use,
        campaigns=campaigns,
    )
