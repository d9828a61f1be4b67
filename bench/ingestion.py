"""Benchmark: what one OrderCompleted costs, on DynamoDB Local, in one run.

Every order credits its shopper (the shopper program) and its customer (the customer program):
both are measured together, the customer being one who ordered before (its first order also
enters the index of due days: ``bench.customers`` measures each case of the customer's side).

Measures, with ``ReturnConsumedCapacity`` (DynamoDB Local reports real units):
- write and read units per OrderCompleted for a member with no history and for a member with
  5,000 prior orders, whose member item is at its largest: a 36-character id, orders on every
  day of the window (triple batches: about 1,250 points a day), and every attribute the tier
  evaluation, rating moderation and cashback write, at their longest (``tests.member_item``);
- the handler's time as a ratio to the time of the raw DynamoDB calls it makes (botocore's
  round trips, timed around each call by the repository), invocation by invocation;
- the naive design for comparison: order item + ledger item + member item in one transaction,
  plus a Powertools-style idempotency record written before and after;
- the quality gates' events (docs/tiers.md, "Quality gates"), with the test program that gates
  Platinum and Diamond, for a shopper whose windows are full (120 accepted offers and
  deliveries before): write and read units per ``OfferAccepted``, ``OfferDeclined`` (a drop;
  and a plain refusal), ``DeliveryLate``, and what the on-time gate adds to an
  ``OrderCompleted``. Those are plain ``UpdateItem`` calls only, which DynamoDB Local counts as
  AWS bills them (the gate repository has its own meter here).

Run: ``make bench`` (writes bench/results/ingestion.json and the README's figures).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import common
from bench.common import ROOT, MeasuringClient, dynamodb_local, measured_handlers
from shared import composition
from shared.dal.capacity import CapacityMeter
from shared.dal.item_size import item_size
from shared.dal.ledger import LedgerRepository
from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.window import block_first_day
from shared.programs import load_program, parse_program
from tests.helpers import FakeContext, order_completed
from tests.member_item import LONGEST_MEMBER_ID, give_every_attribute

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""A day whose 90-day window spans 14 blocks of day buckets, the most it can."""
SAMPLES = 300
HISTORY = 5_000


def measure_orders(
    app: Any,
    repo: LedgerRepository,
    measuring: MeasuringClient,
    member_for: Callable[[int], str],
    label: str,
) -> dict[str, Any]:
    billed: list[float] = []
    reported: list[float] = []
    reads: list[float] = []
    handler: list[float] = []
    in_dynamodb: list[float] = []
    for index in range(SAMPLES):
        event = order_completed(
            order_id=f"{label}-{index}",
            member_id=member_for(index),
            completed_at=(NOW - timedelta(minutes=index)).isoformat(),
            time=NOW.isoformat(),
        )
        repo.meter.reset()
        started = time.perf_counter()
        result = app.ingress.handle(event, FakeContext())
        handler.append(time.perf_counter() - started)
        assert result["outcome"] == "credited", result
        billed.append(measuring.settle())
        reported.append(repo.meter.write_units)
        reads.append(repo.meter.read_units)
        in_dynamodb.append(repo.meter.seconds)
    handler_ms = statistics.median(handler) * 1000
    dynamodb_ms = statistics.median(in_dynamodb) * 1000
    return {
        "write_units": {"min": min(billed), "max": max(billed), "mean": statistics.fmean(billed)},
        "write_units_reported_by_local": statistics.fmean(reported),
        "read_units": {"min": min(reads), "max": max(reads), "mean": statistics.fmean(reads)},
        "handler_median_ms": handler_ms,
        "dynamodb_calls_median_ms": dynamodb_ms,
        "handler_to_dynamodb_ratio": statistics.median(
            h / d for h, d in zip(handler, in_dynamodb, strict=True)
        ),
    }


def naive_design(client: Any, table: str) -> dict[str, float]:
    """What AWS would bill the design the issue calls naive, for the same order: an idempotency
    record written before and after (as Powertools' idempotency utility does), and one
    transaction putting an order item and a ledger item and updating the member item. Every
    write is sent plain so that DynamoDB Local counts it as AWS does; the transaction's three
    items count twice."""
    billed = []
    for index in range(50):
        member = {"S": f"P#cart-star#M#naive-{index}"}
        order_id = f"naive-order-{index}"
        idem = {"pk": {"S": f"IDEMPOTENCY#{order_id}"}, "sk": {"S": "IDEMPOTENCY"}}
        writes: list[tuple[int, str, dict[str, Any]]] = [
            (
                1,
                "put_item",
                {
                    "Item": {
                        **idem,
                        "status": {"S": "INPROGRESS"},
                        "expiration": {"N": "1800000000"},
                    }
                },
            ),
            (
                2,
                "put_item",
                {
                    "Item": {
                        "pk": {"S": f"ORDER#{order_id}"},
                        "sk": {"S": "ORDER"},
                        "memberId": member,
                        "customerId": {"S": "cust-1"},
                        "completedAt": {"S": NOW.isoformat()},
                        "total": {"M": {"amount": {"N": "40"}, "currency": {"S": "USD"}}},
                        "tip": {"M": {"amount": {"N": "5"}, "currency": {"S": "USD"}}},
                    }
                },
            ),
            (
                2,
                "put_item",
                {
                    "Item": {
                        "pk": member,
                        "sk": {"S": f"LEDGER#{NOW.isoformat()}#{order_id}"},
                        "points": {"N": "10"},
                        "ruleVersion": {"S": "cart-star@1"},
                    }
                },
            ),
            (
                2,
                "update_item",
                {
                    "Key": {"pk": member, "sk": {"S": "MEMBER"}},
                    "UpdateExpression": "ADD lifetimePoints :p",
                    "ExpressionAttributeValues": {":p": {"N": "10"}},
                },
            ),
            (
                1,
                "update_item",
                {
                    "Key": idem,
                    "UpdateExpression": "SET #s = :done, #d = :data",
                    "ExpressionAttributeNames": {"#s": "status", "#d": "data"},
                    "ExpressionAttributeValues": {
                        ":done": {"S": "COMPLETED"},
                        ":data": {"S": json.dumps({"outcome": "credited", "points": 10})},
                    },
                },
            ),
        ]
        units = 0.0
        for factor, operation, request in writes:
            answer = getattr(client, operation)(
                TableName=table, ReturnConsumedCapacity="TOTAL", **request
            )
            units += factor * answer["ConsumedCapacity"]["CapacityUnits"]
        billed.append(units)
    return {"write_units_mean": statistics.fmean(billed)}


def seed_history(app: Any, measuring: MeasuringClient, bare: Any, member_id: str) -> float:
    """5,000 orders through the handler (not measured: the client passes them through), then
    the tier, rating and wallet attributes (written as tier recalculation, rating moderation
    and cashback write them); then the member item (the only item later orders share) is
    copied to the shadow table, so that both start from the same state."""
    started = time.perf_counter()
    with measuring.paused():
        for index in range(HISTORY):
            minutes = index * (120 * 24 * 60) // HISTORY
            app.ingress.handle(
                order_completed(
                    order_id=f"history-{index}",
                    member_id=member_id,
                    batch_size=3,
                    completed_at=(NOW - timedelta(minutes=minutes)).isoformat(),
                    time=NOW.isoformat(),
                ),
                FakeContext(),
            )
    give_every_attribute(bare, "bench-ledger", load_program("cart-star"), member_id, NOW)
    seconds = time.perf_counter() - started
    measuring.copy_to_shadow(
        {"pk": {"S": member_pk("cart-star", member_id)}, "sk": {"S": MEMBER_SK}}
    )
    return seconds


def member_item(client: Any, member_id: str) -> dict[str, Any]:
    key = {"pk": {"S": member_pk("cart-star", member_id)}, "sk": {"S": MEMBER_SK}}
    item: dict[str, Any] = client.get_item(TableName="bench-ledger", Key=key, ConsistentRead=True)[
        "Item"
    ]
    return item


GATED_PROGRAM = ROOT / "tests" / "fixtures" / "programs" / "cart-star-gated.yaml"
GATE_SAMPLES = 200


def _quality_event(detail_type: str, minutes_ago: int, **detail: Any) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return {
        "detail-type": detail_type,
        "source": "dispatch.service",
        "time": NOW.isoformat(),
        "detail": {"memberId": "gated-shopper", "occurredAt": at, **detail},
    }


def measure_quality(app: Any) -> dict[str, Any]:
    """Units per quality event for a shopper with full windows (the program gated)."""
    program = parse_program(GATED_PROGRAM.read_text(encoding="utf-8"), GATED_PROGRAM.name)
    app.load_program = lambda _program_id: program
    gates = composition.gate_repository()
    gates.meter = CapacityMeter()
    member = "gated-shopper"

    def accept(offer: str, minutes_ago: int) -> dict[str, Any]:
        return _quality_event("OfferAccepted", minutes_ago, offerId=offer)

    def deliver(order: str, minutes_ago: int) -> dict[str, Any]:
        at = (NOW - timedelta(minutes=minutes_ago)).isoformat()
        return order_completed(
            order_id=order, member_id=member, completed_at=at, time=NOW.isoformat()
        )

    for index in range(120):  # full windows: every later event also pushes the oldest out
        app.ingress.handle(accept(f"seed-offer-{index}", 20_000 - index * 60), FakeContext())
        app.ingress.handle(deliver(f"seed-order-{index}", 20_000 - index * 60), FakeContext())

    def measure(events: list[dict[str, Any]]) -> dict[str, Any]:
        writes: list[float] = []
        reads: list[float] = []
        calls: list[int] = []
        for event in events:
            gates.meter.reset()
            app.ingress.handle(event, FakeContext())
            writes.append(gates.meter.write_units)
            reads.append(gates.meter.read_units)
            calls.append(gates.meter.calls)
        return {
            "write_units": {
                "min": min(writes),
                "max": max(writes),
                "mean": round(statistics.fmean(writes), 2),
            },
            "read_units_max": max(reads),
            "calls_mean": round(statistics.fmean(calls), 2),
        }

    n = GATE_SAMPLES
    offers = [accept(f"offer-{i}", 2_000 - i) for i in range(n)]
    results: dict[str, Any] = {"accepted": measure(offers)}
    # a drop of each offer just accepted, a minute after it, newest first: the newest 100 are
    # in the window (the standing moves), the older 100 beyond it (it does not)
    drops = [
        _quality_event("OfferDeclined", 2_000 - i - 1, offerId=f"offer-{i}")
        for i in range(n - 1, -1, -1)
    ]
    results["declined_after_accepting"] = measure(drops)
    plain = [_quality_event("OfferDeclined", 100, offerId=f"refused-{i}") for i in range(n)]
    results["declined_never_accepted"] = measure(plain)
    orders = [deliver(f"order-{i}", 2_000 - i) for i in range(n)]
    results["order_completed_gate_part"] = measure(orders)
    lates = [
        _quality_event("DeliveryLate", 2_000 - i - 1, orderId=f"order-{i}", minutesLate=12)
        for i in range(n)
    ]
    results["delivery_late"] = measure(lates)
    results["samples"] = n
    return results


def run() -> dict[str, Any]:
    with dynamodb_local("bench-ledger", "bench-shadow", "bench-naive") as bare:
        apps, repo, measuring = measured_handlers(
            bare, ["order_ingestion"], "bench-ledger", "bench-shadow"
        )
        app = apps["order_ingestion"]

        seed_seconds = seed_history(app, measuring, bare, LONGEST_MEMBER_ID)
        before = member_item(bare, LONGEST_MEMBER_ID)
        new = measure_orders(app, repo, measuring, lambda i: f"newcomer-{i}", "new")
        veteran = measure_orders(app, repo, measuring, lambda _i: LONGEST_MEMBER_ID, "vet")
        after = member_item(bare, LONGEST_MEMBER_ID)
        naive = naive_design(bare, "bench-naive")
        quality = measure_quality(app)
    return {
        "date": datetime.now(UTC).date().isoformat(),  # the day of the run
        "samples": SAMPLES,
        "history_orders": HISTORY,
        "history_seed_seconds": round(seed_seconds, 1),
        "veteran_day_blocks": sum(1 for name in after if block_first_day(name) is not None),
        "veteran_member_item_bytes": {"before": item_size(before), "after": item_size(after)},
        "new_member": new,
        "member_with_5000_orders": veteran,
        "naive_design": naive,
        "quality_gates": quality,
    }


def readme_block(results: dict[str, Any]) -> str:
    new, old = results["new_member"], results["member_with_5000_orders"]

    def row(label: str, value: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | {value(new)} | {value(old)} |"

    return "\n".join(
        [
            "| one `OrderCompleted`, both programs | shopper with no history "
            "| shopper with 5,000 orders |",
            "|---|---|---|",
            row(
                "write units, as AWS bills them (min / max)",
                lambda r: f"{r['write_units']['min']:g} / {r['write_units']['max']:g}",
            ),
            row("read units (max)", lambda r: f"{r['read_units']['max']:g}"),
            row("handler median", lambda r: f"{r['handler_median_ms']:.2f} ms"),
            row(
                "of which its DynamoDB call, median",
                lambda r: f"{r['dynamodb_calls_median_ms']:.2f} ms",
            ),
            row(
                "handler time / its raw DynamoDB call time (median of ratios)",
                lambda r: f"**{r['handler_to_dynamodb_ratio']:.2f}x**",
            ),
            "",
            f"Each order credits its shopper (4 units: order and member items in one "
            f"transaction) and its customer in the customer program (4 more, the same way, and "
            f"1 for the order's entry in the prize draw's sparse index; a returning customer), "
            f"and counts toward the customer's weekly challenge (half a read unit for the "
            f"member item, eventually consistent, and 4 write units: the order's mark and the "
            f"week's counter in one transaction; the third order of a week also pays the "
            f"bonus in a larger transaction). The naive design (order, ledger and member "
            f"items in one transaction, plus an idempotency record written before and "
            f"after) measures "
            f"**{results['naive_design']['write_units_mean']:g} write units** per order and "
            f"program in the same run. {results['samples']} orders per column. The "
            f"5,000-order member's item is at its largest: a 36-character id, points on "
            f"each of the window's 90 days (in "
            f"{results['veteran_day_blocks']} attributes of 7 days), the tier, rating and "
            f"wallet attributes; "
            f"{results['veteran_member_item_bytes']['after']:,} bytes. `make bench`, "
            f"{results['date']}, DynamoDB Local 10.3.0 in memory on 2 cores: times are local "
            f"and meaningful only as ratios. Write units are DynamoDB Local's counts for each "
            f"item written plain, doubled for transactions as AWS bills them (DynamoDB Local "
            f"itself reports "
            f"{new['write_units_reported_by_local']:g} for the two transactions: it under-counts "
            f"transactions).",
        ]
    )


def main() -> None:
    common.main("ingestion", __doc__, run, readme_block, readme=True)


if __name__ == "__main__":
    main()
