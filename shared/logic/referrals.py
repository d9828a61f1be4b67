"""Referrals (docs/campaigns.md): the member's code, the referral a new customer's sign-up
records, and its payment once the new customer's first order has survived its pending period.

``GET /v1/me/referral`` gives the member's code, made on the first request and the same after.
``CustomerSignedUp`` records who referred the customer (the first referrer wins; no
self-referral; an unknown code is refused), each refusal kept with why. The schedule
(``points_settlement``) pays when the first order's points lot becomes available: 1,000 points
to each, available at once, the referrer at most 10 times a calendar year; a first order
cancelled or wholly refunded by then pays nothing, and no later order becomes the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from msgspec.structs import replace
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.birthday import member_zone
from shared.domain.customer import available_attr
from shared.domain.errors import NotFound
from shared.domain.events import CustomerSignedUp
from shared.domain.periods import period_key
from shared.domain.program import Program
from shared.domain.referral import (
    ALREADY_REFERRED,
    BUDGET_SPENT,
    FIRST_ORDER_CANCELLED,
    PENDING,
    REFERRER_YEARLY_CAP,
    SELF_REFERRAL,
    UNKNOWN_CODE,
    ReferralPayout,
    first_order_survived,
    new_code,
    read_code,
    referral_campaign,
    referral_due,
)
from shared.domain.timeutil import local_day, to_utc_iso
from shared.logic.customers import CustomerOutcome, CustomerResult, CustomerStore, settle
from shared.logic.ports import TransientConflict

CODE_TRIES = 8
"""Fresh codes drawn before giving up (a collision at 50 bits is one in 10^15 per member)."""


class ReferralStore(CustomerStore, Protocol):
    def member_code(self, program_id: str, member_id: str, consistent: bool) -> str | None: ...

    def create_code(self, program_id: str, member_id: str, code: str, at: str) -> str: ...

    def code_owner(self, program_id: str, code: str) -> str | None: ...

    def get_referral(self, program_id: str, customer_id: str) -> dict[str, Any] | None: ...

    def record_referral(
        self, program_id: str, customer_id: str, referral: Mapping[str, Any]
    ) -> bool: ...

    def refuse_referral(
        self, program_id: str, customer_id: str, refusal: Mapping[str, Any]
    ) -> None: ...

    def void_referral(self, program_id: str, customer_id: str, reason: str, at: str) -> bool: ...

    def pay_referral(self, program_id: str, payout: ReferralPayout, at: str) -> str: ...

    def member_zone_item(self, program_id: str, member_id: str) -> dict[str, Any]: ...


class ReferralView(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    program_id: str
    code: str = Field(
        description="The member's referral code (10 characters; case, spaces and hyphens do "
        "not matter when it is typed)."
    )
    points: int = Field(description="What the referral pays each of the two members.")
    yearly_limit: int = Field(description="Referrals a member is paid for per calendar year.")


def referral_code(
    member_id: str, now: datetime, program: Program, store: ReferralStore
) -> ReferralView:
    """The member's code: read (half a unit), else made once (one transaction of two items)."""
    campaign = referral_campaign(program)
    if campaign is None:
        raise NotFound(f"program {program.id} has no referrals", field="programId")
    code = store.member_code(program.id, member_id, consistent=False)
    for _ in range(CODE_TRIES):
        if code is not None:
            break
        fresh = new_code()
        written = store.create_code(program.id, member_id, fresh, to_utc_iso(now))
        if written == "created":
            code = fresh
        elif written == "member_has_code":  # a request at the same time made it first
            code = store.member_code(program.id, member_id, consistent=True)
    if code is None:
        raise TransientConflict(f"no referral code could be made for {member_id}")
    return ReferralView(
        program_id=program.id,
        code=code,
        points=campaign.points,
        yearly_limit=campaign.per_member.count,
    )


def record_signups(
    event: CustomerSignedUp, now: datetime, programs: Sequence[Program], store: ReferralStore
) -> list[CustomerResult]:
    """The referral of a new customer, in each customer program with a referral campaign."""
    return [
        _signup(event, now, program, store)
        for program in programs
        if referral_campaign(program) is not None
    ]


def _signup(
    event: CustomerSignedUp, now: datetime, program: Program, store: ReferralStore
) -> CustomerResult:
    customer_id = event.customer_id

    def result(outcome: CustomerOutcome, what: str) -> CustomerResult:
        return CustomerResult(program.id, customer_id, outcome, campaigns={"referral": what})

    if event.referral_code is None:
        return CustomerResult(program.id, customer_id, CustomerOutcome.NO_REFERRAL)
    signed_up_at = to_utc_iso(event.signed_up_at)
    code = read_code(event.referral_code)

    def refuse(reason: str, referrer: str | None = None) -> CustomerResult:
        store.refuse_referral(
            program.id,
            customer_id,
            {
                "programId": program.id,
                "memberId": customer_id,
                "code": code or event.referral_code.upper().replace(" ", ""),  # type: ignore[union-attr]
                "typed": event.referral_code,
                "referrerId": referrer,
                "reason": reason,
                "signedUpAt": signed_up_at,
            },
        )
        return result(CustomerOutcome.REFERRAL_REFUSED, reason)

    owner = store.code_owner(program.id, code) if code is not None else None
    if owner is None:
        return refuse(UNKNOWN_CODE)
    if owner == customer_id:
        return refuse(SELF_REFERRAL, owner)
    referral = {
        "programId": program.id,
        "memberId": customer_id,
        "referrerId": owner,
        "code": code,
        "signedUpAt": signed_up_at,
        "state": PENDING,
        "recordedAt": to_utc_iso(now),
        "ruleVersion": program.rule_version,
    }
    if store.record_referral(program.id, customer_id, referral):
        # The first order may be known already (events come in any order): its due day.
        settle(customer_id, now, program, store)
        return result(CustomerOutcome.REFERRAL_RECORDED, "recorded")
    existing = store.get_referral(program.id, customer_id) or {}
    if existing.get("referrerId") == owner:
        return result(CustomerOutcome.DUPLICATE, "duplicate")
    return refuse(ALREADY_REFERRED, owner)


def settle_referral(
    member_id: str,
    member: Mapping[str, Any],
    now: datetime,
    program: Program,
    store: ReferralStore,
) -> list[str]:
    """A referred customer's referral, once its first order's lot is available: ``paid``, or
    why not (``first_order_cancelled``, ``budget_spent``; ``referrer_yearly_cap`` when the
    customer was paid and the referrer not). Nothing before its day."""
    campaign = referral_campaign(program)
    due = referral_due(member)
    today = local_day(now, program.zone)
    if campaign is None or due is None or due > today:
        return []
    at = to_utc_iso(now)
    first_order = str(member["firstOrder"])
    order = store.get_customer_order(program.id, member_id, first_order)
    if not first_order_survived(order):
        store.void_referral(program.id, member_id, FIRST_ORDER_CANCELLED, at)
        settle(member_id, now, program, store)  # its due day is gone
        return [FIRST_ORDER_CANCELLED]
    referrer_id = str(member["refBy"])
    referrer_zone = member_zone(store.member_zone_item(program.id, referrer_id), program)
    budget = campaign.budget
    payout = ReferralPayout(
        campaign=campaign,
        customer_id=member_id,
        referrer_id=referrer_id,
        first_order_id=first_order,
        lot=available_attr(today),
        year=period_key(local_day(now, referrer_zone), campaign.per_member.period),
        budget_period=period_key(today, budget.period) if budget else None,
        pay_referrer=True,
        today=today,
        occurred_at=at,
        rule_version=program.rule_version,
    )
    outcomes: list[str] = []
    for _ in range(3):
        written = store.pay_referral(program.id, payout, at)
        if written == "paid":
            settle(member_id, now, program, store)
            return [*outcomes, "paid"]
        if written == REFERRER_YEARLY_CAP and payout.pay_referrer:
            # The new customer did nothing wrong: they are paid; the referrer is not.
            payout = replace(payout, pay_referrer=False)
            outcomes.append(REFERRER_YEARLY_CAP)
            continue
        if written == BUDGET_SPENT:
            store.void_referral(program.id, member_id, BUDGET_SPENT, at)
            settle(member_id, now, program, store)
            return [BUDGET_SPENT]
        return []  # decided meanwhile (another run)
    raise TransientConflict(f"the referral of {member_id} kept changing")
