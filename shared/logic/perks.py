"""Use cases of perks: redeem, cancel and list redemptions, the member's perks, and cashback on
reported fuel purchases (rules and design in docs/perks.md).

A redemption is decided on the member item as read (eligibility, tier) and carried out by one
transaction that also re-checks those facts, debits the quota under its condition, and keeps the
``Idempotency-Key``'s first result. A failed condition says what happened: the key was used
(replay its result), the member changed meanwhile (decide again), or the quota is used up.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from msgspec import Struct
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.errors import (
    AlreadyBooked,
    CodeExpired,
    CodeUsed,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotCancellable,
    NotFound,
    OtherPartner,
    PerkClosed,
    QuotaExhausted,
)
from shared.domain.keys import (
    LEGACY_QUOTA_SK_PREFIX,
    MEMBER_SK,
    REDEMPTION_SK_PREFIX,
    member_and_quotas_range,
    quota_sk,
)
from shared.domain.money import Money
from shared.domain.periods import period_key
from shared.domain.perks import (
    REDEEMABLE,
    AccessReason,
    CashbackMonth,
    FuelPurchaseRefunded,
    FuelPurchaseReported,
    MemberGuard,
    PartnerCodeRedemption,
    PartnerCodeRequest,
    Redemption,
    RedemptionPlan,
    RedemptionRequest,
    RedemptionStatus,
    cancellation_problem,
    capped_cashback,
    cashback_amount,
    cashback_month,
    closed_message,
    effective_tier,
    find_perk,
    key_digest,
    member_guard,
    new_code,
    new_redemption,
    new_redemption_id,
    next_period_start,
    normalize_code,
    open_guard,
    period_ends,
    perk_access,
    perks_of_kind,
    pin_zone,
    plan_redemption,
    principal_allowed,
    rate_for,
    redeemable_perk,
    request_digest,
    terms_depend_on_tier,
)
from shared.domain.program import PerkKind, Program
from shared.domain.tiers import is_eligible, tier_at
from shared.domain.timeutil import local_day, to_compact_utc, to_utc_iso
from shared.domain.zones import (
    earliest_local_day,
    for_member,
    in_zone,
    latest_local_day,
    member_zone_name,
)
from shared.logic.ports import (
    CashbackWrite,
    PartitionPages,
    RedeemWrite,
    StoredResult,
    TransientConflict,
    page_after,
)
from shared.logic.zones import learn_zone, zone_hint

MAX_DECISIONS = 4
"""How many times a decision is made again when the member item changed under it."""

Entropy = Callable[[int], bytes]


class PerkStore(PartitionPages, Protocol):
    """What the perk use cases need of storage (``shared.dal.perks.PerkRepository``)."""

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def member_and_quotas(
        self, program_id: str, member_id: str, first_sk: str, last_sk: str
    ) -> dict[str, dict[str, Any]]: ...

    def redeem(
        self,
        program_id: str,
        member_id: str,
        key_digest: str,
        guard: MemberGuard,
        plan: RedemptionPlan,
        redemption: Redemption,
        result: StoredResult,
        now: datetime,
    ) -> RedeemWrite: ...

    def store_result(
        self,
        program_id: str,
        member_id: str,
        key_digest: str,
        result: StoredResult,
        now: datetime,
    ) -> StoredResult | None: ...

    def redemption_item(
        self, program_id: str, member_id: str, redemption_id: str
    ) -> dict[str, Any] | None: ...

    def cancel(
        self,
        program_id: str,
        member_id: str,
        redemption: Redemption,
        quota_key: str,
        slot: str | None,
        now: datetime,
    ) -> Redemption | None: ...

    def credit_cashback(
        self,
        program_id: str,
        member_id: str,
        purchase: Mapping[str, Any],
        cashback: Decimal,
        guard: MemberGuard,
        month: CashbackMonth,
    ) -> CashbackWrite: ...

    def refund_cashback(
        self,
        program_id: str,
        member_id: str,
        purchase_id: str,
        cashback: Decimal,
        refunded_at: str,
        occurred_at: str,
    ) -> CashbackWrite: ...

    def get_purchase(
        self, program_id: str, member_id: str, purchase_id: str
    ) -> dict[str, Any] | None: ...

    def record_purchase(
        self, program_id: str, member_id: str, purchase: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...

    def get_code(self, code: str) -> dict[str, Any] | None: ...

    def use_code(
        self, code: str, item: Mapping[str, Any], partner_id: str, reference: str, now: datetime
    ) -> bool: ...


def _error_body(error: DomainError) -> str:
    return json.dumps({"error": error.to_dict()})


# -- redeem ---------------------------------------------------------------------------------------


class RedeemResult(Struct, frozen=True):
    """The HTTP answer to a redemption request, as first given to its ``Idempotency-Key``."""

    status: int
    body: str
    replayed: bool = False
    redemption: Redemption | None = None


def _replay(stored: StoredResult, digest: str) -> RedeemResult:
    if stored.request_digest != digest:
        raise IdempotencyKeyReused(
            "Idempotency-Key: this key was first used with another body; use a new key for a "
            "new request",
            field="Idempotency-Key",
        )
    return RedeemResult(stored.status, stored.body, replayed=True)


def _refuse(
    error: DomainError,
    member_id: str,
    key: str,
    digest: str,
    now: datetime,
    program: Program,
    repo: PerkStore,
) -> RedeemResult:
    """Keep a refusal as the key's first result (Stripe's rule: a request that was executed
    answers the same forever), unless the key's first result is already there."""
    body = _error_body(error)
    first = repo.store_result(
        program.id, member_id, key_digest(key), StoredResult(digest, error.status, body), now
    )
    if first is None:
        return RedeemResult(error.status, body)
    return _replay(first, digest)


def redeem(
    member_id: str,
    key: str,
    request: RedemptionRequest,
    now: datetime,
    program: Program,
    repo: PerkStore,
    entropy: Entropy = secrets.token_bytes,
) -> RedeemResult:
    """``POST /v1/me/redemptions``. Invalid requests raise ``InvalidInput`` (nothing stored);
    refusals (perk closed, quota used up, date booked) and confirmations are the key's result."""
    perk = redeemable_perk(program, request.perk_id)
    # Dates and periods are the member's (their zone): guessed without a read (the zone last
    # learnt, else the program's), and the guess is a condition of the transaction.
    member: dict[str, Any] | None = None
    clock = in_zone(program, zone_hint(program.id, member_id))
    try:
        plan_redemption(request, perk, None, now, clock)  # the request's own problems first
    except InvalidInput as problem:
        if problem.field != "date":
            raise
        # A date in the past on the guessed clock may be today on the member's: read it.
        member = repo.get_member(program.id, member_id) or {}
        clock = for_member(program, member)
        plan_redemption(request, perk, None, now, clock)
    digest = request_digest(request)
    # Terms that do not depend on the tier (a care day's price) need no read: the transaction
    # checks that the member is eligible and holds one of the perk's tiers, and its failure
    # returns the member item, which says why. Terms that do (a code's discount) read first.
    if terms_depend_on_tier(perk) and member is None:
        member = repo.get_member(program.id, member_id) or {}
    for _ in range(MAX_DECISIONS):
        tier: str | None = None
        guard = open_guard(perk)
        if member is not None:
            clock = for_member(program, member)
            access = perk_access(perk, member, local_day(now, clock.zone), clock)
            if not access.open:
                error = PerkClosed(closed_message(access, program), field="perkId")
                return _refuse(error, member_id, key, digest, now, program, repo)
            guard = member_guard(member, access)
            tier = access.tier if terms_depend_on_tier(perk) else None
        guard = pin_zone(guard, program, clock)
        plan = plan_redemption(request, perk, tier, now, clock)
        redemption = new_redemption(
            plan,
            tier,
            now,
            new_redemption_id(now, entropy(10)),
            new_code(entropy(8)) if perk.kind is PerkKind.CODE else None,
            program.rule_version,
        )
        body = redemption.model_dump_json(by_alias=True)
        write = repo.redeem(
            program.id,
            member_id,
            key_digest(key),
            guard,
            plan,
            redemption,
            StoredResult(digest, 201, body, redemption.redemption_id),
            now,
        )
        if write.applied:
            return RedeemResult(201, body, redemption=redemption)
        if write.replay is not None:
            return _replay(write.replay, digest)
        if write.member_changed:
            member = write.member or {}
            learn_zone(program.id, member_id, member_zone_name(member))
            continue
        if write.code_taken and not write.quota_refused:
            continue  # 60 random bits drawn twice: decide again, with a new code
        refusal: DomainError
        if plan.slot is not None and (write.quota or {}).get(plan.slot):
            refusal = AlreadyBooked(
                f"date: {perk.id} is already booked on {plan.day}", field="date"
            )
        else:
            refusal = QuotaExhausted(
                f"perkId: the {perk.id} quota of {plan.limit} for {plan.period} is used up "
                f"(it resets on {plan.period_ends})",
                field="perkId",
            )
        return _refuse(refusal, member_id, key, digest, now, program, repo)
    raise TransientConflict("the member item kept changing while the redemption was decided")


# -- partner codes --------------------------------------------------------------------------------


def redeem_partner_code(
    code: str,
    principal: str | None,
    request: PartnerCodeRequest,
    now: datetime,
    programs: Callable[[str], Program],
    repo: PerkStore,
) -> PartnerCodeRedemption:
    """``POST /v1/partner-codes/{code}/redemption`` (IAM): the partner whose principal the
    code's perk lists uses the code, once. Checked in this order, so a caller who is not the
    code's partner learns nothing of its state: unknown code (404), another partner's (403
    ``other_partner``), used with another reference (409 ``code_used``; the same reference
    answers the first redemption again), past its last valid day in the program's zone (409
    ``code_expired``)."""
    code = normalize_code(code)
    for _ in range(MAX_DECISIONS):
        item = repo.get_code(code)
        perk = None
        program = None
        if item is not None:
            try:
                program = programs(str(item["programId"]))
            except DomainError:
                program = None
            perk = find_perk(program, str(item["perkId"])) if program is not None else None
        if item is None or program is None or perk is None:
            raise NotFound(f"code: no code {code} was issued (or it was removed)", field="code")
        if not principal_allowed(perk, principal):
            raise OtherPartner("code: this code is for another partner's customers", field="code")
        assert perk.partner is not None
        valid_until = date.fromisoformat(str(item["validUntil"]))
        answer = PartnerCodeRedemption(
            code=code,
            perk_id=perk.id,
            partner_id=perk.partner.id,
            discount_rate=item.get("discountRate"),
            valid_until=valid_until,
            reference=request.reference,
            redeemed_at=now,
        )
        if item.get("usedAt") is not None:
            if (
                item.get("usedReference") == request.reference
                and item.get("usedBy") == perk.partner.id
            ):
                return answer.model_copy(
                    update={
                        "redeemed_at": datetime.fromisoformat(str(item["usedAt"])),
                        "replayed": True,
                    }
                )
            raise CodeUsed(
                f"code: already redeemed at {item['usedAt']} (another reference)", field="code"
            )
        if local_day(now, program.zone) > valid_until:
            raise CodeExpired(f"code: valid until {valid_until}", field="code")
        if repo.use_code(code, item, perk.partner.id, request.reference, now):
            return answer
    raise TransientConflict("the code kept changing while its redemption was decided")


# -- cancel and list ------------------------------------------------------------------------------


def cancel(
    member_id: str, redemption_id: str, now: datetime, program: Program, repo: PerkStore
) -> Redemption:
    """``DELETE /v1/me/redemptions/{id}``: cancel before the date; the quota comes back.
    Idempotent: cancelling a cancelled redemption answers it as it is."""
    item = repo.redemption_item(program.id, member_id, redemption_id)
    if item is None:
        raise NotFound(f"no redemption {redemption_id}", field="redemptionId")
    redemption = Redemption.model_validate(item)
    if redemption.status is RedemptionStatus.CANCELLED:
        return redemption
    clock = program
    day = redemption.day
    if day is not None and earliest_local_day(now) < day <= latest_local_day(now):
        # The booked date begins now somewhere: whether it has for this member is their zone's
        # (one item read, only in the day around the date's start).
        clock = for_member(program, repo.get_member(program.id, member_id))
    problem = cancellation_problem(redemption, now, clock)
    if problem is not None:
        raise NotCancellable(problem, field="redemptionId")
    quota_key = str(item["quotaSk"])
    if quota_key.startswith(LEGACY_QUOTA_SK_PREFIX):  # redeemed under the old keys (moved since)
        quota_key = quota_sk(redemption.perk_id, redemption.period, period_ends(redemption.period))
    raced = repo.cancel(program.id, member_id, redemption, quota_key, item.get("slot"), now)
    if raced is not None:
        return raced
    return redemption.model_copy(update={"status": RedemptionStatus.CANCELLED, "cancelled_at": now})


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class RedemptionsPage(_Out):
    redemptions: list[Redemption] = Field(description="Newest first.")
    next_token: str | None = Field(description="Pass as nextToken for the next page.")


def redemptions_page(
    member_id: str, limit: int, token: str | None, program: Program, repo: PerkStore
) -> RedemptionsPage:
    page = repo.page(
        program.id,
        member_id,
        REDEMPTION_SK_PREFIX,
        limit,
        page_after(token, REDEMPTION_SK_PREFIX),
        consistent=True,
    )
    return RedemptionsPage(
        redemptions=[Redemption.model_validate(item) for item in page.items],
        next_token=page.next_token,
    )


# -- the member's perks ---------------------------------------------------------------------------


class QuotaView(_Out):
    limit: int
    used: int
    left: int
    period: str = Field(description="The current period, e.g. 2026-Q4 or 2026-11.")
    resets_on: date


class PerkView(_Out):
    perk_id: str
    name: str
    kind: PerkKind
    tiers: list[str | None] = Field(description="Tiers the perk is open to (null: no tier).")
    open: bool = Field(description="Whether the member can use the perk now.")
    reason: AccessReason = Field(description="Why it is open or not.")
    redeemable: bool = Field(description="Redeemed with POST /v1/me/redemptions.")
    quota: QuotaView | None = None
    price_per_day: Money | None = None
    price_per_hour: Money | None = None
    rate: Decimal | None = Field(
        default=None, description="Cashback rate or discount at the member's tier."
    )


class PerksView(_Out):
    program_id: str
    tier: str | None
    eligible: bool
    perks: list[PerkView]


def _money(amount: Decimal | None, program: Program) -> Money | None:
    return None if amount is None else Money(amount=amount, currency=program.currency)


def perks_view(member_id: str, now: datetime, program: Program, repo: PerkStore) -> PerksView:
    """``GET /v1/me/perks``: one strongly consistent Query of one key range, the member item
    and the quota items of the periods not yet ended (1 read unit while they total 4 KB)."""
    # The member's zone is on the member item, read by the same Query: the range starts two
    # days early (no zone's date is further behind the program's), then the days are the
    # member's. At most the quota item of a period just ended is read too.
    earliest = local_day(now, program.zone) - timedelta(days=2)
    items = repo.member_and_quotas(program.id, member_id, *member_and_quotas_range(earliest))
    member = items.get(MEMBER_SK, {})
    program = for_member(program, member)
    today = local_day(now, program.zone)
    quota_keys = {
        perk.id: quota_sk(
            perk.id,
            period_key(today, perk.quota.period),
            next_period_start(today, perk.quota.period),
        )
        for perk in program.perks
        if perk.quota is not None
    }
    views: list[PerkView] = []
    for perk in program.perks:
        access = perk_access(perk, member, today, program)
        quota = None
        reason = access.reason
        if perk.quota is not None:
            used = int(items.get(quota_keys[perk.id], {}).get("used", 0))
            left = max(0, perk.quota.count - used)
            quota = QuotaView(
                limit=perk.quota.count,
                used=used,
                left=left,
                period=period_key(today, perk.quota.period),
                resets_on=next_period_start(today, perk.quota.period),
            )
            if access.open and left == 0:
                reason = AccessReason.QUOTA_EXHAUSTED
        rated = perk.kind in {PerkKind.CASHBACK, PerkKind.CODE}
        views.append(
            PerkView(
                perk_id=perk.id,
                name=perk.name or perk.id,
                kind=perk.kind,
                tiers=list(perk.tiers),
                open=reason is AccessReason.OPEN,
                reason=reason,
                redeemable=perk.kind in REDEEMABLE,
                quota=quota,
                price_per_day=_money(perk.price_per_day, program),
                price_per_hour=_money(perk.price_per_hour, program),
                rate=rate_for(perk, access.tier) if rated and access.open else None,
            )
        )
    return PerksView(
        program_id=program.id,
        tier=effective_tier(member, today, program),
        eligible=is_eligible(member),
        perks=views,
    )


# -- cashback -------------------------------------------------------------------------------------


class CashbackOutcome(StrEnum):
    CREDITED = "credited"
    DECLINED = "declined"
    """Recorded without cashback: the perk is closed to the member (below the rating floor)."""
    DUPLICATE = "duplicate"
    REFUNDED = "refunded"
    """A refund took the purchase's cashback back (at the purchase's rate)."""
    REFUNDED_BEFORE_REPORT = "refunded_before_report"
    """The refund came before the purchase: the purchase will be recorded without cashback."""


class CashbackResult(Struct, frozen=True):
    member_id: str
    purchase_id: str
    outcome: CashbackOutcome
    cashback: Decimal = Decimal("0.00")
    rate: Decimal | None = None
    tier: str | None = None
    reason: str | None = None
    event_type: str = FuelPurchaseReported.detail_type

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "eventType": self.event_type,
            "memberId": self.member_id,
            "purchaseId": self.purchase_id,
            "outcome": self.outcome.value,
            "cashback": f"{self.cashback:.2f}",
        }
        if self.rate is not None:
            body["rate"] = str(self.rate)
        if self.reason is not None:
            body["reason"] = self.reason
        return body


def _as_before(event: FuelPurchaseReported, existing: dict[str, Any]) -> CashbackResult:
    return CashbackResult(
        event.member_id,
        event.purchase_id,
        CashbackOutcome.DUPLICATE,
        reason=str(existing.get("status", "recorded")),
    )


def credit_fuel_purchase(
    event: FuelPurchaseReported, now: datetime, program: Program, repo: PerkStore
) -> CashbackResult:
    """``FuelPurchaseReported``: credit cashback to the wallet at the member's tier rate, once
    per purchase id. The rate is the tier's at the purchase's ``occurredAt`` (``tier_then``);
    eligibility is judged when the event is applied: a member below the rating floor gets
    nothing, and the purchase is recorded so that a redelivery changes nothing. A purchase
    above ``limits.maxFuelPurchase`` is refused; the cashback is capped per purchase and per
    calendar month (``capped_cashback``)."""
    if event.amount.currency != program.currency:
        raise InvalidInput(
            f"detail.amount.currency: the wallet is in {program.currency}",
            field="detail.amount.currency",
        )
    cap = program.limits.max_fuel_purchase
    if event.amount.amount > cap:
        raise InvalidInput(
            f"detail.amount.amount: {event.amount.amount} is above the limit of {cap} "
            "(limits.maxFuelPurchase)",
            field="detail.amount.amount",
        )
    perks = perks_of_kind(program, PerkKind.CASHBACK)
    month = cashback_month(perks[0].id, event.occurred_at, program) if perks else None
    today = local_day(now, program.zone)
    purchase: dict[str, Any] = {
        "memberId": event.member_id,
        "programId": program.id,
        "purchaseId": event.purchase_id,
        "amount": {"amount": f"{event.amount.amount:.2f}", "currency": event.amount.currency},
        "occurredAt": to_utc_iso(event.occurred_at),
        "recordedAt": to_utc_iso(now),
        "ruleVersion": program.rule_version,
    }
    for _ in range(MAX_DECISIONS):
        counter: Mapping[str, Any] = {}
        if month is None:
            member = repo.get_member(program.id, event.member_id) or {}
        else:  # the member and the month's counter: one Query
            items = repo.member_and_quotas(program.id, event.member_id, MEMBER_SK, month.sk)
            member, counter = items.get(MEMBER_SK, {}), items.get(month.sk, {})
        access = perk_access(perks[0], member, today, program) if perks else None
        if access is None or not access.open or month is None:
            reason = access.reason.value if access else "no_cashback_perk"
            declined = {**purchase, "status": "declined", "reason": reason}
            existing = repo.record_purchase(program.id, event.member_id, declined)
            if existing is not None:
                return _as_before(event, existing)
            return CashbackResult(
                event.member_id, event.purchase_id, CashbackOutcome.DECLINED, reason=reason
            )
        tier = tier_then(member, event.occurred_at, access.tier)
        rate = rate_for(access.perk, tier)
        capped = capped_cashback(
            cashback_amount(event.amount.amount, rate),
            Decimal(str(counter.get("credited", 0))),
            program.limits,
        )
        cashback = capped.credit
        credited = {
            **purchase,
            "perkId": access.perk.id,
            "status": "credited",
            "tier": tier,
            "rate": str(rate),
            "cashback": {"amount": f"{cashback:.2f}", "currency": program.currency},
            "earned": {"amount": f"{capped.earned:.2f}", "currency": program.currency},
            "month": month.period,
            "cappedBy": capped.capped_by,
            "creditedAt": to_utc_iso(now),
        }
        write = repo.credit_cashback(
            program.id, event.member_id, credited, cashback, member_guard(member, access), month
        )
        if write.applied:
            return CashbackResult(
                event.member_id,
                event.purchase_id,
                CashbackOutcome.CREDITED,
                cashback,
                rate,
                tier,
            )
        if write.existing is not None:
            return _as_before(event, write.existing)
    raise TransientConflict("the member item kept changing while the cashback was decided")


def tier_then(member: Mapping[str, Any], occurred_at: datetime, tier_now: str | None) -> str | None:
    """The tier whose rate a purchase earns: the one in force when it was made. A partner
    reports a purchase late, and an upgrade (or a drop) in between must not change its
    cashback; the member item's ``tierFrom`` says which tier the last change replaced. With
    no change since, the tier now (with its upgrade the stream has not written yet)."""
    known, tier = tier_at(member, to_compact_utc(occurred_at))
    return tier if known else tier_now


def refund_fuel_purchase(
    event: FuelPurchaseRefunded, now: datetime, program: Program, repo: PerkStore
) -> CashbackResult:
    """``FuelPurchaseRefunded``: the purchase's cashback comes back out of the wallet, at the
    rate it was credited at (whatever the member's tier is now), once. A refund that arrives
    before its purchase is recorded, so that the purchase then earns nothing."""

    def result(outcome: CashbackOutcome, cashback: Decimal = Decimal("0.00")) -> CashbackResult:
        return CashbackResult(
            event.member_id, event.purchase_id, outcome, cashback, event_type=event.detail_type
        )

    for _ in range(MAX_DECISIONS):
        purchase = repo.get_purchase(program.id, event.member_id, event.purchase_id)
        if purchase is None:
            early = {
                "memberId": event.member_id,
                "programId": program.id,
                "purchaseId": event.purchase_id,
                "status": "refunded",
                "reason": "refunded_before_report",
                "refundOccurredAt": to_utc_iso(event.occurred_at),
                "recordedAt": to_utc_iso(now),
            }
            if repo.record_purchase(program.id, event.member_id, early) is None:
                return result(CashbackOutcome.REFUNDED_BEFORE_REPORT)
            continue  # the purchase arrived meanwhile: look again
        if purchase.get("status") != "credited":
            return result(CashbackOutcome.DUPLICATE)
        cashback = Decimal(str((purchase.get("cashback") or {}).get("amount", "0")))
        write = repo.refund_cashback(
            program.id,
            event.member_id,
            event.purchase_id,
            cashback,
            to_utc_iso(now),
            to_utc_iso(event.occurred_at),
        )
        if write.applied:
            return result(CashbackOutcome.REFUNDED, -cashback)
    raise TransientConflict("the purchase kept changing while its refund was applied")
