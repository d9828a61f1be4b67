"""Full recalculation on a moto table: checkpoints, resuming, redelivery, the downgrade policy,
and the batched writes' outcomes (applied, lost to a concurrent change once or twice, member
gone).

moto runs no PartiQL ``UPDATE`` with a condition, so the repository here carries out each write
of a batch with ``apply_tier`` (the same condition, one UpdateItem each): the use case's
handling of the results is what these tests cover. The batch itself, and that DynamoDB Local
evaluates each statement's condition, are tested in
tests/integration/test_full_recalculation.py."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from infra import recalc
from shared.dal.recalculation import RecalculationRepository, tier_changes
from shared.domain.program import Program
from shared.domain.recalculation import (
    STATEMENTS_PER_BATCH,
    JobState,
    PageCounts,
    ScanPage,
    SegmentMessage,
    SegmentState,
    Step,
    TierWrite,
    TierWriteResult,
    plan,
)
from shared.domain.tiers import Trigger, evaluate
from shared.domain.window import block_name, pack_days
from shared.logic import recalculation
from shared.logic.recalculation import (
    ProgramMismatch,
    SegmentRun,
    job_progress,
    resume_messages,
    run_in_process,
    run_segment,
    start_job,
)
from shared.logic.tiers import evaluate_member
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, sqs_event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
PERIOD_END = date(2027, 1, 1)


def clock() -> datetime:
    return NOW


def changed_program(**tiers: int) -> Program:
    """cart-star version 2 with other thresholds."""
    base = load_program("cart-star")
    thresholds = {"gold": 200, "platinum": 1000, "diamond": 2000, **tiers}
    return Program.model_validate(
        {
            **base.model_dump(),
            "version": base.version + 1,
            "tiers": [
                {"id": tier.id, "name": tier.name, "min_points": thresholds[tier.id]}
                for tier in base.tiers
            ],
        }
    )


NEW = changed_program(gold=300, platinum=600)


@pytest.fixture(autouse=True)
def one_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers write from their own thread: moto is not thread-safe."""
    monkeypatch.setattr(recalculation, "WRITERS", 1)


class OneByOne(RecalculationRepository):
    """Each write of a batch as ``apply_tier`` with the same condition (moto has no PartiQL
    ``UPDATE``); a failed condition answers the member as it stood, as the batch does."""

    batches: list[int]

    def write_tiers(self, program_id: str, writes: Any) -> list[TierWriteResult]:
        assert len(writes) <= STATEMENTS_PER_BATCH
        self.batches = [*getattr(self, "batches", []), len(writes)]
        results = []
        for write in writes:
            applied = write.decision is None or self.apply_tier(
                program_id, write.member_id, write.decision, write.version, write.at
            )
            if applied:
                self.remove_buckets(program_id, write.member_id, write.remove)
                results.append(TierWriteResult(True))
            else:
                results.append(TierWriteResult(False, self.get_member(program_id, write.member_id)))
        return results


@pytest.fixture
def store(moto_table: str) -> RecalculationRepository:
    return OneByOne(moto_table, boto3.client("dynamodb"), sleep=lambda _: None)


def seed_member(
    store: RecalculationRepository, member_id: str, points: int, program: Program
) -> None:
    """A member with ``points`` spread over the last 30 days, evaluated by the old program."""
    item: dict[str, Any] = {
        "pk": f"P#{program.id}#M#{member_id}",
        "sk": "MEMBER",
        "memberId": member_id,
        "programId": program.id,
        "lifetimePoints": points,
        "ordersCompleted": points // 10,
        "v": 1,
    }
    item.update(
        pack_days(
            {
                TODAY - timedelta(days=day * 10): points // 3 + (points % 3 if day == 0 else 0)
                for day in range(3)
            }
        )
    )
    serializer = TypeSerializer()
    store.client.put_item(
        TableName=store.table_name, Item={k: serializer.serialize(v) for k, v in item.items()}
    )
    stored = store.get_member(program.id, member_id)
    assert stored is not None
    evaluate_member(stored, NOW - timedelta(hours=1), program, Trigger.SCHEDULE, store)


POINTS = [0, 50, 150, 210, 250, 290, 310, 450, 620, 900, 1100, 1900, 2100, 2500] * 2


@pytest.fixture
def members(store: RecalculationRepository) -> dict[str, int]:
    old = load_program("cart-star")
    seeded = {f"m{index:03d}": points for index, points in enumerate(POINTS)}
    for member_id, points in seeded.items():
        seed_member(store, member_id, points, old)
    return seeded


def tiers(store: RecalculationRepository, ids: Any) -> dict[str, str | None]:
    found = {}
    for member_id in ids:
        item = store.get_member("cart-star", member_id)
        assert item is not None
        found[member_id] = item.get("tier")
    return found


def drain(
    program: Program, messages: list[SegmentMessage], store: RecalculationRepository, **options: Any
) -> list[SegmentRun]:
    """The messages and their continuations, one chain after the other (moto is not
    thread-safe)."""
    return run_in_process(program, messages, lambda _s: store, clock, parallel=False, **options)


def budget(pages: int) -> Callable[[], int]:
    """Remaining time that lasts for ``pages`` pages, then falls under the margin."""
    calls = iter(range(1 << 30))
    return lambda: 10**9 if next(calls) < pages - 1 else 0


# -- the pure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_page", "state", "step"),
    [
        (0, SegmentState(0), Step.PROCESS),
        (3, SegmentState(0, page=3, sent=3), Step.PROCESS),
        (3, SegmentState(0, page=5, sent=5), Step.SKIP_HANDED_OFF),
        (3, SegmentState(0, page=5, sent=3), Step.PROCESS),  # hand-off lost: take over
        (6, SegmentState(0, page=5, sent=5), Step.SKIP_AHEAD),
        (5, SegmentState(0, page=5, sent=5, done=True), Step.SKIP_DONE),
    ],
)
def test_plan_decides_from_the_checkpoint(
    message_page: int, state: SegmentState, step: Step
) -> None:
    assert plan(SegmentMessage("j", 0, message_page), state) is step


def test_messages_round_trip_and_reject_garbage() -> None:
    message = SegmentMessage("job-1", 3, 7)
    assert SegmentMessage.from_json(message.to_json()) == message
    for body in ("", "{}", '{"jobId": "j", "segment": -1, "page": 0}', "[1]"):
        with pytest.raises(ValueError, match="not a recalculation message"):
            SegmentMessage.from_json(body)


def test_counts_add_up() -> None:
    one = PageCounts(scanned=3, members=2, evaluated=2, written=1, changes={"gold->None": 1})
    two = one.plus(PageCounts(scanned=1, members=1, evaluated=1, changes={"gold->None": 2}))
    assert (two.scanned, two.members, two.evaluated, two.written) == (4, 3, 3, 1)
    assert two.changes == {"gold->None": 3}


# -- checkpoints and resuming ------------------------------------------------------------------


def test_a_worker_checkpoints_each_page_and_hands_off_when_time_runs_out(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    job, messages = start_job(NEW, 2, store, NOW, page_size=5)
    sent: list[SegmentMessage] = []
    first = run_segment(messages[0], NEW, store, sent.append, budget(2), clock)
    assert first.outcome == "handed_off" and first.pages == 2
    assert sent == [SegmentMessage(job.job_id, 0, 2)]
    state = store.get_segment(job.job_id, 0)
    assert (state.page, state.sent, state.done) == (2, 2, False)
    assert state.last_key is not None and state.counts.scanned == 10

    # The continuation resumes where the checkpoint stands, until the segment is finished.
    while sent:
        result = run_segment(sent.pop(), NEW, store, sent.append, budget(2), clock)
    assert result.outcome == "done"
    run_segment(messages[1], NEW, store, sent.append, budget(100), clock)
    progress = job_progress(store, job.job_id)
    assert progress.job.state is JobState.DONE and progress.fraction == 1.0
    assert progress.total.members == progress.total.evaluated == len(members)


def _recording_scans(
    store: RecalculationRepository, monkeypatch: pytest.MonkeyPatch
) -> list[ScanPage]:
    pages: list[ScanPage] = []
    original = store.scan_members

    def recording(*args: Any, **kwargs: Any) -> ScanPage:
        page = original(*args, **kwargs)
        pages.append(page)
        return page

    monkeypatch.setattr(store, "scan_members", recording)
    return pages


def test_the_next_page_is_read_ahead_only_when_the_worker_will_process_it(
    store: RecalculationRepository, members: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = _recording_scans(store, monkeypatch)
    job, messages = start_job(NEW, 1, store, NOW, page_size=5)
    sent: list[SegmentMessage] = []
    first = run_segment(messages[0], NEW, store, sent.append, budget(2), clock)
    # Two pages processed, no third page read for nothing before the hand-off.
    assert (first.outcome, first.pages, len(pages)) == ("handed_off", 2, 2)
    while sent:
        last = run_segment(sent.pop(), NEW, store, sent.append, budget(100), clock)
    assert last.outcome == "done"
    state = store.get_segment(job.job_id, 0)
    # Every page read once, and its Scan's units counted once, in its own checkpoint, although
    # the next page was read while this one's members were written.
    assert len(pages) == state.page
    assert state.counts.members == len(members)
    scan_units = sum(page.read_units for page in pages)
    assert scan_units > 0
    assert state.counts.read_units == pytest.approx(scan_units)


def test_allow_downgrades_false_keeps_tiers_until_the_period_ends(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    before = tiers(store, members)
    job, messages = start_job(NEW, 3, store, NOW)
    drain(NEW, messages, store)
    after = tiers(store, members)
    for member_id, points in members.items():
        item = store.get_member("cart-star", member_id)
        assert item is not None
        if before[member_id] == "gold" and points < 300:
            # Below the new Gold: kept, and looked at again when the quarter ends.
            assert after[member_id] == "gold" and item["checkOn"] == PERIOD_END.isoformat()
        elif 600 <= points < 1000:
            assert after[member_id] == "platinum"  # upgrades apply at once
            assert item["tierReason"] == "policy_changed"
        else:
            assert after[member_id] == before[member_id]
    total = job_progress(store, job.job_id).total
    assert total.changes == {"gold->platinum": sum(1 for p in members.values() if 600 <= p < 1000)}


def test_allow_downgrades_true_downgrades_now(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    _, messages = start_job(NEW, 2, store, NOW, allow_downgrades=True)
    drain(NEW, messages, store)
    after = tiers(store, members)
    for member_id, points in members.items():
        if 200 <= points < 300:
            assert after[member_id] is None
    item = store.get_member("cart-star", "m003")  # 210 points
    assert item is not None and item["tierReason"] == "policy_changed"


def test_a_redelivered_message_changes_nothing(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    job, messages = start_job(NEW, 2, store, NOW, page_size=4)
    sent: list[SegmentMessage] = []
    run_segment(messages[0], NEW, store, sent.append, budget(2), clock)
    handed_off = store.get_segment(job.job_id, 0)

    # SQS delivers the first message again while the continuation waits: skipped.
    store.meter.reset()
    again = run_segment(messages[0], NEW, store, sent.append, budget(2), clock)
    assert again.outcome == "skip_handed_off" and again.pages == 0
    assert store.meter.write_units == 0 and len(sent) == 1
    assert store.get_segment(job.job_id, 0) == handed_off

    # Once the job is done, every old message is a no-op.
    drain(NEW, [*sent, messages[1]], store)
    snapshot = {m: store.get_member("cart-star", m) for m in members}
    states = store.segments(job.job_id)
    store.meter.reset()
    for message in [*messages, *sent, SegmentMessage(job.job_id, 0, 1)]:
        result = run_segment(message, NEW, store, sent.append, budget(9), clock)
        assert result.outcome in {"job_finished"}
    assert store.meter.write_units == 0
    assert {m: store.get_member("cart-star", m) for m in members} == snapshot
    assert store.segments(job.job_id) == states


def test_a_lost_hand_off_is_taken_over_by_the_redelivered_message(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    """The worker checkpointed, then died before sending its continuation: SQS redelivers its
    own message, which resumes from the checkpoint; no page is counted twice."""
    job, messages = start_job(NEW, 1, store, NOW, page_size=6)

    def crash(_message: SegmentMessage) -> None:
        raise ConnectionError("the invocation ended before the message went out")

    with pytest.raises(ConnectionError):
        run_segment(messages[0], NEW, store, crash, budget(2), clock)
    assert store.get_segment(job.job_id, 0).page == 2

    runs = drain(NEW, messages, store)  # the redelivery
    assert runs[0].outcome == "done"
    total = job_progress(store, job.job_id).total
    assert total.members == total.evaluated == len(members)


def test_a_duplicate_delivery_stops_at_the_first_page_it_loses(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    job, messages = start_job(NEW, 1, store, NOW, page_size=5)
    real_get_segment = store.get_segment
    sent: list[SegmentMessage] = []

    def get_segment_then_lose_the_race(job_id: str, segment: int) -> SegmentState:
        state = real_get_segment(job_id, segment)
        # The twin delivery checkpoints the same page meanwhile.
        twin = OneByOne(store.table_name, store.client)
        run_segment(messages[0], NEW, twin, sent.append, budget(1), clock)
        return state

    store.get_segment = get_segment_then_lose_the_race  # type: ignore[method-assign]
    result = run_segment(messages[0], NEW, store, sent.append, budget(5), clock)
    assert result.outcome == "conflict" and result.pages == 0
    state = real_get_segment(job.job_id, 0)
    assert state.page == 1 and state.counts.scanned == 5  # counted once


def test_resume_restarts_unfinished_segments_from_their_checkpoints(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    job, messages = start_job(NEW, 3, store, NOW, page_size=4)
    run_segment(messages[1], NEW, store, lambda _m: None, budget(1), clock)
    assert resume_messages(store, job.job_id) == [
        SegmentMessage(job.job_id, 0, 0),
        SegmentMessage(job.job_id, 1, 1),
        SegmentMessage(job.job_id, 2, 0),
    ]


# -- configuration versions, bad data ------------------------------------------------------------


def test_a_worker_on_an_older_configuration_retries_and_a_newer_one_supersedes(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    job, messages = start_job(NEW, 1, store, NOW)
    with pytest.raises(ProgramMismatch):
        run_segment(messages[0], load_program("cart-star"), store, print, budget(1), clock)
    newer = Program.model_validate({**NEW.model_dump(), "version": NEW.version + 1})
    result = run_segment(messages[0], newer, store, print, budget(1), clock)
    assert result.outcome == "superseded"
    found = store.get_job(job.job_id)
    assert found is not None and found.state is JobState.SUPERSEDED


def test_a_malformed_member_is_counted_and_the_job_goes_on(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": "P#cart-star#M#m004"}, "sk": {"S": "MEMBER"}},
        UpdateExpression="SET #b = :bad",
        ExpressionAttributeNames={"#b": block_name(TODAY)},
        ExpressionAttributeValues={":bad": {"S": "lots"}},
    )
    job, messages = start_job(NEW, 1, store, NOW)
    [result] = drain(NEW, messages, store)
    assert result.outcome == "done" and result.failed_members == ["m004"]
    total = job_progress(store, job.job_id).total
    assert total.failed == 1 and total.evaluated == len(members) - 1


def test_stale_members_are_read_again(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    """A member whose version moved after the Scan read it is re-read and evaluated again."""
    real_scan = store.scan_members

    def scan_then_order_arrives(*args: Any, **kwargs: Any) -> Any:
        page = real_scan(*args, **kwargs)
        for item in page.items:
            store.client.update_item(
                TableName=store.table_name,
                Key={"pk": {"S": item["pk"]}, "sk": {"S": "MEMBER"}},
                UpdateExpression="ADD v :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return page

    store.scan_members = scan_then_order_arrives  # type: ignore[method-assign]
    job, messages = start_job(NEW, 1, store, NOW)
    drain(NEW, messages, store)
    total = job_progress(store, job.job_id).total
    assert total.stale == 0 and total.changes["gold->platinum"] > 0
    assert tiers(store, ["m008"]) == {"m008": "platinum"}  # 620 points


class Batches:
    """A store of canned batch answers: ``lose[member]`` is how many of its writes fail their
    condition (the member then stands at a newer version, one more order); ``gone`` members
    no longer exist."""

    def __init__(self, items: dict[str, dict[str, Any]], lose: dict[str, int], gone: set[str]):
        self.items, self.lose, self.gone = items, dict(lose), gone
        self.batches: list[list[TierWrite]] = []

    def write_tiers(self, program_id: str, writes: Any) -> list[TierWriteResult]:
        assert len(writes) <= STATEMENTS_PER_BATCH and program_id == "cart-star"
        self.batches.append(list(writes))
        results = []
        for write in writes:
            if write.member_id in self.gone:
                results.append(TierWriteResult(False))
            elif self.lose.get(write.member_id, 0) > 0:
                self.lose[write.member_id] -= 1
                current = self.items[write.member_id]
                current = self.items[write.member_id] = {**current, "v": current["v"] + 1}
                results.append(TierWriteResult(False, current))
            else:
                results.append(TierWriteResult(True))
        return results


def _gold_member(member_id: str, points: int) -> dict[str, Any]:
    """A Gold member under the old program, with ``points`` this month."""
    item: dict[str, Any] = {
        "pk": f"P#cart-star#M#{member_id}",
        "sk": "MEMBER",
        "memberId": member_id,
        "programId": "cart-star",
        "v": 5,
        "tier": "gold",
        "tierAt": "20261122T120000Z",
        **pack_days({TODAY - timedelta(days=2): points}),
    }
    return item


def test_a_batch_whose_statements_fail_their_condition_reevaluates_or_counts_them_stale() -> None:
    """60 members move gold -> platinum (620 points): three batches (25 + 25 + 10). One lost
    once to an order is evaluated again from the item the batch answered and written in a
    second round, at its new version; one lost twice is stale; one no longer exists."""
    items = {f"m{index:03d}": _gold_member(f"m{index:03d}", 620) for index in range(60)}
    store = Batches(dict(items), lose={"m007": 1, "m030": 2}, gone={"m059"})
    run, failed = recalculation.evaluate_page(
        list(items.values()),
        NOW,
        NEW,
        store,
        allow_downgrades=False,
    )
    assert failed == []
    assert [len(batch) for batch in store.batches] == [25, 25, 10, 2]
    second = {write.member_id: write for write in store.batches[3]}
    assert set(second) == {"m007", "m030"}
    assert second["m007"].version == 6 and second["m030"].version == 6  # re-read, not reused
    assert all(write.decision is not None for write in second.values())
    # 58 written (m007 in the second round); m030 (lost twice) and m059 (gone) are stale.
    assert run.evaluated == 60 and run.written == 58 and run.stale == 2
    assert run.changes == {"gold->platinum": 58}


def test_a_member_that_cannot_be_written_is_counted_failed_and_the_batch_goes_on() -> None:
    """No member id, or a version that is not a number: named in ``failed``, left out of the
    batch; the other members are written."""
    items = {f"m{index:03d}": _gold_member(f"m{index:03d}", 620) for index in range(3)}
    del items["m000"]["memberId"]
    items["m001"]["v"] = "five"
    store = Batches(dict(items), lose={}, gone=set())
    run, failed = recalculation.evaluate_page(
        list(items.values()), NOW, NEW, store, allow_downgrades=False
    )
    assert failed == ["P#cart-star#M#m000", "m001"]
    assert [[write.member_id for write in batch] for batch in store.batches] == [["m002"]]
    assert (run.evaluated, run.written) == (1, 1)


def test_a_member_that_needs_no_write_once_read_again_is_only_evaluated() -> None:
    """The concurrent change already did it (the order's own stream evaluation wrote
    platinum): the second evaluation finds nothing to write."""
    items = {"m001": _gold_member("m001", 620)}
    store = Batches(dict(items), lose={"m001": 1}, gone=set())

    def already_platinum(program_id: str, writes: Any) -> list[TierWriteResult]:
        """The order's stream evaluation wrote this very decision first, at version 6."""
        store.batches.append(list(writes))
        sets, removes = tier_changes(program_id, writes[0])
        current = {k: v for k, v in items["m001"].items() if k not in removes}
        current.update(sets, v=6)
        return [TierWriteResult(False, current)]

    store.write_tiers = already_platinum  # type: ignore[method-assign]
    run, failed = recalculation.evaluate_page(
        list(items.values()),
        NOW,
        NEW,
        store,
        allow_downgrades=False,
    )
    assert (run.evaluated, run.written, run.stale, failed) == (1, 0, 0, [])
    assert len(store.batches) == 1


def test_the_new_tier_is_what_evaluate_says(
    store: RecalculationRepository, members: dict[str, int]
) -> None:
    expected = {}
    for member_id in members:
        item = store.get_member("cart-star", member_id)
        assert item is not None
        expected[member_id] = evaluate(item, TODAY, NEW, Trigger.RECALCULATION, False).tier
    _, messages = start_job(NEW, 4, store, NOW, page_size=3)
    drain(NEW, messages, store, invocation_ms=0, margin_ms=1)
    assert tiers(store, members) == expected


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_runs_a_local_job_and_reports_progress(
    store: RecalculationRepository, members: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    code = recalc.main(["start", "--segments", "1", "--local", "--json", "--quiet"], out)
    assert code == 0
    text = out.getvalue()
    report = json.loads(text[text.index("{") :])
    assert report["state"] == "done" and report["total"]["members"] == len(members)
    assert report["segmentsDone"] == 1 and len(report["bySegment"]) == 1

    status = io.StringIO()
    assert recalc.main(["status", report["jobId"]], status) == 0
    assert "100%" in status.getvalue() and "segments done 1/1" in status.getvalue()
    with pytest.raises(SystemExit):
        recalc.main(["start", "--segments", "2"], io.StringIO())


# -- the Lambda handler ----------------------------------------------------------------------


def test_the_worker_function_hands_off_through_its_queue(
    store: RecalculationRepository,
    members: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed by SQS: with less than the margin left, one page, then the continuation message
    goes to its own queue; a malformed message fails alone."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="recalculation")["QueueUrl"]
    monkeypatch.setenv("RECALCULATION_QUEUE_URL", queue_url)
    app = load_function("tier_full_recalculation")
    job, messages = start_job(load_program("cart-star"), 2, store, NOW, page_size=5)

    response = app.lambda_handler(sqs_event(messages[1].to_json(), "{no"), FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [SegmentMessage.from_json(m["Body"]) for m in received] == [
        SegmentMessage(job.job_id, 1, 1)
    ]
    assert store.get_segment(job.job_id, 1).sent == 1
