"""Administrators' actions on DynamoDB Local (docs/admin.md): points adjustments in both
programs (once per Idempotency-Key, a removal never below what is available, a ledger entry
each, the totals' invariants still holding) and tier overrides (exact while they last, visible in
``GET /v1/me``, lifted early or expired, after which the rules decide again); every action
audited in ``GET /v1/admin/members/{id}``, every bad input a 4xx naming its field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from infra import cli
from infra.audit import audit_members
from shared import composition
from shared.domain.keys import member_pk
from tests.helpers import FakeContext, load_function, order_completed
from tests.integration.streams import RecordingPublisher, StreamReader
from tests.ratings_support import admin_request

NOW = datetime.now(UTC).replace(microsecond=0)
SHOPPERS = "cart-star"
CUSTOMERS = "customer-rewards"


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    names = ("order_ingestion", "tier_recalculation", "event_publisher", "admin_api", "member_api")
    yield {name: load_function(name) for name in names}
    composition.reset()


def admin(
    apps: dict[str, ModuleType],
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    key: str | None = None,
    at: datetime = NOW,
) -> tuple[int, dict[str, Any]]:
    event = admin_request(method, path, body=body, query=query)
    event["requestContext"]["timeEpoch"] = int(at.timestamp() * 1000)
    if key is not None:
        event["headers"]["idempotency-key"] = key
    response = apps["admin_api"].lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


def me(apps: dict[str, ModuleType], member: str, at: datetime = NOW) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "GET /v1/me",
        "rawPath": "/v1/me",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": "GET", "path": "/v1/me", "sourceIp": "127.0.0.1"},
            "authorizer": {"jwt": {"claims": {"sub": member}, "scopes": []}},
            "requestId": "r",
            "routeKey": "GET /v1/me",
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    response = apps["member_api"].lambda_handler(event, FakeContext(function_name="member_api"))
    body: dict[str, Any] = json.loads(response["body"])
    return body


def deliver(apps: dict[str, ModuleType], stream: StreamReader) -> None:
    """Both stream consumers get what the stream holds, until it is quiet."""
    for _ in range(5):
        records = stream.read()
        if not records:
            return
        for name in ("tier_recalculation", "event_publisher"):
            response = apps[name].lambda_handler({"Records": records}, FakeContext(name))
            assert response == {"batchItemFailures": []}, response


def orders(apps: dict[str, ModuleType], member: str, count: int, customer: str = "c-1") -> None:
    """``count`` triple batches (30 points each) on today and the days before."""
    for index in range(count):
        apps["order_ingestion"].lambda_handler(
            order_completed(
                order_id=f"{member}-o-{index}",
                member_id=member,
                customer_id=customer,
                batch_size=3,
                completed_at=(NOW - timedelta(days=index % 5)).isoformat(),
                time=NOW.isoformat(),
            ),
            FakeContext(),
        )


def member_item(program: str, member: str) -> dict[str, Any]:
    found = composition.ledger_repository().get_member(program, member)
    assert found is not None
    return found


def ledger(ddb_client: Any, table: str, program: str, member: str) -> list[dict[str, Any]]:
    response = ddb_client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={
            ":pk": {"S": member_pk(program, member)},
            ":p": {"S": "LEDGER#"},
        },
        ConsistentRead=True,
    )
    return [
        {name: next(iter(value.values())) for name, value in item.items()}
        for item in response["Items"]
    ]


def test_a_shoppers_adjustment_counts_toward_the_tier_once_per_key(
    apps: dict[str, ModuleType],
    table_name: str,
    ddb_client: Any,
    published: RecordingPublisher,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = StreamReader(table_name)
    orders(apps, "s-1", 7)  # 210 points: gold
    deliver(apps, stream)
    assert member_item(SHOPPERS, "s-1")["tier"] == "gold"
    path = "/v1/admin/members/s-1/adjustments"
    body = {"points": 800, "reason": "missed orders of the outage", "kind": "goodwill"}

    status, made = admin(apps, "POST", path, body, key="k-1")
    assert status == 201, made
    assert made["replayed"] is False and made["programId"] == SHOPPERS
    adjustment = made["adjustment"]
    assert adjustment["by"] == "admin-7" and adjustment["points"] == 800
    assert adjustment["day"] == NOW.date().isoformat() and adjustment["kind"] == "goodwill"
    # The same key and body: the first result again, nothing applied twice.
    status, again = admin(apps, "POST", path, body, key="k-1", at=NOW + timedelta(minutes=5))
    assert status == 200 and again["replayed"] is True
    assert again["adjustment"] == adjustment
    status, error = admin(apps, "POST", path, {**body, "points": 801}, key="k-1")
    assert status == 422 and error["error"]["field"] == "Idempotency-Key"
    member = member_item(SHOPPERS, "s-1")
    assert member["lifetimePoints"] == 1010

    # The tier follows through the stream, as after an order.
    deliver(apps, stream)
    member = member_item(SHOPPERS, "s-1")
    assert member["tier"] == "platinum" and member["tierReason"] == "points_gained"
    assert me(apps, "s-1")["windowPoints"] == 1010

    # A removal takes the window's newest days first, never more than the window holds.
    status, error = admin(apps, "POST", path, {"points": -5000, "reason": "fraud"}, key="k-2")
    assert status == 409 and error["error"]["field"] == "points"
    assert "1010 available" in error["error"]["message"]
    status, taken = admin(apps, "POST", path, {"points": -850, "reason": "fraud ring"}, key="k-3")
    assert status == 201, taken
    assert me(apps, "s-1")["windowPoints"] == 160
    deliver(apps, stream)

    # Bad input: a 4xx naming the field, nothing written.
    for bad, field in (
        ({"points": 0, "reason": "zero"}, "points"),
        ({"points": "5", "reason": "text"}, "points"),
        ({"points": 5}, "reason"),
        ({"points": 5, "reason": "x"}, "reason"),
        ({"points": 2_000_000, "reason": "typo"}, "points"),
        ({"points": 5, "reason": "fine", "extra": 1}, "extra"),
    ):
        status, error = admin(apps, "POST", path, bad, key="k-bad")
        assert status == 422 and field in error["error"].get("field", ""), (bad, error)
    status, error = admin(apps, "POST", path, {"points": 5, "reason": "no key"})
    assert status == 422 and error["error"]["field"] == "Idempotency-Key"
    status, error = admin(apps, "POST", "/v1/admin/members/nobody/adjustments", body, key="k-9")
    assert status == 404 and error["error"]["field"] == "memberId"
    status, error = admin(apps, "POST", path, body, query={"programId": "nope"}, key="k-8")
    assert status == 422 and error["error"]["field"] == "programId"
    assert member_item(SHOPPERS, "s-1")["lifetimePoints"] == 160

    # The ledger has one entry per adjustment, with why and who; the totals still add up.
    entries = [e for e in ledger(ddb_client, table_name, SHOPPERS, "s-1")]
    adjusted = sorted(int(e["points"]) for e in entries if e["kind"] == "adjustment")
    assert adjusted == [-850, 800]
    assert {e["reason"] for e in entries if e["kind"] == "adjustment"} == {
        "admin:missed orders of the outage",
        "admin:fraud ring",
    }
    assert {e["actor"] for e in entries if e["kind"] == "adjustment"} == {"admin-7"}
    assert audit_members(ddb_client, table_name, [(SHOPPERS, "s-1")]) == []
    assert cli.main(["audit", "invariants", "--table", table_name, "--quiet"]) == 0
    capsys.readouterr()

    # The audit trail, newest first.
    status, view = admin(apps, "GET", "/v1/admin/members/s-1")
    assert status == 200, view
    assert [(a["action"], a["points"], a["by"]) for a in view["adminActions"]] == [
        ("adjustment", -850, "admin-7"),
        ("adjustment", 800, "admin-7"),
    ]
    assert view["adminActions"][1]["reason"] == "missed orders of the outage"


def test_a_customers_adjustment_is_available_points_never_overdrawn(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, "s-2", 2, customer="cara")  # cara's points are pending for 14 days
    deliver(apps, stream)
    path = "/v1/admin/members/cara/adjustments"
    query = {"programId": CUSTOMERS}
    status, error = admin(apps, "POST", path, {"points": -10, "reason": "x" * 3}, query, "c-1")
    assert status == 409 and error["error"]["field"] == "points"
    assert "0 available" in error["error"]["message"]

    status, made = admin(
        apps, "POST", path, {"points": 500, "reason": "late delivery"}, query, "c-2"
    )
    assert status == 201 and made["programId"] == CUSTOMERS
    status, taken = admin(apps, "POST", path, {"points": -200, "reason": "duplicate"}, query, "c-3")
    assert status == 201, taken
    status, error = admin(apps, "POST", path, {"points": -301, "reason": "too much"}, query, "c-4")
    assert status == 409 and "300 available" in error["error"]["message"]
    member = member_item(CUSTOMERS, "cara")
    assert member["bal"] == 300
    deliver(apps, stream)
    kinds = sorted(
        (e["kind"], int(e["points"])) for e in ledger(ddb_client, table_name, CUSTOMERS, "cara")
    )
    assert ("adjustment", -200) in kinds and ("adjustment", 500) in kinds
    assert audit_members(ddb_client, table_name, [(CUSTOMERS, "cara")]) == []
    status, view = admin(apps, "GET", "/v1/admin/members/cara", query=query)
    assert status == 200, view
    assert [a["points"] for a in view["adminActions"]] == [-200, 500]


def test_a_tier_override_is_exact_until_lifted(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, "s-3", 7)  # gold
    deliver(apps, stream)
    path = "/v1/admin/members/s-3/tier-override"
    until = (NOW + timedelta(days=10)).date().isoformat()
    body = {"tier": "diamond", "until": until, "reason": "goodwill after the outage"}

    for bad, field in (
        ({**body, "tier": "bronze"}, "tier"),
        ({**body, "until": NOW.date().isoformat()}, "until"),
        ({**body, "until": "2099-01-01"}, "until"),
        ({**body, "until": "soon"}, "until"),
        ({"tier": "diamond", "until": until}, "reason"),
    ):
        status, error = admin(apps, "PUT", path, bad)
        assert status == 422 and error["error"]["field"] == field, (bad, error)
    status, error = admin(apps, "PUT", path, body, query={"programId": CUSTOMERS})
    assert status == 422 and error["error"]["field"] == "programId"
    status, error = admin(apps, "PUT", "/v1/admin/members/nobody/tier-override", body)
    assert status == 404 and error["error"]["field"] == "memberId"

    status, done = admin(apps, "PUT", path, body)
    assert status == 200 and done["changed"] is True, done
    assert done["override"] == {"tier": "diamond", "until": until, "active": True}
    assert done["audit"]["by"] == "admin-7" and done["audit"]["reason"] == body["reason"]
    status, again = admin(apps, "PUT", path, body)
    assert status == 200 and again["changed"] is False and "audit" not in again

    view = me(apps, "s-3")
    assert view["tier"] == "diamond" and view["tierReason"] == "admin_override"
    assert view["tierOverrideUntil"] == until
    deliver(apps, stream)
    member = member_item(SHOPPERS, "s-3")
    assert member["tier"] == "diamond" and member["tierReason"] == "admin_override"
    changed = [e.detail for e in published.events if e.detail_type == "MemberTierChanged"]
    assert changed[-1]["to"] == "diamond" and changed[-1]["reason"] == "admin_override"

    # Exact: more points do not move it while it lasts.
    orders(apps, "s-3", 3)
    deliver(apps, stream)
    assert member_item(SHOPPERS, "s-3")["tier"] == "diamond"

    # Lifted early: the rules decide again at the stream's evaluation, no grace.
    later = NOW + timedelta(minutes=1)
    status, lifted = admin(apps, "DELETE", path, query={"reason": "appeal withdrawn"}, at=later)
    assert status == 200 and lifted["changed"] is True and lifted["override"] is None
    assert lifted["audit"]["previous"] == {"tier": "diamond", "until": until}
    deliver(apps, stream)
    member = member_item(SHOPPERS, "s-3")
    assert member["tier"] == "gold" and member["tierReason"] == "points_expired"
    assert me(apps, "s-3")["tierReason"] == "points_expired"
    status, none = admin(apps, "DELETE", path, body={"reason": "again"})
    assert status == 200 and none["changed"] is False
    status, error = admin(apps, "DELETE", path)
    assert status == 422 and error["error"]["field"] == "reason"

    status, trail = admin(apps, "GET", "/v1/admin/members/s-3")
    assert [a["action"] for a in trail["adminActions"]] == ["tier_override_lifted", "tier_override"]
    assert trail["tierOverride"] is None
    assert audit_members(ddb_client, table_name, [(SHOPPERS, "s-3")]) == []


def test_an_expired_override_gives_way_at_the_next_daily_evaluation(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any, published: RecordingPublisher
) -> None:
    stream = StreamReader(table_name)
    orders(apps, "s-4", 7)  # gold
    deliver(apps, stream)
    until = NOW.date() + timedelta(days=3)
    body = {"tier": "platinum", "until": until.isoformat(), "reason": "VIP test"}
    assert admin(apps, "PUT", "/v1/admin/members/s-4/tier-override", body)[0] == 200
    deliver(apps, stream)
    member = member_item(SHOPPERS, "s-4")
    assert (
        member["tier"] == "platinum"
        and member["checkOn"] == (until + timedelta(days=1)).isoformat()
    )

    def daily(day: datetime) -> dict[str, Any]:
        event = {
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "time": day.isoformat(),
            "detail": {},
        }
        result: dict[str, Any] = apps["tier_recalculation"].lambda_handler(event, FakeContext())
        return result

    last_day = datetime.combine(until, datetime.min.time(), UTC) + timedelta(hours=12)
    assert me(apps, "s-4", last_day)["tier"] == "platinum"  # its last day included
    assert daily(last_day)["changes"] == {}
    after = datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
    run = daily(after + timedelta(minutes=15))
    assert run["changes"] == {"platinum->gold": 1}, run
    member = member_item(SHOPPERS, "s-4")
    assert member["tier"] == "gold" and member["tierReason"] == "points_expired"
    view = me(apps, "s-4", after + timedelta(hours=1))
    assert view["tierReason"] == "points_expired" and view["tierOverrideUntil"] is None
    _, trail = admin(apps, "GET", "/v1/admin/members/s-4", at=after + timedelta(hours=1))
    assert trail["tierOverride"] == {
        "tier": "platinum",
        "until": until.isoformat(),
        "active": False,
    }
    assert audit_members(ddb_client, table_name, [(SHOPPERS, "s-4")]) == []
