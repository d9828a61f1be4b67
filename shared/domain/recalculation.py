"""Full recalculation jobs: the records of a job and its segments, and the one rule that makes
the SQS fan-out safe to redeliver (``plan``). Pure: no I/O, no clock.

A job scans every member of a program in ``segments`` parallel Scan segments. Each segment
advances page by page; its state (``SegmentState``) is the checkpoint: the next page number,
the Scan's LastEvaluatedKey that starts it, the counters so far, and the page for which a
continuation message was last sent. A message names (job, segment, page); the checkpoint only
ever moves forward, one page at a time, conditioned on the page number it starts from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace

from shared.domain.tiers import TierDecision

MAX_SEGMENTS = 1000
"""DynamoDB allows up to 1,000,000 Scan segments; each running segment holds one Lambda, and
the event source mapping's MaximumConcurrency caps them anyway."""


class JobState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"
    """A newer configuration version was deployed while the job ran: start a new job."""


class RecalculationJob(Struct, frozen=True):
    job_id: str
    program_id: str
    program_version: int
    segments: int
    allow_downgrades: bool
    created_at: str
    page_size: int | None = None
    """Scan ``Limit`` (items read per page, before the filter); None: 1 MB pages."""
    estimated_items: int | None = None
    """The table's ItemCount when the job started (DescribeTable, refreshed about every 6
    hours by DynamoDB): only for progress estimates."""
    state: JobState = JobState.RUNNING
    finished_at: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.segments <= MAX_SEGMENTS:
            raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}")
        if self.page_size is not None and self.page_size < 1:
            raise ValueError("page_size must be positive")


class SegmentMessage(Struct, frozen=True):
    """The body of one SQS message: process ``segment`` of ``job_id`` from ``page``."""

    job_id: str
    segment: int
    page: int

    def to_json(self) -> str:
        return json.dumps({"jobId": self.job_id, "segment": self.segment, "page": self.page})

    @classmethod
    def from_json(cls, body: str) -> SegmentMessage:
        try:
            data = json.loads(body)
            message = cls(str(data["jobId"]), int(data["segment"]), int(data["page"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a recalculation message: {body[:200]!r}") from exc
        if not message.job_id or message.segment < 0 or message.page < 0:
            raise ValueError(f"not a recalculation message: {body[:200]!r}")
        return message


class PageCounts(Struct, frozen=True):
    """What one page did; added to the segment's counters by its checkpoint."""

    scanned: int = 0
    """Items the Scan read (ScannedCount): order items too, since a filter reads them."""
    members: int = 0
    """Member items of the program that the filter returned."""
    evaluated: int = 0
    written: int = 0
    stale: int = 0
    """Members whose write lost to a concurrent change twice (their stream evaluation runs)."""
    failed: int = 0
    """Members whose item could not be evaluated (logged with their id)."""
    at_risk: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    changes: Mapping[str, int] = field(default_factory=dict)
    """Tier moves, as ``"gold->platinum"`` (``None`` for no tier)."""

    def plus(self, other: PageCounts) -> PageCounts:
        changes = dict(self.changes)
        for name, count in other.changes.items():
            changes[name] = changes.get(name, 0) + count
        return PageCounts(
            scanned=self.scanned + other.scanned,
            members=self.members + other.members,
            evaluated=self.evaluated + other.evaluated,
            written=self.written + other.written,
            stale=self.stale + other.stale,
            failed=self.failed + other.failed,
            at_risk=self.at_risk + other.at_risk,
            read_units=self.read_units + other.read_units,
            write_units=self.write_units + other.write_units,
            changes=changes,
        )


class SegmentState(Struct, frozen=True):
    """A segment's checkpoint. ``page`` is the next page to process; ``last_key`` the Scan's
    LastEvaluatedKey (JSON of its attribute values) it starts from, None for the first page."""

    segment: int
    page: int = 0
    last_key: str | None = None
    sent: int = -1
    """The page for which a continuation message was last sent (-1: none yet)."""
    done: bool = False
    counts: PageCounts = PageCounts()
    updated_at: str | None = None
    started: bool = False
    """False while no page was checkpointed (no segment item yet)."""

    def after(self, page: PageCounts, last_key: str | None, at: str) -> SegmentState:
        """The checkpoint once one more page is processed."""
        return replace(
            self,
            page=self.page + 1,
            last_key=last_key,
            done=last_key is None,
            counts=self.counts.plus(page),
            updated_at=at,
            started=True,
        )


class ScanPage(Struct, frozen=True):
    """One page of a segment's Scan."""

    items: list[dict[str, Any]]
    """The program's member items on the page, deserialized."""
    last_key: str | None
    """Where the next page starts (JSON, see ``encode_key``); None: the segment is finished."""
    scanned: int
    """Items the page read, before the filter."""
    read_units: float


class TierWrite(Struct, frozen=True):
    """One member's write after a page's evaluation: the decision, conditioned on the version
    of the item it was made from, and the window buckets no order reaches any more. A page's
    writes go to DynamoDB in batches (``STATEMENTS_PER_BATCH``), each write keeping its own
    condition."""

    member_id: str
    item: Mapping[str, Any]
    """The member item the decision was made from."""
    decision: TierDecision | None
    """None: only buckets to remove (no condition on the version: removing a bucket that no
    order reaches changes no points)."""
    at: str
    """The instant of the decision (ISO 8601); a decision made later is never overwritten."""
    remove: tuple[str, ...] = ()

    @property
    def version(self) -> int | None:
        value = self.item.get("v")
        return int(value) if value is not None else None


class TierWriteResult(Struct, frozen=True):
    """What became of one ``TierWrite``."""

    applied: bool
    current: dict[str, Any] | None = None
    """When not applied: the member item as it stood when its condition failed (None: there
    is no such member any more)."""


STATEMENTS_PER_BATCH = 25
"""DynamoDB's limit on the statements of one BatchExecuteStatement."""


class Step(StrEnum):
    PROCESS = "process"
    """Process pages from the checkpoint."""
    SKIP_DONE = "skip_done"
    """The segment is finished: a redelivered or duplicate message."""
    SKIP_HANDED_OFF = "skip_handed_off"
    """An older message whose work is done and whose continuation was sent."""
    SKIP_AHEAD = "skip_ahead"
    """A message beyond the checkpoint: never sent by the protocol (logged)."""


def plan(message: SegmentMessage, state: SegmentState) -> Step:
    """What a worker does with ``message`` given the segment's checkpoint.

    - the message's page is the checkpoint's: process (the normal case);
    - an older page, and the continuation for the checkpoint's page was sent: skip (SQS
      redelivered a message already handled, or delivered it twice);
    - an older page, and no continuation was sent for the checkpoint's page: the worker that
      advanced the checkpoint stopped before handing off (a crash, a timeout). Take over from
      the checkpoint. Should that worker still be running (a duplicate delivery), both scan the
      same page and only one checkpoint of it succeeds: the other stops there.
    """
    if state.done:
        return Step.SKIP_DONE
    if message.page == state.page:
        return Step.PROCESS
    if message.page > state.page:
        return Step.SKIP_AHEAD
    if state.sent >= state.page:
        return Step.SKIP_HANDED_OFF
    return Step.PROCESS


def encode_key(key: Mapping[str, Any] | None) -> str | None:
    """A Scan's LastEvaluatedKey (attribute values) as the JSON the checkpoint stores."""
    return json.dumps(key, sort_keys=True, separators=(",", ":")) if key else None


def decode_key(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    key = json.loads(text)
    if not isinstance(key, dict):
        raise ValueError("a checkpoint's key must be a JSON object")
    return key
