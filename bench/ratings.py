"""Benchmark: what one rating costs, on DynamoDB Local, in read and write units.

The cases, each a ``RatingSubmitted`` through rating_moderation's handler, on the default
program (cart-star: last 100 counted ratings, floor 4.7, hard to please at 10 ratings in 180
days with a mean of at most 3.5):

- **counted**: ratings of a veteran shopper (100 counted five-star ratings already: the window
  is full, the oldest entry moves out) from new customers, five stars and three stars in turn
  (a three-star rating is *low*: it commits with its rater, and moves the average; a five-star
  one replacing a five-star entry leaves the member's standing as it was); the means of each
  kind are kept apart (``by_stars``);
- **five stars, the standing moving**: five-star ratings of a veteran whose 100 counted ratings
  are four-star ones, so that each moves the average and the member's rating attributes are
  written;
- **excluded**: as counted, with reasons all outside the shopper's control (the window and the
  member item are not written);
- **retroactive**: the 50th rating of a customer whose 49 earlier ratings (30 five-star, 19 low,
  to 19 shoppers) kept them just above the line: this 1-star makes them hard to please, so it
  and their 19 low ratings are excluded, and the 19 shoppers' averages are corrected (each
  window is full, so the next older counted rating is brought in). The units are those of the
  whole delivery, the retroactive part included.

Units are what AWS bills. DynamoDB Local under-counts ``TransactWriteItems``, so each item of
each transaction is replayed as a plain write on a shadow table holding the same item
beforehand (copied there just before the transaction: bench/common.py), and doubled (a
transactional write costs 2 units per KB of the larger of the item before and after). Reads
and plain writes are DynamoDB Local's ``ConsumedCapacity``. Member items are seeded at a
realistic size (90 days of points, tier attributes), since their size sets the cost of writing
the rating attributes.

Run: ``python -m bench.ratings`` (writes bench/results/ratings.json, prints a markdown table).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench import common
from bench.common import MeasuringClient, dynamodb_local, measured_handlers
from shared.dal.dynamodb import av
from shared.dal.item_size import item_size
from shared.domain.keys import MEMBER_SK, member_pk, order_sk
from shared.domain.timeutil import to_utc_iso
from shared.domain.window import pack_days
from tests.helpers import FakeContext

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TABLE, SHADOW = "bench-ratings", "bench-ratings-shadow"
SAMPLES = 10
VETERAN_RATINGS = 100


def rating_event(
    rating_id: str,
    order_id: str,
    member_id: str,
    customer_id: str,
    stars: int,
    submitted_at: datetime,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "id": f"evt-{rating_id}",
        "detail-type": "RatingSubmitted",
        "source": "bench",
        "time": NOW.isoformat(),
        "detail": {
            "ratingId": rating_id,
            "orderId": order_id,
            "memberId": member_id,
            "customerId": customer_id,
            "stars": stars,
            "reasons": list(reasons),
            "submittedAt": submitted_at.isoformat(),
        },
    }


class Bench:
    def __init__(self, app: Any, bare: Any, measuring: MeasuringClient) -> None:
        self.app = app
        self.bare = bare
        self.measuring = measuring

    def member(self, member_id: str) -> None:
        """A member item of realistic size: 90 day buckets and the tier attributes."""
        item: dict[str, Any] = {
            "pk": member_pk("cart-star", member_id),
            "sk": MEMBER_SK,
            "memberId": member_id,
            "programId": "cart-star",
            "lifetimePoints": 4_210,
            "ordersCompleted": 421,
            "memberSince": "20250104T100000Z",
            "tier": "platinum",
            "tierChangedAt": "20261002T080000Z",
            "tierReason": "points_gained",
            "checkShard": "cart-star#07",
            "checkOn": "2026-12-01",
            **pack_days({NOW.date() - timedelta(days=day): 20 for day in range(90)}),
        }
        self.bare.put_item(TableName=TABLE, Item={k: av(v) for k, v in item.items()})

    def order(self, member_id: str, order_id: str, customer_id: str, at: datetime) -> None:
        """The order item as order_ingestion leaves it (completed, credited)."""
        item = {
            "pk": member_pk("cart-star", member_id),
            "sk": order_sk(order_id),
            "memberId": member_id,
            "orderId": order_id,
            "customerId": customer_id,
            "completedAt": to_utc_iso(at),
            "day": at.date().isoformat(),
            "batchSize": 1,
            "total": {"amount": Decimal("40.00"), "currency": "USD"},
            "tipAtDelivery": {"amount": Decimal("5.00"), "currency": "USD"},
            "tip": {"amount": Decimal("5.00"), "currency": "USD"},
            "points": 10,
            "ruleVersion": "cart-star@1",
            "status": "credited",
            "creditedBy": "bench",
        }
        self.bare.put_item(TableName=TABLE, Item={k: av(v) for k, v in item.items()})

    def rate(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.ingress.handle(event, FakeContext())
        return result

    def veteran(self, member_id: str, count: int = VETERAN_RATINGS, stars: int = 5) -> None:
        """A shopper with ``count`` counted ``stars``-star ratings from a fair customer."""
        self.member(member_id)
        start = NOW - timedelta(days=60)
        for index in range(count):
            order_id = f"{member_id}-hist-{index}"
            at = start + timedelta(minutes=10 * index)
            self.order(member_id, order_id, f"fair-{member_id}", at)
            self.rate(
                rating_event(f"r-{order_id}", order_id, member_id, f"fair-{member_id}", stars, at)
            )

    def measure(self, event: dict[str, Any]) -> dict[str, Any]:
        self.measuring.reset()
        self.measuring.active = True
        started = time.perf_counter()
        try:
            result = self.rate(event)
        finally:
            elapsed = time.perf_counter() - started - self.measuring.overhead
            self.measuring.active = False
        return {
            "result": result,
            "reads": self.measuring.reads,
            "writes": self.measuring.writes,
            "calls": dict(self.measuring.calls),
            "ms": elapsed * 1000,
        }


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (``shared.dal.item_size``)."""
    return item_size(item)


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(key: str) -> dict[str, float]:
        values = [sample[key] for sample in samples]
        return {"min": min(values), "max": max(values), "mean": statistics.fmean(values)}

    by_stars: dict[str, dict[str, float]] = {}
    for value in sorted({sample["stars"] for sample in samples if "stars" in sample}):
        kind = [sample for sample in samples if sample.get("stars") == value]
        by_stars[str(value)] = {
            "samples": len(kind),
            "write_units_mean": statistics.fmean(sample["writes"] for sample in kind),
            "read_units_mean": statistics.fmean(sample["reads"] for sample in kind),
        }
    return {
        "samples": len(samples),
        **({"by_stars": by_stars} if len(by_stars) > 1 else {}),
        "write_units": stats("writes"),
        "read_units": stats("reads"),
        "handler_median_ms": statistics.median(sample["ms"] for sample in samples),
        "calls": samples[0]["calls"],
        "outcome": samples[0]["result"]["outcome"],
    }


def case_counted(
    bench: Bench, label: str, reasons: tuple[str, ...], stars: tuple[int, ...] = (5, 3)
) -> dict[str, Any]:
    """Ratings of one veteran (each new one moves the window along, as any other would), of
    ``stars`` in turn."""
    member_id = f"{label}-veteran"
    samples = []
    for index in range(SAMPLES):
        order_id = f"{member_id}-new-{index}"
        customer_id = f"{label}-customer-{index}"
        at = NOW - timedelta(hours=2, minutes=-index)
        bench.order(member_id, order_id, customer_id, at)
        value = stars[index % len(stars)]
        event = rating_event(f"r-{order_id}", order_id, member_id, customer_id, value, at, reasons)
        samples.append({**bench.measure(event), "stars": value})
    return summary(samples)


def case_retroactive(bench: Bench) -> dict[str, Any]:
    grump = "grump"
    stars = [5] * 30 + [1] * 16 + [2] * 3  # 172 / 49 > 3.5: just above the line
    start = NOW - timedelta(days=40)
    for index, value in enumerate(stars):
        if value == 5:
            member_id = f"retro-shopper-{index}"
            bench.member(member_id)
        else:
            member_id = f"retro-veteran-{index}"  # seeded with a full window
        order_id = f"grump-order-{index}"
        at = start + timedelta(hours=12 * index)
        bench.order(member_id, order_id, grump, at)
        bench.rate(rating_event(f"r-{order_id}", order_id, member_id, grump, value, at))
    rater = bench.bare.get_item(
        TableName=TABLE, Key={"pk": {"S": "P#cart-star#C#grump"}, "sk": {"S": "CUSTOMER"}}
    )["Item"]
    assert "hb" not in rater, "the grump crossed the line too early"
    member_id, order_id = "retro-veteran-last", "grump-order-50"
    bench.veteran(member_id, 0)
    bench.order(member_id, order_id, grump, NOW - timedelta(hours=1))
    sample = bench.measure(rating_event(f"r-{order_id}", order_id, member_id, grump, 1, NOW))
    assert sample["result"]["outcome"] == "excluded", sample["result"]
    result = summary([sample])
    result["reconsidered"] = sample["result"].get("reconciled", 0)
    return result


def run() -> dict[str, Any]:
    with dynamodb_local(TABLE, SHADOW) as bare:
        apps, _repo, measuring = measured_handlers(
            bare, ["rating_moderation"], TABLE, SHADOW, immediate=True, active=False
        )
        bench = Bench(apps["rating_moderation"], bare, measuring)

        started = time.perf_counter()
        veterans = ["counted-veteran", "excluded-veteran"]
        veterans += [f"retro-veteran-{i}" for i in range(30, 49)]
        seed: Callable[[str], None] = bench.veteran
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(seed, veterans))
            pool.submit(bench.veteran, "moving-veteran", VETERAN_RATINGS, 4).result()
        seed_seconds = time.perf_counter() - started

        counted = case_counted(bench, "counted", ())
        moving = case_counted(bench, "moving", (), (5,))
        excluded = case_counted(bench, "excluded", ("item_out_of_stock",))
        retroactive = case_retroactive(bench)
        pk = {"S": member_pk("cart-star", "counted-veteran")}
        window = bare.get_item(TableName=TABLE, Key={"pk": pk, "sk": {"S": "RATINGS"}})
        member = bare.get_item(TableName=TABLE, Key={"pk": pk, "sk": {"S": MEMBER_SK}})["Item"]
        rating_attributes = {
            "ratingAverage",
            "ratingCount",
            "eligible",
            "eligibilityReason",
            "eligibilityChangedAt",
            "rV",
        }
    return {
        "date": datetime.now(UTC).date().isoformat(),  # the day of the run
        "seed_seconds": round(seed_seconds, 1),
        "veteran_counted_ratings": VETERAN_RATINGS,
        "window_entries_bytes": len(window["Item"]["w"]["B"]),
        "window_item_bytes": item_bytes(window["Item"]),
        "member_item_bytes": item_bytes(member),
        "member_rating_attributes_bytes": item_bytes(
            {name: value for name, value in member.items() if name in rating_attributes}
        ),
        "counted": counted,
        "counted_five_stars_standing_moving": moving,
        "excluded": excluded,
        "retroactive_rater_with_50_ratings": retroactive,
    }


def table(results: dict[str, Any]) -> str:
    counted = results["counted"]
    cases = [
        ("counted rating (veteran, full window; 5 and 3 stars in turn)", counted),
        (
            "counted 5-star rating, the member's standing moving (veteran of 4-star ratings)",
            results["counted_five_stars_standing_moving"],
        ),
        ("excluded rating (outside the shopper's control)", results["excluded"]),
        (
            f"retroactive: 50th rating of a rater crossing the line "
            f"({results['retroactive_rater_with_50_ratings']['reconsidered']} earlier "
            f"ratings excluded)",
            results["retroactive_rater_with_50_ratings"],
        ),
    ]
    lines = [
        "| one `RatingSubmitted` | write units | read units | handler median |",
        "|---|---|---|---|",
    ]
    for label, case in cases:
        writes, reads = case["write_units"], case["read_units"]
        lines.append(
            f"| {label} | {writes['mean']:g} | {reads['mean']:g} | "
            f"{case['handler_median_ms']:.1f} ms |"
        )
        for stars, kind in case.get("by_stars", {}).items():
            lines.append(
                f"| - its {stars}-star ratings | {kind['write_units_mean']:g} | "
                f"{kind['read_units_mean']:g} | |"
            )
    lines.append("")
    lines.append(
        f"Units as AWS bills them (transactions replayed item by item and doubled; DynamoDB "
        f"Local under-counts them). {results['counted']['samples']} ratings per single-rating "
        f"case, to a shopper holding {results['veteran_counted_ratings']} counted ratings: the "
        f"window item is full ({results['window_item_bytes']} bytes) and the member item has 90 "
        f"day buckets and the tier attributes ({results['member_item_bytes']} bytes, of which "
        f"{results['member_rating_attributes_bytes']} are the rating attributes). "
        f"`python -m bench.ratings`, {results['date']}, DynamoDB Local in memory: times are "
        f"local (DynamoDB Local takes ~60-120 ms per transaction), meaningful only as ratios."
    )
    return "\n".join(lines)


def main() -> None:
    common.main("ratings", __doc__, run, table)


if __name__ == "__main__":
    main()
