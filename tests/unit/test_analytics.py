"""Analytics rows (docs/analytics.md): the flat row of a published event, the Glue table's
columns, the Firehose delivery (refused records sent again, never dropped), and event_publisher
delivering its invocation's rows to Firehose (moto) or to local Parquet files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from samlite.cfn import load_template

from shared import composition
from shared.dal.analytics import AnalyticsDeliveryFailed, FirehoseSink, _chunks
from shared.domain.analytics import COLUMNS, analytics_row
from shared.domain.outbound import OutboundEvent
from shared.domain.timeutil import to_compact_utc
from tests.helpers import FakeContext, load_function
from tests.unit.test_event_publisher import AT, BUS, record

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STREAM = "loyalty-unit-analytics"


def test_a_points_event_becomes_a_flat_row_on_its_utc_day() -> None:
    event = OutboundEvent(
        "PointsEarned",
        {
            "programId": "customer-rewards",
            "memberId": "c-1",
            "orderId": "o-1",
            "points": 80,
            "reason": "order_completed",
            # 23:30 in New York is the next day in UTC: the partition is the UTC day.
            "occurredAt": "2026-11-23T23:30:00-05:00",
        },
    ).with_id("o-1")
    row = analytics_row(event, PUBLISHED)
    assert row["event_id"] == event.detail["eventId"]
    assert (row["detail_type"], row["program_id"], row["member_id"], row["order_id"]) == (
        "PointsEarned",
        "customer-rewards",
        "c-1",
        "o-1",
    )
    assert (row["points"], row["amount"], row["tier"]) == (80, None, None)
    assert row["day"] == "2026-11-24"
    assert row["occurred_at"] == "2026-11-24T04:30:00.000000+00:00"
    assert row["published_at"] == "2026-12-01T09:00:00.000000+00:00"
    assert json.loads(row["detail"])["orderId"] == "o-1"
    assert set(row) == {name for name, _ in COLUMNS} | {"day"}


def test_typed_columns_of_a_tier_change_a_cashback_and_an_event_without_an_instant() -> None:
    tier = analytics_row(
        OutboundEvent(
            "MemberTierChanged",
            {"memberId": "s-1", "from": "gold", "to": "platinum", "effectiveAt": AT.isoformat()},
        ),
        PUBLISHED,
    )
    assert (tier["tier"], tier["day"]) == ("platinum", "2026-11-30")
    cashback = analytics_row(
        OutboundEvent(
            "CashbackCredited",
            {"memberId": "s-2", "cashback": {"amount": "1.365", "currency": "USD"}, "tier": "gold"},
        ),
        PUBLISHED,
    )
    # No instant of its own: the publication's day.
    assert (cashback["amount"], cashback["tier"], cashback["day"]) == (
        Decimal("1.36"),
        "gold",
        "2026-12-01",
    )


def test_the_glue_table_has_the_rows_columns_and_the_day_partition() -> None:
    template = load_template(ROOT / "template.yaml")
    table = template["Resources"]["AnalyticsEventsTable"]["Properties"]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == list(COLUMNS)
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    stream = template["Resources"]["AnalyticsDeliveryStream"]["Properties"]
    assert "!{partitionKeyFromQuery:day}" in stream["ExtendedS3DestinationConfiguration"]["Prefix"]


class FakeFirehose:
    """Refuses the records whose data holds a word in ``refuse`` for the first ``times`` sends."""

    def __init__(self, refuse: str, times: int) -> None:
        self.refuse, self.times = refuse, times
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[Any]) -> Any:
        data = [r["Data"] for r in Records]
        self.calls.append(data)
        refusing = len(self.calls) <= self.times
        answers = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}
            if refusing and self.refuse.encode() in d
            else {"RecordId": "r"}
            for d in data
        ]
        return {
            "FailedPutCount": sum(1 for a in answers if "ErrorCode" in a),
            "RequestResponses": answers,
        }


def _rows(*members: str) -> list[dict[str, Any]]:
    return [
        analytics_row(OutboundEvent("PointsEarned", {"memberId": m}).with_id(m), PUBLISHED)
        for m in members
    ]


def test_firehose_refused_records_alone_are_sent_again() -> None:
    client = FakeFirehose(refuse="late", times=2)
    waits: list[float] = []
    sink = FirehoseSink(STREAM, client, sleep=waits.append)  # type: ignore[arg-type]
    assert sink.deliver(_rows("a", "late-1", "b", "late-2")) == 3
    assert [len(call) for call in client.calls] == [4, 2, 2]
    assert all(b"late" in data for data in client.calls[1] + client.calls[2])
    assert waits == [0.1, 0.2]
    assert json.loads(client.calls[0][0])["member_id"] == "a"


def test_firehose_records_still_refused_fail_the_delivery_naming_them() -> None:
    client = FakeFirehose(refuse="late", times=99)
    sink = FirehoseSink(STREAM, client, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(AnalyticsDeliveryFailed, match="refused 1 of 2 records after 4 attempts"):
        sink.deliver(_rows("a", "late-1"))
    assert len(client.calls) == 4


def test_batches_keep_within_500_records_and_4_mib() -> None:
    assert [len(c) for c in _chunks([b"x"] * 1001)] == [500, 500, 1]
    assert [len(c) for c in _chunks([b"x" * (1024 * 1024)] * 5)] == [4, 1]


def _tier_batch() -> dict[str, Any]:
    member = {"memberId": "s-1", "programId": "cart-star", "v": 4, "tier": "gold"}
    changed = {**member, "v": 5, "tier": "platinum", "tierChangedAt": to_compact_utc(AT)}
    return {"Records": [record("MEMBER", member, changed)]}


@pytest.fixture
def firehose(moto_table: str, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """A moto bus and delivery stream named as the function's environment says; the records
    the function's client sent."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("ANALYTICS_STREAM_NAME", STREAM)
    monkeypatch.delenv("LOYALTY_ANALYTICS_DIR", raising=False)
    composition.reset()
    boto3.client("events").create_event_bus(Name=BUS)
    boto3.client("s3").create_bucket(Bucket="analytics")
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=STREAM,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::analytics",
        },
    )
    sink = composition.analytics_sink()
    assert isinstance(sink, FirehoseSink)
    sent: list[bytes] = []
    put = sink.client.put_record_batch

    def spy(**request: Any) -> Any:
        response = put(**request)
        sent.extend(r["Data"] for r in request["Records"])
        return response

    monkeypatch.setattr(sink.client, "put_record_batch", spy)
    return sent


def test_event_publisher_sends_its_events_rows_to_firehose(firehose: list[bytes]) -> None:
    app = load_function("event_publisher")
    assert app.lambda_handler(_tier_batch(), FakeContext()) == {"batchItemFailures": []}
    rows = [json.loads(data) for data in firehose]
    assert [(r["detail_type"], r["member_id"], r["tier"], r["day"]) for r in rows] == [
        ("MemberTierChanged", "s-1", "platinum", "2026-11-30")
    ]


def test_a_firehose_that_refuses_fails_the_invocation_for_the_stream_to_retry(
    firehose: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = composition.analytics_sink()
    assert isinstance(sink, FirehoseSink)
    monkeypatch.setattr(sink, "sleep", lambda _: None)
    refuse = FakeFirehose(refuse="MemberTierChanged", times=99)
    monkeypatch.setattr(sink.client, "put_record_batch", refuse.put_record_batch)
    app = load_function("event_publisher")
    with pytest.raises(AnalyticsDeliveryFailed):
        app.lambda_handler(_tier_batch(), FakeContext())
    assert len(refuse.calls) == 4


def test_locally_the_rows_are_parquet_files_by_day(
    moto_table: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("LOYALTY_ANALYTICS_DIR", str(tmp_path))
    monkeypatch.setenv("ANALYTICS_STREAM_NAME", STREAM)  # the local folder wins
    composition.reset()
    boto3.client("events").create_event_bus(Name=BUS)
    app = load_function("event_publisher")
    assert app.lambda_handler(_tier_batch(), FakeContext()) == {"batchItemFailures": []}
    files = sorted(tmp_path.glob("day=*/*.parquet"))
    assert [f.parent.name for f in files] == ["day=2026-11-30"]
    table = pq.read_table(files[0])
    assert table.column_names == [name for name, _ in COLUMNS]
    assert table.column("tier").to_pylist() == ["platinum"]
    assert not list(tmp_path.glob("day=*/.*"))  # no half-written file left behind


def test_pyarrow_stays_out_of_the_lambda_runtime() -> None:
    """The layer holds the runtime dependencies only; the functions' code imports pyarrow only
    when the local sink is asked for, so a function without it still loads and publishes."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tomllib  # noqa: PLC0415

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("pyarrow", "duckdb"))]
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['duckdb'] = None\n"
        "import shared.dal.analytics, shared.domain.analytics, shared.composition\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_loyalty_report_names_what_is_wrong_with_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import cli  # noqa: PLC0415

    assert cli.main(["report", "--data", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 1
    assert "no Parquet files under" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--from", "2026-02-30"])
    assert exit_.value.code == 2
    assert "not a day (YYYY-MM-DD): '2026-02-30'" in capsys.readouterr().err
    sink_dir = tmp_path / "rows"
    from shared.dal.analytics import ParquetSink  # noqa: PLC0415

    ParquetSink(sink_dir).deliver(_rows("a"))
    with pytest.raises(SystemExit):
        cli.main(["report", "--data", str(sink_dir), "--from", "2026-12-02", "--to", "2026-12-01"])
    assert "--from is after --to" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
