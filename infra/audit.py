"""Recompute every member from their items and report what the member item holds otherwise
(``loyalty audit invariants``); ``loyalty audit verify`` checks the ledger's daily digests
(``shared.logic.digest``, docs/audit.md).

The member item keeps running totals (points, balances, counters) that every write changes with
an ``ADD`` in the same transaction as the item it derives from (an order's credit, a hold, a
redemption, a purchase). The items themselves keep what happened (``docs/data-model.md``), so the
totals can be recomputed from them: a difference is an effect applied twice, applied to one item
and not the other, or lost. The crash-injection test (``tests/integration/test_crash_injection.py``)
and the load benchmark (``bench/load.py``) use this auditor after their runs.

What it checks, per member partition (``P#{programId}#M#{memberId}``):

- shopper programs: ``lifetimePoints`` (credits plus reversals of the order items, plus
  administrators' adjustments, whose records name the buckets they moved),
  ``ordersCompleted`` (orders still credited, an event for a whole batch counting its
  ``batchSize``), each day block or period bucket present on the
  member item (its orders' points on their days; blocks absent were pruned, which only happens
  before the window), ``walletBalance`` (cashback of the purchases still credited), each cashback
  month counter (cashback credited that month, refunds included: they do not give room back),
  and each quota item (``used`` and the booked dates are the confirmed redemptions under it);
- customer programs: ``lifetimePoints`` and the year points ``yp{YYYY}`` (points minus clawed
  back, by the order's year), ``ordersCompleted``, ``held`` (holds still held), ``pend`` (the
  pending lots), the lots against the balances (``sum(lots) - used = bal + held + pend``) and the
  balances against the orders (credited - clawed + returned - spent, plus bonuses, minus points
  given to causes, plus administrators' adjustments). Points that expired leave
  no trace on an order: the last check is skipped for a member whose settlement expired some
  (``lastDue.expired``), the others still hold.

Nothing here writes; the reads are strongly consistent Queries of one partition, or one Scan.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from shared.dal.dynamodb import from_item
from shared.domain.campaigns import REWARDED
from shared.domain.customer import (
    AVAILABLE_PREFIX,
    PENDING_PREFIX,
    available_lots,
    expiring_lots,
    pending_lots,
    year_attr,
)
from shared.domain.errors import ProgramConfigError
from shared.domain.keys import (
    ADJUSTMENT_SK_PREFIX,
    CAMPAIGN_SK_PREFIX,
    DONATION_SK_PREFIX,
    FUEL_SK_PREFIX,
    MEMBER_SK,
    ORDER_SK_PREFIX,
    QUOTA_SK_PREFIX,
    REDEMPTION_SK_PREFIX,
    REWARD_SK_PREFIX,
    campaign_count_sk,
    member_pk,
)
from shared.domain.program import MemberRole, Program
from shared.domain.timeutil import local_day, parse_instant
from shared.domain.window import bucket_increment
from shared.programs import load_program

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PROGRESS_SECONDS = 2.0
"""How often ``loyalty audit invariants`` prints where it is."""


@dataclass(frozen=True)
class Difference:
    """One total of one member that its items do not account for."""

    program_id: str
    member_id: str
    attribute: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        return (
            f"{self.program_id}/{self.member_id}: {self.attribute} is {self.found!r}, "
            f"its items say {self.expected!r}"
        )


def _number(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _amount(value: Any) -> Decimal:
    return _number(value.get("amount")) if isinstance(value, Mapping) else _number(value)


class _Report:
    def __init__(self, program_id: str, member_id: str, member: Mapping[str, Any]) -> None:
        self.program_id, self.member_id, self.member = program_id, member_id, member
        self.differences: list[Difference] = []

    def check(self, attribute: str, expected: Any, found: Any = None) -> None:
        if found is None:
            found = _number(self.member.get(attribute))
        if _number(expected) != _number(found):
            self.differences.append(
                Difference(self.program_id, self.member_id, attribute, expected, found)
            )


def _orders(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [item for item in items if str(item["sk"]).startswith(ORDER_SK_PREFIX)]


def _adjustments(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Administrators' points adjustments (docs/admin.md): each record is its effect."""
    return [item for item in items if str(item["sk"]).startswith(ADJUSTMENT_SK_PREFIX)]


def _adjusted_buckets(items: Iterable[Mapping[str, Any]], buckets: dict[str, int]) -> int:
    """Add a shopper's adjustments to ``buckets`` (by member attribute); their points."""
    points = 0
    for adjustment in _adjustments(items):
        points += int(adjustment.get("points") or 0)
        for bucket, change in adjustment.get("buckets") or []:
            name, amount = bucket_increment(str(bucket), int(change))
            buckets[name] += amount
    return points


def _audit_shopper(report: _Report, items: list[Mapping[str, Any]]) -> None:
    member = report.member
    lifetime = Decimal(0)
    completed = 0
    buckets: dict[str, int] = defaultdict(int)
    for order in _orders(items):
        status = order.get("status")
        if status not in ("credited", "reversed"):
            continue
        points = int(order.get("points") or 0)
        reversal = order.get("reversal")
        reversed_points = int(reversal["points"]) if isinstance(reversal, Mapping) else 0
        lifetime += points + reversed_points
        # An order item for a whole batch counts its orders.
        completed += int(order.get("batchSize") or 1) * (status == "credited")
        bucket = order.get("bucket")
        if isinstance(bucket, str):
            for change in (points, reversed_points):
                name, amount = bucket_increment(bucket, change)
                buckets[name] += amount
    lifetime += _adjusted_buckets(items, buckets)
    report.check("lifetimePoints", lifetime)
    report.check("ordersCompleted", completed)
    for name, expected in sorted(buckets.items()):
        if name in member:  # absent: pruned (only blocks before the window are)
            report.check(name, expected)

    purchases = [item for item in items if str(item["sk"]).startswith(FUEL_SK_PREFIX)]
    wallet = sum(
        (_amount(p.get("cashback")) for p in purchases if p.get("status") == "credited"),
        Decimal(0),
    )
    if purchases or "walletBalance" in member:
        # What checkout holds took of it (customer orders, docs/customer-program.md) is held
        # or spent: the three together are the cashback credited.
        at_checkout = _number(member.get("walletHeld")) + _number(member.get("walletSpent"))
        report.check("walletBalance", wallet - at_checkout)
    by_month: dict[str, Decimal] = defaultdict(Decimal)
    for purchase in purchases:
        if purchase.get("status") in ("credited", "refunded") and purchase.get("month"):
            by_month[str(purchase["month"])] += _amount(purchase.get("cashback"))

    redemptions = [item for item in items if str(item["sk"]).startswith(REDEMPTION_SK_PREFIX)]
    for quota in (item for item in items if str(item["sk"]).startswith(QUOTA_SK_PREFIX)):
        sk = str(quota["sk"])
        if "credited" in quota:  # the cashback's month counter, keyed as a quota
            report.check(
                sk + " credited", by_month.get(str(quota.get("period")), 0), quota["credited"]
            )
            continue
        confirmed = [
            r for r in redemptions if r.get("quotaSk") == sk and r.get("status") == "confirmed"
        ]
        report.check(sk + " used", len(confirmed), quota.get("used"))
        slots = {name: value for name, value in quota.items() if name.startswith("s:")}
        expected_slots = {
            str(r["slot"]): str(r["redemptionId"]) for r in confirmed if r.get("slot")
        }
        if slots != expected_slots:
            report.differences.append(
                Difference(
                    report.program_id, report.member_id, sk + " dates", expected_slots, slots
                )
            )


def _audit_customer(report: _Report, program: Program, items: list[Mapping[str, Any]]) -> None:
    member = report.member
    lifetime = clawed_all = returned_all = spent = credited_points = Decimal(0)
    completed = 0
    years: dict[str, Decimal] = defaultdict(Decimal)
    held = Decimal(0)
    for order in _orders(items):
        hold = order.get("hold")
        if isinstance(hold, Mapping):
            if hold.get("state") == "held":
                held += _number(hold.get("points"))
            elif hold.get("state") == "captured":
                spent += _number(hold.get("points"))
        if order.get("status") not in ("credited", "reversed"):
            continue
        points, clawed = _number(order.get("points")), _number(order.get("clawed"))
        completed += 1
        lifetime += points - clawed
        credited_points += points
        clawed_all += clawed
        returned_all += _number(order.get("returned"))
        year = local_day(parse_instant(str(order["completedAt"])), program.zone).year
        years[year_attr(year)] += points - clawed
    report.check("lifetimePoints", lifetime)
    report.check("ordersCompleted", completed)
    for name in sorted(set(years) | {n for n in member if n.startswith("yp")}):
        report.check(name, years.get(name, 0))
    report.check("held", held)
    lots_pending = sum(points for _, points in pending_lots(member))
    lots_available = sum(points for _, points in available_lots(member)) + sum(
        points for _, points in expiring_lots(member)
    )
    report.check("pend", lots_pending)
    balances = (
        _number(member.get("bal")) + _number(member.get("held")) + _number(member.get("pend"))
    )
    report.check(
        f"{PENDING_PREFIX}*+{AVAILABLE_PREFIX}*-used",
        balances,
        lots_pending + lots_available - _number(member.get("used")),
    )
    bonuses = _audit_campaigns(report, items)
    # Points given to causes left the balance (docs/campaigns.md, "Giving").
    donated = sum(
        (
            _number(i.get("points"))
            for i in items
            if str(i["sk"]).startswith(DONATION_SK_PREFIX) and i.get("state") == "donated"
        ),
        Decimal(0),
    )
    # Administrators' adjustments add a lot or take available points (docs/admin.md).
    adjusted = sum((_number(i.get("points")) for i in _adjustments(items)), Decimal(0))
    last_due = member.get("lastDue")
    if not (isinstance(last_due, Mapping) and last_due.get("expired")):
        report.check(
            "bal+held+pend",
            credited_points - clawed_all + returned_all - spent + bonuses - donated + adjusted,
            balances,
        )


def _audit_campaigns(report: _Report, items: list[Mapping[str, Any]]) -> Decimal:
    """Each campaign count of a period is the bonuses still credited in it; returns the points
    of those bonuses (part of the balances)."""
    rewards = [i for i in items if str(i["sk"]).startswith(REWARD_SK_PREFIX)]
    credited = [r for r in rewards if r.get("state") == REWARDED]
    by_period: dict[str, int] = defaultdict(int)
    for reward in credited:
        by_period[campaign_count_sk(str(reward["campaignId"]), str(reward["period"]))] += 1
    for item in items:
        sk = str(item["sk"])
        if sk.startswith(CAMPAIGN_SK_PREFIX):
            report.check(sk + " n", by_period.get(sk, 0), item.get("n"))
    return sum((_number(r.get("points")) for r in credited), Decimal(0))


def audit_member(
    program_id: str, member_id: str, items: Iterable[Mapping[str, Any]]
) -> list[Difference]:
    """The differences between a member item and the member's other items (plain values, as
    ``from_item`` decodes them). A partition without a member item has nothing to differ from
    unless an item in it credited points."""
    listed = list(items)
    member = next((item for item in listed if item["sk"] == MEMBER_SK), {})
    report = _Report(program_id, member_id, member)
    program = load_program(program_id)
    if program.members is MemberRole.CUSTOMER:
        _audit_customer(report, program, listed)
    else:
        _audit_shopper(report, listed)
    return report.differences


def _split_pk(pk: str) -> tuple[str, str] | None:
    """(program id, member id) of a member partition key, None for the table's other keys."""
    if not pk.startswith("P#") or "#M#" not in pk:
        return None
    program_id, member_id = pk[2:].split("#M#", 1)
    return program_id, member_id


def member_items(
    client: DynamoDBClient, table: str, program_id: str, member_id: str
) -> list[dict[str, Any]]:
    """Every item of the member's partition, strongly consistent."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": member_pk(program_id, member_id)}},
        "ConsistentRead": True,
    }
    while True:
        response = client.query(**request)
        items.extend(from_item(item) for item in response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def audit_members(
    client: DynamoDBClient, table: str, members: Iterable[tuple[str, str]]
) -> list[Difference]:
    """Audit these (program id, member id): one Query each."""
    differences: list[Difference] = []
    for program_id, member_id in members:
        items = member_items(client, table, program_id, member_id)
        differences.extend(audit_member(program_id, member_id, items))
    return differences


@dataclass
class AuditRun:
    """What an audit of a whole table found."""

    members: int = 0
    differences: list[Difference] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """Partitions of programs this code does not know (by program id): not audited."""


def _segment_partitions(
    client: DynamoDBClient, table: str, segment: int, segments: int
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The member partitions of one Scan segment, each whole: a Scan returns the items of one
    partition key together (in sort key order), so a partition ends where the key changes."""
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if segments > 1:
        request.update(Segment=segment, TotalSegments=segments)
    pk, items = "", list[dict[str, Any]]()
    while True:
        response = client.scan(**request)
        for raw in response["Items"]:
            item = from_item(raw)
            if item["pk"] != pk:
                if items:
                    yield pk, items
                pk, items = str(item["pk"]), []
            items.append(item)
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if items:
        yield pk, items


def audit_scan(
    client: DynamoDBClient,
    table: str,
    segments: int = 1,
    program_id: str | None = None,
    progress: Callable[[AuditRun], None] | None = None,
) -> AuditRun:
    """Audit every member partition of the table in one parallel Scan (``segments`` threads),
    holding one partition per thread in memory; ``program_id``: that program's members only.
    ``progress`` is called after each member (from the segments' threads, under a lock)."""
    run = AuditRun()
    lock = threading.Lock()
    programs: dict[str, bool] = {}

    def known(program: str) -> bool:
        if program not in programs:
            try:
                load_program(program)
                programs[program] = True
            except ProgramConfigError:
                programs[program] = False
        return programs[program]

    def work(segment: int) -> None:
        for pk, items in _segment_partitions(client, table, segment, segments):
            key = _split_pk(pk)
            if key is None or (program_id is not None and key[0] != program_id):
                continue
            if not known(key[0]):
                with lock:
                    run.skipped[key[0]] = run.skipped.get(key[0], 0) + 1
                continue
            found = audit_member(key[0], key[1], items)
            with lock:
                run.members += 1
                run.differences.extend(found)
                if progress is not None:
                    progress(run)

    with ThreadPoolExecutor(max_workers=segments) as pool:
        for done in [pool.submit(work, segment) for segment in range(segments)]:
            done.result()
    return run


def audit_table(client: DynamoDBClient, table: str) -> tuple[int, list[Difference]]:
    """Audit every member partition of the table: (members audited, differences)."""
    run = audit_scan(client, table)
    return run.members, run.differences


# -- loyalty audit ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyalty audit", description="Check the members' totals against their items."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    invariants = commands.add_parser(
        "invariants",
        help="recompute every member's totals from their items; exit 1 on any difference",
    )
    invariants.add_argument("--table", default=os.environ.get("TABLE_NAME"))
    invariants.add_argument("--segments", type=int, default=4, help="parallel Scan segments")
    invariants.add_argument("--program", help="audit this program's members only")
    invariants.add_argument(
        "--member", action="append", default=[], help="audit this member only (repeatable)"
    )
    invariants.add_argument("--quiet", action="store_true", help="no progress lines")
    invariants.add_argument("--json", action="store_true", help="print the result as JSON")
    verify = commands.add_parser(
        "verify",
        help="recompute the ledger's daily digests and check their chain; exit 1 on any "
        "difference (docs/audit.md)",
    )
    verify.add_argument("--table", default=os.environ.get("TABLE_NAME"))
    verify.add_argument(
        "--program", action="append", default=[], help="this program only (repeatable)"
    )
    verify.add_argument("--from", dest="first", help="first day (YYYY-MM-DD, UTC), included")
    verify.add_argument("--to", dest="last", help="last day (YYYY-MM-DD, UTC), included")
    verify.add_argument(
        "--published",
        type=Path,
        help="JSON lines of published events (LedgerDigestPublished; the local stack's "
        ".local/events.jsonl, or an export of the bus's archive): the stored digests must be "
        "the published ones",
    )
    verify.add_argument("--quiet", action="store_true", help="no progress lines")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _day_argument(value: str | None, name: str, err: IO[str]) -> tuple[bool, date | None]:
    if value is None:
        return True, None
    try:
        return True, date.fromisoformat(value)
    except ValueError:
        print(f"error: {name} must be a day, YYYY-MM-DD (got {value!r})", file=err)
        return False, None


def published_digests(path: Path) -> dict[str, dict[date, str]]:
    """``LedgerDigestPublished`` digests by program and day, from JSON lines that are each an
    EventBridge event or wrap one under ``event`` (the local stack's log); ``detail`` may be an
    object or a JSON string. Other lines are skipped."""
    found: dict[str, dict[date, str]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event = record.get("event", record) if isinstance(record, dict) else None
        if not isinstance(event, dict) or event.get("detail-type") != "LedgerDigestPublished":
            continue
        detail = event.get("detail")
        if isinstance(detail, str):
            detail = json.loads(detail)
        if isinstance(detail, dict):
            day = date.fromisoformat(str(detail["day"]))
            found[str(detail["programId"])][day] = str(detail["digest"])
    return found


def _verify(args: argparse.Namespace, out: IO[str], err: IO[str], client: Any) -> int:
    """``loyalty audit verify``: 0 when every digest of the range matches its entries and the
    chain holds, 1 on any difference (each printed), 2 on bad arguments."""
    from shared.dal.digest import DigestRepository  # noqa: PLC0415
    from shared.logic.digest import VerifyRun, verify_digests  # noqa: PLC0415
    from shared.programs import program_ids  # noqa: PLC0415

    ok_first, first = _day_argument(args.first, "--from", err)
    ok_last, last = _day_argument(args.last, "--to", err)
    if not (ok_first and ok_last):
        return 2
    if first and last and first > last:
        print("error: --from is after --to", file=err)
        return 2
    shipped = program_ids()
    unknown = [program for program in args.program if program not in shipped]
    if unknown:
        print(f"error: --program {unknown[0]!r} is not a program (shipped: {shipped})", file=err)
        return 2
    published = None
    if args.published is not None:
        if not args.published.is_file():
            print(f"error: --published {args.published} is not a file", file=err)
            return 2
        published = published_digests(args.published)
    store = DigestRepository(args.table, client)
    started = time.monotonic()
    last_print = [started]
    totals = VerifyRun()
    per_program: dict[str, dict[str, int]] = {}
    for program in args.program or list(shipped):

        def progress(run: VerifyRun, program: str = program) -> None:
            now = time.monotonic()
            if not args.quiet and now - last_print[0] >= PROGRESS_SECONDS:
                last_print[0] = now
                print(
                    f"{program}: verified {run.days:,} days, {run.entries:,} entries, "
                    f"{len(run.differences)} differences, {now - started:.0f} s",
                    file=err,
                    flush=True,
                )

        mine = published.get(program, {}) if published is not None else None
        run = verify_digests(program, store, first, last, progress, mine)
        per_program[program] = {"days": run.days, "entries": run.entries}
        totals.days += run.days
        totals.entries += run.entries
        totals.differences.extend(run.differences)
    if args.json:
        body = {
            "programs": per_program,
            "days": totals.days,
            "entries": totals.entries,
            "differences": [msgspec.structs.asdict(found) for found in totals.differences],
            "seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(body), file=out)
    else:
        for difference in totals.differences:
            print(difference, file=out)
        print(
            f"{totals.days:,} days, {totals.entries:,} entries verified in "
            f"{time.monotonic() - started:.1f} s: {len(totals.differences)} differences",
            file=out,
        )
    return 1 if totals.differences else 0


def main(
    argv: Sequence[str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    client: DynamoDBClient | None = None,
) -> int:
    """``loyalty audit invariants``: 0 when every member's totals match their items, 1 when any
    differs (each difference printed), 2 on bad arguments. ``loyalty audit verify``: see
    ``_verify``."""
    out, err = out or sys.stdout, err or sys.stderr
    args = _parser().parse_args(argv)
    if not args.table:
        print("error: --table (or TABLE_NAME) must name the table", file=err)
        return 2
    if args.command == "verify":
        if client is None:
            import boto3  # noqa: PLC0415 (only the command needs a client)

            client = boto3.client("dynamodb")
        return _verify(args, out, err, client)
    if args.segments < 1:
        print("error: --segments must be at least 1", file=err)
        return 2
    if args.member and not args.program:
        print("error: --member needs --program (a member id is per program)", file=err)
        return 2
    if client is None:
        import boto3  # noqa: PLC0415 (only the command needs a client)

        client = boto3.client("dynamodb")
    started = time.monotonic()
    last = [started]

    def progress(run: AuditRun) -> None:
        now = time.monotonic()
        if not args.quiet and now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            print(
                f"audited {run.members:,} members, {len(run.differences)} differences, "
                f"{now - started:.0f} s",
                file=err,
                flush=True,
            )

    if args.member:
        run = AuditRun(members=len(args.member))
        pairs = [(args.program, member) for member in args.member]
        run.differences = audit_members(client, args.table, pairs)
    else:
        run = audit_scan(client, args.table, args.segments, args.program, progress)
    if args.json:
        body = {
            "members": run.members,
            "differences": [difference.__dict__ for difference in run.differences],
            "skipped": run.skipped,
            "seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(body, default=str), file=out)
    else:
        for difference in run.differences:
            print(difference, file=out)
        skipped = ", ".join(f"{program} ({count})" for program, count in run.skipped.items())
        print(
            f"{run.members:,} members audited in {time.monotonic() - started:.1f} s: "
            f"{len(run.differences)} differences"
            + (f"; not audited, unknown programs: {skipped}" if skipped else ""),
            file=out,
        )
    return 1 if run.differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
