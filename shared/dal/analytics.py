"""Delivers the analytics rows of published events (shared/domain/analytics.py).

- :class:`FirehoseSink` (AWS): ``PutRecordBatch`` to the delivery stream named by
  ``ANALYTICS_STREAM_NAME``, which converts the JSON records to Parquet (Glue table schema) and
  writes them to S3 by day. Firehose may refuse some records of a batch (throttling, an internal
  error) while taking the rest: those, and only those, are sent again, a few times with a short
  backoff; what is still refused raises :class:`AnalyticsDeliveryFailed`, so that the
  invocation fails and the stream retries it (then its on-failure queue keeps it). A record is
  never dropped silently; a retry can deliver a row twice, which the queries remove by
  ``event_id``.
- :class:`ParquetSink` (local stack and tests): the same rows written as Parquet files under
  ``<dir>/day=YYYY-MM-DD/``, one file per day per delivery, with pyarrow. pyarrow is a
  development dependency, never in the Lambda layer: it is imported only when this sink is
  built, which only ``LOYALTY_ANALYTICS_DIR`` (set by ``loyalty local serve``) asks for.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.domain.analytics import COLUMNS, PARTITION, firehose_json

if TYPE_CHECKING:
    from mypy_boto3_firehose.client import FirehoseClient

MAX_RECORDS = 500
"""PutRecordBatch takes at most 500 records ..."""
MAX_BYTES = 4 * 1024 * 1024
"""... and 4 MiB in all."""
ATTEMPTS = 4
"""Sends of a refused record before the delivery fails (backoff 0.1 s, 0.2 s, 0.4 s)."""


class AnalyticsDeliveryFailed(Exception):
    """Some rows could not be delivered after the retries: the invocation fails and the stream
    retries its records."""


def _chunks(records: Sequence[bytes]) -> list[list[int]]:
    """Indexes of ``records`` in batches within PutRecordBatch's limits."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, record in enumerate(records):
        if current and (len(current) == MAX_RECORDS or size + len(record) > MAX_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(index)
        size += len(record)
    if current:
        chunks.append(current)
    return chunks


class FirehoseSink:
    def __init__(
        self,
        stream_name: str,
        client: FirehoseClient,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self.client = client
        self.sleep = sleep

    def deliver(self, rows: Sequence[dict[str, Any]]) -> int:
        """Send every row; the number of ``PutRecordBatch`` calls made."""
        records = [firehose_json(row) for row in rows]
        calls = 0
        for chunk in _chunks(records):
            pending = chunk
            errors: set[str] = set()
            for attempt in range(ATTEMPTS):
                if attempt:
                    self.sleep(0.1 * 2 ** (attempt - 1))
                response = self.client.put_record_batch(
                    DeliveryStreamName=self.stream_name,
                    Records=[{"Data": records[index]} for index in pending],
                )
                calls += 1
                if not response.get("FailedPutCount"):
                    pending = []
                    break
                answers = response.get("RequestResponses", [])
                refused = [
                    index
                    for index, answer in zip(pending, answers, strict=False)
                    if answer.get("ErrorCode")
                ]
                errors = {str(a.get("ErrorCode")) for a in answers if a.get("ErrorCode")}
                # Answers are in request order; a short answer list refuses the rest too.
                pending = refused + pending[len(answers) :]
            if pending:
                ids = [str(rows[index].get("event_id")) for index in pending[:5]]
                raise AnalyticsDeliveryFailed(
                    f"Firehose refused {len(pending)} of {len(chunk)} records after {ATTEMPTS} "
                    f"attempts ({', '.join(sorted(errors)) or 'no error code'}); "
                    f"events {', '.join(ids)}{' ...' if len(pending) > 5 else ''}"
                )
        return calls


class ParquetSink:
    """Parquet files by day under ``directory``: ``day=YYYY-MM-DD/part-<uuid>.parquet``, each
    written under a hidden name and renamed, so a reader never sees half a file."""

    def __init__(self, directory: Path) -> None:
        import pyarrow as pa  # noqa: PLC0415 (local only: a dev dependency)

        self.directory = directory
        self.pa = pa
        types = {
            "string": pa.string(),
            "bigint": pa.int64(),
            "decimal(12,2)": pa.decimal128(12, 2),
        }
        self.schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])

    def deliver(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write the rows, one file per day; the number of files written."""
        import pyarrow.parquet as pq  # noqa: PLC0415 (local only: a dev dependency)

        by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_day[str(row[PARTITION])].append(row)
        for day, day_rows in sorted(by_day.items()):
            folder = self.directory / f"{PARTITION}={day}"
            folder.mkdir(parents=True, exist_ok=True)
            table = self.pa.Table.from_pylist(
                [{name: row.get(name) for name, _ in COLUMNS} for row in day_rows],
                schema=self.schema,
            )
            name = f"part-{uuid.uuid4().hex}.parquet"
            hidden = folder / f".{name}.tmp"
            pq.write_table(table, hidden)
            os.replace(hidden, folder / name)
        return len(by_day)
