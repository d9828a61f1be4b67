"""DynamoDB Streams to Lambda, locally: Lambda's stream poller over DynamoDB Local's streams.

One :class:`StreamPoller` per stream event source mapping. Like Lambda, it reads each shard in
order (parents before children), one batch at a time, so the records of an item reach the
function in the order they were written. It honours ``BatchSize``,
``MaximumBatchingWindowInSeconds``, ``StartingPosition``, ``FilterCriteria``,
``FunctionResponseTypes: [ReportBatchItemFailures]`` (the batch is retried from the first
failed record), ``BisectBatchOnFunctionError``, ``MaximumRetryAttempts`` (-1: until the
records expire, blocking the shard as on AWS), ``MaximumRecordAgeInSeconds`` and the
``OnFailure`` destination (a record describing the skipped batch, as Lambda sends).

Its position is kept in ``<state dir>/streams/`` so that a restart resumes where it stopped
(a first start uses ``StartingPosition``). Not emulated: ``ParallelizationFactor`` (batches of a
shard are never concurrent), tumbling windows. Retries wait 0.2 s, doubling up to 2 s (Lambda
retries at once, then backs off).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .functions import InvokeResult
from .patterns import matches
from .template import FunctionSpec, MappingSpec, TableSpec

__all__ = ["StreamPoller", "lambda_record"]

POLL_INTERVAL_S = 0.25
SHARD_REFRESH_S = 10.0
MAX_BACKOFF_S = 2.0
FIRST_BACKOFF_S = 0.2

Invoke = Callable[[str, Any], InvokeResult]
Deliver = Callable[[str, dict[str, Any]], None]


def _plain(value: Any) -> Any:
    """JSON-able: bytes as base64 (as Lambda's JSON event carries B and BS)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def lambda_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands to the function."""
    record: dict[str, Any] = _plain(raw)
    record["awsRegion"] = region
    record["eventSourceARN"] = stream_arn
    return record


class StreamPoller:
    def __init__(
        self,
        mapping: MappingSpec,
        table: TableSpec,
        function: FunctionSpec,
        *,
        streams_client: Any,
        ddb_client: Any,
        invoke: Invoke,
        deliver: Deliver,
        report: Callable[[str], None],
        region: str,
        checkpoint_dir: Path | None,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.mapping = mapping
        self.table = table
        self.function = function
        self.streams = streams_client
        self.ddb = ddb_client
        self.invoke = invoke
        self.deliver = deliver
        self.report = report
        self.region = region
        self.poll_interval = poll_interval
        self.checkpoint_path = (
            checkpoint_dir / f"{mapping.source.replace('/', '_')}.json" if checkpoint_dir else None
        )
        self.stream_arn: str | None = None
        self._positions: dict[str, str] = {}
        self._iterators: dict[str, str | None] = {}
        self._finished: set[str] = set()
        self._parents: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"stream-{mapping.source}", daemon=True
        )
        self._last_refresh = 0.0
        self.busy = False
        self.empty_round_started: float | None = None
        """When the last poll round that found nothing began (monotonic); None while busy."""

    # -- lifecycle ----------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Find the stream and take positions on its shards (before the stack says ready)."""
        description = self.ddb.describe_table(TableName=self.table.name)["Table"]
        arn = description.get("LatestStreamArn")
        if not arn:
            self.report(f"{self.mapping.source}: table {self.table.name} has no stream; not polled")
            return False
        self.stream_arn = arn
        self._load_checkpoint()
        self._refresh_shards()
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # -- checkpoints --------------------------------------------------------------------------

    def _load_checkpoint(self) -> None:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return
        try:
            saved = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if saved.get("streamArn") == self.stream_arn:
            self._positions = dict(saved.get("shards") or {})

    def _checkpoint(self, shard_id: str, sequence_number: str) -> None:
        self._positions[shard_id] = sequence_number
        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.checkpoint_path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"streamArn": self.stream_arn, "shards": self._positions}), encoding="utf-8"
        )
        temporary.replace(self.checkpoint_path)

    # -- shards -------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        self._last_refresh = time.monotonic()
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            shards += description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self._iterators or shard_id in self._finished:
                continue
            parent = shard.get("ParentShardId")
            self._parents[shard_id] = parent
            self._iterators[shard_id] = self._new_iterator(
                shard_id, known_parent=parent in self._parents
            )

    def _new_iterator(self, shard_id: str, *, known_parent: bool) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        position = self._positions.get(shard_id)
        if position is not None:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position}
        elif known_parent:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"  # a child of a shard we were reading
        else:
            start = self.mapping.starting_position.upper()
            kwargs["ShardIteratorType"] = "TRIM_HORIZON" if start == "TRIM_HORIZON" else "LATEST"
        try:
            iterator: str = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        except ClientError as error:
            self.report(f"{self.mapping.source}: shard {shard_id}: {error}")
            return None
        return iterator

    def _eligible(self) -> list[str]:
        eligible = []
        for shard_id, iterator in self._iterators.items():
            if iterator is None or shard_id in self._finished:
                continue
            parent = self._parents.get(shard_id)
            if parent and parent in self._iterators and parent not in self._finished:
                continue  # a parent's records come first
            eligible.append(shard_id)
        return eligible

    # -- polling ------------------------------------------------------------------------------

    def _get_records(self, shard_id: str) -> list[dict[str, Any]]:
        iterator = self._iterators.get(shard_id)
        if iterator is None:
            return []
        try:
            response = self.streams.get_records(
                ShardIterator=iterator, Limit=min(self.mapping.batch_size, 1000)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in (
                "ExpiredIteratorException",
                "TrimmedDataAccessException",
            ):
                self._iterators[shard_id] = self._new_iterator(shard_id, known_parent=False)
                return []
            raise
        next_iterator = response.get("NextShardIterator")
        self._iterators[shard_id] = next_iterator
        if next_iterator is None:
            self._finished.add(shard_id)
            self._last_refresh = 0.0  # look for its children
        records: list[dict[str, Any]] = response.get("Records", [])
        return records

    def _run(self) -> None:
        while not self._stop.is_set():
            round_started = time.monotonic()
            if round_started - self._last_refresh > SHARD_REFRESH_S:
                try:
                    self._refresh_shards()
                except ClientError as error:
                    self.report(f"{self.mapping.source}: {error}")
            found = False
            for shard_id in self._eligible():
                try:
                    raw = self._collect(shard_id)
                except ClientError as error:
                    self.report(f"{self.mapping.source}: {error}")
                    continue
                if raw:
                    found = True
                    self.busy = True
                    self.empty_round_started = None
                    try:
                        self._process(shard_id, raw)
                    finally:
                        self.busy = False
            if not found:
                self.empty_round_started = round_started
                self._stop.wait(self.poll_interval)

    def _collect(self, shard_id: str) -> list[dict[str, Any]]:
        records = self._get_records(shard_id)
        window = self.mapping.batching_window
        if not records or window <= 0:
            return records
        deadline = time.monotonic() + window
        while len(records) < self.mapping.batch_size and time.monotonic() < deadline:
            if self._stop.wait(min(self.poll_interval, max(0.0, deadline - time.monotonic()))):
                break
            records += self._get_records(shard_id)
        return records

    # -- delivering ---------------------------------------------------------------------------

    def _process(self, shard_id: str, raw: list[dict[str, Any]]) -> None:
        assert self.stream_arn is not None
        records = [lambda_record(item, self.stream_arn, self.region) for item in raw]
        last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
        if self.mapping.filters:
            records = [
                record
                for record in records
                if any(matches(pattern, record) for pattern in self.mapping.filters)
            ]
        pending: deque[tuple[list[dict[str, Any]], int]] = deque()
        for start in range(0, len(records), self.mapping.batch_size):
            pending.append((records[start : start + self.mapping.batch_size], 0))
        while pending and not self._stop.is_set():
            batch, attempts = pending[0]
            result = self.invoke(self.mapping.function, {"Records": batch})
            failed_at = self._failed_index(result, batch)
            if failed_at is None:
                pending.popleft()
                self._checkpoint(shard_id, batch[-1]["dynamodb"]["SequenceNumber"])
                continue
            if failed_at > 0:
                self._checkpoint(shard_id, batch[failed_at - 1]["dynamodb"]["SequenceNumber"])
                batch = batch[failed_at:]
            attempts += 1
            condition = self._exhausted(batch, attempts)
            if condition is not None:
                pending.popleft()
                self._give_up(shard_id, batch, result, attempts, condition)
                self._checkpoint(shard_id, batch[-1]["dynamodb"]["SequenceNumber"])
                continue
            pending.popleft()
            if self.mapping.bisect_on_error and len(batch) > 1 and failed_at == 0 and not result.ok:
                middle = len(batch) // 2
                pending.appendleft((batch[middle:], attempts))
                pending.appendleft((batch[:middle], attempts))
            else:
                pending.appendleft((batch, attempts))
            self.report(
                f"{self.mapping.source}: batch of {len(batch)} failed "
                f"({result.error or 'partial batch failure'}); retry {attempts}"
            )
            self._stop.wait(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempts - 1)))
        if not pending and not self._stop.is_set():
            self._checkpoint(shard_id, last_sequence)  # records dropped by the filters

    def _failed_index(self, result: InvokeResult, batch: list[dict[str, Any]]) -> int | None:
        """None: the batch succeeded; else the index of the first record to retry from."""
        if not result.ok:
            return 0
        if not self.mapping.report_batch_item_failures or not isinstance(result.payload, Mapping):
            return None
        failures = result.payload.get("batchItemFailures")
        if not failures:
            return None
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        indexes = []
        for failure in failures if isinstance(failures, list) else [None]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if identifier not in sequences:
                return 0  # an invalid response fails the whole batch, as on Lambda
            indexes.append(sequences.index(identifier))
        return min(indexes)

    def _exhausted(self, batch: list[dict[str, Any]], attempts: int) -> str | None:
        limit = self.mapping.max_retry_attempts
        if limit >= 0 and attempts > limit:
            return "RetryAttemptsExhausted"
        max_age = self.mapping.max_record_age
        created = batch[0]["dynamodb"].get("ApproximateCreationDateTime")
        if max_age >= 0 and isinstance(created, int | float) and time.time() - created > max_age:
            return "RecordAgeExceeded"
        return None

    def _give_up(
        self,
        shard_id: str,
        batch: list[dict[str, Any]],
        result: InvokeResult,
        attempts: int,
        condition: str,
    ) -> None:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        self.report(
            f"{self.mapping.source}: skipped {len(batch)} records after {attempts} attempts "
            f"({condition}; last error: {result.error or 'partial batch failure'})"
        )
        destination = self.mapping.on_failure
        if not destination:
            return

        def when(dynamodb: Mapping[str, Any]) -> str | None:
            created = dynamodb.get("ApproximateCreationDateTime")
            if not isinstance(created, int | float):
                return None
            return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")

        self.deliver(
            destination,
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": self.function.arn,
                    "condition": condition,
                    "approximateInvokeCount": attempts,
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled" if not result.ok else "",
                },
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "DDBStreamBatchInfo": {
                    "shardId": shard_id,
                    "startSequenceNumber": first["SequenceNumber"],
                    "endSequenceNumber": last["SequenceNumber"],
                    "approximateArrivalOfFirstRecord": when(first),
                    "approximateArrivalOfLastRecord": when(last),
                    "batchSize": len(batch),
                    "streamArn": self.stream_arn,
                },
            },
        )
