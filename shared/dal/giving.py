"""Giving on DynamoDB (docs/campaigns.md, "Giving"): mechanical, like the other repositories.

A donation is one transaction: the donation item in the member's partition (put once: the
Idempotency-Key or the order makes its key), the member item (points leave ``bal`` while
``bal`` covers them, evaluated by DynamoDB), the cause's counter of the month (``donatedCents``,
``matchedCents``, the latter conditioned to stay within the budget) and the cause's all-time
counter. Concurrent donations therefore never overdraw a balance nor overspend a match budget:
a refused match is decided again on the counter as it then stands. ``GET /v1/causes`` reads the
counters alone (two items per cause, one BatchGetItem), never the donations.
"""

from __future__ import annotations

from typing import Any

from shared.domain.giving import (
    DONATED,
    REFUSED,
    REVERSED,
    DonationOutcome,
    DonationPlan,
    DonationWrite,
    RoundUpRefusal,
)
from shared.domain.keys import CAUSE_TOTAL_SK, MEMBER_SK, cause_month_sk, cause_pk

from .dynamodb import DynamoRepository, Update, av, from_item


class GivingWrites(DynamoRepository):
    """The giving part of ``CustomerRepository`` (``shared.logic.giving.GivingStore``)."""

    def _cause_key(self, program_id: str, cause_id: str, sk: str) -> dict[str, Any]:
        return {"pk": av(cause_pk(program_id, cause_id)), "sk": av(sk)}

    def cause_matched(self, program_id: str, cause_id: str, month: str) -> int:
        """The cents matched for the cause this month (one strongly consistent read)."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._cause_key(program_id, cause_id, cause_month_sk(month)),
            ConsistentRead=True,
            ProjectionExpression="matchedCents",
        )
        item = from_item(response.get("Item") or {})
        return int(item.get("matchedCents") or 0)

    def donate(
        self, program_id: str, member_id: str, plan: DonationPlan, matched: int, at: str
    ) -> DonationOutcome:
        """Write the donation with ``matched`` cents of match, or say why not."""
        donation = {
            "memberId": member_id,
            "programId": program_id,
            "donationId": plan.donation_id,
            "campaignId": plan.campaign_id,
            "causeId": plan.cause_id,
            "source": plan.source,
            "points": plan.points,
            "cents": plan.cents,
            "matchedCents": matched,
            "currency": plan.currency,
            "month": plan.month,
            "state": DONATED,
            "orderId": plan.order_id,
            "requestHash": plan.request_hash,
            "occurredAt": plan.occurred_at,
            "recordedAt": at,
            "ruleVersion": plan.rule_version,
        }
        item = {name: av(value) for name, value in donation.items() if value is not None}
        item.update(self._key(program_id, member_id, plan.sk))
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        ]
        member_index = None
        if plan.points:
            member = Update()
            member.add("bal", -plan.points)
            member.add("used", plan.points)
            member.add("v", 1)
            balance = member.name("bal")
            request = member.request(
                self.table_name,
                self._key(program_id, member_id, MEMBER_SK),
                f"attribute_exists({balance}) AND {balance} >= {member.value(plan.points)}",
            )
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            member_index = len(items)
            items.append({"Update": request})
        month = Update()
        month.add("donatedCents", plan.cents)
        month.add("matchedCents", matched)
        month.add("donations", 1)
        month.set("causeId", plan.cause_id)
        month.set("month", plan.month)
        condition = None
        if matched:
            name = month.name("matchedCents")
            limit = month.value(plan.budget_cents - matched)
            condition = f"attribute_not_exists({name}) OR {name} <= {limit}"
        month_index = len(items)
        items.append(
            {
                "Update": month.request(
                    self.table_name,
                    self._cause_key(program_id, plan.cause_id, cause_month_sk(plan.month)),
                    condition,
                )
            }
        )
        total = Update()
        total.add("donatedCents", plan.cents)
        total.add("matchedCents", matched)
        total.add("donations", 1)
        total.set("causeId", plan.cause_id)
        items.append(
            {
                "Update": total.request(
                    self.table_name, self._cause_key(program_id, plan.cause_id, CAUSE_TOTAL_SK)
                )
            }
        )
        reasons = self._transact(items)
        if reasons is None:
            return DonationOutcome(DonationWrite.DONATED, matched)
        refused = {
            i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"
        }
        if 0 in refused:
            return DonationOutcome(DonationWrite.DUPLICATE)
        if member_index in refused:
            old = from_item(reasons[member_index].get("Item") or {})
            return DonationOutcome(DonationWrite.INSUFFICIENT, available=int(old.get("bal") or 0))
        if month_index in refused:
            return DonationOutcome(DonationWrite.MATCH_CHANGED)
        raise RuntimeError(f"donation refused for no known reason: {reasons}")

    def reverse_round_up(
        self, program_id: str, member_id: str, donation: dict[str, Any], at: str
    ) -> bool:
        """Give an order's round-up back, once: the donation item becomes ``reversed`` while it
        is ``donated``, and its cents and match leave the cause's counters of its month and of
        all time, in one transaction (False: reversed already)."""
        state = Update()
        state.set("state", REVERSED)
        state.set("reversedAt", at)
        condition = f"{state.name('state')} = {state.value(DONATED)}"
        key = self._key(program_id, member_id, str(donation["sk"]))
        items: list[dict[str, Any]] = [{"Update": state.request(self.table_name, key, condition)}]
        cause_id, cents = str(donation["causeId"]), int(donation.get("cents") or 0)
        matched = int(donation.get("matchedCents") or 0)
        for sk in (cause_month_sk(str(donation["month"])), CAUSE_TOTAL_SK):
            counter = Update()
            counter.add("donatedCents", -cents)
            counter.add("matchedCents", -matched)
            counter.add("donations", -1)
            items.append(
                {
                    "Update": counter.request(
                        self.table_name, self._cause_key(program_id, cause_id, sk)
                    )
                }
            )
        return self._transact(items) is None

    def refuse_round_up(self, program_id: str, member_id: str, refusal: RoundUpRefusal) -> bool:
        """Keep a refused round-up with its reason, once (False: kept before)."""
        record = {
            "memberId": member_id,
            "programId": program_id,
            "orderId": refusal.order_id,
            "causeId": refusal.cause_id,
            "source": "roundUp",
            "state": REFUSED,
            "reason": refusal.reason,
            "amount": refusal.amount,
            "currency": refusal.currency,
            "occurredAt": refusal.occurred_at,
            "ruleVersion": refusal.rule_version,
        }
        item = {name: av(value) for name, value in record.items()}
        item.update(self._key(program_id, member_id, refusal.sk))
        return (
            self._conditional_write(
                "PutItem",
                {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                },
            )
            is None
        )

    def get_donation(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None:
        return self._get_item(program_id, member_id, sk)

    def cause_counters(
        self, program_id: str, cause_ids: list[str], month: str
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Each cause's counter of ``month`` and all-time, by (causeId, sk): one eventually
        consistent BatchGetItem (half a unit per item), never the donations themselves."""
        keys = []
        for cause_id in cause_ids:
            keys.append(self._cause_key(program_id, cause_id, cause_month_sk(month)))
            keys.append(self._cause_key(program_id, cause_id, CAUSE_TOTAL_SK))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self.table_name: {"Keys": keys[start : start + 100]}}
            while pending:
                response = self._call(
                    "BatchGetItem", self.client.batch_get_item, RequestItems=pending
                )
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = from_item(raw)
                    found[(str(item.get("causeId")), str(item["sk"]))] = item
                pending = response.get("UnprocessedKeys") or {}
        return found
