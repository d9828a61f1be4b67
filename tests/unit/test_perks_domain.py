"""Perk rules, property-tested: periods, prices, cashback, access, cancellation, ids, and the
pure derivers and projector of the outbox."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.api_models.errors import invalid_input_from
from shared.domain.errors import InvalidInput
from shared.domain.keys import (
    LEGACY_QUOTA_SK_PREFIX,
    MEMBER_SK,
    expired_sk,
    fuel_sk,
    idempotency_sk,
    ledger_sk,
    member_and_quotas_range,
    order_sk,
    quota_sk,
    rating_sk,
    redemption_sk,
    waiting_sk,
)
from shared.domain.periods import period_key
from shared.domain.perk_events import perk_events
from shared.domain.perks import (
    AccessReason,
    RedemptionRequest,
    badge_of,
    cancellation_problem,
    capped_cashback,
    cashback_amount,
    cashback_month,
    effective_tier,
    find_perk,
    key_digest,
    new_code,
    new_redemption,
    new_redemption_id,
    next_period_start,
    period_ends,
    period_start,
    perk_access,
    plan_redemption,
    request_digest,
)
from shared.domain.program import Perk, Program, QuotaPeriod
from shared.domain.tiers import rank
from shared.domain.window import pack_days
from shared.logic.ledger import ledger_projection
from shared.programs import load_program

PROGRAM = load_program("cart-star")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31))
periods = st.sampled_from(list(QuotaPeriod))
tiers = st.sampled_from([None, "gold", "platinum", "diamond"])


def perk(perk_id: str) -> Perk:
    found = find_perk(PROGRAM, perk_id)
    assert found is not None
    return found


# -- periods --------------------------------------------------------------------------------------


@given(days, periods)
def test_a_day_lies_in_its_period_and_the_next_period_starts_a_new_key(
    day: date, period: QuotaPeriod
) -> None:
    start, end = period_start(day, period), next_period_start(day, period)
    assert start <= day < end
    assert (
        period_key(start, period)
        == period_key(day, period)
        == period_key(end - timedelta(1), period)
    )
    assert period_key(end, period) != period_key(day, period)
    assert next_period_start(end - timedelta(days=1), period) == end


@given(days, periods)
def test_a_period_key_names_when_the_period_ends(day: date, period: QuotaPeriod) -> None:
    assert period_ends(period_key(day, period)) == next_period_start(day, period)


@pytest.mark.parametrize("period", ["", "2026-Q5", "2026-13", "2026-1", "26-11", "2026-11-01"])
def test_a_period_ends_refuses_what_is_not_a_period(period: str) -> None:
    with pytest.raises(ValueError, match="not a quota period"):
        period_ends(period)


def test_period_keys() -> None:
    assert period_key(date(2026, 12, 31), QuotaPeriod.QUARTER) == "2026-Q4"
    assert period_key(date(2027, 1, 1), QuotaPeriod.QUARTER) == "2027-Q1"
    assert period_key(date(2026, 11, 23), QuotaPeriod.MONTH) == "2026-11"
    assert next_period_start(date(2026, 12, 9), QuotaPeriod.MONTH) == date(2027, 1, 1)


def quota_key(perk_id: str, day: date, period: QuotaPeriod) -> str:
    """The key of the quota item of ``day``'s period, as a redemption writes it."""
    return quota_sk(perk_id, period_key(day, period), next_period_start(day, period))


def in_range(sk: str, today: date) -> bool:
    first, last = member_and_quotas_range(today)
    return first <= sk <= last


@given(days, st.lists(st.tuples(periods, st.integers(min_value=-800, max_value=800)), max_size=12))
def test_the_perks_range_holds_the_member_and_the_quotas_not_ended_never_a_past_one(
    today: date, quotas: list[tuple[QuotaPeriod, int]]
) -> None:
    assert member_and_quotas_range(today)[0] == MEMBER_SK and in_range(MEMBER_SK, today)
    for period, offset in quotas:
        day = today + timedelta(days=offset)
        for perk_id in ("care_days", "car_maintenance", "x"):
            ends = next_period_start(day, period)
            assert in_range(quota_key(perk_id, day, period), today) == (ends > today)


@given(days, days, periods, periods)
def test_quota_keys_sort_the_latest_ending_period_first(
    one: date, other: date, period: QuotaPeriod, other_period: QuotaPeriod
) -> None:
    ends, other_ends = next_period_start(one, period), next_period_start(other, other_period)
    if ends > other_ends:
        assert quota_key("p", one, period) < quota_key("p", other, other_period)


def test_the_perks_range_at_period_boundaries() -> None:
    month, quarter, year = QuotaPeriod.MONTH, QuotaPeriod.QUARTER, QuotaPeriod.YEAR
    november, december = date(2026, 11, 15), date(2026, 12, 15)
    q4, q1 = date(2026, 11, 15), date(2027, 2, 1)
    for today in (date(2026, 12, 1), date(2026, 12, 31)):
        assert not in_range(quota_key("car_maintenance", november, month), today)
        assert in_range(quota_key("car_maintenance", december, month), today)
        assert in_range(quota_key("care_days", q4, quarter), today)
        assert in_range(quota_key("care_days", q1, quarter), today), "booked ahead"
        assert in_range(quota_key("y", december, year), today)
    new_year = date(2027, 1, 1)
    assert not in_range(quota_key("car_maintenance", december, month), new_year)
    assert not in_range(quota_key("care_days", q4, quarter), new_year)
    assert not in_range(quota_key("y", december, year), new_year)
    assert in_range(quota_key("care_days", q1, quarter), new_year)
    assert in_range(quota_key("y", new_year, year), new_year)
    assert quota_key("care_days", q4, quarter) == "MEMBER#Q#79729898#care_days#2026-Q4"


@given(days)
def test_no_other_item_of_the_member_falls_in_the_perks_range(today: date) -> None:
    others = [
        order_sk("o-1"),
        redemption_sk("01KB0000000000000000000000"),
        idempotency_sk("0" * 40),
        fuel_sk("p-1"),
        ledger_sk("2026-11-23T12:00:00.000000+00:00", "o-1", "credit"),
        rating_sk("2026-11-23T12:00:00.000000+00:00", "o-1"),
        "RATINGS",
        waiting_sk("o-1"),
        expired_sk("o-1"),
        f"{LEGACY_QUOTA_SK_PREFIX}care_days#{period_key(today, QuotaPeriod.QUARTER)}",
    ]
    assert not any(in_range(sk, today) for sk in others)


# -- requests and prices --------------------------------------------------------------------------


def request(**body: Any) -> RedemptionRequest:
    return RedemptionRequest.model_validate(body)


@given(st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=90))
def test_an_hour_booking_costs_its_hours_and_uses_the_dates_quarter(hours: int, ahead: int) -> None:
    day = NOW.date() + timedelta(days=ahead)
    body = request(
        perkId="care_days", careType="child", date=day.isoformat(), unit="hour", hours=hours
    )
    plan = plan_redemption(body, perk("care_days"), "diamond", NOW, PROGRAM)
    assert plan.price.amount == Decimal(hours) and plan.price.currency == "USD"
    assert plan.period == period_key(day, QuotaPeriod.QUARTER) and plan.limit == 2
    assert plan.slot == f"s:{day.isoformat()}"
    day_plan = plan_redemption(
        request(perkId="care_days", careType="child", date=day.isoformat(), unit="day"),
        perk("care_days"),
        "diamond",
        NOW,
        PROGRAM,
    )
    assert day_plan.price.amount == Decimal("10.00") and day_plan.slot == plan.slot


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"perkId": "care_days", "careType": "child", "unit": "day"}, "date"),
        ({"perkId": "care_days", "careType": "child", "date": "2026-11-22", "unit": "day"}, "date"),
        ({"perkId": "care_days", "careType": "child", "date": "2027-02-22", "unit": "day"}, "date"),
        ({"perkId": "care_days", "careType": "child", "date": "2026-12-01"}, "unit"),
        (
            {"perkId": "care_days", "careType": "child", "date": "2026-12-01", "unit": "hour"},
            "hours",
        ),
        (
            {
                "perkId": "care_days",
                "careType": "child",
                "date": "2026-12-01",
                "unit": "hour",
                "hours": 11,
            },
            "hours",
        ),
        (
            {
                "perkId": "care_days",
                "careType": "child",
                "date": "2026-12-01",
                "unit": "day",
                "hours": 1,
            },
            "hours",
        ),
        ({"perkId": "car_maintenance", "unit": "day"}, "unit"),
    ],
)
def test_plans_refuse_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        plan_redemption(request(**body), perk(body["perkId"]), "diamond", NOW, PROGRAM)
    assert refused.value.field == field


@pytest.mark.parametrize("field", ["tier", "points", "memberId", "price", "status", "day"])
def test_requests_refuse_unknown_and_read_only_fields(field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        request(perkId="care_days", careType="child", **{field: "x"})
    error = invalid_input_from(refused.value.errors())
    assert error.field == field and error.status == 422 and "read-only" in error.message


def test_request_digests_ignore_spelling_not_content() -> None:
    one = request(perkId="care_days", careType="child", date="2026-12-01", unit="day")
    same = RedemptionRequest.model_validate_json(
        '{ "unit": "day", "date": "2026-12-01", "perkId": "care_days", "careType": "child",'
        ' "hours": null }'
    )
    other = request(perkId="care_days", careType="child", date="2026-12-02", unit="day")
    assert request_digest(one) == request_digest(same) != request_digest(other)
    assert key_digest("a") != key_digest("b") and len(key_digest("x" * 255)) == 40


@given(
    st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False),
    st.sampled_from([Decimal("0.02"), Decimal("0.03"), Decimal("0.04"), Decimal("0.05")]),
)
def test_cashback_is_the_rate_to_the_nearest_cent(amount: Decimal, rate: Decimal) -> None:
    cashback = cashback_amount(amount, rate)
    assert cashback.as_tuple().exponent == -2
    assert abs(cashback - amount * rate) <= Decimal("0.005")
    assert cashback_amount(amount + Decimal("0.01"), rate) >= cashback


# -- access ---------------------------------------------------------------------------------------


@given(tiers, st.integers(min_value=0, max_value=3000), st.booleans())
def test_the_tier_for_perks_is_never_below_the_stored_or_the_earned_tier(
    stored: str | None, points: int, eligible: bool
) -> None:
    member: dict[str, Any] = {**pack_days({NOW.date(): points}), "eligible": eligible}
    if stored:
        member["tier"] = stored
    tier = effective_tier(member, NOW.date(), PROGRAM)
    if not eligible:
        assert tier is None
        assert all(
            perk_access(p, member, NOW.date(), PROGRAM).reason is AccessReason.NOT_ELIGIBLE
            for p in PROGRAM.perks
        )
        return
    earned = [t.id for t in PROGRAM.tiers if points >= t.min_points]
    assert rank(tier, PROGRAM) >= rank(stored, PROGRAM)
    assert rank(tier, PROGRAM) >= rank(earned[-1] if earned else None, PROGRAM)
    care = perk_access(perk("care_days"), member, NOW.date(), PROGRAM)
    assert care.open == (tier == "diamond")
    assert care.via_points == (care.open and stored != "diamond")


# -- redemptions ----------------------------------------------------------------------------------


@given(
    st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2090, 1, 1)),
    st.binary(min_size=10, max_size=10),
)
def test_redemption_ids_sort_by_time(moment: datetime, entropy: bytes) -> None:
    first = new_redemption_id(moment.replace(tzinfo=UTC), entropy)
    later = new_redemption_id(moment.replace(tzinfo=UTC) + timedelta(milliseconds=1), b"\0" * 10)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", first)
    assert first < later


@given(st.binary(min_size=8, max_size=8))
def test_codes_are_readable(entropy: bytes) -> None:
    assert re.fullmatch(
        r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", new_code(entropy)
    )


def booked(day: date) -> Any:
    plan = plan_redemption(
        request(perkId="care_days", careType="child", date=day.isoformat(), unit="day"),
        perk("care_days"),
        None,
        NOW,
        PROGRAM,
    )
    return new_redemption(plan, None, NOW, new_redemption_id(NOW, b"0" * 10), None)


def test_bookings_cancel_until_their_date_begins_and_codes_never() -> None:
    redemption = booked(date(2026, 12, 1))
    assert (
        cancellation_problem(redemption, datetime(2026, 11, 30, 23, 59, tzinfo=UTC), PROGRAM)
        is None
    )
    assert cancellation_problem(redemption, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), PROGRAM)
    code_plan = plan_redemption(
        request(perkId="car_maintenance"), perk("car_maintenance"), "gold", NOW, PROGRAM
    )
    assert code_plan.discount_rate == Decimal("0.10")
    code = new_redemption(
        code_plan, "gold", NOW, new_redemption_id(NOW, b"1" * 10), "AAAA-BBBB-CCCC"
    )
    assert cancellation_problem(code, NOW, PROGRAM)


def test_booking_and_code_perks_need_a_quota_and_cashback_needs_rates() -> None:
    with pytest.raises(ValidationError, match="quota"):
        Perk.model_validate({"id": "x", "kind": "booking", "tiers": [None], "pricePerDay": "1"})
    with pytest.raises(ValidationError, match="rates"):
        Perk.model_validate({"id": "x", "kind": "cashback", "tiers": [None]})
    with pytest.raises(ValidationError, match="unknown tiers"):
        Program.model_validate(
            {
                "id": "p",
                "version": 1,
                "name": "p",
                "tiers": [{"id": "gold", "name": "Gold", "minPoints": 1}],
                "perks": [{"id": "x", "kind": "badge", "tiers": ["diamond"]}],
            }
        )


def test_the_badge_shows_tier_orders_and_tenure_only() -> None:
    member = {
        "tier": "platinum",
        "ordersCompleted": 120,
        "memberSince": "2025-11-24T08:00:00.000000+00:00",
        "lifetimePoints": 4000,
        "ratingAverage": Decimal("4.9"),
        "walletBalance": Decimal("12.50"),
    }
    badge = badge_of(member, NOW.date(), PROGRAM)
    assert badge is not None
    assert badge.model_dump(by_alias=True) == {
        "tier": "platinum",
        "tierName": "Platinum",
        "ordersCompleted": 120,
        "memberSince": "2025-11",
        "tenureMonths": 11,
    }
    assert badge_of({**member, "tier": "gold"}, NOW.date(), PROGRAM) is None
    assert badge_of({**member, "eligible": False}, NOW.date(), PROGRAM) is None


# -- outbox: derivers and the ledger projector ----------------------------------------------------


def redemption_image(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "pk": "P#cart-star#M#ann",
        "sk": "REDEMPTION#01ABC",
        "memberId": "ann",
        "programId": "cart-star",
        "redemptionId": "01ABC",
        "perkId": "care_days",
        "careType": "child",
        "kind": "booking",
        "status": status,
        "period": "2026-Q4",
        "date": "2026-12-01",
        "price": {"amount": "10.00", "currency": "USD"},
        "createdAt": "2026-11-23T12:00:00.000000+00:00",
        **extra,
    }


def test_redemption_events_follow_committed_changes_only() -> None:
    confirmed = redemption_image("confirmed")
    (redeemed,) = perk_events(None, confirmed)
    assert redeemed.detail_type == "PerkRedeemed" and redeemed.detail["reason"] == "member_request"
    assert redeemed.detail["occurredAt"] == confirmed["createdAt"] and redeemed.detail["eventId"]
    assert perk_events(None, confirmed)[0].detail["eventId"] == redeemed.detail["eventId"]
    cancelled = redemption_image("cancelled", cancelledAt="2026-11-24T00:00:00.000000+00:00")
    (event,) = perk_events(confirmed, cancelled)
    assert event.detail_type == "RedemptionCancelled" and event.detail["quotaReturned"] is True
    assert perk_events(cancelled, cancelled) == [] and perk_events(confirmed, None) == []
    quota = quota_sk("care_days", "2026-Q4", date(2027, 1, 1))
    assert perk_events(None, {**confirmed, "sk": quota}) == []


def test_cashback_events_only_for_credited_purchases() -> None:
    purchase = {
        "sk": "FUEL#p-1",
        "memberId": "ann",
        "purchaseId": "p-1",
        "status": "credited",
        "amount": {"amount": "40.00", "currency": "USD"},
        "cashback": {"amount": "2.00", "currency": "USD"},
        "rate": "0.05",
        "occurredAt": "2026-11-23T10:00:00.000000+00:00",
    }
    (event,) = perk_events(None, purchase)
    assert event.detail_type == "CashbackCredited" and event.detail["reason"] == "fuel_purchase"
    assert perk_events(None, {**purchase, "status": "declined"}) == []
    assert perk_events(None, {**purchase, "cashback": {"amount": "0.00", "currency": "USD"}}) == []
    assert perk_events(purchase, purchase) == []


def order_image(**extra: Any) -> dict[str, Any]:
    return {
        "pk": "P#cart-star#M#ann",
        "sk": "ORDER#o-1",
        "memberId": "ann",
        "orderId": "o-1",
        "completedAt": "2026-11-23T10:00:00.000000+00:00",
        "points": Decimal(20),
        "ruleVersion": "cart-star@1",
        "batchSize": Decimal(2),
        "status": "credited",
        **extra,
    }


def test_the_ledger_projection_adds_each_entry_once() -> None:
    credited = order_image()
    ((pk, sk, entry),) = ledger_projection(None, credited)
    assert pk == "P#cart-star#M#ann"
    assert sk == "LEDGER#2026-11-23T10:00:00.000000+00:00#o-1#credit"
    assert (entry.points, entry.kind, entry.batch_size) == (20, "credit", 2)
    assert ledger_projection(credited, {**credited, "tip": {"amount": 1}}) == []
    reversed_ = order_image(
        status="reversed",
        reversal={
            "kind": "OrderRefunded",
            "occurredAt": "2026-11-24T09:00:00.000000+00:00",
            "points": Decimal(-20),
            "ruleVersion": "cart-star@1",
        },
    )
    ((_, sk, entry),) = ledger_projection(credited, reversed_)
    assert sk.endswith("#o-1#reversal") and entry.points == -20 and entry.reason == "OrderRefunded"
    assert len(ledger_projection(None, reversed_)) == 2, "a late first sight sees both"
    assert ledger_projection(None, order_image(status="void", points=None)) == []
    assert ledger_projection(None, {**credited, "sk": "MEMBER"}) == []


def test_validation_errors_name_the_field() -> None:
    header = invalid_input_from(
        [{"type": "missing", "loc": ("header", "idempotency-key"), "msg": "Field required"}]
    )
    assert header.field == "Idempotency-Key" and header.status == 422
    body = invalid_input_from([{"type": "model_attributes_type", "loc": ("body",), "msg": "x"}])
    assert body.status == 400 and body.code == "malformed_request"
    query = invalid_input_from(
        [
            {"type": "less_than_equal", "loc": ("query", "limit"), "msg": "Input should be <= 100"},
            {"type": "x", "loc": ("query", "nextToken"), "msg": "y"},
        ]
    )
    assert query.field == "limit" and "1 more problem" in query.message


@given(
    earned=st.decimals(min_value=0, max_value=100, places=2),
    credited=st.decimals(min_value=0, max_value=150, places=2),
)
def test_cashback_caps_bound_the_purchase_and_the_month(earned: Decimal, credited: Decimal) -> None:
    limits = load_program("cart-star").limits
    capped = capped_cashback(earned, credited, limits)
    assert capped.earned == earned
    assert Decimal(0) <= capped.credit <= min(earned, limits.max_cashback_per_purchase)
    assert credited + capped.credit <= max(limits.max_cashback_per_month, credited)
    room = max(limits.max_cashback_per_month - credited, Decimal(0))
    assert capped.credit == min(earned, limits.max_cashback_per_purchase, room)
    assert (capped.capped_by is None) == (capped.credit == earned)


def test_a_purchase_counts_in_its_month_in_the_programs_zone() -> None:
    document = load_program("cart-star").model_dump(mode="json", by_alias=True)
    document["timeZone"] = "America/New_York"
    program = Program.model_validate(document)
    late = cashback_month("gas_cashback", datetime(2026, 12, 1, 4, 59, tzinfo=UTC), program)
    early = cashback_month("gas_cashback", datetime(2026, 12, 1, 5, 0, tzinfo=UTC), program)
    assert (late.period, early.period) == ("2026-11", "2026-12")
    assert late.sk == quota_sk("gas_cashback", "2026-11", date(2026, 12, 1))
    assert late.limit == program.limits.max_cashback_per_month


# -- partner codes ---------------------------------------------------------------------------------


def test_a_partners_principals_match_with_star_only() -> None:
    from shared.domain.perks import find_perk, principal_allowed  # noqa: PLC0415

    perk = find_perk(PROGRAM, "car_maintenance")
    assert perk is not None and perk.partner is not None
    assert principal_allowed(perk, "arn:aws:sts::111122223333:assumed-role/loyalty-autocare/s1")
    assert principal_allowed(perk, "arn:aws:iam::000000000000:user/autocare")
    # '*' is the only wildcard: dots and brackets are themselves, a prefix is not enough.
    assert not principal_allowed(perk, "arn:aws:sts::1:assumed-role/loyalty-autocareX/s1")
    assert not principal_allowed(perk, "arn:aws:iam::000000000000:user/autocare2")
    assert not principal_allowed(perk, "arn:aws:iam::000000000000:user/other")
    assert not principal_allowed(perk, None)
    care = find_perk(PROGRAM, "care_days")
    assert care is not None and not principal_allowed(care, "arn:aws:iam::0:user/autocare")


def test_only_a_code_perk_has_a_partner() -> None:
    document = load_program("cart-star").model_dump(mode="json", by_alias=True)
    for perk in document["perks"]:
        if perk["id"] == "care_days":
            perk["partner"] = {"id": "nanny", "principals": ["arn:aws:iam::*:user/nanny"]}
    with pytest.raises(ValidationError, match="only a code perk has a partner"):
        type(PROGRAM).model_validate(document)


def test_a_care_day_names_its_kind_of_care() -> None:
    perk = find_perk(PROGRAM, "care_days")
    assert perk is not None
    now = datetime(2026, 11, 20, 15, tzinfo=UTC)
    body = {"perkId": "care_days", "date": "2026-12-01", "unit": "day"}
    plan = plan_redemption(request(**body, careType="pet"), perk, "diamond", now, PROGRAM)
    assert plan.care_type == "pet"
    for bad, words in (({}, "required"), ({"careType": "plants"}, "'plants' is not one")):
        with pytest.raises(InvalidInput) as raised:
            plan_redemption(request(**body, **bad), perk, "diamond", now, PROGRAM)
        assert raised.value.field == "careType" and words in raised.value.message
        assert "child, senior, pet" in raised.value.message
    code = find_perk(PROGRAM, "car_maintenance")
    assert code is not None
    with pytest.raises(InvalidInput) as raised:
        plan_redemption(request(perkId="car_maintenance", careType="pet"), code, None, now, PROGRAM)
    assert raised.value.field == "careType"


def test_an_export_carries_every_stored_type_as_json() -> None:
    import json  # noqa: PLC0415

    from boto3.dynamodb.types import Binary  # noqa: PLC0415

    from shared.logic.privacy import plain  # noqa: PLC0415

    stored = {
        "b": Binary(b"\x00\x01"),
        "raw": b"\xff",
        "n": Decimal("12"),
        "d": Decimal("0.05"),
        "ss": {"b", "a"},
        "m": {"l": [Decimal("1"), Binary(b"x")]},
    }
    assert json.loads(json.dumps(plain(stored))) == {
        "b": "AAE=",
        "raw": "/w==",
        "n": 12,
        "d": "0.05",
        "ss": ["a", "b"],
        "m": {"l": [1, "eA=="]},
    }
