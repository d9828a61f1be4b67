"""``GET /v1/me`` in fixed-period (quarter) mode: the tier held (set by last quarter's points),
and, under ``period``, this quarter's points so far and the tier they earn for the next quarter.

Checked on both sides of a year's end in the program's time zone (New York: 2026-12-31 23:30
local is already 2027-01-01 in UTC), with the orders credited as the ledger credits them
(``plan_credit``, buckets by the completion's local day) and ``now`` given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain.events import OrderCompleted
from shared.domain.orders import plan_credit
from shared.domain.program import Program, WindowMode, WindowRules
from shared.domain.window import bucket_increment
from shared.logic.members import member_view
from shared.programs import load_program

ZONE = "America/New_York"


def fixed_program() -> Program:
    base = load_program("cart-star")
    return Program.model_validate(
        {
            **base.model_dump(),
            "time_zone": ZONE,
            "window": WindowRules(mode=WindowMode.FIXED, period="quarter"),
        }
    )


def credit(
    item: dict[str, Any], program: Program, completed_at: str, now: datetime, batch: int = 3
) -> None:
    """What order_ingestion adds to the member item for one order (and prunes)."""
    event = OrderCompleted.model_validate(
        {
            "orderId": f"o-{len(item)}-{completed_at}",
            "memberId": "s-1",
            "customerId": "c-1",
            "completedAt": completed_at,
            "batchSize": batch,
            "total": {"amount": "40.00", "currency": "USD"},
            "tip": {"amount": "5.00", "currency": "USD"},
        }
    )
    plan = plan_credit(program, event, now)
    assert plan.bucket is not None
    name, amount = bucket_increment(plan.bucket, plan.points)
    item[name] = item.get(name, 0) + amount
    for pruned in plan.prune:
        if pruned != name:
            item.pop(pruned, None)


def test_the_quarter_under_way_and_the_tier_it_earns_for_the_next() -> None:
    program = fixed_program()
    item: dict[str, Any] = {}
    # Q3: 40 triple batches (1,200 points: Platinum through Q4); Q4: 19 more triples (570).
    for day in range(40):
        at = f"2026-09-{1 + day % 30:02d}T12:00:00-04:00"
        credit(item, program, at, datetime(2026, 9, 30, 20, tzinfo=UTC))
    for day in range(19):
        credit(
            item,
            program,
            f"2026-12-{1 + day:02d}T12:00:00-05:00",
            datetime(2026, 12, 20, tzinfo=UTC),
        )
    # The last evening of the year, local time: 23:30 in New York is 04:30 UTC on Jan 1.
    now = datetime(2027, 1, 1, 4, 30, tzinfo=UTC)
    credit(item, program, "2026-12-31T23:20:00-05:00", now)
    view = member_view(item, now, program).model_dump(by_alias=True, mode="json")
    assert view["tier"] == "platinum", "last quarter's 1,200 points hold through this one"
    assert view["windowPoints"] == 1200
    assert view["period"] == {
        "period": "2026-Q4",
        "startsOn": "2026-10-01",
        "endsOn": "2026-12-31",
        "points": 600,
        "nextPeriodTier": "gold",
        "pointsToNextPeriodTier": 400,
        "previousPoints": 1200,
    }

    # An hour later it is January 1 in New York: a new quarter. Q4's 600 points now set the
    # tier (Gold); the quarter under way has earned nothing yet.
    now = datetime(2027, 1, 1, 5, 30, tzinfo=UTC)
    view = member_view(item, now, program).model_dump(by_alias=True, mode="json")
    assert view["tier"] == "gold" and view["windowPoints"] == 600
    assert view["period"] == {
        "period": "2027-Q1",
        "startsOn": "2027-01-01",
        "endsOn": "2027-03-31",
        "points": 0,
        "nextPeriodTier": None,
        "pointsToNextPeriodTier": 200,
        "previousPoints": 600,
    }
    # A first order of the year, and a late one of New Year's Eve (local): each counts in its
    # own quarter, by the completion's local day.
    credit(item, program, "2027-01-01T00:10:00-05:00", now, batch=1)
    credit(item, program, "2026-12-31T23:50:00-05:00", now, batch=1)
    view = member_view(item, now, program).model_dump(by_alias=True, mode="json")
    assert (view["period"]["points"], view["period"]["previousPoints"]) == (10, 610)
    assert view["period"]["pointsToNextPeriodTier"] == 190
    # Once the quarter's points reach Platinum, the next quarter's tier says so, and the
    # current tier follows at once (upgrades are immediate).
    for day in range(33):
        credit(item, program, f"2027-02-{1 + day % 28:02d}T12:00:00-05:00", now)
    view = member_view(item, datetime(2027, 3, 31, 12, tzinfo=UTC), program).model_dump(
        by_alias=True, mode="json"
    )
    assert view["period"]["points"] == 1000 and view["period"]["nextPeriodTier"] == "platinum"
    assert view["tier"] == "platinum"


def test_rolling_programs_show_no_period() -> None:
    view = member_view({}, datetime(2026, 12, 31, 12, tzinfo=UTC), load_program("cart-star"))
    assert view.period is None
