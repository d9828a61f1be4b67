"""Rating moderation's pure parts: the event, exclusions, eligibility, the window, the raters'
verdicts and the outbound event derivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from shared.domain.errors import InvalidInput
from shared.domain.events import parse_detail
from shared.domain.money import Money
from shared.domain.program import Program
from shared.domain.raters import (
    Given,
    RaterState,
    add_in_order,
    add_late,
    decide,
    rater_day,
    with_tip_bait,
)
from shared.domain.rating_events import rating_events
from shared.domain.rating_window import (
    SPARE_ENTRIES,
    RatingWindow,
    decode,
    encode,
    entry_stars,
    entry_time,
    from_spare,
    insert,
    make_entry,
    missing,
    order_key,
    refill,
    remove,
)
from shared.domain.ratings import (
    RATING_EVENTS,
    AdminAction,
    EligibilityReason,
    RatingFacts,
    RatingSlot,
    TipChange,
    exclusions,
    first_baited_at,
    is_low,
    judge,
    with_tips,
)
from shared.domain.timeutil import to_utc_iso
from tests.ratings_support import small_program

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def detail(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "ratingId": "r-1",
        "orderId": "o-1",
        "memberId": "shopper-1",
        "customerId": "cust-1",
        "stars": 5,
        "reasons": [],
        "submittedAt": "2026-11-23T10:00:00+00:00",
    }
    body.update(overrides)
    return body


# -- the event ----------------------------------------------------------------------------------


def test_rating_submitted_parses_the_contract() -> None:
    event = parse_detail("RatingSubmitted", detail(reasons=["store_closed"]), RATING_EVENTS)
    facts = RatingFacts.of(event)  # type: ignore[arg-type]
    assert facts.stars == 5 and facts.reasons == ("store_closed",)
    assert facts.submitted_at == "2026-11-23T10:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customerId": "shopper-1"}, "detail.customerId"),
        ({"stars": 0}, "detail.stars"),
        ({"stars": 6}, "detail.stars"),
        ({"stars": "5"}, "detail.stars"),
        ({"stars": 4.5}, "detail.stars"),
        ({"submittedAt": "2026-11-23T10:00:00"}, "detail.submittedAt"),
        ({"reasons": ["Not A Code"]}, "detail.reasons.0"),
        ({"ratingId": "has#hash"}, "detail.ratingId"),
    ],
)
def test_rating_submitted_refuses_what_breaks_the_contract(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_detail("RatingSubmitted", detail(**overrides), RATING_EVENTS)
    assert caught.value.field == field


def test_a_rater_never_rates_themselves() -> None:
    with pytest.raises(InvalidInput, match="never rates themselves"):
        parse_detail("RatingSubmitted", detail(customerId="shopper-1"), RATING_EVENTS)


# -- exclusions ---------------------------------------------------------------------------------


def slot(stars: int = 5, reasons: tuple[str, ...] = (), **changes: object) -> RatingSlot:
    base = RatingSlot(
        member_id="m",
        order_id="o",
        customer_id="c",
        completed_at="2026-11-01T09:00:00.000000+00:00",
        order_status="credited",
        tip_at_delivery=usd("10.00"),
        rating=RatingFacts("r", "c", stars, reasons, "2026-11-01T10:00:00.000000+00:00"),
    )
    return replace(base, **changes)


def tip(at_hours: int, new: str, reason: bool = False, previous: str = "10.00") -> TipChange:
    at = (T0 + timedelta(hours=at_hours)).isoformat(timespec="microseconds")
    return TipChange(at, usd(previous), usd(new), reason)


def test_each_exclusion_is_stored_with_its_reason() -> None:
    program = small_program()
    assert exclusions(slot(), program) == ()
    assert [e.value for e in exclusions(slot(order_status="reversed"), program)] == [
        "order_not_delivered"
    ]
    assert [e.value for e in exclusions(slot(1, hard_to_please=True), program)] == [
        "hard_to_please"
    ]
    admin = AdminAction("exclude", "admin-1", "2026-11-02T00:00:00+00:00", "abuse")
    assert [e.value for e in exclusions(slot(admin=admin), program)] == ["admin"]
    baited = with_tips(slot(), (tip(2, "1.00"),))
    assert [e.value for e in exclusions(baited, program)] == ["tip_baited"]


def test_outside_control_needs_every_reason_on_the_list() -> None:
    program = small_program()
    assert exclusions(slot(2, ("item_out_of_stock", "store_closed")), program)
    assert not exclusions(slot(2, ("item_out_of_stock", "rude")), program)
    assert not exclusions(slot(2, ()), program)


def test_tip_bait_follows_the_latest_change_and_a_reason_clears_it() -> None:
    program = small_program()
    # Lowered by $9 without a reason: baited; raised back later: no longer.
    lowered = with_tips(slot(), (tip(1, "1.00"),))
    assert exclusions(lowered, program)
    raised = with_tips(lowered, (tip(5, "10.00", previous="1.00"),))
    assert not exclusions(raised, program)
    # The first bait is kept for the customer's flag.
    assert first_baited_at(raised, program) == tip(1, "1.00").occurred_at
    # With a reason, or by less than 50% of the $10 at delivery, it is not a bait.
    assert not exclusions(with_tips(slot(), (tip(1, "1.00", reason=True),)), program)
    assert not exclusions(with_tips(slot(), (tip(1, "5.01"),)), program)
    assert exclusions(with_tips(slot(), (tip(1, "5.00"),)), program)
    # A change seen twice is kept once.
    twice = with_tips(lowered, (tip(1, "1.00"),))
    assert twice is lowered


# -- eligibility --------------------------------------------------------------------------------


def test_fewer_than_min_count_is_not_judged() -> None:
    rules = small_program().rating
    standing = judge(2, 1, True, "not_judged", rules)
    assert standing.eligible and standing.reason is EligibilityReason.NOT_JUDGED
    assert standing.average == Decimal("2.000")


def test_the_floor_is_compared_exactly() -> None:
    rules = small_program().rating  # floor 4.0, min 2
    assert judge(8, 2, True, "rating_ok", rules).eligible  # exactly 4.0
    below = judge(11, 3, True, "rating_ok", rules)  # 3.666...
    assert not below.eligible and below.reason is EligibilityReason.RATING_BELOW_FLOOR
    assert below.average == Decimal("3.666")  # rounded down, never shown above the truth


def test_reinstatement_threshold_adds_hysteresis() -> None:
    program = small_program(**{"rating.reinstatement": "4.5"})
    rules = program.rating
    was = judge(7, 2, True, "rating_ok", rules)  # 3.5: out
    assert not was.eligible
    stays_out = judge(17, 4, False, was.reason.value, rules)  # 4.25: above floor, below 4.5
    assert not stays_out.eligible and stays_out.reason is EligibilityReason.RATING_BELOW_FLOOR
    back = judge(9, 2, False, stays_out.reason.value, rules)  # 4.5
    assert back.eligible and back.reason is EligibilityReason.RATING_REINSTATED
    still = judge(17, 4, True, back.reason.value, rules)  # 4.25 while eligible: stays in
    assert still.eligible and still.reason is EligibilityReason.RATING_REINSTATED


# -- the window ---------------------------------------------------------------------------------


def test_entries_sort_by_completion_and_carry_the_stars() -> None:
    early = make_entry(order_key(T0, "b"), 2)
    late = make_entry(order_key(T0 + timedelta(microseconds=1), "a"), 5)
    assert early < late
    assert entry_stars(early) == 2 and entry_stars(late) == 5
    assert entry_time(late) == T0 + timedelta(microseconds=1)
    assert decode(encode([early, late])) == (early, late)
    assert len(encode([early] * 100)) == 800


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80),
    st.integers(min_value=1, max_value=6),
)
def test_the_window_holds_the_last_n_counted_whatever_the_changes(
    operations: list[tuple[bool, int]], last_n: int
) -> None:
    """Counted ratings come and go in any order; the window always holds the newest N of them
    and counts the others, refilled from the older ones when it falls short."""
    counted: set[int] = set()
    window = RatingWindow()
    for add, position in operations:
        entry = make_entry(
            order_key(T0 + timedelta(minutes=position), f"o{position}"), 1 + position % 5
        )
        if add == (entry in counted):
            continue
        if add:
            counted.add(entry)
            window = insert(window, entry, last_n)
        else:
            counted.discard(entry)
            window = remove(window, entry)
        wanted = missing(window, last_n)
        if wanted:
            older = sorted(
                (
                    e
                    for e in counted
                    if e not in window.entries and (not window.entries or e < window.entries[0])
                ),
                reverse=True,
            )[:wanted]
            window = refill(window, older, wanted)
        newest = sorted(counted)[-last_n:]
        assert list(window.entries) == newest
        assert window.older == len(counted) - len(newest)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80),
    st.integers(min_value=1, max_value=6),
)
def test_spare_entries_refill_the_window_without_a_query(
    operations: list[tuple[bool, int]], last_n: int
) -> None:
    """The spare entries are always the newest of the older counted ratings, so a rating
    leaving the window is replaced from them; the query is needed only once they run out."""
    counted: set[int] = set()
    window = RatingWindow()
    for add, position in operations:
        entry = make_entry(
            order_key(T0 + timedelta(minutes=position), f"o{position}"), 1 + position % 5
        )
        if add == (entry in counted):
            continue
        if add:
            counted.add(entry)
            window = insert(window, entry, last_n)
        else:
            counted.discard(entry)
            window = remove(window, entry)
        window = from_spare(window, last_n)
        wanted = missing(window, last_n)
        if wanted:
            assert not window.spare
            older = sorted(
                (
                    e
                    for e in counted
                    if e not in window.entries and (not window.entries or e < window.entries[0])
                ),
                reverse=True,
            )[:wanted]
            window = refill(window, older, wanted)
        newest = sorted(counted)[-last_n:]
        assert list(window.entries) == newest
        assert window.older == len(counted) - len(newest)
        beyond = sorted(counted)[: -last_n or None] if len(counted) > last_n else []
        assert len(window.spare) <= min(SPARE_ENTRIES, len(beyond))
        assert list(window.spare) == beyond[len(beyond) - len(window.spare) :]


# -- raters -------------------------------------------------------------------------------------


def test_crossing_the_line_reconciles_the_low_ratings_already_counted() -> None:
    program = small_program()  # 3 ratings in 10 days with a mean <= 3.0
    state = RaterState("c")
    day = rater_day(T0, program)
    first = add_in_order(state, day, 2, program)
    assert not first.hard_to_please and first.state.reconcile is None
    second = add_in_order(first.state, day + 1, 3, program)
    assert not second.hard_to_please and second.state.reconcile is None
    third = add_in_order(second.state, day + 2, 3, program)  # 8 / 3 <= 3.0: hard to please
    assert third.state.htp_days == (day + 2,)
    # The third is low (below the 4.0 floor) and excluded; the first two, already stored, are
    # to be re-decided.
    assert third.hard_to_please
    assert third.state.reconcile == (day, day + 1)
    given = [
        Given(day + i, stars, "m", f"o{i}", f"s{i}", f"r{i}") for i, stars in enumerate((2, 3, 3))
    ]
    assert decide(third.state, given, day, day + 2, program) == {
        "r0": True,
        "r1": True,
        "r2": True,
    }
    # A five-star rating is never low: it counts whatever the rater.
    fourth = add_in_order(third.state, day + 3, 5, program)
    assert not fourth.hard_to_please


def test_crossing_back_keeps_the_past_exclusions() -> None:
    program = small_program()
    day = rater_day(T0, program)
    stars = (1, 1, 1, 5, 5, 5, 5, 5, 5, 3)
    state = RaterState("c")
    for i, value in enumerate(stars):
        state = add_in_order(state, day + i, value, program).state
    # The rater's index holds only the low ratings (nothing else is ever re-decided).
    given = [
        Given(day + i, s, "m", f"o{i}", f"s{i}", f"r{i}")
        for i, s in enumerate(stars)
        if is_low(s, program)
    ]
    verdicts = decide(state, given, day, day + len(stars), program)
    # The three 1s made them hard to please; the later 3 comes after they are back (mean > 3).
    assert verdicts == {"r0": True, "r1": True, "r2": True, "r9": False}


def test_a_late_rating_is_judged_from_the_day_buckets() -> None:
    program = small_program()
    day = rater_day(T0, program)
    state = RaterState("c")
    for stars in (1, 2):
        verdict = add_in_order(state, day + 5 + stars - 1, stars, program)
        state = verdict.state
    # A 1-star from day 4 arrives last: with it, the rater was hard to please on days 6.
    late = add_late(state, day + 4, 1, program)
    assert late.hard_to_please
    assert late.state.reconcile is not None and late.state.reconcile[1] >= day + 5
    assert late.state.last_day == day + 6


def test_three_baited_orders_in_the_window_flag_the_customer_once() -> None:
    program = small_program(
        **{"moderation.tipBait.flagAfter": 3, "moderation.tipBait.flagWindowDays": 10}
    )
    state = RaterState("c")

    def at(days: int) -> str:
        return to_utc_iso(T0 + timedelta(days=days))

    state = with_tip_bait(state, "o1", at(0), program, T0)
    state = with_tip_bait(state, "o2", at(4), program, T0)
    state = with_tip_bait(state, "o3", at(30), program, T0)
    assert state.flagged_at is None  # 30 days apart: not within the 10-day window
    flagged = with_tip_bait(state, "o4", at(8), program, T0)
    assert flagged.flagged_at is not None
    assert flagged.flagged_orders == ("o1", "o2", "o4")
    assert with_tip_bait(flagged, "o5", at(1), program, T0) is flagged


def test_old_baits_age_out_of_the_customers_record() -> None:
    """Baits of orders delivered more than the flag window before the time a bait is recorded
    leave the record (it stays small) and no longer count toward the flag."""
    program = small_program(
        **{"moderation.tipBait.flagAfter": 2, "moderation.tipBait.flagWindowDays": 10}
    )

    def at(days: int) -> str:
        return to_utc_iso(T0 + timedelta(days=days))

    state = RaterState("c")
    for day in range(0, 100, 20):  # five baits, 20 days apart, each recorded on its day
        state = with_tip_bait(state, f"o{day}", at(day), program, T0 + timedelta(days=day))
        assert list(state.tip_baits) == [f"o{day}"], "only the latest is within 10 days"
    assert state.flagged_at is None
    # Recorded on day 89, a bait of day 85 is within 10 days of day 80's: flagged.
    flagged = with_tip_bait(state, "o85", at(85), program, T0 + timedelta(days=89))
    assert flagged.flagged_orders == ("o80", "o85")
    # Recorded on day 95 instead, day 80's bait had aged out (and day 85's counts alone).
    alone = with_tip_bait(state, "o85", at(85), program, T0 + timedelta(days=95))
    assert alone.flagged_at is None and dict(alone.tip_baits) == {"o85": at(85)}
    # A bait older than the window when it is recorded does not count at all.
    stale = with_tip_bait(RaterState("c"), "o0", at(0), program, T0 + timedelta(days=11))
    assert stale.tip_baits == {}


# -- outbound events ----------------------------------------------------------------------------


def member_image(**attributes: object) -> dict[str, object]:
    return {"pk": "P#cart-star#M#m1", "sk": "MEMBER", "memberId": "m1", **attributes}


def test_eligibility_changes_publish_with_average_count_and_reason() -> None:
    old = member_image(eligible=True, ratingAverage=Decimal("4.8"), ratingCount=Decimal(12))
    new = member_image(
        eligible=False,
        ratingAverage=Decimal("4.65"),
        ratingCount=Decimal(12),
        eligibilityReason="rating_below_floor",
        eligibilityChangedAt="2026-11-23T12:00:00.000000+00:00",
    )
    (event,) = rating_events(old, new)
    assert event.detail_type == "MemberEligibilityChanged"
    assert event.detail["eligible"] is False and event.detail["previous"] is True
    assert event.detail["average"] == Decimal("4.65") and event.detail["count"] == 12
    assert event.detail["reason"] == "rating_below_floor"
    assert event.detail["occurredAt"] == "2026-11-23T12:00:00.000000+00:00"
    assert rating_events(old, new)[0].detail["eventId"] == event.detail["eventId"]
    # First judged below the floor: absent meant eligible.
    assert rating_events(None, new)[0].detail["previous"] is True
    # The same standing with another average: nothing to publish.
    assert rating_events(new, {**new, "ratingAverage": Decimal("4.6")}) == []
    assert rating_events(old, {**old, "lifetimePoints": Decimal(10)}) == []


def test_two_flips_to_the_same_standing_in_one_instant_publish_two_ids() -> None:
    """Eligible -> ineligible -> eligible -> ineligible within one second (the member item
    keeps instants to the second): the flip count tells the two falls apart, so a consumer
    that deduplicates by ``eventId`` drops neither."""
    at = "20261123T120000Z"
    first = member_image(eligible=False, eligibilityChangedAt=at, eligibilityFlips=Decimal(1))
    back = member_image(eligible=True, eligibilityChangedAt=at, eligibilityFlips=Decimal(2))
    again = member_image(eligible=False, eligibilityChangedAt=at, eligibilityFlips=Decimal(3))
    (fall,) = rating_events(member_image(), first)
    (second_fall,) = rating_events(back, again)
    assert fall.detail["eventId"] != second_fall.detail["eventId"]
    assert rating_events(member_image(), first)[0].detail["eventId"] == fall.detail["eventId"]


def test_a_customer_flag_publishes_once() -> None:
    old = {"pk": "P#cart-star#C#c1", "sk": "CUSTOMER", "customerId": "c1"}
    new = {
        **old,
        "tipBaitFlaggedAt": "2026-11-23T12:00:00.000000+00:00",
        "tipBaitOrderIds": ["o1", "o2", "o3"],
        "tipBaitReason": "tip_baited_orders",
        "tipBaitWindowDays": Decimal(90),
    }
    (event,) = rating_events(old, new)
    assert event.detail_type == "CustomerFlaggedForTipBaiting"
    assert event.detail["customerId"] == "c1" and event.detail["orderIds"] == ["o1", "o2", "o3"]
    assert event.detail["windowDays"] == 90 and event.detail["reason"] == "tip_baited_orders"
    assert rating_events(new, {**new, "v": Decimal(9)}) == []


def test_program_defaults_carry_spec_numbers(program: Program) -> None:
    assert program.rating.floor == Decimal("4.7") and program.rating.last_n == 100
    assert program.moderation.hard_to_please.window_days == 180
    assert program.moderation.order_wait_days == 7
