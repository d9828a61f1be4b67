"""Benchmark: what the annual dividend costs, on DynamoDB Local.

Seeds ``PLUS`` customers who held Plus in 2026 with one order each, ``QUIET`` Plus customers
without an order and ``OTHERS`` customers with orders who never held Plus, then measures, with
the read and write units AWS would bill (``ConsumedCapacity``; transactions replayed on a shadow
table, see ``bench.common``):

- ``MembershipChanged`` of Plus through order_ingestion: within one year, across two, and the
  same change again;
- the dividend job (``shared.logic.dividend.run_dividend``, as ``points_settlement`` runs it) on
  15 March 2027: read and write units per member paid, and the calls (the customers who never
  held Plus are never read);
- the job again the same day (the year is done: the checkpoint's read alone).

Run: ``python -m bench.dividend``: writes bench/results/dividend.json and prints it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import MeasuringClient, dynamodb_local, measured_handlers
from shared import composition
from shared.domain.events import MembershipChanged, OrderCompleted
from shared.logic.customers import change_membership, credit_customer
from shared.logic.dividend import run_dividend
from shared.programs import load_program
from tests.helpers import FakeContext

PROGRAM = load_program("customer-rewards")
TABLE, SHADOW = "bench-dividend", "bench-dividend-shadow"
PLUS, QUIET, OTHERS = 400, 40, 400
PAY_AT = datetime(2027, 3, 15, 0, 5, tzinfo=UTC)
RESULTS = Path(__file__).resolve().parent / "results" / "dividend.json"


def _units(measuring: MeasuringClient) -> dict[str, Any]:
    return {
        "read_units": round(measuring.reads, 2),
        "write_units": round(measuring.writes, 2),
        "calls": dict(measuring.calls),
    }


def _membership(customer: str, start: str, until: str) -> dict[str, Any]:
    return {
        "detail-type": "MembershipChanged",
        "source": "billing.service",
        "time": start,
        "detail": {
            "customerId": customer,
            "plan": "plus",
            "validUntil": until,
            "occurredAt": start,
        },
    }


def _order(customer: str, index: int) -> OrderCompleted:
    return OrderCompleted.model_validate(
        {
            "orderId": f"o-{customer}",
            "memberId": "shopper-1",
            "customerId": customer,
            "completedAt": "2026-06-10T12:00:00Z",
            "total": {"amount": f"{40 + index % 200}.50", "currency": "USD"},
            "tip": {"amount": "3.00", "currency": "USD"},
        }
    )


def run() -> dict[str, Any]:
    with dynamodb_local(TABLE, SHADOW) as bare:
        apps, _repo, measuring = measured_handlers(
            bare, ["order_ingestion"], TABLE, SHADOW, immediate=True
        )
        ingest = apps["order_ingestion"].ingress.handle
        store = composition.customer_repository()
        memberships: dict[str, Any] = {}
        for name, event in (
            ("one_year", _membership("p-0", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")),
            ("two_years", _membership("p-1", "2026-12-01T00:00:00Z", "2027-01-15T00:00:00Z")),
            ("again", _membership("p-1", "2026-12-01T00:00:00Z", "2027-01-15T00:00:00Z")),
        ):
            measuring.reset()
            ingest(event, FakeContext())
            memberships[name] = _units(measuring)
        with measuring.paused():
            for index in range(PLUS + QUIET):
                customer = f"p-{index}"
                if index > 1:
                    detail = _membership(customer, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
                    change_membership(
                        MembershipChanged.model_validate(detail["detail"]), PROGRAM, store
                    )
                if index < PLUS:
                    credit_customer(_order(customer, index), PAY_AT, PROGRAM, store, "a")
            for index in range(OTHERS):
                credit_customer(_order(f"n-{index}", index), PAY_AT, PROGRAM, store, "a")
        measuring.reset()
        started = time.perf_counter()
        job = run_dividend(PAY_AT, PROGRAM, store)
        seconds = time.perf_counter() - started
        units = _units(measuring)
        measuring.reset()
        again = run_dividend(PAY_AT, PROGRAM, store)
        rerun = {"state": again.state, **_units(measuring)}
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "plus_members_with_orders": PLUS,
        "plus_members_without_orders": QUIET,
        "other_customers": OTHERS,
        "membership_changed": memberships,
        "job": {
            "state": job.state,
            "pages": job.pages,
            "paid": job.paid,
            "points": job.points,
            "refused": job.refused,
            **units,
            "seconds_on_dynamodb_local": round(seconds, 2),
        },
        "read_units_per_member_paid": round(float(units["read_units"]) / job.paid, 3),
        "write_units_per_member_paid": round(float(units["write_units"]) / job.paid, 3),
        "rerun_same_day": rerun,
    }


def main() -> None:
    results = run()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
