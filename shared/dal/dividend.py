"""The annual dividend on DynamoDB (docs/campaigns.md, "The annual dividend"): mechanical.

A dividend year has its own partition, ``P#{programId}#DIVIDEND#{year}``: one small registry
item per member who held the plan that year (``M#{memberId}``, put by ``MembershipChanged``) and
the job's checkpoint (``JOB``: where it is, what it paid, ``done``). The job pages through the
registry (a Query of that one partition, never a Scan), reads the members' year totals
(``ot{YYYY}``) in batches, and pays each member in one transaction: the reward item
``REWARD#{campaignId}#{year}`` (put only if absent: a member is paid once a year whatever runs
again), the member item (the points, available at once) and the year's budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.campaigns import REWARDED
from shared.domain.dividend import DividendPlan
from shared.domain.keys import (
    DIVIDEND_HOLDER_PREFIX,
    DIVIDEND_JOB_SK,
    MEMBER_SK,
    dividend_holder_sk,
    dividend_pk,
    due_shard,
    member_pk,
    reward_sk,
)

from .campaigns import CampaignWrites, RewardWrite
from .dynamodb import Update, av, from_item

BATCH_GET = 100
"""Keys per ``BatchGetItem`` (DynamoDB's limit)."""


class DividendWrites(CampaignWrites):
    """The dividend part of ``CustomerRepository`` (``shared.logic.dividend.DividendStore``)."""

    def register_plan_years(
        self, program_id: str, member_id: str, years: Sequence[int], at: str
    ) -> None:
        """Keep that the member held the dividend's plan in each of ``years`` (one put each, a
        repeat writes the same item: a redelivery, or an older change arriving late, is fine)."""
        for year in years:
            self._call(
                "PutItem",
                self.client.put_item,
                TableName=self.table_name,
                Item={
                    "pk": av(dividend_pk(program_id, year)),
                    "sk": av(dividend_holder_sk(member_id)),
                    "memberId": av(member_id),
                    "seenAt": av(at),
                },
            )

    def dividend_members(
        self, program_id: str, year: int, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """A page of the year's registry: member ids in key order and the last one read (None:
        the registry ends here). Eventually consistent (the year ended weeks ago)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :m)",
            "ExpressionAttributeValues": {
                ":pk": av(dividend_pk(program_id, year)),
                ":m": av(DIVIDEND_HOLDER_PREFIX),
            },
            "ProjectionExpression": "sk",
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {
                "pk": av(dividend_pk(program_id, year)),
                "sk": av(dividend_holder_sk(after)),
            }
        response = self._call("Query", self.client.query, **request)
        members = [
            str(item["sk"]["S"])[len(DIVIDEND_HOLDER_PREFIX) :]
            for item in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return members, str(last["sk"]["S"])[len(DIVIDEND_HOLDER_PREFIX) :] if last else None

    def order_totals(
        self, program_id: str, member_ids: Sequence[str], attribute: str
    ) -> dict[str, int | None]:
        """Each member's ``attribute`` (the year's order total) from their member item, in
        ``BatchGetItem``s of 100, eventually consistent; None for a member without a member
        item, 0 for one without the attribute."""
        found: dict[str, int | None] = dict.fromkeys(member_ids)
        by_pk = {member_pk(program_id, member_id): member_id for member_id in member_ids}
        keys = [{"pk": av(pk), "sk": av(MEMBER_SK)} for pk in by_pk]
        for start in range(0, len(keys), BATCH_GET):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys[start : start + BATCH_GET],
                    "ProjectionExpression": "pk, #t",
                    "ExpressionAttributeNames": {"#t": attribute},
                    "ConsistentRead": False,
                }
            }
            attempt = 0
            while pending:
                response = self._call(
                    "BatchGetItem", self.client.batch_get_item, RequestItems=pending
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    plain = from_item(item)
                    found[by_pk[str(plain["pk"])]] = int(plain.get(attribute) or 0)
                pending = dict(response.get("UnprocessedKeys") or {})
                if pending:
                    self._backoff(attempt)
                    attempt += 1
        return found

    def pay_dividend(self, program_id: str, member_id: str, plan: DividendPlan) -> RewardWrite:
        """Pay one member's dividend of the year: the reward (once: conditioned on its
        absence), the member item (the points, available at once; conditioned on existing) and
        the year's budget (``spent + points <= budget``)."""
        reward = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": plan.campaign_id,
            "occasion": plan.occasion,
            "points": plan.points,
            "period": plan.occasion,
            "budgetPeriod": plan.occasion,
            "lot": plan.lot,
            "orderTotalCents": plan.order_cents,
            "rate": plan.rate,
            "state": REWARDED,
            "occurredAt": plan.occurred_at,
            "rewardedAt": plan.occurred_at,
            "ruleVersion": plan.rule_version,
        }
        item = {name: av(value) for name, value in reward.items()}
        item.update(self._key(program_id, member_id, reward_sk(plan.campaign_id, plan.occasion)))
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        ]
        member = Update()
        member.add(plan.lot, plan.points)
        member.add("bal", plan.points)
        member.add("v", 1)
        # Available points expire: the settlement must find the member (it sets the real due
        # day on its next run when today is not theirs).
        member.set_if_absent("checkShard", due_shard(program_id, member_id))
        member.set_if_absent("checkOn", plan.today)
        items.append(
            {
                "Update": member.request(
                    self.table_name,
                    self._key(program_id, member_id, MEMBER_SK),
                    "attribute_exists(pk)",
                )
            }
        )
        if plan.budget is not None:
            items.append(
                self._budget_item(
                    program_id, plan.campaign_id, plan.occasion, plan.points, plan.budget
                )
            )
        reasons = self._transact(items)
        if reasons is None:
            return RewardWrite.REWARDED
        refused = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        return {
            0: RewardWrite.DUPLICATE,
            1: RewardWrite.NO_MEMBER,
            2: RewardWrite.BUDGET_SPENT,
        }[refused[0]]

    # -- the job's checkpoint ---------------------------------------------------------------

    def dividend_job(self, program_id: str, year: int) -> dict[str, Any] | None:
        """The year's checkpoint, strongly consistent (one read unit), or None (not begun)."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(dividend_pk(program_id, year)), "sk": av(DIVIDEND_JOB_SK)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def save_dividend_job(
        self,
        program_id: str,
        year: int,
        read_cursor: str | None,
        cursor: str | None,
        counts: Mapping[str, int],
        at: str,
    ) -> bool:
        """Move the checkpoint past a page, adding the page's counts, while it is where this
        run read it (``read_cursor``; None: at the start): two runs at once cannot both move
        it. ``cursor`` None: the registry is done."""
        update = Update()
        update.set_if_absent("startedAt", at)
        update.set("savedAt", at)
        update.add("pages", 1)
        for name, value in counts.items():
            if value:
                update.add(name, value)
        if cursor is None:
            update.set("state", "done")
            update.set("doneAt", at)
            update.remove("cursor")
        else:
            update.set("state", "running")
            update.set("cursor", cursor)
        name = update.name("cursor")
        if read_cursor is None:
            condition = f"attribute_not_exists({name})"
        else:
            condition = f"{name} = {update.value(read_cursor)}"
        condition += f" AND (attribute_not_exists({update.name('state')}) OR "
        condition += f"{update.name('state')} <> {update.value('done')})"
        return self._update_if(
            update.request(
                self.table_name,
                {"pk": av(dividend_pk(program_id, year)), "sk": av(DIVIDEND_JOB_SK)},
                condition,
            )
        )
