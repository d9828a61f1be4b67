"""Full recalculation on DynamoDB Local: 4 parallel Scan segments over a few hundred members
after a threshold change, an interrupted job resumed from its checkpoints, redeliveries; and the
PartiQL batches of tier writes: each statement's condition is evaluated (a batch with some
statements failing leaves those members as they were), a batch writes what ``apply_tier``
writes, and its computed write units are what DynamoDB Local measures for ``apply_tier``."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config

from infra import recalc
from shared import composition
from shared.dal.dynamodb import from_item
from shared.dal.recalculation import RecalculationRepository
from shared.dal.tiers import check_shard
from shared.domain.program import Program
from shared.domain.recalculation import JobState, SegmentMessage, TierWrite, TierWriteResult
from shared.domain.tiers import TierDecision, TierReason, Trigger, evaluate
from shared.domain.timeutil import to_utc_iso
from shared.domain.window import pack_days
from shared.logic.recalculation import (
    job_progress,
    resume_messages,
    run_in_process,
    run_segment,
    start_job,
)
from shared.logic.tiers import evaluate_item
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, sqs_event

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
        def write_tiers(self, program_id: str, writes: Any) -> list[TierWriteResult]:
            # The first few writes of the page's first batch go out, then the invocation dies.
            super().write_tiers(program_id, writes[:3])
            raise TimeoutError("the invocation died in the middle of a page")

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


# -- the batches of tier writes ------------------------------------------------------------------

AT = to_utc_iso(NOW)


def _put(store: RecalculationRepository, item: dict[str, Any]) -> None:
    serializer = TypeSerializer()
    store.client.put_item(
        TableName=store.table_name, Item={k: serializer.serialize(v) for k, v in item.items()}
    )


def _member(member_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "pk": f"P#cart-star#M#{member_id}",
        "sk": "MEMBER",
        "memberId": member_id,
        "programId": "cart-star",
        "v": 4,
        "tier": "gold",
        "tierAt": to_utc_iso(NOW - timedelta(hours=2)).replace("-", "").replace(":", "")[:15] + "Z",
        **attributes,
    }


def _platinum(current: str | None = "gold") -> TierDecision:
    return TierDecision(
        current=current,
        tier="platinum",
        reason=TierReason.POLICY_CHANGED,
        points=900,
        check_on=date(2027, 1, 1),
    )


def _get(store: RecalculationRepository, member_id: str) -> dict[str, Any] | None:
    return store.get_member("cart-star", member_id)


def test_each_statement_of_a_batch_keeps_its_condition(store: RecalculationRepository) -> None:
    """Six writes in one request: two apply; the others fail their condition (an older
    version, a later decision already written, no such member, a member without ``v`` who
    has one now) and leave their members as they were, answering each as it stood. Were
    DynamoDB Local to ignore the conditions, the four would be overwritten."""
    members = {
        "ok": _member("ok"),
        "ok-new": {k: v for k, v in _member("ok-new").items() if k not in {"v", "tier"}},
        "moved": _member("moved", v=5),  # an order landed after the Scan read version 4
        "later": _member("later", tierAt="20261123T130000Z"),  # decided after NOW
        "had-no-v": _member("had-no-v"),  # read without v, has v = 4 now
    }
    for item in members.values():
        _put(store, item)
    read = {member_id: {**item, "v": 4} for member_id, item in members.items()}
    read["ok-new"] = members["ok-new"]
    read["had-no-v"] = {k: v for k, v in members["had-no-v"].items() if k != "v"}
    writes = [
        TierWrite(member_id, read[member_id], _platinum(read[member_id].get("tier")), AT)
        for member_id in ("ok", "moved", "later", "ok-new", "had-no-v")
    ]
    writes.append(TierWrite("ghost", _member("ghost"), _platinum(), AT))

    results = store.write_tiers("cart-star", writes)

    assert store.meter.by_operation == {"BatchExecuteStatement": 1}
    assert [result.applied for result in results] == [True, False, False, True, False, False]
    for member_id in ("ok", "ok-new"):
        found = _get(store, member_id)
        assert found is not None and found["tier"] == "platinum"
        assert found["checkOn"] == "2027-01-01" and found["tierReason"] == "policy_changed"
    for member_id, result in zip(
        ("moved", "later", "had-no-v"), results[1:3] + results[4:5], strict=True
    ):
        assert _get(store, member_id) == members[member_id]  # untouched
        assert result.current == members[member_id]  # the item as it stood
    assert results[5].current is None and _get(store, "ghost") is None  # not created


def test_a_batch_writes_what_apply_tier_writes_and_counts_its_units(
    store: RecalculationRepository,
) -> None:
    """Decisions of every shape (a new tier, a drop to none, a hold, a notice, a check date
    that stays, buckets left behind): ``apply_tier`` (one UpdateItem each, units measured by
    DynamoDB Local) on one copy of each member, the batch on another; the items end equal, and
    the units the batch computes from item sizes are the ones measured."""
    old_block = {"d0": 70}
    decisions = {
        "upgrade": (_member("upgrade", checkShard="x", checkOn="2026-12-01"), _platinum()),
        "drop": (
            _member("drop", checkShard="x", checkOn="2026-11-23", belowSince="2026-11-20"),
            TierDecision("gold", None, TierReason.POINTS_EXPIRED, 10, None),
        ),
        "held": (
            _member("held"),
            TierDecision("gold", "gold", None, 150, date(2027, 1, 1), held_until=date(2027, 1, 1)),
        ),
        "notice": (
            _member("notice", checkShard="x", checkOn="2026-12-10"),
            TierDecision("gold", "gold", None, 250, date(2026, 12, 10), date(2026, 12, 10), None),
        ),
        "same-day": (
            _member("same-day", checkOn="2027-01-01"),
            TierDecision("gold", "platinum", TierReason.POLICY_CHANGED, 900, date(2027, 1, 1)),
        ),
        "new": (
            {k: v for k, v in _member("new").items() if k not in {"tier", "tierAt", "v"}},
            TierDecision(None, "gold", TierReason.POINTS_GAINED, 300, date(2027, 2, 1)),
        ),
    }
    measured = 0.0
    writes = []
    for name, (item, decision) in decisions.items():
        if "checkOn" in item:
            item["checkShard"] = check_shard("cart-star", f"a-{name}")
        by_update = {**item, "pk": f"P#cart-star#M#a-{name}", "memberId": f"a-{name}"}
        by_batch = {**item, "pk": f"P#cart-star#M#b-{name}", "memberId": f"b-{name}"}
        if "checkOn" in item:
            by_batch["checkShard"] = check_shard("cart-star", f"b-{name}")
        for copy in (by_update, by_batch):
            _put(store, {**copy, **old_block})
        before = store.meter.write_units
        version = item.get("v")
        assert store.apply_tier("cart-star", f"a-{name}", decision, version, AT)
        store.remove_buckets("cart-star", f"a-{name}", ["d0"])
        measured += store.meter.write_units - before
        writes.append(TierWrite(f"b-{name}", {**by_batch, **old_block}, decision, AT, ("d0",)))
    # The bucket removal alone is a write of its own with apply_tier: not in the comparison.
    measured -= len(decisions)

    results = store.write_tiers("cart-star", writes)
    assert all(result.applied for result in results)
    for name in decisions:
        updated, batched = _get(store, f"a-{name}"), _get(store, f"b-{name}")
        assert updated is not None and batched is not None
        for copy, prefix in ((updated, "a"), (batched, "b")):
            assert copy.pop("pk") == f"P#cart-star#M#{prefix}-{name}"
            assert copy.pop("memberId") == f"{prefix}-{name}"
            shard = copy.pop("checkShard", None)
            assert shard in {None, check_shard("cart-star", f"{prefix}-{name}")}
        assert batched == updated, name
        assert "d0" not in batched
    # DynamoDB Local reports no ConsumedCapacity for a batch: the units are computed.
    assert store.computed_write_units == measured > len(decisions)


def test_a_member_changed_between_the_scan_and_its_batch_is_evaluated_again(
    store: RecalculationRepository, members: dict[str, dict[str, Any]]
) -> None:
    """Orders land on a few members after their page was read: their statements fail in the
    batch (the others apply), they are evaluated again from the item the batch answered and
    written in a second batch; one whose version moves again meanwhile is counted stale."""
    decisions = expected(members)
    movers = [m for m, d in sorted(decisions.items()) if d.changed][:4]
    assert len(movers) == 4
    loser = movers[0]

    written: set[str] = set()

    class OrdersLand(RecalculationRepository):
        """An order lands on each mover just before its first write, and on the loser before
        every one."""

        def write_tiers(self, program_id: str, writes: Any) -> list[TierWriteResult]:
            for write in writes:
                if write.member_id == loser or (
                    write.member_id in movers and write.member_id not in written
                ):
                    self.client.update_item(
                        TableName=self.table_name,
                        Key={
                            "pk": {"S": f"P#cart-star#M#{write.member_id}"},
                            "sk": {"S": "MEMBER"},
                        },
                        UpdateExpression="ADD v :one",
                        ExpressionAttributeValues={":one": {"N": "1"}},
                    )
                written.add(write.member_id)
            return super().write_tiers(program_id, writes)

    job, messages = start_job(NEW, 1, store, NOW)
    worker = OrdersLand(store.table_name, store.client)
    [run] = run_in_process(NEW, messages, lambda _s: worker, clock)
    assert run.outcome == "done"
    total = job_progress(store, job.job_id).total
    assert total.stale == 1 and total.members == total.evaluated == MEMBERS
    found = stored(store)
    for member_id, decision in decisions.items():
        if member_id != loser:
            assert found[member_id].get("tier") == decision.tier, member_id
    assert found[loser].get("tier") == members[loser].get("tier")  # left to its stream
    assert found[loser]["v"] == members[loser]["v"] + 2
    # The first round's batches (one request per 25 writes), then one more for the movers.
    writes = sum(
        evaluate_item(item, TODAY, NEW, Trigger.RECALCULATION, False).needs_store
        for item in members.values()
    )
    assert worker.meter.by_operation["BatchExecuteStatement"] == -(-writes // 25) + 1
    assert worker.statements == writes + len(movers)


def test_the_scan_decodes_its_items_from_the_answers_json_as_boto3_would(
    store: RecalculationRepository, members: dict[str, dict[str, Any]]
) -> None:
    """The worker's Scan takes its items from the answer's JSON, not from botocore's parse:
    the same items as a plain Scan decoded by boto3 (numbers, maps, lists); a page holding a
    binary value is left to botocore; other Scans on the same client are untouched."""
    _put(store, _member("nested", prefs={"lang": "pt", "n": 3}, tags=["a", Decimal("1.5")]))
    page = store.scan_members("cart-star", 0, 1, None)
    plain = store.client.scan(
        TableName=store.table_name,
        FilterExpression="sk = :member AND programId = :program",
        ExpressionAttributeValues={":member": {"S": "MEMBER"}, ":program": {"S": "cart-star"}},
    )
    assert "Items" in plain and len(plain["Items"]) == MEMBERS + 1
    assert page.items == [from_item(item) for item in plain["Items"]]
    assert page.last_key is None and page.scanned == MEMBERS + 3

    _put(store, _member("binary", avatar=b"\x00\x01"))
    page = store.scan_members("cart-star", 0, 1, None)
    found = {str(item["memberId"]): item for item in page.items}
    assert found["binary"]["avatar"] == b"\x00\x01" and len(found) == MEMBERS + 2


def test_the_worker_function_runs_a_whole_job(
    store: RecalculationRepository,
    members: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Lambda handler, fed each message as SQS would (its continuation messages kept
    instead of sent), takes a job to its end: every member as the new program says (PartiQL
    tier writes), the job marked done when its last segment finishes (the segments' query)."""
    monkeypatch.setenv("TABLE_NAME", store.table_name)
    composition.reset()
    app = load_function("tier_full_recalculation")
    monkeypatch.setattr(app, "load_program", lambda _program_id: NEW)
    queue: list[SegmentMessage] = []
    monkeypatch.setattr(app, "send", queue.append)
    today = datetime.now(UTC).date()  # the handler's clock is the real one
    decisions = {
        member_id: evaluate(item, today, NEW, Trigger.RECALCULATION, False)
        for member_id, item in members.items()
    }
    assert any(decision.changed for decision in decisions.values())
    job, messages = start_job(NEW, SEGMENTS, store, NOW, page_size=PAGE)
    queue.extend(messages)
    while queue:
        response = app.lambda_handler(sqs_event(queue.pop(0).to_json()), FakeContext())
        assert response == {"batchItemFailures": []}
    assert_recalculated(store, decisions)
    assert job_progress(store, job.job_id).job.state is JobState.DONE
    composition.reset()
