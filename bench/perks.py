"""Benchmark: read and write units of the perk and member API paths, on DynamoDB Local.

Measured per request through the handlers (``ReturnConsumedCapacity`` on every call):
- a redemption (a care day, which needs no read; a code, whose discount needs the tier), a
  refusal (quota used up), a replay (same ``Idempotency-Key``), a cancellation;
- ``GET /v1/me`` for a member with no history and for one with 5,000 orders;
- an entitlement check, the public badge, ``GET /v1/me/perks``, ``/redemptions``, ``/ledger``;
- a ``FuelPurchaseReported`` credited to the wallet;
- the ledger projection, per entry (what each order adds beside ingestion's 4 write units).

Plain reads and writes are counted as DynamoDB Local reports them (as AWS bills them).
DynamoDB Local under-counts ``TransactWriteItems``, so each transaction is replayed item by item
as plain writes on a shadow table that has seen the same transactions (a ``ConditionCheck`` as
a plain write of the checked item's size), and the sum doubled, as AWS bills transactions
(bench/common.py). The 5,000 orders of the veteran are seeded unmeasured, and its member item
copied to the shadow table.

Run: ``python -m bench.perks`` (writes bench/results/perks.json and prints a markdown table).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from bench import common
from bench.common import dynamodb_local, measured_handlers
from shared.dal.perks import PerkRepository
from shared.domain.keys import MEMBER_SK, ORDER_SK_PREFIX, member_pk
from shared.domain.window import day_buckets
from shared.logic.ledger import project_ledger
from shared.observability import metrics
from tests.helpers import FakeContext, order_completed

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SAMPLES = 100
HISTORY = int(os.environ.get("BENCH_HISTORY", "5000"))
TABLE, SHADOW, SCRATCH = "bench-perks", "bench-perks-shadow", "bench-perks-scratch"
_deserializer = TypeDeserializer()


PARTNER = "arn:aws:sts::123456789012:assumed-role/loyalty-autocare/bench"
"""A principal the shop's car-maintenance partner lists."""


def http(
    method: str,
    path: str,
    sub: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """An HTTP API (v2) event: a member's (JWT ``sub``) or, without ``sub``, a service's (IAM)."""
    authorizer: dict[str, Any] = (
        {"jwt": {"claims": {"sub": sub}, "scopes": []}} if sub else {"iam": {"userArn": "svc"}}
    )
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "queryStringParameters": query,
        "headers": headers,
        "requestContext": {
            "authorizer": authorizer,
            "http": {"method": method, "path": path, "sourceIp": "10.0.0.1"},
            "requestId": "bench",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(NOW.timestamp() * 1000),
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def fuel(purchase_id: str, member_id: str) -> dict[str, Any]:
    return {
        "detail-type": "FuelPurchaseReported",
        "time": NOW.isoformat(),
        "detail": {
            "purchaseId": purchase_id,
            "memberId": member_id,
            "amount": {"amount": "45.50", "currency": "USD"},
            "occurredAt": NOW.isoformat(),
        },
    }


def care_day(index: int) -> dict[str, Any]:
    day = (NOW + timedelta(days=1 + index % 30)).date().isoformat()
    return {"perkId": "care_days", "careType": "child", "date": day, "unit": "day"}


class Bench:
    def __init__(self, bare: Any) -> None:
        self.bare = bare
        self.apps, self.repo, self.measuring = measured_handlers(
            bare, ("member_api", "perk_redemption", "order_ingestion"), TABLE, SHADOW, SCRATCH
        )

    def seed(self, member_id: str, **attributes: Any) -> None:
        item: dict[str, Any] = {
            "pk": {"S": member_pk("cart-star", member_id)},
            "sk": {"S": "MEMBER"},
            "memberId": {"S": member_id},
            "programId": {"S": "cart-star"},
            "v": {"N": "1"},
        }
        for name, value in attributes.items():
            item[name] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        for table in (TABLE, SHADOW):
            self.bare.put_item(TableName=table, Item=item)

    def invoke(self, event: dict[str, Any]) -> Any:
        if "requestContext" in event:
            writes = event["routeKey"].split()[0] in {"POST", "DELETE"}
            app = self.apps["perk_redemption" if writes else "member_api"]
            return app.app.resolve(event, FakeContext())
        name = (
            "perk_redemption"
            if event["detail-type"] == "FuelPurchaseReported"
            else "order_ingestion"
        )
        return self.apps[name].ingress.handle(event, FakeContext())

    def measure(
        self,
        label: str,
        make: Callable[[int], dict[str, Any]],
        expect: int = 200,
        prepare: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """``SAMPLES`` requests built by ``make(index)``: units and handler time of each."""
        reads, writes, times = [], [], []
        for index in range(SAMPLES):
            if prepare is not None:
                prepare(index)
            event = make(index)
            self.measuring.settle()
            self.repo.meter.reset()
            started = time.perf_counter()
            response = self.invoke(event)
            times.append(time.perf_counter() - started)
            metrics.clear_metrics()  # handlers are called without their flushing decorator
            status = response.get("statusCode", 200) if "statusCode" in response else 200
            assert status == expect, (label, response)
            plain = self.repo.meter.write_units - self.measuring.local_units
            writes.append(plain + self.measuring.settle())
            reads.append(self.repo.meter.read_units)
        return {
            "label": label,
            "read_units": {"min": min(reads), "max": max(reads)},
            "write_units": {"min": min(writes), "max": max(writes)},
            "handler_median_ms": round(statistics.median(times) * 1000, 2),
        }

    def seed_history(self, member_id: str) -> float:
        """``HISTORY`` orders through order_ingestion, over the last 120 days, not measured (the
        client passes them through); then the member item is copied to the shadow table, so
        that both start from the same state."""
        started = time.perf_counter()
        with self.measuring.paused():
            for index in range(HISTORY):
                minutes = index * (120 * 24 * 60) // HISTORY
                self.apps["order_ingestion"].ingress.handle(
                    order_completed(
                        order_id=f"history-{index}",
                        member_id=member_id,
                        batch_size=1 + index % 3,
                        completed_at=(NOW - timedelta(minutes=minutes)).isoformat(),
                        time=NOW.isoformat(),
                    ),
                    FakeContext(),
                )
        seconds = time.perf_counter() - started
        self.measuring.copy_to_shadow(
            {"pk": {"S": member_pk("cart-star", member_id)}, "sk": {"S": MEMBER_SK}}
        )
        return seconds

    def project(self, member_id: str) -> dict[str, Any]:
        """Run the ledger projector over the member's order items, as the stream would."""
        perks = PerkRepository(TABLE, self.repo.client, meter=self.repo.meter)
        units: list[float] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": TABLE,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :o)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": member_pk("cart-star", member_id)},
                    ":o": {"S": ORDER_SK_PREFIX},
                },
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = self.bare.query(**request)
            for raw in page["Items"]:
                image = {name: _deserializer.deserialize(value) for name, value in raw.items()}
                self.repo.meter.reset()
                project_ledger(None, image, perks, datetime.now(UTC))
                units.append(self.repo.meter.write_units)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return {"entries": len(units), "write_units": {"min": min(units), "max": max(units)}}


def run() -> dict[str, Any]:
    with dynamodb_local(TABLE, SHADOW, SCRATCH) as bare:
        bench = Bench(bare)
        seed_seconds = bench.seed_history("veteran")
        veteran = bench.repo.get_member("cart-star", "veteran") or {}
        results: dict[str, Any] = {
            "date": datetime.now(UTC).date().isoformat(),  # the day of the run
            "samples": SAMPLES,
            "history_orders": HISTORY,
            "history_seed_seconds": round(seed_seconds, 1),
            "veteran_tier_points": int(veteran.get("lifetimePoints", 0)),
        }
        for index in range(SAMPLES):
            bench.seed(f"diamond-{index}", tier="diamond")
        m = bench.measure

        def redeem(i: int, body: dict[str, Any], key: str) -> dict[str, Any]:
            return http("POST", "/v1/me/redemptions", f"diamond-{i}", body, key=f"{key}-{i}")

        rows = [
            m(
                "POST /v1/me/redemptions: a care day, confirmed",
                lambda i: redeem(i, care_day(i), "k"),
                expect=201,
            ),
            m(
                "POST /v1/me/redemptions: the same key again (replay)",
                lambda i: redeem(i, care_day(i), "k"),
                expect=201,
            ),
            m(
                "POST /v1/me/redemptions: a code (its discount needs the tier)",
                lambda i: redeem(i, {"perkId": "car_maintenance"}, "c"),
                expect=201,
            ),
            m(
                "POST /v1/me/redemptions: a second code this month, refused (409)",
                lambda i: redeem(i, {"perkId": "car_maintenance"}, "c2"),
                expect=409,
            ),
        ]
        booked: dict[int, str] = {}
        codes: dict[int, str] = {}
        for i in range(SAMPLES):
            page = bench.invoke(http("GET", "/v1/me/redemptions", f"diamond-{i}"))
            redemptions = json.loads(page["body"])["redemptions"]
            booked[i] = next(r["redemptionId"] for r in redemptions if r["kind"] == "booking")
            codes[i] = next(r["code"] for r in redemptions if r["kind"] == "code")

        def partner(i: int) -> dict[str, Any]:
            event = http(
                "POST", f"/v1/partner-codes/{codes[i]}/redemption", body={"reference": "b"}
            )
            event["routeKey"] = event["requestContext"]["routeKey"] = (
                "POST /v1/partner-codes/{code}/redemption"
            )
            event["requestContext"]["authorizer"]["iam"]["userArn"] = PARTNER
            return event

        rows += [
            m("POST /v1/partner-codes/{code}/redemption: used by the partner", partner),
            m("POST /v1/partner-codes/{code}/redemption: the same again (a retry)", partner),
        ]
        rows += [
            m(
                "DELETE /v1/me/redemptions/{id}: cancelled, quota back",
                lambda i: http("DELETE", f"/v1/me/redemptions/{booked[i]}", f"diamond-{i}"),
            ),
            m("GET /v1/me: a member with no history", lambda i: http("GET", "/v1/me", f"new-{i}")),
            m(
                f"GET /v1/me: a member with {HISTORY:,} orders",
                lambda i: http("GET", "/v1/me", "veteran"),
            ),
            m(
                "GET /v1/members/{id}/entitlements (services)",
                lambda i: http("GET", f"/v1/members/diamond-{i}/entitlements"),
            ),
            m(
                "GET /v1/members/{id}/badge (services)",
                lambda i: http("GET", "/v1/members/veteran/badge"),
            ),
            m("GET /v1/me/perks", lambda i: http("GET", "/v1/me/perks", f"diamond-{i}")),
            m(
                "GET /v1/me/redemptions",
                lambda i: http("GET", "/v1/me/redemptions", f"diamond-{i}"),
            ),
            m("FuelPurchaseReported: cashback credited", lambda i: fuel(f"p-{i}", f"diamond-{i}")),
            m(
                "FuelPurchaseReported: the same purchase again",
                lambda i: fuel(f"p-{i}", f"diamond-{i}"),
            ),
        ]
        projection = bench.project("veteran")
        rows.append(
            m(
                f"GET /v1/me/ledger (a page of 50, {HISTORY:,}-order member)",
                lambda i: http("GET", "/v1/me/ledger", "veteran", query={"limit": "50"}),
            )
        )
        order = m(
            "OrderCompleted (order_ingestion, for reference)",
            lambda i: order_completed(
                order_id=f"ref-{i}", member_id=f"diamond-{i}", time=NOW.isoformat()
            ),
        )
        results["rows"] = rows
        results["ledger_projection"] = projection
        results["order_completed"] = order
        results["veteran_member_item_buckets"] = len(day_buckets(veteran))
    return results


def _units(span: dict[str, float]) -> str:
    low, high = span["min"], span["max"]
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


def table(results: dict[str, Any]) -> str:
    lines = [
        "| request | read units | write units (as AWS bills) | handler median |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['label']} | {_units(row['read_units'])} | {_units(row['write_units'])} "
            f"| {row['handler_median_ms']:.1f} ms |"
        )
    order, projection = results["order_completed"], results["ledger_projection"]
    per_entry = projection["write_units"]["max"]
    lines += [
        "",
        f"The ledger read model costs {_units(projection['write_units'])} write unit per entry "
        f"({projection['entries']:,} entries projected from the order items of a member with "
        f"{results['history_orders']:,} orders), written by `event_publisher` from the "
        f"stream: an `OrderCompleted` costs "
        f"{_units(order['write_units'])} write units in `order_ingestion` (unchanged, no read) "
        f"plus {per_entry:g} in the projection, **{order['write_units']['max'] + per_entry:g} "
        f"in all**; a reversal adds one more entry ({per_entry:g}). {results['samples']} "
        f"requests per row, `python -m bench.perks`, {results['date']}, DynamoDB Local 10.3.0 "
        f"in memory: times are local. Transactions are replayed item by item as plain writes "
        f"and doubled (DynamoDB Local under-counts them); a `ConditionCheck` counts as a "
        f"write of the checked item's size; a cancelled transaction (a refusal, a replay) "
        f"commits nothing, and its own cost is not measurable locally.",
    ]
    return "\n".join(lines)


def main() -> None:
    common.main("perks", __doc__, run, table)


if __name__ == "__main__":
    main()
