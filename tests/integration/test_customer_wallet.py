"""The shopper's wallet (gas cashback in cart-star) spent at checkout in the customer program, on
DynamoDB Local: held beside or instead of points, captured by the order's completion, released
by a cancellation, a checkout's call or the schedule, given back in proportion by refunds; never
held beyond its balance under concurrency."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from shared.dal.customers import CustomerRepository
from shared.domain.errors import (
    HoldClosed,
    HoldMismatch,
    InsufficientWallet,
    InvalidInput,
    NotFound,
)
from shared.logic.customers import (
    CustomerOutcome,
    place_hold,
    refund_customer,
    release_hold,
)
from tests.integration.test_customer_points import (
    NOW,
    PROGRAM,
    _available,
    cancelled,
    completed,
    credit,
    refunded,
    standing,
    store,
)

__all__ = ["store"]  # the fixture, shared with the points tests

WALLET_PROGRAM = "cart-star"
Z = Decimal(0)


def give_wallet(store: CustomerRepository, member_id: str, balance: str) -> None:
    """The member's wallet in cart-star, as gas cashback credits leave it."""
    serialize = TypeSerializer().serialize
    item = {
        "pk": f"P#{WALLET_PROGRAM}#M#{member_id}",
        "sk": "MEMBER",
        "memberId": member_id,
        "programId": WALLET_PROGRAM,
        "walletBalance": Decimal(balance),
    }
    store.client.put_item(
        TableName=store.table_name, Item={k: serialize(v) for k, v in item.items()}
    )


def wallet(store: CustomerRepository, member_id: str) -> tuple[Decimal, Decimal, Decimal]:
    """(balance, held, spent) of the member's wallet."""
    item = store.get_member(WALLET_PROGRAM, member_id) or {}
    return (
        Decimal(str(item.get("walletBalance", 0))),
        Decimal(str(item.get("walletHeld", 0))),
        Decimal(str(item.get("walletSpent", 0))),
    )


def hold(
    store: CustomerRepository, member_id: str, order_id: str, money: str, points: int = 0
) -> Any:
    return place_hold(
        member_id, order_id, points, NOW, PROGRAM, store, f"try-{order_id}", Decimal(money)
    )


def test_wallet_alone_held_captured_and_released(store: CustomerRepository) -> None:
    give_wallet(store, "w1", "20.00")  # a shopper who never bought: no customer member item
    placed = hold(store, "w1", "order-a", "12.50")
    assert placed.created and placed.points == 0 and placed.wallet is not None
    assert placed.wallet.amount == Decimal("12.50") and placed.state == "held"
    assert wallet(store, "w1") == (Decimal("7.50"), Decimal("12.50"), Z)
    again = hold(store, "w1", "order-a", "12.50")
    assert not again.created and again.wallet is not None
    with pytest.raises(HoldMismatch) as mismatch:
        hold(store, "w1", "order-a", "12.00")
    assert mismatch.value.field == "wallet"
    with pytest.raises(InsufficientWallet) as short:
        hold(store, "w1", "order-b", "10.00")
    assert short.value.field == "wallet" and "7.50 available" in short.value.message
    assert store.get_customer_order(PROGRAM.id, "w1", "order-b") is None  # nothing written
    assert wallet(store, "w1") == (Decimal("7.50"), Decimal("12.50"), Z)

    # The order completes: the wallet's part is captured; the order earns its points as usual.
    result = credit(store, completed("w1", "40.00", order_id="order-a"))
    assert result.outcome is CustomerOutcome.CREDITED and result.points == 80
    assert wallet(store, "w1") == (Decimal("7.50"), Z, Decimal("12.50"))
    assert credit(store, completed("w1", "40.00", order_id="order-a")).outcome is (
        CustomerOutcome.DUPLICATE
    )
    assert wallet(store, "w1") == (Decimal("7.50"), Z, Decimal("12.50"))
    with pytest.raises(HoldClosed):
        release_hold("w1", "order-a", NOW, PROGRAM, store, "checkout")

    # Another hold, released three times: the money comes back once.
    hold(store, "w1", "order-c", "5.00")
    for _ in range(3):
        view = release_hold("w1", "order-c", NOW, PROGRAM, store, "checkout")
        assert view.state == "released"
    assert wallet(store, "w1") == (Decimal("7.50"), Z, Decimal("12.50"))
    assert standing(store, "w1", NOW).held == 0  # the points side untouched


def test_points_and_wallet_together_and_refunds_give_back_both_in_proportion(
    store: CustomerRepository,
) -> None:
    _available(store, "m1", "500.00")  # 1,000 points available
    give_wallet(store, "m1", "30.00")
    placed = hold(store, "m1", "order-m", "10.00", points=500)
    assert (placed.points, placed.wallet and placed.wallet.amount) == (500, Decimal("10.00"))
    assert (standing(store, "m1", NOW).available, wallet(store, "m1")[0]) == (500, Decimal("20"))
    order = completed("m1", "100.00", order_id="order-m")
    assert credit(store, order).spent == 500
    assert wallet(store, "m1") == (Decimal("20.00"), Z, Decimal("10.00"))

    later = NOW + timedelta(days=2)
    first = refund_customer(refunded(order, later, "33.33"), "m1", later, PROGRAM, store)
    assert first.outcome is CustomerOutcome.REFUNDED and first.spent == 166  # 500 x 0.3333
    assert wallet(store, "m1") == (Decimal("23.33"), Z, Decimal("6.67"))  # 3.333.. down
    again = refund_customer(refunded(order, later, "33.33"), "m1", later, PROGRAM, store)
    assert again.outcome is CustomerOutcome.DUPLICATE
    assert wallet(store, "m1")[0] == Decimal("23.33")
    # The rest: everything the wallet paid is back, never a cent more.
    rest = NOW + timedelta(days=3)
    refund_customer(refunded(order, rest), "m1", rest, PROGRAM, store)
    assert wallet(store, "m1") == (Decimal("30.00"), Z, Z)


@pytest.mark.parametrize(
    ("points", "money", "field"),
    [
        (0, None, "points"),  # neither points nor wallet
        (0, "1.234", "wallet"),  # not whole cents
        (400, "5.00", "points"),  # points below the minimum, even with the wallet
    ],
)
def test_a_hold_the_program_does_not_allow_writes_nothing(
    store: CustomerRepository, points: int, money: str | None, field: str
) -> None:
    give_wallet(store, "v1", "20.00")
    with pytest.raises(InvalidInput) as error:
        place_hold(
            "v1", "order-v", points, NOW, PROGRAM, store, "t", Decimal(money) if money else None
        )
    assert error.value.field == field
    assert store.get_customer_order(PROGRAM.id, "v1", "order-v") is None
    assert wallet(store, "v1") == (Decimal("20.00"), Z, Z)


def test_a_program_without_a_wallet_and_a_member_without_one(store: CustomerRepository) -> None:
    closed = PROGRAM.model_copy(
        update={
            "points": PROGRAM.points.model_copy(  # type: ignore[union-attr]
                update={"holds": PROGRAM.points.holds.model_copy(update={"wallet_from": None})}  # type: ignore[union-attr]
            )
        }
    )
    give_wallet(store, "n1", "20.00")
    with pytest.raises(InvalidInput) as error:
        place_hold("n1", "order-n", 0, NOW, closed, store, "t", Decimal("5.00"))
    assert error.value.field == "wallet"
    with pytest.raises(NotFound) as missing:
        hold(store, "nobody", "order-n", "5.00")
    assert missing.value.field == "wallet"
    assert store.get_customer_order(PROGRAM.id, "nobody", "order-n") is None
    assert store.get_member(WALLET_PROGRAM, "nobody") is None  # no wallet made up


def test_cancellation_and_the_schedule_release_the_wallet(store: CustomerRepository) -> None:
    from tests.helpers import FakeContext, load_function  # noqa: PLC0415

    give_wallet(store, "c1", "20.00")
    hold(store, "c1", "order-x", "8.00")
    result = refund_customer(cancelled("order-x", NOW), "c1", NOW, PROGRAM, store)
    assert result.outcome is CustomerOutcome.CANCELLED_BEFORE_COMPLETION
    assert wallet(store, "c1") == (Decimal("20.00"), Z, Z)

    hold(store, "c1", "abandoned", "6.00")
    app = load_function("points_settlement")
    schedule = {"detail-type": "Scheduled Event", "time": "2026-11-23T12:31:00Z"}
    assert app.lambda_handler(schedule, FakeContext())["programs"][0]["holdsReleased"] == 1
    assert wallet(store, "c1") == (Decimal("20.00"), Z, Z)


def test_a_wallet_hold_after_its_order_completed_and_was_refunded(
    store: CustomerRepository,
) -> None:
    """The checkout's call came late: the completion and a refund of half the order were
    applied first. The hold is captured at once, and half of it comes back at once."""
    give_wallet(store, "l1", "20.00")
    order = completed("l1", "40.00", order_id="order-l")
    credit(store, order)
    refund_customer(refunded(order, NOW, "20.00"), "l1", NOW, PROGRAM, store)
    late = hold(store, "l1", "order-l", "9.00")
    assert (late.state, late.created) == ("captured", True)
    assert wallet(store, "l1") == (Decimal("15.50"), Z, Decimal("4.50"))
    again = hold(store, "l1", "order-l", "9.00")
    assert not again.created and again.state == "captured"
    assert wallet(store, "l1") == (Decimal("15.50"), Z, Decimal("4.50"))
    rest = NOW + timedelta(days=1)
    refund_customer(refunded(order, rest), "l1", rest, PROGRAM, store)
    assert wallet(store, "l1") == (Decimal("20.00"), Z, Z)


def test_concurrent_wallet_holds_never_hold_more_than_the_balance(
    store: CustomerRepository,
) -> None:
    """16 holds at once against one wallet, 15 trials in make test (``WALLET_RACE_TRIALS``; 200
    in make race): never over-held, and a refused hold never one that would have fitted."""
    rng = random.Random(11)
    for trial in range(int(os.environ.get("WALLET_RACE_TRIALS", "15"))):
        member_id = f"race-{trial}"
        balance = Decimal(rng.randrange(500, 4000)) / 100
        give_wallet(store, member_id, str(balance))
        asks = [Decimal(rng.choice(["2.50", "4.00", "7.25", "10.00"])) for _ in range(16)]
        barrier = threading.Barrier(16)

        def take(
            index: int,
            member_id: str = member_id,
            asks: list[Decimal] = asks,
            barrier: threading.Barrier = barrier,
        ) -> Decimal:
            barrier.wait()
            try:
                hold(store, member_id, f"o{index}", str(asks[index]))
            except InsufficientWallet:
                return Decimal(0)
            return asks[index]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(take, range(16)))
        left, held, _ = wallet(store, member_id)
        assert held == sum(got) <= balance
        assert left == balance - held >= 0
        assert all(ask > left for ask, taken in zip(asks, got, strict=True) if not taken)
