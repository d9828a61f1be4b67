"""Use cases of the customer program (docs/customer-program.md): earn, hold, capture, release,
refund, mature and expire points, each exactly once.

The store's transactions carry conditions; these functions decide what a refused condition
means. An order's credit reads nothing: it assumes the member item's standing (no status, no
plan, nothing due sooner) and, when the assumption was wrong, the refused transaction returns the
member item as it stood, and the credit is made again with the standing it shows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.customer import (
    CustomerCredit,
    DuePlan,
    Refund,
    available_attr,
    check_hold,
    hold_expires_at,
    money_share,
    plan_customer_credit,
    plan_due,
    points_value,
    refunded_share,
    share_of,
    standing_of,
    wallet_amount,
    year_attr,
)
from shared.domain.dividend import refunded_cents
from shared.domain.draw import DRAW_MONTH_ATTR, draw_month_key, entries_close, month_of
from shared.domain.errors import (
    DomainError,
    HoldClosed,
    HoldMismatch,
    InsufficientPoints,
    InsufficientWallet,
    InvalidInput,
    NotFound,
)
from shared.domain.events import MembershipChanged, OrderCancelled, OrderCompleted, OrderRefunded
from shared.domain.money import Money
from shared.domain.program import Program
from shared.domain.timeutil import local_day, parse_instant, to_utc_iso
from shared.logic.dividend import register_plan
from shared.logic.ports import Found, TransientConflict

MAX_TRIES = 6
GUESSES = 4096
"""How many members' standings an execution environment remembers (see ``StandingGuesses``)."""


class StandingGuesses:
    """The member items this execution environment last saw, as its next credits' guesses.

    A credit reads nothing: it assumes a standing, and a refused assumption costs a transaction.
    A new customer is assumed to have none (right), a customer with a status or a plan is
    assumed to have what this environment saw last (right, unless it changed meanwhile); only
    a customer it has not seen pays a refused transaction first. Bounded, oldest forgotten first.
    """

    def __init__(self, size: int = GUESSES) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def get(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        found = self._items.get((program_id, member_id))
        if found is not None:
            self._items.move_to_end((program_id, member_id))
        return found

    def clear(self) -> None:
        self._items.clear()

    def put(self, program_id: str, member_id: str, item: Mapping[str, Any]) -> None:
        self._items[(program_id, member_id)] = dict(item)
        self._items.move_to_end((program_id, member_id))
        while len(self._items) > self.size:
            self._items.popitem(last=False)


guesses = StandingGuesses()


class CustomerStore(Protocol):
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def get_customer_order(
        self, program_id: str, member_id: str, order_id: str
    ) -> dict[str, Any] | None: ...

    def credit(
        self,
        program_id: str,
        member_id: str,
        order: Mapping[str, Any],
        credit: CustomerCredit,
        hold: Mapping[str, Any] | None,
        lower_check: bool,
        attempt_id: str,
        expect_refunds: bool = False,
    ) -> Found: ...

    def capture_late(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        points: int,
        at: datetime,
        attempt_id: str,
        refunded: str | None = None,
        returned: int = 0,
        returned_lot: str = "",
        wallet: tuple[str, Decimal] | None = None,
        wallet_returned: Decimal = ...,
    ) -> Found: ...

    def record_pending_refund(
        self, program_id: str, member_id: str, order_id: str, refund: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...

    def record_void(
        self, program_id: str, member_id: str, order: Mapping[str, Any], status: str
    ) -> bool: ...

    def register_plan_years(
        self, program_id: str, member_id: str, years: Sequence[int], at: str
    ) -> None: ...

    def change_membership(
        self,
        program_id: str,
        member_id: str,
        plan: str | None,
        valid_until: datetime | None,
        occurred_at: datetime,
    ) -> bool: ...

    def place_hold(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        points: int,
        held_at: datetime,
        expires_at: datetime,
        attempt_id: str,
        wallet: tuple[str, Decimal] | None = None,
    ) -> Found: ...

    def release_hold(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        hold: Mapping[str, Any],
        released_at: datetime,
        reason: str,
    ) -> Found: ...

    def record_cancellation(
        self, program_id: str, member_id: str, order_id: str, occurred_at: datetime, kind: str
    ) -> bool: ...

    def refund(
        self,
        program_id: str,
        member_id: str,
        order: Mapping[str, Any],
        refund: Refund,
        member_version: int,
    ) -> Found: ...

    def apply_due(
        self, program_id: str, member_id: str, plan: DuePlan, at: datetime, version: int
    ) -> bool: ...

    def expired_holds(self, program_id: str, before: datetime) -> Iterator[tuple[str, str]]: ...

    def due_members(self, program_id: str, today: date) -> Iterator[str]: ...


class CustomerOutcome(StrEnum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    VOIDED = "voided"
    REFUNDED = "refunded"
    CANCELLED_BEFORE_COMPLETION = "cancelled_before_completion"
    REFUND_PENDING = "refund_pending"
    """A refund of an amount came before its order's completion: kept, applied by the credit."""
    NOTHING_TO_REFUND = "nothing_to_refund"
    MEMBERSHIP_CHANGED = "membership_changed"
    MEMBERSHIP_STALE = "membership_stale"
    PROFILE_UPDATED = "profile_updated"
    PROFILE_STALE = "profile_stale"
    """An older or repeated ``ProfileUpdated``: nothing changed."""
    REFERRAL_RECORDED = "referral_recorded"
    REFERRAL_REFUSED = "referral_refused"
    """A ``CustomerSignedUp`` whose referral was refused (stored with why: ``campaigns``)."""
    NO_REFERRAL = "no_referral"


class CustomerResult(Struct, frozen=True):
    program_id: str
    member_id: str
    outcome: CustomerOutcome
    points: int = 0
    """The change to the member's points (earned, or clawed back: negative)."""
    spent: int = 0
    """Points captured from the order's hold (a credit) or given back (a refund)."""
    lot: str | None = None
    """A credit: the points lot the order's points went to (campaign bonuses join it)."""
    campaigns: dict[str, object] = field(default_factory=dict)
    """Campaign bonuses: by campaign id, what happened (docs/campaigns.md)."""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "programId": self.program_id,
            "memberId": self.member_id,
            "outcome": self.outcome.value,
            "points": self.points,
        }
        if self.spent:
            body["spent"] = self.spent
        if self.campaigns:
            body["campaigns"] = self.campaigns
        return body


def _hold(order: Mapping[str, Any] | None) -> dict[str, Any] | None:
    hold = (order or {}).get("hold")
    return dict(hold) if isinstance(hold, Mapping) else None


def _money_attr(value: Money) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency}


# -- earning --------------------------------------------------------------------------------------


def credit_customer(
    event: OrderCompleted,
    now: datetime,
    program: Program,
    store: CustomerStore,
    attempt_id: str,
    void: bool = False,
) -> CustomerResult:
    """Credit the order's customer, capturing the order's checkout hold if it has one. ``void``:
    the order was cancelled before it completed (the shopper's side says so): recorded, never
    credited."""
    member_id = event.customer_id
    order = {
        "memberId": member_id,
        "orderId": event.order_id,
        "shopperId": event.member_id,
        "completedAt": to_utc_iso(event.completed_at),
        "total": _money_attr(event.total),
    }
    entry = draw_entry(program, event.completed_at, now)
    if entry is not None:
        # The prize draw's entry: the order item joins the sparse index ByDrawMonth, one index
        # write, no other item (docs/campaigns.md).
        order[DRAW_MONTH_ATTR] = entry

    def result(
        outcome: CustomerOutcome, points: int = 0, spent: int = 0, lot: str | None = None
    ) -> CustomerResult:
        return CustomerResult(program.id, member_id, outcome, points, spent, lot)

    if void:
        if store.record_void(program.id, member_id, order, "void"):
            return result(CustomerOutcome.VOIDED)
        return result(CustomerOutcome.DUPLICATE)
    member = guesses.get(program.id, member_id)
    hold: dict[str, Any] | None = None
    early_refunds: list[Mapping[str, Any]] = []
    for _ in range(MAX_TRIES):
        credit = plan_customer_credit(
            program,
            event.total,
            event.completed_at,
            standing_of(program, member, event.completed_at),
            now,
        )
        # Keep the member's next due day the earliest: lower it when it is later than this
        # order's (the condition says which it is, so a wrong guess is refused, never applied).
        check = (member or {}).get("checkOn")
        due = credit.due_on.isoformat() if credit.due_on else None
        lower_check = due is not None and isinstance(check, str) and check > due
        written = store.credit(
            program.id,
            member_id,
            order,
            credit,
            hold,
            lower_check,
            attempt_id,
            expect_refunds=bool(early_refunds),
        )
        captured = int(hold["points"]) if hold and hold.get("state") == "held" else 0
        if written.applied:
            seen = dict(member or {})
            year = year_attr(credit.standing.year)
            seen[year] = int(seen.get(year) or 0) + credit.points
            if credit.due_on is not None:
                seen["checkOn"] = min(str(seen.get("checkOn") or "9999"), credit.due_on.isoformat())
            guesses.put(program.id, member_id, seen)
            _apply_early_refunds(event, early_refunds, (), now, program, store)
            return result(CustomerOutcome.CREDITED, credit.points, captured, credit.lot)
        if written.order is not None:
            found = written.order
            if found.get("creditedBy") == attempt_id:
                _apply_early_refunds(event, early_refunds, (), now, program, store)
                return result(CustomerOutcome.CREDITED, credit.points, captured, credit.lot)
            if found.get("completedAt"):
                # A credit whose early refunds a crash left unapplied: apply them now.
                _apply_early_refunds(
                    event,
                    found.get("pendingRefunds") or [],
                    found.get("refundKeys") or [],
                    now,
                    program,
                    store,
                )
                return result(CustomerOutcome.DUPLICATE)
            if found.get("cancelledAt"):
                voided = store.record_void(program.id, member_id, order, "void")
                return result(CustomerOutcome.VOIDED if voided else CustomerOutcome.DUPLICATE)
            hold = _hold(found)
            early_refunds = list(found.get("pendingRefunds") or [])
        if written.member is not None:
            member = written.member
            guesses.put(program.id, member_id, member)
    raise TransientConflict(f"order {event.order_id} kept changing while being credited")


def _apply_early_refunds(
    event: OrderCompleted,
    refunds: Any,
    applied: Any,
    now: datetime,
    program: Program,
    store: CustomerStore,
) -> None:
    """Refunds that came before the order's completion, applied once it is credited (each is
    applied once: its key joins the order's ``refundKeys``)."""
    for refund in refunds:
        if not isinstance(refund, Mapping) or refund.get("key") in set(applied):
            continue
        detail: dict[str, Any] = {
            "orderId": event.order_id,
            "memberId": event.member_id,
            "occurredAt": refund["occurredAt"],
        }
        if refund.get("amount"):
            detail["amount"] = refund["amount"]
        refund_customer(
            OrderRefunded.model_validate(detail), event.customer_id, now, program, store
        )


# -- membership -----------------------------------------------------------------------------------


def change_membership(
    event: MembershipChanged, program: Program, store: CustomerStore
) -> CustomerResult:
    if event.plan is not None and program.membership(event.plan) is None:
        known = ", ".join(plan.id for plan in program.memberships) or "none"
        raise InvalidInput(
            f"detail.plan: {event.plan!r} is not a plan of {program.id} (known: {known})",
            field="detail.plan",
        )
    # The annual dividend's registry first: a member who held its plan in a year is paid for
    # it, whatever the order the changes arrive in (docs/campaigns.md).
    register_plan(event, program, store)
    changed = store.change_membership(
        program.id, event.customer_id, event.plan, event.valid_until, event.occurred_at
    )
    outcome = CustomerOutcome.MEMBERSHIP_CHANGED if changed else CustomerOutcome.MEMBERSHIP_STALE
    return CustomerResult(program.id, event.customer_id, outcome)


# -- what falls due -------------------------------------------------------------------------------


def settle(
    member_id: str, now: datetime, program: Program, store: CustomerStore
) -> dict[str, Any] | None:
    """Apply what has fallen due on the member item by ``now`` (pending points that became
    available, expired lots, an expiry notice, the next due day); the member item after it."""
    today = local_day(now, program.zone)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, member_id)
        if member is None:
            return None
        plan = plan_due(program, member, today)
        next_due = plan.next_due.isoformat() if plan.next_due else None
        if not plan.changes and member.get("checkOn") == next_due:
            return member
        if store.apply_due(program.id, member_id, plan, now, int(member.get("v") or 0)):
            return store.get_member(program.id, member_id)
    raise TransientConflict(f"member {member_id} kept changing while settling")


# -- checkout holds -------------------------------------------------------------------------------


class HoldView(Struct, frozen=True):
    hold_id: str
    order_id: str
    points: int
    value: Money
    state: str
    expires_at: str
    created: bool
    """False: the same hold was asked for before (an idempotent replay)."""
    wallet: Money | None = None
    """What the member's wallet pays (None: points alone)."""


def _view(program: Program, order_id: str, hold: Mapping[str, Any], created: bool) -> HoldView:
    points = int(hold["points"])
    amount = wallet_amount(hold)
    return HoldView(
        hold_id=order_id,
        order_id=order_id,
        points=points,
        value=points_value(program, points),
        state=str(hold.get("state", "held")),
        expires_at=str(hold.get("expiresAt", "")),
        created=created,
        wallet=Money(amount=amount, currency=program.currency) if amount else None,
    )


def _new_view(
    program: Program,
    order_id: str,
    points: int,
    state: str,
    expires_at: datetime,
    wallet: tuple[str, Decimal] | None,
) -> HoldView:
    """The view of a hold just written (held, or captured at once)."""
    hold: dict[str, Any] = {"points": points, "state": state, "expiresAt": to_utc_iso(expires_at)}
    if wallet is not None:
        hold["wallet"] = wallet[1]
    return _view(program, order_id, hold, created=True)


def _wallet_refused(
    member_id: str, wallet: tuple[str, Decimal], found: Mapping[str, Any]
) -> DomainError:
    """Why the wallet's part of a hold was refused: no wallet, or too little in it."""
    if not found:
        return NotFound(f"member {member_id} has no wallet in {wallet[0]}", field="wallet")
    balance = Decimal(str(found.get("walletBalance") or 0))
    return InsufficientWallet(
        f"{wallet[1]} asked of the wallet, {max(balance, Decimal(0))} available", field="wallet"
    )


def _check_same_hold(
    order_id: str, existing: Mapping[str, Any], points: int, wallet_money: Decimal | None
) -> None:
    """An order holds once: asking again with other amounts is a conflict naming the field."""
    if int(existing["points"]) != points:
        raise HoldMismatch(
            f"order {order_id} already holds {existing['points']} points", field="points"
        )
    if wallet_amount(existing) != (wallet_money or 0):
        raise HoldMismatch(
            f"order {order_id} already holds {wallet_amount(existing)} of the wallet",
            field="wallet",
        )


def place_hold(
    member_id: str,
    order_id: str,
    points: int,
    now: datetime,
    program: Program,
    store: CustomerStore,
    attempt_id: str,
    wallet_money: Decimal | None = None,
) -> HoldView:
    """Hold ``points`` of the member's available points, and ``wallet_money`` of their wallet
    in the program ``holds.walletFrom`` names, for the order (idempotent by order id: the same
    amounts again answer the same hold; other amounts are a conflict)."""
    wallet_from = check_hold(program, points, wallet_money)
    wallet = (wallet_from, wallet_money) if wallet_from and wallet_money else None
    if points:
        member = settle(member_id, now, program, store)
        if member is None:
            raise NotFound(f"member {member_id} has no points in {program.id}", field="memberId")
    expires_at = hold_expires_at(program, now)
    for _ in range(MAX_TRIES):
        written = store.place_hold(
            program.id, member_id, order_id, points, now, expires_at, attempt_id, wallet
        )
        if written.applied:
            return _new_view(program, order_id, points, "held", expires_at, wallet)
        if written.order is not None:
            existing = _hold(written.order)
            if existing is None and written.order.get("status") == "credited":
                late = _capture_late(
                    written.order, member_id, points, now, program, store, attempt_id, wallet
                )
                if late is not None:
                    return late
                continue
            if existing is not None:
                _check_same_hold(order_id, existing, points, wallet_money)
                return _view(program, order_id, existing, created=False)
            raise HoldClosed(f"order {order_id} is already completed or cancelled", field="orderId")
        if wallet is not None and written.wallet is not None:
            raise _wallet_refused(member_id, wallet, written.wallet)
        if written.member is not None:
            if not written.member:
                raise NotFound(
                    f"member {member_id} has no points in {program.id}", field="memberId"
                )
            available = int(written.member.get("bal") or 0)
            raise InsufficientPoints(
                f"{points} points asked, {max(available, 0)} available", field="points"
            )
    raise TransientConflict(f"order {order_id} kept changing while being held")


def _capture_late(
    order: Mapping[str, Any],
    member_id: str,
    points: int,
    now: datetime,
    program: Program,
    store: CustomerStore,
    attempt_id: str,
    wallet: tuple[str, Decimal] | None = None,
) -> HoldView | None:
    """The order's completion came first: the hold is captured at once, and a refund already
    applied gives back its share of them (None: the order changed meanwhile, look again)."""
    order_id = str(order["orderId"])
    refunded = order.get("refunded")
    returned = 0
    wallet_returned = Decimal(0)
    if refunded is not None:
        total = order.get("total") or {}
        share = refunded_share(
            Money(
                amount=Decimal(str(total.get("amount", "0"))),
                currency=str(total.get("currency", program.currency)),
            ),
            Decimal(str(refunded)),
        )
        returned = share_of(points, share)
        if wallet is not None:
            wallet_returned = money_share(wallet[1], share)
    written = store.capture_late(
        program.id,
        member_id,
        order_id,
        points,
        now,
        attempt_id,
        refunded=str(refunded) if refunded is not None else None,
        returned=returned,
        returned_lot=available_attr(local_day(now, program.zone)),
        wallet=wallet,
        wallet_returned=wallet_returned,
    )
    if written.applied:
        return _new_view(program, order_id, points, "captured", now, wallet)
    if written.order is not None:
        return None  # a hold (or a refund) came meanwhile: look again
    if wallet is not None and written.wallet is not None:
        raise _wallet_refused(member_id, wallet, written.wallet)
    if written.member is not None:
        if not written.member:
            raise NotFound(f"member {member_id} has no points in {program.id}", field="memberId")
        available = int(written.member.get("bal") or 0)
        raise InsufficientPoints(
            f"{points} points asked, {max(available, 0)} available", field="points"
        )
    return None


def release_hold(
    member_id: str,
    order_id: str,
    now: datetime,
    program: Program,
    store: CustomerStore,
    reason: str,
) -> HoldView:
    """Give a hold's points back (its order was not placed, was cancelled, or its time ran
    out). Releasing a released hold changes nothing; a captured hold cannot be released."""
    for _ in range(MAX_TRIES):
        order = store.get_customer_order(program.id, member_id, order_id)
        hold = _hold(order)
        if hold is None:
            raise NotFound(f"order {order_id} holds no points", field="orderId")
        state = hold.get("state")
        if state == "released":
            return _view(program, order_id, hold, created=False)
        if state == "captured":
            raise HoldClosed(
                f"the hold of order {order_id} was captured by its completion", field="orderId"
            )
        written = store.release_hold(program.id, member_id, order_id, hold, now, reason)
        if written.applied:
            return _view(program, order_id, {**hold, "state": "released"}, created=False)
    raise TransientConflict(f"the hold of order {order_id} kept changing while released")


# -- cancellations and refunds --------------------------------------------------------------------


def _plan_refund(
    event: OrderCancelled,
    order: Mapping[str, Any],
    member: Mapping[str, Any],
    now: datetime,
    program: Program,
) -> Refund | None:
    total_attr = order.get("total") or {}
    total = Money(
        amount=Decimal(str(total_attr.get("amount", "0"))),
        currency=str(total_attr.get("currency", program.currency)),
    )
    before = Decimal(str(order.get("refunded") or "0"))
    amount = event.amount if isinstance(event, OrderRefunded) else None
    after = total.amount if amount is None else min(total.amount, before + amount.amount)
    share = refunded_share(total, after)
    points = int(order.get("points") or 0)
    clawed_total = share_of(points, share)
    clawed = clawed_total - int(order.get("clawed") or 0)
    hold = _hold(order)
    captured = hold is not None and hold.get("state") == "captured"
    spent = int(hold["points"]) if hold and captured else 0
    returned_total = share_of(spent, share)
    returned = returned_total - int(order.get("returned") or 0)
    wallet_total = money_share(wallet_amount(hold), share) if captured else Decimal(0)
    wallet_back = wallet_total - Decimal(str(order.get("walletReturned") or 0))
    if clawed <= 0 and returned <= 0 and wallet_back <= 0 and after == before:
        return None
    lot = str(order.get("lot") or "")
    from_pending = min(clawed, int(member.get(lot) or 0)) if lot.startswith("pd") else 0
    completed = parse_instant(str(order["completedAt"]))
    return Refund(
        key=f"{event.detail_type}@{to_utc_iso(event.occurred_at)}",
        kind=event.detail_type,
        occurred_at=to_utc_iso(event.occurred_at),
        amount=_money_attr(amount) if amount is not None else None,
        refunded=str(after),
        whole=share >= 1,
        clawed=clawed,
        clawed_total=clawed_total,
        from_pending=max(0, from_pending),
        from_pending_lot=lot,
        returned=max(0, returned),
        returned_total=returned_total,
        returned_lot=available_attr(local_day(now, program.zone)),
        year=local_day(completed, program.zone).year,
        rule_version=program.rule_version,
        wallet_returned=max(Decimal(0), wallet_back),
        wallet_returned_total=wallet_total,
        drop_draw_entry=DRAW_MONTH_ATTR in order
        and draw_entry(program, completed, now) is not None,
        order_cents=refunded_cents(program, total.currency, before, after),
    )


def draw_entry(program: Program, completed_at: datetime, now: datetime) -> str | None:
    """The prize draw's index key for an order completed at ``completed_at``, credited (or
    taken back) at ``now``: None when the program has no draw, or the month's entries have
    closed (its draw may have been made: entries never change after it)."""
    draw = program.prize_draw
    if draw is None:
        return None
    month = month_of(completed_at, program.time_zone)
    if now >= entries_close(month, program.time_zone, draw.entries_close_days):
        return None
    return draw_month_key(program.id, month)


def _keep_early_refund(
    event: OrderRefunded,
    order: Mapping[str, Any] | None,
    customer_id: str,
    program: Program,
    store: CustomerStore,
) -> CustomerOutcome | None:
    """A refund of an amount before its order's completion: kept on the order item, applied by
    the credit. None: the order completed meanwhile (apply it as usual)."""
    if order is not None and order.get("cancelledAt"):
        return CustomerOutcome.DUPLICATE  # the order was cancelled: it will earn nothing
    assert event.amount is not None
    early = {
        "key": f"{event.detail_type}@{to_utc_iso(event.occurred_at)}",
        "occurredAt": to_utc_iso(event.occurred_at),
        "amount": _money_attr(event.amount),
    }
    found = store.record_pending_refund(program.id, customer_id, event.order_id, early)
    if found is None:
        return CustomerOutcome.REFUND_PENDING
    if early["key"] in (found.get("pendingRefundKeys") or []):
        return CustomerOutcome.DUPLICATE
    if found.get("cancelledAt") and not found.get("completedAt"):
        return CustomerOutcome.DUPLICATE
    return None


def refund_customer(
    event: OrderCancelled,
    customer_id: str,
    now: datetime,
    program: Program,
    store: CustomerStore,
) -> CustomerResult:
    """A cancellation or (partial) refund of the customer's order: earned points come back out
    in proportion (from the pending lot while it is pending), spent points come back, a hold not
    yet captured is released. The balance may go negative."""

    def result(outcome: CustomerOutcome, points: int = 0, spent: int = 0) -> CustomerResult:
        return CustomerResult(program.id, customer_id, outcome, points, spent)

    for _ in range(MAX_TRIES):
        order = store.get_customer_order(program.id, customer_id, event.order_id)
        early_refund = isinstance(event, OrderRefunded) and event.amount is not None
        if early_refund and (order is None or not order.get("completedAt")):
            assert isinstance(event, OrderRefunded)
            early = _keep_early_refund(event, order, customer_id, program, store)
            if early is not None:
                return result(early)
            continue  # completed meanwhile: look again
        if order is None or not (order.get("completedAt") or order.get("cancelledAt")):
            hold = _hold(order)
            if hold is not None and hold.get("state") == "held":
                release_hold(customer_id, event.order_id, now, program, store, event.detail_type)
            if store.record_cancellation(
                program.id, customer_id, event.order_id, event.occurred_at, event.detail_type
            ):
                return result(CustomerOutcome.CANCELLED_BEFORE_COMPLETION)
            continue
        if order.get("status") != "credited":
            return result(CustomerOutcome.DUPLICATE)
        key = f"{event.detail_type}@{to_utc_iso(event.occurred_at)}"
        if key in (order.get("refundKeys") or []):
            return result(CustomerOutcome.DUPLICATE)
        member = store.get_member(program.id, customer_id) or {}
        refund = _plan_refund(event, order, member, now, program)
        if refund is None:
            return result(CustomerOutcome.NOTHING_TO_REFUND)
        written = store.refund(program.id, customer_id, order, refund, int(member.get("v") or 0))
        if written.applied:
            return result(CustomerOutcome.REFUNDED, -refund.clawed, refund.returned)
    raise TransientConflict(f"order {event.order_id} kept changing while being refunded")


# -- the scheduled settlement ---------------------------------------------------------------------


class SettlementRun(Struct):
    program_id: str
    holds_released: int = 0
    members_settled: int = 0
    matured: int = 0
    expired: int = 0
    notices: int = 0
    referrals_paid: int = 0
    referrals_refused: dict[str, int] = field(default_factory=dict)
    """Referrals due that paid nothing (``first_order_cancelled``, ``budget_spent``) and
    referrers not paid past their yearly limit (``referrer_yearly_cap``)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "programId": self.program_id,
            "holdsReleased": self.holds_released,
            "membersSettled": self.members_settled,
            "pointsMatured": self.matured,
            "pointsExpired": self.expired,
            "expiryNotices": self.notices,
            "referralsPaid": self.referrals_paid,
            "referralsRefused": dict(self.referrals_refused),
        }


def settle_due(now: datetime, program: Program, store: CustomerStore) -> SettlementRun:
    """The schedule's pass (every few minutes): release the holds whose time ran out, then
    settle the members with something due today, found in the sparse index (no Scan). Each
    step is idempotent, so an overlapping or repeated run changes nothing twice."""
    run = SettlementRun(program.id)
    for member_id, order_id in list(store.expired_holds(program.id, now)):
        try:
            release_hold(member_id, order_id, now, program, store, "expired")
        except (HoldClosed, NotFound):
            continue  # captured or released meanwhile: nothing to release
        run.holds_released += 1
    today = local_day(now, program.zone)
    for member_id in list(store.due_members(program.id, today)):
        before = store.get_member(program.id, member_id) or {}
        after = settle(member_id, now, program, store) or {}
        if after.get("refState") == "pending":  # a referral waiting for its first order
            from shared.logic.referrals import settle_referral  # noqa: PLC0415

            for outcome in settle_referral(member_id, after, now, program, store):  # type: ignore[arg-type]
                if outcome == "paid":
                    run.referrals_paid += 1
                else:
                    run.referrals_refused[outcome] = run.referrals_refused.get(outcome, 0) + 1
        if after.get("v") == before.get("v"):
            continue
        run.members_settled += 1
        due = after.get("lastDue") or {}
        run.matured += int(due.get("matured") or 0)
        run.expired += int(due.get("expired") or 0)
        run.notices += 1 if due.get("expiring") else 0
    return run
