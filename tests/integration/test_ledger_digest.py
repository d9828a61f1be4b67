"""The ledger's daily digest on DynamoDB Local (docs/audit.md): orders of two days in both
programs, projected by ``event_publisher`` from the table's stream, digested by
``ledger_digest`` and published by the outbox; a re-run changes nothing; ``loyalty audit
verify`` passes on the engine's table and names what was changed behind its back (an entry's
points, a deleted or inserted entry, a digest's link to the day before)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra import audit, cli
from shared import composition
from shared.domain.digest import (
    DAY_KEY,
    HASH_KEY,
    ORDER_KEY,
    digest_day_key,
    entry_hash,
    entry_order_key,
)
from shared.domain.keys import LEDGER_SK_PREFIX
from tests.helpers import FakeContext, load_function, order_completed, order_reversed
from tests.integration.streams import RecordingPublisher, StreamReader

DAY_ONE = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY_TWO = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PROGRAMS = ("cart-star", "customer-rewards")


def _project(apps: dict[str, ModuleType], stream: StreamReader, at: datetime) -> int:
    """Hand the stream's new records to event_publisher as committed at ``at``."""
    records = stream.read()
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = at.timestamp()
    response = apps["event_publisher"].lambda_handler(
        {"Records": records}, FakeContext(function_name="event_publisher")
    )
    assert response == {"batchItemFailures": []}, response
    return len(records)


def _digest(apps: dict[str, ModuleType], at: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = apps["ledger_digest"].lambda_handler(
        {"time": at, **extra}, FakeContext(function_name="ledger_digest")
    )
    return result


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    names = ("order_ingestion", "event_publisher", "ledger_digest")
    yield {name: load_function(name) for name in names}
    composition.reset()


@pytest.fixture
def recorder(apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    kept = RecordingPublisher()
    monkeypatch.setattr(apps["event_publisher"], "publisher", lambda: kept)
    return kept


@pytest.fixture
def digested(
    apps: dict[str, ModuleType], table_name: str, recorder: RecordingPublisher
) -> StreamReader:
    """Two days of orders in both programs, projected, and both days digested."""
    stream = StreamReader(table_name)
    ingest = apps["order_ingestion"].lambda_handler
    for index in range(3):
        ingest(
            order_completed(
                order_id=f"o-{index}",
                member_id=f"s-{index % 2}",
                customer_id=f"c-{index % 2}",
                completed_at="2026-11-23T10:00:00+00:00",
            ),
            FakeContext(),
        )
    _project(apps, stream, DAY_ONE)
    ingest(
        order_completed(
            order_id="o-9",
            member_id="s-1",
            customer_id="c-1",
            completed_at="2026-11-24T09:00:00+00:00",
            time="2026-11-24T10:00:00Z",
        ),
        FakeContext(),
    )
    ingest(
        order_reversed(
            order_id="o-0",
            member_id="s-0",
            occurred_at="2026-11-24T11:00:00+00:00",
            time="2026-11-24T11:00:00Z",
        ),
        FakeContext(),
    )
    _project(apps, stream, DAY_TWO)
    _digest(apps, "2026-11-24T00:30:00Z")
    _digest(apps, "2026-11-25T00:30:00Z")
    _project(apps, stream, DAY_TWO)  # the digest items' insertions: the outbox publishes them
    return stream


def _ledger_items(table_name: str, program: str, day: str) -> list[dict[str, Any]]:
    response = boto3.client("dynamodb").query(
        TableName=table_name,
        IndexName="ByLedgerDay",
        KeyConditionExpression="ledgerDay = :d",
        ExpressionAttributeValues={":d": {"S": f"P#{program}#D#{day}"}},
    )
    return list(response["Items"])


def _digest_items(table_name: str) -> list[dict[str, Any]]:
    items = []
    for program in PROGRAMS:
        response = boto3.client("dynamodb").query(
            TableName=table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"P#{program}#DIGEST"}},
        )
        items.extend(response["Items"])
    return items


def _verify(table_name: str, *extra: str) -> int:
    return cli.main(["audit", "verify", "--table", table_name, "--quiet", *extra])


def test_each_day_is_digested_once_chained_and_published(
    apps: dict[str, ModuleType],
    table_name: str,
    digested: StreamReader,
    recorder: RecordingPublisher,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = recorder.of("LedgerDigestPublished")
    by_day = {(e["programId"], e["day"]): e for e in events}
    assert set(by_day) == {(p, d) for p in PROGRAMS for d in ("2026-11-23", "2026-11-24")}
    # Day one: 3 shopper credits, 3 customer credits; day two: 1 credit each, 1 reversal.
    assert by_day["cart-star", "2026-11-23"]["entryCount"] == 3
    assert by_day["customer-rewards", "2026-11-23"]["entryCount"] == 3
    assert by_day["cart-star", "2026-11-24"]["entryCount"] == 2
    for program in PROGRAMS:
        first, second = by_day[program, "2026-11-23"], by_day[program, "2026-11-24"]
        assert first["previousDigest"] == "0" * 64
        assert second["previousDigest"] == first["digest"]
        assert first["algorithm"] == "sha256-chain/v1" and first["reason"] == "daily_digest"
        assert first["occurredAt"].startswith("2026-11-24T00:30:00")
        assert len(first["eventId"]) == 32
    assert (
        by_day["cart-star", "2026-11-23"]["digest"]
        != by_day["customer-rewards", "2026-11-23"]["digest"]
    )

    # Re-runs, for either day, change nothing and publish nothing.
    before = _digest_items(table_name)
    again = _digest(apps, "2026-11-25T06:00:00Z")
    assert {d["status"] for d in again["days"]} == {"unchanged"}
    named = _digest(apps, "2026-11-25T06:00:00Z", day="2026-11-23")
    assert [d["status"] for d in named["days"]] == ["unchanged", "unchanged"]
    assert _digest_items(table_name) == before
    assert digested.read() == []  # nothing written: nothing for the outbox to publish

    assert _verify(table_name) == 0
    assert "4 days, 10 entries verified" in capsys.readouterr().out


def test_a_changed_entry_is_named_by_day_and_key(
    apps: dict[str, ModuleType], table_name: str, digested: StreamReader, capsys: Any
) -> None:
    item = _ledger_items(table_name, "cart-star", "2026-11-23")[1]
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET points = :p",
        ExpressionAttributeValues={":p": {"N": "1000"}},
    )
    capsys.readouterr()
    assert _verify(table_name, "--program", "cart-star") == 1
    out = capsys.readouterr().out
    entry = f"{item['pk']['S']}|{item['sk']['S']}"
    assert "cart-star 2026-11-23: entry changed after it was recorded" in out
    assert f"[{entry}]" in out
    assert "cart-star 2026-11-23: the entries give digest" in out
    assert "2026-11-24" not in out  # the next day and the chain still hold
    # The other program, and a range without that day, pass.
    assert _verify(table_name, "--program", "customer-rewards") == 0
    assert _verify(table_name, "--from", "2026-11-24", "--to", "2026-11-24") == 0


def test_an_entry_changed_with_its_hash_is_still_caught_by_the_digest(
    apps: dict[str, ModuleType], table_name: str, digested: StreamReader, capsys: Any
) -> None:
    item = _ledger_items(table_name, "customer-rewards", "2026-11-24")[0]
    plain = {name: next(iter(value.values())) for name, value in item.items()}
    plain["points"] = int(plain["points"]) + 1
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET points = :p, entryHash = :h",
        ExpressionAttributeValues={
            ":p": {"N": str(plain["points"])},
            ":h": {"S": entry_hash(plain)},
        },
    )
    capsys.readouterr()
    assert _verify(table_name, "--json") == 1
    differences = json.loads(capsys.readouterr().out)["differences"]
    # Its own hash agrees now, but the digest's checkpoint for it does not: still named.
    entry = f"{item['pk']['S']}|{item['sk']['S']}"
    assert [(d["program_id"], d["day"], d["entry"]) for d in differences] == [
        ("customer-rewards", "2026-11-24", entry),
        ("customer-rewards", "2026-11-24", None),
    ]
    assert differences[0]["what"] == "entry differs from the one digested"
    assert "the entries give digest" in differences[1]["what"]


def test_a_deleted_and_an_inserted_entry_are_caught(
    apps: dict[str, ModuleType], table_name: str, digested: StreamReader, capsys: Any
) -> None:
    client = boto3.client("dynamodb")
    gone = _ledger_items(table_name, "cart-star", "2026-11-24")[0]
    client.delete_item(TableName=table_name, Key={"pk": gone["pk"], "sk": gone["sk"]})
    capsys.readouterr()
    assert _verify(table_name) == 1
    out = capsys.readouterr().out
    assert "cart-star 2026-11-24: 1 entries where the digest counted 2" in out
    gone_key = f"{gone['pk']['S']}|{gone['sk']['S']}"
    assert (
        f"cart-star 2026-11-24: entry in the digest is no longer in the day's ledger [{gone_key}]"
        in out
    )

    # An entry inserted as the projector would write it (keys, a valid hash) on day one.
    pk, sk = "P#customer-rewards#M#c-7", f"{LEDGER_SK_PREFIX}2026-11-23T10:00:00+00:00#o-x#credit"
    entry = {
        "pk": pk,
        "sk": sk,
        "memberId": "c-7",
        "orderId": "o-x",
        "kind": "credit",
        "points": 500,
        "ruleVersion": "customer-rewards@1",
        "reason": "OrderCompleted",
        "occurredAt": "2026-11-23T10:00:00+00:00",
        "recordedAt": "2026-11-23T12:00:00.000000+00:00",
    }
    entry[HASH_KEY] = entry_hash(entry)
    entry[DAY_KEY] = digest_day_key("customer-rewards", DAY_ONE.date())
    entry[ORDER_KEY] = entry_order_key(pk, sk)
    client.put_item(
        TableName=table_name,
        Item={
            name: {"N": str(value)} if isinstance(value, int) else {"S": value}
            for name, value in entry.items()
        },
    )
    assert _verify(table_name, "--program", "customer-rewards") == 1
    out = capsys.readouterr().out
    assert "customer-rewards 2026-11-23: 4 entries where the digest counted 3" in out
    assert (
        "customer-rewards 2026-11-23: entry not in the digest (inserted, or recorded after the "
        f"digest was built) [{pk}|{sk}]" in out
    )

    # The daily job, run again for that day, reports it too and rewrites nothing.
    before = _digest_items(table_name)
    with pytest.raises(Exception, match="customer-rewards 2026-11-23"):
        _digest(apps, "2026-11-25T06:00:00Z", day="2026-11-23")
    assert _digest_items(table_name) == before


def test_a_broken_chain_is_caught(
    apps: dict[str, ModuleType], table_name: str, digested: StreamReader, capsys: Any
) -> None:
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": {"S": "P#cart-star#DIGEST"}, "sk": {"S": "D#2026-11-24"}},
        UpdateExpression="SET previousDigest = :p",
        ExpressionAttributeValues={":p": {"S": "f" * 64}},
    )
    capsys.readouterr()
    assert _verify(table_name) == 1
    out = capsys.readouterr().out
    assert "cart-star 2026-11-24: previousDigest ffffffffffffffff..." in out
    assert "the chain is broken" in out
    assert "customer-rewards" not in out.split("verified")[0]


def test_missing_days_are_built_in_order_and_a_gap_is_reported(
    apps: dict[str, ModuleType], table_name: str, digested: StreamReader, capsys: Any
) -> None:
    # Three days without a run: the next run builds them all, each linked to the one before.
    result = _digest(apps, "2026-11-28T00:30:00Z")
    days = [(d["programId"], d["day"], d["status"]) for d in result["days"]]
    assert days == [
        (program, day, "built")
        for program in PROGRAMS
        for day in ("2026-11-25", "2026-11-26", "2026-11-27")
    ]
    assert _verify(table_name, "--from", "2026-11-25") == 0
    # A day before the program's first digest would start a second chain: refused.
    with pytest.raises(ValueError, match="before the first digested day"):
        _digest(apps, "2026-11-28T00:30:00Z", day="2026-11-20")
    boto3.client("dynamodb").delete_item(
        TableName=table_name,
        Key={"pk": {"S": "P#cart-star#DIGEST"}, "sk": {"S": "D#2026-11-26"}},
    )
    capsys.readouterr()
    assert _verify(table_name, "--program", "cart-star") == 1
    assert "no digest for 2026-11-26 to 2026-11-26" in capsys.readouterr().out


def test_bad_arguments_name_the_option(table_name: str, capsys: Any) -> None:
    assert _verify(table_name, "--from", "23/11/2026") == 2
    assert "--from must be a day" in capsys.readouterr().err
    assert _verify(table_name, "--from", "2026-11-24", "--to", "2026-11-23") == 2
    assert "--from is after --to" in capsys.readouterr().err
    assert _verify(table_name, "--program", "nope") == 2
    assert "--program 'nope'" in capsys.readouterr().err


def test_only_the_published_digests_expose_a_consistent_rewrite(
    apps: dict[str, ModuleType],
    table_name: str,
    digested: StreamReader,
    recorder: RecordingPublisher,
    tmp_path: Path,
    capsys: Any,
) -> None:
    published = tmp_path / "events.jsonl"
    # As the local stack logs them (.local/events.jsonl): the EventBridge event under "event".
    lines = [
        json.dumps({"bus": "loyalty-dev", "event": {"detail-type": kind, "detail": detail}})
        for kind, detail in ((e.detail_type, e.detail) for e in recorder.events)
    ]
    published.write_text("\n".join(["not json", *lines]) + "\n")
    assert _verify(table_name, "--published", str(published)) == 0

    # Someone who can write the table changes an entry of the last day, with its hash, and
    # rebuilds that day's digest: the table agrees with itself again.
    client = boto3.client("dynamodb")
    item = _ledger_items(table_name, "cart-star", "2026-11-24")[0]
    plain = {name: next(iter(value.values())) for name, value in item.items()}
    plain["points"] = int(plain["points"]) * 10
    client.update_item(
        TableName=table_name,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET points = :p, entryHash = :h",
        ExpressionAttributeValues={
            ":p": {"N": str(plain["points"])},
            ":h": {"S": entry_hash(plain)},
        },
    )
    client.delete_item(
        TableName=table_name,
        Key={"pk": {"S": "P#cart-star#DIGEST"}, "sk": {"S": "D#2026-11-24"}},
    )
    _digest(apps, "2026-11-25T06:00:00Z", day="2026-11-24")
    assert _verify(table_name) == 0
    capsys.readouterr()
    assert _verify(table_name, "--published", str(published)) == 1
    out = capsys.readouterr().out
    assert "cart-star 2026-11-24: stored digest" in out and "(the digest item was rewritten)" in out
    # A deleted last day leaves no gap in the chain: only the published copy shows it.
    client.delete_item(
        TableName=table_name,
        Key={"pk": {"S": "P#customer-rewards#DIGEST"}, "sk": {"S": "D#2026-11-24"}},
    )
    assert _verify(table_name, "--program", "customer-rewards") == 0
    capsys.readouterr()
    arguments = ("--program", "customer-rewards", "--published", str(published))
    assert _verify(table_name, *arguments) == 1
    assert (
        "customer-rewards 2026-11-24: published digest has no digest item (deleted)"
        in capsys.readouterr().out
    )
    assert _verify(table_name, *arguments, "--to", "2026-11-23") == 0
    assert _verify(table_name, "--published", str(tmp_path / "missing.jsonl")) == 2


def test_an_entry_recorded_after_its_days_digest_is_reported_when_written(
    apps: dict[str, ModuleType],
    table_name: str,
    digested: StreamReader,
    caplog: pytest.LogCaptureFixture,
    capsys: Any,
) -> None:
    # A change committed on day two whose record reaches the publisher only after day two's
    # digest (the publisher was behind across midnight): the entry is written, and reported.
    apps["order_ingestion"].lambda_handler(
        order_completed(order_id="o-late", member_id="s-0", customer_id="c-0"), FakeContext()
    )
    caplog.clear()
    _project(apps, digested, DAY_TWO)
    late = [
        r
        for r in caplog.records
        if r.getMessage() == "ledger entries recorded after their day's digest"
    ]
    assert len(late) == 2  # the shopper's entry and the customer's, one record each
    assert {r.__dict__.get("program_id") for r in late} == set(PROGRAMS)
    assert {r.__dict__.get("day") for r in late} == {"2026-11-24"}
    assert len(_ledger_items(table_name, "cart-star", "2026-11-24")) == 3
    capsys.readouterr()
    assert _verify(table_name, "--program", "cart-star") == 1
    assert "cart-star 2026-11-24: entry not in the digest" in capsys.readouterr().out

    # Entries of a day not digested yet (today's) read nothing and report nothing.
    apps["order_ingestion"].lambda_handler(
        order_completed(order_id="o-now", member_id="s-0", customer_id="c-0"), FakeContext()
    )
    caplog.clear()
    meter = composition.meter()
    meter.reset()
    _project(apps, digested, datetime.now(UTC))
    assert meter.by_operation.get("GetItem", 0) == 0
    assert not [r for r in caplog.records if "after their day's digest" in r.getMessage()]


def test_verify_prints_where_it_is_on_stderr(
    apps: dict[str, ModuleType],
    table_name: str,
    digested: StreamReader,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    monkeypatch.setattr(audit, "PROGRESS_SECONDS", 0.0)
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--table", table_name, "--program", "cart-star"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines and all(line.startswith("cart-star: verified ") for line in lines)
    assert "2 days, 5 entries, 0 differences" in lines[-1]
    assert "cart-star" not in captured.out  # progress goes to stderr only
