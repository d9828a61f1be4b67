"""perk_redemption's handler without a network: routing between the member routes and the
FuelPurchaseReported ingress, and a member item that keeps changing (503, retry)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from shared.composition import perk_repository
from shared.dal.dynamodb import Update
from shared.dal.perks import PerkRepository
from shared.domain.perks import MemberGuard
from shared.logic.ports import RedeemWrite
from tests.helpers import FakeContext, load_function


@pytest.fixture
def app(moto_table: str) -> ModuleType:
    return load_function("perk_redemption")


def event(method: str, path: str, body: Any = None, **context: Any) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "idempotency-key": "k-1"},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "10.0.0.1"},
            "requestId": "r-1",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": 1795435200000,
            **context,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class ChangingMember(PerkRepository):
    """The member item changes under every decision (a busy shopper, a tier being written)."""

    def redeem(self, *args: Any, **kwargs: Any) -> RedeemWrite:
        return RedeemWrite(applied=False, member_changed=True, member={"tier": "diamond"})


def test_a_member_that_keeps_changing_answers_503_to_retry(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = perk_repository()
    stub = ChangingMember(base.table_name, base.client, sleep=lambda _: None)
    monkeypatch.setattr(app, "perk_repository", lambda: stub)
    body = {"perkId": "care_days", "careType": "child", "date": "2026-12-01", "unit": "day"}
    jwt = {"authorizer": {"jwt": {"claims": {"sub": "ann"}, "scopes": []}}}
    response = app.lambda_handler(event("POST", "/v1/me/redemptions", body, **jwt), FakeContext())
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"])["error"]["code"] == "busy"


def test_the_fuel_route_goes_to_the_event_ingress(app: ModuleType) -> None:
    fuel: dict[str, Any] = {
        "detail-type": "FuelPurchaseReported",
        "detail": {
            "purchaseId": "p-1",
            "memberId": "ann",
            "amount": {"amount": "40.00", "currency": "USD"},
            "occurredAt": "2026-11-23T10:00:00+00:00",
        },
    }
    iam = {"authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:role/fuel-partner"}}}
    response = app.lambda_handler(
        event("POST", "/v1/events/fuel-purchases", fuel, **iam), FakeContext()
    )
    assert response["statusCode"] == 200, response
    result = json.loads(response["body"])["result"]
    assert result["outcome"] == "credited" and result["cashback"] == "0.80"
    again = app.lambda_handler(
        event("POST", "/v1/events/fuel-purchases", fuel, **iam), FakeContext()
    )
    assert json.loads(again["body"])["result"]["outcome"] == "duplicate"
    wrong = {**fuel, "detail": {**fuel["detail"], "purchaseId": "p 2"}}
    rejected = app.lambda_handler(
        event("POST", "/v1/events/fuel-purchases", wrong, **iam), FakeContext()
    )
    assert rejected["statusCode"] == 422
    assert json.loads(rejected["body"])["error"]["field"] == "detail.purchaseId"


def test_the_guard_reads_as_the_decision(moto_table: str) -> None:
    """The condition the transaction re-checks, spelled out (DynamoDB evaluates it)."""
    repo = perk_repository()
    names = Update()
    condition = repo._guard_condition(
        MemberGuard(tiers=(None, "gold"), version=3, pin_version=True), names
    )
    assert condition == (
        "(attribute_not_exists(#n0) OR #n0 = :v0) AND "
        "(attribute_not_exists(#n1) OR #n1 IN (:v1)) AND #n2 = :v2"
    )
    assert names.names == {"#n0": "eligible", "#n1": "tier", "#n2": "v"}
