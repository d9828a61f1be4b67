"""The ledger digest's costs on DynamoDB Local: the write units each ledger entry pays for the
sparse index ``ByLedgerDay`` (``ReturnConsumedCapacity=INDEXES``: the table's share and the
index's apart), the entry's size with and without the digest's attributes, and the read units
per entry of the daily job (``build_digests``) and of ``loyalty audit verify``.

``python -m bench.digest [--update-readme docs/audit.md]`` (``DIGEST_MEMBERS``, default 500
members per program, 4 orders each, all on one day, in both programs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import common
from shared import composition
from shared.dal.dynamodb import av
from shared.dal.item_size import item_size
from shared.domain.digest import DAY_KEY, HASH_KEY, ORDER_KEY
from shared.domain.keys import member_pk, order_sk
from shared.logic.digest import build_digests, verify_digests
from shared.logic.ledger import project_ledger

TABLE = "bench-digest"
DAY = date(2026, 11, 23)
RECORDED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
PROGRAMS = ("cart-star", "customer-rewards")
ORDERS = 4


class IndexMeter:
    """The projector's store, writing with ``ReturnConsumedCapacity=INDEXES``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.table_units: list[float] = []
        self.index_units: list[float] = []
        self.sizes: list[int] = []
        self.bare_sizes: list[int] = []

    def put_ledger_entry(self, pk: str, sk: str, attributes: Mapping[str, Any]) -> None:
        item = {name: av(value) for name, value in attributes.items() if value is not None}
        item.update(pk=av(pk), sk=av(sk))
        consumed = self.client.put_item(
            TableName=TABLE, Item=item, ReturnConsumedCapacity="INDEXES"
        )["ConsumedCapacity"]
        self.table_units.append(float(consumed.get("Table", {}).get("CapacityUnits", 0.0)))
        indexes = consumed.get("GlobalSecondaryIndexes", {})
        self.index_units.append(sum(float(i.get("CapacityUnits", 0.0)) for i in indexes.values()))
        self.sizes.append(item_size(item))
        bare = {k: v for k, v in item.items() if k not in {DAY_KEY, ORDER_KEY, HASH_KEY}}
        bare.pop("recordedAt", None)
        self.bare_sizes.append(item_size(bare))


def _order_image(program: str, member: int, order: int) -> dict[str, Any]:
    member_id = f"bench-member-{member:05d}"
    order_id = f"bench-order-{member:05d}-{order}"
    image: dict[str, Any] = {
        "pk": member_pk(program, member_id),
        "sk": order_sk(order_id),
        "memberId": member_id,
        "orderId": order_id,
        "status": "credited",
        "completedAt": (RECORDED - timedelta(minutes=order)).isoformat(),
        "points": 10 if program == "cart-star" else 80,
        "ruleVersion": f"{program}@1",
        "batchSize": 1,
    }
    if program != "cart-star":
        image["shopperId"] = "bench-shopper"
        image["availableOn"] = "2026-12-07"
    return image


def _span(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "max": max(values), "mean": sum(values) / len(values)}


def run() -> dict[str, Any]:
    members = int(os.environ.get("DIGEST_MEMBERS", "500"))
    with common.dynamodb_local(TABLE) as bare:
        os.environ["TABLE_NAME"] = TABLE
        composition.reset()
        meter = IndexMeter(bare)
        for program in PROGRAMS:
            for member in range(members):
                for order in range(ORDERS):
                    project_ledger(None, _order_image(program, member, order), meter, RECORDED)
        entries = len(meter.table_units)
        repo = composition.digest_repository()
        repo.meter.reset()
        started = time.perf_counter()
        built = [r for p in PROGRAMS for r in build_digests(p, NOW, repo)]
        build_seconds = time.perf_counter() - started
        build_reads, build_writes = repo.meter.read_units, repo.meter.write_units
        repo.meter.reset()
        started = time.perf_counter()
        checked = [verify_digests(p, repo) for p in PROGRAMS]
        verify_seconds = time.perf_counter() - started
        verify_reads = repo.meter.read_units
        if not all(r.status == "built" for r in built) or any(r.differences for r in checked):
            raise SystemExit(f"the digest did not hold: {built} {checked}")
        return {
            "date": datetime.now(UTC).date().isoformat(),
            "entries": entries,
            "members_per_program": members,
            "table_write_units": _span(meter.table_units),
            "index_write_units": _span(meter.index_units),
            "entry_bytes": _span([float(s) for s in meter.sizes]),
            "entry_bytes_without_digest": _span([float(s) for s in meter.bare_sizes]),
            "build": {
                "read_units": build_reads,
                "write_units": build_writes,
                "read_units_per_entry": build_reads / entries,
                "seconds": round(build_seconds, 2),
                "days": len(built),
            },
            "verify": {
                "read_units": verify_reads,
                "read_units_per_entry": verify_reads / entries,
                "seconds": round(verify_seconds, 2),
            },
        }


def table(results: dict[str, Any]) -> str:
    entries = results["entries"]
    table_units, index_units = results["table_write_units"], results["index_write_units"]
    size, bare = results["entry_bytes"], results["entry_bytes_without_digest"]
    build, verify = results["build"], results["verify"]
    lines = [
        "| measure | per ledger entry | in all |",
        "|---|---|---|",
        f"| write units, the entry itself (table) | {table_units['mean']:g} | "
        f"{table_units['mean'] * entries:,.0f} |",
        f"| write units, the `ByLedgerDay` index | **{index_units['mean']:g}** | "
        f"{index_units['mean'] * entries:,.0f} |",
        f"| entry size, bytes (without the digest's attributes) | {size['mean']:.0f} "
        f"({bare['mean']:.0f}) | |",
        f"| read units, the daily job (`build_digests`, {build['days']} program-days) | "
        f"{build['read_units_per_entry']:.4f} | {build['read_units']:g} "
        f"({build['seconds']:g} s) |",
        f"| read units, `loyalty audit verify` | {verify['read_units_per_entry']:.4f} | "
        f"{verify['read_units']:g} ({verify['seconds']:g} s) |",
        "",
        f"{entries:,} ledger entries ({results['members_per_program']:,} members of each of "
        f"the two programs, {ORDERS} orders each, all recorded on one day), projected by the "
        f"ledger projector on DynamoDB Local 10.3.0 with `ReturnConsumedCapacity=INDEXES`; "
        f"the job's and the verification's units are the `ConsumedCapacity` of their calls. "
        f"The job writes {build['write_units']:g} units in all: one digest item per "
        f"program-day, about 110 KB each with its 1,000 checkpoints (write units are per KB), "
        f"which `verify` reads too. `python -m bench.digest`, {results['date']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    common.main("digest", __doc__, run, table, readme=True)


if __name__ == "__main__":
    main()
