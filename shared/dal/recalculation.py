"""Full recalculation: the job and segment items, and the parallel Scan of member items.

Items (same table, outside every member partition)::

    pk = JOB#{jobId}  sk = JOB              the job: program, version, segments, options, state
    pk = JOB#{jobId}  sk = SEGMENT#{n:05d}  one segment's checkpoint, created by its first page

Both carry ``expiresAt`` (TTL, 30 days after the last write), so finished jobs clean up after
themselves. A checkpoint moves forward only from the page it names (``page = :expected``), in
one UpdateItem that also adds the page's counters: a page's counters are counted once, and a
redelivered message can neither process a page twice nor move a checkpoint backwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.domain.keys import MEMBER_SK
from shared.domain.recalculation import (
    JobState,
    PageCounts,
    RecalculationJob,
    ScanPage,
    SegmentState,
    decode_key,
    encode_key,
)

from .capacity import CapacityMeter
from .decode import decode_item
from .dynamodb import Update, av, from_item
from .tiers import TierRepository

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

JOB_SK = "JOB"
SEGMENT_SK_PREFIX = "SEGMENT#"
CHANGE_PREFIX = "chg:"
RETENTION = timedelta(days=30)

_COUNTERS = {
    "scanned": "scanned",
    "members": "members",
    "evaluated": "evaluated",
    "written": "written",
    "stale": "stale",
    "failed": "failed",
    "at_risk": "atRisk",
    "read_units": "readUnits",
    "write_units": "writeUnits",
}


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def segment_sk(segment: int) -> str:
    return f"{SEGMENT_SK_PREFIX}{segment:05d}"


def _expires(at: str) -> int:
    return int((datetime.fromisoformat(at) + RETENTION).timestamp())


def _units(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def _int(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value) if value is not None else default


class RecalculationRepository(TierRepository):
    """Tier writes (inherited) plus the job's items and the segment Scan. Safe to share between
    the threads of one worker (boto3 clients are; the capacity meter is kept under a lock)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        meter: CapacityMeter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(table_name, client, meter, sleep)
        self._meter_lock = threading.Lock()
        self._scan_read_units = 0.0

    def _call(self, operation: str, function: Callable[..., Any], **request: Any) -> Any:
        started = time.perf_counter()
        try:
            response = function(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as exc:
            with self._meter_lock:
                self.meter.add(operation, dict(exc.response), time.perf_counter() - started)
            raise
        with self._meter_lock:
            reads = self.meter.read_units
            self.meter.add(operation, response, time.perf_counter() - started)
            if operation == "Scan":
                self._scan_read_units += self.meter.read_units - reads
        return response

    def consumed(self) -> tuple[float, float]:
        """Read and write units this repository's calls consumed so far, Scans excepted (each
        ``ScanPage`` carries its own: a worker reads the next page while it writes this one)."""
        with self._meter_lock:
            return self.meter.read_units - self._scan_read_units, self.meter.write_units

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, job: RecalculationJob) -> bool:
        """Store a new job; False if one with the same id exists."""
        item: dict[str, Any] = {
            "pk": job_pk(job.job_id),
            "sk": JOB_SK,
            "jobId": job.job_id,
            "programId": job.program_id,
            "programVersion": job.program_version,
            "segments": job.segments,
            "allowDowngrades": job.allow_downgrades,
            "createdAt": job.created_at,
            "state": job.state.value,
            "expiresAt": _expires(job.created_at),
        }
        if job.page_size is not None:
            item["pageSize"] = job.page_size
        if job.estimated_items is not None:
            item["estimatedItems"] = job.estimated_items
        try:
            self._call(
                "PutItem",
                self.client.put_item,
                TableName=self.table_name,
                Item={name: av(value) for name, value in item.items()},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_job(self, job_id: str) -> RecalculationJob | None:
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(job_pk(job_id)), "sk": av(JOB_SK)},
            ConsistentRead=True,
        )
        raw = response.get("Item")
        if not raw:
            return None
        item = from_item(raw)
        return RecalculationJob(
            job_id=str(item["jobId"]),
            program_id=str(item["programId"]),
            program_version=int(item["programVersion"]),
            segments=int(item["segments"]),
            allow_downgrades=bool(item.get("allowDowngrades", False)),
            created_at=str(item["createdAt"]),
            page_size=_int(item, "pageSize") or None,
            estimated_items=int(item["estimatedItems"]) if "estimatedItems" in item else None,
            state=JobState(str(item.get("state", JobState.RUNNING.value))),
            finished_at=str(item["finishedAt"]) if item.get("finishedAt") else None,
        )

    def finish_job(self, job_id: str, state: JobState, at: str) -> bool:
        """Move a running job to ``state``; False if it was not running any more."""
        update = Update()
        update.set("state", state.value)
        update.set("finishedAt", at)
        update.set("expiresAt", _expires(at))
        condition = f"{update.name('state')} = {update.value(JobState.RUNNING.value)}"
        key = {"pk": av(job_pk(job_id)), "sk": av(JOB_SK)}
        return self._update_if(update.request(self.table_name, key, condition))

    # -- segments ---------------------------------------------------------------------------

    @staticmethod
    def _segment(item: Mapping[str, Any]) -> SegmentState:
        changes = {
            name[len(CHANGE_PREFIX) :]: int(value)
            for name, value in item.items()
            if name.startswith(CHANGE_PREFIX)
        }
        values: dict[str, Any] = {
            field: float(item.get(attribute, 0))
            if field.endswith("units")
            else _int(item, attribute)
            for field, attribute in _COUNTERS.items()
        }
        counts = PageCounts(**values, changes=changes)
        return SegmentState(
            segment=int(item["segment"]),
            page=_int(item, "page"),
            last_key=str(item["lastKey"]) if item.get("lastKey") else None,
            sent=_int(item, "sent", -1),
            done=bool(item.get("done", False)),
            counts=counts,
            updated_at=str(item["updatedAt"]) if item.get("updatedAt") else None,
            started=True,
        )

    def get_segment(self, job_id: str, segment: int) -> SegmentState:
        """The segment's checkpoint (strongly consistent); a fresh one before its first page."""
        response = self._call(
            "GetItem",
            self.client.get_item,
            TableName=self.table_name,
            Key={"pk": av(job_pk(job_id)), "sk": av(segment_sk(segment))},
            ConsistentRead=True,
        )
        raw = response.get("Item")
        return self._segment(from_item(raw)) if raw else SegmentState(segment)

    def segments(self, job_id: str) -> list[SegmentState]:
        """Checkpoints of the segments that processed at least one page (strongly consistent)."""
        found: list[SegmentState] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": av(job_pk(job_id)),
                    ":prefix": av(SEGMENT_SK_PREFIX),
                },
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self._call("Query", self.client.query, **request)
            found.extend(self._segment(from_item(item)) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return found

    def checkpoint(
        self,
        job_id: str,
        segment: int,
        page: int,
        counts: PageCounts,
        last_key: str | None,
        at: str,
    ) -> bool:
        """Record that ``page`` of ``segment`` is processed: the next page, where it starts,
        and the page's counters. Only if the checkpoint still stands at ``page``; False
        otherwise (another delivery of the same work got there first)."""
        update = Update()
        update.set("segment", segment)
        update.set("page", page + 1)
        update.set("done", last_key is None)
        update.set("updatedAt", at)
        update.set("expiresAt", _expires(at))
        update.set_if_absent("sent", -1)
        if last_key is None:
            update.remove("lastKey")
        else:
            update.set("lastKey", last_key)
        for field, attribute in _COUNTERS.items():
            value = getattr(counts, field)
            if value:
                amount = _units(value) if field.endswith("units") else int(value)
                update.adds.append(f"{update.name(attribute)} {update.value(amount)}")
        for change, count in counts.changes.items():
            update.add(f"{CHANGE_PREFIX}{change}", count)
        page_name = update.name("page")
        condition = (
            f"attribute_not_exists({page_name})"
            if page == 0
            else f"{page_name} = {update.value(page)}"
        )
        key = {"pk": av(job_pk(job_id)), "sk": av(segment_sk(segment))}
        return self._update_if(update.request(self.table_name, key, condition))

    def mark_sent(self, job_id: str, segment: int, page: int) -> bool:
        """Record that a continuation message for ``page`` was sent (never moves back)."""
        update = Update()
        update.set("sent", page)
        condition = f"{update.name('sent')} < {update.value(page)}"
        key = {"pk": av(job_pk(job_id)), "sk": av(segment_sk(segment))}
        return self._update_if(update.request(self.table_name, key, condition))

    # -- the Scan ---------------------------------------------------------------------------

    def scan_members(
        self,
        program_id: str,
        segment: int,
        segments: int,
        start: str | None,
        limit: int | None = None,
    ) -> ScanPage:
        """One page of a parallel Scan segment, filtered to the program's member items.

        The filter is applied after the read: every item the page reads (order items, job
        items) is billed, whether or not it is returned (0.5 read unit per 4 KB, eventually
        consistent). A stale read is harmless: tier writes are conditioned on the member's
        version, and the caller re-reads the member when one fails.
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": segments,
            "FilterExpression": "sk = :member AND programId = :program",
            "ExpressionAttributeValues": {":member": av(MEMBER_SK), ":program": av(program_id)},
        }
        start_key = decode_key(start)
        if start_key:
            request["ExclusiveStartKey"] = start_key
        if limit is not None:
            request["Limit"] = limit
        response = self._call("Scan", self.client.scan, **request)
        consumed = response.get("ConsumedCapacity") or {}
        return ScanPage(
            items=[decode_item(item) for item in response.get("Items", [])],
            last_key=encode_key(response.get("LastEvaluatedKey")),
            scanned=int(response.get("ScannedCount", 0)),
            read_units=float(consumed.get("CapacityUnits", 0.0)),
        )
