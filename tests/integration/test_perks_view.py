"""The member's perks on DynamoDB Local: one strongly consistent Query of one key range (the
member item and the quota items of the periods not yet ended), 1 read unit, at month, quarter
and daylight-saving boundaries of the program's time zone; never a past period's item, and not
the quota items written under the old keys (docs/perks.md, "Quota keys")."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from shared.dal.capacity import CapacityMeter
from shared.dal.perks import PerkRepository
from shared.domain.keys import (
    LEGACY_QUOTA_SK_PREFIX,
    MEMBER_SK,
    member_and_quotas_range,
    member_pk,
    quota_sk,
)
from shared.domain.perks import RedemptionRequest
from shared.domain.program import Program
from shared.domain.timeutil import local_day
from shared.logic.perks import cancel, perks_view, redeem
from shared.programs import load_program
from tests.integration.test_perks_helpers import PROGRAM, seed_member

NEW_YORK = Program.model_validate(
    {**load_program(PROGRAM).model_dump(by_alias=True), "timeZone": "America/New_York"}
)
"""The shop's program in New York: daylight saving time from 2026-03-08 (UTC-4, not -5)."""
BOOKED = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)
LAST_EVENING_OF_Q1 = datetime(2026, 4, 1, 3, 30, tzinfo=UTC)
"""2026-03-31 23:30 in New York (EDT), still the first quarter and March."""
FIRST_HOUR_OF_Q2 = datetime(2026, 4, 1, 4, 30, tzinfo=UTC)
"""2026-04-01 00:30 in New York (EDT); at standard time's UTC-5 it would still be March 31."""

_counter = itertools.count()


def entropy(size: int) -> bytes:
    """Deterministic, and different in every byte position a code or id reads."""
    return (next(_counter) * 0x0101010101010101_01010101).to_bytes(12, "big")[-size:]


def request(**body: Any) -> RedemptionRequest:
    return RedemptionRequest.model_validate(body)


def quotas(view: Any) -> dict[str, dict[str, Any]]:
    return {
        perk.perk_id: perk.quota.model_dump(mode="json", by_alias=True)
        for perk in view.perks
        if perk.quota is not None
    }


def test_the_perks_are_one_query_of_the_current_periods_across_quarter_month_and_dst(
    table_name: str, ddb_client: Any
) -> None:
    meter = CapacityMeter()
    repo = PerkRepository(table_name, ddb_client, meter=meter)
    seed_member(ddb_client, table_name, "ann", tier="diamond")

    def redeemed(key: str, now: datetime, **body: Any) -> str:
        result = redeem("ann", key, request(**body), now, NEW_YORK, repo, entropy)
        assert result.status == 201 and result.redemption is not None, result.body
        return result.redemption.redemption_id

    # Past periods: a care day of 2025-Q4, a code of February.
    redeemed(
        "q4",
        datetime(2025, 12, 20, 15, tzinfo=UTC),
        perkId="care_days",
        careType="child",
        date="2025-12-22",
        unit="day",
    )
    redeemed("feb", datetime(2026, 2, 10, 15, tzinfo=UTC), perkId="car_maintenance")
    # The first quarter and March, and a care day booked ahead in the second quarter.
    redeemed("q1", BOOKED, perkId="care_days", careType="child", date="2026-03-31", unit="day")
    redeemed("mar", BOOKED, perkId="car_maintenance")
    ahead = redeemed(
        "q2", BOOKED, perkId="care_days", careType="child", date="2026-04-02", unit="day"
    )
    # A counter under the old keys (as written before): not read.
    ddb_client.put_item(
        TableName=table_name,
        Item={
            "pk": {"S": member_pk(PROGRAM, "ann")},
            "sk": {"S": f"{LEGACY_QUOTA_SK_PREFIX}car_maintenance#2026-03"},
            "used": {"N": "5"},
        },
    )

    q1_end, q2_end = date(2026, 4, 1), date(2026, 7, 1)
    current = {
        MEMBER_SK,
        quota_sk("care_days", "2026-Q1", q1_end),
        quota_sk("car_maintenance", "2026-03", q1_end),
        quota_sk("care_days", "2026-Q2", q2_end),
    }
    evening = local_day(LAST_EVENING_OF_Q1, NEW_YORK.zone)
    assert evening == date(2026, 3, 31)
    assert set(repo.member_and_quotas(PROGRAM, "ann", *member_and_quotas_range(evening))) == current

    meter.reset()
    view = perks_view("ann", LAST_EVENING_OF_Q1, NEW_YORK, repo)
    assert meter.calls == 1 and meter.read_units <= 1
    assert quotas(view) == {
        "care_days": {
            "limit": 2,
            "used": 1,
            "left": 1,
            "period": "2026-Q1",
            "resetsOn": "2026-04-01",
        },
        "car_maintenance": {
            "limit": 1,
            "used": 1,
            "left": 0,
            "period": "2026-03",
            "resetsOn": "2026-04-01",
        },
    }

    midnight = local_day(FIRST_HOUR_OF_Q2, NEW_YORK.zone)
    assert midnight == date(2026, 4, 1), "EDT, not standard time"
    assert set(repo.member_and_quotas(PROGRAM, "ann", *member_and_quotas_range(midnight))) == {
        MEMBER_SK,
        quota_sk("care_days", "2026-Q2", q2_end),
    }
    meter.reset()
    view = perks_view("ann", FIRST_HOUR_OF_Q2, NEW_YORK, repo)
    assert meter.calls == 1 and meter.read_units <= 1
    assert quotas(view)["care_days"] == {
        "limit": 2,
        "used": 1,
        "left": 1,
        "period": "2026-Q2",
        "resetsOn": "2026-07-01",
    }
    assert quotas(view)["car_maintenance"]["used"] == 0
    assert quotas(view)["car_maintenance"]["period"] == "2026-04"

    # Cancelling the date booked ahead gives the second quarter's day back.
    cancel("ann", ahead, FIRST_HOUR_OF_Q2, NEW_YORK, repo)
    assert quotas(perks_view("ann", FIRST_HOUR_OF_Q2, NEW_YORK, repo))["care_days"]["used"] == 0


# -- quota items under the old keys ---------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UTC_PROGRAM = load_program(PROGRAM)


def as_written_before(client: Any, table: str, member_id: str, redemption_id: str) -> str:
    """Put a redemption's quota item back under its old key, as the previous version wrote
    it (``QUOTA#{perkId}#{period}``, the redemption's ``quotaSk`` pointing at it)."""
    pk = {"S": member_pk(PROGRAM, member_id)}
    redemption = client.get_item(
        TableName=table, Key={"pk": pk, "sk": {"S": f"REDEMPTION#{redemption_id}"}}
    )["Item"]
    new_key = redemption["quotaSk"]["S"]
    quota = client.get_item(TableName=table, Key={"pk": pk, "sk": {"S": new_key}})["Item"]
    old_key = f"{LEGACY_QUOTA_SK_PREFIX}{quota['perkId']['S']}#{quota['period']['S']}"
    client.put_item(TableName=table, Item={**quota, "sk": {"S": old_key}})
    client.delete_item(TableName=table, Key={"pk": pk, "sk": {"S": new_key}})
    client.update_item(
        TableName=table,
        Key={"pk": pk, "sk": {"S": f"REDEMPTION#{redemption_id}"}},
        UpdateExpression="SET quotaSk = :old",
        ExpressionAttributeValues={":old": {"S": old_key}},
    )
    return old_key


def test_old_quota_items_are_moved_once_and_their_bookings_still_cancel(
    table_name: str, ddb_client: Any
) -> None:
    repo = PerkRepository(table_name, ddb_client, meter=CapacityMeter())
    seed_member(ddb_client, table_name, "ann", tier="diamond")
    seed_member(ddb_client, table_name, "bob", tier="diamond")

    def redeemed(member: str, key: str, **body: Any) -> str:
        result = redeem(member, key, request(**body), NOW, UTC_PROGRAM, repo, entropy)
        assert result.status == 201 and result.redemption is not None, result.body
        return result.redemption.redemption_id

    booking = redeemed(
        "ann", "b", perkId="care_days", careType="child", date="2026-12-13", unit="day"
    )
    code = redeemed("ann", "c", perkId="car_maintenance")
    bobs = redeemed("bob", "b", perkId="care_days", careType="child", date="2026-12-13", unit="day")
    for member, redemption_id in (("ann", booking), ("ann", code), ("bob", bobs)):
        as_written_before(ddb_client, table_name, member, redemption_id)
    # Bob books the same date again under the new keys (between the deploy and the move).
    redeemed("bob", "again", perkId="care_days", careType="child", date="2026-12-13", unit="day")

    # Until the move, the old items are not read.
    assert quotas(perks_view("ann", NOW, UTC_PROGRAM, repo))["care_days"]["used"] == 0

    outcome = repo.move_legacy_quotas()
    ann_pk = member_pk(PROGRAM, "ann")
    assert sorted(outcome.moved) == [
        f"{ann_pk} {LEGACY_QUOTA_SK_PREFIX}car_maintenance#2026-11",
        f"{ann_pk} {LEGACY_QUOTA_SK_PREFIX}care_days#2026-Q4",
    ]
    assert outcome.conflicts == [
        f"{member_pk(PROGRAM, 'bob')} {LEGACY_QUOTA_SK_PREFIX}care_days#2026-Q4"
    ], "a date booked again since is left in place, and reported"
    ann = quotas(perks_view("ann", NOW, UTC_PROGRAM, repo))
    assert (ann["care_days"]["used"], ann["car_maintenance"]["used"]) == (1, 1)
    again = repo.move_legacy_quotas()
    assert (again.moved, len(again.conflicts)) == ([], 1), "a second run moves nothing"

    # The booking made under the old keys cancels against its period's new item.
    cancelled = cancel("ann", booking, NOW, UTC_PROGRAM, repo)
    assert cancelled.status.value == "cancelled"
    assert quotas(perks_view("ann", NOW, UTC_PROGRAM, repo))["care_days"]["used"] == 0
