"""Use case: the full recalculation of every member's tier after a new configuration version
(new thresholds). See docs/tiers-recalculation.md.

A job splits the program's members into parallel Scan segments. A worker (one SQS message:
job, segment, page) processes pages while its Lambda has time left, checkpoints after every
page, then sends the continuation message, or marks the segment done. Each member is evaluated
with ``Trigger.RECALCULATION`` and written only if something changed, conditioned on the
member's version (the condition of ``TierRepository.apply_tier``); a page's writes go out in
batches of up to 25 (``RecalculationStore.write_tiers``). By default nobody is downgraded before
the end of the current period (``allow_downgrades=False``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.program import Program
from shared.domain.recalculation import (
    STATEMENTS_PER_BATCH,
    JobState,
    PageCounts,
    RecalculationJob,
    ScanPage,
    SegmentMessage,
    SegmentState,
    Step,
    TierWrite,
    TierWriteResult,
    plan,
)
from shared.domain.tiers import Trigger
from shared.domain.timeutil import local_day, to_utc_iso
from shared.domain.zones import for_member

from .tiers import Evaluation, TierRun, evaluate_item

MARGIN_MS = 60_000
"""Time a worker keeps in hand when it starts a page: the longest page (1 MB of member items,
all of them written) takes a few seconds; the rest covers a slow DynamoDB or SQS call."""
MAX_FAILED_IDS = 20
WRITERS = 4
"""Threads per worker that send a page's write batches. Evaluating is CPU-bound and stays in
the worker's thread (threads would only take turns on the GIL); a batch is a round trip that
waits on DynamoDB (on AWS, latency, not CPU), so a few in flight overlap those waits. A page of
a few thousand members after a threshold change makes about a dozen batches."""


class TierWriter(Protocol):
    def write_tiers(self, program_id: str, writes: Sequence[TierWrite]) -> list[TierWriteResult]:
        """Up to ``STATEMENTS_PER_BATCH`` conditional writes in one request, each applied or
        failed alone; the results in the order of ``writes``."""
        ...


class RecalculationStore(TierWriter, Protocol):
    def consumed(self) -> tuple[float, float]:
        """Read and write units consumed so far, Scans excepted (a page counts its own Scan's
        units, ``ScanPage.read_units``, since the next page's Scan may run meanwhile)."""
        ...

    def create_job(self, job: RecalculationJob) -> bool: ...

    def get_job(self, job_id: str) -> RecalculationJob | None: ...

    def finish_job(self, job_id: str, state: JobState, at: str) -> bool: ...

    def get_segment(self, job_id: str, segment: int) -> SegmentState: ...

    def segments(self, job_id: str) -> list[SegmentState]: ...

    def checkpoint(
        self,
        job_id: str,
        segment: int,
        page: int,
        counts: PageCounts,
        last_key: str | None,
        at: str,
    ) -> bool: ...

    def mark_sent(self, job_id: str, segment: int, page: int) -> bool: ...

    def scan_members(
        self,
        program_id: str,
        segment: int,
        segments: int,
        start: str | None,
        limit: int | None = None,
    ) -> ScanPage: ...


class ProgramMismatch(RuntimeError):
    """The worker runs an older configuration than the job's: retry once it is deployed."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- starting a job --------------------------------------------------------------------------


def new_job_id(program: Program, now: datetime) -> str:
    return f"{program.id}-v{program.version}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def start_job(
    program: Program,
    segments: int,
    store: RecalculationStore,
    now: datetime,
    allow_downgrades: bool = False,
    page_size: int | None = None,
    estimated_items: int | None = None,
    job_id: str | None = None,
) -> tuple[RecalculationJob, list[SegmentMessage]]:
    """Record a job and return its first messages, one per segment (the caller sends them)."""
    job = RecalculationJob(
        job_id=job_id or new_job_id(program, now),
        program_id=program.id,
        program_version=program.version,
        segments=segments,
        allow_downgrades=allow_downgrades,
        created_at=to_utc_iso(now),
        page_size=page_size,
        estimated_items=estimated_items,
    )
    if not store.create_job(job):
        raise ValueError(f"job {job.job_id} exists already")
    return job, [SegmentMessage(job.job_id, segment, 0) for segment in range(segments)]


def resume_messages(store: RecalculationStore, job_id: str) -> list[SegmentMessage]:
    """Messages that restart every unfinished segment from its checkpoint (after messages were
    lost to the dead-letter queue, say). Safe while other messages are still in flight: only
    one delivery can checkpoint a given page, the others stop there."""
    job = store.get_job(job_id)
    if job is None:
        raise ValueError(f"no job {job_id}")
    if job.state is not JobState.RUNNING:
        return []
    states = {state.segment: state for state in store.segments(job_id)}
    return [
        SegmentMessage(job_id, segment, states.get(segment, SegmentState(segment)).page)
        for segment in range(job.segments)
        if not states.get(segment, SegmentState(segment)).done
    ]


# -- the worker ------------------------------------------------------------------------------


class SegmentRun(Struct):
    """What one worker invocation did with one message."""

    message: SegmentMessage
    outcome: str
    """``done``, ``handed_off``, ``conflict`` (another delivery got the page first), or the
    reason the message was skipped (``skip_done``, ``skip_handed_off``, ``skip_ahead``,
    ``unknown_job``, ``job_finished``, ``superseded``)."""
    pages: int = 0
    members: int = 0
    seconds: float = 0.0
    run: TierRun = field(default_factory=TierRun)
    failed_members: list[str] = field(default_factory=list)
    next_message: SegmentMessage | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "jobId": self.message.job_id,
            "segment": self.message.segment,
            "page": self.message.page,
            "outcome": self.outcome,
            "pages": self.pages,
            "members": self.members,
            "seconds": round(self.seconds, 3),
            **self.run.as_dict(),
            "failedMembers": self.failed_members,
        }


def _member_id(item: Mapping[str, Any]) -> str:
    member = item.get("memberId")
    return str(member) if member is not None else str(item.get("pk", "?"))


def _evaluate(
    item: Mapping[str, Any], now: datetime, program: Program, allow_downgrades: bool
) -> Evaluation | None:
    """The member's evaluation, on the member's clock (their zone's today); None when the item
    cannot be evaluated, or cannot be written (no member id, a version that is not a number)."""
    try:
        clock = for_member(program, item)
        today = local_day(now, clock.zone)
        evaluation = evaluate_item(item, today, clock, Trigger.RECALCULATION, allow_downgrades)
        if evaluation.needs_store:
            str(item["memberId"])
            version = item.get("v")
            if version is not None:
                int(version)
    except (ValueError, TypeError, KeyError, ArithmeticError):
        return None
    return evaluation


def _write_of(evaluation: Evaluation, at: str) -> TierWrite:
    item = evaluation.item
    return TierWrite(
        member_id=str(item["memberId"]),
        item=item,
        decision=evaluation.decision if evaluation.write else None,
        at=at,
        remove=evaluation.left_behind,
    )


def _applied(evaluation: Evaluation) -> TierRun:
    """The counts of a member whose write applied (as ``store_evaluation`` counts them)."""
    run = TierRun(evaluated=1)
    if evaluation.write:
        decision = evaluation.decision
        run.written += 1
        if decision.changed:
            run.changes[f"{decision.current}->{decision.tier}"] += 1
        if decision.at_risk_on is not None:
            run.at_risk += 1
    return run


def _write_all(
    writes: Sequence[TierWrite],
    program: Program,
    store: TierWriter,
    pool: Executor | None,
) -> list[TierWriteResult]:
    """The writes in batches of ``STATEMENTS_PER_BATCH``, on ``pool``'s threads (each batch
    one request; each write keeps its own condition), the results in order."""
    batches = [
        writes[begin : begin + STATEMENTS_PER_BATCH]
        for begin in range(0, len(writes), STATEMENTS_PER_BATCH)
    ]

    def send(batch: Sequence[TierWrite]) -> list[TierWriteResult]:
        return store.write_tiers(program.id, batch)

    answers = (
        pool.map(send, batches) if pool is not None and len(batches) > 1 else map(send, batches)
    )
    return [result for answer in answers for result in answer]


def _count(
    evaluations: Sequence[Evaluation], results: Sequence[TierWriteResult], run: TierRun
) -> list[Mapping[str, Any]]:
    """Add the results of the writes to ``run``; the member items of those whose condition
    failed, as they stood (a member no longer there counts as ``stale`` at once)."""
    lost: list[Mapping[str, Any]] = []
    for evaluation, result in zip(evaluations, results, strict=True):
        if result.applied:
            run.add(_applied(evaluation))
        elif result.current is not None and evaluation.write:
            lost.append(result.current)
        else:
            run.add(TierRun(evaluated=1, stale=int(evaluation.write)))
    return lost


def evaluate_page(
    items: Iterable[dict[str, Any]],
    now: datetime,
    program: Program,
    store: TierWriter,
    allow_downgrades: bool,
    pool: Executor | None = None,
) -> tuple[TierRun, list[str]]:
    """Evaluate and write the members of one page. Evaluating is pure CPU and runs in this
    thread, member after member; the members that need a write (a few percent after a
    threshold change) are written in batches of up to 25 statements, one request each, on
    ``pool``'s threads. Each statement keeps its own condition on the member's version: a
    member whose write lost to a concurrent change comes back with its item as it stood, is
    evaluated once more from it and written in a second round; losing again, it is counted
    ``stale`` (its stream evaluation covers it). A member item that cannot be evaluated
    (malformed data) is counted and named, and does not stop the job."""
    at = to_utc_iso(now)
    run = TierRun()
    failed: list[str] = []
    pending: list[Evaluation] = []
    for item in items:
        evaluation = _evaluate(item, now, program, allow_downgrades)
        if evaluation is None:
            failed.append(_member_id(item))
        elif evaluation.needs_store:
            pending.append(evaluation)
        else:
            run.evaluated += 1

    writes = [_write_of(evaluation, at) for evaluation in pending]
    again = _count(pending, _write_all(writes, program, store, pool), run)
    retried: list[Evaluation] = []
    for current in again:
        fresh = _evaluate(current, now, program, allow_downgrades)
        if fresh is None:
            failed.append(_member_id(current))
        elif fresh.needs_store:
            retried.append(fresh)
        else:
            run.evaluated += 1
    writes = [_write_of(evaluation, at) for evaluation in retried]
    for _lost_twice in _count(retried, _write_all(writes, program, store, pool), run):
        run.add(TierRun(evaluated=1, stale=1))
    return run, failed


def _counts(page: ScanPage, run: TierRun, failed: int, units: tuple[float, float]) -> PageCounts:
    return PageCounts(
        scanned=page.scanned,
        members=len(page.items),
        evaluated=run.evaluated,
        written=run.written,
        stale=run.stale,
        failed=failed,
        at_risk=run.at_risk,
        read_units=units[0],
        write_units=units[1],
        changes=dict(run.changes),
    )


def _check_program(
    job: RecalculationJob, program: Program, store: RecalculationStore, at: str
) -> bool:
    """False when the job is superseded by the worker's newer configuration."""
    if job.program_id != program.id:
        raise ValueError(f"job {job.job_id} is for program {job.program_id}, not {program.id}")
    if program.version < job.program_version:
        raise ProgramMismatch(
            f"job {job.job_id} needs {program.id} version {job.program_version}; "
            f"this worker runs version {program.version}"
        )
    if program.version > job.program_version:
        store.finish_job(job.job_id, JobState.SUPERSEDED, at)
        return False
    return True


def _admit(
    message: SegmentMessage,
    program: Program,
    store: RecalculationStore,
    clock: Callable[[], datetime],
) -> tuple[RecalculationJob, SegmentState] | str:
    """The job and the checkpoint to process ``message`` from, or why it is skipped."""
    job = store.get_job(message.job_id)
    if job is None or message.segment >= job.segments:
        return "unknown_job"
    if job.state is not JobState.RUNNING:
        return "job_finished"
    if not _check_program(job, program, store, to_utc_iso(clock())):
        return JobState.SUPERSEDED.value
    state = store.get_segment(job.job_id, message.segment)
    step = plan(message, state)
    if step is not Step.PROCESS:
        return step.value
    return job, state


def run_segment(
    message: SegmentMessage,
    program: Program,
    store: RecalculationStore,
    send: Callable[[SegmentMessage], None],
    remaining_ms: Callable[[], int],
    clock: Callable[[], datetime] = utc_now,
    margin_ms: int = MARGIN_MS,
    writers: int | None = None,
) -> SegmentRun:
    """Process one message: pages from the segment's checkpoint while more than ``margin_ms``
    remain (at least one page, so that a job always progresses), checkpointing each; then hand
    off to a continuation message, or finish the segment (and the job, with its last segment).

    Redelivered and duplicate messages are recognised from the checkpoint (``plan``). Raises
    ``ProgramMismatch`` when this worker's configuration is older than the job's (the message
    is retried), and lets DynamoDB and SQS errors through (the message is retried from the
    last checkpoint). ``writers`` threads send a page's write batches (default ``WRITERS``;
    1: in this thread); the next page's Scan runs in one more thread while they do.
    """
    started = time.perf_counter()
    admitted = _admit(message, program, store, clock)
    if isinstance(admitted, str):
        return SegmentRun(message, admitted)
    job, state = admitted
    outcome = SegmentRun(message, "unknown_job")
    page = state.page
    threads = WRITERS if writers is None else writers
    pool = ThreadPoolExecutor(threads, "recalculation-writer") if threads > 1 else None
    scanner = ThreadPoolExecutor(1, "recalculation-scan")

    def scan(start: str | None) -> ScanPage:
        return store.scan_members(program.id, message.segment, job.segments, start, job.page_size)

    try:
        scanned = scan(state.last_key)
        while True:
            now = clock()
            # A worker starts a page only while more than ``margin_ms`` remain. Once this page
            # is read, its successor's Scan starts at once, in the background, and its round
            # trip overlaps this page's evaluation and writes. It is only a read: the
            # checkpoint still moves one page at a time, after this page's writes.
            upcoming: Future[ScanPage] | None = None
            if scanned.last_key is not None and remaining_ms() >= margin_ms:
                upcoming = scanner.submit(scan, scanned.last_key)
            before = store.consumed()
            run, failed = evaluate_page(
                scanned.items, now, program, store, job.allow_downgrades, pool
            )
            after = store.consumed()
            units = (scanned.read_units + after[0] - before[0], after[1] - before[1])
            counts = _counts(scanned, run, len(failed), units)
            at = to_utc_iso(now)
            if not store.checkpoint(
                job.job_id, message.segment, page, counts, scanned.last_key, at
            ):
                outcome.outcome = "conflict"
                break
            outcome.pages += 1
            outcome.members += len(scanned.items)
            outcome.run.add(run)
            outcome.failed_members.extend(failed[: MAX_FAILED_IDS - len(outcome.failed_members)])
            page += 1
            if scanned.last_key is None:
                outcome.outcome = "done"
                _finish_if_complete(job, store, at)
                break
            if upcoming is None:
                following = SegmentMessage(job.job_id, message.segment, page)
                send(following)
                store.mark_sent(job.job_id, message.segment, page)
                outcome.outcome = "handed_off"
                outcome.next_message = following
                break
            scanned = upcoming.result()
    finally:
        scanner.shutdown(wait=True, cancel_futures=True)
        if pool is not None:
            pool.shutdown()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _finish_if_complete(job: RecalculationJob, store: RecalculationStore, at: str) -> None:
    # Each segment looks after its own last checkpoint (strongly consistent reads), so the last
    # segment to finish always sees every segment done, even when two finish together.
    states = store.segments(job.job_id)
    if sum(1 for state in states if state.done) == job.segments:
        store.finish_job(job.job_id, JobState.DONE, at)


# -- progress --------------------------------------------------------------------------------


class JobProgress(Struct, frozen=True):
    job: RecalculationJob
    segments: list[SegmentState]
    """Every segment, in order; those without a checkpoint yet are at page 0."""

    @property
    def total(self) -> PageCounts:
        total = PageCounts()
        for segment in self.segments:
            total = total.plus(segment.counts)
        return total

    @property
    def done_segments(self) -> int:
        return sum(1 for segment in self.segments if segment.done)

    def segment_fraction(self, segment: SegmentState) -> float | None:
        """Share of the segment done: exact when done, else estimated from the items the
        segment read against its share of the table's item count (at most 99%)."""
        if segment.done or self.job.state is JobState.DONE:
            return 1.0
        if not self.job.estimated_items:
            return None
        share = self.job.estimated_items / self.job.segments
        return min(0.99, segment.counts.scanned / share) if share else None

    @property
    def fraction(self) -> float | None:
        fractions = [self.segment_fraction(segment) for segment in self.segments]
        if any(value is None for value in fractions):
            return None
        return sum(value or 0.0 for value in fractions) / len(fractions)

    def as_dict(self) -> dict[str, Any]:
        def counts(value: PageCounts) -> dict[str, Any]:
            return {
                "scanned": value.scanned,
                "members": value.members,
                "evaluated": value.evaluated,
                "written": value.written,
                "stale": value.stale,
                "failed": value.failed,
                "atRisk": value.at_risk,
                "readUnits": round(value.read_units, 1),
                "writeUnits": round(value.write_units, 1),
                "changes": dict(value.changes),
            }

        job = self.job
        return {
            "jobId": job.job_id,
            "programId": job.program_id,
            "programVersion": job.program_version,
            "state": job.state.value,
            "allowDowngrades": job.allow_downgrades,
            "createdAt": job.created_at,
            "finishedAt": job.finished_at,
            "segments": job.segments,
            "segmentsDone": self.done_segments,
            "fraction": self.fraction,
            "total": counts(self.total),
            "bySegment": [
                {
                    "segment": state.segment,
                    "page": state.page,
                    "done": state.done,
                    "fraction": self.segment_fraction(state),
                    "updatedAt": state.updated_at,
                    **counts(state.counts),
                }
                for state in self.segments
            ],
        }


def job_progress(store: RecalculationStore, job_id: str) -> JobProgress:
    job = store.get_job(job_id)
    if job is None:
        raise ValueError(f"no job {job_id}")
    found = {state.segment: state for state in store.segments(job_id)}
    return JobProgress(
        job, [found.get(segment, SegmentState(segment)) for segment in range(job.segments)]
    )


# -- running a job in-process ----------------------------------------------------------------


def _budget(invocation_ms: int | None) -> Callable[[], int]:
    """The remaining time of one simulated invocation, from now."""
    if invocation_ms is None:
        return lambda: 1 << 40
    deadline = time.monotonic() + invocation_ms / 1000
    return lambda: int((deadline - time.monotonic()) * 1000)


def run_in_process(
    program: Program,
    messages: Sequence[SegmentMessage],
    store_for: Callable[[int], RecalculationStore],
    clock: Callable[[], datetime] = utc_now,
    invocation_ms: int | None = None,
    margin_ms: int = MARGIN_MS,
    parallel: bool = True,
    writers: int | None = None,
) -> list[SegmentRun]:
    """Run messages as the SQS fan-out would, without SQS: one thread per segment, each
    following its chain of continuation messages (``parallel=False``: one chain after the
    other, in this thread). ``invocation_ms`` gives every simulated invocation that much time
    (None: unlimited, one invocation per segment). ``store_for`` gives each segment its own
    repository (its own capacity meter; boto3 clients are thread-safe and may be shared)."""
    runs: list[SegmentRun] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def chain(first: SegmentMessage) -> None:
        store = store_for(first.segment)
        pending = [first]
        try:
            while pending:
                message = pending.pop(0)
                result = run_segment(
                    message,
                    program,
                    store,
                    pending.append,
                    _budget(invocation_ms),
                    clock,
                    margin_ms,
                    writers,
                )
                with lock:
                    runs.append(result)
        except BaseException as exc:  # reported by the caller's thread
            with lock:
                errors.append(exc)

    if not parallel:
        for message in messages:
            chain(message)
    threads = [
        threading.Thread(target=chain, args=(message,), name=f"segment-{message.segment}")
        for message in messages
        if parallel
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return runs
