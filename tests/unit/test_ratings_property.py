"""Rating moderation against a reference model: whatever the order in which events arrive, and
however often each is delivered, the counted averages, the exclusions, the eligibility and the
tip-baiting flags equal a plain recomputation from the set of events.

The system (the use cases, the stream hook, and the order item's states as order_ingestion
leaves them, on an in-memory store with the repository's semantics) sees the events one by
one; the reference sees them all at once and applies the rules' definitions directly: no window,
no buckets, no incremental state. tests/integration/test_rating_moderation.py runs the same
property through the real handlers, order_ingestion and the table's stream on DynamoDB Local.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from shared.domain.program import Program
from shared.domain.raters import Given, RaterState, decide
from shared.domain.rating_window import make_entry, order_key
from shared.domain.ratings import exclusions
from shared.logic.moderation.reconcile import reconcile
from tests.fake_rating_store import FakeRatingStore
from tests.ratings_support import (
    NOW,
    World,
    order_completed,
    order_refunded,
    rating_submitted,
    small_program,
    tip_adjusted,
)

MEMBERS = ("m0", "m1")
CUSTOMERS = ("c0", "c1", "c2")
OUTSIDE = "item_out_of_stock"
START = NOW - timedelta(days=40)


@dataclass(frozen=True)
class Order:
    order_id: str
    member: str
    customer: str
    completed_at: datetime
    tip: Decimal
    refunded_at: datetime | None


@dataclass(frozen=True)
class Rating:
    rating_id: str
    order_id: str
    member: str
    customer: str
    stars: int
    reasons: tuple[str, ...]
    submitted_at: datetime


@dataclass(frozen=True)
class Tip:
    order_id: str
    new: Decimal
    reason: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Scenario:
    orders: tuple[Order, ...]
    ratings: tuple[Rating, ...]
    """Valid ratings, at most one per order."""
    strays: tuple[Rating, ...]
    """Ratings naming the wrong customer (of orders nobody else rates): always refused."""
    tips: tuple[Tip, ...]
    arrival: tuple[dict[str, Any], ...]


# -- the reference ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    exclusions: dict[str, set[str]]
    """By rating id, for every valid rating."""
    window: dict[str, list[int]]
    """By member: the entries of the last N counted ratings, oldest first."""
    older: dict[str, int]
    average: dict[str, Decimal | None]
    count: dict[str, int]
    eligible: dict[str, bool]
    judged: dict[str, bool]
    flagged: dict[str, bool]


def _baited(order: Order, tip: Tip, program: Program) -> bool:
    """A tip at delivery of at least minTipAtDelivery, lowered by at least minDropRatio of it,
    without a reason."""
    rules = program.moderation.tip_bait
    if tip.reason or order.tip < rules.min_tip_at_delivery:
        return False
    drop = order.tip - tip.new
    return drop > 0 and drop >= order.tip * rules.min_drop_ratio


def reference(program: Program, scenario: Scenario) -> Expected:
    orders = {order.order_id: order for order in scenario.orders}
    htp_rules = program.moderation.hard_to_please
    span = htp_rules.window_days

    def day(rating: Rating) -> int:
        return rating.submitted_at.astimezone(program.zone).date().toordinal()

    def hard_to_please_on(customer: str, on: int) -> bool:
        stars = [
            r.stars
            for r in scenario.ratings
            if r.customer == customer and on - span + 1 <= day(r) <= on
        ]
        return len(stars) >= htp_rules.min_ratings and sum(stars) <= htp_rules.max_mean * len(stars)

    final_bait: dict[str, bool] = {}
    first_bait: dict[str, datetime] = {}
    for order in scenario.orders:
        changes = sorted(
            (t for t in scenario.tips if t.order_id == order.order_id),
            key=lambda t: t.occurred_at,
        )
        final_bait[order.order_id] = bool(changes) and _baited(order, changes[-1], program)
        if any(_baited(order, t, program) for t in changes):
            first_bait[order.order_id] = order.completed_at  # a baited order counts at delivery

    excluded: dict[str, set[str]] = {}
    for rating in scenario.ratings:
        order = orders[rating.order_id]
        reasons = set()
        if order.refunded_at is not None:
            reasons.add("order_not_delivered")
        rated_days = {day(r) for r in scenario.ratings if r.customer == rating.customer}
        if Decimal(rating.stars) < program.rating.floor and any(
            hard_to_please_on(rating.customer, on)
            for on in rated_days
            if day(rating) <= on <= day(rating) + span - 1
        ):
            reasons.add("hard_to_please")
        if final_bait[rating.order_id]:
            reasons.add("tip_baited")
        if rating.reasons and all(
            r in program.moderation.outside_control_reasons for r in rating.reasons
        ):
            reasons.add("outside_control")
        excluded[rating.rating_id] = reasons

    expected = Expected({}, {}, {}, {}, {}, {}, {}, {})
    expected.exclusions.update(excluded)
    last_n = program.rating.last_n
    for member in MEMBERS:
        counted = sorted(
            make_entry(order_key(orders[r.order_id].completed_at, r.order_id), r.stars)
            for r in scenario.ratings
            if r.member == member and not excluded[r.rating_id]
        )
        window = counted[-last_n:]
        total = sum(entry & 7 for entry in window)
        expected.window[member] = window
        expected.older[member] = len(counted) - len(window)
        expected.count[member] = len(window)
        expected.average[member] = (
            (Decimal(total) / len(window)).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
            if window
            else None
        )
        judged = len(window) >= program.rating.min_count
        expected.judged[member] = judged
        expected.eligible[member] = not judged or total >= program.rating.floor * len(window)
    rules = program.moderation.tip_bait
    # Every event is delivered at NOW: baits of orders delivered more than the flag window
    # before it have aged out of the customer's record and never count.
    since = NOW - timedelta(days=rules.flag_window_days)
    for customer in CUSTOMERS:
        times = sorted(
            at
            for order_id, at in first_bait.items()
            if orders[order_id].customer == customer and at >= since
        )
        k = rules.flag_after
        expected.flagged[customer] = any(
            times[i + k - 1] - times[i] <= timedelta(days=rules.flag_window_days)
            for i in range(len(times) - k + 1)
        )
    return expected


# -- scenarios ----------------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(min_value=3, max_value=16))
    orders: list[Order] = []
    ratings: list[Rating] = []
    strays: list[Rating] = []
    tips: list[Tip] = []
    minutes = draw(
        st.lists(
            st.integers(min_value=0, max_value=30 * 24 * 60),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    for index, minute in enumerate(minutes):
        order_id = f"o{index}"
        member = draw(st.sampled_from(MEMBERS))
        customer = draw(st.sampled_from(CUSTOMERS))
        completed = START + timedelta(minutes=minute)
        refunded = completed + timedelta(hours=5) if draw(st.integers(0, 9)) == 0 else None
        at_delivery = Decimal(draw(st.sampled_from(["4.00", "10.00"])))
        orders.append(Order(order_id, member, customer, completed, at_delivery, refunded))
        rated = draw(st.integers(0, 9))
        # A customer's stars lean on who they are: c0 is grumpy, c2 generous.
        low = {"c0": 1, "c1": 2, "c2": 3}[customer]
        if rated < 8:
            ratings.append(
                Rating(
                    f"r{index}",
                    order_id,
                    member,
                    customer,
                    draw(st.integers(min_value=low, max_value=5)),
                    tuple(draw(st.sampled_from([(), (), (OUTSIDE,), (OUTSIDE, "rude")]))),
                    completed + timedelta(hours=draw(st.integers(0, 72)), minutes=index),
                )
            )
        elif rated == 8:
            other = next(c for c in CUSTOMERS if c != customer)
            strays.append(
                Rating(f"x{index}", order_id, member, other, 1, (), completed + timedelta(hours=1))
            )
        for change in range(draw(st.integers(0, 2))):
            tips.append(
                Tip(
                    order_id,
                    Decimal(draw(st.sampled_from(["0.00", "1.00", "3.00", "12.00"]))),
                    draw(st.sampled_from([None, None, "wrong amount"])),
                    completed + timedelta(hours=draw(st.integers(1, 100)), minutes=change),
                )
            )
    by_id = {order.order_id: order for order in orders}
    events: list[dict[str, Any]] = []
    for order in orders:
        events.append(
            order_completed(
                order.order_id, order.member, order.customer, order.completed_at, str(order.tip)
            )
        )
        if order.refunded_at is not None:
            events.append(order_refunded(order.order_id, order.member, order.refunded_at))
    for rating in [*ratings, *strays]:
        events.append(
            rating_submitted(
                rating.rating_id,
                rating.order_id,
                rating.member,
                rating.customer,
                rating.stars,
                rating.submitted_at,
                rating.reasons,
            )
        )
    previous: dict[str, Decimal] = {}
    for tip in sorted(tips, key=lambda t: t.occurred_at):
        order = by_id[tip.order_id]
        events.append(
            tip_adjusted(
                tip.order_id,
                order.member,
                order.customer,
                str(previous.get(tip.order_id, order.tip)),
                str(tip.new),
                tip.occurred_at,
                tip.reason,
            )
        )
        previous[tip.order_id] = tip.new
    arrival = list(draw(st.permutations(events)))
    for _ in range(draw(st.integers(0, 4))):
        again = draw(st.sampled_from(events))
        arrival.insert(draw(st.integers(0, len(arrival))), again)
    return Scenario(tuple(orders), tuple(ratings), tuple(strays), tuple(tips), tuple(arrival))


# -- the property -------------------------------------------------------------------------------


def check(world: World, scenario: Scenario) -> None:
    program = world.program
    expected = reference(program, scenario)
    repo = world.repo
    for rating in scenario.ratings:
        ref = repo.get_ref(program.id, rating.rating_id)
        assert ref is not None, f"{rating.rating_id} was never applied"
        slot = repo.get_slot(program.id, rating.member, ref.slot_sk)
        assert slot is not None and slot.rating is not None
        got = {reason.value for reason in exclusions(slot, program)}
        assert got == expected.exclusions[rating.rating_id], rating
        assert world.stored(rating.member, ref.slot_sk) == (got, not got)
    for stray in scenario.strays:
        assert repo.get_ref(program.id, stray.rating_id) is None
    for member in MEMBERS:
        window = repo.get_window(program.id, member)
        assert list(window.entries) == expected.window[member], member
        assert window.older == expected.older[member], member
        item = world.member(member)
        if not expected.count[member] and "ratingCount" not in item:
            continue
        assert item.get("ratingAverage") == expected.average[member], member
        assert item["ratingCount"] == expected.count[member], member
        assert item.get("eligible", True) is expected.eligible[member], member
        reason = item["eligibilityReason"]
        if not expected.judged[member]:
            assert reason == "not_judged"
        elif expected.eligible[member]:
            assert reason in {"rating_ok", "rating_reinstated"}
        else:
            assert reason == "rating_below_floor"
    for customer in CUSTOMERS:
        rater = repo.get_rater(program.id, customer)
        assert (rater.flagged_at is not None) is expected.flagged[customer], customer
        assert rater.reconcile is None


def check_raters(world: World, scenario: Scenario) -> None:
    """Each rater's day buckets hold each of their ratings exactly once."""
    program = world.program
    for customer in CUSTOMERS:
        expected: dict[int, tuple[int, int]] = {}
        for rating in scenario.ratings:
            if rating.customer == customer:
                day = rating.submitted_at.astimezone(program.zone).date().toordinal()
                count, total = expected.get(day, (0, 0))
                expected[day] = (count + 1, total + rating.stars)
        rater = world.repo.get_rater(program.id, customer)
        got = {day: (stats.count, stats.total) for day, stats in rater.days.items()}
        assert got == expected, customer


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_arrival_order_and_redelivery_equal_a_recomputation(scenario: Scenario) -> None:
    world = World(small_program(), FakeRatingStore(), simple_ledger=True)
    for raw in scenario.arrival:
        world.deliver(raw)
    check(world, scenario)
    check_raters(world, scenario)
    # Delivering everything again, in reverse, changes nothing.
    for raw in reversed(scenario.arrival):
        world.deliver(raw)
    check(world, scenario)
    check_raters(world, scenario)


class Crash(Exception):
    """The function died between two writes (its event is delivered again later)."""


class CrashingStore(FakeRatingStore):
    """Dies between two writes of a rating, on the calls numbered in ``crash_on`` while
    ``armed`` (a ``RatingSubmitted`` is being delivered: its queue delivers it again): right
    after the transaction of a rating at or above the floor, before its rater's write; or
    after a low rating's index entry, before its transaction."""

    def __init__(self, crash_on: frozenset[int]) -> None:
        super().__init__()
        self.crash_on = crash_on
        self.armed = False
        self.calls = 0
        self.crashes = 0

    def put_rater(self, program_id: str, state: RaterState) -> bool:
        self.calls += 1
        if self.armed and self.calls in self.crash_on:
            self.crashes += 1
            raise Crash(f"crashed before rater write {self.calls}")
        return super().put_rater(program_id, state)

    def put_given(self, program_id: str, customer_id: str, given: Given) -> None:
        super().put_given(program_id, customer_id, given)
        self.calls += 1
        if self.armed and self.calls in self.crash_on:
            self.crashes += 1
            raise Crash(f"crashed after index entry {self.calls}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), crash_on=st.frozensets(st.integers(1, 12), max_size=6))
def test_a_crash_between_a_ratings_writes_is_finished_by_the_redelivery(
    scenario: Scenario, crash_on: frozenset[int]
) -> None:
    store = CrashingStore(crash_on)
    world = World(small_program(), store, simple_ledger=True)
    queue = list(scenario.arrival)
    redelivered = 0
    while queue:
        raw = queue.pop(0)
        store.armed = raw["detail-type"] == "RatingSubmitted"
        try:
            world.deliver(raw)
        except Crash:
            queue.append(raw)  # delivered again, after what was already queued
            redelivered += 1
    check(world, scenario)
    check_raters(world, scenario)
    assert store.crashes == redelivered


def test_an_index_entry_of_a_refused_rating_never_decides_the_counted_one() -> None:
    """A low rating adds itself to the rater's index before its transaction; a second rating
    of a rated order is refused after that write, so its entry names the counted rating's
    slot. The reconciliation decides each slot by its own rating's id."""
    program = small_program()  # hard to please: 3 ratings in 10 days with a mean <= 3.0
    store = FakeRatingStore()
    world = World(program, store, simple_ledger=True)
    completed = START + timedelta(days=10)
    world.deliver(order_completed("o1", "m0", "c0", completed, "4.00"))
    world.deliver(rating_submitted("rA", "o1", "m0", "c0", 2, completed + timedelta(hours=1)))
    refused = rating_submitted("rB", "o1", "m0", "c0", 1, completed - timedelta(days=5))
    world.deliver(refused)
    assert [type(error).__name__ for _, error in world.rejected] == ["Conflict"]
    entries = store.query_given(program.id, "c0", 0, 10**7)
    assert sorted(entry.rating_id for entry in entries) == ["rA", "rB"]
    (sk,) = {entry.slot_sk for entry in entries}
    day_a = next(entry.day for entry in entries if entry.rating_id == "rA")
    day_b = next(entry.day for entry in entries if entry.rating_id == "rB")
    # Say the rater was hard to please 3 days before rA's day: that covers rB's day (5 days
    # before), not rA's. A pending reconciliation of both days leaves rA counted.
    rater = store.get_rater(program.id, "c0")
    store.raters["c0"] = replace(rater, htp_days=(day_a - 3,), reconcile=(day_b, day_a))
    assert decide(store.raters["c0"], entries, day_b, day_a, program) == {
        "rA": False,
        "rB": True,
    }
    assert reconcile(program, store, "c0", NOW) == 0
    slot = store.get_slot(program.id, "m0", sk)
    assert slot is not None and slot.rating is not None and slot.rating.rating_id == "rA"
    assert not slot.hard_to_please and exclusions(slot, program) == ()
    assert store.get_window(program.id, "m0").count == 1
    assert store.get_rater(program.id, "c0").reconcile is None
