"""Full recalculation: the job and segment items, and the parallel Scan of member items.

Items (same table, outside every member partition)::

    pk = JOB#{jobId}  sk = JOB              the job: program, version, segments, options, state
    pk = JOB#{jobId}  sk = SEGMENT#{n:05d}  one segment's checkpoint, created by its first page

Both carry ``expiresAt`` (TTL, 30 days after the last write), so finished jobs clean up after
themselves. A checkpoint moves forward only from the page it names (``page = :expected``), in
one UpdateItem that also adds the page's counters: a page's counters are counted once, and a
redelivered message can neither process a page twice nor move a checkpoint backwards.

Tier writes of a page go out in PartiQL batches (``write_tiers``): up to 25 ``UPDATE``
statements per BatchExecuteStatement, each with its own condition, the same as
``TierRepository.apply_tier``'s (the member's version, and no later decision written since).
A batch is not a transaction: each statement applies or fails alone, and a failed condition
answers the member item as it stood (``ReturnValuesOnConditionCheckFailure=ALL_OLD``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.recalculation import (
    STATEMENTS_PER_BATCH,
    JobState,
    PageCounts,
    RecalculationJob,
    ScanPage,
    SegmentState,
    TierWrite,
    TierWriteResult,
    decode_key,
    encode_key,
)
from shared.domain.timeutil import parse_instant, to_compact_utc
from shared.logic.ports import TransientConflict

from .capacity import CapacityMeter
from .decode import decode_item
from .dynamodb import MAX_TRANSACTION_ATTEMPTS, Update, av, from_item
from .item_size import KB, number_size
from .tiers import TierRepository, check_shard

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


# -- tier writes as PartiQL statements ---------------------------------------------------------

_RETRIED = frozenset(
    {
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionConflict",
    }
)
"""Statement errors that a later try may not meet (the rest of the batch has applied)."""
_INDEX_KEYS = ("checkShard", "checkOn")
"""The ``ByCheckDate`` index's keys (it projects keys only)."""

_Changes = tuple[list[tuple[str, Any]], list[str]]


# -- the Scan's items, unparsed by botocore ------------------------------------------------------

_RAW_ITEMS = "RecalculationRawItems"
_BINARY = re.compile(rb'"BS?"\s*:')
_raw_scan = threading.local()
"""Set by ``scan_members`` around its own Scan call, in the thread that parses the answer."""


def _keep_items_raw(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore ``before-parse`` handler for the recalculation's own Scans: take the page's
    ``Items`` out of the answer as plain JSON, before botocore's parser walks every attribute
    value of them through the service model (on a 1 MB page of member items, most of the
    Scan's CPU in the worker). The JSON form of an attribute value is what botocore would
    return, but for binary values (base64 text, not bytes): a page holding any is left to
    botocore. The rest of the answer (counts, LastEvaluatedKey, capacity) is parsed as usual."""
    if not getattr(_raw_scan, "on", False) or response_dict.get("status_code", 500) >= 300:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes) or _BINARY.search(body):
        return
    answer = json.loads(body)
    items = answer.pop("Items", None)
    if not isinstance(items, list):
        return
    customized_response_dict[_RAW_ITEMS] = items
    response_dict["body"] = json.dumps(answer).encode()


class StatementError(RuntimeError):
    """A statement of a batch failed for a reason other than its condition (a bug, a
    permission): the message is retried from the segment's checkpoint."""


def tier_changes(program_id: str, write: TierWrite) -> _Changes:
    """The attributes a write sets and removes: for a decision, exactly what
    ``TierRepository.apply_tier`` writes; then the buckets left behind."""
    sets: list[tuple[str, Any]] = []
    removes: list[str] = []
    decision = write.decision
    if decision is not None:
        stamp = to_compact_utc(parse_instant(write.at))
        if decision.tier is None:
            removes.append("tier")
        else:
            sets.append(("tier", decision.tier))
        if decision.changed:
            sets.append(("tierReason", decision.reason.value if decision.reason else None))
            sets.append(("tierChangedAt", stamp))
            if decision.rule_version:
                sets.append(("tierRuleVersion", decision.rule_version))
            sets.append(("tierFrom", decision.current or ""))
        sets.append(("tierAt", stamp))
        if decision.check_on is None:
            removes += ["checkShard", "checkOn"]
        else:
            sets.append(("checkShard", check_shard(program_id, write.member_id)))
            sets.append(("checkOn", decision.check_on.isoformat()))
        if decision.at_risk_on is not None:
            sets.append(("atRiskFor", decision.at_risk_on.isoformat()))
            sets.append(("atRiskDropsTo", decision.drops_to))
            sets.append(("atRiskTier", decision.tier))
        for name, day in (
            ("belowSince", decision.below_since),
            ("tierHeldUntil", decision.held_until),
        ):
            if day is None:
                removes.append(name)
            else:
                sets.append((name, day.isoformat()))
    removes += write.remove
    return sets, removes


def _parameter(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    return av(value)


def _quoted(name: str) -> str:
    if '"' in name:
        raise ValueError(f"attribute name {name!r} cannot be quoted in PartiQL")
    return f'"{name}"'


def tier_statement(table_name: str, program_id: str, write: TierWrite) -> dict[str, Any]:
    """One PartiQL ``UPDATE`` of a member item, with its condition: the item exists (an
    ``UPDATE`` of a missing item fails its condition), and, for a decision, the member is
    still at the version the decision was made from and no later decision was written since
    (``apply_tier``'s condition)."""
    sets, removes = tier_changes(program_id, write)
    clauses = [f"SET {_quoted(name)} = ?" for name, _ in sets]
    clauses += [f"REMOVE {_quoted(name)}" for name in removes]
    parameters = [_parameter(value) for _, value in sets]
    where = '"pk" = ? AND "sk" = ?'
    parameters += [{"S": member_pk(program_id, write.member_id)}, {"S": MEMBER_SK}]
    if write.decision is not None:
        version = write.version
        if version is None:
            where += ' AND "v" IS MISSING'
        else:
            where += ' AND "v" = ?'
            parameters.append({"N": str(version)})
        where += ' AND ("tierAt" IS MISSING OR "tierAt" <= ?)'
        parameters.append({"S": to_compact_utc(parse_instant(write.at))})
    return {
        "Statement": f"UPDATE {_quoted(table_name)} {' '.join(clauses)} WHERE {where}",
        "Parameters": parameters,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _value_size(value: Any) -> int:  # noqa: PLR0911 (one return per type reads best)
    """Bytes DynamoDB counts for a decoded value (``item_size``'s rules, on Python values)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        return number_size(value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(1 + len(str(k).encode()) + _value_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 3 + sum(1 + _value_size(element) for element in value)
    if isinstance(value, set | frozenset):
        return sum(_value_size(element) for element in value)
    raise ValueError(f"cannot size a {type(value).__name__}")


def _size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def computed_write_units(item: Mapping[str, Any], changes: _Changes) -> int:
    """Write units of an applied statement, by DynamoDB's rules: the larger of the item before
    and after, per started KB; and the ``ByCheckDate`` index (keys only): a put for an entry
    that appears, a delete for one that goes, both when its keys change."""
    sets, removes = changes
    after = dict(item)
    for name in removes:
        after.pop(name, None)
    after.update(sets)
    units = max(1, -(-max(_size(item), _size(after)) // KB))
    before_keys = tuple(item.get(name) for name in _INDEX_KEYS)
    after_keys = tuple(after.get(name) for name in _INDEX_KEYS)
    indexed_before, indexed_after = None not in before_keys, None not in after_keys
    if before_keys != after_keys or indexed_before != indexed_after:
        units += int(indexed_before) + int(indexed_after)
    return units


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
        self.computed_write_units = 0.0
        """Units of batches whose answer reported none (DynamoDB Local reports no
        ``ConsumedCapacity`` for BatchExecuteStatement; AWS does), computed from item sizes."""
        self.statements = 0
        """Statements sent in batches (tries included)."""
        client.meta.events.register(
            "before-parse.dynamodb.Scan", _keep_items_raw, unique_id=_RAW_ITEMS
        )

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
            writes = self.meter.write_units + self.computed_write_units
            return self.meter.read_units - self._scan_read_units, writes

    # -- tier writes ------------------------------------------------------------------------

    def write_tiers(self, program_id: str, writes: Sequence[TierWrite]) -> list[TierWriteResult]:
        """Carry out up to 25 writes in one BatchExecuteStatement (one request), each with its
        own condition (``tier_statement``). The results are in the order of ``writes``: applied,
        or not, with the member item as it stood when the condition failed. Statements that
        were throttled or met a transaction are sent again with backoff; any other statement
        error raises ``StatementError``."""
        if len(writes) > STATEMENTS_PER_BATCH:
            raise ValueError(f"at most {STATEMENTS_PER_BATCH} writes per batch")
        statements = [tier_statement(self.table_name, program_id, write) for write in writes]
        results: list[TierWriteResult | None] = [None] * len(writes)
        pending = list(range(len(writes)))
        attempt = 0
        while pending:
            response = self._call(
                "BatchExecuteStatement",
                self.client.batch_execute_statement,
                Statements=[statements[index] for index in pending],
            )
            retry: list[int] = []
            applied: list[int] = []
            for index, answer in zip(pending, response.get("Responses", []), strict=True):
                error = answer.get("Error")
                if not error:
                    results[index] = TierWriteResult(True)
                    applied.append(index)
                    continue
                code = error.get("Code")
                if code == "ConditionalCheckFailed":
                    item = error.get("Item")
                    results[index] = TierWriteResult(False, decode_item(item) if item else None)
                elif code in _RETRIED:
                    retry.append(index)
                else:
                    raise StatementError(
                        f"{code} writing member {writes[index].member_id}: {error.get('Message')}"
                    )
            with self._meter_lock:
                self.statements += len(pending)
                if not response.get("ConsumedCapacity"):
                    self.computed_write_units += sum(
                        computed_write_units(
                            writes[index].item, tier_changes(program_id, writes[index])
                        )
                        for index in applied
                    )
            pending = retry
            if pending:
                attempt += 1
                if attempt >= MAX_TRANSACTION_ATTEMPTS:
                    raise TransientConflict(
                        f"{len(pending)} tier writes kept failing after {attempt} tries"
                    )
                self._backoff(attempt)
        return [result if result is not None else TierWriteResult(False) for result in results]

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
        consistent). The items are decoded from the answer's JSON (``_keep_items_raw``), not
        from botocore's parse of it. A stale read is harmless: tier writes are conditioned on
        the member's version, and a write that fails answers the member as it stood.
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
        _raw_scan.on = True
        try:
            response = self._call("Scan", self.client.scan, **request)
        finally:
            _raw_scan.on = False
        raw = response.get(_RAW_ITEMS)
        items = raw if raw is not None else response.get("Items", [])
        consumed = response.get("ConsumedCapacity") or {}
        return ScanPage(
            items=[decode_item(item) for item in items],
            last_key=encode_key(response.get("LastEvaluatedKey")),
            scanned=int(response.get("ScannedCount", 0)),
            read_units=float(consumed.get("CapacityUnits", 0.0)),
        )
