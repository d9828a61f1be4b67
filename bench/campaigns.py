"""Benchmark: what the birthday gift, the weekly challenge and the referral cost, on DynamoDB
Local, in one run.

Seeds ``MEMBERS`` customers with birthdays spread over the year in four time zones (Auckland,
Berlin, New York, Los Angeles), ``BIRTHDAYS`` of them born on 03-14, then measures, with the read
and write units AWS would bill (``ConsumedCapacity``; transactions replayed on a shadow table,
see ``bench.common``):

- ``ProfileUpdated`` through order_ingestion (a new member; the same profile again);
- the birthday sweep (``shared.logic.birthday.sweep_birthdays``, as ``points_settlement`` runs
  it) at the instants 03-14 begins in each zone: the read units per member paid, and the members
  the index returned (only those whose birthday began: the other members cost nothing);
- the same sweep again at once (a re-run: nothing to pay, nothing written).

DynamoDB Local reports no read units for a Query that returns nothing; AWS bills half a unit
for it (eventually consistent): a sweep asks 8 days of the index (today and ``LOOKBACK_DAYS``),
so 4 read units a run at most on AWS for the empty days, 1,152 a day at a run every 5 minutes.

The weekly challenge: the challenge's own step of an order (``shared.logic.challenges.count_order``,
after the credit, which is unchanged), for the 1st, 2nd and 3rd (paying) order of a week and a
redelivery. The referral: the code (first request, then a read), ``CustomerSignedUp`` through
order_ingestion, and the settlement run on the day the first orders' lots become available,
against the same run for customers without a referral (the difference is the referral's).

Run: ``python -m bench.campaigns``: writes bench/results/campaigns.json and prints it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import MeasuringClient, dynamodb_local, measured_handlers
from shared import composition
from shared.domain.events import OrderCompleted, ProfileUpdated
from shared.logic.birthday import sweep_birthdays, update_profile
from shared.logic.challenges import count_order
from shared.logic.customers import credit_customer, settle_due
from shared.logic.referrals import referral_code
from shared.programs import load_program
from tests.helpers import FakeContext, order_completed

PROGRAM = load_program("customer-rewards")
TABLE, SHADOW = "bench-campaigns", "bench-campaigns-shadow"
MEMBERS = 2_000
BIRTHDAYS = 40
ZONES = ("Pacific/Auckland", "Europe/Berlin", "America/New_York", "America/Los_Angeles")
SET_AT = datetime(2026, 6, 1, tzinfo=UTC)
STARTS = (  # 2027-03-14 begins, UTC: Auckland (NZDT), Berlin (CET), New York, Los Angeles (PST)
    datetime(2027, 3, 13, 11, 0, tzinfo=UTC),
    datetime(2027, 3, 13, 23, 0, tzinfo=UTC),
    datetime(2027, 3, 14, 5, 0, tzinfo=UTC),
    datetime(2027, 3, 14, 8, 0, tzinfo=UTC),
)
RESULTS = Path(__file__).resolve().parent / "results" / "campaigns.json"
ORDERS_AT = datetime(2026, 11, 23, 12, tzinfo=UTC)  # a Monday; its lot is available on 8 December
REFERRALS = 20


def _units(measuring: MeasuringClient) -> dict[str, Any]:
    return {
        "read_units": round(measuring.reads, 2),
        "write_units": round(measuring.writes, 2),
        "calls": dict(measuring.calls),
    }


def _order(customer: str, order_id: str, at: datetime) -> OrderCompleted:
    event = order_completed(
        order_id=order_id,
        member_id="shopper-1",
        customer_id=customer,
        completed_at=at.isoformat(),
        time=at.isoformat(),
    )
    event["detail"]["total"] = {"amount": "20.00", "currency": "USD"}
    return OrderCompleted.model_validate(event["detail"])


def _challenge(store: Any, measuring: MeasuringClient) -> dict[str, Any]:
    """The weekly challenge's step of each order of a week (the credit before it not counted)."""
    steps: dict[str, Any] = {}
    week = ORDERS_AT + timedelta(days=7)  # its lots fall due after the referral's runs
    for index, name in enumerate(("first", "second", "third_pays"), start=1):
        event = _order("weekly", f"w-{index}", week)
        with measuring.paused():
            credited = credit_customer(event, week, PROGRAM, store, f"a-{index}")
        measuring.reset()
        outcome = count_order(event, week, PROGRAM, store, credited.lot)
        steps[name] = {"outcome": outcome, **_units(measuring)}
    measuring.reset()
    outcome = count_order(_order("weekly", "w-3", week), week, PROGRAM, store, None)
    steps["redelivery"] = {"outcome": outcome, **_units(measuring)}
    return steps


def _signup(customer: str, code: str) -> dict[str, Any]:
    return {
        "detail-type": "CustomerSignedUp",
        "source": "signup.service",
        "time": ORDERS_AT.isoformat(),
        "detail": {
            "customerId": customer,
            "referralCode": code,
            "signedUpAt": "2026-11-20T10:00:00Z",
        },
    }


def _referral(store: Any, measuring: MeasuringClient, ingest: Any) -> dict[str, Any]:
    measuring.reset()
    code = referral_code("r-0", ORDERS_AT, PROGRAM, store).code
    first_request = _units(measuring)
    measuring.reset()
    referral_code("r-0", ORDERS_AT, PROGRAM, store)
    again = _units(measuring)
    codes = [code]
    with measuring.paused():
        codes += [
            referral_code(f"r-{i}", ORDERS_AT, PROGRAM, store).code for i in range(1, REFERRALS)
        ]
    measuring.reset()
    for index in range(REFERRALS):
        ingest(_signup(f"c-{index}", codes[index]), FakeContext())
    signups = {
        k: v / REFERRALS
        for k, v in (("read_units", measuring.reads), ("write_units", measuring.writes))
    }
    baseline_day = datetime(2026, 11, 22, 12, tzinfo=UTC)  # available on 7 December
    with measuring.paused():
        for index in range(REFERRALS):
            credit_customer(
                _order(f"c-{index}", f"c-{index}-1", ORDERS_AT), ORDERS_AT, PROGRAM, store, "a"
            )
            credit_customer(
                _order(f"b-{index}", f"b-{index}-1", baseline_day),
                baseline_day,
                PROGRAM,
                store,
                "a",
            )
    measuring.reset()
    plain = settle_due(datetime(2026, 12, 7, 0, 5, tzinfo=UTC), PROGRAM, store)
    plain_units = _units(measuring)
    measuring.reset()
    paid = settle_due(datetime(2026, 12, 8, 0, 5, tzinfo=UTC), PROGRAM, store)
    paid_units = _units(measuring)
    return {
        "code_first_request": first_request,
        "code_again": again,
        "signup_per_customer": signups,
        "settlement_without_referrals": {"members": plain.members_settled, **plain_units},
        "settlement_with_referrals": {"referrals_paid": paid.referrals_paid, **paid_units},
        "per_referral_reward": {
            "read_units": round(
                (paid_units["read_units"] - plain_units["read_units"]) / REFERRALS, 2
            ),
            "write_units": round(
                (paid_units["write_units"] - plain_units["write_units"]) / REFERRALS, 2
            ),
        },
    }


def _profile(member: str, birthday: str, zone: str) -> dict[str, Any]:
    return {
        "detail-type": "ProfileUpdated",
        "source": "profiles.service",
        "time": SET_AT.isoformat(),
        "detail": {
            "programId": PROGRAM.id,
            "memberId": member,
            "birthday": birthday,
            "timeZone": zone,
            "locale": "en",
            "occurredAt": SET_AT.isoformat(),
        },
    }


def _birthday(index: int) -> str:
    """03-14 for the first ``BIRTHDAYS`` members, else a day spread over the year (never 03-13
    to 03-15, so only the 03-14 members are due in the window measured)."""
    if index < BIRTHDAYS:
        return "03-14"
    month = 1 + index % 12
    day = 1 + index % 28
    if month == 3 and 12 <= day <= 16:
        day = 20
    return f"{month:02d}-{day:02d}"


def run() -> dict[str, Any]:
    with dynamodb_local(TABLE, SHADOW) as bare:
        apps, _repo, measuring = measured_handlers(
            bare, ["order_ingestion"], TABLE, SHADOW, immediate=True
        )
        ingest = apps["order_ingestion"].ingress.handle
        store = composition.customer_repository()
        measuring.reset()
        ingest(_profile("m-0", _birthday(0), ZONES[0]), FakeContext())
        new_profile = {"read_units": measuring.reads, "write_units": measuring.writes}
        measuring.reset()
        ingest(_profile("m-0", _birthday(0), ZONES[0]), FakeContext())
        repeated = {"read_units": measuring.reads, "write_units": measuring.writes}
        with measuring.paused():
            for index in range(1, MEMBERS):
                event = ProfileUpdated.model_validate(
                    _profile(f"m-{index}", _birthday(index), ZONES[index % 4])["detail"]
                )
                update_profile(event, SET_AT, [PROGRAM], store)
            # The schedule runs every 5 minutes: the days before were swept in their time.
            sweep_birthdays(datetime(2027, 3, 12, 12, tzinfo=UTC), PROGRAM, store)
        sweeps: list[dict[str, Any]] = []
        paid = 0
        reads = writes = 0.0
        for start in STARTS:
            measuring.reset()
            result = sweep_birthdays(start, PROGRAM, store)
            sweeps.append(
                {
                    "at": start.isoformat(),
                    "paid": result.paid,
                    "refused": result.refused,
                    "read_units": measuring.reads,
                    "write_units": measuring.writes,
                    "calls": dict(measuring.calls),
                }
            )
            paid += result.paid
            reads += measuring.reads
            writes += measuring.writes
        challenge = _challenge(store, measuring)
        referral = _referral(store, measuring, ingest)
        measuring.reset()
        again = sweep_birthdays(STARTS[-1], PROGRAM, store)
        rerun = {
            "paid": again.paid,
            "refused": again.refused,
            "read_units": measuring.reads,
            "write_units": measuring.writes,
        }
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "members": MEMBERS,
        "born_on_03_14": BIRTHDAYS,
        "profile_updated_new_member": new_profile,
        "profile_updated_again": repeated,
        "sweeps": sweeps,
        "paid": paid,
        "read_units_per_member_paid": round(reads / paid, 3) if paid else None,
        "write_units_per_member_paid": round(writes / paid, 3) if paid else None,
        "rerun_same_day": rerun,
        "weekly_challenge_step": challenge,
        "referral": referral,
    }


def main() -> None:
    results = run()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
