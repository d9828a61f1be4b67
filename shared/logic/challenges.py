"""Weekly challenges (docs/campaigns.md): each credited order counts once toward the member's
calendar week; the order that makes the target pays the bonus, once a week; an order cancelled
or wholly refunded is uncounted, and takes the bonus back when the week no longer holds the
target.

Run after the customer's credit (and the eco bonuses), as its own step: a crash in between is
finished by the event's redelivery (the order's marker says whether it was counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from shared.domain.challenges import (
    ChallengeOrder,
    ChallengeReversal,
    plan_challenge_reversal,
    plan_count,
    weekly_challenges,
)
from shared.domain.events import OrderCompleted
from shared.domain.keys import challenge_order_sk, challenge_week_sk, reward_sk
from shared.domain.program import Program
from shared.domain.timeutil import local_day, to_utc_iso
from shared.logic.ports import TransientConflict

TRIES = 6


class ChallengeStore(Protocol):
    def member_zone_item(self, program_id: str, member_id: str) -> dict[str, Any]: ...

    def challenge_item(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None: ...

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def get_customer_order(
        self, program_id: str, member_id: str, order_id: str
    ) -> dict[str, Any] | None: ...

    def count_order(
        self, program_id: str, member_id: str, plan: ChallengeOrder, at: str, always: bool = False
    ) -> Any: ...

    def complete_week(
        self, program_id: str, member_id: str, plan: ChallengeOrder, at: str
    ) -> Any: ...

    def reverse_order(
        self, program_id: str, member_id: str, reversal: ChallengeReversal, at: str
    ) -> bool: ...


def count_order(
    event: OrderCompleted,
    now: datetime,
    program: Program,
    store: ChallengeStore,
    lot: str | None,
) -> dict[str, str]:
    """The order's part in each weekly challenge, by campaign id: ``counted``, ``rewarded``
    (it completed the week), ``duplicate`` (counted before) or ``budget_spent`` (it completed
    the week, the budget had no room: counted without the bonus). A week's bonus is available at
    once, in this month's lot. ``lot``: the order's points lot from its credit, which says the
    order was credited (None: a redelivered credit; read from the order item)."""
    challenges = weekly_challenges(program)
    if not challenges:
        return {}
    member_id = event.customer_id
    if lot is None:
        order: Mapping[str, Any] = (
            store.get_customer_order(program.id, member_id, event.order_id) or {}
        )
        if order.get("status") != "credited" or not order.get("lot"):
            return {}  # voided, or not credited: it does not count
    zone = store.member_zone_item(program.id, member_id)
    today = local_day(now, program.zone)
    at = to_utc_iso(now)
    outcomes: dict[str, str] = {}
    for campaign in challenges:
        plan = plan_count(campaign, event.order_id, event.completed_at, today, zone, program)
        outcomes[campaign.id] = _count(program.id, member_id, plan, at, store)
    return outcomes


def _count(
    program_id: str, member_id: str, plan: ChallengeOrder, at: str, store: ChallengeStore
) -> str:
    for _ in range(TRIES):
        written = str(store.count_order(program_id, member_id, plan, at))
        if written != "completes":
            return written
        completed = str(store.complete_week(program_id, member_id, plan, at))
        if completed == "not_completing":
            continue  # another order completed the week meanwhile: count this one after it
        if completed == "budget_spent":
            counted = str(store.count_order(program_id, member_id, plan, at, always=True))
            return "duplicate" if counted == "duplicate" else "budget_spent"
        return completed
    raise TransientConflict(f"the week of order {plan.order_id} kept changing")


def uncount_order(
    order_id: str, customer_id: str, now: datetime, program: Program, store: ChallengeStore
) -> int:
    """Uncount an order cancelled or wholly refunded (once), taking the week's bonus back when
    the week no longer holds the target. Returns the bonus points taken back."""
    taken = 0
    for campaign in weekly_challenges(program):
        target = campaign.when.orders_per_week or 0
        for _ in range(TRIES):
            reversal = _plan(order_id, customer_id, campaign.id, target, program, store)
            if reversal is None:
                break
            if store.reverse_order(program.id, customer_id, reversal, to_utc_iso(now)):
                taken += reversal.points
                break
        else:
            raise TransientConflict(f"the week of order {order_id} kept changing")
    return taken


def _plan(
    order_id: str,
    customer_id: str,
    campaign_id: str,
    target: int,
    program: Program,
    store: ChallengeStore,
) -> ChallengeReversal | None:
    marker = store.challenge_item(
        program.id, customer_id, challenge_order_sk(campaign_id, order_id)
    )
    if marker is None:
        return None
    week = store.challenge_item(
        program.id, customer_id, challenge_week_sk(campaign_id, str(marker["week"]))
    )
    week = week or {}
    reward = None
    member: Mapping[str, Any] = {}
    if week.get("paidBy"):
        reward = store.challenge_item(
            program.id, customer_id, reward_sk(campaign_id, str(week["paidBy"]))
        )
        member = store.get_member(program.id, customer_id) or {}
    return plan_challenge_reversal(marker, week, reward, member, target)
