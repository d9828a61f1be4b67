"""Quality gates: the rates against a plain reference (the last N events of a list, sorted by
time), whatever the arrival order, the redeliveries and the trimming; the gates' effect on the
tier and on ``GET /v1/me``.

The use cases run on an in-memory store with the repository's semantics (number sets: adding an
entry twice adds it once; the earliest acceptance and latest decline of an offer kept); the
same use cases on DynamoDB Local are in tests/integration/test_quality_gates.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.errors import InvalidInput, ProgramConfigError
from shared.domain.events import (
    DeliveryLate,
    OfferAccepted,
    OfferDeclined,
    OrderCompleted,
    parse_detail,
)
from shared.domain.gates import (
    COMPLETION_RATE,
    ON_TIME_RATE,
    STANDING_ATTRIBUTES,
    Standing,
    entry,
    gate_cap,
    standing_of,
)
from shared.domain.program import Program
from shared.domain.tiers import TierReason, Trigger, evaluate
from shared.domain.window import pack_days
from shared.logic.gates import (
    ENTRIES,
    MARKS,
    GateWindow,
    OfferTimes,
    accept_offer,
    decline_offer,
    record_delivery,
    report_late,
)
from shared.logic.members import member_view
from shared.logic.order_events import ORDER_EVENTS
from shared.programs import load_program, parse_program

GATED = Path(__file__).resolve().parents[1] / "fixtures" / "programs" / "cart-star-gated.yaml"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def gated_program(last_n: int = 100, min_count: int = 20, slack_hours: int = 24) -> Program:
    text = GATED.read_text(encoding="utf-8")
    text = text.replace("lastN: 100 ", f"lastN: {last_n} ")
    text = text.replace("minCount: 20 ", f"minCount: {min_count} ")
    text = text.replace("lateReportSlackHours: 24", f"lateReportSlackHours: {slack_hours}")
    return parse_program(text, "cart-star-gated.yaml")


@dataclass
class MemoryGates:
    """The repository's semantics in memory: sets, versions, guarded standings."""

    offers: dict[str, dict[str, datetime]] = field(default_factory=dict)
    windows: dict[str, GateWindow] = field(default_factory=dict)
    member: dict[str, Any] = field(default_factory=dict)
    trims: int = 0

    def mark_offer(
        self,
        program_id: str,
        member_id: str,
        offer_id: str,
        accepted_at: datetime | None,
        declined_at: datetime | None,
        expires_at: datetime,
    ) -> OfferTimes:
        item = self.offers.setdefault(offer_id, {})
        if accepted_at is not None and ("a" not in item or item["a"] > accepted_at):
            item["a"] = accepted_at
        if declined_at is not None and ("d" not in item or item["d"] < declined_at):
            item["d"] = declined_at
        return OfferTimes(item.get("a"), item.get("d"))

    def add_to_window(
        self, program_id: str, member_id: str, gate: str, adds: Mapping[str, frozenset[int]]
    ) -> GateWindow:
        before = self.windows.get(gate, GateWindow())
        self.windows[gate] = GateWindow(
            before.entries | adds.get(ENTRIES, frozenset()),
            before.marks | adds.get(MARKS, frozenset()),
            before.version + 1,
        )
        return before

    def trim_window(
        self, program_id: str, member_id: str, gate: str, removals: Mapping[str, frozenset[int]]
    ) -> None:
        self.trims += 1
        window = self.windows[gate]
        self.windows[gate] = GateWindow(
            window.entries - removals.get(ENTRIES, frozenset()),
            window.marks - removals.get(MARKS, frozenset()),
            window.version,
        )

    def write_standing(
        self, program_id: str, member_id: str, gate: str, standing: Standing, version: int
    ) -> bool:
        key = f"{gate}V"
        if self.member.get(key, -1) >= version:
            return False
        count_name, good_name = STANDING_ATTRIBUTES[gate]
        self.member.update({count_name: standing.count, good_name: standing.good, key: version})
        return True


# -- the reference: lists of events, the last N by time ------------------------------------------


@dataclass(frozen=True)
class Offer:
    offer_id: str
    accepted_at: datetime
    declines: tuple[datetime, ...]


@dataclass(frozen=True)
class Delivery:
    order_id: str
    completed_at: datetime
    lates: tuple[datetime, ...]


def reference_completion(offers: list[Offer], last_n: int) -> Standing:
    last = sorted(offers, key=lambda offer: offer.accepted_at, reverse=True)[:last_n]
    dropped = [o for o in last if any(d >= o.accepted_at for d in o.declines)]
    return Standing(len(last), len(last) - len(dropped))


def reference_on_time(deliveries: list[Delivery], last_n: int, slack_hours: int) -> Standing:
    last = sorted(deliveries, key=lambda d: d.completed_at, reverse=True)[:last_n]
    slack = timedelta(hours=slack_hours)
    late = [d for d in last if any(at >= d.completed_at - slack for at in d.lates)]
    return Standing(len(last), len(last) - len(late))


def _distinct_minutes(count: int) -> st.SearchStrategy[list[int]]:
    return st.lists(
        st.integers(min_value=0, max_value=40_000), min_size=count, max_size=count, unique=True
    )


@st.composite
def offers_strategy(draw: st.DrawFn) -> list[Offer]:
    count = draw(st.integers(min_value=0, max_value=45))
    minutes = draw(_distinct_minutes(count))
    offers = []
    for index, minute in enumerate(minutes):
        accepted = T0 + timedelta(minutes=minute)
        # declines before the acceptance (plain declines of an offer seen again), after it
        # (drops), or none
        offsets = draw(st.lists(st.integers(min_value=-600, max_value=600), max_size=2))
        declines = tuple(accepted + timedelta(minutes=offset) for offset in offsets)
        offers.append(Offer(f"offer-{index}", accepted, declines))
    return offers


@st.composite
def deliveries_strategy(draw: st.DrawFn) -> list[Delivery]:
    count = draw(st.integers(min_value=0, max_value=45))
    minutes = draw(_distinct_minutes(count))
    deliveries = []
    for index, minute in enumerate(minutes):
        completed = T0 + timedelta(minutes=minute)
        offsets = draw(st.lists(st.integers(min_value=-3_000, max_value=3_000), max_size=2))
        lates = tuple(completed + timedelta(minutes=offset) for offset in offsets)
        deliveries.append(Delivery(f"order-{index}", completed, lates))
    return deliveries


def _order_completed(delivery: Delivery) -> OrderCompleted:
    return OrderCompleted.model_validate(
        {
            "orderId": delivery.order_id,
            "memberId": "m-1",
            "customerId": "c-1",
            "completedAt": delivery.completed_at.isoformat(),
            "total": {"amount": "20.00", "currency": "USD"},
            "tip": {"amount": "2.00", "currency": "USD"},
        }
    )


def _offer_events(offers: list[Offer]) -> list[OfferAccepted]:
    events: list[OfferAccepted] = []
    for offer in offers:
        detail = {"offerId": offer.offer_id, "memberId": "m-1"}
        at = offer.accepted_at.isoformat()
        events.append(OfferAccepted.model_validate({**detail, "occurredAt": at}))
        for declined in offer.declines:
            at = declined.isoformat()
            events.append(OfferDeclined.model_validate({**detail, "occurredAt": at}))
    return events


def _delivery_events(deliveries: list[Delivery]) -> list[OrderCompleted | DeliveryLate]:
    events: list[OrderCompleted | DeliveryLate] = []
    for delivery in deliveries:
        events.append(_order_completed(delivery))
        for late in delivery.lates:
            detail = {"orderId": delivery.order_id, "memberId": "m-1", "minutesLate": 12}
            events.append(DeliveryLate.model_validate({**detail, "occurredAt": late.isoformat()}))
    return events


def _apply(event: Any, program: Program, store: MemoryGates) -> None:
    if isinstance(event, OfferDeclined):
        decline_offer(event, NOW, program, store)
    elif isinstance(event, OfferAccepted):
        accept_offer(event, NOW, program, store)
    elif isinstance(event, OrderCompleted):
        record_delivery(event, program, store)
    else:
        report_late(event, program, store)


@settings(max_examples=150, deadline=None)
@given(
    offers=offers_strategy(),
    deliveries=deliveries_strategy(),
    last_n=st.integers(min_value=1, max_value=12),
    slack_hours=st.sampled_from([0, 1, 24]),
    data=st.data(),
)
def test_the_rates_are_the_references_whatever_the_order_and_redeliveries(
    offers: list[Offer],
    deliveries: list[Delivery],
    last_n: int,
    slack_hours: int,
    data: st.DataObject,
) -> None:
    program = gated_program(last_n=last_n, slack_hours=slack_hours)
    events: list[Any] = [*_offer_events(offers), *_delivery_events(deliveries)]
    # 1 to 3 deliveries of each event, shuffled together
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(events), max_size=len(events)))
    delivered = [event for event, times in zip(events, copies, strict=True) for _ in range(times)]
    delivered = data.draw(st.permutations(delivered))
    store = MemoryGates()
    for event in delivered:
        _apply(event, program, store)

    assert standing_of(store.member, COMPLETION_RATE) == reference_completion(offers, last_n)
    assert standing_of(store.member, ON_TIME_RATE) == reference_on_time(
        deliveries, last_n, slack_hours
    )
    # The window never holds much more than the last N (trimmed in batches of 16).
    for window in store.windows.values():
        assert len(window.entries) < last_n + 16


def test_the_101st_delivery_pushes_the_oldest_out() -> None:
    program = gated_program()
    store = MemoryGates()
    deliveries = [Delivery(f"o-{i}", T0 + timedelta(hours=i), ()) for i in range(100)]
    late_first = DeliveryLate.model_validate(
        {"orderId": "o-0", "memberId": "m-1", "minutesLate": 30, "occurredAt": T0.isoformat()}
    )
    for event in [*_delivery_events(deliveries), late_first]:
        _apply(event, program, store)
    assert standing_of(store.member, ON_TIME_RATE) == Standing(100, 99)
    _apply(_order_completed(Delivery("o-100", T0 + timedelta(hours=100), ())), program, store)
    assert standing_of(store.member, ON_TIME_RATE) == Standing(100, 100)
    # An older delivery arriving late is beyond the window: nothing moves.
    _apply(_order_completed(Delivery("o-old", T0 - timedelta(days=1), ())), program, store)
    assert standing_of(store.member, ON_TIME_RATE) == Standing(100, 100)


def test_a_decline_before_the_acceptance_is_not_a_drop_and_after_it_is() -> None:
    program = gated_program()
    store = MemoryGates()
    base = {"offerId": "of-1", "memberId": "m-1"}
    decline_early = OfferDeclined.model_validate({**base, "occurredAt": T0.isoformat()})
    accept = OfferAccepted.model_validate(
        {**base, "occurredAt": (T0 + timedelta(minutes=5)).isoformat()}
    )
    assert decline_offer(decline_early, NOW, program, store).outcome == "not_accepted"
    accept_offer(accept, NOW, program, store)
    assert standing_of(store.member, COMPLETION_RATE) == Standing(1, 1)
    drop = OfferDeclined.model_validate(
        {**base, "occurredAt": (T0 + timedelta(minutes=9)).isoformat()}
    )
    decline_offer(drop, NOW, program, store)
    assert standing_of(store.member, COMPLETION_RATE) == Standing(1, 0)


def test_entries_sort_by_time() -> None:
    assert entry(T0, "zzz") < entry(T0 + timedelta(milliseconds=1), "aaa")
    assert entry(T0, "x") == entry(T0, "x")


# -- the tier --------------------------------------------------------------------------------------


def _member(points: int, **standing: int) -> dict[str, Any]:
    """A member with ``points`` earned on 2026-12-01 and a standing of the gates."""
    attributes: dict[str, Any] = dict(pack_days({date(2026, 12, 1): points}))
    attributes.update(standing)
    return attributes


def test_a_failed_gate_holds_the_tier_below_and_a_met_one_gives_it_back() -> None:
    program = gated_program()
    day = date(2026, 12, 1)
    failing = _member(2500, crN=50, crOk=40, otN=50, otOk=50)  # completion 0.8 < 0.9
    decision = evaluate({**failing, "tier": "diamond"}, day, program, Trigger.STREAM)
    assert (decision.tier, decision.reason) == ("platinum", TierReason.QUALITY_GATE_UNMET)
    # both of Diamond's and Platinum's on-time floors failed: Gold
    late = _member(2500, otN=50, otOk=35)
    assert evaluate(late, day, program, Trigger.STREAM).tier == "gold"
    # fewer events than minCount: not judged
    assert evaluate(_member(2500, crN=19, crOk=0), day, program, Trigger.STREAM).tier == "diamond"
    back = _member(2500, crN=50, crOk=45, otN=50, otOk=50)
    back.update(tier="platinum", tierReason="quality_gate_unmet")
    decision = evaluate(back, day, program, Trigger.STREAM)
    assert (decision.tier, decision.reason) == ("diamond", TierReason.QUALITY_GATE_MET)


def test_floors_compare_exactly() -> None:
    program = gated_program()
    assert gate_cap("diamond", {"crN": 100, "crOk": 90}, program) == "diamond"
    assert gate_cap("diamond", {"crN": 100, "crOk": 89}, program) == "platinum"


def test_me_lists_every_gate_and_the_tier_reason() -> None:
    program = gated_program()
    attributes = _member(2500, crN=50, crOk=40, otN=10, otOk=2)
    view = member_view({**attributes, "tier": "diamond"}, NOW, program).model_dump(by_alias=True)
    assert view["tier"] == "platinum"
    assert view["tierReason"] == "quality_gate_unmet"
    gates = {(g["tier"], g["gate"]): g for g in view["gates"]}
    assert set(gates) == {
        ("platinum", "onTimeRate"),
        ("diamond", "completionRate"),
        ("diamond", "onTimeRate"),
    }
    completion = gates[("diamond", "completionRate")]
    assert completion["value"] == Decimal("0.8")
    assert completion["floor"] == Decimal("0.9")
    assert (completion["met"], completion["judged"], completion["count"]) == (False, True, 50)
    assert completion["hint"]
    on_time = gates[("diamond", "onTimeRate")]
    assert (on_time["met"], on_time["judged"]) == (True, False)  # 10 < minCount


@pytest.mark.parametrize(
    ("detail_type", "detail", "field"),
    [
        ("OfferAccepted", {"memberId": "m-1", "occurredAt": "2026-11-01T10:00:00Z"}, "offerId"),
        (
            "DeliveryLate",
            {"orderId": "o", "memberId": "m", "minutesLate": -5, "occurredAt": "2026-11-01T10:00Z"},
            "minutesLate",
        ),
        (
            "OfferDeclined",
            {"offerId": "o", "memberId": "m", "occurredAt": "yesterday"},
            "occurredAt",
        ),
        (
            "OfferDeclined",
            {"offerId": "o", "memberId": "m", "occurredAt": "2026-11-01T10:00"},
            "occurredAt",
        ),
    ],
)
def test_bad_quality_events_are_refused_naming_the_field(
    detail_type: str, detail: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_detail(detail_type, detail, ORDER_EVENTS)
    assert refused.value.field == f"detail.{field}"


def test_gates_are_for_shopper_programs_and_count_only_when_a_tier_asks() -> None:
    assert load_program("cart-star").gated == frozenset()  # off by default: nothing counted
    assert gated_program().gated == {COMPLETION_RATE, ON_TIME_RATE}
    customer = (
        (Path(__file__).resolve().parents[2] / "shared" / "programs" / "customer-rewards.yaml")
        .read_text(encoding="utf-8")
        .replace("minPoints: 1000", 'minPoints: 1000, gates: {onTimeRate: "0.9"}', 1)
    )
    assert 'gates: {onTimeRate: "0.9"}' in customer
    with pytest.raises(ProgramConfigError, match="quality gates"):
        parse_program(customer)
    with pytest.raises(ProgramConfigError, match="onTimeRate"):
        parse_program(GATED.read_text(encoding="utf-8").replace('"0.8"', '"1.2"'))
