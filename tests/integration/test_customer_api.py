"""The customer program through its clients: the member API answers a customer's token for the
customer program, and the checkout service holds and releases points over IAM."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

from shared import composition
from shared.logic.customers import guesses
from tests.helpers import FakeContext, order_completed
from tests.integration.test_customer_wallet import give_wallet
from tests.integration.test_perks_helpers import NOW, apps, call, http

__all__ = ["apps"]  # the fixture

CUSTOMER = "customer-rewards"


def customer_http(method: str, path: str, sub: str, **options: Any) -> dict[str, Any]:
    """A request with a token issued to the customer program's app (its audience)."""
    event = http(method, path, sub=sub, **options)
    event["requestContext"]["authorizer"]["jwt"]["claims"]["aud"] = CUSTOMER
    return event


def completed(
    apps: dict[str, ModuleType], customer: str, order_id: str, total: str, days_ago: int = 0
) -> dict[str, Any]:
    event = order_completed(
        order_id=order_id,
        member_id="shopper-1",
        customer_id=customer,
        completed_at=(NOW - timedelta(days=days_ago)).isoformat(),
        time=NOW.isoformat(),
    )
    event["detail"]["total"] = {"amount": total, "currency": "USD"}
    result: dict[str, Any] = apps["order_ingestion"].lambda_handler(event, FakeContext())
    return result


def hold(member: str, order_id: str, points: Any, **options: Any) -> dict[str, Any]:
    query = options.pop("query", {"programId": CUSTOMER})
    body = {"orderId": order_id, "points": points, **options.pop("extra", {})}
    if points is None:
        del body["points"]
    return http("POST", f"/v1/members/{member}/holds", iam=True, query=query, body=body, **options)


def test_a_customer_token_gets_the_customer_program(apps: dict[str, ModuleType]) -> None:
    guesses.clear()
    completed(apps, "ann", "o-1", "600.00", days_ago=30)  # 1,200 points, available: Silver
    completed(apps, "ann", "o-2", "40.99")  # 100 points at x1.25, pending
    status, me, _ = call(apps["member_api"], customer_http("GET", "/v1/me", "ann"))
    assert status == 200
    assert me["programId"] == CUSTOMER
    assert me["points"] == {
        "available": 1200,
        "pending": 100,
        "held": 0,
        "expiringSoon": {"points": 1200, "on": "2027-12-01"},
    }
    assert me["value"] == {"amount": "12.00", "currency": "USD"}
    assert (me["tier"], me["yearPoints"], me["pointsToNextTier"]) == ("silver", 1300, 1700)
    assert me["statusUntil"] == "2027-12-31" and me["plus"] is None
    # The same person's shopper token (no program's audience) gets the shopper program.
    status, shopper, _ = call(apps["member_api"], http("GET", "/v1/me", sub="shopper-1"))
    assert shopper["programId"] == "cart-star" and shopper.get("points") is None
    assert shopper["lifetimePoints"] == 20


def test_checkout_holds_over_iam(apps: dict[str, ModuleType]) -> None:
    api = apps["perk_redemption"]
    completed(apps, "bob", "o-1", "300.00", days_ago=30)  # 600 available
    status, body, _ = call(api, hold("bob", "cart-1", 500))
    assert status == 201
    assert body == {
        "holdId": "cart-1",
        "orderId": "cart-1",
        "points": 500,
        "value": {"amount": "5.00", "currency": "USD"},
        "wallet": None,
        "state": "held",
        "expiresAt": body["expiresAt"],
    }
    assert call(api, hold("bob", "cart-1", 500))[0] == 200  # the same hold again
    status, error, _ = call(api, hold("bob", "cart-1", 600))
    assert (status, error["error"]["code"]) == (409, "hold_mismatch")
    status, error, _ = call(api, hold("bob", "cart-2", 500))
    assert (status, error["error"]["code"], error["error"]["field"]) == (
        409,
        "insufficient_points",
        "points",
    )
    assert "100 available" in error["error"]["message"]
    for points, field in ((550, "points"), (100, "points"), ("500", "points")):
        status, error, _ = call(api, hold("bob", "cart-3", points))
        assert (status, error["error"]["field"]) == (422, field), error
    status, error, _ = call(api, hold("nobody", "cart-4", 500))
    assert (status, error["error"]["field"]) == (404, "memberId")
    status, error, _ = call(api, hold("bob", "cart-5", 500, query={}))
    assert (status, error["error"]["field"]) == (422, "programId")  # the shopper program
    status, error, _ = call(api, hold("bob", "cart-5", 500, query={"programId": "nope"}))
    assert (status, error["error"]["field"]) == (422, "programId")
    member_call = http(
        "POST",
        "/v1/members/bob/holds",
        sub="bob",
        query={"programId": CUSTOMER},
        body={"orderId": "cart-6", "points": 500},
    )
    assert call(api, member_call)[0] == 403
    # Released, twice: the points come back once.
    release = http(
        "DELETE", "/v1/members/bob/holds/cart-1", iam=True, query={"programId": CUSTOMER}
    )
    assert [call(api, release)[1]["state"] for _ in range(2)] == ["released", "released"]
    _, me, _ = call(apps["member_api"], customer_http("GET", "/v1/me", "bob"))
    assert (me["points"]["available"], me["points"]["held"]) == (600, 0)
    # Held, then captured by the order's completion: a release is then refused.
    assert call(api, hold("bob", "cart-7", 600))[0] == 201
    result = completed(apps, "bob", "cart-7", "30.00")
    assert result["programs"][1]["spent"] == 600
    status, error, _ = call(
        api, http("DELETE", "/v1/members/bob/holds/cart-7", iam=True, query={"programId": CUSTOMER})
    )
    assert (status, error["error"]["code"]) == (409, "hold_closed")
    status, error, _ = call(
        api, http("DELETE", "/v1/members/bob/holds/none", iam=True, query={"programId": CUSTOMER})
    )
    assert status == 404


def test_plus_entitlements_for_services(apps: dict[str, ModuleType]) -> None:
    event: dict[str, Any] = {
        "detail-type": "MembershipChanged",
        "source": "billing",
        "time": NOW.isoformat(),
        "detail": {
            "customerId": "cat",
            "plan": "plus",
            "validUntil": (NOW + timedelta(days=30)).isoformat(),
            "occurredAt": NOW.isoformat(),
        },
    }
    apps["order_ingestion"].lambda_handler(event, FakeContext())
    path = "/v1/members/cat/entitlements"
    status, view, _ = call(
        apps["member_api"], http("GET", path, iam=True, query={"programId": CUSTOMER})
    )
    assert status == 200 and view["programId"] == CUSTOMER
    assert view["entitlements"] == [
        {"perkId": "free_delivery", "granted": True, "reason": "plan_active", "leadMinutes": None}
    ]
    _, me, _ = call(apps["member_api"], customer_http("GET", "/v1/me", "cat"))
    assert me["plus"]["plan"] == "plus" and me["plus"]["entitlements"] == ["free_delivery"]
    bad = dict(event, detail={**event["detail"], "plan": "gold"})
    status, error, _ = call(
        apps["order_ingestion"],
        http("POST", "/v1/events", iam=True, body=bad),
    )
    assert (status, error["error"]["field"]) == (422, "detail.plan")


def test_the_shoppers_wallet_pays_at_checkout(apps: dict[str, ModuleType]) -> None:
    """The same person's gas cashback (cart-star) pays a customer order: held over IAM, shown
    on the shopper's GET /v1/me, captured by the order's completion."""
    api = apps["perk_redemption"]
    give_wallet(composition.customer_repository(), "shopper-9", "20.00")
    status, body, _ = call(api, hold("shopper-9", "cart-w", None, extra={"wallet": "4.00"}))
    assert status == 201, body
    assert (body["points"], body["wallet"], body["state"]) == (
        0,
        {"amount": "4.00", "currency": "USD"},
        "held",
    )
    _, me, _ = call(apps["member_api"], http("GET", "/v1/me", sub="shopper-9"))
    assert me["wallet"] == {"balance": "16.00", "held": "4.00", "currency": "USD"}
    for wallet, field in (("abc", "wallet"), ("-1.00", "wallet"), ("0.001", "wallet")):
        status, error, _ = call(api, hold("shopper-9", "cart-x", None, extra={"wallet": wallet}))
        assert (status, error["error"]["field"]) == (422, field), error
    status, error, _ = call(api, hold("shopper-9", "cart-x", None, extra={"wallet": "50.00"}))
    assert (status, error["error"]["code"]) == (409, "insufficient_wallet")
    completed(apps, "shopper-9", "cart-w", "30.00")
    _, me, _ = call(apps["member_api"], http("GET", "/v1/me", sub="shopper-9"))
    assert me["wallet"] == {"balance": "16.00", "held": "0.00", "currency": "USD"}
