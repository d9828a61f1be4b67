"""Full recalculation on DynamoDB Local: 4 parallel Scan segments over a few hundred members
after a threshold change, an interrupted job resumed from its checkpoints, redeliveries."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config

from infra import recalc
from shared.dal.recalculation import RecalculationRepository
from shared.dal.tiers import check_shard
from shared.domain.program import Program
from shared.domain.recalculation import JobState, SegmentMessage
from shared.domain.tiers import TierDecision, Trigger, evaluate
from shared.domain.timeutil import to_utc_iso
from shared.domain.window import pack_days
from shared.logic.recalculation import (
    job_progress,
    resume_messages,
    run_in_process,
    run_segment,
    start_job,
)
from shared.programs import load_program

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
MEMBERS = 240
SEGMENTS = 4
PAGE = 20
OLD = load_program("cart-star")
NEW = Program.model_validate(
    {
        **OLD.model_dump(),
        "version": OLD.version + 1,
        "tiers": [
            {"id": "gold", "name": "Gold", "min_points": 300},
            {"id": "platinum", "name": "Platinum", "min_points": 800},
            {"id": "diamond", "name": "Diamond", "min_points": 2000},
        ],
    }
)


def clock() -> datetime:
    return NOW


@pytest.fixture
def store(table_name: str) -> RecalculationRepository:
    client = boto3.client("dynamodb", config=Config(max_pool_connections=SEGMENTS + 4))
    return RecalculationRepository(table_name, client)


def fresh(store: RecalculationRepository) -> RecalculationRepository:
    """Another worker: the same client, its own meter."""
    return RecalculationRepository(store.table_name, store.client)


def settled(item: dict[str, Any]) -> dict[str, Any]:
    """The member as the old program's last evaluation left it (what ``apply_tier`` writes)."""
    decision = evaluate(item, TODAY, OLD, Trigger.SCHEDULE)
    member_id = str(item["memberId"])
    state = {**item, "tierAt": to_utc_iso(NOW - timedelta(hours=2))}
    if decision.tier is not None:
        state.update(tier=decision.tier, tierReason="points_gained", tierChangedAt=state["tierAt"])
    if decision.check_on is not None:
        state.update(checkShard=check_shard("cart-star", member_id))
        state.update(checkOn=decision.check_on.isoformat())
    if decision.at_risk_on is not None:
        state.update(atRiskFor=decision.at_risk_on.isoformat(), atRiskTier=decision.tier)
        state.update(atRiskDropsTo=decision.drops_to)
    return state


@pytest.fixture
def members(store: RecalculationRepository) -> dict[str, dict[str, Any]]:
    """Members with 0 to 2,600 points over the last 80 days, in the state the old program
    left them."""
    rng = random.Random(4)
    serializer = TypeSerializer()
    items = []
    for index in range(MEMBERS):
        member_id = f"shopper-{index:04d}"
        item: dict[str, Any] = {
            "pk": f"P#cart-star#M#{member_id}",
            "sk": "MEMBER",
            "memberId": member_id,
            "programId": "cart-star",
            "lifetimePoints": 0,
            "ordersCompleted": 0,
            "v": 3,
        }
        days: dict[date, int] = {}
        for _ in range(rng.randint(0, 30)):
            day = TODAY - timedelta(days=rng.randint(0, 80))
            days[day] = days.get(day, 0) + rng.choice([10, 20, 30, 40])
        item.update(pack_days(days))
        items.append(settled(item))
    # An order item in a member's partition, and another program's member: read, filtered out.
    items.append(
        {"pk": "P#cart-star#M#shopper-0000", "sk": "ORDER#o-1", "memberId": "shopper-0000"}
    )
    items.append({"pk": "P#rewards#M#c-1", "sk": "MEMBER", "programId": "rewards", "memberId": "c"})
    for begin in range(0, len(items), 25):
        store.client.batch_write_item(
            RequestItems={
                store.table_name: [
                    {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in i.items()}}}
                    for i in items[begin : begin + 25]
                ]
            }
        )
    return stored(store)


def expected(members: dict[str, dict[str, Any]], allow: bool = False) -> dict[str, TierDecision]:
    return {
        member_id: evaluate(item, TODAY, NEW, Trigger.RECALCULATION, allow)
        for member_id, item in members.items()
    }


def stored(store: RecalculationRepository) -> dict[str, dict[str, Any]]:
    ids = [f"shopper-{index:04d}" for index in range(MEMBERS)]
    return {str(item["memberId"]): item for item in store.get_members("cart-star", ids)}


def assert_recalculated(store: RecalculationRepository, decisions: dict[str, TierDecision]) -> None:
    found = stored(store)
    assert {m: i.get("tier") for m, i in found.items()} == {m: d.tier for m, d in decisions.items()}
    for member_id, decision in decisions.items():
        check_on = decision.check_on.isoformat() if decision.check_on else None
        assert found[member_id].get("checkOn") == check_on, member_id


def budget(pages: int) -> Callable[[], int]:
    calls = iter(range(1 << 30))
    return lambda: 10**9 if next(calls) < pages - 1 else 0


def table_snapshot(store: RecalculationRepository) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {"TableName": store.table_name, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = start
        response = store.client.scan(**request)
        items.extend(response["Items"])
        start = response.get("LastEvaluatedKey")
        if not start:
            return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def test_a_job_recalculates_every_member_with_progress_counters(
    store: RecalculationRepository, members: dict[str, dict[str, Any]]
) -> None:
    decisions = expected(members)
    changes = Counter(f"{d.current}->{d.tier}" for d in decisions.values() if d.changed)
    assert changes, "the new thresholds must move someone"
    assert all(not d.changed or d.tier is not None for d in decisions.values())

    job, messages = start_job(NEW, SEGMENTS, store, NOW, page_size=PAGE)
    runs = run_in_process(NEW, messages, lambda _s: fresh(store), clock)

    assert_recalculated(store, decisions)
    assert sorted(run.outcome for run in runs) == ["done"] * SEGMENTS
    progress = job_progress(store, job.job_id)
    assert progress.job.state is JobState.DONE and progress.job.finished_at is not None
    assert progress.done_segments == SEGMENTS and progress.fraction == 1.0
    total = progress.total
    assert total.members == total.evaluated == MEMBERS
    # Read but filtered out: the order item, the other program's member, the job's own items.
    assert MEMBERS + 3 <= total.scanned <= MEMBERS + 3 + SEGMENTS
    assert dict(total.changes) == dict(changes)
    assert total.stale == total.failed == 0
    assert total.read_units > 0 and total.write_units > 0
    # Every segment got a share, each in several checkpointed pages.
    for state in progress.segments:
        assert state.done and state.counts.members > 0
        # Limit-sized pages, and a last one that finds nothing after a full page.
        assert state.page == state.counts.scanned // PAGE + 1 > 2


def test_an_interrupted_job_resumes_from_its_checkpoints(
    store: RecalculationRepository, members: dict[str, dict[str, Any]]
) -> None:
    decisions = expected(members, allow=True)
    job, messages = start_job(NEW, SEGMENTS, store, NOW, allow_downgrades=True, page_size=PAGE)

    def lost(_message: SegmentMessage) -> None:
        raise ConnectionError("the invocation died before handing off")

    class DiesMidPage(RecalculationRepository):
        writes = 0

        def apply_tier(self, *args: Any, **kwargs: Any) -> bool:
            self.writes += 1
            if self.writes > 3:
                raise TimeoutError("the invocation died in the middle of a page")
            return super().apply_tier(*args, **kwargs)

    # Segments 0 to 2 checkpoint two pages each, then die before handing off; segment 3 dies
    # in the middle of its first page, after a few member writes.
    for message in messages[:3]:
        with pytest.raises(ConnectionError):
            run_segment(message, NEW, fresh(store), lost, budget(2), clock)
    with pytest.raises(TimeoutError):
        dying = DiesMidPage(store.table_name, store.client)
        run_segment(messages[3], NEW, dying, lost, budget(2), clock)
    progress = job_progress(store, job.job_id)
    assert [state.page for state in progress.segments] == [2, 2, 2, 0]
    assert progress.job.state is JobState.RUNNING and 0 < progress.total.members < MEMBERS

    # SQS redelivers the four messages once their visibility timeout ends.
    runs = run_in_process(NEW, messages, lambda _s: fresh(store), clock)
    assert sorted(run.outcome for run in runs) == ["done"] * SEGMENTS
    assert_recalculated(store, decisions)
    total = job_progress(store, job.job_id).total
    assert total.members == total.evaluated == MEMBERS  # no page counted twice
    assert resume_messages(store, job.job_id) == []


def test_redelivered_messages_are_no_ops(
    store: RecalculationRepository, members: dict[str, dict[str, Any]]
) -> None:
    job, messages = start_job(NEW, SEGMENTS, store, NOW, page_size=PAGE)
    sent: list[SegmentMessage] = []
    first = run_segment(messages[0], NEW, fresh(store), sent.append, budget(1), clock)
    assert first.outcome == "handed_off" and sent == [SegmentMessage(job.job_id, 0, 1)]

    before = table_snapshot(store)
    worker = fresh(store)
    again = run_segment(messages[0], NEW, worker, sent.append, budget(9), clock)
    assert again.outcome == "skip_handed_off" and len(sent) == 1
    assert worker.meter.write_units == 0 and table_snapshot(store) == before

    run_in_process(NEW, [*sent, *messages[1:]], lambda _s: fresh(store), clock)
    assert job_progress(store, job.job_id).job.state is JobState.DONE
    before = table_snapshot(store)
    worker = fresh(store)
    for message in [*messages, *sent, SegmentMessage(job.job_id, 2, 1)]:
        assert run_segment(message, NEW, worker, sent.append, budget(9), clock).outcome == (
            "job_finished"
        )
    assert worker.meter.write_units == 0 and table_snapshot(store) == before


@pytest.fixture
def program_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "cart-star.json"
    path.write_text(json.dumps(NEW.model_dump(mode="json", by_alias=True)))
    yield path


def test_the_cli_runs_and_reports_a_local_job(
    store: RecalculationRepository, members: dict[str, dict[str, Any]], program_file: Path
) -> None:
    out = io.StringIO()
    arguments = ["--table", store.table_name, "--program-file", str(program_file)]
    code = recalc.main(["start", "--segments", str(SEGMENTS), "--local", "--json", *arguments], out)
    text = out.getvalue()
    report = json.loads(text[text.index("\n{") :])
    assert code == 0 and report["state"] == "done" and report["segmentsDone"] == SEGMENTS
    assert report["total"]["evaluated"] == MEMBERS
    assert "100%" in text  # the progress display (one line per change off a terminal)

    status = io.StringIO()
    recalc.main(["status", report["jobId"], "--table", store.table_name], status)
    lines = status.getvalue().splitlines()
    assert len(lines) == SEGMENTS + 4 and "segments done 4/4" in lines[-1]
