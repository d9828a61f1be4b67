"""Benchmark: a bounded load run against the local stack (loopback only), and its audit.

Starts DynamoDB Local and the local stack (``samlite serve`` on free loopback ports, the
repository's template), then runs ``CLIENTS`` concurrent clients for ``SECONDS`` seconds of a
mixed workload, as the product's clients would:
- order events through EventBridge ``PutEvents`` (a tenth of them sent twice: producers retry);
- members' reads (``GET /v1/me``) with the shopper program's and the customer program's tokens;
- checkout holds over IAM (``POST /v1/members/{id}/holds``), each for its own order;
- perk redemptions (``POST /v1/me/redemptions``, open or refused by the program's rules).
Each customer first gets an order of a month ago (points available to hold). Then it waits
until the stack has processed everything and audits every member it touched:
the shopper's lifetime points are 10 per distinct order sent, the customer's orders completed
are the distinct orders sent, the customer's held points are the holds it was granted; a
difference is a lost or duplicated effect. Then the auditor (``infra/audit.py``) recomputes every
total of those members from their items (orders, holds, redemptions, quotas).

Reports requests per second, p50 and p99 latency per kind of request, and the audit. Times on
this machine (2 cores, the stack and DynamoDB Local beside the clients) are meaningful as a
floor and as ratios, not as AWS's.

Run: ``python -m bench.load`` (part of ``make bench``): writes bench/results/load.json and,
with ``--update-readme README.md``, the README's figures.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from samlite.testing import http, running_stack, signed_headers

from bench import common
from infra.audit import audit_members
from infra.ddb_local import DynamoDBLocal
from shared.programs import all_programs

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 50
SECONDS = 60
SHOPPERS = 40
CUSTOMERS = 80


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Load:
    def __init__(self, stack: Any, audience: str) -> None:
        self.stack = stack
        self.events = stack.client("events")
        self.bus = next(
            str(f["environment"]["EVENT_BUS_NAME"])
            for f in stack.description["functions"].values()
            if f.get("environment", {}).get("EVENT_BUS_NAME")
        )
        accepted = ("--parameter", f"JwtAudience={audience}")

        def token(sub: str, program: str) -> str:
            return str(stack.token(*accepted, "--sub", sub, "--audience", program))

        self.tokens = {
            **{f"s{i}": token(f"load-shopper-{i}", "cart-star") for i in range(SHOPPERS)},
            **{f"c{i}": token(f"load-customer-{i}", "customer-rewards") for i in range(CUSTOMERS)},
        }
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.orders: dict[str, tuple[str, str]] = {}
        """order id -> (shopper, customer) of every distinct order sent."""
        self.holds: dict[str, int] = defaultdict(int)
        """customer -> points of the holds granted."""

    def _record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.statuses[kind][status] += 1

    def seed(self) -> None:
        """One order a month ago per customer ($1,000: 2,000 points available), so that
        holds have something to hold; counted in the audit like every other order."""
        for index in range(CUSTOMERS):
            self.order(
                random.Random(index),
                customer=f"load-customer-{index}",
                completed=datetime.now(UTC) - timedelta(days=30),
                total="1000.00",
            )
        self.latency.clear()
        self.statuses.clear()

    def order(
        self,
        rng: random.Random,
        customer: str | None = None,
        completed: datetime | None = None,
        total: str | None = None,
    ) -> None:
        shopper = f"load-shopper-{rng.randrange(SHOPPERS)}"
        customer = customer or f"load-customer-{rng.randrange(CUSTOMERS)}"
        order_id = f"load-{uuid.uuid4().hex[:16]}"
        detail = {
            "orderId": order_id,
            "memberId": shopper,
            "customerId": customer,
            "completedAt": (completed or datetime.now(UTC)).isoformat(),
            "batchSize": 1,
            "total": {"amount": total or f"{rng.uniform(10, 90):.2f}", "currency": "USD"},
            "tip": {"amount": "4.00", "currency": "USD"},
        }
        entry = {
            "EventBusName": self.bus,
            "Source": "load.orders",
            "DetailType": "OrderCompleted",
            "Detail": json.dumps(detail),
        }
        copies = 2 if rng.random() < 0.1 else 1
        started = time.perf_counter()
        answer = self.events.put_events(Entries=[entry] * copies)
        ok = answer.get("FailedEntryCount", 0) == 0
        self._record(
            "PutEvents (OrderCompleted)", time.perf_counter() - started, 200 if ok else 500
        )
        if ok:
            with self.lock:
                self.orders[order_id] = (shopper, customer)

    def read(self, rng: random.Random) -> None:
        key = rng.choice(list(self.tokens))
        headers = {"authorization": f"Bearer {self.tokens[key]}"}
        started = time.perf_counter()
        status, _, _ = http("GET", f"{self.stack.http}/v1/me", headers=headers)
        self._record("GET /v1/me", time.perf_counter() - started, status)

    def hold(self, rng: random.Random) -> None:
        customer = f"load-customer-{rng.randrange(CUSTOMERS)}"
        url = f"{self.stack.http}/v1/members/{customer}/holds?programId=customer-rewards"
        body = json.dumps({"orderId": f"cart-{uuid.uuid4().hex[:12]}", "points": 500}).encode()
        started = time.perf_counter()
        status, _, answer = http("POST", url, headers=signed_headers("POST", url, body), body=body)
        self._record("POST .../holds", time.perf_counter() - started, status)
        if status == 201:
            with self.lock:
                self.holds[customer] += int(answer["points"])

    def redeem(self, rng: random.Random) -> None:
        key = f"s{rng.randrange(SHOPPERS)}"
        headers = {
            "authorization": f"Bearer {self.tokens[key]}",
            "content-type": "application/json",
            "idempotency-key": str(uuid.uuid4()),
        }
        body = json.dumps({"perkId": "car_maintenance"}).encode()
        started = time.perf_counter()
        status, _, _ = http(
            "POST", f"{self.stack.http}/v1/me/redemptions", headers=headers, body=body
        )
        self._record("POST /v1/me/redemptions", time.perf_counter() - started, status)

    def client(self, seed: int, until: float) -> None:
        rng = random.Random(seed)
        actions = [self.order] * 5 + [self.read] * 3 + [self.hold, self.redeem]
        while time.monotonic() < until:
            rng.choice(actions)(rng)


def _audit(load: Load, stack: Any) -> dict[str, int]:
    client = stack.client("dynamodb")
    table = stack.table()
    shoppers: dict[str, int] = defaultdict(int)
    customers: dict[str, int] = defaultdict(int)
    for shopper, customer in load.orders.values():
        shoppers[shopper] += 1
        customers[customer] += 1
    differences = 0
    checked = 0

    def member(program: str, member_id: str) -> dict[str, Any]:
        key = {"pk": {"S": f"P#{program}#M#{member_id}"}, "sk": {"S": "MEMBER"}}
        return client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}

    for shopper, orders in shoppers.items():
        item = member("cart-star", shopper)
        checked += 1
        differences += int(item.get("lifetimePoints", {}).get("N", "0")) != 10 * orders
    for customer in set(customers) | set(load.holds):
        item = member("customer-rewards", customer)
        checked += 1
        completed = int(item.get("ordersCompleted", {}).get("N", "0"))
        held = int(item.get("held", {}).get("N", "0"))
        differences += completed != customers.get(customer, 0)
        differences += held != load.holds.get(customer, 0)
    # And every total of those members recomputed from their items (infra/audit.py): the
    # redemptions' quotas, the lots and balances, the day blocks.
    touched = [("cart-star", shopper) for shopper in shoppers] + [
        ("customer-rewards", customer) for customer in set(customers) | set(load.holds)
    ]
    recomputed = audit_members(client, table, touched)
    for difference in recomputed[:10]:
        print(f"audit: {difference}", file=sys.stderr)
    return {
        "members_audited": checked,
        "differences": differences,
        "recomputed_differences": len(recomputed),
    }


def run() -> dict[str, Any]:
    audience = ",".join(program.app_audience for program in all_programs())
    with (
        tempfile.TemporaryDirectory() as state,
        DynamoDBLocal() as dynamodb,
        running_stack(
            ROOT / "template.yaml",
            Path(state),
            dynamodb.endpoint,
            "--in-memory",
            "--parameter",
            f"JwtAudience={audience}",
            cwd=ROOT,
        ) as stack,
    ):
        load = Load(stack, audience)
        load.seed()
        stack.wait_idle(timeout=300)
        started = time.monotonic()
        until = started + SECONDS
        threads = [
            threading.Thread(target=load.client, args=(seed, until), daemon=True)
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent_for = time.monotonic() - started
        stack.wait_idle(timeout=900)
        drained = time.monotonic() - started
        audit = _audit(load, stack)
    requests = sum(len(values) for values in load.latency.values())
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "clients": CLIENTS,
        "seconds": round(sent_for, 1),
        "requests": requests,
        "requests_per_second": round(requests / sent_for, 1),
        "all_processed_after_seconds": round(drained, 1),
        "orders": len(load.orders),
        "by_kind": {
            kind: {
                "count": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
                "statuses": dict(load.statuses[kind]),
            }
            for kind, values in sorted(load.latency.items())
        },
        "audit": audit,
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        "| request | count | p50 | p99 | answers |",
        "|---|---|---|---|---|",
    ]
    for kind, figures in results["by_kind"].items():
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(figures["statuses"].items()))
        rows.append(
            f"| {kind} | {figures['count']:,} | {figures['p50_ms']} ms | {figures['p99_ms']} ms "
            f"| {answers} |"
        )
    audit = results["audit"]
    rows += [
        "",
        f"{results['clients']} clients for {results['seconds']} s against `make run`'s stack "
        f"(loopback, in memory): **{results['requests_per_second']} requests a second**, "
        f"{results['orders']:,} distinct orders (a tenth sent twice); everything processed "
        f"{results['all_processed_after_seconds']} s after the start. Audit of the "
        f"{audit['members_audited']} members touched (shopper points, customer orders, held "
        f"points): **{audit['differences']} lost or duplicated effects**"
        f"{_recomputed(audit)}. `python -m bench.load`, "
        f"{results['date']}, on 2 cores shared by the clients, the stack and DynamoDB Local.",
    ]
    return "\n".join(rows)


def _recomputed(audit: dict[str, Any]) -> str:
    """The auditor's count (results from before it ran have none)."""
    if "recomputed_differences" not in audit:
        return ""
    count = audit["recomputed_differences"]
    return f"; every total recomputed from the members' items: {count} differences"


def main() -> None:
    common.main("load", __doc__, run, table, readme=True)


if __name__ == "__main__":
    main()
