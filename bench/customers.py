"""Benchmark: what the customer program costs, on DynamoDB Local, in one run.

Measured with the shopper program beside it, as both run: per ``OrderCompleted`` through
order_ingestion, the write units of both programs' transactions as AWS bills them (replayed on a
shadow table, see ``bench.common``) and the read units, for
- a new customer (and a new shopper): the customer's first order also enters the index of due
  days (one index write);
- a returning customer with points already pending (the due day stays);
- a customer with 5,000 orders of history (Gold), seen before by the execution environment, and
  not seen (its first credit assumes no status, is refused, and is made again);
and per checkout hold, per capture (the completion of a held order), per release, and the
member's points as ``GET /v1/me`` reads them (one item) at 0 and 5,000 orders.

Run: ``python -m bench.customers`` (part of ``make bench``): writes bench/results/customers.json
and, with ``--update-readme README.md``, the README's figures.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench import common
from bench.common import MeasuringClient, dynamodb_local, measured_handlers
from shared import composition
from shared.dal.item_size import item_size
from shared.domain.keys import MEMBER_SK, member_pk
from shared.logic.customers import guesses, place_hold, release_hold
from shared.programs import load_program
from tests.helpers import FakeContext, order_completed

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SAMPLES = 100
HISTORY = 5_000
PROGRAM = load_program("customer-rewards")
TABLE, SHADOW = "bench-customers", "bench-customers-shadow"


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "max": max(values), "mean": round(statistics.fmean(values), 3)}


def measure(
    measuring: MeasuringClient, action: Callable[[int], Any], samples: int = SAMPLES
) -> dict[str, Any]:
    writes: list[float] = []
    reads: list[float] = []
    refused: list[float] = []
    for index in range(samples):
        measuring.reset()
        action(index)
        writes.append(measuring.writes)
        reads.append(measuring.reads)
        refused.append(measuring.calls.get("RefusedTransactions", 0))
    return {"write_units": _stats(writes), "read_units": _stats(reads), "refused": _stats(refused)}


def _order(order_id: str, customer: str, at: datetime, total: str = "40.00") -> dict[str, Any]:
    event = order_completed(
        order_id=order_id,
        member_id=f"shopper-{uuid.uuid4().hex[:8]}",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=NOW.isoformat(),
    )
    event["detail"]["total"] = {"amount": total, "currency": "USD"}
    return event


def run() -> dict[str, Any]:
    with dynamodb_local(TABLE, SHADOW) as bare:
        apps, _repo, measuring = measured_handlers(
            bare, ["order_ingestion"], TABLE, SHADOW, immediate=True
        )
        ingest = apps["order_ingestion"].ingress.handle
        store = composition.customer_repository()

        def order(customer: str, at: datetime, total: str = "40.00") -> Callable[[int], Any]:
            def deliver(index: int) -> Any:
                event = _order(f"o-{uuid.uuid4().hex[:12]}", customer.format(index), at, total)
                result = ingest(event, FakeContext())
                assert result["programs"][1]["outcome"] == "credited", result
                return result

            return deliver

        new = measure(measuring, order("new-{}", NOW))
        returning = measure(measuring, order("regular", NOW - timedelta(minutes=1)))
        with measuring.paused():
            for index in range(HISTORY):
                at = NOW - timedelta(minutes=index * 5)
                ingest(_order(f"h-{index}", "veteran", at), FakeContext())
        veteran = measure(measuring, order("veteran", NOW))

        def unseen(index: int) -> Any:
            guesses.clear()
            return order("veteran", NOW)(index)

        veteran_unseen = measure(measuring, unseen, samples=20)

        with measuring.paused():
            for index in range(SAMPLES):
                ingest(
                    _order(f"fund-{index}", f"buyer-{index}", NOW - timedelta(days=30), "500.00"),
                    FakeContext(),
                )
        holds = measure(
            measuring,
            lambda i: place_hold(f"buyer-{i}", f"cart-{i}", 500, NOW, PROGRAM, store, "t"),
        )
        captures = measure(
            measuring,
            lambda i: ingest(_order(f"cart-{i}", f"buyer-{i}", NOW), FakeContext()),
        )
        with measuring.paused():
            for index in range(SAMPLES):
                place_hold(f"buyer-{index}", f"cart2-{index}", 500, NOW, PROGRAM, store, "t")
        releases = measure(
            measuring,
            lambda i: release_hold(f"buyer-{i}", f"cart2-{i}", NOW, PROGRAM, store, "checkout"),
        )
        with measuring.paused():
            for index in range(SAMPLES):
                bare.put_item(
                    TableName=TABLE,
                    Item={
                        "pk": {"S": member_pk("cart-star", f"buyer-{index}")},
                        "sk": {"S": MEMBER_SK},
                        "walletBalance": {"N": "100.00"},
                    },
                )
        wallet_holds = measure(
            measuring,
            lambda i: place_hold(
                f"buyer-{i}", f"cart3-{i}", 500, NOW, PROGRAM, store, "t", Decimal("4.50")
            ),
        )
        wallet_captures = measure(
            measuring,
            lambda i: ingest(_order(f"cart3-{i}", f"buyer-{i}", NOW), FakeContext()),
        )
        wallet_alone = measure(
            measuring,
            lambda i: place_hold(
                f"buyer-{i}", f"cart4-{i}", 0, NOW, PROGRAM, store, "t", Decimal("2.00")
            ),
        )
        views = {}
        for label, member in (("no_orders", "nobody"), ("orders_5000", "veteran")):

            def read(_index: int, member: str = member) -> Any:
                return store.get_member(PROGRAM.id, member)

            views[label] = measure(measuring, read, samples=10)
        key = {"pk": {"S": member_pk(PROGRAM.id, "veteran")}, "sk": {"S": MEMBER_SK}}
        veteran_item = bare.get_item(TableName=TABLE, Key=key)["Item"]
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "samples": SAMPLES,
        "order_completed_both_programs": {
            "new_customer": new,
            "returning_customer": returning,
            "customer_with_5000_orders": veteran,
            "customer_with_5000_orders_unseen": veteran_unseen,
        },
        "hold": holds,
        "capture_with_its_order": captures,
        "release": releases,
        "hold_points_and_wallet": wallet_holds,
        "capture_points_and_wallet": wallet_captures,
        "hold_wallet_alone": wallet_alone,
        "member_read": views,
        "veteran_member_item_bytes": item_size(veteran_item),
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        "| what | write units (mean, min-max) | read units | refused transactions |",
        "|---|---|---|---|",
    ]

    def row(label: str, r: dict[str, Any]) -> None:
        w = r["write_units"]
        rows.append(
            f"| {label} | {w['mean']:g} ({w['min']:g}-{w['max']:g}) | "
            f"{r['read_units']['mean']:g} | {r['refused']['mean']:g} |"
        )

    orders = results["order_completed_both_programs"]
    row("`OrderCompleted`, both programs: a new customer", orders["new_customer"])
    row("... a returning customer, points pending", orders["returning_customer"])
    row("... a Gold customer with 5,000 orders, seen before", orders["customer_with_5000_orders"])
    row("... the same, not seen by this environment", orders["customer_with_5000_orders_unseen"])
    row("checkout hold (`POST .../holds`)", results["hold"])
    row(
        "capture: the held order's `OrderCompleted`, both programs",
        results["capture_with_its_order"],
    )
    row("release (`DELETE .../holds/{orderId}`)", results["release"])
    if "hold_points_and_wallet" in results:
        row("hold of points and the shopper's wallet", results["hold_points_and_wallet"])
        row(
            "... captured by its `OrderCompleted`, both programs",
            results["capture_points_and_wallet"],
        )
        row("hold of the wallet alone", results["hold_wallet_alone"])
    row("the member's points (one item), no orders", results["member_read"]["no_orders"])
    row("the member's points, 5,000 orders", results["member_read"]["orders_5000"])
    rows.append("")
    rows.append(
        f"`python -m bench.customers`, {results['date']}, DynamoDB Local; write units as AWS "
        f"bills them (transaction items twice, index writes once); reads as DynamoDB Local "
        f"reports them (strongly consistent). The 5,000-order customer's member item: "
        f"{results['veteran_member_item_bytes']:,} bytes."
    )
    return "\n".join(rows)


def main() -> None:
    common.main("customers", __doc__, run, table, readme=True)


if __name__ == "__main__":
    main()
