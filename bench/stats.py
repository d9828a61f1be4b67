"""The live statistics' costs on DynamoDB Local (docs/stats.md):

- the stream's extra write units per order for the counters: orders of both programs (each
  order credits a shopper and a customer; a quarter of them are new members) through
  order_ingestion, then their stream records through event_publisher, with only the stats
  repository's client measured (transactions billed as AWS bills them: ``bench.common``);
  also the extra stream records the counter writes themselves put on the stream;
- ``GET /v1/admin/stats``'s read units per request, for each program, after a small and a
  ten times larger workload (the same: the request reads the counter items, not the members);
- a redelivered batch: the counter writes it makes (none: every transaction is refused by its
  record's marker).

``python -m bench.stats [--update-readme docs/stats.md]`` (``STATS_ORDERS``: orders of the
small workload, default 40).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import common
from shared import composition
from shared.logic.stats import program_stats
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, order_completed
from tests.integration.streams import StreamReader

TABLE, SHADOW = "bench-stats", "bench-stats-shadow"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROGRAMS = ("cart-star", "customer-rewards")


def _orders(apps: dict[str, Any], first: int, count: int) -> None:
    for index in range(first, first + count):
        member = index // 4  # a new shopper and customer every fourth order
        event = order_completed(
            order_id=f"o-{index}",
            member_id=f"s-{member}",
            customer_id=f"c-{member}",
            completed_at=(NOW - timedelta(days=index % 30)).isoformat(),
            time=NOW.isoformat(),
        )
        apps["order_ingestion"].lambda_handler(event, FakeContext())


def _drain(stream: StreamReader) -> list[dict[str, Any]]:
    """Every record the stream has now (a GetRecords call returns at most 1,000)."""
    records: list[dict[str, Any]] = []
    while batch := stream.read():
        records.extend(batch)
    return records


def _publish(apps: dict[str, Any], records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 100):
        batch = records[start : start + 100]
        response = apps["event_publisher"].lambda_handler(
            {"Records": batch}, FakeContext(function_name="event_publisher")
        )
        assert response == {"batchItemFailures": []}, response


class KeyCount:
    """The stats store, counting the keys a request asks for: AWS bills each key of a
    BatchGetItem (half a unit, eventually consistent, for an item under 4 KB) whether the item
    exists or not; DynamoDB Local bills only the items it finds."""

    def __init__(self, store: Any) -> None:
        self.store, self.keys = store, 0

    def apply_once(self, *args: Any) -> bool:
        return bool(self.store.apply_once(*args))

    def get_many(self, keys: Any) -> Any:
        self.keys += len(keys)
        return self.store.get_many(keys)


def _reads(measuring: common.MeasuringClient) -> dict[str, dict[str, float]]:
    units: dict[str, dict[str, float]] = {}
    for program_id in PROGRAMS:
        measuring.reset()
        store = KeyCount(composition.stats_repository())
        program_stats(load_program(program_id), store, NOW)
        units[program_id] = {
            "local_units": measuring.reads,
            "keys": store.keys,
            "aws_units": store.keys / 2,
            "calls": measuring.calls.get("BatchGetItem", 0),
        }
    return units


def run() -> dict[str, Any]:
    small = int(os.environ.get("STATS_ORDERS", "40"))
    with common.dynamodb_local(TABLE, SHADOW) as bare:
        os.environ["TABLE_NAME"] = TABLE
        os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        composition.reset()
        apps: dict[str, Any] = {
            name: load_function(name) for name in ("order_ingestion", "event_publisher")
        }

        class Quiet:
            def publish(self, events: list[Any]) -> int:
                return len(events)

        apps["event_publisher"].publisher = Quiet  # nothing leaves the machine
        stats_repo = composition.stats_repository()
        measuring = common.MeasuringClient(stats_repo.client, bare, TABLE, SHADOW, immediate=True)
        stats_repo.client = measuring  # type: ignore[assignment]
        stream: StreamReader | None = None

        results: dict[str, Any] = {}
        first = 0
        for label, count in (("small", small), ("large", small * 10)):
            with measuring.paused():
                _orders(apps, first, count)
            first += count
            stream = stream or StreamReader(TABLE)  # after the first writes (an empty shard
            records = _drain(stream)  # read from its horizon fails on DynamoDB Local)
            measuring.reset()
            _publish(apps, records)
            writes, calls = measuring.writes, dict(measuring.calls)
            extra = _drain(stream)  # the markers and counters just written
            with measuring.paused():
                _publish(apps, extra)
            _drain(stream)
            results[label] = {
                "orders": count,
                "stream_records": len(records),
                "counter_transactions": calls.get("TransactWriteItems", 0),
                "counter_write_units": writes,
                "write_units_per_order": round(writes / count, 2),
                "extra_stream_records_per_order": round(
                    sum("STATS" in str(r["dynamodb"]["Keys"]["pk"]["S"]) for r in extra) / count, 2
                ),
                "stats_read_units": _reads(measuring),
            }
            if label == "small":
                measuring.reset()
                _publish(apps, records)  # the same batch again: a redelivery
                results["redelivery"] = {
                    "records": len(records),
                    "write_units": measuring.writes,
                    "refused_transactions": measuring.calls.get("RefusedTransactions", 0),
                }
                with measuring.paused():
                    _publish(apps, _drain(stream))
        results["members_large"] = first // 4
        return results


def table(results: dict[str, Any]) -> str:
    small, large, again = results["small"], results["large"], results["redelivery"]
    reads = large["stats_read_units"]
    lines = [
        "| measure | small workload | ten times larger |",
        "|---|---|---|",
        f"| orders (both programs; a new member every 4th) | {small['orders']} | "
        f"{large['orders']} |",
        f"| counter transactions (marker + ADD) | {small['counter_transactions']} | "
        f"{large['counter_transactions']} |",
        f"| counter write units per order | {small['write_units_per_order']} | "
        f"{large['write_units_per_order']} |",
        f"| extra stream records per order (markers, counters) | "
        f"{small['extra_stream_records_per_order']} | {large['extra_stream_records_per_order']} |",
    ]
    for program_id in PROGRAMS:
        before, after = small["stats_read_units"][program_id], reads[program_id]
        lines.append(
            f"| `GET /v1/admin/stats`, {program_id}: BatchGetItem calls, keys, units on AWS "
            f"(DynamoDB Local) | {before['calls']}, {before['keys']}, {before['aws_units']} "
            f"({before['local_units']}) | {after['calls']}, {after['keys']}, {after['aws_units']} "
            f"({after['local_units']}) |"
        )
    lines.append(
        f"| redelivered batch of {again['records']} records: write units | "
        f"{again['write_units']} ({again['refused_transactions']} transactions refused) | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    common.main("stats", __doc__, run, table, readme=True)
