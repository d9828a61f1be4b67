"""Perk items in the single table: quotas, redemptions, idempotency records, fuel purchases and
the ledger's read model (see docs/perks.md). Mechanical, like the rest of the repository: it
carries out what ``shared.logic.perks`` decided and reports what a failed condition found.

Every item lives in the member's partition (``P#{programId}#M#{memberId}``), so a member's
requests only ever reach their own items, whatever ids they send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from shared.domain.keys import (
    LEGACY_QUOTA_SK_PREFIX,
    MEMBER_SK,
    fuel_sk,
    idempotency_sk,
    limit_sk,
    partner_code_key,
    quota_sk,
    redemption_sk,
)
from shared.domain.timeutil import to_utc_iso
from shared.domain.zones import ZONE_ATTR
from shared.logic.ports import CashbackWrite, Page, RedeemWrite, StoredResult

from .dynamodb import DynamoRepository, Update, av, from_item

if TYPE_CHECKING:
    from shared.domain.limits import RequestWindow

    # The perk models and the program they read are imported where used: event_publisher
    # builds this repository for the ledger's read model alone, and never loads them.
    from shared.domain.perks import CashbackMonth, MemberGuard, Redemption, RedemptionPlan

IDEMPOTENCY_TTL = timedelta(days=7)
"""How long the first result of an ``Idempotency-Key`` is kept (DynamoDB's TTL removes it)."""


class LegacyQuotaMove(Struct, frozen=True):
    """What ``PerkRepository.move_legacy_quotas`` did: the old items moved (``pk sk``), and
    those left where they are (a date slot the new item already holds)."""

    moved: list[str]
    conflicts: list[str]


def _result_of(item: Mapping[str, Any]) -> StoredResult:
    return StoredResult(
        request_digest=str(item.get("requestDigest", "")),
        status=int(item.get("statusCode", 500)),
        body=str(item.get("body", "{}")),
        redemption_id=item.get("redemptionId"),
    )


def _reason_item(reasons: Sequence[Mapping[str, Any]], index: int) -> tuple[bool, dict[str, Any]]:
    """Whether the transaction's item ``index`` failed its condition, and the item then."""
    if index >= len(reasons) or reasons[index].get("Code") != "ConditionalCheckFailed":
        return False, {}
    item = reasons[index].get("Item")
    return True, from_item(item) if item else {}


class PerkRepository(DynamoRepository):
    """Perk items and the ledger's read model (satisfies ``shared.logic.perks.PerkStore`` and
    the ledger read model's stores in ``shared.logic.members`` and ``shared.logic.ledger``)."""

    # -- plumbing ---------------------------------------------------------------------------

    def _member_key(self, program_id: str, member_id: str) -> dict[str, Any]:
        return self._key(program_id, member_id, MEMBER_SK)

    def _guard_condition(self, guard: MemberGuard, names: Update) -> str:
        eligible = names.name("eligible")
        tier = names.name("tier")
        parts = [f"(attribute_not_exists({eligible}) OR {eligible} = {names.value(True)})"]
        named = [names.value(value) for value in dict.fromkeys(guard.tiers) if value is not None]
        tier_terms = [f"attribute_not_exists({tier})"] if None in guard.tiers else []
        if named:
            tier_terms.append(f"{tier} IN ({', '.join(named)})")
        parts.append("(" + " OR ".join(tier_terms or ["attribute_not_exists(pk)"]) + ")")
        if guard.pin_version:
            v = names.name("v")
            parts.append(
                f"attribute_not_exists({v})"
                if guard.version is None
                else f"{v} = {names.value(guard.version)}"
            )
        if guard.pin_zone:
            zone = names.name(ZONE_ATTR)
            parts.append(
                f"attribute_not_exists({zone})"
                if guard.zone is None
                else f"{zone} = {names.value(guard.zone)}"
            )
        return " AND ".join(parts)

    def _put(
        self, program_id: str, member_id: str, sk: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        item = {name: av(value) for name, value in attributes.items() if value is not None}
        item.update(self._key(program_id, member_id, sk))
        return {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _idempotency_put(
        self,
        program_id: str,
        member_id: str,
        key_digest: str,
        result: StoredResult,
        now: datetime,
    ) -> dict[str, Any]:
        return self._put(
            program_id,
            member_id,
            idempotency_sk(key_digest),
            {
                "memberId": member_id,
                "programId": program_id,
                "requestDigest": result.request_digest,
                "statusCode": result.status,
                "body": result.body,
                "redemptionId": result.redemption_id,
                "createdAt": to_utc_iso(now),
                "expiresAt": int((now + IDEMPOTENCY_TTL).timestamp()),
            },
        )

    # -- reads ------------------------------------------------------------------------------

    def get_member_eventually(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        """The member item, eventually consistent (half a read unit): for services' checks."""
        return self._get_item(program_id, member_id, MEMBER_SK, consistent=False)

    def campaign_counts(self, program_id: str, member_id: str, sks: list[str]) -> dict[str, int]:
        """The member's campaign counts (``CAMPAIGN#{id}#{period}``, ``n``) under these keys,
        eventually consistent (half a read unit each); absent keys count 0."""
        counts: dict[str, int] = {}
        for sk in sks:
            item = self._get_item(program_id, member_id, sk, consistent=False)
            counts[sk] = int(item.get("n") or 0) if item else 0
        return counts

    def campaign_items(
        self, program_id: str, member_id: str, sks: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The member's items under these keys (a weekly challenge's week), eventually
        consistent (half a read unit each); absent keys are left out."""
        found: dict[str, dict[str, Any]] = {}
        for sk in sks:
            item = self._get_item(program_id, member_id, sk, consistent=False)
            if item is not None:
                found[sk] = item
        return found

    def member_and_quotas(
        self, program_id: str, member_id: str, first_sk: str, last_sk: str
    ) -> dict[str, dict[str, Any]]:
        """Items of the member's partition whose sort keys lie between ``first_sk`` and
        ``last_sk`` (both included), by sort key: one strongly consistent Query, billed on the
        items' total size (1 unit per 4 KB), not per item as a batch of gets is."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": self._key(program_id, member_id, first_sk)["pk"],
                ":first": {"S": first_sk},
                ":last": {"S": last_sk},
            },
            "ConsistentRead": True,
        }
        found: dict[str, dict[str, Any]] = {}
        while True:
            response = self._call("Query", self.client.query, **request)
            for raw in response.get("Items", []):
                item = from_item(raw)
                found[str(item["sk"])] = item
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            request["ExclusiveStartKey"] = last

    def page(
        self,
        program_id: str,
        member_id: str,
        prefix: str,
        limit: int,
        after: str | None,
        consistent: bool,
    ) -> Page:
        """Items of the member's partition under ``prefix``, newest (highest key) first."""
        return self._partition_page(
            program_id,
            member_id,
            limit,
            after,
            prefix=prefix,
            newest_first=True,
            consistent=consistent,
        )

    # -- redemptions ------------------------------------------------------------------------

    def redeem(
        self,
        program_id: str,
        member_id: str,
        key_digest: str,
        guard: MemberGuard,
        plan: RedemptionPlan,
        redemption: Redemption,
        result: StoredResult,
        now: datetime,
    ) -> RedeemWrite:
        """One transaction: the key's first result (unless the key was used), the member still
        as the decision read it (eligible, same tier), the quota debited (unless used up, or
        the date already booked), and the redemption."""
        check = Update()
        member_check = {
            "TableName": self.table_name,
            "Key": self._member_key(program_id, member_id),
            "ConditionExpression": self._guard_condition(guard, check),
            "ExpressionAttributeNames": check.names,
            "ExpressionAttributeValues": check.values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

        quota = Update()
        quota.set_if_absent("memberId", member_id)
        quota.set_if_absent("programId", program_id)
        quota.set_if_absent("perkId", plan.perk.id)
        quota.set_if_absent("period", plan.period)
        quota.set("updatedAt", to_utc_iso(now))
        quota.add("used", 1)
        used = quota.name("used")
        condition = f"(attribute_not_exists({used}) OR {used} < {quota.value(plan.limit)})"
        if plan.slot is not None:
            quota.set(plan.slot, redemption.redemption_id)
            condition += f" AND attribute_not_exists({quota.name(plan.slot)})"
        quota_key = quota_sk(plan.perk.id, plan.period, plan.period_ends)
        quota_request = quota.request(
            self.table_name, self._key(program_id, member_id, quota_key), condition
        )
        quota_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"

        stored = redemption.model_dump(mode="json", by_alias=True, exclude_none=True)
        stored.update(
            memberId=member_id,
            programId=program_id,
            quotaSk=quota_key,
            slot=plan.slot,
            idempotencyKey=key_digest,
        )
        redemption_put = self._put(
            program_id, member_id, redemption_sk(redemption.redemption_id), stored
        )
        redemption_put.pop("ReturnValuesOnConditionCheckFailure")
        items = [
            {"Put": self._idempotency_put(program_id, member_id, key_digest, result, now)},
            {"ConditionCheck": member_check},
            {"Update": quota_request},
            {"Put": redemption_put},
        ]
        if redemption.code is not None and plan.perk.partner is not None:
            items.append({"Put": self._code_put(program_id, member_id, plan, redemption)})
        reasons = self._transact(items)
        if reasons is None:
            return RedeemWrite(applied=True)
        used_before, existing = _reason_item(reasons, 0)
        member_changed, member = _reason_item(reasons, 1)
        quota_refused, quota_item = _reason_item(reasons, 2)
        code_taken = len(items) > 4 and _reason_item(reasons, 4)[0]
        return RedeemWrite(
            applied=False,
            replay=_result_of(existing) if used_before else None,
            member_changed=member_changed,
            member=member,
            quota_refused=quota_refused,
            quota=quota_item,
            code_taken=code_taken,
        )

    def _code_put(
        self, program_id: str, member_id: str, plan: RedemptionPlan, redemption: Redemption
    ) -> dict[str, Any]:
        """The issued code's own item, which a partner finds by the code alone: written in the
        redemption's transaction, so a code exists exactly when its redemption does."""
        from shared.domain.perks import CODE_RETENTION_DAYS  # noqa: PLC0415

        assert redemption.code is not None and plan.perk.partner is not None
        assert redemption.valid_until is not None
        pk, sk = partner_code_key(redemption.code)
        kept_until = redemption.valid_until + timedelta(days=CODE_RETENTION_DAYS)
        attributes = {
            "pk": pk,
            "sk": sk,
            "programId": program_id,
            "memberId": member_id,
            "redemptionId": redemption.redemption_id,
            "perkId": plan.perk.id,
            "partnerId": plan.perk.partner.id,
            "discountRate": redemption.discount_rate,
            "validUntil": redemption.valid_until.isoformat(),
            "issuedAt": to_utc_iso(redemption.created_at),
            "expiresAt": int(
                datetime(kept_until.year, kept_until.month, kept_until.day, tzinfo=UTC).timestamp()
            ),
        }
        return {
            "TableName": self.table_name,
            "Item": {name: av(value) for name, value in attributes.items() if value is not None},
            "ConditionExpression": "attribute_not_exists(pk)",
        }

    def get_code(self, code: str) -> dict[str, Any] | None:
        """An issued code's item (strongly consistent: a code just issued is found), or None."""
        pk, sk = partner_code_key(code)
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(pk), "sk": av(sk)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def use_code(
        self, code: str, item: Mapping[str, Any], partner_id: str, reference: str, now: datetime
    ) -> bool:
        """One transaction: the code marked used (unless it already is) and its redemption with
        it. False when the code was used meanwhile (read it again)."""
        pk, sk = partner_code_key(code)
        used = Update()
        used.set("usedAt", to_utc_iso(now))
        used.set("usedBy", partner_id)
        used.set("usedReference", reference)
        code_update = used.request(
            self.table_name,
            {"pk": av(pk), "sk": av(sk)},
            f"attribute_exists(pk) AND attribute_not_exists({used.name('usedAt')})",
        )
        mirror = Update()
        mirror.set("usedAt", to_utc_iso(now))
        mirror.set("usedBy", partner_id)
        mirror_update = mirror.request(
            self.table_name,
            self._key(
                str(item["programId"]),
                str(item["memberId"]),
                redemption_sk(str(item["redemptionId"])),
            ),
            "attribute_exists(pk)",
        )
        return self._transact([{"Update": code_update}, {"Update": mirror_update}]) is None

    def count_request(
        self, program_id: str, member_id: str, window: RequestWindow
    ) -> dict[str, Any] | None:
        """Count one request of the member in ``window``: one conditional ``UpdateItem`` for the
        first request of a minute (the common case), two for the next ones in the same minute.
        None when counted; else the counting item as it stood (docs/perks.md, "Request
        limits")."""
        key = self._key(program_id, member_id, limit_sk(window.day))
        counted: dict[str, Any] = {}
        for same_minute in (False, True):
            update = Update()
            update.add("n", 1)
            update.set("expiresAt", window.expires_at)
            day, minute = update.name("n"), update.name("mw")
            within_day = f"(attribute_not_exists({day}) OR {day} < {update.value(window.per_day)})"
            if same_minute:
                update.add("mn", 1)
                condition = (
                    f"{minute} = {update.value(window.minute)} "
                    f"AND {update.name('mn')} < {update.value(window.per_minute)} AND {within_day}"
                )
            else:
                update.set("mw", window.minute)
                update.set("mn", 1)
                condition = (
                    f"(attribute_not_exists({minute}) OR {minute} <> {update.value(window.minute)})"
                    f" AND {within_day}"
                )
            old = self._conditional_write(
                "UpdateItem", update.request(self.table_name, key, condition)
            )
            if old is None:
                return None
            counted = from_item(old) if old else {}
            if counted.get("mw") != window.minute:
                return counted  # not the minute: the day refused it
        return counted

    def store_result(
        self,
        program_id: str,
        member_id: str,
        key_digest: str,
        result: StoredResult,
        now: datetime,
    ) -> StoredResult | None:
        """Keep a refusal as the key's first result; None when stored, else the result that
        was there first (a concurrent request with the same key got in before)."""
        request = self._idempotency_put(program_id, member_id, key_digest, result, now)
        outcome = self._conditional_put(request)
        return None if outcome is None else _result_of(outcome)

    def _conditional_put(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """PutItem unless the item exists; None when written, else the item as it stood."""
        old = self._conditional_write("PutItem", request)
        return None if old is None else from_item(old)

    def cancel(
        self,
        program_id: str,
        member_id: str,
        redemption: Redemption,
        quota_key: str,
        slot: str | None,
        now: datetime,
    ) -> Redemption | None:
        """Cancel a confirmed redemption and give its quota back, in one transaction. None when
        applied; else the redemption as it stood (cancelled meanwhile)."""
        from shared.domain.perks import Redemption, RedemptionStatus  # noqa: PLC0415

        update = Update()
        update.set("status", RedemptionStatus.CANCELLED.value)
        update.set("cancelledAt", to_utc_iso(now))
        update.set("cancelReason", "member_request")
        status = update.name("status")
        redemption_request = update.request(
            self.table_name,
            self._key(program_id, member_id, redemption_sk(redemption.redemption_id)),
            f"{status} = {update.value(RedemptionStatus.CONFIRMED.value)}",
        )
        redemption_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"

        quota = Update()
        quota.set("updatedAt", to_utc_iso(now))
        quota.add("used", -1)
        if slot is not None:
            quota.remove(slot)
            condition = f"{quota.name(slot)} = {quota.value(redemption.redemption_id)}"
        else:
            condition = f"{quota.name('used')} > {quota.value(0)}"
        quota_request = quota.request(
            self.table_name, self._key(program_id, member_id, quota_key), condition
        )
        reasons = self._transact([{"Update": redemption_request}, {"Update": quota_request}])
        if reasons is None:
            return None
        changed, item = _reason_item(reasons, 0)
        if changed and item:
            return Redemption.model_validate(item)
        raise RuntimeError(
            f"the quota {quota_key} does not hold redemption {redemption.redemption_id}"
        )

    def redemption_item(
        self, program_id: str, member_id: str, redemption_id: str
    ) -> dict[str, Any] | None:
        """The stored redemption item (with its quota key and slot), strongly consistent."""
        return self._get_item(program_id, member_id, redemption_sk(redemption_id))

    # -- quota keys (one-off) -----------------------------------------------------------

    def move_legacy_quotas(self) -> LegacyQuotaMove:
        """Move every quota item written under the old keys (``QUOTA#{perkId}#{period}``) to
        its period's key: one Scan of the table, then per item one transaction that adds its
        ``used`` and date slots to the new item and deletes the old one, while the old one is
        as read. Safe to run again (a second run finds nothing). A date slot that the new item
        already holds (the date booked again since the deploy) is left in place, and reported."""
        moved: list[str] = []
        conflicts: list[str] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(sk, :legacy)",
            "ExpressionAttributeValues": {":legacy": av(LEGACY_QUOTA_SK_PREFIX)},
            "ConsistentRead": True,
        }
        while True:
            response = self._call("Scan", self.client.scan, **request)
            for raw in response.get("Items", []):
                old = from_item(raw)
                where = f"{old['pk']} {old['sk']}"
                (moved if self._move_legacy_quota(old) else conflicts).append(where)
            last = response.get("LastEvaluatedKey")
            if not last:
                return LegacyQuotaMove(moved, conflicts)
            request["ExclusiveStartKey"] = last

    def _move_legacy_quota(self, old: dict[str, Any]) -> bool:
        """Move one old quota item; False when a date slot is taken in the new item (or the
        old item kept changing)."""
        from shared.domain.perks import period_ends  # noqa: PLC0415 (see the imports)

        for _attempt in range(8):
            key = {"pk": av(old["pk"]), "sk": av(old["sk"])}
            perk_id, period = str(old["sk"]).removeprefix(LEGACY_QUOTA_SK_PREFIX).rsplit("#", 1)
            new = Update()
            for name in ("memberId", "programId", "perkId", "period", "updatedAt"):
                if name in old:
                    new.set_if_absent(name, old[name])
            new.add("used", int(old.get("used", 0)))
            slots = [name for name in old if name.startswith("s:")]
            for slot in slots:
                new.set(slot, old[slot])
            condition = " AND ".join(f"attribute_not_exists({new.name(s)})" for s in slots)
            target = {"pk": key["pk"], "sk": av(quota_sk(perk_id, period, period_ends(period)))}
            as_read = Update()
            checks = [f"attribute_exists({as_read.name('pk')})"] + [
                f"{as_read.name(name)} = {as_read.value(old[name])}"
                for name in ("used", "updatedAt")
                if name in old
            ]
            delete: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": key,
                "ConditionExpression": " AND ".join(checks),
                "ExpressionAttributeNames": as_read.names,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            if as_read.values:
                delete["ExpressionAttributeValues"] = as_read.values
            reasons = self._transact(
                [
                    {"Update": new.request(self.table_name, target, condition or None)},
                    {"Delete": delete},
                ]
            )
            if reasons is None:
                return True
            slot_taken, _ = _reason_item(reasons, 0)
            changed, current = _reason_item(reasons, 1)
            if slot_taken and not changed:
                return False
            if changed and not current:
                return True  # moved meanwhile (another run)
            old = current
        return False

    # -- cashback ---------------------------------------------------------------------------

    def credit_cashback(
        self,
        program_id: str,
        member_id: str,
        purchase: Mapping[str, Any],
        cashback: Decimal,
        guard: MemberGuard,
        month: CashbackMonth,
    ) -> CashbackWrite:
        """Record the purchase (once per purchase id) and add its cashback to the wallet and
        to its month's counter, in one transaction, while the member is as read (eligible,
        same tier) and the month's credits stay within ``month.limit``. The wallet is not
        part of the member's version ``v`` (points and eligibility only), nor is the
        counter."""
        purchase_put = self._put(
            program_id, member_id, fuel_sk(str(purchase["purchaseId"])), purchase
        )
        if cashback > month.limit:
            raise ValueError(f"a credit of {cashback} is above the month's limit {month.limit}")
        counter = Update()
        counter.set_if_absent("memberId", member_id)
        counter.set_if_absent("programId", program_id)
        counter.set_if_absent("perkId", month.perk_id)
        counter.set_if_absent("period", month.period)
        counter.adds.append(f"{counter.name('credited')} {counter.value(cashback)}")
        credited = counter.name("credited")
        room = counter.value(month.limit - cashback)
        counter_request = counter.request(
            self.table_name,
            self._key(program_id, member_id, month.sk),
            f"attribute_not_exists({credited}) OR {credited} <= {room}",
        )
        member = Update()
        member.set_if_absent("memberId", member_id)
        member.set_if_absent("programId", program_id)
        member.adds.append(f"{member.name('walletBalance')} {member.value(cashback)}")
        member_request = member.request(
            self.table_name,
            self._member_key(program_id, member_id),
            self._guard_condition(guard, member),
        )
        reasons = self._transact(
            [{"Put": purchase_put}, {"Update": member_request}, {"Update": counter_request}]
        )
        if reasons is None:
            return CashbackWrite(applied=True)
        recorded, existing = _reason_item(reasons, 0)
        if recorded:
            return CashbackWrite(applied=False, existing=existing)
        return CashbackWrite(applied=False, member_changed=True)  # or the month's counter

    def record_purchase(
        self, program_id: str, member_id: str, purchase: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Record a purchase that earned nothing (member ineligible), once. None when written,
        else the purchase as recorded before."""
        return self._conditional_put(
            self._put(program_id, member_id, fuel_sk(str(purchase["purchaseId"])), purchase)
        )

    def refund_cashback(
        self,
        program_id: str,
        member_id: str,
        purchase_id: str,
        cashback: Decimal,
        refunded_at: str,
        occurred_at: str,
    ) -> CashbackWrite:
        """Take a credited purchase's cashback back out of the wallet, once (the purchase item
        goes from ``credited`` to ``refunded`` in the same transaction). The wallet may go
        below zero: the refund is never refused."""
        item = Update()
        item.set("status", "refunded")
        item.set("refundedAt", refunded_at)
        item.set("refundOccurredAt", occurred_at)
        status = item.name("status")
        purchase_request = item.request(
            self.table_name,
            self._key(program_id, member_id, fuel_sk(purchase_id)),
            f"{status} = {item.value('credited')}",
        )
        purchase_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member = Update()
        member.adds.append(f"{member.name('walletBalance')} {member.value(-cashback)}")
        member_request = member.request(self.table_name, self._member_key(program_id, member_id))
        reasons = self._transact([{"Update": purchase_request}, {"Update": member_request}])
        if reasons is None:
            return CashbackWrite(applied=True)
        _, existing = _reason_item(reasons, 0)
        return CashbackWrite(applied=False, existing=existing)

    def get_purchase(
        self, program_id: str, member_id: str, purchase_id: str
    ) -> dict[str, Any] | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key=self._key(program_id, member_id, fuel_sk(purchase_id)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    # -- ledger read model ------------------------------------------------------------------

    def put_ledger_entry(self, pk: str, sk: str, attributes: Mapping[str, Any]) -> None:
        """Write one ledger entry (idempotent: the same change always writes the same item)."""
        item = {name: av(value) for name, value in attributes.items() if value is not None}
        item.update(pk=av(pk), sk=av(sk))
        self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=item)
