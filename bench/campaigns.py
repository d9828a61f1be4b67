"""Benchmark: what the birthday gift costs, on DynamoDB Local, in one run.

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

Run: ``python -m bench.campaigns``: writes bench/results/campaigns.json and prints it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import dynamodb_local, measured_handlers
from shared import composition
from shared.domain.events import ProfileUpdated
from shared.logic.birthday import sweep_birthdays, update_profile
from shared.programs import load_program
from tests.helpers import FakeContext

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
    }


def main() -> None:
    results = run()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
