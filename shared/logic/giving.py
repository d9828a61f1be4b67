"""Giving (docs/campaigns.md, "Giving"): points given through ``POST /v1/me/donations``, an
order's change given with its ``roundUp``, and each cause's totals (``GET /v1/causes``).

The match is decided against the cause's counter of the month as read, and written with a
condition that it still fits the budget: when concurrent donations used the room first, the
transaction is refused and the match decided again on the counter as it now stands (a
partial match, or none). So the budget is never overspent and every donation is written once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.errors import InsufficientPoints, InvalidInput, NotFound
from shared.domain.events import OrderCompleted
from shared.domain.giving import (
    DONATED,
    REFUSED,
    REVERSED,
    DonationOutcome,
    DonationPlan,
    DonationWrite,
    RoundUpRefusal,
    cents_text,
    giving_rules,
    month_of,
    plan_points_donation,
    plan_round_up,
)
from shared.domain.keys import CAUSE_TOTAL_SK, DONATION_SK_PREFIX, cause_month_sk, donation_sk
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso
from shared.logic.customers import CustomerStore, settle
from shared.logic.ports import PartitionPages, TransientConflict, page_after

TRIES = 12
"""Match decisions per donation: each refusal means another donation took budget room, so the
number of tries is bounded by how often the room can shrink before it is gone."""


class GivingStore(CustomerStore, Protocol):
    def cause_matched(self, program_id: str, cause_id: str, month: str) -> int: ...

    def donate(
        self, program_id: str, member_id: str, plan: DonationPlan, matched: int, at: str
    ) -> DonationOutcome: ...

    def refuse_round_up(self, program_id: str, member_id: str, refusal: RoundUpRefusal) -> bool: ...

    def reverse_round_up(
        self, program_id: str, member_id: str, donation: dict[str, Any], at: str
    ) -> bool: ...

    def get_donation(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None: ...

    def cause_counters(
        self, program_id: str, cause_ids: list[str], month: str
    ) -> dict[tuple[str, str], dict[str, Any]]: ...


class DonationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False
    )

    cause_id: str = Field(min_length=1, max_length=64, description="One of the program's causes.")
    points: int = Field(ge=1, le=10_000_000, description="Points to give (at least 100).")


class Amount(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: str
    currency: str


class DonationView(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    donation_id: str
    cause_id: str
    points: int
    given: Amount = Field(description="What the points are worth (the program's point value).")
    matched: Amount = Field(description="What the company adds (less when the budget ran low).")
    campaign_id: str
    rule_version: str
    occurred_at: str


class DonationEntry(BaseModel):
    """One of the member's gifts as ``GET /v1/me/donations`` lists it: points given through the
    API, an order's round-up (given back when the order was cancelled), or a round-up refused
    (with its reason, nothing given)."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    source: str = Field(
        description="`points` (given through the API) or `roundUp` (an order's change)."
    )
    state: str = Field(
        description="`donated`; `refused` (a round-up that gave nothing, see `reason`); "
        "`reversed` (a round-up given back: its order was cancelled)."
    )
    cause_id: str
    donation_id: str | None = Field(default=None, description="For a donation made.")
    order_id: str | None = Field(default=None, description="The order a round-up came with.")
    points: int = Field(description="Points given (0 for a round-up, paid in money).")
    given: Amount = Field(description="What was given: the points' worth, or the round-up.")
    matched: Amount = Field(description="What the company added.")
    reason: str | None = Field(default=None, description="Why a round-up was refused.")
    rule_version: str
    occurred_at: str


class DonationsPage(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    donations: list[DonationEntry] = Field(
        description="In key order: points given through the API, then round-ups by order id."
    )
    next_token: str | None = Field(description="Pass as nextToken for the next page.")


class CauseTotals(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    cause_id: str
    name: str
    month: str
    donated_this_month: Amount
    matched_this_month: Amount
    match_budget_this_month: Amount
    donated_in_all: Amount
    matched_in_all: Amount
    donations_in_all: int


class CausesView(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    program_id: str
    causes: list[CauseTotals]


def _amount(cents: int, currency: str) -> Amount:
    return Amount(amount=cents_text(cents), currency=currency)


def _view(stored: Mapping[str, Any]) -> DonationView:
    currency = str(stored.get("currency", ""))
    return DonationView(
        donation_id=str(stored["donationId"]),
        cause_id=str(stored["causeId"]),
        points=int(stored.get("points") or 0),
        given=_amount(int(stored.get("cents") or 0), currency),
        matched=_amount(int(stored.get("matchedCents") or 0), currency),
        campaign_id=str(stored.get("campaignId", "")),
        rule_version=str(stored.get("ruleVersion", "")),
        occurred_at=str(stored.get("occurredAt", "")),
    )


def _entry(stored: Mapping[str, Any]) -> DonationEntry:
    currency = str(stored.get("currency", ""))
    refused = stored.get("state") == REFUSED
    return DonationEntry(
        source=str(stored.get("source", "")),
        state=str(stored.get("state", DONATED)),
        cause_id=str(stored.get("causeId", "")),
        donation_id=stored.get("donationId"),
        order_id=stored.get("orderId"),
        points=int(stored.get("points") or 0),
        given=_amount(0 if refused else int(stored.get("cents") or 0), currency),
        matched=_amount(int(stored.get("matchedCents") or 0), currency),
        reason=stored.get("reason"),
        rule_version=str(stored.get("ruleVersion", "")),
        occurred_at=str(stored.get("occurredAt", "")),
    )


def donations_page(
    member_id: str, limit: int, token: str | None, program: Program, store: PartitionPages
) -> DonationsPage:
    """A page of the member's donations and refused round-ups (one strongly consistent Query:
    a read unit per 4 KB of them)."""
    after = page_after(token, DONATION_SK_PREFIX)
    page = store.page(program.id, member_id, DONATION_SK_PREFIX, limit, after, True)
    return DonationsPage(
        donations=[_entry(item) for item in page.items], next_token=page.next_token
    )


def _request_hash(body: DonationRequest) -> str:
    return hashlib.sha256(f"{body.cause_id}\n{body.points}".encode()).hexdigest()


def _write(
    member_id: str, plan: DonationPlan, now: datetime, program: Program, store: GivingStore
) -> DonationOutcome:
    """Write the donation, deciding its match again each time the budget moved under it."""
    for _ in range(TRIES):
        matched = plan.match_for(store.cause_matched(program.id, plan.cause_id, plan.month))
        outcome = store.donate(program.id, member_id, plan, matched, to_utc_iso(now))
        if outcome.write is not DonationWrite.MATCH_CHANGED:
            return outcome
    raise TransientConflict(f"the match budget of {plan.cause_id} kept changing")


def donate_points(
    member_id: str,
    idempotency_key: str,
    body: DonationRequest,
    now: datetime,
    program: Program,
    store: GivingStore,
) -> tuple[DonationView, bool]:
    """Give points to a cause, once per Idempotency-Key: (the donation, whether it was made
    now). Points come out of what is available (pending points are settled first); too few is
    409 ``insufficient_points`` and nothing is written."""
    plan = plan_points_donation(
        program, idempotency_key, body.cause_id, body.points, now, _request_hash(body)
    )
    stored = store.get_donation(program.id, member_id, plan.sk)
    if stored is None:
        if settle(member_id, now, program, store) is None:
            raise InsufficientPoints(f"{body.points} points asked, 0 available", field="points")
        outcome = _write(member_id, plan, now, program, store)
        if outcome.write is DonationWrite.INSUFFICIENT:
            raise InsufficientPoints(
                f"{body.points} points asked, {max(outcome.available or 0, 0)} available",
                field="points",
            )
        if outcome.write is DonationWrite.DONATED:
            return _view(store.get_donation(program.id, member_id, plan.sk) or {}), True
        stored = store.get_donation(program.id, member_id, plan.sk)
    if stored is None or stored.get("requestHash") != plan.request_hash:
        raise InvalidInput(
            "Idempotency-Key: this key was first used with another body; use a new key for a "
            "new donation",
            field="Idempotency-Key",
        )
    return _view(stored), False


def give_round_up(event: OrderCompleted, program: Program, store: GivingStore) -> str | None:
    """An order's change to a cause (the order is credited already): ``donated``, ``duplicate``
    or ``refused:{reason}`` (kept on a donation item; the order counts either way). None: no
    round-up, or a program without causes."""
    if event.round_up is None or program.giving is None:
        return None
    planned = plan_round_up(program, event.order_id, event.round_up, event.completed_at)
    if isinstance(planned, RoundUpRefusal):
        store.refuse_round_up(program.id, event.customer_id, planned)
        return f"refused:{planned.reason}"
    return str(_write(event.customer_id, planned, event.completed_at, program, store).write)


def take_back_round_up(
    order_id: str, customer_id: str, now: datetime, program: Program, store: GivingStore
) -> str | None:
    """An order cancelled or wholly refunded: its round-up is given back with its match, the
    cause's counters lowered (the month's match budget frees up). ``reversed``, or
    ``already_reversed``; None: the order gave no round-up (or it was refused)."""
    if program.giving is None:
        return None
    stored = store.get_donation(program.id, customer_id, donation_sk("order", order_id))
    state = stored.get("state") if stored else None
    if state == REVERSED:
        return "already_reversed"
    if stored is None or state != DONATED:
        return None
    if store.reverse_round_up(program.id, customer_id, stored, to_utc_iso(now)):
        return REVERSED
    return "already_reversed"  # a concurrent delivery of the cancellation did it


def causes_view(program: Program, now: datetime, store: GivingStore) -> CausesView:
    """Each cause with its totals this month (the program's zone) and in all: two counter items
    per cause, one eventually consistent batch read."""
    try:
        rules = giving_rules(program)
    except InvalidInput as error:
        raise NotFound(error.message, field="programId") from error
    month = month_of(now, program)
    counters = store.cause_counters(program.id, [cause.id for cause in rules.causes], month)
    currency = program.currency
    causes = []
    for cause in rules.causes:
        this = counters.get((cause.id, cause_month_sk(month)), {})
        total = counters.get((cause.id, CAUSE_TOTAL_SK), {})
        causes.append(
            CauseTotals(
                cause_id=cause.id,
                name=cause.name,
                month=month,
                donated_this_month=_amount(int(this.get("donatedCents") or 0), currency),
                matched_this_month=_amount(int(this.get("matchedCents") or 0), currency),
                match_budget_this_month=Amount(
                    amount=str(rules.match_budget(cause)), currency=currency
                ),
                donated_in_all=_amount(int(total.get("donatedCents") or 0), currency),
                matched_in_all=_amount(int(total.get("matchedCents") or 0), currency),
                donations_in_all=int(total.get("donations") or 0),
            )
        )
    return CausesView(program_id=program.id, causes=causes)
