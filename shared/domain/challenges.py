"""Weekly challenges (docs/campaigns.md): "so many credited orders in a calendar week" pays a
bonus, once a week, to the order that makes the count.

The week is the member's: Monday to Sunday in the member's profile zone (``timeZone``), else the
program's. Each credited order is counted once (its own item, ``CHORDER#``, remembers the week
it counted in, so a redelivery, or a zone changed since, never counts it twice); the week's item
(``CHALLENGE#``) holds the count ``n`` and whether the bonus was paid (``paid``). The order that
takes ``n`` to the target while nothing is paid earns the bonus; DynamoDB checks both in the same
transaction, so two orders completing at once never pay twice. Pure: the writes are in
``shared.dal.challenges``, the sequencing in ``shared.logic.challenges``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from msgspec import Struct

from .birthday import member_zone
from .customer import available_attr
from .periods import period_key
from .program import Campaign, CampaignPeriod, Program
from .timeutil import local_day, to_utc_iso

COUNTED = "counted"
REVERSED = "reversed"


class Week(Struct, frozen=True):
    key: str
    """``2026-W48`` (ISO week: Monday to Sunday)."""
    start: date
    end: date
    """The week's Sunday (its last day)."""


def week_of(day: date) -> Week:
    monday = day - timedelta(days=day.weekday())
    return Week(period_key(day, CampaignPeriod.WEEK), monday, monday + timedelta(days=6))


def member_week(moment: datetime, member: Mapping[str, Any], program: Program) -> Week:
    """The calendar week of ``moment`` on the member's clock (profile zone, else program's)."""
    return week_of(local_day(moment, member_zone(member, program)))


def weekly_challenges(program: Program) -> list[Campaign]:
    return [campaign for campaign in program.campaigns if campaign.is_weekly_challenge]


class ChallengeOrder(Struct, frozen=True):
    """One credited order to count toward a weekly challenge."""

    campaign: Campaign
    order_id: str
    week: Week
    lot: str
    """``av{YYYYMM}`` of the day counted: the week's bonus, when this order completes the week,
    is available at once (it expires with the points that became available that month)."""
    paid_on: date
    """The day counted (the program's zone)."""
    occurred_at: str
    rule_version: str

    @property
    def target(self) -> int:
        assert self.campaign.when.orders_per_week is not None
        return self.campaign.when.orders_per_week

    @property
    def budget_period(self) -> str | None:
        budget = self.campaign.budget
        return period_key(self.week.start, budget.period) if budget else None


def plan_count(
    campaign: Campaign,
    order_id: str,
    completed_at: datetime,
    today: date,
    member: Mapping[str, Any],
    program: Program,
) -> ChallengeOrder:
    """A credited order to count, ``today`` (the program's zone): the week's bonus it may
    complete is paid available at once."""
    return ChallengeOrder(
        campaign=campaign,
        order_id=order_id,
        week=member_week(completed_at, member, program),
        lot=available_attr(today),
        paid_on=today,
        occurred_at=to_utc_iso(completed_at),
        rule_version=program.rule_version,
    )


class ChallengeReversal(Struct, frozen=True):
    """An order counted toward a week, cancelled or wholly refunded: the week's count goes down;
    when the week then holds fewer orders than the target and its bonus was paid, the bonus is
    taken back, whichever order of the week it was paid with (from the balance; from its pending
    lot for a bonus paid while bonuses joined their order's pending lot). So a week's bonus is
    paid exactly while the week holds the target."""

    campaign_id: str
    order_id: str
    week: str
    n: int
    """The week's count as read (the reversal's condition: every change of it is conditioned)."""
    paid_by: str | None
    """The order the week's bonus was paid with, when this reversal takes it back."""
    points: int
    lot: str
    from_pending: bool
    budget_period: str | None


def plan_challenge_reversal(
    marker: Mapping[str, Any],
    week_item: Mapping[str, Any],
    reward: Mapping[str, Any] | None,
    member: Mapping[str, Any],
    target: int,
) -> ChallengeReversal | None:
    """None: the order was not counted, or its reversal was made already. ``reward``: the
    week's bonus (the reward item of the order the week item names in ``paidBy``)."""
    if marker.get("state") != COUNTED:
        return None
    n = int(week_item.get("n") or 0)
    take = (
        reward is not None
        and reward.get("state") == "credited"
        and bool(week_item.get("paid"))
        and n - 1 < target
    )
    taken: Mapping[str, Any] = reward if take and reward is not None else {}
    points = int(taken.get("points") or 0)
    lot = str(taken.get("lot") or "")
    in_lot = int(member.get(lot) or 0) if lot.startswith("pd") else 0
    return ChallengeReversal(
        campaign_id=str(marker["campaignId"]),
        order_id=str(marker["orderId"]),
        week=str(marker["week"]),
        n=n,
        paid_by=str(taken["orderId"]) if take else None,
        points=points,
        lot=lot,
        from_pending=take and in_lot >= points,
        budget_period=str(taken["budgetPeriod"]) if taken.get("budgetPeriod") else None,
    )
