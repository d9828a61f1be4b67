"""Benchmark: what tier evaluation reads, on DynamoDB Local, in one run.

- (a) read units of one stream evaluation (``evaluate_member``, ``Trigger.STREAM``) of a member
  image, through the real TierRepository and its CapacityMeter: the image is the stream's new
  image after an order, so the target is 0 reads;
- (b) the daily sweep (``daily_evaluation``) over 100,000 members of which 1% drop a tier
  today, in read units, against the read units of reading exactly the changed members' items
  (target: at most 2x) and against a full Scan of the same table;
- (c) the full recalculation (the production worker ``run_segment``, 1 MB pages, after a
  threshold change) against a raw parallel Scan of the same pages with the same segment
  count, the same filter and no ``Limit``, run just before and just after it (their mean is
  the reference). The target: the worker's own CPU per member at most 1.5x the raw Scan's
  (this process's CPU seconds; DynamoDB Local's process is measured apart, as the server's),
  and at most one write request per changed member (the writes go out in PartiQL batches).
  The recalculation's figures include the conditional writes of the members that change. A
  second job for the same version then finds nothing left to write: its figures are the cost
  of reading, decoding and evaluating alone. Members per second per segment are recorded too,
  but on a shared 2-core machine they follow whatever else runs: CPU seconds and units are
  the figures to compare.

DynamoDB Local counts reads, writes, queries and scans as AWS bills them (it under-counts only
transactions, which nothing here uses). It reports no ``ConsumedCapacity`` for a
BatchExecuteStatement: the tier writes' units are computed from item sizes by the repository
(``computed_write_units``; tests/integration/test_full_recalculation.py checks them against
the units DynamoDB Local measures for the same writes as UpdateItems). Times are local, and
meaningful only as ratios.

Run: ``python -m bench.tiers`` (writes bench/results/tiers.json, prints a markdown table).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from samlite.cfn import create_table

from infra.ddb_local import DynamoDBLocal
from shared.dal.recalculation import RecalculationRepository
from shared.dal.tiers import CHECK_SHARDS, TierRepository
from shared.domain.program import Program
from shared.domain.recalculation import SegmentMessage
from shared.domain.tiers import Trigger, evaluate
from shared.domain.timeutil import to_utc_iso
from shared.domain.window import bucket_increment, day_bucket, day_buckets
from shared.logic.recalculation import run_segment, start_job
from shared.logic.tiers import daily_evaluation, evaluate_member
from shared.programs import load_program

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench-tiers"
NOW = datetime(2026, 11, 23, 0, 15, tzinfo=UTC)  # the daily schedule's hour
TODAY = NOW.date()
MEMBERS = 100_000
DUE_SHARE = 0.01
STREAM_SAMPLES = 300
SEGMENTS = 4
PAGES_PER_SEGMENT = 2
PROFILES = 400
WRITERS = 4
MIX = (("none", 0.55), ("gold", 0.30), ("platinum", 0.10), ("diamond", 0.05))
"""Tiers of the 99% not due today (then 1% more hold a tier that drops today)."""
POINTS = {"none": (0, 190), "gold": (200, 990), "platinum": (1000, 1990), "diamond": (2000, 3200)}


@dataclass(frozen=True)
class Profile:
    """A member's points and the tier state the last evaluation (yesterday's) left."""

    kind: str
    attributes: dict[str, Any]
    """Buckets and tier attributes (no keys, no ids, no checkShard)."""


def _add(buckets: dict[str, int], day: date, points: int) -> None:
    """What ingestion's ADD does to the member item (day buckets are packed in blocks)."""
    name, amount = bucket_increment(day_bucket(day), points)
    buckets[name] = buckets.get(name, 0) + amount


def _spread(rng: random.Random, total: int, first_day: int, last_day: int) -> dict[str, int]:
    """``total`` points (multiples of 10) over random days ``first_day``..``last_day`` ago."""
    buckets: dict[str, int] = {}
    left = total // 10
    days = list(range(first_day, last_day + 1))
    while left > 0:
        orders = min(left, rng.choice([2, 3, 4, 5, 6, 8]))
        _add(buckets, TODAY - timedelta(days=rng.choice(days)), 10 * orders)
        left -= orders
    return buckets


def _state(buckets: dict[str, int], program: Program) -> dict[str, Any] | None:
    """The tier attributes that yesterday's evaluation wrote (as ``apply_tier`` does)."""
    yesterday = TODAY - timedelta(days=1)
    decision = evaluate(buckets, yesterday, program, Trigger.SCHEDULE)
    at = to_utc_iso(NOW - timedelta(days=1))
    state: dict[str, Any] = {**buckets, "tierAt": at}
    if decision.tier is not None:
        state.update(tier=decision.tier, tierReason="points_gained", tierChangedAt=at)
    if decision.check_on is not None:
        state["checkOn"] = decision.check_on.isoformat()
    if decision.at_risk_on is not None:
        state.update(atRiskFor=decision.at_risk_on.isoformat(), atRiskTier=decision.tier)
        state["atRiskDropsTo"] = decision.drops_to
    return state


def make_profiles(program: Program, rng: random.Random) -> tuple[list[Profile], list[Profile]]:
    """Profiles of members not due today (check date after today, or none), and of members
    whose tier drops today (yesterday's evaluation set today's check date)."""
    steady: list[Profile] = []
    while len(steady) < PROFILES:
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        low, high = POINTS[kind]
        buckets = _spread(rng, rng.randrange(low, high + 1, 10), 1, 80)
        state = _state(buckets, program)
        if state is None or state.get("tier", "none") != kind:
            continue
        if "checkOn" in state and state["checkOn"] <= TODAY.isoformat():
            continue
        steady.append(Profile(kind, state))
    dropping: list[Profile] = []
    thresholds = {tier.id: tier.min_points for tier in program.tiers}
    while len(dropping) < PROFILES // 4:
        kind = rng.choice(["gold", "platinum", "diamond"])
        # Recent points just under the tier, and an old day that leaves the window today.
        recent = thresholds[kind] - rng.randrange(10, 150, 10)
        buckets = _spread(rng, recent, 1, 60)
        _add(buckets, TODAY - timedelta(days=program.window.days), 200)
        state = _state(buckets, program)
        if state and state.get("tier") == kind and state.get("checkOn") == TODAY.isoformat():
            dropping.append(Profile(f"{kind}-dropping", state))
    return steady, dropping


def _av(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def member_item(member_id: str, profile: Profile, program: Program) -> dict[str, Any]:
    """The member item as ingestion and the tier evaluation leave it, in attribute values."""
    points = sum(day_buckets(profile.attributes).values())
    item = {
        "pk": {"S": f"P#{program.id}#M#{member_id}"},
        "sk": {"S": "MEMBER"},
        "memberId": {"S": member_id},
        "programId": {"S": program.id},
        "lifetimePoints": {"N": str(points * 3)},
        "ordersCompleted": {"N": str(points // 5)},
        "v": {"N": str(1 + points // 10)},
        **{name: _av(value) for name, value in profile.attributes.items() if value is not None},
    }
    if "checkOn" in profile.attributes:
        shard = zlib.crc32(member_id.encode()) % CHECK_SHARDS
        item["checkShard"] = {"S": f"{program.id}#{shard:02d}"}
    return item


def seed(client: Any, program: Program) -> dict[str, Any]:
    rng = random.Random(20261123)
    steady, dropping = make_profiles(program, rng)
    due = int(MEMBERS * DUE_SHARE)
    members: list[tuple[str, Profile]] = []
    for index in range(MEMBERS):
        pool = dropping if index % (MEMBERS // due) == 0 else steady
        members.append((f"shopper-{index:06d}", pool[rng.randrange(len(pool))]))
    started = time.perf_counter()

    def write(part: list[tuple[str, Profile]]) -> None:
        for begin in range(0, len(part), 25):
            pending: dict[str, Any] = {
                TABLE: [
                    {"PutRequest": {"Item": member_item(member_id, profile, program)}}
                    for member_id, profile in part[begin : begin + 25]
                ]
            }
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    threads = [threading.Thread(target=write, args=(members[k::WRITERS],)) for k in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kinds = Counter(profile.kind for _, profile in members)
    return {
        "members": members,
        "seconds": time.perf_counter() - started,
        "kinds": dict(sorted(kinds.items())),
        "due": [member_id for member_id, profile in members if profile.kind.endswith("dropping")],
    }


# -- (a) ---------------------------------------------------------------------------------------


def stream_evaluations(
    client: Any, program: Program, members: list[tuple[str, Profile]]
) -> dict[str, Any]:
    """An order lands (+30 points today: the stream's new image), then the stream evaluation."""
    deserializer = TypeDeserializer()
    repo = TierRepository(TABLE, client)
    candidates = [m for m, p in members if not p.kind.endswith("dropping")][:STREAM_SAMPLES]
    reads: list[float] = []
    writes: list[float] = []
    upgrades = 0
    for member_id in candidates:
        block, amount = bucket_increment(day_bucket(TODAY), 30)
        image = client.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"P#{program.id}#M#{member_id}"}, "sk": {"S": "MEMBER"}},
            UpdateExpression="ADD #d :points, v :one",
            ExpressionAttributeNames={"#d": block},
            ExpressionAttributeValues={":points": {"N": str(amount)}, ":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        item = {name: deserializer.deserialize(value) for name, value in image.items()}
        repo.meter.reset()
        run = evaluate_member(item, NOW, program, Trigger.STREAM, repo)
        reads.append(repo.meter.read_units)
        writes.append(repo.meter.write_units)
        upgrades += sum(run.changes.values())
    return {
        "samples": len(reads),
        "read_units_per_evaluation": {"mean": statistics.fmean(reads), "max": max(reads)},
        "write_units_per_evaluation_mean": statistics.fmean(writes),
        "upgrades": upgrades,
    }


# -- (b) ---------------------------------------------------------------------------------------


def full_scan_units(client: Any) -> dict[str, Any]:
    """A full Scan of the table (Select=COUNT reads and bills every item as a full Scan does;
    it only spares returning them). Parallel, to save time."""
    totals = [0.0] * SEGMENTS
    counts = [0] * SEGMENTS

    def scan(segment: int) -> None:
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": TABLE,
                "Select": "COUNT",
                "Segment": segment,
                "TotalSegments": SEGMENTS,
                "ReturnConsumedCapacity": "TOTAL",
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = client.scan(**request)
            totals[segment] += response["ConsumedCapacity"]["CapacityUnits"]
            counts[segment] += response["ScannedCount"]
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    _parallel(scan)
    return {"read_units": sum(totals), "items": sum(counts)}


def daily_sweep(client: Any, program: Program, due: list[str]) -> dict[str, Any]:
    reference = TierRepository(TABLE, client)
    reference.get_members(program.id, due)  # exactly the changed members' items, consistent
    changed_item_units = reference.meter.read_units
    repo = TierRepository(TABLE, client)
    started = time.perf_counter()
    run = daily_evaluation(NOW, program, repo)
    seconds = time.perf_counter() - started
    scan = full_scan_units(client)
    sweep_units = repo.meter.read_units
    return {
        "members": MEMBERS,
        "due_today": len(due),
        "evaluated": run.evaluated,
        "changed": sum(run.changes.values()),
        "changes": dict(run.changes),
        "sweep_read_units": sweep_units,
        "sweep_calls": dict(repo.meter.by_operation),
        "sweep_write_units": repo.meter.write_units,
        "sweep_seconds": round(seconds, 1),
        "changed_members_item_read_units": changed_item_units,
        "ratio_to_changed_items": sweep_units / changed_item_units,
        "full_scan_read_units": scan["read_units"],
        "full_scan_items": scan["items"],
        "full_scan_to_sweep": scan["read_units"] / sweep_units,
    }


# -- (c) ---------------------------------------------------------------------------------------


def _parallel(work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(s,)) for s in range(SEGMENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def raw_scan(client: Any, program: Program) -> list[dict[str, float]]:
    """The first pages of each segment, as the recalculation's Scan (same filter), nothing else."""
    results: list[dict[str, float]] = [{} for _ in range(SEGMENTS)]

    def scan(segment: int) -> None:
        start: dict[str, Any] | None = None
        members = 0
        began = time.perf_counter()
        for _ in range(PAGES_PER_SEGMENT):
            request: dict[str, Any] = {
                "TableName": TABLE,
                "Segment": segment,
                "TotalSegments": SEGMENTS,
                "FilterExpression": "sk = :member AND programId = :program",
                "ExpressionAttributeValues": {
                    ":member": {"S": "MEMBER"},
                    ":program": {"S": program.id},
                },
                "ReturnConsumedCapacity": "TOTAL",
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = client.scan(**request)
            members += response["Count"]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        seconds = time.perf_counter() - began
        results[segment] = {"members": members, "seconds": seconds, "rate": members / seconds}

    _parallel(scan)
    return results


def recalculation(client: Any, program: Program) -> list[dict[str, float]]:
    """One worker invocation per segment (``run_segment``), held to the same pages."""
    _, messages = start_job(program, SEGMENTS, RecalculationRepository(TABLE, client), NOW)
    results: list[dict[str, float]] = [{} for _ in range(SEGMENTS)]

    def work(segment: int) -> None:
        repo = RecalculationRepository(TABLE, client)
        calls = iter(range(1 << 30))
        sent: list[SegmentMessage] = []
        outcome = run_segment(
            messages[segment],
            program,
            repo,
            sent.append,
            lambda: 1 << 30 if next(calls) < PAGES_PER_SEGMENT - 1 else 0,
            lambda: NOW,
        )
        calls_by_operation = repo.meter.by_operation
        results[segment] = {
            "members": outcome.members,
            "seconds": outcome.seconds,
            "rate": outcome.members / outcome.seconds,
            "pages": outcome.pages,
            "written": outcome.run.written,
            "stale": outcome.run.stale,
            "read_units": repo.meter.read_units,
            "measured_write_units": repo.meter.write_units,
            "computed_write_units": repo.computed_write_units,
            "write_units": repo.meter.write_units + repo.computed_write_units,
            "batch_requests": calls_by_operation.get("BatchExecuteStatement", 0),
            "statements": repo.statements,
            "update_item_requests": calls_by_operation.get("UpdateItem", 0),
        }

    _parallel(work)
    return results


class _CpuClock:
    """CPU seconds of DynamoDB Local's process (user + system, from /proc) and of this one."""

    def __init__(self, server: DynamoDBLocal) -> None:
        process = getattr(server, "_process", None)
        self._stat = Path(f"/proc/{process.pid}/stat") if process is not None else None
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _server(self) -> float:
        if self._stat is None or not self._stat.exists():
            return 0.0
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def measure(self, work: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        server, own = self._server(), time.process_time()
        result = work()
        return result, {
            "dynamodb_local_cpu_seconds": round(self._server() - server, 2),
            "bench_process_cpu_seconds": round(time.process_time() - own, 2),
        }


def _per_member(cpu: dict[str, float], members: int) -> dict[str, float]:
    return {
        "worker_ms": cpu["bench_process_cpu_seconds"] / members * 1000,
        "server_ms": cpu["dynamodb_local_cpu_seconds"] / members * 1000,
    }


def throughput(client: Any, cpu: _CpuClock) -> dict[str, Any]:
    base = load_program("cart-star")
    raised = Program.model_validate(
        {
            **base.model_dump(),
            "version": base.version + 1,
            "tiers": [
                {
                    "id": t.id,
                    "name": t.name,
                    "min_points": 2500 if t.id == "diamond" else t.min_points,
                }
                for t in base.tiers
            ],
        }
    )
    raw_before, raw_before_cpu = cpu.measure(lambda: raw_scan(client, raised))
    recalc, recalc_cpu = cpu.measure(lambda: recalculation(client, raised))
    raw_between, raw_between_cpu = cpu.measure(lambda: raw_scan(client, raised))
    rerun, rerun_cpu = cpu.measure(lambda: recalculation(client, raised))
    raw_after, raw_after_cpu = cpu.measure(lambda: raw_scan(client, raised))

    def rate(results: list[dict[str, float]]) -> float:
        return statistics.fmean(r["rate"] for r in results)

    def members(results: list[dict[str, float]]) -> int:
        return int(sum(r["members"] for r in results))

    def per_member(
        phase: tuple[list[dict[str, float]], dict[str, float]],
    ) -> dict[str, float]:
        return _per_member(phase[1], members(phase[0]))

    def mean(*phases: dict[str, float]) -> dict[str, float]:
        return {key: statistics.fmean(p[key] for p in phases) for key in phases[0]}

    raw_cpu = mean(
        per_member((raw_before, raw_before_cpu)), per_member((raw_between, raw_between_cpu))
    )
    rerun_raw_cpu = mean(
        per_member((raw_between, raw_between_cpu)), per_member((raw_after, raw_after_cpu))
    )
    recalc_cpu_member = per_member((recalc, recalc_cpu))
    rerun_cpu_member = per_member((rerun, rerun_cpu))
    raw_rate = (rate(raw_before) + rate(raw_between)) / 2
    rerun_raw_rate = (rate(raw_between) + rate(raw_after)) / 2
    recalc_rate, rerun_rate = rate(recalc), rate(rerun)
    written = sum(r["written"] for r in recalc)
    batches = sum(r["batch_requests"] for r in recalc)
    tier_units = sum(r["computed_write_units"] for r in recalc)
    extra_server_cpu = (
        recalc_cpu["dynamodb_local_cpu_seconds"] - rerun_cpu["dynamodb_local_cpu_seconds"]
    )
    extra_worker_cpu = (
        recalc_cpu["bench_process_cpu_seconds"] - rerun_cpu["bench_process_cpu_seconds"]
    )
    return {
        "segments": SEGMENTS,
        "pages_per_segment": PAGES_PER_SEGMENT,
        "threshold_change": "diamond 2000 -> 2500 (version 2)",
        "tier_writes": "PartiQL BatchExecuteStatement, up to 25 conditional UPDATEs per request",
        "raw_scan": raw_before,
        "raw_scan_between": raw_between,
        "raw_scan_after": raw_after,
        "recalculation": recalc,
        "rerun": rerun,
        "members": members(recalc),
        "written": written,
        "stale": sum(r["stale"] for r in recalc),
        "write_requests": {
            "batch_requests": batches,
            "statements": sum(r["statements"] for r in recalc),
            "per_changed_member": batches / written if written else None,
            "checkpoint_update_items": sum(r["update_item_requests"] for r in recalc),
        },
        "write_units": sum(r["write_units"] for r in recalc),
        "tier_write_units_computed": tier_units,
        "tier_write_units_per_changed_member": tier_units / written if written else None,
        "checkpoint_write_units_measured": sum(r["measured_write_units"] for r in recalc),
        "rerun_written": sum(r["written"] for r in rerun),
        "cpu": {
            "raw_scan": raw_before_cpu,
            "recalculation": recalc_cpu,
            "raw_scan_between": raw_between_cpu,
            "rerun": rerun_cpu,
            "raw_scan_after": raw_after_cpu,
        },
        "cpu_ms_per_member": {
            "raw_scan": raw_cpu,
            "recalculation": recalc_cpu_member,
            "rerun_raw_scan": rerun_raw_cpu,
            "rerun": rerun_cpu_member,
        },
        "worker_cpu_ratio": recalc_cpu_member["worker_ms"] / raw_cpu["worker_ms"],
        "rerun_worker_cpu_ratio": rerun_cpu_member["worker_ms"] / rerun_raw_cpu["worker_ms"],
        "server_cpu_ratio": recalc_cpu_member["server_ms"] / raw_cpu["server_ms"],
        "worker_cpu_ms_per_write": (
            round(extra_worker_cpu / written * 1000, 3) if written else None
        ),
        "dynamodb_local_cpu_ms_per_write": (
            round(extra_server_cpu / written * 1000, 2) if written else None
        ),
        "raw_scan_members_per_second_per_segment": raw_rate,
        "recalculation_members_per_second_per_segment": recalc_rate,
        "ratio": recalc_rate / raw_rate,
        "rerun_members_per_second_per_segment": rerun_rate,
        "rerun_ratio": rerun_rate / rerun_raw_rate,
        "rerun_raw_scan_members_per_second_per_segment": rerun_raw_rate,
    }


def evaluate_cost(program: Program, steady: list[Profile]) -> dict[str, float]:
    """Single-thread cost of ``evaluate`` per member, by whether the member holds a tier."""
    costs: dict[str, float] = {}
    for label, profiles in (
        ("no_tier_us", [p for p in steady if p.kind == "none"]),
        ("tier_holder_us", [p for p in steady if p.kind != "none"]),
    ):
        began = time.perf_counter()
        for profile in profiles:
            evaluate(profile.attributes, TODAY, program, Trigger.RECALCULATION, False)
        costs[label] = (time.perf_counter() - began) / len(profiles) * 1e6
    return costs


def run() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    program = load_program("cart-star")
    began = time.perf_counter()
    with DynamoDBLocal() as server:
        client = boto3.client(
            "dynamodb",
            endpoint_url=server.endpoint,
            config=Config(max_pool_connections=16, retries={"mode": "standard"}),
        )
        create_table(client, ROOT / "template.yaml", TABLE)
        phases: dict[str, float] = {}
        mark = time.perf_counter()
        seeded = seed(client, program)
        phases["seed"], mark = time.perf_counter() - mark, time.perf_counter()
        stream = stream_evaluations(client, program, seeded["members"])
        phases["stream"], mark = time.perf_counter() - mark, time.perf_counter()
        sweep = daily_sweep(client, program, seeded["due"])
        phases["sweep_and_full_scan"], mark = time.perf_counter() - mark, time.perf_counter()
        recalc = throughput(client, _CpuClock(server))
        phases["recalculation_and_raw_scan"] = time.perf_counter() - mark
    steady, _ = make_profiles(program, random.Random(20261123))
    return {
        "date": TODAY.isoformat(),
        "members": MEMBERS,
        "seed_seconds": round(seeded["seconds"], 1),
        "member_kinds": seeded["kinds"],
        "stream": stream,
        "daily_sweep": sweep,
        "full_recalculation": recalc,
        "evaluate_cost": evaluate_cost(program, steady),
        "phase_seconds": {name: round(value, 1) for name, value in phases.items()},
        "total_seconds": round(time.perf_counter() - began, 1),
    }


def table(results: dict[str, Any]) -> str:
    stream, sweep, recalc = results["stream"], results["daily_sweep"], results["full_recalculation"]
    cost = results["evaluate_cost"]
    raw_rate = recalc["raw_scan_members_per_second_per_segment"]
    recalc_rate = recalc["recalculation_members_per_second_per_segment"]
    rerun_rate = recalc["rerun_members_per_second_per_segment"]
    rerun_raw = recalc["rerun_raw_scan_members_per_second_per_segment"]
    per, requests = recalc["cpu_ms_per_member"], recalc["write_requests"]
    rows = [
        ("measure", "result", "target"),
        ("---", "---", "---"),
        (
            f"(a) read units per stream evaluation ({stream['samples']} orders, "
            f"{stream['upgrades']} upgrades)",
            f"**{stream['read_units_per_evaluation']['max']:g}** (max)",
            "0",
        ),
        (
            f"(b) daily sweep over {sweep['members']:,} members, {sweep['changed']:,} change: "
            "read units",
            f"{sweep['sweep_read_units']:,.1f}",
            "",
        ),
        (
            "(b) sweep / read units of exactly the changed members' items "
            f"({sweep['changed_members_item_read_units']:,.1f})",
            f"**{sweep['ratio_to_changed_items']:.2f}x**",
            "<= 2x",
        ),
        (
            f"(b) full Scan of the same table: read units ({sweep['full_scan_items']:,} items)",
            f"{sweep['full_scan_read_units']:,.1f} ({sweep['full_scan_to_sweep']:.1f}x the sweep)",
            "",
        ),
        (
            f"(c) full recalculation ({recalc['segments']} segments, {recalc['members']:,} "
            f"members, {recalc['written']:,} written): worker CPU per member / raw parallel Scan's",
            f"**{recalc['worker_cpu_ratio']:.2f}x** ({per['recalculation']['worker_ms']:.3f} / "
            f"{per['raw_scan']['worker_ms']:.3f} ms)",
            "at most 1.5x",
        ),
        (
            "(c) the same job run again (nothing left to write: read, decode, evaluate): worker "
            "CPU per member / raw parallel Scan's",
            f"{recalc['rerun_worker_cpu_ratio']:.2f}x ({per['rerun']['worker_ms']:.3f} / "
            f"{per['rerun_raw_scan']['worker_ms']:.3f} ms)",
            "",
        ),
        (
            "(c) CPU seconds, worker (bench process) / server (DynamoDB Local): raw Scan; "
            "recalculation; raw Scan; re-run; raw Scan",
            "; ".join(
                f"{phase['bench_process_cpu_seconds']:.2f} / "
                f"{phase['dynamodb_local_cpu_seconds']:.2f}"
                for phase in recalc["cpu"].values()
            ),
            "",
        ),
        (
            "(c) server CPU per member, recalculation / raw Scan (DynamoDB Local, apart)",
            f"{recalc['server_cpu_ratio']:.2f}x ({per['recalculation']['server_ms']:.3f} / "
            f"{per['raw_scan']['server_ms']:.3f} ms)",
            "",
        ),
        (
            "(c) write requests per changed member (BatchExecuteStatement requests / members "
            "written)",
            f"**{requests['per_changed_member']:.3f}** ({requests['batch_requests']:,} / "
            f"{recalc['written']:,}; plus {requests['checkpoint_update_items']} checkpoints)",
            "at most 1",
        ),
        (
            "(c) write units of the tier writes (computed from item sizes), per changed member",
            f"{recalc['tier_write_units_computed']:,.0f} "
            f"({recalc['tier_write_units_per_changed_member']:.2f})",
            "",
        ),
        (
            "(c) members/s per segment, recalculation / raw parallel Scan (wall clock, noisy)",
            f"{recalc['ratio']:.2f} ({recalc_rate:,.0f} / {raw_rate:,.0f}); re-run "
            f"{recalc['rerun_ratio']:.2f} ({rerun_rate:,.0f} / {rerun_raw:,.0f})",
            "",
        ),
        (
            "`evaluate()` per member, one thread: tier holder / no tier",
            f"{cost['tier_holder_us']:,.0f} µs / {cost['no_tier_us']:,.0f} µs",
            "",
        ),
    ]
    lines = [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append("")
    lines.append(
        f"`python -m bench.tiers`, {results['date']}, DynamoDB Local in memory, 2 cores, "
        f"{results['total_seconds']:.0f} s in all (seeding {results['seed_seconds']:.0f} s)."
    )
    return "\n".join(lines)


def main() -> None:
    results = run()
    out = ROOT / "bench" / "results" / "tiers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
