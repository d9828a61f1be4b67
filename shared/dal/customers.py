"""The customer program's points on DynamoDB (docs/customer-program.md).

Every item lives in the customer's partition ``P#{programId}#M#{customerId}``: the member item
(balances and lots, see ``shared.domain.customer``) and one ``ORDER#{orderId}`` item per order,
which carries the order's credit, its checkout hold and its refunds. Each decision is one
transaction of those two items, guarded by conditions: an order's credit, capture, release and
clawback happen once because the order item says which have happened; a hold never takes more
than ``bal`` because the member item's condition says ``bal >= points``.

Mechanical, like the other repositories: it carries out what the use cases in
``shared.logic.customers`` decided and reports what it found when a condition fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.domain.birthday import GiftPlan, index_day
from shared.domain.campaigns import REWARDED
from shared.domain.customer import (
    CustomerCredit,
    DuePlan,
    Refund,
    order_total_attr,
    wallet_amount,
    year_attr,
)
from shared.domain.keys import (
    DUE_SHARDS,
    MEMBER_SK,
    ORDER_SK_PREFIX,
    due_shard,
    hold_shard,
    order_sk,
    reward_sk,
)
from shared.domain.timeutil import to_utc_iso
from shared.logic.ports import Found

from .campaigns import RewardWrite
from .dividend import DividendWrites
from .dynamodb import Update, av, from_item
from .giving import GivingWrites
from .referrals import ReferralWrites

CHECK_INDEX = "ByCheckDate"
BIRTHDAY_INDEX = "ByBirthday"
ZERO = Decimal(0)


class CustomerRepository(ReferralWrites, GivingWrites, DividendWrites):
    """Satisfies ``shared.logic.customers.CustomerStore``."""

    def _update_member_if(
        self, program_id: str, member_id: str, update: Update, condition: str
    ) -> bool:
        """One conditional ``UpdateItem`` of the member item: whether it applied."""
        return self._update_if(
            update.request(self.table_name, self._key(program_id, member_id, MEMBER_SK), condition)
        )

    # -- reads ------------------------------------------------------------------------------

    def get_customer_order(
        self, program_id: str, member_id: str, order_id: str
    ) -> dict[str, Any] | None:
        return self._get_item(program_id, member_id, order_sk(order_id))

    def _found(
        self, reasons: list[dict[str, Any]], member: int | None = 1, wallet: int | None = None
    ) -> Found:
        """What the refused transaction's items were (by their places in it: the order item
        first, then the member item and the wallet's member item, where they take part)."""

        def image(index: int | None) -> dict[str, Any] | None:
            if index is None or index >= len(reasons):
                return None
            if reasons[index].get("Code") != "ConditionalCheckFailed":
                return None
            item = reasons[index].get("Item")
            return from_item(item) if item else {}

        return Found(False, image(0), image(member), image(wallet))

    def _wallet_request(
        self,
        member_id: str,
        hold: Mapping[str, Any],
        balance: Decimal = ZERO,
        held: Decimal = ZERO,
        spent: Decimal = ZERO,
        covers: Decimal | None = None,
    ) -> dict[str, Any]:
        """The wallet's part of a hold's decision: the member item of the program whose wallet
        pays (``hold["walletFrom"]``), moved between ``walletBalance``, ``walletHeld`` and
        ``walletSpent``; with ``covers``, only while the balance covers it (evaluated by DynamoDB:
        concurrent holds never overdraw the wallet). The wallet is not part of the version."""
        update = Update()
        for attribute, delta in (
            ("walletBalance", balance),
            ("walletHeld", held),
            ("walletSpent", spent),
        ):
            if delta:
                update.add(attribute, delta)
        condition = None
        if covers is not None:
            name = update.name("walletBalance")
            condition = f"attribute_exists({name}) AND {name} >= {update.value(covers)}"
        request = update.request(
            self.table_name,
            self._key(str(hold["walletFrom"]), member_id, MEMBER_SK),
            condition,
        )
        if condition:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return request

    # -- the member item's part of an order's credit -----------------------------------------

    @staticmethod
    def _standing_condition(update: Update, credit: CustomerCredit, at: str) -> str:
        """The member item as the credit assumed it: its status bands and its plan."""
        parts = []
        for attribute, low, high in credit.bounds:
            name = update.name(attribute)
            if low is None:
                upper = f" OR {name} < {update.value(high)}" if high is not None else " OR true"
                parts.append(f"attribute_not_exists({name}){upper}")
            else:
                clause = f"{name} >= {update.value(low)}"
                if high is not None:
                    clause += f" AND {name} < {update.value(high)}"
                parts.append(clause)
        until = update.name("planUntil")
        if credit.standing.plan is None:
            parts.append(f"attribute_not_exists({until}) OR {until} <= {update.value(at)}")
        else:
            parts.append(
                f"{update.name('plan')} = {update.value(credit.standing.plan)} "
                f"AND {until} > {update.value(at)}"
            )
        return " AND ".join(f"({part})" for part in parts)

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
    ) -> Found:
        """Record the order's completion and credit its points; capture its hold (``hold``: the
        hold as the order item holds it, None: the order has none). Unless ``expect_refunds``,
        the order must hold no refund that came before it (``pendingRefunds``): the caller
        applies those after the credit."""
        completed_at = str(order["completedAt"])
        item = Update()
        for attribute, value in order.items():
            item.set(attribute, value)
        item.set("points", credit.points)
        item.set("basePoints", credit.base)
        item.set("availableOn", credit.available_on.isoformat())
        item.set("lot", credit.lot)
        item.set("ruleVersion", credit.rule_version)
        item.set("status", "credited")
        item.set("creditedBy", attempt_id)
        standing = credit.standing
        item.set("statusBand", standing.status_band)
        if standing.plan:
            item.set("plan", standing.plan)
        hold_name = item.name("hold")
        if hold is None:
            order_condition = f"attribute_not_exists({hold_name})"
        else:
            item.set("hold", {**hold, "state": "captured", "capturedAt": completed_at})
            state, amount = item.name("state"), item.name("points")
            order_condition = (
                f"{hold_name}.{state} = {item.value('held')} "
                f"AND {hold_name}.{amount} = {item.value(int(hold['points']))}"
            )
            item.remove("checkShard")
            item.remove("checkOn")
        if not expect_refunds:
            order_condition += f" AND attribute_not_exists({item.name('pendingRefunds')})"
        order_request = item.request(
            self.table_name,
            self._key(program_id, member_id, order_sk(str(order["orderId"]))),
            f"attribute_not_exists({item.name('completedAt')}) "
            f"AND attribute_not_exists({item.name('cancelledAt')}) AND {order_condition}",
        )
        order_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"

        member_request = self._credit_member(
            program_id, member_id, str(order["orderId"]), credit, hold, lower_check, completed_at
        )
        items = [{"Update": order_request}, {"Update": member_request}]
        paid = wallet_amount(hold)
        if hold is not None and paid:
            items.append({"Update": self._wallet_request(member_id, hold, held=-paid, spent=paid)})
        reasons = self._transact(items)
        return Found(True) if reasons is None else self._found(reasons)

    def _credit_member(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        credit: CustomerCredit,
        hold: Mapping[str, Any] | None,
        lower_check: bool,
        completed_at: str,
    ) -> dict[str, Any]:
        """The member item's part of a credit: guarded by the standing the points assumed."""
        standing = credit.standing
        member = Update()
        member.set_if_absent("memberId", member_id)
        member.set_if_absent("programId", program_id)
        member.set_if_absent("memberSince", completed_at)
        # The customer's first credited order, for ever (a referral pays once it survives its
        # pending period; a later order never becomes the first): docs/campaigns.md.
        member.set_if_absent("firstOrder", order_id)
        member.set_if_absent("firstLot", credit.lot)
        member.add("lifetimePoints", credit.points)
        member.add("ordersCompleted", 1)
        member.add(year_attr(standing.year), credit.points)
        if credit.order_cents:
            # The year's order total, for the annual dividend: in the same update, no extra write.
            member.add(order_total_attr(standing.year), credit.order_cents)
        member.add("v", 1)
        condition = self._standing_condition(member, credit, completed_at)
        if credit.pending and credit.points:
            member.add(credit.lot, credit.points)
            member.add("pend", credit.points)
        elif credit.points:
            member.add(credit.lot, credit.points)
            member.add("bal", credit.points)
        if credit.due_on is not None:
            day = credit.due_on.isoformat()
            check = member.name("checkOn")
            member.set_if_absent("checkShard", due_shard(program_id, member_id))
            if lower_check:
                member.set("checkOn", day)
                condition += f" AND {check} > {member.value(day)}"
            else:
                member.set_if_absent("checkOn", day)
                condition += (
                    f" AND (attribute_not_exists({check}) OR {check} <= {member.value(day)})"
                )
        if hold is not None and int(hold["points"]):
            points = int(hold["points"])
            member.add("held", -points)
            member.add("used", points)
        member_request = member.request(
            self.table_name, self._key(program_id, member_id, MEMBER_SK), condition
        )
        member_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return member_request

    def record_void(
        self, program_id: str, member_id: str, order: Mapping[str, Any], status: str
    ) -> bool:
        """Record a completion that earns nothing (its cancellation came first)."""
        item = Update()
        for attribute, value in order.items():
            item.set(attribute, value)
        item.set("status", status)
        item.set("points", 0)
        return self._update_if(
            item.request(
                self.table_name,
                self._key(program_id, member_id, order_sk(str(order["orderId"]))),
                "attribute_not_exists(completedAt)",
            )
        )

    # -- membership ---------------------------------------------------------------------------

    def change_membership(
        self,
        program_id: str,
        member_id: str,
        plan: str | None,
        valid_until: datetime | None,
        occurred_at: datetime,
    ) -> bool:
        """Keep the latest membership change (an older or repeated one changes nothing)."""
        update = Update()
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        at = to_utc_iso(occurred_at)
        update.set("planAt", at)
        if plan is None:
            update.remove("plan")
            update.remove("planUntil")
        else:
            update.set("plan", plan)
            update.set("planUntil", to_utc_iso(valid_until) if valid_until else at)
        name = update.name("planAt")
        condition = f"attribute_not_exists({name}) OR {name} < {update.value(at)}"
        return self._update_member_if(program_id, member_id, update, condition)

    # -- checkout holds -----------------------------------------------------------------------

    def _spend(
        self,
        program_id: str,
        member_id: str,
        order_request: dict[str, Any],
        member: Update,
        points: int,
        wallet_request: dict[str, Any] | None = None,
    ) -> Found:
        """The order item's change and the member's spend of ``points`` in one transaction,
        the member's only while ``bal`` covers them (evaluated by DynamoDB: concurrent spends
        never overdraw); with the wallet's part (``wallet_request``) when the wallet pays too.
        No points: the member item stays out of it (a customer paying with the wallet alone
        may have none)."""
        items = [{"Update": order_request}]
        if points:
            member.add("v", 1)
            balance = member.name("bal")
            member_request = member.request(
                self.table_name,
                self._key(program_id, member_id, MEMBER_SK),
                f"attribute_exists({balance}) AND {balance} >= {member.value(points)}",
            )
            member_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            items.append({"Update": member_request})
        if wallet_request is not None:
            items.append({"Update": wallet_request})
        reasons = self._transact(items)
        if reasons is None:
            return Found(True)
        return self._found(
            reasons,
            member=1 if points else None,
            wallet=len(items) - 1 if wallet_request is not None else None,
        )

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
    ) -> Found:
        """Hold ``points`` for the order (and ``wallet``: (program, amount) of the member's
        wallet in that program): only if the order has no hold, is not completed or cancelled,
        and the member's ``bal`` (and the wallet's balance) cover them."""
        hold: dict[str, Any] = {
            "points": points,
            "state": "held",
            "heldAt": to_utc_iso(held_at),
            "expiresAt": to_utc_iso(expires_at),
            "by": attempt_id,
        }
        if wallet is not None:
            hold["walletFrom"], hold["wallet"] = wallet[0], wallet[1]
        item = Update()
        item.set("memberId", member_id)
        item.set("orderId", order_id)
        item.set("hold", hold)
        item.set("checkShard", hold_shard(program_id, member_id))
        item.set("checkOn", to_utc_iso(expires_at))
        order_request = item.request(
            self.table_name,
            self._key(program_id, member_id, order_sk(order_id)),
            f"attribute_not_exists({item.name('hold')}) "
            f"AND attribute_not_exists({item.name('completedAt')}) "
            f"AND attribute_not_exists({item.name('cancelledAt')})",
        )
        order_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member = Update()
        member.add("bal", -points)
        member.add("held", points)
        wallet_request = None
        if wallet is not None:
            wallet_request = self._wallet_request(
                member_id, hold, balance=-wallet[1], held=wallet[1], covers=wallet[1]
            )
        return self._spend(program_id, member_id, order_request, member, points, wallet_request)

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
        wallet_returned: Decimal = ZERO,
    ) -> Found:
        """A hold asked for after its order's completion was recorded (the events came in
        another order than the checkout's calls): captured at once, as the completion would
        have, while the order is credited and has no hold, if ``bal`` covers it. A refund
        already applied to the order (``refunded``, as read) gives back its share of the spent
        points at once (``returned``; of the wallet's part, ``wallet_returned``)."""
        hold: dict[str, Any] = {
            "points": points,
            "state": "captured",
            "heldAt": to_utc_iso(at),
            "capturedAt": to_utc_iso(at),
            "expiresAt": to_utc_iso(at),
            "by": attempt_id,
        }
        if wallet is not None:
            hold["walletFrom"], hold["wallet"] = wallet[0], wallet[1]
        item = Update()
        item.set("hold", hold)
        if wallet_returned:
            item.set("walletReturned", wallet_returned)
        refunded_name = item.name("refunded")
        refund_condition = (
            f"attribute_not_exists({refunded_name})"
            if refunded is None
            else f"{refunded_name} = {item.value(refunded)}"
        )
        if returned:
            item.set("returned", returned)
        order_request = item.request(
            self.table_name,
            self._key(program_id, member_id, order_sk(order_id)),
            f"attribute_not_exists({item.name('hold')}) "
            f"AND {item.name('status')} = {item.value('credited')} AND {refund_condition}",
        )
        order_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member = Update()
        member.add("bal", returned - points)
        member.add("used", points)
        if returned:
            member.add(returned_lot, returned)
        wallet_request = None
        if wallet is not None:
            kept = wallet[1] - wallet_returned
            wallet_request = self._wallet_request(
                member_id, hold, balance=-kept, spent=kept, covers=wallet[1]
            )
        return self._spend(program_id, member_id, order_request, member, points, wallet_request)

    def record_pending_refund(
        self, program_id: str, member_id: str, order_id: str, refund: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Keep a refund that came before its order's completion, once (by its key); the credit
        applies it. None when kept; else the order as it stood (completed meanwhile, or the
        refund kept before)."""
        update = Update()
        update.set("memberId", member_id)
        update.set("orderId", order_id)
        refunds, keys = update.name("pendingRefunds"), update.name("pendingRefundKeys")
        empty = update.value([])
        update.sets.append(
            f"{refunds} = list_append(if_not_exists({refunds}, {empty}), {update.value([refund])})"
        )
        update.sets.append(
            f"{keys} = list_append(if_not_exists({keys}, {empty}), "
            f"{update.value([str(refund['key'])])})"
        )
        key = update.value(str(refund["key"]))
        request = update.request(
            self.table_name,
            self._key(program_id, member_id, order_sk(order_id)),
            f"attribute_not_exists({update.name('completedAt')}) "
            f"AND attribute_not_exists({update.name('cancelledAt')}) "
            f"AND (attribute_not_exists({keys}) OR NOT contains({keys}, {key}))",
        )
        old = self._conditional_write("UpdateItem", request)
        return None if old is None else from_item(old) if old else {}

    def release_hold(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        hold: Mapping[str, Any],
        released_at: datetime,
        reason: str,
    ) -> Found:
        """Give the hold's points (and wallet money) back, once: only while the hold is
        ``held``."""
        points = int(hold["points"])
        order_request = {
            "TableName": self.table_name,
            "Key": self._key(program_id, member_id, order_sk(order_id)),
            "UpdateExpression": (
                "SET #hold.#state = :released, #hold.#at = :at, #hold.#why = :why "
                "REMOVE #shard, #on"
            ),
            "ExpressionAttributeNames": {
                "#hold": "hold",
                "#state": "state",
                "#at": "releasedAt",
                "#why": "releaseReason",
                "#shard": "checkShard",
                "#on": "checkOn",
            },
            "ExpressionAttributeValues": {
                ":released": {"S": "released"},
                ":at": {"S": to_utc_iso(released_at)},
                ":why": {"S": reason},
                ":held": {"S": "held"},
            },
            "ConditionExpression": "#hold.#state = :held",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        items: list[dict[str, Any]] = [{"Update": order_request}]
        if points:
            member = Update()
            member.add("held", -points)
            member.add("bal", points)
            member.add("v", 1)
            member_request = member.request(
                self.table_name, self._key(program_id, member_id, MEMBER_SK)
            )
            items.append({"Update": member_request})
        amount = wallet_amount(hold)
        if amount:
            items.append(
                {"Update": self._wallet_request(member_id, hold, balance=amount, held=-amount)}
            )
        reasons = self._transact(items)
        return Found(True) if reasons is None else self._found(reasons, member=None)

    def expired_holds(self, program_id: str, before: datetime) -> Iterator[tuple[str, str]]:
        """(member id, order id) of the holds due for release at ``before``, every shard."""
        for shard in range(DUE_SHARDS):
            for key in self._query_due(f"{program_id}#H#{shard:02d}", to_utc_iso(before)):
                pk, sk = key["pk"], key["sk"]
                yield pk.rsplit("#M#", 1)[1], sk[len(ORDER_SK_PREFIX) :]

    def due_members(self, program_id: str, today: date) -> Iterator[str]:
        """Member ids with something due by ``today``, every shard."""
        for shard in range(DUE_SHARDS):
            for key in self._query_due(f"{program_id}#{shard:02d}", today.isoformat()):
                yield key["pk"].rsplit("#M#", 1)[1]

    def _query_due(self, shard: str, until: str) -> Iterator[dict[str, str]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": CHECK_INDEX,
            "KeyConditionExpression": "checkShard = :shard AND checkOn <= :until",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":until": {"S": until}},
        }
        while True:
            response = self._call("Query", self.client.query, **request)
            for item in response.get("Items", []):
                yield {"pk": item["pk"]["S"], "sk": item["sk"]["S"]}
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    # -- cancellations and refunds --------------------------------------------------------------

    def record_cancellation(
        self, program_id: str, member_id: str, order_id: str, occurred_at: datetime, kind: str
    ) -> bool:
        """A cancellation before the completion: the completion will then earn nothing."""
        update = Update()
        update.set("memberId", member_id)
        update.set("orderId", order_id)
        update.set("cancelledAt", to_utc_iso(occurred_at))
        update.set("cancelKind", kind)
        update.set("status", "cancelled")
        return self._update_if(
            update.request(
                self.table_name,
                self._key(program_id, member_id, order_sk(order_id)),
                "attribute_not_exists(completedAt) AND attribute_not_exists(cancelledAt)",
            )
        )

    def refund(
        self,
        program_id: str,
        member_id: str,
        order: Mapping[str, Any],
        refund: Refund,
        member_version: int,
    ) -> Found:
        """Apply one refund (or cancellation) of a credited order: the order item's totals move
        from what was read (``refundKeys`` guards against a second application) and the member
        item from its version."""
        item = Update()
        item.set("refunded", refund.refunded)
        item.set("clawed", refund.clawed_total)
        item.set("returned", refund.returned_total)
        item.set("refundKeys", [*order.get("refundKeys", []), refund.key])
        item.set(
            "refunds",
            [
                *order.get("refunds", []),
                {
                    "kind": refund.kind,
                    "occurredAt": refund.occurred_at,
                    "amount": refund.amount,
                    "clawed": refund.clawed,
                    "fromPending": refund.from_pending,
                    "returned": refund.returned,
                    "ruleVersion": refund.rule_version,
                },
            ],
        )
        if refund.wallet_returned_total:
            item.set("walletReturned", refund.wallet_returned_total)
        if refund.whole:
            item.set("status", "reversed")
            if refund.drop_draw_entry:
                item.remove("drawMonth")
        clawed = item.name("clawed")
        previous = int(order.get("clawed") or 0)
        order_condition = (
            f"attribute_not_exists({clawed})"
            if "clawed" not in order
            else f"{clawed} = {item.value(previous)}"
        )
        # The hold as read: a hold captured meanwhile changes what comes back to the customer.
        hold = order.get("hold")
        hold_name = item.name("hold")
        if isinstance(hold, Mapping):
            order_condition += (
                f" AND {hold_name}.{item.name('state')} = {item.value(str(hold.get('state')))}"
            )
            if wallet_amount(hold):
                # The wallet's share given back so far, as read (each refund moves it once).
                given = item.name("walletReturned")
                order_condition += (
                    f" AND {given} = {item.value(order['walletReturned'])}"
                    if "walletReturned" in order
                    else f" AND attribute_not_exists({given})"
                )
        else:
            order_condition += f" AND attribute_not_exists({hold_name})"
        order_request = item.request(
            self.table_name,
            self._key(program_id, member_id, order_sk(str(order["orderId"]))),
            f"{item.name('status')} = {item.value('credited')} AND {order_condition}",
        )
        order_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        member_request = self._refund_member(program_id, member_id, refund, member_version)
        items = [{"Update": order_request}, {"Update": member_request}]
        if refund.wallet_returned and isinstance(hold, Mapping):
            back = refund.wallet_returned
            items.append(
                {"Update": self._wallet_request(member_id, hold, balance=back, spent=-back)}
            )
        reasons = self._transact(items)
        return Found(True) if reasons is None else self._found(reasons)

    def _refund_member(
        self, program_id: str, member_id: str, refund: Refund, member_version: int
    ) -> dict[str, Any]:
        """The member item's part of a refund: points out of the pending lot or the balance,
        spent points back, the year's points and order total down, from its version."""
        member = Update()
        if refund.from_pending:
            member.add(refund.from_pending_lot, -refund.from_pending)
            member.add("pend", -refund.from_pending)
        from_available = refund.clawed - refund.from_pending
        if from_available:
            member.add("bal", -from_available)
            member.add("used", from_available)
        if refund.returned:
            member.add("bal", refund.returned)
            member.add(refund.returned_lot, refund.returned)
        member.add(year_attr(refund.year), -refund.clawed)
        if refund.order_cents:
            member.add(order_total_attr(refund.year), -refund.order_cents)
        member.add("lifetimePoints", -refund.clawed)
        member.add("v", 1)
        version = member.name("v")
        member_request = member.request(
            self.table_name,
            self._key(program_id, member_id, MEMBER_SK),
            f"{version} = {member.value(member_version)}",
        )
        member_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return member_request

    # -- what falls due -------------------------------------------------------------------------

    def apply_due(
        self, program_id: str, member_id: str, plan: DuePlan, at: datetime, version: int
    ) -> bool:
        """Mature, expire and announce what ``plan`` says, from the member item's ``version``."""
        update = Update()
        matured = 0
        for pending, _, points in plan.matured:
            update.remove(pending)
            matured += points
        lots: dict[str, int] = {}
        for _, available, points in plan.matured:
            lots[available] = lots.get(available, 0) + points
        expired_names = {name for name, _ in plan.expired}
        for name in expired_names:
            update.remove(name)
        for name, points in lots.items():
            if name not in expired_names:
                update.add(name, points)
        if matured:
            update.add("pend", -matured)
        if matured - plan.expired_points:
            update.add("bal", matured - plan.expired_points)
        update.set("used", plan.used_after)
        if plan.noticed is not None:
            update.set("noticed", plan.noticed)
        happened: dict[str, Any] = {
            "at": to_utc_iso(at),
            "matured": matured,
            "ruleVersion": plan.rule_version,
        }
        if plan.expired_points:
            happened["expired"] = plan.expired_points
        if plan.notice is not None:
            happened["expiring"] = plan.notice[0]
            happened["expiresOn"] = plan.notice[1].isoformat()
        update.set("lastDue", happened)
        if plan.next_due is None:
            update.remove("checkShard")
            update.remove("checkOn")
        else:
            update.set("checkShard", due_shard(program_id, member_id))
            update.set("checkOn", plan.next_due.isoformat())
        update.add("v", 1)
        name = update.name("v")
        condition = f"{name} = {update.value(version)}"
        return self._update_member_if(program_id, member_id, update, condition)

    # -- the profile and the birthday gift (docs/campaigns.md) -----------------------------------

    def set_profile(
        self,
        program_id: str,
        member_id: str,
        values: Mapping[str, Any],
        removed: list[str],
        read_at: str | None,
    ) -> bool:
        """Keep a profile change, only while the member's ``profileAt`` is as read (``read_at``,
        None: no profile yet) and older than the change: an older or repeated change, or one
        racing another, changes nothing (the caller reads again)."""
        update = Update()
        update.set_if_absent("memberId", member_id)
        update.set_if_absent("programId", program_id)
        for name, value in values.items():
            update.set(name, value)
        for name in removed:
            update.remove(name)
        at = update.name("profileAt")
        if read_at is None:
            condition = f"attribute_not_exists({at})"
        else:
            condition = f"{at} = {update.value(read_at)}"
        condition += (
            f" AND (attribute_not_exists({at}) OR {at} < {update.value(values['profileAt'])})"
        )
        return self._update_member_if(program_id, member_id, update, condition)

    def birthdays_due(
        self, program_id: str, day: date, until: datetime
    ) -> Iterator[dict[str, Any]]:
        """The members whose birthday began on the UTC ``day`` by ``until``, as the index projects
        them (keys, ``birthday``, ``timeZone``, ``birthdayChangedAt``; eventually consistent)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BIRTHDAY_INDEX,
            "KeyConditionExpression": "bdayDay = :day AND bdayAt <= :until",
            "ExpressionAttributeValues": {
                ":day": {"S": index_day(program_id, day)},
                ":until": {"S": to_utc_iso(until)},
            },
        }
        while True:
            response = self._call("Query", self.client.query, **request)
            for item in response.get("Items", []):
                yield from_item(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def gift(
        self, program_id: str, member_id: str, plan: GiftPlan, at: str, lower_check: bool
    ) -> tuple[RewardWrite, dict[str, Any] | None]:
        """Pay a birthday gift: the campaign's transaction (the reward once, the member's count,
        the budget), the member item's new lot and its next birthday in the index, while its
        ``bdayAt`` is as the sweep read it. The member item's due day becomes the lot's expiry
        when that is sooner (``lower_check``: it is later now; else absent or sooner). Refused
        on the member item: the item as it stood ({} for none)."""
        campaign = plan.campaign
        reward = {
            "memberId": member_id,
            "programId": program_id,
            "campaignId": campaign.id,
            "occasion": plan.occasion,
            "points": plan.points,
            "period": plan.period,
            "budgetPeriod": plan.budget_period,
            "lot": plan.lot,
            "expiresOn": plan.expires_on.isoformat(),
            "state": REWARDED,
            "occurredAt": plan.occurred_at,
            "rewardedAt": at,
            "ruleVersion": plan.rule_version,
        }
        item = {name: av(value) for name, value in reward.items() if value is not None}
        item.update(self._key(program_id, member_id, reward_sk(campaign.id, plan.occasion)))
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
        for name, value in plan.next_keys.items():
            member.set(name, value)
        day = plan.expires_on.isoformat()
        check = member.name("checkOn")
        member.set_if_absent("checkShard", due_shard(program_id, member_id))
        if lower_check:
            member.set("checkOn", day)
            check_condition = f"{check} > {member.value(day)}"
        else:
            member.set_if_absent("checkOn", day)
            check_condition = f"(attribute_not_exists({check}) OR {check} <= {member.value(day)})"
        member_request = member.request(
            self.table_name,
            self._key(program_id, member_id, MEMBER_SK),
            f"{member.name('bdayAt')} = {member.value(plan.index_at)} AND {check_condition}",
        )
        member_request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items.append({"Update": member_request})
        if plan.budget is not None and plan.budget_period is not None:
            items.append(
                self._budget_item(
                    program_id, campaign.id, plan.budget_period, plan.points, plan.budget
                )
            )
        reasons = self._transact(items)
        if reasons is None:
            return RewardWrite.REWARDED, None
        refused = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
        if refused[0] == 2:
            found = reasons[2].get("Item")
            return RewardWrite.NO_MEMBER, from_item(found) if found else {}
        return {
            0: RewardWrite.DUPLICATE,
            1: RewardWrite.MEMBER_LIMIT,
            3: RewardWrite.BUDGET_SPENT,
        }[refused[0]], None

    def move_birthday(
        self,
        program_id: str,
        member_id: str,
        index_at: str,
        next_keys: Mapping[str, str],
        outcome: Mapping[str, Any] | None,
    ) -> bool:
        """Move the member to their next birthday in the index, while ``bdayAt`` is as read,
        keeping why this one paid nothing (``birthdayOutcome``)."""
        update = Update()
        for name, value in next_keys.items():
            update.set(name, value)
        if outcome is not None:
            update.set("birthdayOutcome", dict(outcome))
        at = update.name("bdayAt")
        return self._update_member_if(
            program_id, member_id, update, f"{at} = {update.value(index_at)}"
        )
