"""``loyalty stats check | rebuild``: the live statistics' counters against the items.

The counters start counting when ``event_publisher`` first counts (docs/stats.md): a table with
members from before, or a stream batch that was lost (trimmed before its replay), leaves them
off. ``check`` recounts, in one Scan, what the items hold now (members by tier, eligibility,
points pending, available and held, wallets, confirmed redemptions by period, cashback
credited by month) and prints each difference with the counters (exit 1 when any); ``rebuild``
then ``ADD``s each difference to the counter item of shard 0, so that the shards sum to the
recount (the other shards are left as they are: only sums are read).

At-risk notices are not recounted: a notice is a moment, not a state the items keep.

Run ``rebuild`` while the stream is quiet (no writes, ``event_publisher``'s iterator age at
zero): a change committed between the Scan and the corrections would be counted by the stream
and by the correction. Run ``check`` again afterwards.

::

    loyalty stats check [--table NAME] [--program ID] [--json]
    loyalty stats rebuild [--table NAME] [--program ID]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from shared.dal.dynamodb import Update, av, from_item
from shared.domain.stats import (
    AT_RISK,
    MEMBERS,
    NOW,
    PERIOD_PREFIX,
    SHARDS,
    stats_deltas,
    stats_pk,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Counts = dict[tuple[str, str], dict[str, int]]
"""(program id, bucket) -> attribute -> value, summed over the shards."""


def _scan(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        for raw in page["Items"]:
            yield from_item(raw)
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def tally(items: Iterator[dict[str, Any]]) -> tuple[Counts, Counts]:
    """(recounted from the items, kept by the counters), both summed over the shards. The
    recount is each item's contribution as if it had just been created."""
    recount: Counts = defaultdict(lambda: defaultdict(int))
    counters: Counts = defaultdict(lambda: defaultdict(int))
    at = datetime.now(UTC)
    for item in items:
        pk = str(item.get("pk", ""))
        parts = pk.split("#")
        if len(parts) == 4 and parts[0] == "P" and parts[2] == "STATS":
            for name, value in item.items():
                if name not in {"pk", "sk"} and not isinstance(value, str):
                    counters[(parts[1], str(item["sk"]))][name] += int(value)
            continue
        for delta in stats_deltas(None, item, at):
            if delta.bucket.startswith(PERIOD_PREFIX) and AT_RISK in delta.counts:
                continue
            for name, value in delta.counts.items():
                recount[(delta.program_id, delta.bucket)][name] += value
    return recount, counters


def differences(
    recount: Counts, counters: Counts, program_id: str | None = None
) -> list[tuple[str, str, str, int, int]]:
    """(program, bucket, attribute, counted, recounted) where they differ."""
    found = []
    for key in sorted(set(recount) | set(counters)):
        program, bucket = key
        if program_id is not None and program != program_id:
            continue
        names = set(recount.get(key, {})) | set(counters.get(key, {}))
        for name in sorted(names):
            if name == AT_RISK:
                continue
            counted = counters.get(key, {}).get(name, 0)
            recounted = recount.get(key, {}).get(name, 0)
            if counted != recounted:
                found.append((program, bucket, name, counted, recounted))
    return found


def rebuild(
    client: DynamoDBClient, table: str, found: Sequence[tuple[str, str, str, int, int]]
) -> int:
    """ADD each difference to shard 0's counter item of its bucket; returns the items written."""
    corrections: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for program, bucket, name, counted, recounted in found:
        corrections[(program, bucket)][name] = recounted - counted
    for (program, bucket), counts in corrections.items():
        update = Update()
        for name, value in counts.items():
            update.add(name, value)
        key = {"pk": av(stats_pk(program, 0)), "sk": av(bucket)}
        client.update_item(**update.request(table, key))
    return len(corrections)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty stats", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("check", "rebuild"))
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="the table")
    parser.add_argument("--program", help="one program's counters only")
    parser.add_argument("--json", action="store_true", help="differences as JSON lines")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("--table (or TABLE_NAME) is required")
    client = boto3.client("dynamodb")
    recount, counters = tally(_scan(client, args.table))
    found = differences(recount, counters, args.program)
    for program, bucket, name, counted, recounted in found:
        if args.json:
            line = {"program": program, "bucket": bucket, "counter": name}
            print(json.dumps({**line, "counted": counted, "recounted": recounted}))
        else:
            print(f"{program} {bucket} {name}: counted {counted}, the items say {recounted}")
    members = sum(v.get(MEMBERS, 0) for (_, bucket), v in recount.items() if bucket == NOW)
    print(
        f"{members} members recounted over {SHARDS} shards; {len(found)} differences",
        file=sys.stderr,
    )
    if args.action == "rebuild" and found:
        written = rebuild(client, args.table, found)
        print(f"rebuilt: {written} counter items corrected", file=sys.stderr)
        return 0
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
