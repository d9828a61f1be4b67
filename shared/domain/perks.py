"""Perks: who may use what, at what price, against which quota (docs/perks.md).

Pure functions of the member item's attributes, the program and an instant passed in. The
repository carries out what is decided here; the transaction re-checks the facts a decision was
made on (``MemberGuard``), so a decision never outlives the state it was computed from.

- A perk is *open* to a member who is eligible (at or above the rating floor) and whose tier is
  one of the perk's tiers. The tier is the stored tier, or what today's points earn when the
  stored tier lags an upgrade by the seconds the stream takes.
- ``booking`` perks (care days) book a date against a quota per period of that date (hours on one
  date use one day of the quota); they can be cancelled before the date, and the quota comes back.
- ``code`` perks issue a single-use discount code against a quota per period of the day issued.
- ``cashback`` perks credit the wallet when a partner reports a purchase, at the tier's rate.
- ``entitlement`` perks are asked by services; ``badge`` perks are shown to customers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from msgspec import Struct
from msgspec.structs import replace
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
)
from pydantic.alias_generators import to_camel

from .errors import InvalidInput
from .events import InboundEvent
from .gates import gate_cap
from .ids import Identifier, MemberIdField
from .keys import quota_sk
from .money import Money
from .numbers import WHOLE
from .periods import period_key
from .program import Limits, MemberRole, Perk, PerkKind, Program, QuotaPeriod, Slug
from .tiers import active_override, earned_tier, is_eligible, rank
from .timeutil import Instant, local_day, to_utc_iso
from .zones import stored_zone

NO_TIER = "none"
"""The ``rates`` key of members below the first tier."""
DEFAULT_MAX_HOURS = 24
DEFAULT_ADVANCE_DAYS = 365
DEFAULT_VALID_DAYS = 30
REDEEMABLE = frozenset({PerkKind.BOOKING, PerkKind.CODE})
"""Kinds a member redeems (``POST /v1/me/redemptions``); the others apply by themselves."""

IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
"""Printable ASCII without spaces, 1 to 255 characters (a UUID is the usual choice)."""


# -- who may use a perk ---------------------------------------------------------------------------


class AccessReason(StrEnum):
    OPEN = "open"
    TIER_TOO_LOW = "tier_too_low"
    NOT_ELIGIBLE = "not_eligible"
    QUOTA_EXHAUSTED = "quota_exhausted"
    PLAN_ACTIVE = "plan_active"
    """Customer programs: an entitlement of the member's paid plan, while it is valid."""
    NO_PLAN = "no_plan"
    """Customer programs: an entitlement of a paid plan the member does not hold now."""


def stored_tier(attributes: Mapping[str, Any]) -> str | None:
    tier = attributes.get("tier")
    return str(tier) if tier else None


def effective_tier(attributes: Mapping[str, Any], today: date, program: Program) -> str | None:
    """The member's tier for perks and display: None while ineligible; else the stored tier,
    or what today's points earn if that is higher (the stored tier lags an upgrade by the
    seconds the stream takes; downgrades wait for the daily evaluation, as the stored tier
    does), lowered to the highest tier whose quality gates the member meets (a failed gate
    takes effect at once, as the rating floor does)."""
    override = active_override(attributes, today)
    if override is not None:  # an administrator's override is exact (docs/admin.md)
        return override[0]
    if not is_eligible(attributes):
        return None
    stored = stored_tier(attributes)
    earned = earned_tier(attributes, today, program)
    tier = earned if rank(earned, program) > rank(stored, program) else stored
    return gate_cap(tier, attributes, program)


class Access(Struct, frozen=True):
    perk: Perk
    open: bool
    reason: AccessReason
    tier: str | None
    via_points: bool = False
    """Open only because today's points reach a tier the stored tier has not caught up with."""


def perk_access(perk: Perk, attributes: Mapping[str, Any], today: date, program: Program) -> Access:
    if not is_eligible(attributes) and active_override(attributes, today) is None:
        return Access(perk, False, AccessReason.NOT_ELIGIBLE, None)
    tier = effective_tier(attributes, today, program)
    if tier not in perk.tiers:
        return Access(perk, False, AccessReason.TIER_TOO_LOW, tier)
    return Access(perk, True, AccessReason.OPEN, tier, stored_tier(attributes) not in perk.tiers)


def closed_message(access: Access, program: Program) -> str:
    if access.reason is AccessReason.NOT_ELIGIBLE:
        return (
            f"{access.perk.id} is closed while the rating average is below the program's floor "
            f"({program.rating.floor})"
        )
    tiers = ", ".join(tier or NO_TIER for tier in access.perk.tiers)
    return f"{access.perk.id} is open to the tiers {tiers}; the member's tier is {access.tier}"


class MemberGuard(Struct, frozen=True):
    """What the transaction carrying out a decision re-checks on the member item: eligibility,
    that the stored tier is one of ``tiers`` (absent counts as None), and, when the decision
    used today's points, that the points (the version ``v``) have not changed."""

    tiers: tuple[str | None, ...]
    version: int | None = None
    pin_version: bool = False
    zone: str | None = None
    """The member's zone the decision counted days in (None: the program's)."""
    pin_zone: bool = False
    """Re-check ``zone`` (a shopper program's days are the member's: docs/tiers.md)."""


def member_guard(attributes: Mapping[str, Any], access: Access) -> MemberGuard:
    """The guard of a decision made on ``attributes``: the same stored tier (the terms may
    depend on it) and, if the perk is open through today's points, the same points."""
    version = attributes.get("v")
    return MemberGuard(
        tiers=(stored_tier(attributes),),
        version=int(version) if version is not None else None,
        pin_version=access.via_points,
    )


def pin_zone(guard: MemberGuard, program: Program, clock: Program) -> MemberGuard:
    """``guard`` re-checking that the member's zone is ``clock``'s, in a shopper program."""
    if program.members is not MemberRole.SHOPPER:
        return guard
    return replace(guard, zone=stored_zone(program, clock.time_zone), pin_zone=True)


def open_guard(perk: Perk) -> MemberGuard:
    """The guard of a decision made without reading the member: eligible, and a stored tier the
    perk is open to. When it fails, the member item as it stood tells why (or that the stored
    tier lags today's points, and the decision is made again on what was read)."""
    return MemberGuard(tiers=perk.tiers)


def terms_depend_on_tier(perk: Perk) -> bool:
    """Whether the perk's terms (a discount, a rate) differ by tier: then the decision needs
    the member's tier, and reads the member item first."""
    return bool(perk.rates)


def find_perk(program: Program, perk_id: str) -> Perk | None:
    return next((perk for perk in program.perks if perk.id == perk_id), None)


def perks_of_kind(program: Program, kind: PerkKind) -> list[Perk]:
    return [perk for perk in program.perks if perk.kind is kind]


def rate_for(perk: Perk, tier: str | None) -> Decimal:
    """Cashback rate or discount of ``tier`` (0 when the program names none)."""
    return (perk.rates or {}).get(tier or NO_TIER, Decimal(0))


# -- quota periods --------------------------------------------------------------------------------


def period_start(day: date, period: QuotaPeriod) -> date:
    if period is QuotaPeriod.MONTH:
        return date(day.year, day.month, 1)
    if period is QuotaPeriod.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def next_period_start(day: date, period: QuotaPeriod) -> date:
    """The first day of the period after the one ``day`` falls in (when the quota resets)."""
    start = period_start(day, period)
    months = {QuotaPeriod.MONTH: 1, QuotaPeriod.QUARTER: 3, QuotaPeriod.YEAR: 12}[period]
    month_index = start.year * 12 + start.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def period_ends(period: str) -> date:
    """The first day after the period ``period_key`` named ``period`` (``2026-11``,
    ``2026-Q4``, ``2026``): when its quota resets, and part of its quota item's key."""
    year, _, rest = period.partition("-")
    if not year.isdigit() or len(year) != 4:
        raise ValueError(f"not a quota period: {period!r}")
    if not rest:
        return next_period_start(date(int(year), 1, 1), QuotaPeriod.YEAR)
    if rest in {"Q1", "Q2", "Q3", "Q4"}:
        first = date(int(year), 3 * int(rest[1]) - 2, 1)
        return next_period_start(first, QuotaPeriod.QUARTER)
    if rest.isdigit() and len(rest) == 2 and 1 <= int(rest) <= 12:
        return next_period_start(date(int(year), int(rest), 1), QuotaPeriod.MONTH)
    raise ValueError(f"not a quota period: {period!r}")


def slot_name(day: date) -> str:
    """Attribute of the quota item that holds the booking of ``day`` (one per date)."""
    return f"s:{day.isoformat()}"


# -- redemption requests --------------------------------------------------------------------------


class BookingUnit(StrEnum):
    DAY = "day"
    HOUR = "hour"


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a date must be a string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a date YYYY-MM-DD: {value!r}") from exc


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class RedemptionRequest(BaseModel):
    """Body of ``POST /v1/me/redemptions``. Unknown fields are refused: a member cannot set
    ``tier``, ``points``, ``memberId``, a price or a status."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        title="RedemptionRequest",
        defer_build=True,
    )

    perk_id: Slug = Field(description="A redeemable perk of the program (kind booking or code).")
    day: IsoDate | None = Field(
        default=None, alias="date", description="Booking perks: the date booked (YYYY-MM-DD)."
    )
    unit: BookingUnit | None = Field(default=None, description="Booking perks: day or hour.")
    hours: Annotated[int, Field(ge=1, le=24, strict=True), WHOLE] | None = Field(
        default=None, description="Booking perks by the hour: how many hours on that date."
    )
    care_type: Slug | None = Field(
        default=None,
        description="Booking perks that list care types (care days: child, senior, pet): "
        "which kind of care is booked.",
    )


def request_digest(request: RedemptionRequest) -> str:
    """What "the same body" means: the validated request in a canonical form."""
    body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def key_digest(key: str) -> str:
    """Sort-key form of a client's ``Idempotency-Key`` (any printable key, fixed length)."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


class RedemptionPlan(Struct, frozen=True):
    perk: Perk
    period: str
    period_ends: date
    """First day of the next period (when the quota resets)."""
    limit: int
    price: Money
    day: date | None = None
    unit: BookingUnit | None = None
    hours: int | None = None
    care_type: str | None = None
    discount_rate: Decimal | None = None
    valid_until: date | None = None

    @property
    def slot(self) -> str | None:
        return slot_name(self.day) if self.day is not None else None


def redeemable_perk(program: Program, perk_id: str) -> Perk:
    perk = find_perk(program, perk_id)
    if perk is None:
        known = ", ".join(p.id for p in program.perks if p.kind in REDEEMABLE)
        raise InvalidInput(f"perkId: no perk {perk_id!r} (redeemable: {known})", field="perkId")
    if perk.kind not in REDEEMABLE:
        raise InvalidInput(
            f"perkId: {perk.id} is a {perk.kind.value} perk, which applies by itself and is "
            "not redeemed",
            field="perkId",
        )
    return perk


def plan_redemption(
    request: RedemptionRequest, perk: Perk, tier: str | None, now: datetime, program: Program
) -> RedemptionPlan:
    """Validate a request against the perk's rules and price it. Raises ``InvalidInput`` with
    the field at fault."""
    assert perk.quota is not None  # the Perk model requires one for redeemable kinds
    today = local_day(now, program.zone)
    if perk.kind is PerkKind.CODE:
        for field, value in (
            ("date", request.day),
            ("unit", request.unit),
            ("hours", request.hours),
            ("careType", request.care_type),
        ):
            if value is not None:
                raise InvalidInput(f"{field}: not used by a {perk.kind.value} perk", field=field)
        valid_days = perk.valid_days or DEFAULT_VALID_DAYS
        return RedemptionPlan(
            perk=perk,
            period=period_key(today, perk.quota.period),
            period_ends=next_period_start(today, perk.quota.period),
            limit=perk.quota.count,
            price=Money(amount=Decimal("0.00"), currency=program.currency),
            discount_rate=rate_for(perk, tier),
            valid_until=today + timedelta(days=valid_days),
        )
    day = _booking_day(request, perk, today)
    unit, hours, price = _booking_price(request, perk)
    return RedemptionPlan(
        perk=perk,
        period=period_key(day, perk.quota.period),
        period_ends=next_period_start(day, perk.quota.period),
        limit=perk.quota.count,
        price=Money(amount=price, currency=program.currency),
        day=day,
        unit=unit,
        hours=hours,
        care_type=_care_type(request, perk),
    )


def _care_type(request: RedemptionRequest, perk: Perk) -> str | None:
    """The kind of care booked: one of the perk's ``careTypes`` (required when it lists some,
    refused when it lists none)."""
    if not perk.care_types:
        if request.care_type is not None:
            raise InvalidInput(f"careType: {perk.id} names no care types", field="careType")
        return None
    if request.care_type not in perk.care_types:
        choices = ", ".join(perk.care_types)
        given = "required" if request.care_type is None else f"{request.care_type!r} is not one"
        raise InvalidInput(f"careType: {given} (one of {choices})", field="careType")
    return request.care_type


def _booking_day(request: RedemptionRequest, perk: Perk, today: date) -> date:
    if request.day is None:
        raise InvalidInput(f"date: required to book {perk.id}", field="date")
    if request.day < today:
        raise InvalidInput(f"date: {request.day} is in the past (today is {today})", field="date")
    horizon = today + timedelta(days=perk.advance_days or DEFAULT_ADVANCE_DAYS)
    if request.day > horizon:
        raise InvalidInput(
            f"date: {perk.id} can be booked up to {horizon} ({perk.advance_days} days ahead)",
            field="date",
        )
    return request.day


def _booking_price(
    request: RedemptionRequest, perk: Perk
) -> tuple[BookingUnit, int | None, Decimal]:
    if request.unit is None:
        raise InvalidInput("unit: required to book (day or hour)", field="unit")
    if request.unit is BookingUnit.DAY:
        if request.hours is not None:
            raise InvalidInput("hours: only with unit hour", field="hours")
        assert perk.price_per_day is not None  # the Perk model requires it for bookings
        return BookingUnit.DAY, None, _cents(perk.price_per_day)
    if perk.price_per_hour is None:
        raise InvalidInput(f"unit: {perk.id} is booked by the day only", field="unit")
    if request.hours is None:
        raise InvalidInput("hours: required with unit hour", field="hours")
    limit = perk.max_hours or DEFAULT_MAX_HOURS
    if request.hours > limit:
        raise InvalidInput(f"hours: at most {limit} hours on one date", field="hours")
    return BookingUnit.HOUR, request.hours, _cents(perk.price_per_hour * request.hours)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- redemptions ----------------------------------------------------------------------------------


class RedemptionStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Redemption(BaseModel):
    """A redemption as stored and as the member sees it."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        title="Redemption",
        defer_build=True,
    )

    redemption_id: str
    perk_id: str
    kind: PerkKind
    status: RedemptionStatus
    tier: str | None = Field(
        default=None, description="The member's tier when the perk was redeemed (null: none)."
    )
    period: str = Field(description="The quota period debited, e.g. 2026-Q4 or 2026-11.")
    day: date | None = Field(default=None, alias="date")
    unit: BookingUnit | None = None
    hours: int | None = None
    care_type: str | None = Field(default=None, description="Care days: the kind of care.")
    price: Money
    code: str | None = Field(default=None, description="Code perks: the single-use code.")
    discount_rate: Decimal | None = None
    valid_until: date | None = None
    created_at: datetime
    cancelled_at: datetime | None = None
    used_at: datetime | None = Field(
        default=None, description="Code perks: when the partner redeemed the code."
    )
    used_by: str | None = Field(default=None, description="Code perks: the partner who did.")
    rule_version: str | None = Field(
        default=None,
        description="The program version whose rules allowed and priced it (`{id}@{version}`).",
    )

    @field_serializer("created_at", "cancelled_at", "used_at")
    def _instant(self, value: datetime | None) -> str | None:
        return to_utc_iso(value) if value is not None else None


def new_redemption(
    plan: RedemptionPlan,
    tier: str | None,
    now: datetime,
    redemption_id: str,
    code: str | None,
    rule_version: str | None = None,
) -> Redemption:
    return Redemption(
        redemption_id=redemption_id,
        perk_id=plan.perk.id,
        kind=plan.perk.kind,
        status=RedemptionStatus.CONFIRMED,
        tier=tier,
        period=plan.period,
        day=plan.day,
        unit=plan.unit,
        hours=plan.hours,
        care_type=plan.care_type,
        price=plan.price,
        code=code,
        discount_rate=plan.discount_rate,
        valid_until=plan.valid_until,
        created_at=now.astimezone(UTC),
        rule_version=rule_version,
    )


def cancellation_problem(redemption: Redemption, now: datetime, program: Program) -> str | None:
    """Why ``redemption`` cannot be cancelled at ``now``; None when it can. A tier drop since
    the redemption changes nothing: a confirmed redemption stays valid."""
    if redemption.kind is PerkKind.CODE:
        return "an issued code cannot be cancelled: it may already have been used"
    today = local_day(now, program.zone)
    if redemption.day is not None and today >= redemption.day:
        return f"cancellations close when the booked date ({redemption.day}) begins"
    return None


# -- partner codes (docs/perks.md, "Partner codes") ----------------------------------------------

PARTNER_CODE = r"^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$"
"""A code as a partner may type it: case does not matter."""
CODE_RETENTION_DAYS = 90
"""How long an issued code's item stays after its last valid day (then DynamoDB's TTL removes
it, and the code is unknown)."""


class PartnerCodeRequest(BaseModel):
    """Body of ``POST /v1/partner-codes/{code}/redemption``: the partner's own reference for the
    sale (an invoice or work-order number). Presenting the same code with the same reference
    again answers the first redemption (a retry); another reference is ``code_used``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        title="PartnerCodeRequest",
        defer_build=True,
    )

    reference: Annotated[
        str, StringConstraints(pattern=r"^[\x21-\x7e]([\x20-\x7e]{0,98}[\x21-\x7e])?$")
    ] = Field(
        description="The partner's reference for the sale: printable ASCII, 1 to 100 characters."
    )


class PartnerCodeRedemption(BaseModel):
    """What the partner learns of a code it redeemed: the discount to give, nothing of the
    member."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        title="PartnerCodeRedemption",
        defer_build=True,
    )

    code: str
    perk_id: str
    partner_id: str
    discount_rate: Decimal | None = Field(description="The discount to give, e.g. 0.15 for 15 %.")
    valid_until: date = Field(description="The last day the code was valid (program's zone).")
    reference: str
    redeemed_at: datetime
    replayed: bool = Field(
        default=False, description="True when this answers a retry of the same redemption."
    )

    @field_serializer("redeemed_at")
    def _instant(self, value: datetime) -> str:
        return to_utc_iso(value)


def normalize_code(code: str) -> str:
    """A code as issued: upper case (codes are Crockford base32, which has no I, L, O or U)."""
    return code.strip().upper()


def principal_allowed(perk: Perk, principal: str | None) -> bool:
    """Whether ``principal`` (the caller's IAM ARN) is one the perk's partner lists; ``*`` in a
    pattern matches any run of characters, nothing else is special."""
    if perk.partner is None or not principal:
        return False
    return any(
        re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), principal)
        for pattern in perk.partner.principals
    )


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_redemption_id(now: datetime, entropy: bytes) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 Crockford base32 characters, so
    that redemption ids sort by time (the listing is a range read, newest first)."""
    if len(entropy) < 10:
        raise ValueError("a redemption id needs 10 bytes of entropy")
    millis = (now.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return _base32(millis, 10) + _base32(int.from_bytes(entropy[:10], "big"), 16)


def new_code(entropy: bytes) -> str:
    """A single-use code: 60 random bits as ``XXXX-XXXX-XXXX`` (Crockford base32, no I/L/O/U)."""
    if len(entropy) < 8:
        raise ValueError("a code needs 8 bytes of entropy")
    text = _base32(int.from_bytes(entropy[:8], "big") >> 4, 12)
    return f"{text[:4]}-{text[4:8]}-{text[8:]}"


# -- cashback -------------------------------------------------------------------------------------


class FuelPurchaseReported(InboundEvent):
    """A partner reports a fuel purchase (an inbound event of the contract)."""

    detail_type: ClassVar[str] = "FuelPurchaseReported"

    purchase_id: Identifier
    member_id: MemberIdField
    amount: Money
    occurred_at: Instant


class FuelPurchaseRefunded(InboundEvent):
    """A partner refunded a fuel purchase: its cashback comes back out of the wallet."""

    detail_type: ClassVar[str] = "FuelPurchaseRefunded"

    purchase_id: Identifier
    member_id: MemberIdField
    occurred_at: Instant


def cashback_amount(amount: Decimal, rate: Decimal) -> Decimal:
    """Cashback on ``amount`` at ``rate``, to the cent (half up)."""
    return _cents(amount * rate)


class CashbackMonth(Struct, frozen=True):
    """The counter of a calendar month's cashback credits (the program's zone): an item of
    the member's partition keyed as a quota (``quota_sk``: the perk, ``2026-11``), updated in
    the credit's transaction, which adds ``credit`` to it only while it holds at most
    ``limit - credit`` (so a month's credits never exceed ``limit``)."""

    perk_id: str
    period: str
    sk: str
    limit: Decimal


def cashback_month(perk_id: str, occurred_at: datetime, program: Program) -> CashbackMonth:
    """The month a purchase counts in: the calendar month of its ``occurredAt`` in the
    program's zone."""
    period = period_key(local_day(occurred_at, program.zone), QuotaPeriod.MONTH)
    sk = quota_sk(perk_id, period, period_ends(period))
    return CashbackMonth(perk_id, period, sk, program.limits.max_cashback_per_month)


class CappedCashback(Struct, frozen=True):
    earned: Decimal
    """At the rate, before the caps."""
    credit: Decimal
    """What the wallet gets: at most the per-purchase cap and what is left of the month's."""
    capped_by: str | None
    """``max_cashback_per_purchase``, ``max_cashback_per_month`` or None (not capped)."""


def capped_cashback(earned: Decimal, month_credited: Decimal, limits: Limits) -> CappedCashback:
    """Cap a purchase's cashback: at ``limits.max_cashback_per_purchase``, then at what the
    month's credits (``month_credited`` so far) leave of ``limits.max_cashback_per_month``."""
    credit, capped_by = earned, None
    if credit > limits.max_cashback_per_purchase:
        credit, capped_by = limits.max_cashback_per_purchase, "max_cashback_per_purchase"
    room = max(limits.max_cashback_per_month - month_credited, Decimal("0.00"))
    if credit > room:
        credit, capped_by = room, "max_cashback_per_month"
    return CappedCashback(earned, _cents(credit), capped_by)


# -- public views ---------------------------------------------------------------------------------


class Badge(BaseModel):
    """The public recognition badge: tier, orders completed and tenure; nothing private (no
    points, rating, wallet or exact dates)."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        title="Badge",
        defer_build=True,
    )

    tier: str
    tier_name: str
    orders_completed: int
    member_since: str | None = Field(description="Month of the first completed order (YYYY-MM).")
    tenure_months: int | None


def badge_of(attributes: Mapping[str, Any], today: date, program: Program) -> Badge | None:
    """The badge, while a badge perk is open to the member; None otherwise."""
    for perk in perks_of_kind(program, PerkKind.BADGE):
        access = perk_access(perk, attributes, today, program)
        if access.open and access.tier is not None:
            names = {tier.id: tier.name for tier in program.tiers}
            since = _first_day(attributes.get("memberSince"), program)
            months = None
            if since is not None:
                months = max(0, (today.year - since.year) * 12 + today.month - since.month)
                if today.day < since.day:
                    months = max(0, months - 1)
            return Badge(
                tier=access.tier,
                tier_name=names.get(access.tier, access.tier),
                orders_completed=int(attributes.get("ordersCompleted", 0) or 0),
                member_since=f"{since.year:04d}-{since.month:02d}" if since else None,
                tenure_months=months,
            )
    return None


def _first_day(value: Any, program: Program) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return local_day(datetime.fromisoformat(value), program.zone)
    except ValueError:
        return None
