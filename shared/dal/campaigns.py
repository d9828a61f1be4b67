"""Campaign bonuses on DynamoDB (docs/campaigns.md): mechanical, like the other repositories.

A bonus is one transaction of up to four items: the reward item (``REWARD#{campaignId}#
{orderId}``, put once: a redelivery finds it), the member's count of the period
(``CAMPAIGN#{campaignId}#{period}``, ``n < perMember.count``), the member item (the points, in
the order's lot) and, with a budget, the campaign's spend of the period (outside the member's
partition, ``spent + points <= budget``). DynamoDB evaluates each condition on the item as it is,
so concurrent orders never pay past a member's limit or the budget. Taking a bonus back is the
same four items the other way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from shared.domain.campaigns import REVERSED, REWARDED, RewardPlan, RewardReversal
from shared.domain.keys import (
    MEMBER_SK,
    campaign_budget_key,
    campaign_count_sk,
    due_shard,
    reward_sk,
)

from .dynamodb import DynamoRepository, Update, av


class RewardWrite(StrEnum):
    REWARDED = "rewarded"
    DUPLICATE = "duplicate"
    """The order earned this bonus before (a redelivery)."""
    MEMBER_LIMIT = "member_limit"
    BUDGET_SPENT = "budget_spent"
    NO_MEMBER = "no_member"


class CampaignWrites(DynamoRepository):
    """The campaign part of ``CustomerRepository`` (satisfies ``shared.logic.campaigns``'s
    ``CampaignStore``)."""

    def reward(self, program_id: str, member_id: str, plan: RewardPlan, at: str) -> RewardWrite:
        campaign = plan.campaign
        reward = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": campaign.id,
            "orderId": plan.order_id,
            "points": plan.points,
            "period": plan.period,
            "budgetPeriod": plan.budget_period,
            "lot": plan.lot,
            "state": REWARDED,
            "occurredAt": plan.occurred_at,
            "rewardedAt": at,
            "ruleVersion": plan.rule_version,
        }
        item = {name: av(value) for name, value in reward.items() if value is not None}
        item.update(self._key(program_id, member_id, reward_sk(campaign.id, plan.order_id)))
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        ]
        items.append(self._count_item(program_id, member_id, campaign.id, plan.period, plan.limit))
        member = Update()
        member.add(plan.lot, plan.points)
        member.add("bal", plan.points)
        member.add("v", 1)
        # Available points expire: the settlement must find the member (it sets the real due
        # day on its next run when this one is not theirs yet).
        member.set_if_absent("checkShard", due_shard(program_id, member_id))
        member.set_if_absent("checkOn", plan.paid_on.isoformat())
        items.append(
            {
                "Update": member.request(
                    self.table_name,
                    self._key(program_id, member_id, MEMBER_SK),
                    "attribute_exists(pk)",
                )
            }
        )
        if plan.budget is not None and plan.budget_period is not None:
            items.append(
                self._budget_item(
                    program_id, campaign.id, plan.budget_period, plan.points, plan.budget
                )
            )
        reasons = self._transact(items)
        if reasons is None:
            return RewardWrite.REWARDED
        refused = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        return {
            0: RewardWrite.DUPLICATE,
            1: RewardWrite.MEMBER_LIMIT,
            2: RewardWrite.NO_MEMBER,
            3: RewardWrite.BUDGET_SPENT,
        }[refused[0]]

    def _count_item(
        self, program_id: str, member_id: str, campaign_id: str, period: str, limit: int
    ) -> dict[str, Any]:
        """The member's count of the period, one more while below ``limit``."""
        count = Update()
        count.add("n", 1)
        n = count.name("n")
        return {
            "Update": count.request(
                self.table_name,
                self._key(program_id, member_id, campaign_count_sk(campaign_id, period)),
                f"attribute_not_exists({n}) OR {n} < {count.value(limit)}",
            )
        }

    def _budget_item(
        self, program_id: str, campaign_id: str, period: str, points: int, budget: int
    ) -> dict[str, Any]:
        """The campaign's spend of the period, ``points`` more while within ``budget``."""
        spend = Update()
        spend.add("spent", points)
        spent = spend.name("spent")
        pk, sk = campaign_budget_key(program_id, campaign_id, period)
        return {
            "Update": spend.request(
                self.table_name,
                {"pk": av(pk), "sk": av(sk)},
                f"attribute_not_exists({spent}) OR {spent} <= {spend.value(budget - points)}",
            )
        }

    def rewards_of_order(
        self, program_id: str, member_id: str, campaign_ids: list[str], order_id: str
    ) -> list[dict[str, Any]]:
        """The order's reward items, of these campaigns (one strongly consistent read each)."""
        found = []
        for campaign_id in campaign_ids:
            item = self._get_item(program_id, member_id, reward_sk(campaign_id, order_id))
            if item is not None:
                found.append(item)
        return found

    def reverse_reward(
        self, program_id: str, member_id: str, reversal: RewardReversal, at: str
    ) -> bool:
        """Take a bonus back, once: False when the reward or the member's lot changed since
        read (look again)."""
        state = Update()
        state.set("state", REVERSED)
        state.set("reversedAt", at)
        state.set("reversedFromPending", reversal.from_pending)
        items: list[dict[str, Any]] = [
            {
                "Update": state.request(
                    self.table_name,
                    self._key(
                        program_id, member_id, reward_sk(reversal.campaign_id, reversal.order_id)
                    ),
                    f"{state.name('state')} = {state.value(REWARDED)}",
                )
            }
        ]
        count = Update()
        count.add("n", -1)
        items.append(
            {
                "Update": count.request(
                    self.table_name,
                    self._key(
                        program_id,
                        member_id,
                        campaign_count_sk(reversal.campaign_id, reversal.period),
                    ),
                )
            }
        )
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
        return self._transact(items) is None
