"""Campaign bonuses (docs/campaigns.md): an order that qualifies earns each campaign's bonus once,
right after its credit; a cancelled or wholly refunded order gives its bonuses back.

Run after the customer's credit, as its own step: the credit's transaction stays two items (its
units unchanged for orders no campaign concerns). A crash between the two is finished by the
event's redelivery: the credit is then a duplicate, and the bonus is looked for again (the
order's lot read from its item), applied once (its reward item says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from shared.domain.campaigns import plan_reversal, plan_reward, qualifying
from shared.domain.events import OrderCompleted
from shared.domain.program import Program
from shared.domain.timeutil import local_day, to_utc_iso
from shared.logic.ports import TransientConflict

TRIES = 4


class CampaignStore(Protocol):
    def reward(self, program_id: str, member_id: str, plan: Any, at: str) -> Any: ...

    def rewards_of_order(
        self, program_id: str, member_id: str, campaign_ids: list[str], order_id: str
    ) -> list[dict[str, Any]]: ...

    def reverse_reward(self, program_id: str, member_id: str, reversal: Any, at: str) -> bool: ...

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def get_customer_order(
        self, program_id: str, member_id: str, order_id: str
    ) -> dict[str, Any] | None: ...


def reward_order(
    event: OrderCompleted,
    now: datetime,
    program: Program,
    store: CampaignStore,
    lot: str | None,
) -> dict[str, str]:
    """The bonuses the order earns, by campaign id: ``rewarded``, ``duplicate``, ``member_limit``
    or ``budget_spent``; each available at once, in this month's lot. ``lot``: the order's points
    lot from its credit, which says the order was credited (None: a redelivered credit; the
    order item is read to see whether the order earned at all)."""
    campaigns = qualifying(program, event)
    if not campaigns:
        return {}
    member_id = event.customer_id
    if lot is None:
        order: Mapping[str, Any] = (
            store.get_customer_order(program.id, member_id, event.order_id) or {}
        )
        if order.get("status") != "credited" or not order.get("lot"):
            return {}  # voided, or not credited (nothing to add a bonus to)
    today = local_day(now, program.zone)
    outcomes: dict[str, str] = {}
    for campaign in campaigns:
        plan = plan_reward(campaign, event, today, program)
        outcomes[campaign.id] = str(store.reward(program.id, member_id, plan, to_utc_iso(now)))
    return outcomes


def reverse_order_rewards(
    order_id: str, customer_id: str, now: datetime, program: Program, store: CampaignStore
) -> int:
    """Take back the bonuses of an order cancelled or wholly refunded (once each): from the
    balance (which may go below zero, as a refund's clawback does), or from the pending lot a
    bonus paid before bonuses became available at once joined. Returns the points taken."""
    ids = [campaign.id for campaign in program.campaigns if campaign.per_order]
    if not ids:
        return 0
    taken = 0
    for stored in store.rewards_of_order(program.id, customer_id, ids, order_id):
        taken += _reverse(stored, order_id, customer_id, now, program, store)
    return taken


def _reverse(
    stored: Mapping[str, Any],
    order_id: str,
    customer_id: str,
    now: datetime,
    program: Program,
    store: CampaignStore,
) -> int:
    reward = stored
    for _ in range(TRIES):
        member = store.get_member(program.id, customer_id) or {}
        reversal = plan_reversal(reward, member)
        if reversal is None:
            return 0
        if store.reverse_reward(program.id, customer_id, reversal, to_utc_iso(now)):
            return reversal.points
        # The lot matured (or the reward changed) since read: read both again.
        fresh = store.rewards_of_order(program.id, customer_id, [reversal.campaign_id], order_id)
        reward = fresh[0] if fresh else reward
    raise TransientConflict(f"the bonus of order {order_id} kept changing")
