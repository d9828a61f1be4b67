"""Live statistics on DynamoDB Local (docs/stats.md): after a workload of members, orders in
both programs, tier and eligibility changes, at-risk notices, checkout holds, redemptions and
cancellations, and fuel purchases, the counters ``event_publisher`` kept from the table's
stream equal a recount written here from a Scan of the items; redelivered stream records (the
whole batch again, and a record retried after its publication failed) count nothing twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from boto3.dynamodb.types import TypeDeserializer

from infra import cli
from shared import composition
from shared.domain.keys import MEMBER_SK, member_pk
from shared.logic.stats_counting import count_change
from shared.streams import change_of
from tests.helpers import FakeContext, load_function, order_completed, order_reversed
from tests.integration.streams import RecordingPublisher, StreamReader
from tests.integration.test_perks_helpers import NOW, call, http

SHOPPERS = "cart-star"
CUSTOMERS = "customer-rewards"
FUNCTIONS = ("order_ingestion", "perk_redemption", "event_publisher", "admin_api")


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    loaded = {name: load_function(name) for name in FUNCTIONS}
    monkeypatch.setattr(loaded["event_publisher"], "publisher", RecordingPublisher)
    yield loaded
    composition.reset()


def _publish(apps: dict[str, ModuleType], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Hand records to event_publisher as committed at the workload's ``NOW``."""
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = NOW.timestamp()
    response: dict[str, Any] = apps["event_publisher"].lambda_handler(
        {"Records": records}, FakeContext(function_name="event_publisher")
    )
    return response


def _admin(program: str | None) -> dict[str, Any]:
    event = http(
        "GET", "/v1/admin/stats", sub="ops-1", query={"programId": program} if program else None
    )
    event["requestContext"]["authorizer"]["jwt"] = {
        "claims": {"sub": "ops-1", "scope": "loyalty/admin"},
        "scopes": ["loyalty/admin"],
    }
    return event


def stats(apps: dict[str, ModuleType], program: str) -> dict[str, Any]:
    status, body, _ = call(apps["admin_api"], _admin(program))
    assert status == 200, body
    return dict(body)


def _order(
    apps: dict[str, ModuleType],
    order_id: str,
    shopper: str,
    customer: str,
    days_ago: int,
    total: str,
    eco: bool = False,
) -> None:
    event = order_completed(
        order_id=order_id,
        member_id=shopper,
        customer_id=customer,
        completed_at=(NOW - timedelta(days=days_ago)).isoformat(),
        time=NOW.isoformat(),
    )
    event["detail"]["total"] = {"amount": total, "currency": "USD"}
    if eco:
        event["detail"]["ecoChoices"] = ["no_cutlery"]
    apps["order_ingestion"].lambda_handler(event, FakeContext())


def _set(table: str, program: str, member: str, expression: str, values: dict[str, Any]) -> None:
    """A write as tier recalculation or rating moderation makes it, straight to the member item."""
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": member_pk(program, member)}, "sk": {"S": MEMBER_SK}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )


def _fuel(purchase_id: str, member_id: str, amount: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-{purchase_id}",
        "detail-type": "FuelPurchaseReported",
        "source": "fuel.partner",
        "time": NOW.isoformat(),
        "detail": {
            "purchaseId": purchase_id,
            "memberId": member_id,
            "amount": {"amount": amount, "currency": "USD"},
            "occurredAt": (NOW - timedelta(hours=2)).isoformat(),
        },
    }


def workload(apps: dict[str, ModuleType], table: str) -> None:
    """Members of both programs, orders (old: available; recent: pending), a cancellation,
    holds placed and released, tier and eligibility changes, an at-risk notice, redemptions
    and a cancelled one, fuel purchases."""
    for index in range(8):
        shopper, customer = f"s-{index}", f"c-{index % 6}"
        _order(apps, f"old-{index}", shopper, customer, 30, f"{300 + 10 * index}.00")
        _order(apps, f"new-{index}", shopper, customer, 1, "40.00", eco=index % 3 == 0)
    apps["order_ingestion"].lambda_handler(
        order_reversed(
            order_id="new-3", member_id="s-3", occurred_at=NOW.isoformat(), time=NOW.isoformat()
        ),
        FakeContext(),
    )
    redemption = apps["perk_redemption"]
    for index in range(3):
        query = {"programId": CUSTOMERS}
        body = {"orderId": f"cart-{index}", "points": 500 + 100 * (index // 2)}
        status, answer, _ = call(
            redemption,
            http("POST", f"/v1/members/c-{index}/holds", iam=True, query=query, body=body),
        )
        assert status in {200, 201}, answer
    status, answer, _ = call(
        redemption,
        http(
            "DELETE",
            "/v1/members/c-0/holds/cart-0",
            iam=True,
            query={"programId": CUSTOMERS},
            route="DELETE /v1/members/{memberId}/holds/{orderId}",
        ),
    )
    assert status == 200, answer
    _set(table, SHOPPERS, "s-1", "SET tier = :t", {":t": {"S": "gold"}})
    _set(table, SHOPPERS, "s-2", "SET tier = :t", {":t": {"S": "platinum"}})
    _set(table, SHOPPERS, "s-1", "SET tier = :t", {":t": {"S": "diamond"}})
    _set(table, SHOPPERS, "s-4", "SET eligible = :e", {":e": {"BOOL": False}})
    _set(table, SHOPPERS, "s-5", "SET eligible = :e", {":e": {"BOOL": False}})
    _set(table, SHOPPERS, "s-5", "SET eligible = :e", {":e": {"BOOL": True}})
    _set(table, SHOPPERS, "s-2", "SET atRiskFor = :d", {":d": {"S": "2026-11-30"}})
    for index in range(3):
        event = http(
            "POST",
            "/v1/me/redemptions",
            sub=f"s-{index}",
            body={"perkId": "car_maintenance"},
            headers={"idempotency-key": f"k-{index}"},
        )
        status, answer, _ = call(redemption, event)
        assert status == 201, answer
    booked = []
    for day in ("2026-12-13", "2026-12-14"):
        body = {"perkId": "care_days", "careType": "child", "date": day, "unit": "day"}
        event = http(
            "POST", "/v1/me/redemptions", sub="s-1", body=body, headers={"idempotency-key": day}
        )
        status, answer, _ = call(redemption, event)
        assert status == 201, answer
        booked.append(answer["redemptionId"])
    cancel = http(
        "DELETE",
        f"/v1/me/redemptions/{booked[0]}",
        sub="s-1",
        route="DELETE /v1/me/redemptions/{redemptionId}",
    )
    status, answer, _ = call(redemption, cancel)
    assert status == 200, answer
    for index, amount in enumerate(("45.50", "10.00", "80.25")):
        redemption.lambda_handler(_fuel(f"p-{index}", f"s-{index + 5}", amount), FakeContext())
    # s-7's cashback pays part of a checkout in the customer program: held out of the wallet.
    body = {"orderId": "cart-w", "points": 0, "wallet": "1.50"}
    event = http(
        "POST", "/v1/members/s-7/holds", iam=True, query={"programId": CUSTOMERS}, body=body
    )
    status, answer, _ = call(redemption, event)
    assert status in {200, 201}, answer


def _scan(table: str) -> list[dict[str, Any]]:
    client, load = boto3.client("dynamodb"), TypeDeserializer().deserialize
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    items: list[dict[str, Any]] = []
    while True:
        page = client.scan(**request)
        items.extend({name: load(value) for name, value in raw.items()} for raw in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def recount(table: str, program: str) -> dict[str, Any]:
    """The figures counted from the items themselves (written apart from the counters' code)."""
    prefix = f"P#{program}#M#"
    tiers: Counter[str] = Counter()
    figures: dict[str, Any] = {"members": 0, "eligible": 0, "pend": 0, "bal": 0, "held": 0}
    wallet, cashback, redeemed = Decimal(0), Decimal(0), Counter[str]()
    held_wallet = Decimal(0)
    spent: Counter[str] = Counter()
    for item in _scan(table):
        if str(item["pk"]).startswith(f"P#{program}#CAMPAIGN#"):
            spent[f"{item['pk'].split('#')[-1]}@{item['sk'][len('BUDGET#') :]}"] += int(
                item["spent"]
            )
        if not str(item["pk"]).startswith(prefix):
            continue
        sk = str(item["sk"])
        if sk == MEMBER_SK:
            figures["members"] += 1
            tiers[str(item.get("tier") or "none")] += 1
            figures["eligible"] += item.get("eligible") is not False
            for name in ("pend", "bal", "held"):
                figures[name] += int(item.get(name, 0))
            wallet += Decimal(str(item.get("walletBalance", 0)))
            held_wallet += Decimal(str(item.get("walletHeld", 0)))
        elif sk.startswith("REDEMPTION#") and item.get("status") == "confirmed":
            redeemed[f"{item['perkId']}@{item['period']}"] += 1
        elif sk.startswith("FUEL#") and item.get("status") == "credited":
            cashback += Decimal(str(item["cashback"]["amount"]))
    return {
        **figures,
        "tiers": tiers,
        "wallet": wallet,
        "walletHeld": held_wallet,
        "cashback": cashback,
        "redeemed": redeemed,
        "spent": +spent,
    }


def _counted(body: dict[str, Any]) -> dict[str, Any]:
    points = body["points"]
    return {
        "members": body["members"],
        "eligible": body["eligible"],
        "pend": points["pending"]["points"],
        "bal": points["available"]["points"],
        "held": points["held"]["points"],
        "tiers": Counter({tier: n for tier, n in body["membersByTier"].items() if n}),
        "wallet": Decimal(body["walletCredit"]),
        "walletHeld": Decimal(body["walletHeld"]),
        "cashback": Decimal(body["cashback"]["credited"]),
        "spent": Counter(
            {
                f"{c['campaignId']}@{c['period']}": c["spent"]
                for c in body["campaigns"]
                if c["spent"]
            }
        ),
        "redeemed": Counter(
            {
                f"{use['perkId']}@{use['period']}": use["redemptions"]
                for use in body["perkUse"]
                if use["redemptions"]
            }
        ),
    }


def test_stats_match_a_recount_and_redelivery_counts_nothing_twice(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    stream = StreamReader(table_name)
    workload(apps, table_name)
    records = stream.read()
    assert _publish(apps, records) == {"batchItemFailures": []}
    first = {program: stats(apps, program) for program in (SHOPPERS, CUSTOMERS)}
    for program in (SHOPPERS, CUSTOMERS):
        assert _counted(first[program]) == recount(table_name, program), program
    shoppers, customers = first[SHOPPERS], first[CUSTOMERS]
    assert shoppers["membersByTier"]["diamond"] == 1 and shoppers["membersByTier"]["platinum"] == 1
    assert (shoppers["members"], shoppers["eligible"], shoppers["eligibleShare"]) == (
        8,
        7,
        "0.8750",
    )
    assert shoppers["atRisk"]["members"] == 1
    assert [(u["perkId"], u["redemptions"]) for u in shoppers["perkUse"]] == [
        ("care_days", 1),
        ("car_maintenance", 3),
    ]
    assert shoppers["notCounted"] == ["donations", "matches"]
    assert shoppers["walletHeld"] == "1.50"
    points = customers["points"]
    assert points["held"]["points"] == 500 + 600 and points["held"]["value"] == "11.00"
    liability = (
        points["pending"]["points"] + points["available"]["points"] + points["held"]["points"]
    )
    assert points["liability"] == {"points": liability, "value": f"{liability / 100:.2f}"}
    assert customers["members"] == 6
    eco = {c["campaignId"]: c for c in customers["campaigns"]}["eco_no_cutlery"]
    assert (eco["period"], eco["spent"], eco["budget"]) == (
        "2026-11",
        2 * 20,
        200000,
    )  # new-3 was cancelled

    # The whole batch again (a function error: Lambda hands the batch over again), and the
    # stream's own later records (the markers and counters written above) on top.
    assert _publish(apps, records + stream.read()) == {"batchItemFailures": []}
    assert {program: stats(apps, program) for program in (SHOPPERS, CUSTOMERS)} == first


def test_a_record_retried_after_its_publication_failed_counts_once(
    apps: dict[str, ModuleType], table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counters are written before the events go out: a failed publication fails the record
    after its counters were added (a fuel purchase: its cashback counted, CashbackCredited not
    sent), and the stream retries that record."""
    stream = StreamReader(table_name)
    apps["perk_redemption"].lambda_handler(_fuel("p-1", "s-1", "50.00"), FakeContext())
    records = stream.read()

    class Down(RecordingPublisher):
        def publish(self, events: Any) -> int:
            raise ConnectionError("the bus is down")

    monkeypatch.setattr(apps["event_publisher"], "publisher", Down)
    failed = _publish(apps, records)["batchItemFailures"]
    retried = [r for r in records if {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} in failed]
    assert any(str(r["dynamodb"]["Keys"]["sk"]["S"]).startswith("FUEL#") for r in retried)
    monkeypatch.setattr(apps["event_publisher"], "publisher", RecordingPublisher)
    assert _publish(apps, retried) == {"batchItemFailures": []}
    body = stats(apps, SHOPPERS)
    recounted = recount(table_name, SHOPPERS)
    assert Decimal(body["cashback"]["credited"]) == recounted["cashback"] > 0
    assert Decimal(body["walletCredit"]) == recounted["wallet"] > 0


def test_an_unknown_program_is_a_422_naming_it(apps: dict[str, ModuleType]) -> None:
    for program in ("no-such-program", None):
        status, body, _ = call(apps["admin_api"], _admin(program))
        assert status == 422, body
        assert body["error"]["field"] == "programId", body
    event = _admin(SHOPPERS)
    event["requestContext"]["authorizer"]["jwt"] = {
        "claims": {"sub": "m-1", "scope": "openid"},
        "scopes": ["openid"],
    }
    assert call(apps["admin_api"], event)[0] == 403
    assert json.dumps(stats(apps, SHOPPERS)["members"]) == "0"


def test_check_names_what_the_counters_missed_and_rebuild_corrects_it(
    apps: dict[str, ModuleType], table_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Members from before the counters (their stream records never counted): ``loyalty stats
    check`` names the differences and fails; ``rebuild`` corrects them; the answer then equals
    the recount, and the stream's later changes of those members count from there."""
    stream = StreamReader(table_name)
    _order(apps, "before-1", "s-1", "c-1", 30, "300.00")
    _order(apps, "before-2", "s-2", "c-1", 1, "40.00")
    stream.read()  # committed before the counters existed: never counted
    assert cli.main(["stats", "check", "--table", table_name]) == 1
    assert "customer-rewards NOW bal: counted 0, the items say 600" in capsys.readouterr().out
    assert cli.main(["stats", "rebuild", "--table", table_name]) == 0
    assert cli.main(["stats", "check", "--table", table_name]) == 0
    _order(apps, "after-1", "s-1", "c-1", 30, "100.00")
    assert _publish(apps, stream.read()) == {"batchItemFailures": []}
    for program in (SHOPPERS, CUSTOMERS):
        assert _counted(stats(apps, program)) == recount(table_name, program), program
    assert cli.main(["stats", "check", "--table", table_name]) == 0


def test_the_same_records_counted_from_four_threads_at_once_count_once(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    """Two deliveries can overlap (a retry while the first attempt still runs): the markers'
    condition, evaluated by DynamoDB inside each transaction, lets one of them count."""
    stream = StreamReader(table_name)
    for index in range(6):
        _order(apps, f"o-{index}", f"s-{index}", f"c-{index % 3}", 30, "100.00")
    changes = [change_of(DynamoDBRecord(record)) for record in stream.read()]
    store = composition.stats_repository()

    def count_all(_: int) -> int:
        return sum(count_change(c.record_id, c.old, c.new, NOW, store) for c in changes)

    with ThreadPoolExecutor(max_workers=4) as pool:
        counted = list(pool.map(count_all, range(4)))
    assert sum(counted) == sum(count_change("x", c.old, c.new, NOW, _Nothing()) for c in changes)
    for program in (SHOPPERS, CUSTOMERS):
        assert _counted(stats(apps, program)) == recount(table_name, program), program


class _Nothing:
    """A store that counts every change as new (how many counter items each change moves)."""

    def apply_once(self, record_id: str, deltas: Any, expires_at: int) -> bool:
        return True

    def get_many(self, keys: Any) -> dict[Any, Any]:
        return {}
