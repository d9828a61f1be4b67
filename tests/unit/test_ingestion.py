"""The ingestion use cases on a moto table: ledger effects and their exactly-once rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from shared.dal.ledger import LedgerRepository
from shared.dal.tiers import TierRepository
from shared.domain.events import InboundEvent, parse_detail, parse_envelope
from shared.domain.orders import OrderStatus
from shared.domain.program import Program
from shared.domain.tiers import Trigger, evaluate
from shared.domain.window import day_buckets, window_points
from shared.logic.ingestion import INGESTED_EVENTS, Outcome, ingest
from tests.helpers import order_completed, order_reversed, tip_adjusted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(raw: dict[str, Any]) -> InboundEvent:
    envelope = parse_envelope(raw)
    return parse_detail(envelope.detail_type, envelope.detail, INGESTED_EVENTS)


def apply(raw: dict[str, Any], program: Program, repo: LedgerRepository, attempt: str = "a") -> Any:
    return ingest(event(raw), NOW, program, repo, attempt)


def member(repo: LedgerRepository) -> dict[str, Any]:
    item = repo.get_member("cart-star", "shopper-1")
    assert item is not None
    return item


def test_completion_credits_ten_per_order_on_its_day(
    program: Program, repo: LedgerRepository
) -> None:
    result = apply(
        order_completed(batch_size=2, completed_at="2026-11-20T23:30:00-05:00"), program, repo
    )
    assert result.outcome is Outcome.CREDITED and result.points == 20
    item = member(repo)
    # A double batch is two orders (the badge counts orders, not events).
    assert item["lifetimePoints"] == 20 and item["ordersCompleted"] == 2
    # 23:30 in New York on the 20th is the 21st in UTC, the program's zone.
    assert day_buckets(item) == {date(2026, 11, 21): 20}
    assert window_points(item, date(2026, 11, 23), program) == 20
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and order.status is OrderStatus.CREDITED
    assert order.rule_version == "cart-star@1" and order.customer_id == "cust-1"


def test_redelivery_credits_once(program: Program, repo: LedgerRepository) -> None:
    outcomes = [apply(order_completed(), program, repo, attempt=f"a{i}").outcome for i in range(3)]
    assert outcomes == [Outcome.CREDITED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert member(repo)["lifetimePoints"] == 10


def test_cancellation_reverses_exactly_once(program: Program, repo: LedgerRepository) -> None:
    apply(order_completed(batch_size=3), program, repo)
    first = apply(order_reversed("OrderCancelled"), program, repo, attempt="c1")
    again = apply(order_reversed("OrderRefunded"), program, repo, attempt="c2")
    assert (first.outcome, first.points) == (Outcome.REVERSED, -30)
    assert again.outcome is Outcome.ALREADY_REVERSED
    item = member(repo)
    assert item["lifetimePoints"] == 0 and item["ordersCompleted"] == 0
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and order.points == 30, "the credit entry is never changed"
    assert order.reversal is not None and order.reversal.points == -30
    assert order.reversal.kind == "OrderCancelled"


def test_cancellation_before_completion_prevents_the_credit(
    program: Program, repo: LedgerRepository
) -> None:
    assert apply(order_reversed(), program, repo).outcome is Outcome.CANCELLED_BEFORE_COMPLETION
    assert apply(order_completed(), program, repo).outcome is Outcome.VOIDED
    assert apply(order_completed(), program, repo, attempt="b").outcome is Outcome.DUPLICATE
    assert repo.get_member("cart-star", "shopper-1") is None, "no points from nothing"
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and order.status is OrderStatus.VOID and order.completed_at


def test_tip_lowered_without_reason_marks_the_order(
    program: Program, repo: LedgerRepository
) -> None:
    apply(order_completed(tip="10.00"), program, repo)
    result = apply(tip_adjusted(previous="10.00", new="2.00"), program, repo)
    assert result.outcome is Outcome.TIP_RECORDED and result.tip_baited is True
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and order.tip_baited and order.tip is not None
    assert str(order.tip.amount) == "2.00"
    assert order.tip_at_delivery is not None and str(order.tip_at_delivery.amount) == "10.00"


def test_tip_adjustments_apply_in_time_order_and_once(
    program: Program, repo: LedgerRepository
) -> None:
    later = tip_adjusted(
        previous="10.00",
        new="9.50",
        reason="changed my mind",
        occurred_at="2026-11-23T15:00:00+00:00",
    )
    earlier = tip_adjusted(previous="10.00", new="1.00", occurred_at="2026-11-23T13:00:00+00:00")
    assert apply(later, program, repo).outcome is Outcome.TIP_RECORDED
    assert apply(earlier, program, repo).outcome is Outcome.TIP_STALE
    assert apply(later, program, repo, attempt="x").outcome is Outcome.TIP_STALE
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and not order.tip_baited and order.tip is not None
    assert str(order.tip.amount) == "9.50"


def test_tip_before_completion_keeps_the_delivery_tip_as_baseline(
    program: Program, repo: LedgerRepository
) -> None:
    apply(tip_adjusted(previous="10.00", new="2.00"), program, repo)
    assert apply(order_completed(tip="10.00"), program, repo).outcome is Outcome.CREDITED
    order = repo.get_order("cart-star", "shopper-1", "ord-1")
    assert order is not None and order.tip_baited and order.status is OrderStatus.CREDITED
    assert order.tip is not None and str(order.tip.amount) == "2.00", "latest tip survives"
    assert member(repo)["lifetimePoints"] == 10


def test_own_write_after_an_ambiguous_retry_is_recognised(
    program: Program, repo: LedgerRepository
) -> None:
    apply(order_completed(), program, repo, attempt="same-attempt")
    retry = apply(order_completed(), program, repo, attempt="same-attempt")
    assert retry.outcome is Outcome.CREDITED
    assert member(repo)["lifetimePoints"] == 10


def test_every_write_reports_consumed_capacity(program: Program, repo: LedgerRepository) -> None:
    repo.meter.reset()
    apply(order_completed(), program, repo)
    assert repo.meter.by_operation == {"TransactWriteItems": 1}
    assert repo.meter.calls == 1


def test_a_refused_write_on_a_member_item_is_not_read_as_an_order(
    program: Program, repo: LedgerRepository
) -> None:
    """A tier write losing to a newer member version reports False (it used to raise)."""
    apply(order_completed(batch_size=3), program, repo)
    tiers = TierRepository(repo.table_name, repo.client, sleep=lambda _: None)
    item = member(repo)
    decision = evaluate(item, NOW.date(), program, Trigger.STREAM)
    stale_version = int(item["v"]) - 1
    assert (
        tiers.apply_tier(
            "cart-star", "shopper-1", decision, stale_version, "2026-11-23T12:00:00.000000+00:00"
        )
        is False
    )


def test_a_late_replayed_reversal_after_its_block_was_pruned_breaks_nothing(
    program: Program, repo: LedgerRepository
) -> None:
    """A refund replayed from an archive long after, with its original time: by that time's
    clock the credited day is still in the window, but a later order already pruned its block.
    The reversal recreates the block below zero; the member stays readable and its window
    points are those of the later order."""
    early = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    ingest(
        event(order_completed(order_id="old", completed_at=early.isoformat())),
        early,
        program,
        repo,
        "a",
    )
    ingest(event(order_completed(order_id="new")), NOW, program, repo, "b")
    assert day_buckets(member(repo)) == {date(2026, 11, 23): 10}  # June's block was pruned
    refund = order_reversed(
        kind="OrderRefunded", order_id="old", occurred_at="2026-06-02T09:00:00+00:00"
    )
    ingest(event(refund), datetime(2026, 6, 2, 12, 0, tzinfo=UTC), program, repo, "c")
    item = member(repo)
    assert item["lifetimePoints"] == 10
    assert day_buckets(item) == {date(2026, 6, 1): -10, date(2026, 11, 23): 10}
    assert window_points(item, NOW.date(), program) == 10
    assert evaluate(item, NOW.date(), program, Trigger.STREAM).points == 10
