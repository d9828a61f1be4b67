"""Referrals on DynamoDB (docs/campaigns.md): mechanical, like the other repositories.

A member's code is two items written in one transaction, each conditioned on its absence: the
code's own item (``P#{programId}#REFCODE#{code}``, naming the member: how a sign-up finds the
referrer, one strongly consistent read) and the member's pointer (``REFCODE`` in their
partition). Two first requests at once: one transaction wins, the other is refused on the
pointer and reads the winner's code. A referral is the referred customer's ``REFERRAL`` item
(put once: the first referrer wins) and ``refBy``/``refState`` on their member item (what the
settlement decides with). Paying it is one transaction: the referral, both member items, both
reward items, the referrer's count of the year (``n < limit``) and the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.campaigns import REWARDED
from shared.domain.keys import (
    MEMBER_SK,
    REFERRAL_CODE_SK,
    REFERRAL_SK,
    campaign_count_sk,
    due_shard,
    referral_code_pk,
    referral_refused_sk,
    reward_sk,
)
from shared.domain.referral import PAID, PENDING, VOID, ReferralPayout

from .challenges import ChallengeWrites
from .dynamodb import Update, av, from_item

REFERRED = "referred"
"""The referred customer's reward item's key and period (once per customer, for ever)."""


class ReferralWrites(ChallengeWrites):
    """The referral part of ``CustomerRepository`` (``shared.logic.referrals``'s store)."""

    # -- codes --------------------------------------------------------------------------------

    def member_code(self, program_id: str, member_id: str, consistent: bool) -> str | None:
        item = self._get_item(program_id, member_id, REFERRAL_CODE_SK, consistent=consistent)
        return str(item["code"]) if item else None

    def create_code(self, program_id: str, member_id: str, code: str, at: str) -> str:
        """``created``, ``member_has_code`` (another request made it first) or ``code_taken``
        (the code is another member's: draw again)."""
        owner = {
            "pk": av(referral_code_pk(program_id, code)),
            "sk": av(REFERRAL_CODE_SK),
            "programId": av(program_id),
            "memberId": av(member_id),
            "code": av(code),
            "createdAt": av(at),
        }
        pointer = {
            **self._key(program_id, member_id, REFERRAL_CODE_SK),
            "programId": av(program_id),
            "memberId": av(member_id),
            "code": av(code),
            "createdAt": av(at),
        }
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
            for item in (owner, pointer)
        ]
        reasons = self._transact(items)
        if reasons is None:
            return "created"
        if reasons[1].get("Code") == "ConditionalCheckFailed":
            return "member_has_code"
        return "code_taken"

    def code_owner(self, program_id: str, code: str) -> str | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(referral_code_pk(program_id, code)), "sk": av(REFERRAL_CODE_SK)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(from_item(item)["memberId"]) if item else None

    # -- the referral -------------------------------------------------------------------------

    def get_referral(self, program_id: str, customer_id: str) -> dict[str, Any] | None:
        return self._get_item(program_id, customer_id, REFERRAL_SK)

    def record_referral(
        self, program_id: str, customer_id: str, referral: Mapping[str, Any]
    ) -> bool:
        """The customer's referral, once (False: they have one already)."""
        item = {name: av(value) for name, value in referral.items()}
        item.update(self._key(program_id, customer_id, REFERRAL_SK))
        member = Update()
        member.set_if_absent("memberId", customer_id)
        member.set_if_absent("programId", program_id)
        member.set("refBy", str(referral["referrerId"]))
        member.set("refState", PENDING)
        items = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            },
            {
                "Update": member.request(
                    self.table_name,
                    self._key(program_id, customer_id, MEMBER_SK),
                    f"attribute_not_exists({member.name('refBy')})",
                )
            },
        ]
        return self._transact(items) is None

    def refuse_referral(
        self, program_id: str, customer_id: str, refusal: Mapping[str, Any]
    ) -> None:
        """Keep a refusal with its reason (the same refusal again writes the same item)."""
        item = {name: av(value) for name, value in refusal.items() if value is not None}
        sk = referral_refused_sk(str(refusal["signedUpAt"]), str(refusal.get("code") or "-"))
        item.update(self._key(program_id, customer_id, sk))
        self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=item)

    def void_referral(self, program_id: str, customer_id: str, reason: str, at: str) -> bool:
        """The referral pays nothing (its first order did not survive): False if it was
        decided meanwhile."""
        referral = Update()
        referral.set("state", VOID)
        referral.set("reason", reason)
        referral.set("decidedAt", at)
        member = Update()
        member.set("refState", VOID)
        member.add("v", 1)
        return self._decide(program_id, customer_id, referral, member, []) is None

    def _decide(
        self,
        program_id: str,
        customer_id: str,
        referral: Update,
        member: Update,
        more: list[dict[str, Any]],
    ) -> list[int] | None:
        """The decision's transaction: None when applied, else the refused items' indexes."""
        items: list[dict[str, Any]] = [
            {
                "Update": referral.request(
                    self.table_name,
                    self._key(program_id, customer_id, REFERRAL_SK),
                    f"{referral.name('state')} = {referral.value(PENDING)}",
                )
            },
            {
                "Update": member.request(
                    self.table_name,
                    self._key(program_id, customer_id, MEMBER_SK),
                    f"{member.name('refState')} = {member.value(PENDING)}",
                )
            },
            *more,
        ]
        reasons = self._transact(items)
        if reasons is None:
            return None
        return [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]

    def pay_referral(self, program_id: str, payout: ReferralPayout, at: str) -> str:
        """``paid``, ``decided`` (paid or voided meanwhile), ``referrer_yearly_cap`` or
        ``budget_spent``."""
        referral = Update()
        referral.set("state", PAID)
        referral.set("decidedAt", at)
        referral.set("referrerOutcome", PAID if payout.pay_referrer else "referrer_yearly_cap")
        _, member = self._member_bonus(program_id, payout.customer_id, payout)
        member.set("refState", PAID)
        more = [self._reward(program_id, payout.customer_id, payout, REFERRED, REFERRED)]
        if payout.pay_referrer:
            count = Update()
            count.add("n", 1)
            n = count.name("n")
            more.append(
                {
                    "Update": count.request(
                        self.table_name,
                        self._key(
                            program_id,
                            payout.referrer_id,
                            campaign_count_sk(payout.campaign.id, payout.year),
                        ),
                        f"attribute_not_exists({n}) OR {n} < {count.value(payout.limit)}",
                    )
                }
            )
            key, referrer = self._member_bonus(program_id, payout.referrer_id, payout)
            more.append({"Update": referrer.request(self.table_name, key)})
            more.append(
                self._reward(
                    program_id, payout.referrer_id, payout, payout.customer_id, payout.year
                )
            )
        budget = payout.campaign.budget
        if budget is not None and payout.budget_period is not None:
            paid = payout.points * (2 if payout.pay_referrer else 1)
            more.append(
                self._budget_item(
                    program_id, payout.campaign.id, payout.budget_period, paid, budget.points
                )
            )
        refused = self._decide(program_id, payout.customer_id, referral, member, more)
        if refused is None:
            return "paid"
        if refused and refused[0] in (0, 1, 2):
            return "decided"
        if payout.pay_referrer and refused and refused[0] == 3:
            return "referrer_yearly_cap"
        if payout.pay_referrer and refused and refused[0] == 5:
            return "decided"  # the referrer was paid for this customer before
        return "budget_spent"

    def _member_bonus(
        self, program_id: str, member_id: str, payout: ReferralPayout
    ) -> tuple[dict[str, Any], Update]:
        """A member item's part of a payout: its key and update (the points, available now)."""
        member = Update()
        member.set_if_absent("memberId", member_id)
        member.set_if_absent("programId", program_id)
        member.add(payout.lot, payout.points)
        member.add("bal", payout.points)
        member.add("v", 1)
        # Available points expire: the settlement must find the member (it sets the real due
        # day on its next run when this one is not theirs yet).
        member.set_if_absent("checkShard", due_shard(program_id, member_id))
        member.set_if_absent("checkOn", payout.today.isoformat())
        return self._key(program_id, member_id, MEMBER_SK), member

    def _reward(
        self,
        program_id: str,
        member_id: str,
        payout: ReferralPayout,
        key: str,
        period: str,
    ) -> dict[str, Any]:
        reward = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": payout.campaign.id,
            "orderId": payout.first_order_id,
            "points": payout.points,
            "period": period,
            "lot": payout.lot,
            "state": REWARDED,
            "occurredAt": payout.occurred_at,
            "rewardedAt": payout.occurred_at,
            "ruleVersion": payout.rule_version,
            "referral": "referred" if key == REFERRED else "referrer",
            "referredId": payout.customer_id,
            "referrerId": payout.referrer_id,
        }
        if payout.budget_period is not None:
            reward["budgetPeriod"] = payout.budget_period
        item = {name: av(value) for name, value in reward.items()}
        item.update(self._key(program_id, member_id, reward_sk(payout.campaign.id, key)))
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }
