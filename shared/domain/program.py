"""The program configuration: a validated document, never ``if`` statements in code.

A program is loaded from a YAML or JSON file shipped in ``shared/programs/`` (later from AWS
AppConfig). Every number of the rules is a default of this model's data file, not a constant in
code.
"""

from __future__ import annotations

from datetime import date, time
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .money import Currency

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Config(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        defer_build=True,  # built on the first program load, not at import
    )


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class PeakMultiplier(_Config):
    """Multiply an order's base points when it completes inside a local time slot."""

    id: Slug
    kind: Literal["peak_multiplier"] = "peak_multiplier"
    factor: Annotated[Decimal, Field(gt=1, le=10)]
    days: tuple[Weekday, ...] = tuple(Weekday)
    start: time
    end: time

    @model_validator(mode="after")
    def _slot(self) -> PeakMultiplier:
        if self.start >= self.end:
            raise ValueError("start must be before end (slots do not cross midnight)")
        return self


MAX_DAY_POINTS = 99_999
"""The most points one member can earn on one day: each day's points take 5 decimal digits of a
packed block on the member item (``shared.domain.window``), and more would spill into the next
day's digits."""
ORDERS_PER_DAY_BOUND = 288
"""More orders than a member can complete in a day (one every 5 minutes, around the clock)."""


class EarningRules(_Config):
    points_per_order: PositiveInt = 10
    max_batch_size: Annotated[int, Field(ge=1, le=10)] = 3
    bonuses: tuple[PeakMultiplier, ...] = ()
    points_per_dollar: PositiveInt | None = None
    """Customer programs: points per whole unit of the order's ``total`` (the tip is not
    counted); ``pointsPerOrder`` and the bonuses then do not apply."""

    @property
    def max_points_per_order(self) -> int:
        """An upper bound of one order's points: the largest batch with every bonus at once."""
        factor = Decimal(1)
        for bonus in self.bonuses:
            factor *= bonus.factor
        bound = self.points_per_order * self.max_batch_size * factor
        return int(bound.to_integral_value(rounding=ROUND_CEILING))

    @model_validator(mode="after")
    def _a_day_fits_its_bucket(self) -> EarningRules:
        if self.points_per_dollar is not None:
            return self  # per-dollar programs keep no packed day buckets
        if self.max_points_per_order * ORDERS_PER_DAY_BOUND > MAX_DAY_POINTS:
            raise ValueError(
                f"an order can earn up to {self.max_points_per_order} points, so "
                f"{ORDERS_PER_DAY_BOUND} orders in a day could exceed the {MAX_DAY_POINTS:,} "
                f"points a day holds: lower pointsPerOrder, maxBatchSize or the bonus factors"
            )
        return self


class WindowMode(StrEnum):
    ROLLING = "rolling"
    FIXED = "fixed"


class WindowRules(_Config):
    mode: WindowMode = WindowMode.ROLLING
    days: Annotated[int, Field(ge=1, le=366)] = 90
    """Rolling mode: the window is the last ``days`` calendar days, today included."""
    period: Literal["quarter", "year"] = "quarter"
    """Fixed mode: one period's points set the next period's tier (customer programs: the
    calendar year's, and a status reached holds through the next year)."""


Share = Annotated[Decimal, Field(gt=0, le=1)]


class TierGates(_Config):
    """Quality floors a tier asks for beyond its points (docs/tiers.md, "Quality gates"): a
    share in (0, 1] each, None for a gate the tier does not have."""

    completion_rate: Share | None = None
    """Of the member's last accepted offers, the share not declined after acceptance."""
    on_time_rate: Share | None = None
    """Of the member's last completed deliveries, the share without a ``DeliveryLate``."""


class Tier(_Config):
    id: Slug
    name: str
    min_points: PositiveInt
    multiplier: Annotated[Decimal, Field(ge=1, le=10)] = Decimal(1)
    """Customer programs: the earning multiplier of the status."""
    gates: TierGates = Field(default_factory=TierGates)


class DowngradeRules(_Config):
    grace_days: NonNegativeInt = 0
    at_risk_notice_days: NonNegativeInt = 7
    projection_days: NonNegativeInt = 7


class RatingFloor(_Config):
    floor: Annotated[Decimal, Field(ge=1, le=5)] = Decimal("4.7")
    reinstatement: Annotated[Decimal, Field(ge=1, le=5)] | None = None
    last_n: PositiveInt = 100
    min_count: NonNegativeInt = 10

    @model_validator(mode="after")
    def _reinstatement_not_below_floor(self) -> RatingFloor:
        if self.reinstatement is not None and self.reinstatement < self.floor:
            raise ValueError("reinstatement threshold must be at or above the floor")
        return self


class QualityGates(_Config):
    """How the quality gates count (the floors are each tier's ``gates``)."""

    last_n: Annotated[int, Field(ge=1, le=500)] = 100
    """How many of the latest accepted offers (deliveries) a rate is computed over."""
    min_count: NonNegativeInt = 20
    """Fewer events than this in the last N: the gate does not judge (met)."""
    late_report_slack_hours: Annotated[int, Field(ge=0, le=720)] = 24
    """A ``DeliveryLate`` marks its order's delivery when it occurred at most this many hours
    before the completion (a lateness reported while still on the way), or any time after."""


class HardToPlease(_Config):
    min_ratings: PositiveInt = 10
    window_days: PositiveInt = 180
    max_mean: Annotated[Decimal, Field(ge=1, le=5)] = Decimal("3.5")


class TipBait(_Config):
    """An order is tip-baited when its customer promised a real tip and took most of it back
    after delivery, without a reason (``orders.is_tip_baited``)."""

    min_tip_at_delivery: Annotated[Decimal, Field(ge=0)] = Decimal("5.00")
    """The smallest tip at delivery (the program's currency) that can be baited: taking back
    part of a small tip is not the promise-and-withdraw pattern the rule is for."""
    min_drop_ratio: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.5")
    """The share of the tip at delivery the customer must have taken back."""
    flag_after: PositiveInt = 3
    flag_window_days: PositiveInt = 90
    """Baited orders delivered within this many days of each other count toward the flag; a
    bait delivered longer ago than this when a bait is recorded ages out of the customer's
    record."""


class Moderation(_Config):
    hard_to_please: HardToPlease = Field(default_factory=HardToPlease)
    tip_bait: TipBait = Field(default_factory=TipBait)
    outside_control_reasons: tuple[Slug, ...] = ()
    order_wait_days: PositiveInt = 7
    """How long a rating (or tip change) that arrived before its order waits for the order."""


class QuotaPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Quota(_Config):
    count: PositiveInt
    period: QuotaPeriod


class CampaignPeriod(StrEnum):
    """The periods a campaign's per-member limit counts in: a quota's, and the week (Monday to
    Sunday, for the weekly challenges)."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class CampaignQuota(_Config):
    count: PositiveInt
    period: CampaignPeriod


class CampaignTrigger(_Config):
    """What makes a member earn a campaign's bonus: an order (``event``) or a day of the
    member's own calendar (``schedule``), never both."""

    event: Literal["OrderCompleted", "CustomerSignedUp"] | None = None
    """``CustomerSignedUp``: a referral (docs/campaigns.md): paid to the new customer and to
    the member whose code they gave once their first order has survived its pending period."""
    eco_choice: Slug | None = None
    """The order's ``ecoChoices`` holds this choice (e.g. ``no_cutlery``); None: every order."""
    schedule: Literal["birthday"] | None = None
    """``birthday``: paid by the scheduled sweep on the member's local birthday, once a year
    (docs/campaigns.md)."""
    settled_days: Annotated[int, Field(ge=0, le=366)] = 30
    """A schedule's day set or changed fewer days than this before it pays nothing that year
    (no moving a birthday to collect a second bonus)."""
    orders_per_week: Annotated[int, Field(ge=1, le=100)] | None = None
    """A weekly challenge: the bonus is paid to the order that makes this many credited orders
    in the member's calendar week (Monday to Sunday, the member's zone), once a week."""

    @model_validator(mode="after")
    def _one_trigger(self) -> CampaignTrigger:
        if self.schedule is None and self.event is None:
            object.__setattr__(self, "event", "OrderCompleted")
        if self.schedule is not None and (
            self.event is not None
            or self.eco_choice is not None
            or self.orders_per_week is not None
        ):
            raise ValueError("a campaign is triggered by an event or a schedule, not both")
        if self.event == "CustomerSignedUp" and (
            self.eco_choice is not None or self.orders_per_week is not None
        ):
            raise ValueError("ecoChoice and ordersPerWeek are for OrderCompleted campaigns")
        return self


class CampaignBudget(_Config):
    """What the campaign may pay in all, per period: concurrent rewards never overspend it."""

    points: PositiveInt
    period: QuotaPeriod


class Campaign(_Config):
    """A bonus as program data: which orders earn it, how many points, how often a member may
    earn it, and the budget it may not overspend (docs/campaigns.md)."""

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    when: CampaignTrigger = Field(default_factory=CampaignTrigger)
    points: Annotated[int, Field(ge=1, le=1_000_000)]
    per_member: CampaignQuota
    """How many times a member may earn it, and per which period (of the order's local day);
    ``week`` is for weekly challenges alone, which pay once a week."""
    budget: CampaignBudget | None = None
    expires_in_days: Annotated[int, Field(ge=1, le=366)] | None = None
    """The bonus is available at once and expires this many days after it was paid (its own
    lot, ``xp{YYYYMMDD}``); None: it joins the order's lot and expires with it."""

    @property
    def is_weekly_challenge(self) -> bool:
        return self.when.orders_per_week is not None

    @property
    def is_referral(self) -> bool:
        return self.when.event == "CustomerSignedUp"

    @property
    def per_order(self) -> bool:
        """Earned by an order's completion, one bonus per order (the eco choice)."""
        return self.when.event == "OrderCompleted" and not self.is_weekly_challenge

    @model_validator(mode="after")
    def _weekly_challenge_is_once_a_week(self) -> Campaign:
        weekly = self.per_member.period is CampaignPeriod.WEEK
        if weekly != self.is_weekly_challenge:
            raise ValueError("perMember.period week goes with when.ordersPerWeek (and only it)")
        if weekly and self.per_member.count != 1:
            raise ValueError("a weekly challenge pays once a week (perMember.count 1)")
        return self

    @model_validator(mode="after")
    def _scheduled_bonus_is_available(self) -> Campaign:
        if self.expires_in_days is not None and self.when.schedule is None:
            raise ValueError(
                "expiresInDays is for scheduled campaigns (an order's bonus joins its lot)"
            )
        return self


class PerkKind(StrEnum):
    ENTITLEMENT = "entitlement"
    BOOKING = "booking"
    CASHBACK = "cashback"
    CODE = "code"
    BADGE = "badge"


class Partner(_Config):
    """Who honours a code perk's codes: the partner's id, and the IAM principals (ARN patterns,
    ``*`` matching any run of characters) allowed to redeem them at
    ``POST /v1/partner-codes/{code}/redemption``."""

    id: Slug
    principals: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=300)], ...], Field(min_length=1)
    ]


class Perk(_Config):
    id: Slug
    kind: PerkKind
    tiers: tuple[Slug | None, ...]
    """Tier ids the perk is open to; ``null`` means members below the first tier."""
    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    """Display name (the id when absent)."""
    quota: Quota | None = None
    price_per_day: Annotated[Decimal, Field(ge=0)] | None = None
    price_per_hour: Annotated[Decimal, Field(ge=0)] | None = None
    rates: dict[str, Annotated[Decimal, Field(ge=0, le=1)]] | None = None
    """Cashback rate or discount by tier id (``none`` for members below the first tier)."""
    max_hours: Annotated[int, Field(ge=1, le=24)] | None = None
    """Booking perks: the most hours one date can be booked by the hour (default 24)."""
    advance_days: Annotated[int, Field(ge=0, le=730)] | None = None
    """Booking perks: how many days ahead a date can be booked (default 365)."""
    valid_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    """Code perks: how many days an issued code stays valid (default 30)."""
    lead_minutes: Annotated[int, Field(ge=1, le=1440)] | None = None
    """Entitlement perks that are a head start (early batch access): how many minutes early
    the member sees what others see later."""
    care_types: tuple[Slug, ...] | None = None
    """Booking perks: the kinds of care a booking must name (``careType``), so the partner
    knows whom to send; without them, a booking names none."""
    partner: Partner | None = None
    """Code perks: the partner who honours the codes (without one, nobody can redeem them)."""

    @model_validator(mode="after")
    def _kind_needs(self) -> Perk:
        if self.kind in {PerkKind.BOOKING, PerkKind.CODE} and self.quota is None:
            raise ValueError(f"a {self.kind.value} perk needs a quota")
        if self.kind is PerkKind.BOOKING and self.price_per_day is None:
            raise ValueError("a booking perk needs pricePerDay")
        if self.kind is PerkKind.CASHBACK and not self.rates:
            raise ValueError("a cashback perk needs rates")
        if self.care_types is not None and self.kind is not PerkKind.BOOKING:
            raise ValueError("only a booking perk has careTypes")
        if self.partner is not None and self.kind is not PerkKind.CODE:
            raise ValueError("only a code perk has a partner")
        return self


class MemberRole(StrEnum):
    SHOPPER = "shopper"
    """The member is the order's ``memberId``: the shopper who delivered it."""
    CUSTOMER = "customer"
    """The member is the order's ``customerId``: the customer who bought it."""


class MembershipPlan(_Config):
    """A paid membership (``MembershipChanged.plan``): while valid, a multiplier and
    entitlements."""

    id: Slug
    name: str | None = None
    multiplier: Annotated[Decimal, Field(ge=1, le=10)] = Decimal(1)
    entitlements: tuple[Slug, ...] = ()


class HoldRules(_Config):
    """Points held at checkout, like a card authorisation."""

    min_points: PositiveInt = 500
    multiple_of: PositiveInt = 100
    minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    """A hold not captured within this many minutes is released."""
    wallet_from: str | None = None
    """The program whose wallet (the member's cashback credits there) may pay at checkout too,
    beside or instead of points; the same member id in both programs."""


class PointsRules(_Config):
    """Customer programs: points that are money."""

    value: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.01")
    """What one point is worth at checkout, in the program's currency."""
    pending_days: Annotated[int, Field(ge=0, le=365)] = 14
    """Points stay pending this many whole days after the order's day (the refund window)."""
    expiry_months: Annotated[int, Field(ge=1, le=120)] = 12
    expiring_notice_days: Annotated[int, Field(ge=0, le=365)] = 30
    holds: HoldRules = Field(default_factory=HoldRules)


Amount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]


class Limits(_Config):
    """Upper bounds on what the producers report and on what cashback credits
    (docs/perks.md, README "Ingesting orders"). An event over ``max_order_total`` or
    ``max_fuel_purchase`` is refused (``InvalidInput`` naming the field), never clamped; a
    purchase's cashback is capped at ``max_cashback_per_purchase``, and the wallet credits of
    a calendar month (the program's zone) at ``max_cashback_per_month``."""

    max_order_total: Amount = Decimal("10000.00")
    max_fuel_purchase: Amount = Decimal("500.00")
    max_cashback_per_purchase: Amount = Decimal("25.00")
    max_cashback_per_month: Amount = Decimal("100.00")
    member_requests_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Requests a member may send a minute (UTC) to the routes that write for them."""
    member_requests_per_day: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    """And a day (UTC): also the bound on the idempotency records a member can make us keep."""

    @model_validator(mode="after")
    def _month_holds_a_purchase(self) -> Limits:
        if self.max_cashback_per_month < self.max_cashback_per_purchase:
            raise ValueError(
                "limits.maxCashbackPerMonth must be at least limits.maxCashbackPerPurchase"
            )
        return self


class Cause(_Config):
    """A cause members may give to (docs/campaigns.md, "Giving")."""

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=80)]
    monthly_match_budget: Amount | None = None
    """What the company matches for this cause per calendar month (the program's zone), in the
    program's currency; None: ``giving.match.monthlyBudget``."""


class MatchRules(_Config):
    ratio: Annotated[Decimal, Field(ge=0, le=10)] = Decimal(1)
    """What the company adds per unit given (1: one dollar per dollar)."""
    monthly_budget: Amount = Decimal("1000.00")
    """Per cause and calendar month: matching stops there (a donation that finds less left is
    matched in part)."""


class GivingRules(_Config):
    """Giving: points (``POST /v1/me/donations``) or an order's change (``roundUp``) to a cause,
    matched by the company up to a monthly budget per cause. Program data: causes come and go
    with the program's version."""

    campaign_id: Slug = "giving"
    min_points: PositiveInt = 100
    max_round_up: Amount = Decimal("10.00")
    """An order's round-up above this is refused (stored with the reason; the order counts)."""
    match: MatchRules = Field(default_factory=MatchRules)
    causes: Annotated[tuple[Cause, ...], Field(min_length=1, max_length=100)]

    def cause(self, cause_id: str) -> Cause | None:
        return next((cause for cause in self.causes if cause.id == cause_id), None)

    def match_budget(self, cause: Cause) -> Decimal:
        return cause.monthly_match_budget or self.match.monthly_budget


class PrizeDraw(_Config):
    """The monthly prize draw (docs/campaigns.md): one entry per credited order of the month,
    ``winners`` members drawn after it, weighted by entries, none twice."""

    winners: Annotated[int, Field(ge=1, le=100)] = 3
    prize: Annotated[str, Field(min_length=1, max_length=200)]
    """What each winner gets, as the events and messages say it (fulfilled outside the engine)."""
    entries_close_days: Annotated[int, Field(ge=0, le=28)] = 3
    """Days after the month's end that its late orders still enter; the draw runs after."""


class FieldError(ValueError):
    """A check across fields of the program that names the field at fault (the loader reports
    it as that field, where pydantic would name no field for a check of the whole model)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Dividend(_Config):
    """The annual dividend (docs/campaigns.md, "The annual dividend"): members who held ``plan``
    at some time in a calendar year are paid, once, from ``startsOn`` of the next year, ``rate``
    of that year's order totals as points at the program's point value, at most ``maxPoints``."""

    campaign_id: Slug = "annual_dividend"
    """Named on every dividend (its reward key ``REWARD#{campaignId}#{YYYY}``) and event."""
    plan: Slug
    """The paid membership plan (``MembershipChanged.plan``) whose holders are paid."""
    rate: Annotated[Decimal, Field(gt=0, le=1)]
    """The share of the year's order totals paid back (``"0.10"``: 10%)."""
    starts_on: Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")]
    """``MM-DD`` of the next year (the program's zone) from which the dividend is paid."""
    max_points: Annotated[int, Field(ge=1, le=10_000_000)]
    """The most points one member is paid for one year."""
    budget: Annotated[int, Field(ge=1)] | None = None
    """The most points paid for one year in all (None: no budget)."""

    @field_validator("starts_on")
    @classmethod
    def _a_day_of_every_year(cls, value: str) -> str:
        month, day = int(value[:2]), int(value[3:])
        if value == "02-29" or not 1 <= month <= 12:
            raise ValueError(f"{value!r} is not a day of every year (MM-DD, not 02-29)")
        try:
            date(2001, month, day)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a day of the year (MM-DD)") from exc
        return value

    def starts(self, year: int) -> date:
        """The first day (the program's zone) the dividend of ``year`` is paid."""
        return date(year + 1, int(self.starts_on[:2]), int(self.starts_on[3:]))


class Program(_Config):
    id: Slug
    version: PositiveInt
    name: str
    time_zone: str = "UTC"
    currency: Currency = "USD"
    members: MemberRole = MemberRole.SHOPPER
    """Who of an order earns in this program."""
    audience: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """The JWT audience (app client id) of the program's app: a member's token for it gets this
    program's answers. None: the program's id."""
    earning: EarningRules = Field(default_factory=EarningRules)
    window: WindowRules = Field(default_factory=WindowRules)
    tiers: tuple[Tier, ...]
    downgrade: DowngradeRules = Field(default_factory=DowngradeRules)
    rating: RatingFloor = Field(default_factory=RatingFloor)
    quality_gates: QualityGates = Field(default_factory=QualityGates)
    moderation: Moderation = Field(default_factory=Moderation)
    perks: tuple[Perk, ...] = ()
    points: PointsRules | None = None
    """Customer programs: pending, available, spent and expiring points."""
    memberships: tuple[MembershipPlan, ...] = ()
    campaigns: tuple[Campaign, ...] = ()
    """Customer programs: bonuses as data (docs/campaigns.md)."""
    giving: GivingRules | None = None
    """Customer programs: causes and the company's match (docs/campaigns.md, "Giving")."""
    prize_draw: PrizeDraw | None = None
    """Customer programs: the monthly prize draw (docs/campaigns.md)."""
    dividend: Dividend | None = None
    """Customer programs: the annual dividend of a paid plan's members (docs/campaigns.md)."""
    limits: Limits = Field(default_factory=Limits)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("tiers")
    @classmethod
    def _ascending_tiers(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError("a program needs at least one tier")
        thresholds = [tier.min_points for tier in tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers must be listed with strictly ascending minPoints")
        if len({tier.id for tier in tiers}) != len(tiers):
            raise ValueError("tier ids must be unique")
        return tiers

    @model_validator(mode="after")
    def _perks_name_known_tiers(self) -> Program:
        known = {tier.id for tier in self.tiers}
        for perk in self.perks:
            unknown = [t for t in perk.tiers if t is not None and t not in known]
            if unknown:
                raise ValueError(f"perk {perk.id!r} names unknown tiers {unknown}")
        return self

    @model_validator(mode="after")
    def _customer_programs_hold_money(self) -> Program:
        customer = self.members is MemberRole.CUSTOMER
        if customer and (self.points is None or self.earning.points_per_dollar is None):
            raise ValueError("a customer program needs points and earning.pointsPerDollar")
        if not customer and (self.points is not None or self.earning.points_per_dollar):
            raise ValueError("points and earning.pointsPerDollar are for customer programs")
        if self.giving is not None and not customer:
            raise ValueError("giving moves points that are money: a customer program's")
        if self.giving is not None and len({c.id for c in self.giving.causes}) != len(
            self.giving.causes
        ):
            raise ValueError("cause ids must be unique")
        if self.campaigns and not customer:
            raise ValueError("campaigns pay points that are money: a customer program's")
        if self.prize_draw is not None and not customer:
            raise ValueError("prizeDraw: entries are customers' orders, a customer program's")
        if len({campaign.id for campaign in self.campaigns}) != len(self.campaigns):
            raise ValueError("campaign ids must be unique")
        if customer and (self.window.mode is not WindowMode.FIXED or self.window.period != "year"):
            raise ValueError(
                "a customer program's status is by calendar year: window "
                "{mode: fixed, period: year}"
            )
        return self

    @model_validator(mode="after")
    def _dividend_names_a_plan(self) -> Program:
        dividend = self.dividend
        if dividend is None:
            return self
        if self.members is not MemberRole.CUSTOMER:
            raise FieldError("dividend", "points that are money: a customer program's")
        if self.membership(dividend.plan) is None:
            known = ", ".join(plan.id for plan in self.memberships) or "none"
            raise FieldError(
                "dividend.plan", f"{dividend.plan!r} is not a membership plan (known: {known})"
            )
        if dividend.campaign_id in {campaign.id for campaign in self.campaigns}:
            raise FieldError(
                "dividend.campaignId", f"{dividend.campaign_id!r} is a campaign's id already"
            )
        return self

    @model_validator(mode="after")
    def _gates_are_shoppers(self) -> Program:
        if self.members is MemberRole.CUSTOMER and any(
            tier.gates.completion_rate or tier.gates.on_time_rate for tier in self.tiers
        ):
            raise ValueError("quality gates judge deliveries: a shopper program's tiers only")
        return self

    @property
    def gated(self) -> frozenset[str]:
        """The gates some tier of the program asks for (``completionRate``, ``onTimeRate``):
        only those have their events counted."""
        names = set()
        for tier in self.tiers:
            if tier.gates.completion_rate is not None:
                names.add("completionRate")
            if tier.gates.on_time_rate is not None:
                names.add("onTimeRate")
        return frozenset(names)

    @property
    def app_audience(self) -> str:
        return self.audience or self.id

    def membership(self, plan_id: str | None) -> MembershipPlan | None:
        return next((plan for plan in self.memberships if plan.id == plan_id), None)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def rule_version(self) -> str:
        """The version stamped on every ledger entry this configuration produces."""
        return f"{self.id}@{self.version}"
