"""The customer program's outbound events, derived from item changes."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.customer_events import customer_events
from shared.domain.order_events import shopper_order_events
from shared.logic.ledger import ledger_projection
from shared.streams import Change, ItemKind, StreamRouter

PK = "P#customer-rewards#M#c1"


def order(**attributes: object) -> dict[str, object]:
    return {
        "pk": PK,
        "sk": "ORDER#o1",
        "memberId": "c1",
        "orderId": "o1",
        "shopperId": "s1",
        **attributes,
    }


def test_a_credit_publishes_points_earned_once() -> None:
    new = order(
        status="credited",
        points=80,
        lot="pd20261208",
        availableOn="2026-12-08",
        ruleVersion="customer-rewards@1",
        completedAt="2026-11-23T10:00:00.000000Z",
    )
    events = customer_events(None, new)
    assert [e.detail_type for e in events] == ["PointsEarned"]
    detail = events[0].detail
    assert detail["programId"] == "customer-rewards" and detail["memberId"] == "c1"
    assert detail["points"] == 80 and detail["status"] == "pending"
    assert customer_events(new, {**new, "refunded": "1.00"}) == []
    assert customer_events(None, new)[0].detail["eventId"] == detail["eventId"]


def test_a_late_credit_is_available_at_once_and_a_capture_is_spent() -> None:
    held = order(hold={"points": 500, "state": "held"})
    new = order(
        status="credited",
        points=40,
        lot="av202611",
        completedAt="t",
        hold={"points": 500, "state": "captured", "capturedAt": "t"},
    )
    kinds = [e.detail_type for e in customer_events(held, new)]
    assert kinds == ["PointsEarned", "PointsAvailable", "PointsSpent"]


def test_settlement_publishes_available_expired_and_expiring() -> None:
    member = {"pk": PK, "sk": "MEMBER", "memberId": "c1"}
    due = {
        "at": "2026-12-01T00:05:00Z",
        "matured": 40,
        "expired": 100,
        "expiring": 60,
        "expiresOn": "2027-01-01",
    }
    events = customer_events(member, {**member, "lastDue": due})
    assert [e.detail_type for e in events] == ["PointsAvailable", "PointsExpired", "PointsExpiring"]
    assert events[2].detail["expiresOn"] == "2027-01-01"
    # The same settlement seen again (another attribute changed) publishes nothing.
    assert customer_events({**member, "lastDue": due}, {**member, "lastDue": due, "bal": 1}) == []


def test_shopper_items_publish_no_customer_events() -> None:
    shopper_order = {"pk": "P#cart-star#M#s1", "sk": "ORDER#o1", "status": "credited"}
    assert customer_events(None, shopper_order) == []


def test_the_shopper_router_ignores_customer_program_items() -> None:
    seen: list[str] = []
    router = StreamRouter(
        {ItemKind.MEMBER: lambda change: seen.append(change.sk)}, programs=lambda: ("cart-star",)
    )
    at = datetime(2026, 11, 23, tzinfo=UTC)
    customer = Change({"pk": PK, "sk": "MEMBER"}, None, {"bal": 1}, at)
    shopper = Change({"pk": "P#cart-star#M#s1", "sk": "MEMBER"}, None, {"v": 1}, at)
    assert router.route(customer) is False
    assert router.route(shopper) is True
    assert seen == ["MEMBER"]


def test_the_ledger_shows_every_kind_of_customer_entry() -> None:
    from shared.logic.ledger import ledger_projection  # noqa: PLC0415

    credited = order(
        status="credited",
        points=250,
        lot="pd20261208",
        availableOn="2026-12-08",
        ruleVersion="customer-rewards@1",
        completedAt="2026-11-23T10:00:00Z",
        hold={"points": 500, "state": "captured", "capturedAt": "2026-11-23T10:00:00Z"},
    )
    entries = {entry.kind: entry for _, _, entry in ledger_projection(None, credited)}
    assert entries["credit"].points == 250 and entries["credit"].available_on == "2026-12-08"
    assert entries["spend"].points == -500
    refund = {
        "kind": "OrderRefunded",
        "occurredAt": "2026-11-25T09:00:00Z",
        "clawed": 125,
        "returned": 250,
        "ruleVersion": "customer-rewards@1",
    }
    refunded = {**credited, "refunds": [refund]}
    added = {entry.kind: entry for _, _, entry in ledger_projection(credited, refunded)}
    assert set(added) == {"clawback", "return"}  # the credit and spend were there before
    assert (added["clawback"].points, added["return"].points) == (-125, 250)
    assert all(e.rule_version == "customer-rewards@1" for e in added.values())
    member = {"pk": PK, "sk": "MEMBER", "memberId": "c1"}
    expired = {
        **member,
        "lastDue": {
            "at": "2026-12-01T00:05:00Z",
            "matured": 0,
            "expired": 40,
            "ruleVersion": "customer-rewards@1",
        },
    }
    ((_, _, entry),) = ledger_projection(member, expired)
    assert (entry.kind, entry.points, entry.rule_version) == ("expiry", -40, "customer-rewards@1")
    assert ledger_projection(expired, {**expired, "bal": 3}) == []


def test_a_capture_paid_by_the_wallet_publishes_wallet_spent_and_no_empty_points_spent() -> None:
    held = order(hold={"points": 0, "state": "held", "wallet": "4.50", "walletFrom": "cart-star"})
    captured = order(
        hold={
            "points": 0,
            "state": "captured",
            "wallet": "4.50",
            "walletFrom": "cart-star",
            "capturedAt": "2026-11-23T10:00:00.000000+00:00",
        }
    )
    events = customer_events(held, captured)
    assert [e.detail_type for e in events] == ["WalletSpent"]
    detail = events[0].detail
    assert (detail["amount"], detail["walletProgramId"], detail["orderId"]) == (
        "4.50",
        "cart-star",
        "o1",
    )
    assert customer_events(captured, captured) == []
    both = order(hold={**captured["hold"], "points": 500})  # type: ignore[dict-item]
    assert sorted(e.detail_type for e in customer_events(held, both)) == [
        "PointsSpent",
        "WalletSpent",
    ]


def test_a_shoppers_credited_order_publishes_points_earned_once() -> None:
    shopper_order = {
        "pk": "P#cart-star#M#s1",
        "sk": "ORDER#o9",
        "memberId": "s1",
        "orderId": "o9",
        "status": "credited",
        "points": 30,
        "batchSize": 3,
        "ruleVersion": "cart-star@1",
        "completedAt": "2026-11-23T10:00:00.000000+00:00",
    }
    events = shopper_order_events(None, shopper_order)
    assert [e.detail_type for e in events] == ["PointsEarned"]
    detail = events[0].detail
    assert (detail["programId"], detail["memberId"], detail["points"], detail["batchSize"]) == (
        "cart-star",
        "s1",
        30,
        3,
    )
    assert detail["ruleVersion"] == "cart-star@1" and detail["eventId"]
    assert shopper_order_events(shopper_order, {**shopper_order, "tipAdjustedAt": "x"}) == []
    assert shopper_order_events(None, order(status="credited", completedAt="x")) == []  # customer
    reversed_order = {**shopper_order, "status": "reversed"}
    assert shopper_order_events(shopper_order, reversed_order) == []


def test_a_bonus_and_its_reversal_are_published_and_kept_in_the_ledger() -> None:
    reward = {
        "pk": PK,
        "sk": "REWARD#eco_no_cutlery#o1",
        "memberId": "c1",
        "campaignId": "eco_no_cutlery",
        "orderId": "o1",
        "points": 20,
        "period": "2026-11",
        "state": "credited",
        "occurredAt": "2026-11-23T10:00:00.000000+00:00",
        "ruleVersion": "customer-rewards@1",
    }
    (paid,) = customer_events(None, reward)
    assert paid.detail_type == "CampaignRewarded"
    assert (paid.detail["campaignId"], paid.detail["points"]) == ("eco_no_cutlery", 20)
    reversed_reward = {**reward, "state": "reversed", "reversedAt": "2026-11-24T09:00:00Z"}
    (back,) = customer_events(reward, reversed_reward)
    assert back.detail_type == "CampaignRewardReversed" and back.detail["eventId"]
    assert customer_events(reversed_reward, reversed_reward) == []

    entries = [entry for _, _, entry in ledger_projection(None, reward)]
    assert [(e.kind, e.points, e.reason) for e in entries] == [
        ("bonus", 20, "campaign:eco_no_cutlery")
    ]
    later = [entry for _, _, entry in ledger_projection(reward, reversed_reward)]
    assert [(e.kind, e.points) for e in later] == [("bonus_reversal", -20)]
