"""Use cases of the member API's reads, and the ledger's read model.

- ``GET /v1/me``: the member's standing, from one item read whatever their history.
- ``GET /v1/me/ledger``: points entries, newest first, paginated, from the ledger read model:
  one small item per entry (``LEDGER#{occurredAt}#{orderId}#{credit|reversal}``) projected from
  the order items by the stream-fed ``event_publisher`` (``shared.logic.ledger``), so that
  recording an order stays at 4 write units and no index is written on the order path.
- ``GET /v1/members/{memberId}/entitlements`` and ``/badge``: what services and customers may
  know, from one eventually consistent item read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.gates import (
    COUNTS,
    HINTS,
    floors,
    gate_cap,
    gate_met,
    judged,
    standing_of,
)
from shared.domain.keys import LEDGER_SK_PREFIX
from shared.domain.perks import (
    AccessReason,
    Badge,
    badge_of,
    effective_tier,
    perk_access,
    perks_of_kind,
)
from shared.domain.program import PerkKind, Program, WindowMode
from shared.domain.tiers import (
    TierReason,
    active_override,
    earned_tier,
    is_eligible,
    points_to_next_tier,
    rank,
    tier_drops_on,
    tier_for,
)
from shared.domain.timeutil import (
    local_day,
    previous_quarter,
    quarter_of,
    quarter_start,
    to_utc_iso,
)
from shared.domain.window import period_points, window_points
from shared.domain.zones import for_member
from shared.logic.ledger import LedgerEntry
from shared.logic.ports import PartitionPages, page_after


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value if isinstance(value, int | float) else None


# -- GET /v1/me -----------------------------------------------------------------------------------


class Rating(_Out):
    average: float | None = Field(description="Average of the counted ratings (null: none yet).")
    count: int


class GateView(_Out):
    gate: str = Field(description="`completionRate` or `onTimeRate`.")
    tier: str = Field(description="The tier that asks for it.")
    value: Decimal | None = Field(
        description="The member's share, rounded down to 3 places (null: no events yet)."
    )
    floor: Decimal = Field(description="The share the tier asks for.")
    count: int = Field(description="Events in the window (at most the program's last N).")
    judged: bool = Field(description="False below the program's minimum count: met meanwhile.")
    met: bool
    counts: str = Field(description="What counts.")
    hint: str = Field(description="What to do to raise it.")


class Wallet(_Out):
    balance: Decimal = Field(description="Credit for future orders (cashback), e.g. 12.34.")
    held: Decimal = Field(
        default=Decimal("0.00"),
        description="On checkout holds of orders not yet completed (back if they are not).",
    )
    currency: str


class Amount(_Out):
    amount: Decimal = Field(description="e.g. 12.34")
    currency: str


class ExpiringSoon(_Out):
    points: int
    on: date = Field(description="The day they expire (the start of it, in the program's zone).")


class PointsView(_Out):
    available: int = Field(description="Spendable now (may be negative after a clawback).")
    pending: int = Field(description="Earned, available after the refund window.")
    held: int = Field(description="On checkout holds not captured yet.")
    expiring_soon: ExpiringSoon | None = Field(description="The oldest points and their expiry.")


class PlanView(_Out):
    plan: str
    name: str | None
    valid_until: str
    entitlements: list[str]


class PeriodView(_Out):
    """Fixed-period mode: the period under way, what it has earned so far, and what that earns
    next period. The current ``tier`` is the one last period's points set (or this period's,
    if already higher: upgrades are immediate)."""

    period: str = Field(description="The period under way, e.g. `2026-Q4`.")
    starts_on: date = Field(description="Its first day (the program's time zone).")
    ends_on: date = Field(description="Its last day; the next period starts the day after.")
    points: int = Field(description="Points earned in this period so far.")
    next_period_tier: str | None = Field(
        description="The tier this period's points earn for the next period, as they stand "
        "(null below the first tier); the rating floor and quality gates still apply then."
    )
    points_to_next_period_tier: int | None = Field(
        description="Points this period still needs for a higher tier next period (null at "
        "the top tier)."
    )
    previous_points: int = Field(
        description="Last period's points: they set the tier held through this period."
    )


def period_view(attributes: Mapping[str, Any], today: date, program: Program) -> PeriodView | None:
    """``period`` of ``GET /v1/me``: in fixed mode (quarters), this quarter's points so far and
    the tier they earn for the next quarter; None in rolling mode."""
    if program.window.mode is not WindowMode.FIXED:
        return None
    year, quarter = quarter_of(today)
    start = quarter_start(today)
    end = quarter_start(start + timedelta(days=95)) - timedelta(days=1)
    points = period_points(attributes, year, quarter)
    earned = tier_for(points, program)
    return PeriodView(
        period=f"{year}-Q{quarter}",
        starts_on=start,
        ends_on=end,
        points=points,
        next_period_tier=earned.id if earned else None,
        points_to_next_period_tier=points_to_next_tier(points, program),
        previous_points=period_points(attributes, *previous_quarter(year, quarter)),
    )


class MemberView(_Out):
    program_id: str
    tier: str | None = Field(description="Null below the first tier, and while ineligible.")
    window_points: int
    points_to_next_tier: int | None = Field(description="Null at the top tier.")
    projected_tier: str | None = Field(
        description="The tier in projectedOn's days, with no new points."
    )
    projected_on: date
    tier_drops_on: date | None = Field(
        default=None,
        description="The day the tier would drop with no more points (the member's local day, "
        "after any grace period; fixed periods: a period's start). Null without a tier, or if "
        "it cannot drop.",
    )
    lifetime_points: int
    orders_completed: int
    rating: Rating
    eligible: bool
    eligibility_reason: str
    tier_reason: str | None = Field(
        default=None,
        description="Why the tier is what it is: `admin_override` while an administrator's "
        "override sets it, `quality_gate_unmet` while a gate holds it below what the points "
        "reach, `rating_ineligible` below the rating floor, else the reason of the last change "
        "(null: none yet).",
    )
    tier_override_until: date | None = Field(
        default=None,
        description="While an administrator's tier override holds the tier (`tierReason` "
        "`admin_override`): its last day (the member's local day); null otherwise.",
    )
    gates: list[GateView] = Field(
        default_factory=list, description="Every quality gate of the program's tiers."
    )
    wallet: Wallet
    badge: Badge | None = Field(description="The public badge, while the badge perk is open.")
    period: PeriodView | None = Field(
        default=None,
        description="Fixed-period (quarter) programs: this period's points so far and the tier "
        "they earn for the next period (null in rolling mode).",
    )
    points: PointsView | None = Field(
        default=None, description="Customer programs: points that are money."
    )
    value: Amount | None = Field(
        default=None, description="Customer programs: what the available points are worth."
    )
    plus: PlanView | None = Field(
        default=None, description="Customer programs: the paid plan, while valid."
    )
    year_points: int | None = Field(
        default=None, description="Customer programs: points earned this calendar year."
    )
    status_until: date | None = Field(
        default=None, description="Customer programs: the last day the status holds."
    )


def customer_view(item: Mapping[str, Any] | None, now: datetime, program: Program) -> MemberView:
    """``GET /v1/me`` for a customer program: the status (as ``tier``), year points, and points
    as money, as they stand at ``now`` (what fell due counts even before the settlement ran)."""
    from shared.domain.customer import points_standing, points_value  # noqa: PLC0415

    attributes = item or {}
    standing = points_standing(program, attributes, now)
    today = local_day(now, program.zone)
    year_points = standing.year_points
    next_status = next((t for t in program.tiers if t.min_points > year_points), None)
    plan = standing.plan
    return MemberView(
        program_id=program.id,
        tier=standing.status.id if standing.status else None,
        window_points=year_points,
        points_to_next_tier=next_status.min_points - year_points if next_status else None,
        projected_tier=standing.status.id if standing.status else None,
        projected_on=today + timedelta(days=program.downgrade.projection_days),
        lifetime_points=int(_number(attributes.get("lifetimePoints")) or 0),
        orders_completed=int(_number(attributes.get("ordersCompleted")) or 0),
        rating=Rating(average=None, count=0),
        eligible=True,
        eligibility_reason="not_judged",
        wallet=Wallet(balance=Decimal("0.00"), currency=program.currency),
        badge=None,
        points=PointsView(
            available=standing.available,
            pending=standing.pending,
            held=standing.held,
            expiring_soon=ExpiringSoon(points=standing.expiring[0], on=standing.expiring[1])
            if standing.expiring
            else None,
        ),
        value=Amount.model_validate(points_value(program, max(standing.available, 0)).model_dump()),
        plus=PlanView(
            plan=plan.id,
            name=plan.name,
            valid_until=str(standing.plan_until),
            entitlements=list(plan.entitlements),
        )
        if plan is not None
        else None,
        year_points=year_points,
        status_until=standing.status_until,
    )


def member_view(item: Mapping[str, Any] | None, now: datetime, program: Program) -> MemberView:
    """The ``GET /v1/me`` body. A member never seen before gets the zero view, not a 404.
    Days are the member's (their zone, else the program's), read from the same item."""
    attributes = item or {}
    program = for_member(program, attributes)
    today = local_day(now, program.zone)
    points = window_points(attributes, today, program)
    eligible = is_eligible(attributes)
    projected_day = today + timedelta(days=program.downgrade.projection_days)
    projected = earned_tier(attributes, projected_day, program) if eligible else None
    projected = gate_cap(projected, attributes, program)
    balance = Decimal(str(attributes.get("walletBalance", 0))).quantize(Decimal("0.01"))
    held = Decimal(str(attributes.get("walletHeld", 0))).quantize(Decimal("0.01"))
    # The stored tier can lag an upgrade by the seconds the stream takes; never show less
    # than what the points earn today.
    tier = effective_tier(attributes, today, program)
    override = active_override(attributes, today)
    return MemberView(
        program_id=program.id,
        tier=tier,
        window_points=points,
        points_to_next_tier=points_to_next_tier(points, program),
        projected_tier=projected,
        projected_on=projected_day,
        tier_drops_on=tier_drops_on(attributes, today, tier, program),
        lifetime_points=int(_number(attributes.get("lifetimePoints")) or 0),
        orders_completed=int(_number(attributes.get("ordersCompleted")) or 0),
        rating=Rating(
            average=_number(attributes.get("ratingAverage")),
            count=int(_number(attributes.get("ratingCount")) or 0),
        ),
        eligible=eligible,
        eligibility_reason=str(attributes.get("eligibilityReason", "not_judged")),
        tier_reason=tier_reason(attributes, today, program),
        tier_override_until=override[1] if override else None,
        gates=gate_views(attributes, program),
        wallet=Wallet(balance=balance, held=held, currency=program.currency),
        badge=badge_of(attributes, today, program),
        period=period_view(attributes, today, program),
    )


def gate_views(attributes: Mapping[str, Any], program: Program) -> list[GateView]:
    """Every gate of every tier, in tier order, with the member's standing against it."""
    views = []
    last_n = program.quality_gates.last_n
    for tier in program.tiers:
        for name, floor in floors(tier).items():
            standing = standing_of(attributes, name)
            views.append(
                GateView(
                    gate=name,
                    tier=tier.id,
                    value=standing.rate(),
                    floor=floor,
                    count=standing.count,
                    judged=judged(standing, program),
                    met=gate_met(standing, floor, program),
                    counts=COUNTS[name].format(n=last_n),
                    hint=HINTS[name],
                )
            )
    return views


def tier_reason(attributes: Mapping[str, Any], today: date, program: Program) -> str | None:
    """Why the member holds the tier shown (``tierReason``)."""
    if active_override(attributes, today) is not None:
        return TierReason.ADMIN_OVERRIDE.value
    if not is_eligible(attributes):
        return TierReason.RATING_INELIGIBLE.value
    stored = attributes.get("tier")
    earned = earned_tier(attributes, today, program)
    reached = earned if rank(earned, program) > rank(stored, program) else stored
    reached = str(reached) if reached else None
    if rank(gate_cap(reached, attributes, program), program) < rank(reached, program):
        return TierReason.QUALITY_GATE_UNMET.value
    reason = attributes.get("tierReason")
    return str(reason) if reason else None


# -- the ledger's read model ----------------------------------------------------------------------


class LedgerPage(_Out):
    entries: list[LedgerEntry] = Field(description="Newest first.")
    next_token: str | None = Field(description="Pass as nextToken for the next page.")


def ledger_page(
    member_id: str, limit: int, token: str | None, program: Program, repo: PartitionPages
) -> LedgerPage:
    """``GET /v1/me/ledger``: one eventually consistent Query of the member's ledger entries,
    newest first (the read model is itself a second behind the orders)."""
    page = repo.page(
        program.id,
        member_id,
        LEDGER_SK_PREFIX,
        limit,
        page_after(token, LEDGER_SK_PREFIX),
        consistent=False,
    )
    return LedgerPage(
        entries=[LedgerEntry.model_validate(item) for item in page.items],
        next_token=page.next_token,
    )


# -- services and customers -----------------------------------------------------------------------


class Entitlement(_Out):
    perk_id: str
    granted: bool
    reason: AccessReason
    lead_minutes: int | None = Field(
        default=None,
        description="A head start (early batch access): how many minutes early, when granted.",
    )


class EntitlementsView(_Out):
    member_id: str
    program_id: str
    tier: str | None
    eligible: bool
    entitlements: list[Entitlement]
    checked_at: str


def entitlements_view(
    member_id: str, item: Mapping[str, Any] | None, now: datetime, program: Program
) -> EntitlementsView:
    """``GET /v1/members/{memberId}/entitlements``: the entitlement perks (early batch access)
    and whether each is granted now, from the member item alone (on the member's clock)."""
    attributes = item or {}
    program = for_member(program, attributes)
    today = local_day(now, program.zone)
    entitlements = []
    if program.memberships:
        # Customer programs: the paid plans' entitlements (free delivery), while the plan holds.
        from shared.domain.customer import standing_of  # noqa: PLC0415

        held = program.membership(standing_of(program, attributes, now).plan)
        for plan in program.memberships:
            for name in plan.entitlements:
                granted = held is not None and name in held.entitlements
                reason = AccessReason.PLAN_ACTIVE if granted else AccessReason.NO_PLAN
                entitlements.append(Entitlement(perk_id=name, granted=granted, reason=reason))
    for perk in perks_of_kind(program, PerkKind.ENTITLEMENT):
        access = perk_access(perk, attributes, today, program)
        entitlements.append(
            Entitlement(
                perk_id=perk.id,
                granted=access.open,
                reason=access.reason,
                lead_minutes=perk.lead_minutes if access.open else None,
            )
        )
    return EntitlementsView(
        member_id=member_id,
        program_id=program.id,
        tier=effective_tier(attributes, today, program),
        eligible=is_eligible(attributes),
        entitlements=entitlements,
        checked_at=to_utc_iso(now),
    )


class MemberBadge(Badge):
    model_config = ConfigDict(title="MemberBadge")

    member_id: str
    program_id: str


def public_badge(
    member_id: str, item: Mapping[str, Any] | None, now: datetime, program: Program
) -> MemberBadge | None:
    """``GET /v1/members/{memberId}/badge``: the badge if the member holds one, else None."""
    program = for_member(program, item)
    badge = badge_of(item or {}, local_day(now, program.zone), program)
    if badge is None:
        return None
    return MemberBadge(member_id=member_id, program_id=program.id, **badge.model_dump())


# -- HTTP glue shared by member_api and perk_redemption --------------------------------------------


# -- campaigns ----------------------------------------------------------------------------------


class Challenge(_Out):
    campaign_id: str
    name: str
    points: int = Field(description="The bonus an order that qualifies earns.")
    eco_choice: str | None = Field(
        default=None, description="The choice an order must carry (ecoChoices), if any."
    )
    period: str = Field(description="The current period the member's limit counts in.")
    earned: int = Field(description="Bonuses earned in this period.")
    limit: int
    remaining: int
    orders_needed: int | None = Field(
        default=None, description="A weekly challenge: the credited orders a week needs."
    )
    orders: int | None = Field(
        default=None, description="A weekly challenge: the member's credited orders this week."
    )
    week_start: date | None = Field(
        default=None, description="A weekly challenge: this week's Monday (the member's zone)."
    )
    week_end: date | None = Field(
        default=None, description="A weekly challenge: this week's Sunday (its last day)."
    )


class ChallengesView(_Out):
    program_id: str
    challenges: list[Challenge]


class CampaignCounts(Protocol):
    def campaign_counts(
        self, program_id: str, member_id: str, sks: list[str]
    ) -> dict[str, int]: ...

    def campaign_items(
        self, program_id: str, member_id: str, sks: list[str]
    ) -> dict[str, dict[str, Any]]: ...

    def member_zone_item(self, program_id: str, member_id: str) -> dict[str, Any]: ...


def challenges_view(
    member_id: str, now: datetime, program: Program, store: CampaignCounts
) -> ChallengesView:
    """``GET /v1/me/challenges``: each campaign with the member's progress in its current period
    (the program's zone; a weekly challenge's week is the member's): one eventually consistent
    item read per campaign, none without, and one of the member's zone with weekly challenges."""
    from shared.domain.keys import campaign_count_sk  # noqa: PLC0415
    from shared.domain.periods import period_key  # noqa: PLC0415

    today = local_day(now, program.zone)
    # Challenges are the campaigns an order earns; a scheduled gift (the birthday) is not one.
    campaigns = [c for c in program.campaigns if c.per_order]
    periods = {c.id: period_key(today, c.per_member.period) for c in campaigns}
    keys = {c.id: campaign_count_sk(c.id, periods[c.id]) for c in campaigns}
    counts = store.campaign_counts(program.id, member_id, list(keys.values())) if keys else {}
    challenges = []
    for campaign in campaigns:
        earned = counts.get(keys[campaign.id], 0)
        limit = campaign.per_member.count
        challenges.append(
            Challenge(
                campaign_id=campaign.id,
                name=campaign.name or campaign.id,
                points=campaign.points,
                eco_choice=campaign.when.eco_choice,
                period=periods[campaign.id],
                earned=earned,
                limit=limit,
                remaining=max(0, limit - earned),
            )
        )
    challenges.extend(_weekly(member_id, now, program, store))
    return ChallengesView(program_id=program.id, challenges=challenges)


def _weekly(
    member_id: str, now: datetime, program: Program, store: CampaignCounts
) -> list[Challenge]:
    """Each weekly challenge: the member's credited orders this week, and whether it paid."""
    from shared.domain.challenges import member_week, weekly_challenges  # noqa: PLC0415
    from shared.domain.keys import challenge_week_sk  # noqa: PLC0415

    weekly = weekly_challenges(program)
    if not weekly:
        return []
    week = member_week(now, store.member_zone_item(program.id, member_id), program)
    keys = {c.id: challenge_week_sk(c.id, week.key) for c in weekly}
    items = store.campaign_items(program.id, member_id, list(keys.values()))
    found = []
    for campaign in weekly:
        item = items.get(keys[campaign.id], {})
        earned = 1 if item.get("paid") else 0
        found.append(
            Challenge(
                campaign_id=campaign.id,
                name=campaign.name or campaign.id,
                points=campaign.points,
                period=week.key,
                earned=earned,
                limit=1,
                remaining=1 - earned,
                orders_needed=campaign.when.orders_per_week,
                orders=max(0, int(item.get("n") or 0)),
                week_start=week.start,
                week_end=week.end,
            )
        )
    return found
