"""What the engine costs on AWS at a stated scale, from the units the benches measured.

Reads bench/results/{ingestion,tiers,ratings,perks}.json (written by ``make bench`` on DynamoDB
Local, which reports real ``ConsumedCapacity``; transactions as AWS bills them, see
bench/common.py) and, when present, bench/results/coldstart.json; the functions' memory sizes
and timeouts from template.yaml. Multiplies the measured units by a workload (``WORKLOAD``) and
a price list (``PRICES``), both data below, and writes the tables between the
``<!-- bench:cost-*:start/end -->`` markers of docs/cost.md, so that a later bench run refreshes
them. Reads JSON only: cheap, no DynamoDB Local.

Run: ``python -m bench.cost`` (the last step of ``make bench``); ``--doc PATH`` writes another
file, ``--print`` only prints.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from samlite.cfn import load_template

from bench.common import update_readme

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "cost.md"
TEMPLATE = ROOT / "template.yaml"
MILLION = 1_000_000
DAYS_PER_MONTH = 30
SECONDS_PER_DAY = 86_400

# -- the price list -------------------------------------------------------------------------------

PRICES_AS_OF = "2026-12-04"
PRICES_REGION = "us-east-1"
PRICES: dict[str, tuple[float, str, str]] = {
    # name: (dollars, per what, note)
    "ddb_write": (0.625, "million write request units", "after the Nov 2024 cut (checked)"),
    "ddb_read": (0.125, "million read request units", "after the Nov 2024 cut (checked)"),
    "ddb_storage": (0.25, "GB-month", "Standard table class"),
    "ddb_pitr": (0.20, "GB-month", "continuous backups (PITR is on in template.yaml)"),
    "ddb_stream_read": (0.0, "stream read request", "free when read by Lambda triggers"),
    "lambda_requests": (0.20, "million requests", ""),
    "lambda_gbs": (0.0000133334, "GB-second", "arm64; init time billed too"),
    "eventbridge_events": (1.00, "million custom events", "per 64 KB chunk"),
    "eventbridge_archive": (0.10, "GB archived", "plus storage"),
    "eventbridge_archive_storage": (0.023, "GB-month", "archive storage"),
    "sqs_requests": (0.40, "million requests", "standard queue, per 64 KB chunk"),
    "http_api": (1.00, "million requests", "HTTP API, first 300 million a month (checked)"),
    "logs_ingestion": (0.50, "GB", "CloudWatch Logs, standard class"),
    "xray_traces": (5.00, "million traces recorded", "Tracing: Active; default sampling (checked)"),
    "firehose": (0.029, "GB", "5 KB rounding; not used by the template"),
}


def price(name: str) -> float:
    return PRICES[name][0]


# -- the workload ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What the marketplace does in a day. Every figure is an assumption (``MEANINGS``)."""

    members: int = 10_000_000
    orders_per_day: int = 5_000_000
    rated_share: float = 0.60
    counted_share: float = 0.90
    retroactive_per_rating: float = 0.0001
    tip_adjusted_share: float = 0.05
    reversed_share: float = 0.02
    me_reads_per_member: float = 1.0
    perks_reads_per_member: float = 0.1
    ledger_reads_per_member: float = 0.1
    redemption_lists_per_member: float = 0.05
    entitlement_checks_per_order: float = 1.0
    badge_reads_per_order: float = 0.1
    redemptions_per_member: float = 0.001
    refused_per_redemption: float = 0.1
    cancelled_per_redemption: float = 0.05
    fuel_purchases_per_member: float = 0.05
    eligibility_changes_per_rating: float = 0.001
    due_share: float = 0.01
    peak_factor: float = 3.0
    records_per_stream_invocation: float = 10.0
    environment_lifetime_hours: float = 2.0
    log_bytes_per_invocation: int = 1_000
    access_log_bytes_per_request: int = 400
    xray_sampled_share: float = 0.05
    inbound_event_bytes: int = 1_000
    archive_days: int = 90
    retention_months: int = 12
    item_overhead_bytes: int = 100
    check_shards: int = 16

    def scaled(self, factor: float) -> Workload:
        """The same marketplace with ``factor`` times the orders (members unchanged)."""
        return replace(self, orders_per_day=round(self.orders_per_day * factor))


MEANINGS: dict[str, str] = {
    "members": "members of the program",
    "orders_per_day": "OrderCompleted events a day",
    "rated_share": "orders that get a RatingSubmitted",
    "counted_share": (
        "ratings that count (the rest are excluded, e.g. reasons outside the shopper's control)"
    ),
    "retroactive_per_rating": (
        "ratings that make their rater hard to please, excluding their earlier low ratings (the "
        "bench: 19)"
    ),
    "tip_adjusted_share": "orders whose tip changes after delivery",
    "reversed_share": "orders cancelled or refunded after their completion",
    "me_reads_per_member": "`GET /v1/me` per member a day",
    "perks_reads_per_member": "`GET /v1/me/perks` per member a day",
    "ledger_reads_per_member": "`GET /v1/me/ledger` pages per member a day",
    "redemption_lists_per_member": "`GET /v1/me/redemptions` per member a day",
    "entitlement_checks_per_order": (
        "services' `GET /v1/members/{id}/entitlements` per order (early batch access)"
    ),
    "badge_reads_per_order": "services' `GET /v1/members/{id}/badge` per order",
    "redemptions_per_member": "confirmed redemptions per member a day (half care days, half codes)",
    "refused_per_redemption": "refused redemptions (quota used) per confirmed one",
    "cancelled_per_redemption": "cancelled redemptions per confirmed one",
    "fuel_purchases_per_member": "FuelPurchaseReported per member a day",
    "eligibility_changes_per_rating": "ratings that flip a member's eligibility",
    "due_share": "members due in the daily sweep (the tiers bench: 1,000 of 100,000)",
    "peak_factor": "the dinner peak's rate over the day's average rate",
    "records_per_stream_invocation": (
        "stream records per Lambda invocation (batches of up to 100 within 1 s, per shard)"
    ),
    "environment_lifetime_hours": (
        "how long a Lambda environment lives before it is recycled (a cold start)"
    ),
    "log_bytes_per_invocation": (
        "log bytes per invocation: Lambda's START/END/REPORT lines, a JSON line, the metrics (EMF)"
    ),
    "access_log_bytes_per_request": "HTTP API access log bytes per request",
    "xray_sampled_share": "X-Ray's default rule: 1 request a second per function, then this share",
    "inbound_event_bytes": "bytes of an inbound event (the archive bills by GB)",
    "archive_days": "InboundEventsArchive's retention in prod",
    "retention_months": "months of history kept for the storage figure (nothing is deleted)",
    "item_overhead_bytes": "DynamoDB's storage overhead per item",
    "check_shards": "`ByCheckDate` shards per program (`CHECK_SHARDS` in shared/dal/tiers.py)",
}
"""What each workload figure means (the docs' assumptions table)."""

WORKLOAD = Workload()

PARTITION_WCU = 1_000
PARTITION_RCU = 3_000
TABLE_WARM_WCU = 4_000
"""What a new on-demand table takes at once before it scales (AWS's documented floor)."""

# -- reading the results --------------------------------------------------------------------------

REQUIRED = ("ingestion", "tiers", "ratings", "perks")


def load_results(directory: Path = RESULTS) -> dict[str, Any]:
    """The benches' results by name; ``coldstart`` only when its file exists."""
    results: dict[str, Any] = {}
    for name in REQUIRED:
        results[name] = json.loads((directory / f"{name}.json").read_text())
    for optional in ("coldstart", "stats"):
        path = directory / f"{optional}.json"
        if path.exists():
            results[optional] = json.loads(path.read_text())
    return results


@dataclass(frozen=True)
class FunctionConfig:
    memory_mb: int
    timeout_s: int


def function_configs(template: Path = TEMPLATE) -> dict[str, FunctionConfig]:
    """Memory and timeout of each functions/<name>, from template.yaml (Globals as default)."""
    data = load_template(template)  # loops expanded, as CloudFormation expands them
    defaults = data.get("Globals", {}).get("Function", {})
    configs: dict[str, FunctionConfig] = {}
    for resource in data["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        code = str(properties.get("CodeUri", "")).rstrip("/")
        if not code.startswith("functions/"):
            continue
        configs[code.removeprefix("functions/")] = FunctionConfig(
            memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
            timeout_s=int(properties.get("Timeout", defaults.get("Timeout", 3))),
        )
    return configs


def _row(perks: Mapping[str, Any], prefix: str) -> Mapping[str, Any]:
    for row in perks["rows"]:
        if str(row["label"]).startswith(prefix):
            return dict(row)
    raise KeyError(f"bench/results/perks.json has no row starting {prefix!r}")


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line item: ``quantity`` of ``unit`` per operation, ``per_day`` operations a day."""

    group: str
    what: str
    quantity: float
    unit: str
    per_day: float
    dollars_per_unit: float
    source: str
    order_driven: bool = True
    """Grows with the orders (the rest grows with the members or is fixed)."""
    order_path: bool = False
    """Part of an OrderCompleted's own path: ingestion, ledger entry, tier evaluation, event."""

    @property
    def dollars_per_day(self) -> float:
        return self.quantity * self.per_day * self.dollars_per_unit


@dataclass(frozen=True)
class Naive:
    what: str
    ours: float
    naive: float
    unit: str
    per_day: float
    dollars_per_unit: float
    source: str


@dataclass(frozen=True)
class HotKey:
    key: str
    what: str
    peak_per_second: float
    limit: float
    unit: str
    note: str


@dataclass
class Model:
    workload: Workload
    lines: list[Line] = field(default_factory=list)
    storage: list[Line] = field(default_factory=list)
    naive: list[Naive] = field(default_factory=list)
    unmeasured_naive: list[str] = field(default_factory=list)
    hot_keys: list[HotKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def per_day(self, *, order_driven: bool | None = None) -> float:
        return sum(
            line.dollars_per_day
            for line in self.lines
            if order_driven is None or line.order_driven == order_driven
        )

    def storage_per_month(self) -> float:
        return sum(line.dollars_per_day for line in self.storage)

    def per_month(self) -> float:
        return self.per_day() * DAYS_PER_MONTH + self.storage_per_month()

    def per_million_orders(self, *, order_driven: bool | None = None) -> float:
        return self.per_day(order_driven=order_driven) / self.workload.orders_per_day * MILLION

    def order_path_per_million(self) -> float:
        dollars = sum(line.dollars_per_day for line in self.lines if line.order_path)
        return dollars / self.workload.orders_per_day * MILLION

    def by_group(self) -> dict[str, float]:
        groups: dict[str, float] = {}
        for line in self.lines:
            groups[line.group] = groups.get(line.group, 0.0) + line.dollars_per_day
        return groups


def _ddb(
    model: Model,
    what: str,
    reads: float,
    writes: float,
    per_day: float,
    source: str,
    *,
    order_driven: bool = True,
    order_path: bool = False,
) -> None:
    """A DynamoDB access: a line for its write units and one for its read units (when any)."""
    for units, unit, key in ((writes, "WRU", "ddb_write"), (reads, "RRU", "ddb_read")):
        if units:
            model.lines.append(
                Line(
                    "DynamoDB",
                    what,
                    units,
                    unit,
                    per_day,
                    price(key) / MILLION,
                    source,
                    order_driven,
                    order_path,
                )
            )


def _lambda(
    model: Model,
    function: str,
    what: str,
    invocations: float,
    ms: float,
    configs: Mapping[str, FunctionConfig],
    source: str,
    *,
    order_driven: bool = True,
    order_path: bool = False,
    records: float | None = None,
) -> None:
    """Requests and GB-seconds of ``invocations`` of ``function``, ``ms`` each (or ``ms`` per
    record when ``records`` is given: stream batches)."""
    gb = configs[function].memory_mb / 1024
    model.lines.append(
        Line(
            "Lambda",
            f"`{function}`: {what}, requests",
            1,
            "request",
            invocations,
            price("lambda_requests") / MILLION,
            "template.yaml",
            order_driven,
            order_path,
        )
    )
    work = records if records is not None else invocations
    model.lines.append(
        Line(
            "Lambda",
            f"`{function}`: {what}, duration ({configs[function].memory_mb} MB)",
            ms / 1000 * gb,
            "GB-s",
            work,
            price("lambda_gbs"),
            source,
            order_driven,
            order_path,
        )
    )


def build(
    results: Mapping[str, Any],
    configs: Mapping[str, FunctionConfig],
    workload: Workload = WORKLOAD,
) -> Model:
    """Every line item of a day of ``workload``, from the measured ``results``."""
    w = workload
    model = Model(workload)
    ingestion = results["ingestion"]
    tiers = results["tiers"]
    ratings = results["ratings"]
    perks = results["perks"]

    # -- the day's operations
    orders = float(w.orders_per_day)
    ratings_per_day = orders * w.rated_share
    counted = ratings_per_day * w.counted_share
    excluded = ratings_per_day - counted
    retroactive = ratings_per_day * w.retroactive_per_rating
    tips = orders * w.tip_adjusted_share
    reversals = orders * w.reversed_share
    members = float(w.members)
    redemptions = members * w.redemptions_per_member
    refused = redemptions * w.refused_per_redemption
    cancelled = redemptions * w.cancelled_per_redemption
    fuel = members * w.fuel_purchases_per_member
    sweep = tiers["daily_sweep"]
    due = members * w.due_share
    changed_share = sweep["changed"] / sweep["evaluated"]
    stream = tiers["stream"]
    upgrades_per_order = stream["upgrades"] / stream["samples"]

    # -- DynamoDB: what each operation consumed in the benches
    columns = [ingestion["new_member"], ingestion["member_with_5000_orders"]]
    order_wru = max(column["write_units"]["mean"] for column in columns)
    order_rru = max(column["read_units"]["mean"] for column in columns)
    _ddb(
        model,
        "OrderCompleted (ingestion)",
        order_rru,
        order_wru,
        orders,
        "ingestion.json",
        order_path=True,
    )
    projection = float(perks["ledger_projection"]["write_units"]["max"])
    _ddb(model, "ledger entry (projection)", 0, projection, orders, "perks.json", order_path=True)
    _ddb(model, "ledger entry of a reversal", 0, projection, reversals, "perks.json")
    if "stats" in results:
        # The live statistics' counters, kept by the outbox: a marker and an ADD per change
        # that moves a counter (docs/stats.md), measured per order with a new member every 4th.
        counters = float(results["stats"]["large"]["write_units_per_order"])
        _ddb(model, "stats counters (outbox), per order", 0, counters, orders, "stats.json")
    stream_wru = float(stream["write_units_per_evaluation_mean"])
    stream_rru = float(stream["read_units_per_evaluation"]["mean"])
    _ddb(
        model,
        "tier evaluation on the stream, per order (upgrades, index)",
        stream_rru,
        stream_wru,
        orders,
        f"tiers.json ({stream['upgrades']} upgrades in {stream['samples']} orders)",
        order_path=True,
    )
    _ddb(
        model,
        "order released to rating moderation: read of its waiting item",
        1,
        0,
        orders,
        "docs/ratings.md (not measured)",
    )
    _ddb(model, "order reversed", 1, 4, reversals, "docs/data-model.md (not measured)")
    _ddb(
        model,
        "TipAdjusted, ingestion's part",
        1,
        1,
        tips,
        "docs/data-model.md (not measured)",
    )
    for label, key, count in (
        ("RatingSubmitted, counted", "counted", counted),
        ("RatingSubmitted, excluded", "excluded", excluded),
        (
            "a rater turns hard to please: earlier ratings excluded",
            "retroactive_rater_with_50_ratings",
            retroactive,
        ),
    ):
        _ddb(
            model,
            label,
            ratings[key]["read_units"]["mean"],
            ratings[key]["write_units"]["mean"],
            count,
            "ratings.json",
        )
    member_reads = [
        ("GET /v1/me", "GET /v1/me: a member with 5,000", members * w.me_reads_per_member),
        ("GET /v1/me/perks", "GET /v1/me/perks", members * w.perks_reads_per_member),
        ("GET /v1/me/ledger (a page)", "GET /v1/me/ledger", members * w.ledger_reads_per_member),
        (
            "GET /v1/me/redemptions",
            "GET /v1/me/redemptions",
            members * w.redemption_lists_per_member,
        ),
    ]
    service_reads = [
        (
            "GET /v1/members/{id}/entitlements",
            "GET /v1/members/{id}/entitlements",
            orders * w.entitlement_checks_per_order,
        ),
        (
            "GET /v1/members/{id}/badge",
            "GET /v1/members/{id}/badge",
            orders * w.badge_reads_per_order,
        ),
    ]
    perk_rows = [
        (
            "redemption confirmed: a care day",
            "POST /v1/me/redemptions: a care day",
            redemptions / 2,
        ),
        ("redemption confirmed: a code", "POST /v1/me/redemptions: a code", redemptions / 2),
        ("redemption refused (quota used)", "POST /v1/me/redemptions: a second code", refused),
        ("redemption cancelled", "DELETE /v1/me/redemptions", cancelled),
        ("FuelPurchaseReported, credited", "FuelPurchaseReported: cashback credited", fuel),
    ]
    for table, order_driven in ((member_reads, False), (service_reads, True), (perk_rows, False)):
        for label, prefix, count in table:
            measured = _row(perks, prefix)
            reads, writes = measured["read_units"]["max"], measured["write_units"]["max"]
            _ddb(model, label, reads, writes, count, "perks.json", order_driven=order_driven)
    sweep_rru = sweep["sweep_read_units"] / sweep["due_today"]
    sweep_wru = sweep["sweep_write_units"] / sweep["due_today"]
    _ddb(
        model,
        "daily sweep, per member due",
        sweep_rru,
        sweep_wru,
        due,
        "tiers.json",
        order_driven=False,
    )
    model.lines.append(
        Line(
            "DynamoDB",
            "stream reads by the two Lambda triggers",
            0,
            "GetRecords",
            0,
            0.0,
            "free",
            True,
        )
    )

    # -- Lambda
    ingest_ms = max(column["handler_median_ms"] for column in columns)
    _lambda(
        model,
        "order_ingestion",
        "orders",
        orders,
        ingest_ms,
        configs,
        "ingestion.json (handler median)",
        order_path=True,
    )
    _lambda(
        model,
        "order_ingestion",
        "reversals, tips",
        reversals + tips,
        ingest_ms,
        configs,
        "not measured: an order's handler median",
    )
    rating_ms = (
        counted * ratings["counted"]["handler_median_ms"]
        + excluded * ratings["excluded"]["handler_median_ms"]
        + retroactive * ratings["retroactive_rater_with_50_ratings"]["handler_median_ms"]
    ) / ratings_per_day
    _lambda(
        model,
        "rating_moderation",
        "ratings, tips",
        ratings_per_day + tips,
        rating_ms,
        configs,
        "ratings.json (handler medians, weighted; tips assumed alike)",
    )
    api_rows = [(prefix, count) for _, prefix, count in member_reads]
    service_rows = [(prefix, count) for _, prefix, count in service_reads]
    for rows, order_driven, what in (
        (api_rows, False, "member reads"),
        (service_rows, True, "services' entitlement and badge checks"),
    ):
        calls = sum(count for _, count in rows)
        ms = sum(_row(perks, prefix)["handler_median_ms"] * count for prefix, count in rows) / calls
        _lambda(
            model,
            "member_api",
            what,
            calls,
            ms,
            configs,
            "perks.json (handler medians, weighted)",
            order_driven=order_driven,
        )
    perk_calls = sum(count for _, _, count in perk_rows)
    perk_ms = sum(
        _row(perks, prefix)["handler_median_ms"] * count for _, prefix, count in perk_rows
    )
    _lambda(
        model,
        "perk_redemption",
        "redemptions, cancellations, fuel purchases",
        perk_calls,
        perk_ms / perk_calls,
        configs,
        "perks.json (handler medians, weighted)",
        order_driven=False,
    )
    # Stream records: every item written is one record (event_publisher sees them all;
    # tier_recalculation's filter passes member items, completed orders, removed waiting items).
    per_record_ms = tiers["phase_seconds"]["stream"] / stream["samples"] * 1000
    member_records = orders + reversals + counted + fuel + orders * upgrades_per_order
    tier_records = member_records + orders
    all_records = (
        orders * (2 + 1 + upgrades_per_order)  # order, member, ledger items; tier writes
        + reversals * 3
        + tips
        + counted * 6
        + excluded * 4
        + fuel * 2
        + redemptions * 3
        + cancelled * 2
        + due * changed_share
    )
    for function, records, source in (
        ("tier_recalculation", tier_records, "tiers.json (stream phase / evaluations)"),
        (
            "event_publisher",
            all_records,
            "not measured: tier_recalculation's time per record",
        ),
    ):
        _lambda(
            model,
            function,
            "stream records",
            records / w.records_per_stream_invocation,
            per_record_ms,
            configs,
            source,
            records=records,
        )
    sweep_seconds = sweep["sweep_seconds"] / sweep["due_today"] * due
    _lambda(
        model,
        "tier_recalculation",
        "daily sweep",
        1,
        sweep_seconds * 1000,
        configs,
        "tiers.json (sweep seconds per member due)",
        order_driven=False,
    )
    timeout = configs["tier_recalculation"].timeout_s
    if sweep_seconds > timeout:
        model.notes.append(
            f"The daily sweep, one invocation reading shard after shard, would take about "
            f"{sweep_seconds:,.0f} s for {due:,.0f} members due at the bench's pace "
            f"({sweep['sweep_seconds']} s for {sweep['due_today']:,}), beyond the function's "
            f"{timeout} s timeout: at this scale it must be split (a shard per invocation, "
            f"say) before it can run. Its cost is the same either way."
        )
    invocations = _invocations(model)
    coldstart = results.get("coldstart")
    if coldstart is not None:
        # Billed by wall-clock time (bench/coldstart.py's rows: {"wall": {"seconds"}, "cpu": ...}).
        init = {row["function"]: float(row["wall"]["seconds"]) for row in coldstart["rows"]}
        seconds = _seconds_per_invocation(model, configs)
        for function, calls in sorted(invocations.items()):
            if function not in init:
                continue
            peak_concurrency = calls * w.peak_factor / SECONDS_PER_DAY * seconds[function]
            environments = max(1.0, float(math.ceil(peak_concurrency)))
            starts = environments * 24 / w.environment_lifetime_hours
            gb = configs[function].memory_mb / 1024
            model.lines.append(
                Line(
                    "Lambda",
                    f"`{function}`: cold starts (init, {configs[function].memory_mb} MB)",
                    init[function] * gb,
                    "GB-s",
                    starts,
                    price("lambda_gbs"),
                    "coldstart.json (init seconds)",
                    True,
                )
            )
    else:
        model.notes.append(
            "No bench/results/coldstart.json: cold starts (their init time is billed) are not "
            "counted. At one environment recycled every few hours per function they are cents."
        )

    # -- events in and out
    inbound = orders + reversals + tips + ratings_per_day + fuel
    for what, count, order_driven, order_path in (
        ("events in: OrderCompleted", orders, True, True),
        ("events in: reversals, tips, ratings", reversals + tips + ratings_per_day, True, False),
        ("events in: fuel purchases", fuel, False, False),
    ):
        model.lines.append(
            Line(
                "EventBridge",
                what,
                1,
                "event",
                count,
                price("eventbridge_events") / MILLION,
                "workload",
                order_driven,
                order_path,
            )
        )
    model.lines.append(
        Line(
            "EventBridge",
            "InboundEventsArchive: events archived",
            w.inbound_event_bytes / 1e9,
            "GB",
            inbound,
            price("eventbridge_archive"),
            "workload",
        )
    )
    model.lines.append(
        Line(
            "EventBridge",
            f"InboundEventsArchive: {w.archive_days} days kept, per day",
            w.inbound_event_bytes / 1e9 * w.archive_days / DAYS_PER_MONTH,
            "GB-month",
            inbound,
            price("eventbridge_archive_storage"),
            "workload",
        )
    )
    outbound = (
        orders * upgrades_per_order  # MemberTierChanged from the stream
        + due * changed_share * 2  # MemberTierChanged and, a week before, MemberTierAtRisk
        + ratings_per_day * w.eligibility_changes_per_rating
        + redemptions
        + cancelled
        + fuel
    )
    model.lines.append(
        Line(
            "EventBridge",
            "events out (tier changes, at-risk, eligibility, perks, cashback)",
            1,
            "event",
            outbound,
            price("eventbridge_events") / MILLION,
            "tiers.json upgrades per order; workload",
        )
    )
    member_requests = sum(count for _, count in api_rows) + redemptions + refused + cancelled
    service_requests = sum(count for _, count in service_rows)
    api_requests = member_requests + service_requests
    for what, count, order_driven in (
        ("HTTP API requests: members (reads, redemptions)", member_requests, False),
        ("HTTP API requests: services' entitlement and badge checks", service_requests, True),
    ):
        model.lines.append(
            Line(
                "API Gateway",
                what,
                1,
                "request",
                count,
                price("http_api") / MILLION,
                "workload",
                order_driven,
            )
        )

    # -- observability
    all_invocations = sum(invocations.values())
    member_invocations = sum(
        line.per_day
        for line in model.lines
        if line.group == "Lambda" and line.unit == "request" and not line.order_driven
    )
    for what, count, order_driven in (
        ("Lambda logs and metrics (EMF) ingested", all_invocations - member_invocations, True),
        ("Lambda logs and metrics, members' requests", member_invocations, False),
    ):
        model.lines.append(
            Line(
                "CloudWatch",
                what,
                w.log_bytes_per_invocation / 1e9,
                "GB",
                count,
                price("logs_ingestion"),
                "workload",
                order_driven,
            )
        )
    model.lines.append(
        Line(
            "CloudWatch",
            "HTTP API access logs ingested",
            w.access_log_bytes_per_request / 1e9,
            "GB",
            api_requests,
            price("logs_ingestion"),
            "workload",
            False,
        )
    )
    reservoir = sum(min(calls, SECONDS_PER_DAY) for calls in invocations.values())
    traced = reservoir + w.xray_sampled_share * max(0.0, all_invocations - reservoir)
    member_share = member_invocations / all_invocations
    for what, share, order_driven in (
        ("traces recorded (1 a second per function, then 5 %)", 1 - member_share, True),
        ("traces recorded, members' requests", member_share, False),
    ):
        model.lines.append(
            Line(
                "X-Ray",
                what,
                1,
                "trace",
                traced * share,
                price("xray_traces") / MILLION,
                "template.yaml; workload",
                order_driven,
            )
        )

    # -- storage, a month of it, after ``retention_months`` of history
    kb = 1024
    per_order_items = 2 + w.rated_share * 3  # order + ledger; rating slot, rater index, id
    kept_items = (
        (per_order_items * orders + fuel) * DAYS_PER_MONTH * w.retention_months
        + members * 2  # member and rating window items
    )
    gb = kept_items * (kb + w.item_overhead_bytes) / 1024**3
    for key, what in (
        ("ddb_storage", "table storage"),
        ("ddb_pitr", "point-in-time recovery"),
    ):
        model.storage.append(
            Line(
                "DynamoDB",
                f"{what} after {w.retention_months} months (at most 1 KB an item)",
                gb,
                "GB-month",
                1,
                price(key),
                "units: every item bills 1 write unit",
                True,
            )
        )

    # -- naive designs, where a bench measured one
    naive_order = float(ingestion["naive_design"]["write_units_mean"])
    model.naive.append(
        Naive(
            "OrderCompleted: write units",
            order_wru,
            naive_order,
            "WRU",
            orders,
            price("ddb_write") / MILLION,
            "ingestion.json `naive_design`",
        )
    )
    scan_per_member = sweep["full_scan_read_units"] / sweep["full_scan_items"]
    model.naive.append(
        Naive(
            "daily downgrades: read units (sweep of the due / full Scan of every member)",
            sweep_rru * due,
            scan_per_member * members,
            "RRU",
            1,
            price("ddb_read") / MILLION,
            "tiers.json `full_scan_read_units`",
        )
    )
    model.unmeasured_naive = [
        "tier evaluation on the stream reads nothing (0 measured); a design that reads the "
        "member and its orders per evaluation was not measured",
        "a rating reads one window item (5 reads measured in all); averaging 100 rating "
        "items per rating was not measured",
        "`GET /v1/me` reads one item whatever the history (1 unit measured with 5,000 "
        "orders); summing the orders per request was not measured",
        "the ledger read model costs 1 write unit per entry; an index on the order items "
        "(docs/perks.md: 5 units per order instead of 4) was not measured",
    ]

    # -- hot keys
    peak = w.peak_factor / SECONDS_PER_DAY
    index_wru_per_due = (sweep["sweep_write_units"] - sweep["sweep_calls"]["UpdateItem"]) / sweep[
        "due_today"
    ]
    sweep_rate = sweep["due_today"] / sweep["sweep_seconds"]
    model.hot_keys.append(
        HotKey(
            f"`ByCheckDate`: `checkShard` (program and one of {w.check_shards} shards)",
            "daily sweep: its index writes, shard after shard, at the bench's pace",
            sweep_rate * index_wru_per_due,
            PARTITION_WCU,
            "WCU/s",
            f"{sweep_rate:,.0f} members/s x {index_wru_per_due:.2f} index units each, all on "
            "the shard being swept",
        )
    )
    model.hot_keys.append(
        HotKey(
            "`ByCheckDate`: `checkShard`",
            "upgrades on the stream at the peak, index writes per shard",
            orders * upgrades_per_order * peak * 2 / w.check_shards,
            PARTITION_WCU,
            "WCU/s",
            "2 index units per upgrade (old entry out, new in), spread by hash",
        )
    )
    model.hot_keys.append(
        HotKey(
            "member `P#{program}#M#{member}`",
            "one shopper at the program's ceiling of 288 orders a day, at the peak",
            288 / SECONDS_PER_DAY * w.peak_factor * (order_wru + projection + stream_wru + 11),
            PARTITION_WCU,
            "WCU/s",
            "every order's writes and a counted rating each",
        )
    )
    model.hot_keys.append(
        HotKey(
            "member `P#{program}#M#{member}`",
            "an app polling `GET /v1/me` every 5 s",
            0.2 * _row(perks, "GET /v1/me: a member with 5,000")["read_units"]["max"],
            PARTITION_RCU,
            "RCU/s",
            "strongly consistent reads of one item",
        )
    )
    table_peak = (
        sum(line.quantity * line.per_day for line in model.lines if line.unit == "WRU") * peak
    )
    model.hot_keys.append(
        HotKey(
            "the table (not a key)",
            "all writes at the peak",
            table_peak,
            TABLE_WARM_WCU,
            "WCU/s",
            "on demand: a new table takes 4,000 at once, then scales; pre-warm before launch",
        )
    )
    return model


def _seconds_per_invocation(
    model: Model, configs: Mapping[str, FunctionConfig]
) -> dict[str, float]:
    """Mean billed seconds per invocation by function, from the duration lines."""
    work: dict[str, float] = {}
    for line in model.lines:
        if line.group == "Lambda" and line.unit == "GB-s":
            function = line.what.split("`")[1]
            gb = configs[function].memory_mb / 1024
            work[function] = work.get(function, 0.0) + line.quantity * line.per_day / gb
    calls = _invocations(model)
    return {function: work[function] / calls[function] for function in calls}


def _invocations(model: Model) -> dict[str, float]:
    """Lambda invocations a day by function, from the request lines."""
    counts: dict[str, float] = {}
    for line in model.lines:
        if line.group == "Lambda" and line.unit == "request":
            function = line.what.split("`")[1]
            counts[function] = counts.get(function, 0.0) + line.per_day
    return counts


# -- markdown -------------------------------------------------------------------------------------


def money(dollars: float) -> str:
    if dollars == 0:
        return "$0"
    if dollars >= 100:
        return f"${dollars:,.0f}"
    if dollars >= 0.995:
        return f"${dollars:,.2f}"
    return f"${dollars:.2g}" if dollars >= 0.001 else "<$0.001"


def number(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.2g}"


def _quantity(line: Line) -> str:
    if line.unit in {"GB", "GB-month"} and line.quantity < 0.001:
        return f"{number(line.quantity * 1e9)} bytes" + (
            " for a month" if line.unit == "GB-month" else ""
        )
    if line.unit in {"GB", "GB-s", "GB-month"}:
        return (
            f"{number(line.quantity) if line.quantity >= 1 else f'{line.quantity:.3g}'} {line.unit}"
        )
    return f"{number(line.quantity)} {line.unit}"


def summary_block(model: Model) -> str:
    w = model.workload
    groups = model.by_group()
    total_day = model.per_day()
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    lines = [
        "| | per day | per month (30 days) | per million orders |",
        "|---|---|---|---|",
    ]
    for group, dollars in ranked:
        lines.append(
            f"| {group} | {money(dollars)} | {money(dollars * DAYS_PER_MONTH)} | "
            f"{money(dollars / w.orders_per_day * MILLION)} |"
        )
    storage = model.storage_per_month()
    lines.append(
        f"| DynamoDB storage and backups, after {w.retention_months} months of history | | "
        f"{money(storage)} | |"
    )
    lines.append(
        f"| **total** | **{money(total_day)}** | **{money(model.per_month())}** | "
        f"**{money(model.per_million_orders())}** (requests only) |"
    )
    order_driven = model.per_million_orders(order_driven=True)
    top_group, top_dollars = ranked[0]
    lines += [
        "",
        f"{w.members:,} members, {w.orders_per_day:,} orders a day, {PRICES_REGION} on-demand "
        f"prices as of {PRICES_AS_OF}. What grows with the orders (ingestion, ratings, stream "
        f"consumers, events, entitlement checks, logs and traces): "
        f"**{money(order_driven)} per million orders**. The order's own path (ingestion, its "
        f"ledger entry, its tier evaluation, its Lambda time and its inbound event): "
        f"**{money(model.order_path_per_million())} per million orders**. The largest service "
        f"is {top_group} ({100 * top_dollars / total_day:.0f} % of the requests' cost).",
    ]
    per_month_kept = storage / w.retention_months
    orders_a_month = w.orders_per_day * DAYS_PER_MONTH
    lines += [
        "",
        f"Storage grows with the history kept (nothing is deleted): each month of it adds at "
        f"most {money(per_month_kept)} a month of storage and backups, "
        f"{money(per_month_kept / orders_a_month * MILLION)} a month for each million orders "
        f"kept (at 1 KB an item, an upper bound).",
    ]
    for note in model.notes:
        lines += ["", note]
    return "\n".join(lines)


def lines_block(model: Model) -> str:
    rows = [
        "| service | line | per operation | operations a day | $ a day | $ a month | from |",
        "|---|---|---|---|---|---|---|",
    ]
    for line in sorted(model.lines, key=lambda item: (item.group, -item.dollars_per_day)):
        rows.append(
            f"| {line.group} | {line.what} | {_quantity(line)} | {number(line.per_day)} | "
            f"{money(line.dollars_per_day)} | {money(line.dollars_per_day * DAYS_PER_MONTH)} | "
            f"{line.source} |"
        )
    for line in model.storage:
        rows.append(
            f"| {line.group} | {line.what} | {_quantity(line)} | | | "
            f"{money(line.dollars_per_day)} | {line.source} |"
        )
    return "\n".join(rows)


def naive_block(model: Model) -> str:
    rows = [
        "| measured | this design | naive design | this design, $ a day | naive, $ a day |",
        "|---|---|---|---|---|",
    ]
    for item in model.naive:
        rows.append(
            f"| {item.what} ({item.source}) | {number(item.ours)} {item.unit} | "
            f"{number(item.naive)} {item.unit} | "
            f"{money(item.ours * item.per_day * item.dollars_per_unit)} | "
            f"{money(item.naive * item.per_day * item.dollars_per_unit)} |"
        )
    rows += ["", "No naive figure was measured for:", ""]
    rows += [f"- {text}" for text in model.unmeasured_naive]
    return "\n".join(rows)


def hot_keys_block(model: Model) -> str:
    rows = [
        f"| key | traffic (peak: {number(model.workload.peak_factor)}x the day's average) "
        "| at the peak | limit | share | how |",
        "|---|---|---|---|---|---|",
    ]
    for key in model.hot_keys:
        rows.append(
            f"| {key.key} | {key.what} | {number(key.peak_per_second)} {key.unit} | "
            f"{key.limit:,.0f} | {100 * key.peak_per_second / key.limit:.1f} % | {key.note} |"
        )
    return "\n".join(rows)


def inputs_block(model: Model, results: Mapping[str, Any]) -> str:
    w = model.workload
    dates = ", ".join(
        f"{name} {results[name]['date']}" for name in (*REQUIRED, "coldstart") if name in results
    )
    rows = ["| price | $ | per | note |", "|---|---|---|---|"]
    for name, (dollars, per, note) in PRICES.items():
        shown = f"{dollars:.10f}".rstrip("0").rstrip(".") if dollars else "0"
        rows.append(f"| `{name}` | {shown} | {per} | {note} |")
    rows += [
        "",
        "| workload | value | meaning |",
        "|---|---|---|",
    ]
    for name, value in vars(w).items():
        meaning = MEANINGS[name]
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        rows.append(f"| `{name}` | {shown} | {meaning} |")
    rows += ["", f"Bench results read: {dates}."]
    return "\n".join(rows)


BLOCKS: dict[str, Callable[[Model, Mapping[str, Any]], str]] = {
    "cost-summary": lambda model, _: summary_block(model),
    "cost-lines": lambda model, _: lines_block(model),
    "cost-naive": lambda model, _: naive_block(model),
    "cost-hot-keys": lambda model, _: hot_keys_block(model),
    "cost-inputs": inputs_block,
}


def render(model: Model, results: Mapping[str, Any]) -> dict[str, str]:
    return {name: block(model, results) for name, block in BLOCKS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--doc", type=Path, default=DOC, help="the file whose tables to replace")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the benches' results")
    parser.add_argument("--print", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()
    results = load_results(args.results)
    model = build(results, function_configs())
    blocks = render(model, results)
    if args.print:
        print("\n\n".join(blocks.values()))
        return
    for name, block in blocks.items():
        update_readme(args.doc, name, block)
    print(f"{args.doc}: {money(model.per_day())} a day, {money(model.per_month())} a month")


if __name__ == "__main__":
    main()
