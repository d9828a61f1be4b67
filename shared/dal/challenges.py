"""Weekly challenges on DynamoDB (docs/campaigns.md): mechanical, like the other repositories.

Counting an order is one transaction of two items: the order's marker (``CHORDER#{campaignId}#
{orderId}``, put once) and the week's item (``CHALLENGE#{campaignId}#{week}``, ``ADD n 1``),
conditioned on the order *not* completing the week (fewer than target - 1 counted, or the bonus
paid). Refused on the week's item, the order completes it: the same two items, the week's now
conditioned on completing (at least target - 1 counted and nothing paid, ``SET paid 1,
paidBy``), plus the reward item, the member item (the bonus in the order's lot) and the budget.
DynamoDB evaluates each condition on the item as it is, so of two orders completing a week at
once exactly one pays; the other is refused and counted as an order after the bonus.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from shared.domain.campaigns import REVERSED as REWARD_REVERSED
from shared.domain.campaigns import REWARDED
from shared.domain.challenges import COUNTED, REVERSED, ChallengeOrder, ChallengeReversal
from shared.domain.keys import (
    MEMBER_SK,
    campaign_budget_key,
    challenge_order_sk,
    challenge_week_sk,
    due_shard,
    reward_sk,
)

from .campaigns import CampaignWrites
from .dynamodb import Update, av


class ChallengeWrite(StrEnum):
    COUNTED = "counted"
    """Counted toward the week; no bonus (the week is not complete, or was paid before)."""
    COMPLETES = "completes"
    """Not counted: the order would complete the week (write it with ``complete_week``)."""
    NOT_COMPLETING = "not_completing"
    """Not counted: another order completed the week meanwhile (count it again)."""
    REWARDED = "rewarded"
    DUPLICATE = "duplicate"
    """The order was counted before (a redelivery)."""
    BUDGET_SPENT = "budget_spent"
    NO_MEMBER = "no_member"


class ChallengeWrites(CampaignWrites):
    """The weekly challenge part of ``CustomerRepository`` (satisfies ``shared.logic.challenges``'s
    ``ChallengeStore``)."""

    def challenge_item(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None:
        """An item of the member's partition (a marker, a week, a reward), strongly consistent."""
        return self._get_item(program_id, member_id, sk)

    def _marker(
        self, program_id: str, member_id: str, plan: ChallengeOrder, at: str, paid: bool
    ) -> dict[str, Any]:
        marker = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": plan.campaign.id,
            "orderId": plan.order_id,
            "week": plan.week.key,
            "state": COUNTED,
            "paid": paid,
            "countedAt": at,
        }
        item = {name: av(value) for name, value in marker.items()}
        item.update(
            self._key(program_id, member_id, challenge_order_sk(plan.campaign.id, plan.order_id))
        )
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }

    def _week(self, plan: ChallengeOrder) -> Update:
        week = Update()
        week.add("n", 1)
        week.set("campaignId", plan.campaign.id)
        week.set("week", plan.week.key)
        week.set("weekStart", plan.week.start.isoformat())
        week.set("weekEnd", plan.week.end.isoformat())
        week.set("target", plan.target)
        return week

    def count_order(
        self, program_id: str, member_id: str, plan: ChallengeOrder, at: str, always: bool = False
    ) -> ChallengeWrite:
        """Count the order toward its week unless it would complete it (``always``: count it
        anyway, without the bonus: the budget is spent)."""
        week = self._week(plan)
        n, paid = week.name("n"), week.name("paid")
        below = plan.target - 1
        condition = f"{paid} = {week.value(1)}"
        if below > 0:
            condition = f"attribute_not_exists({n}) OR {n} < {week.value(below)} OR {condition}"
        key = self._key(program_id, member_id, challenge_week_sk(plan.campaign.id, plan.week.key))
        items = [
            self._marker(program_id, member_id, plan, at, paid=False),
            {"Update": week.request(self.table_name, key, None if always else condition)},
        ]
        reasons = self._transact(items)
        if reasons is None:
            return ChallengeWrite.COUNTED
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return ChallengeWrite.DUPLICATE
        return ChallengeWrite.COMPLETES

    def complete_week(
        self, program_id: str, member_id: str, plan: ChallengeOrder, at: str
    ) -> ChallengeWrite:
        """Count the order as the one completing its week and pay the bonus, once a week."""
        campaign = plan.campaign
        week = self._week(plan)
        week.set("paid", 1)
        week.set("paidBy", plan.order_id)
        n, paid = week.name("n"), week.name("paid")
        below = plan.target - 1
        enough = f"{n} >= {week.value(below)}"
        if below <= 0:
            enough = f"(attribute_not_exists({n}) OR {enough})"
        condition = f"(attribute_not_exists({paid}) OR {paid} = {week.value(0)}) AND {enough}"
        reward = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": campaign.id,
            "orderId": plan.order_id,
            "points": campaign.points,
            "period": plan.week.key,
            "budgetPeriod": plan.budget_period,
            "lot": plan.lot,
            "state": REWARDED,
            "occurredAt": plan.occurred_at,
            "rewardedAt": at,
            "ruleVersion": plan.rule_version,
        }
        reward_item = {name: av(value) for name, value in reward.items() if value is not None}
        reward_item.update(self._key(program_id, member_id, reward_sk(campaign.id, plan.order_id)))
        member = Update()
        member.add(plan.lot, campaign.points)
        member.add("bal", campaign.points)
        member.add("v", 1)
        # Available points expire: the settlement must find the member (it sets the real due
        # day on its next run when this one is not theirs yet).
        member.set_if_absent("checkShard", due_shard(program_id, member_id))
        member.set_if_absent("checkOn", plan.paid_on.isoformat())
        week_key = self._key(program_id, member_id, challenge_week_sk(campaign.id, plan.week.key))
        items: list[dict[str, Any]] = [
            self._marker(program_id, member_id, plan, at, paid=True),
            {"Update": week.request(self.table_name, week_key, condition)},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": reward_item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            },
            {
                "Update": member.request(
                    self.table_name,
                    self._key(program_id, member_id, MEMBER_SK),
                    "attribute_exists(pk)",
                )
            },
        ]
        if campaign.budget is not None and plan.budget_period is not None:
            items.append(
                self._budget_item(
                    program_id,
                    campaign.id,
                    plan.budget_period,
                    campaign.points,
                    campaign.budget.points,
                )
            )
        reasons = self._transact(items)
        if reasons is None:
            return ChallengeWrite.REWARDED
        refused = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        return {
            0: ChallengeWrite.DUPLICATE,
            1: ChallengeWrite.NOT_COMPLETING,
            2: ChallengeWrite.DUPLICATE,
            3: ChallengeWrite.NO_MEMBER,
            4: ChallengeWrite.BUDGET_SPENT,
        }[refused[0]]

    def reverse_order(
        self, program_id: str, member_id: str, reversal: ChallengeReversal, at: str
    ) -> bool:
        """Uncount a cancelled order, and take the week's bonus back when the reversal says so:
        False when the week (or the bonus's lot) changed since read (look again)."""
        marker = Update()
        marker.set("state", REVERSED)
        marker.set("reversedAt", at)
        items: list[dict[str, Any]] = [
            {
                "Update": marker.request(
                    self.table_name,
                    self._key(
                        program_id,
                        member_id,
                        challenge_order_sk(reversal.campaign_id, reversal.order_id),
                    ),
                    f"{marker.name('state')} = {marker.value(COUNTED)}",
                )
            }
        ]
        week = Update()
        week.add("n", -1)
        if reversal.paid_by is not None:
            week.set("paid", 0)
            week.remove("paidBy")
        items.append(
            {
                "Update": week.request(
                    self.table_name,
                    self._key(
                        program_id,
                        member_id,
                        challenge_week_sk(reversal.campaign_id, reversal.week),
                    ),
                    f"{week.name('n')} = {week.value(reversal.n)}",
                )
            }
        )
        if reversal.paid_by is not None:
            items.extend(self._take_bonus(program_id, member_id, reversal, reversal.paid_by, at))
        return self._transact(items) is None

    def _take_bonus(
        self,
        program_id: str,
        member_id: str,
        reversal: ChallengeReversal,
        paid_by: str,
        at: str,
    ) -> list[dict[str, Any]]:
        state = Update()
        state.set("state", REWARD_REVERSED)
        state.set("reversedAt", at)
        state.set("reversedFromPending", reversal.from_pending)
        state.set("reversedBy", reversal.order_id)
        items: list[dict[str, Any]] = [
            {
                "Update": state.request(
                    self.table_name,
                    self._key(program_id, member_id, reward_sk(reversal.campaign_id, paid_by)),
                    f"{state.name('state')} = {state.value(REWARDED)}",
                )
            }
        ]
        member = Update()
        condition = None
        if reversal.from_pending:
            member.add(reversal.lot, -reversal.points)
            member.add("pend", -reversal.points)
            condition = f"{member.name(reversal.lot)} >= {member.value(reversal.points)}"
        else:
            member.add("bal", -reversal.points)
            member.add("used", reversal.points)
        member.add("v", 1)
        items.append(
            {
                "Update": member.request(
                    self.table_name, self._key(program_id, member_id, MEMBER_SK), condition
                )
            }
        )
        if reversal.budget_period is not None:
            spend = Update()
            spend.add("spent", -reversal.points)
            pk, sk = campaign_budget_key(program_id, reversal.campaign_id, reversal.budget_period)
            items.append({"Update": spend.request(self.table_name, {"pk": av(pk), "sk": av(sk)})})
        return items
