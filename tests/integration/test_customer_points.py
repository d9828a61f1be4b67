"""The customer program's points on DynamoDB Local: earn, pending, available, holds, capture,
refunds, expiry; each exactly once, under redelivery and concurrency."""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import composition
from shared.dal.customers import CustomerRepository
from shared.domain.customer import points_standing
from shared.domain.errors import (
    HoldClosed,
    HoldMismatch,
    InsufficientPoints,
    InvalidInput,
    NotFound,
)
from shared.domain.events import (
    MembershipChanged,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
)
from shared.logic.customers import (
    CustomerOutcome,
    change_membership,
    credit_customer,
    guesses,
    place_hold,
    refund_customer,
    release_hold,
    settle,
)
from shared.programs import load_program

PROGRAM = load_program("customer-rewards")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CustomerRepository]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield composition.customer_repository()
    composition.reset()


def completed(
    customer: str, total: str, at: datetime = NOW, order_id: str | None = None
) -> OrderCompleted:
    return OrderCompleted.model_validate(
        {
            "orderId": order_id or f"o-{uuid.uuid4().hex[:10]}",
            "memberId": "shopper-1",
            "customerId": customer,
            "completedAt": at.isoformat(),
            "total": {"amount": total, "currency": "USD"},
            "tip": {"amount": "5.00", "currency": "USD"},
        }
    )


def refunded(order: OrderCompleted, at: datetime, amount: str | None = None) -> OrderRefunded:
    detail: dict[str, Any] = {
        "orderId": order.order_id,
        "memberId": order.member_id,
        "occurredAt": at.isoformat(),
    }
    if amount is not None:
        detail["amount"] = {"amount": amount, "currency": "USD"}
    return OrderRefunded.model_validate(detail)


def cancelled(order_id: str, at: datetime) -> OrderCancelled:
    return OrderCancelled.model_validate(
        {"orderId": order_id, "memberId": "shopper-1", "occurredAt": at.isoformat()}
    )


def standing(store: CustomerRepository, customer: str, now: datetime) -> Any:
    return points_standing(PROGRAM, store.get_member(PROGRAM.id, customer), now)


def credit(store: CustomerRepository, event: OrderCompleted, now: datetime = NOW) -> Any:
    return credit_customer(event, now, PROGRAM, store, str(uuid.uuid4()))


def test_points_per_whole_dollar_pending_then_available(store: CustomerRepository) -> None:
    store.meter.reset()
    result = credit(store, completed("c1", "25.99"))
    assert result.outcome is CustomerOutcome.CREDITED
    assert result.points == 50  # 25 whole dollars x 2; the tip is not counted
    # The credit reads nothing: one transaction (its billed units: `make bench`).
    assert store.meter.read_units == 0
    assert store.meter.by_operation == {"TransactWriteItems": 1}
    store.meter.reset()
    credit(store, completed("c1", "9.99", at=NOW - timedelta(hours=1)))
    assert store.meter.by_operation == {"TransactWriteItems": 1}
    assert standing(store, "c1", NOW).pending == 68
    assert standing(store, "c1", NOW).available == 0
    # Pending for 14 whole days after the order's day: available on the 15th day after it.
    assert standing(store, "c1", NOW + timedelta(days=14)).available == 0
    day_after = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert standing(store, "c1", day_after).available == 68
    member = settle("c1", day_after, PROGRAM, store)
    assert member is not None
    assert member["bal"] == 68 and member["pend"] == 0
    assert member["lastDue"]["matured"] == 68
    assert "pd20261208" not in member and member["av202612"] == 68


def test_redelivery_changes_nothing(store: CustomerRepository) -> None:
    event = completed("c2", "10.00")
    outcomes = [credit(store, event).outcome for _ in range(5)]
    assert outcomes == [CustomerOutcome.CREDITED] + [CustomerOutcome.DUPLICATE] * 4
    member = store.get_member(PROGRAM.id, "c2")
    assert member is not None and member["pend"] == 20 and member["ordersCompleted"] == 1


def test_an_order_past_its_pending_period_is_available_at_once(store: CustomerRepository) -> None:
    credit(store, completed("c3", "12.00", at=NOW - timedelta(days=20)))
    member = store.get_member(PROGRAM.id, "c3")
    assert member is not None and member["bal"] == 24 and "pend" not in member


def test_status_applies_from_the_order_after_the_one_that_reached_it(
    store: CustomerRepository,
) -> None:
    first = credit(store, completed("c4", "499.00"))
    assert first.points == 998
    reaching = credit(store, completed("c4", "10.00", at=NOW + timedelta(minutes=1)))
    assert reaching.points == 20  # Silver is reached by this order: it earns x1
    guesses.clear()  # an execution environment that has not seen this customer
    store.meter.reset()
    after = credit(store, completed("c4", "100.00", at=NOW + timedelta(minutes=2)))
    assert after.points == 250  # Silver: x1.25
    # It assumed no status: refused, then made again with the standing the refusal showed.
    assert store.meter.by_operation == {"TransactWriteItems": 2}
    store.meter.reset()
    credit(store, completed("c4", "10.00", at=NOW + timedelta(minutes=2, seconds=30)))
    assert store.meter.by_operation == {"TransactWriteItems": 1}  # now it knows
    view = standing(store, "c4", NOW + timedelta(minutes=3))
    assert view.status is not None and view.status.id == "silver"
    assert view.status_until is not None and view.status_until.year == 2027
    # Next year the status holds (from last year's points).
    next_year = datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert credit(store, completed("c4", "100.00", at=next_year), now=next_year).points == 250


def test_plus_membership_doubles_and_multipliers_multiply(store: CustomerRepository) -> None:
    change = MembershipChanged.model_validate(
        {
            "customerId": "c5",
            "plan": "plus",
            "validUntil": (NOW + timedelta(days=30)).isoformat(),
            "occurredAt": (NOW - timedelta(days=1)).isoformat(),
        }
    )
    assert change_membership(change, PROGRAM, store).outcome is CustomerOutcome.MEMBERSHIP_CHANGED
    assert change_membership(change, PROGRAM, store).outcome is CustomerOutcome.MEMBERSHIP_STALE
    assert credit(store, completed("c5", "10.50")).points == 40
    # Silver (x1.25) and Plus (x2): 100 x 2 x 1.25 x 2 = 500, rounded down once.
    credit(store, completed("c5", "600.00", at=NOW + timedelta(minutes=1)))
    assert credit(store, completed("c5", "100.99", at=NOW + timedelta(minutes=2))).points == 500
    # After the plan's end: x1.25 only.
    later = NOW + timedelta(days=31)
    assert credit(store, completed("c5", "100.00", at=later), now=later).points == 250


def test_membership_refuses_an_unknown_plan(store: CustomerRepository) -> None:
    change = MembershipChanged.model_validate(
        {
            "customerId": "c6",
            "plan": "platinum",
            "validUntil": NOW.isoformat(),
            "occurredAt": NOW.isoformat(),
        }
    )
    with pytest.raises(InvalidInput) as error:
        change_membership(change, PROGRAM, store)
    assert error.value.field == "detail.plan"
    assert store.get_member(PROGRAM.id, "c6") is None


def _available(store: CustomerRepository, customer: str, total: str) -> None:
    credit(store, completed(customer, total, at=NOW - timedelta(days=30)))


def test_hold_capture_and_release(store: CustomerRepository) -> None:
    _available(store, "h1", "1000.00")  # 2,000 points available
    hold = place_hold("h1", "order-a", 1500, NOW, PROGRAM, store, "try-1")
    assert hold.created and hold.points == 1500 and str(hold.value.amount) == "15.00"
    again = place_hold("h1", "order-a", 1500, NOW, PROGRAM, store, "try-2")
    assert not again.created and again.points == 1500
    with pytest.raises(HoldMismatch):
        place_hold("h1", "order-a", 1000, NOW, PROGRAM, store, "try-3")
    with pytest.raises(InsufficientPoints) as refused:
        place_hold("h1", "order-b", 600, NOW, PROGRAM, store, "try-4")
    assert "500 available" in refused.value.message
    view = standing(store, "h1", NOW)
    assert (view.available, view.held) == (500, 1500)
    # The order completes: the hold is captured, and the order earns its own points.
    result = credit(store, completed("h1", "40.00", order_id="order-a"))
    assert result.spent == 1500 and result.points == 100  # 2,000 points this year: Silver
    view = standing(store, "h1", NOW)
    assert (view.available, view.held, view.pending) == (500, 0, 100)
    with pytest.raises(HoldClosed):
        release_hold("h1", "order-a", NOW, PROGRAM, store, "checkout")
    # A second hold, released: the points come back, once.
    place_hold("h1", "order-c", 500, NOW, PROGRAM, store, "try-5")
    assert standing(store, "h1", NOW).available == 0
    for _ in range(3):
        release_hold("h1", "order-c", NOW, PROGRAM, store, "checkout")
    assert standing(store, "h1", NOW).available == 500


@pytest.mark.parametrize(
    ("points", "field"),
    [(400, "points"), (550, "points")],
)
def test_hold_refuses_what_the_program_does_not_allow(
    store: CustomerRepository, points: int, field: str
) -> None:
    _available(store, "h2", "1000.00")
    before = store.get_member(PROGRAM.id, "h2")
    with pytest.raises(InvalidInput) as error:
        place_hold("h2", "order-x", points, NOW, PROGRAM, store, "try")
    assert error.value.field == field
    assert store.get_member(PROGRAM.id, "h2") == before


def test_hold_for_an_unknown_member_is_not_found(store: CustomerRepository) -> None:
    with pytest.raises(NotFound):
        place_hold("nobody", "order-x", 500, NOW, PROGRAM, store, "try")
    assert store.get_member(PROGRAM.id, "nobody") is None


def test_concurrent_holds_never_hold_more_than_available(store: CustomerRepository) -> None:
    """16 holds at once against one balance: never over-held. 25 trials in ``make test``
    (``CUSTOMER_HOLD_TRIALS``; ``make race`` runs 200)."""
    rng = random.Random(7)
    trials = int(os.environ.get("CUSTOMER_HOLD_TRIALS", "25"))
    for trial in range(trials):
        customer = f"race-{trial}"
        balance = rng.randrange(5, 40) * 100
        credit(store, completed(customer, str(balance // 2), at=NOW - timedelta(days=30)))
        asks = [rng.choice([500, 600, 800, 1000]) for _ in range(16)]
        barrier = threading.Barrier(16)

        def hold(
            index: int,
            customer: str = customer,
            asks: list[int] = asks,
            barrier: threading.Barrier = barrier,
        ) -> int:
            barrier.wait()
            try:
                place_hold(customer, f"o{index}", asks[index], NOW, PROGRAM, store, f"t{index}")
            except InsufficientPoints:
                return 0
            return asks[index]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(hold, range(16)))
        member = store.get_member(PROGRAM.id, customer)
        assert member is not None
        held = sum(got)
        assert held <= balance
        assert member["held"] == held and member["bal"] == balance - held >= 0
        # The balance only fell during the trial: a refused hold did not fit when refused, so
        # it does not fit what is left either (no hold was refused that would have fitted).
        assert all(ask > member["bal"] for ask, taken in zip(asks, got, strict=True) if not taken)


def test_partial_refund_claws_back_in_proportion_and_gives_spent_points_back(
    store: CustomerRepository,
) -> None:
    _available(store, "r1", "500.00")  # 1,000 available
    place_hold("r1", "order-r", 500, NOW, PROGRAM, store, "t")
    order = completed("r1", "101.00", order_id="order-r")
    assert credit(store, order).points == 252  # 202 x 1.25 (Silver), rounded down
    later = NOW + timedelta(days=2)
    first = refund_customer(refunded(order, later, "50.50"), "r1", later, PROGRAM, store)
    assert (first.points, first.spent) == (-126, 250)
    again = refund_customer(refunded(order, later, "50.50"), "r1", later, PROGRAM, store)
    assert again.outcome is CustomerOutcome.DUPLICATE
    view = standing(store, "r1", later)
    assert (view.pending, view.available) == (126, 750)
    # The rest of the order, refunded a day later: the rest of the points.
    rest = refund_customer(refunded(order, later + timedelta(days=1)), "r1", later, PROGRAM, store)
    assert (rest.points, rest.spent) == (-126, 250)
    view = standing(store, "r1", later)
    assert (view.pending, view.available) == (0, 1000)


def test_a_clawback_larger_than_the_balance_goes_negative_and_is_repaid(
    store: CustomerRepository,
) -> None:
    order = completed("r2", "100.00", at=NOW - timedelta(days=30))  # 200 available
    credit(store, order)
    credit(store, completed("r2", "150.00", at=NOW - timedelta(days=29)))  # +300 = 500
    place_hold("r2", "spend", 500, NOW, PROGRAM, store, "t")
    credit(store, completed("r2", "1.00", order_id="spend"))  # captured: all 500 spent
    result = refund_customer(refunded(order, NOW), "r2", NOW, PROGRAM, store)
    assert result.points == -200
    member = store.get_member(PROGRAM.id, "r2")
    assert member is not None and member["bal"] == -200
    # The next earnings repay it.
    credit(store, completed("r2", "150.00", at=NOW - timedelta(days=28)))
    assert standing(store, "r2", NOW).available == 100


def test_cancellation_before_completion_voids_and_releases_the_hold(
    store: CustomerRepository,
) -> None:
    _available(store, "x1", "500.00")
    place_hold("x1", "order-x", 500, NOW, PROGRAM, store, "t")
    result = refund_customer(cancelled("order-x", NOW), "x1", NOW, PROGRAM, store)
    assert result.outcome is CustomerOutcome.CANCELLED_BEFORE_COMPLETION
    assert standing(store, "x1", NOW).available == 1000
    late = credit(store, completed("x1", "80.00", order_id="order-x"))
    assert late.outcome is CustomerOutcome.VOIDED and late.points == 0
    assert standing(store, "x1", NOW).pending == 0


def test_expiry_oldest_first_with_a_notice(store: CustomerRepository) -> None:
    # 200 points available in November 2025, 100 in March 2026.
    credit(store, completed("e1", "100.00", at=datetime(2025, 11, 1, tzinfo=UTC)), now=NOW)
    credit(store, completed("e1", "50.00", at=datetime(2026, 3, 1, tzinfo=UTC)), now=NOW)
    member = store.get_member(PROGRAM.id, "e1")
    assert member is not None and member["av202511"] == 200 and member["av202603"] == 100
    # November 2025's points expire at the start of December 2026; notice 30 days before.
    notice_day = datetime(2026, 11, 1, 9, tzinfo=UTC)
    member = settle("e1", notice_day, PROGRAM, store)
    assert member is not None and member["lastDue"]["expiring"] == 200
    assert member["lastDue"]["expiresOn"] == "2026-12-01"
    again = settle("e1", notice_day + timedelta(hours=1), PROGRAM, store)
    assert again is not None and again["v"] == member["v"]  # one notice per lot
    expiry = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    member = settle("e1", expiry, PROGRAM, store)
    assert member is not None
    assert member["lastDue"]["expired"] == 200 and member["bal"] == 100
    assert "av202511" not in member and member["checkOn"] > "2026-12-01"


def test_spent_points_leave_the_oldest_lot_first(store: CustomerRepository) -> None:
    credit(store, completed("e2", "300.00", at=datetime(2025, 11, 1, tzinfo=UTC)), now=NOW)
    credit(store, completed("e2", "250.00", at=datetime(2026, 3, 1, tzinfo=UTC)), now=NOW)
    place_hold("e2", "buy", 500, NOW, PROGRAM, store, "t")  # from the 600 of November
    credit(store, completed("e2", "1.00", order_id="buy"))
    member = settle("e2", datetime(2026, 12, 1, 1, tzinfo=UTC), PROGRAM, store)
    assert member is not None
    assert member["lastDue"]["expired"] == 100  # 600 - 500 spent
    assert member["bal"] == 500 and Decimal(member["used"]) == 0


def test_the_schedule_releases_expired_holds_and_settles_due_members(
    store: CustomerRepository,
) -> None:
    from tests.helpers import FakeContext, load_function  # noqa: PLC0415

    app = load_function("points_settlement")
    _available(store, "s1", "500.00")  # 1,000 available
    place_hold("s1", "abandoned", 500, NOW, PROGRAM, store, "t")
    credit(store, completed("s2", "20.00"))  # 40 pending until 2026-12-08
    schedule = {"detail-type": "Scheduled Event", "time": "2026-11-23T12:20:00Z"}
    first = app.lambda_handler(schedule, FakeContext())
    assert first["programs"][0]["holdsReleased"] == 0  # 20 minutes: still held
    schedule["time"] = "2026-11-23T12:31:00Z"
    second = app.lambda_handler(schedule, FakeContext())
    assert second["programs"][0]["holdsReleased"] == 1
    assert standing(store, "s1", NOW).available == 1000
    order = store.get_customer_order(PROGRAM.id, "s1", "abandoned")
    assert order is not None and order["hold"]["releaseReason"] == "expired"
    assert "checkOn" not in order  # out of the index
    schedule["time"] = "2026-12-08T00:05:00Z"
    third = app.lambda_handler(schedule, FakeContext())
    assert third["programs"][0]["pointsMatured"] == 40
    member = store.get_member(PROGRAM.id, "s2")
    assert member is not None and member["bal"] == 40 and "checkOn" in member
    again = app.lambda_handler(schedule, FakeContext())
    assert again["programs"][0]["membersSettled"] == 0  # nothing twice


def test_a_partial_refund_before_its_order_waits_for_it(store: CustomerRepository) -> None:
    order = completed("w1", "100.00", order_id="order-w")
    early = OrderRefunded.model_validate(
        {
            "orderId": "order-w",
            "memberId": "shopper-1",
            "customerId": "w1",
            "occurredAt": (NOW - timedelta(minutes=5)).isoformat(),
            "amount": {"amount": "25.00", "currency": "USD"},
        }
    )
    for _ in range(2):
        outcome = refund_customer(early, "w1", NOW, PROGRAM, store).outcome
        assert outcome in {CustomerOutcome.REFUND_PENDING, CustomerOutcome.DUPLICATE}
    assert credit(store, order).points == 200
    view = standing(store, "w1", NOW)
    assert view.pending == 150  # a quarter of the 200 points went back with the refund
    assert credit(store, order).outcome is CustomerOutcome.DUPLICATE
    assert standing(store, "w1", NOW).pending == 150


def test_a_hold_after_its_order_completed_is_captured_at_once(store: CustomerRepository) -> None:
    _available(store, "l1", "500.00")  # 1,000 available
    credit(store, completed("l1", "40.00", order_id="order-l"))
    late = place_hold("l1", "order-l", 500, NOW, PROGRAM, store, "t")
    assert (late.state, late.created) == ("captured", True)
    view = standing(store, "l1", NOW)
    assert (view.available, view.held) == (500, 0)
    again = place_hold("l1", "order-l", 500, NOW, PROGRAM, store, "t2")
    assert again.state == "captured" and not again.created


Delivery = tuple[str, int]
"""(what, copy): what is one of the scenario's steps."""


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    copies=st.lists(st.integers(min_value=1, max_value=3), min_size=5, max_size=5),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_any_order_and_redelivery_leave_the_same_balances(
    store: CustomerRepository, copies: list[int], seed: int
) -> None:
    """A hold on order A, A's completion (capturing it), a partial refund of A, B's completion
    and B's cancellation: delivered 1 to 3 times each, in any order, concurrently, they leave
    the balances one delivery of each in order leaves."""
    rng = random.Random(seed)

    def steps(customer: str) -> dict[str, Any]:
        a = completed(customer, "101.00", order_id=f"{customer}-a")
        b = completed(customer, "60.00", order_id=f"{customer}-b", at=NOW - timedelta(hours=1))
        refund = OrderRefunded.model_validate(
            {
                "orderId": a.order_id,
                "memberId": a.member_id,
                "customerId": customer,
                "occurredAt": (NOW + timedelta(hours=2)).isoformat(),
                "amount": {"amount": "50.50", "currency": "USD"},
            }
        )
        cancel = OrderCancelled.model_validate(
            {
                "orderId": b.order_id,
                "memberId": b.member_id,
                "customerId": customer,
                "occurredAt": (NOW + timedelta(hours=1)).isoformat(),
            }
        )
        later = NOW + timedelta(hours=3)
        return {
            "hold": lambda: place_hold(customer, a.order_id, 500, NOW, PROGRAM, store, "h"),
            "a": lambda: credit(store, a),
            "refund": lambda: refund_customer(refund, customer, later, PROGRAM, store),
            "b": lambda: credit(store, b),
            "cancel": lambda: refund_customer(cancel, customer, later, PROGRAM, store),
        }

    def funded(customer: str) -> None:
        credit(store, completed(customer, "400.00", at=NOW - timedelta(days=30)))  # 800

    reference = f"ref-{uuid.uuid4().hex[:8]}"
    funded(reference)
    for step in steps(reference).values():
        step()
    customer = f"any-{uuid.uuid4().hex[:8]}"
    funded(customer)
    actions = steps(customer)
    deliveries = [name for name, n in zip(actions, copies, strict=True) for _ in range(n)]
    rng.shuffle(deliveries)

    def deliver(name: str) -> None:
        actions[name]()  # nothing here may be refused: the balance covers the hold

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(deliver, deliveries))
    fields = ("bal", "pend", "held", "used", "lifetimePoints", "yp2026")
    expected = store.get_member(PROGRAM.id, reference) or {}
    got = store.get_member(PROGRAM.id, customer) or {}
    mine = {f: got.get(f, 0) for f in fields}
    theirs = {f: expected.get(f, 0) for f in fields}
    assert mine == theirs, (deliveries, mine, theirs)
