"""The birthday gift on DynamoDB Local: ``ProfileUpdated`` through order ingestion (validated, the
latest wins, a redelivery changes nothing), and the sweep of ``points_settlement``, which pays 500
points on the member's local birthday, once a year, across time zones, clock changes, the leap day
and the turn of the year, refuses a birthday set or moved fewer than 30 days before it, and lets
the gift expire 30 days later. The sweep reads only the members whose birthday has begun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.audit import audit_members
from shared import composition
from shared.domain.customer_events import customer_events
from shared.domain.keys import reward_sk
from shared.logic.customers import guesses
from shared.logic.ledger import ledger_projection
from shared.programs import load_program
from tests.helpers import FakeContext, http_event, load_function

PROGRAM = load_program("customer-rewards")
SET_LONG_AGO = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield {
        "ingestion": load_function("order_ingestion"),
        "settlement": load_function("points_settlement"),
    }
    composition.reset()


def profile(
    member: str,
    birthday: str | None,
    zone: str | None = None,
    at: datetime = SET_LONG_AGO,
    locale: str | None = "en",
    program: str = PROGRAM.id,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "programId": program,
        "memberId": member,
        "birthday": birthday,
        "occurredAt": at.isoformat(),
    }
    if zone is not None:
        detail["timeZone"] = zone
    if locale is not None:
        detail["locale"] = locale
    return {
        "detail-type": "ProfileUpdated",
        "source": "profiles.service",
        "time": at.isoformat(),
        "detail": detail,
    }


def send(apps: dict[str, ModuleType], event: dict[str, Any]) -> str:
    result = apps["ingestion"].lambda_handler(event, FakeContext())
    return str(result["programs"][0]["outcome"])


def sweep(apps: dict[str, ModuleType], at: str) -> dict[str, Any]:
    schedule = {"detail-type": "Scheduled Event", "time": at}
    run = apps["settlement"].lambda_handler(schedule, FakeContext("points_settlement"))
    return dict(run["programs"][0])


def member(customer: str) -> dict[str, Any]:
    return composition.customer_repository().get_member(PROGRAM.id, customer) or {}


def reward(customer: str, year: int) -> dict[str, Any] | None:
    return composition.customer_repository()._get_item(
        PROGRAM.id, customer, reward_sk("birthday", str(year))
    )


def test_a_profile_is_kept_validated_and_the_latest_wins(apps: dict[str, ModuleType]) -> None:
    assert send(apps, profile("pat", "07-14", "Europe/Berlin", locale="de")) == "profile_updated"
    kept = member("pat")
    assert (kept["birthday"], kept["timeZone"], kept["locale"]) == ("07-14", "Europe/Berlin", "de")
    assert kept["birthdayChangedAt"] == kept["profileAt"] == "2026-06-01T00:00:00.000000+00:00"
    # The next local birthday begins at 2026-07-13T22:00Z (Berlin in summer, UTC+2).
    assert (kept["bdayDay"], kept["bdayAt"]) == (
        f"{PROGRAM.id}#2026-07-13",
        "2026-07-13T22:00:00.000000+00:00",
    )
    # A redelivery, and an older change arriving late, change nothing.
    assert send(apps, profile("pat", "07-14", "Europe/Berlin", locale="de")) == "profile_stale"
    older = profile("pat", "01-02", "Asia/Tokyo", at=datetime(2025, 12, 1, tzinfo=UTC))
    assert send(apps, older) == "profile_stale"
    assert member("pat") == kept
    # A newer change of the zone alone keeps when the birthday was set.
    moved = profile("pat", "07-14", "America/Los_Angeles", at=datetime(2026, 6, 2, tzinfo=UTC))
    assert send(apps, moved) == "profile_updated"
    after = member("pat")
    assert after["timeZone"] == "America/Los_Angeles" and after["locale"] == "en"
    assert after["birthdayChangedAt"] == kept["birthdayChangedAt"]
    assert after["bdayAt"] == "2026-07-14T07:00:00.000000+00:00"
    # Bad input is a 422 naming the field; nothing is written.
    for event, field in (
        (profile("bad", "02-30"), "detail.birthday"),
        (profile("bad", "2-3"), "detail.birthday"),
        (profile("bad", "02-29", "Mars/Olympus_Mons"), "detail.timeZone"),
        (profile("bad", "02-29", "../../etc/passwd"), "detail.timeZone"),
        (profile("bad", "02-29", locale="fr"), "detail.locale"),
        (profile("bad", "02-29", program="no-such-program"), "detail.programId"),
    ):
        response = apps["ingestion"].lambda_handler(http_event(event), FakeContext())
        assert response["statusCode"] == 422, response
        error = json.loads(response["body"])["error"]
        assert error["field"] == field
        if field == "detail.programId":  # both programs that take a profile are named
            assert "cart-star (the shopper's zone only), customer-rewards" in error["message"]
    assert member("bad") == {}
    # 02-29 is a birthday; removing the birthday takes the member out of the index.
    leap = profile("pat", "02-29", "UTC", at=datetime(2026, 6, 3, tzinfo=UTC))
    assert send(apps, leap) == "profile_updated"
    assert member("pat")["bdayAt"] == "2027-02-28T00:00:00.000000+00:00"
    gone = profile("pat", None, "UTC", at=datetime(2026, 6, 4, tzinfo=UTC))
    assert send(apps, gone) == "profile_updated"
    assert not {"birthday", "birthdayChangedAt", "bdayDay", "bdayAt"} & set(member("pat"))


def test_the_gift_is_paid_on_the_members_local_birthday_once(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    """Auckland (UTC+13 in March) and Los Angeles, both born on 03-14: in 2027, 03-14 begins at
    11:00Z on the 13th in Auckland and at 08:00Z on the 14th in Los Angeles (still PST: the clocks
    go forward at 02:00 that day; 03-15 begins at 07:00Z, PDT)."""
    send(apps, profile("kiwi", "03-14", "Pacific/Auckland"))
    send(apps, profile("angel", "03-14", "America/Los_Angeles"))
    send(apps, profile("nobody", "08-01", "UTC"))
    assert sweep(apps, "2027-03-13T10:59:59Z")["birthdayGifts"] == 0
    first = sweep(apps, "2027-03-13T11:00:00Z")
    assert (first["birthdayGifts"], first["birthdayPoints"]) == (1, 500)
    assert member("kiwi")["bal"] == 500 and member("kiwi")["xp20270413"] == 500
    assert "bal" not in member("angel")
    assert sweep(apps, "2027-03-14T07:59:59Z")["birthdayGifts"] == 0
    assert sweep(apps, "2027-03-14T08:00:00Z")["birthdayGifts"] == 1
    angel = member("angel")
    assert angel["bal"] == 500 and angel["checkOn"] == "2027-04-13"
    # Both move to next year; sweeping again, the same day or the next, changes nothing.
    assert angel["bdayAt"] == "2028-03-14T07:00:00.000000+00:00"  # PDT by then (03-12)
    assert member("kiwi")["bdayAt"] == "2028-03-13T11:00:00.000000+00:00"
    before = (member("kiwi"), member("angel"))
    for at in ("2027-03-14T08:05:00Z", "2027-03-14T23:00:00Z", "2027-03-15T12:00:00Z"):
        run = sweep(apps, at)
        assert (run["birthdayGifts"], run["birthdaysRefused"]) == (0, {})
    assert (member("kiwi"), member("angel")) == before
    # The reward: once, with the campaign and the rule version; its ledger entry and event.
    paid = reward("kiwi", 2027)
    assert paid is not None
    assert (paid["campaignId"], paid["points"], paid["ruleVersion"], paid["period"]) == (
        "birthday",
        500,
        PROGRAM.rule_version,
        "2027",
    )
    [(_, _, entry)] = ledger_projection(None, paid)
    assert (entry.kind, entry.points, entry.reason) == ("bonus", 500, "campaign:birthday")
    assert entry.rule_version == PROGRAM.rule_version
    [event] = customer_events(None, paid)
    assert event.detail_type == "CampaignRewarded"
    assert event.detail["occasion"] == "2027" and event.detail["expiresOn"] == "2027-04-13"
    assert (
        audit_members(
            boto3.client("dynamodb"), table_name, [(PROGRAM.id, "kiwi"), (PROGRAM.id, "angel")]
        )
        == []
    )
    # 30 days on, what is left of the gift expires (the schedule's settlement).
    assert sweep(apps, "2027-04-12T23:59:00Z")["pointsExpired"] == 0
    assert sweep(apps, "2027-04-13T00:01:00Z")["pointsExpired"] == 1000
    assert member("kiwi")["bal"] == 0 and "xp20270413" not in member("kiwi")


def test_the_leap_day_and_the_turn_of_the_year(apps: dict[str, ModuleType]) -> None:
    send(apps, profile("leap", "02-29", "UTC"))
    send(apps, profile("eve", "12-31", "UTC"))
    send(apps, profile("tokyo", "01-01", "Asia/Tokyo"))  # begins on 12-31 at 15:00Z
    # The turn of the year: Tokyo's 01-01 of 2027 begins on 2026-12-31 UTC, and counts in 2027.
    assert sweep(apps, "2026-12-31T14:59:00Z")["birthdayGifts"] == 1  # eve's 2026
    assert sweep(apps, "2026-12-31T15:00:00Z")["birthdayGifts"] == 1  # tokyo's 2027
    tokyo = reward("tokyo", 2027)
    assert tokyo is not None and tokyo["period"] == "2027"
    assert reward("eve", 2026) is not None
    assert member("tokyo")["bdayAt"] == "2027-12-31T15:00:00.000000+00:00"
    # 02-29 falls on 02-28 in a year without it, and on 02-29 in a leap year.
    assert sweep(apps, "2027-02-27T23:59:00Z")["birthdayGifts"] == 0
    assert sweep(apps, "2027-02-28T00:00:00Z")["birthdayGifts"] == 1
    assert member("leap")["bdayAt"] == "2028-02-29T00:00:00.000000+00:00"
    assert sweep(apps, "2027-12-31T00:00:00Z")["birthdayGifts"] == 1  # eve's 2027
    assert sweep(apps, "2027-12-31T15:00:00Z")["birthdayGifts"] == 1  # tokyo's 2028
    assert reward("eve", 2027) is not None and reward("tokyo", 2028) is not None
    assert sweep(apps, "2028-02-28T12:00:00Z")["birthdayGifts"] == 0  # 2028 has a 02-29
    assert sweep(apps, "2028-02-29T00:00:00Z")["birthdayGifts"] == 1
    assert reward("leap", 2027) is not None and reward("leap", 2028) is not None
    assert member("leap")["bal"] == 500  # 2027's expired on 2027-03-30


def test_a_birthday_set_or_moved_less_than_30_days_before_pays_nothing_that_year(
    apps: dict[str, ModuleType],
) -> None:
    send(apps, profile("late", "06-20", "UTC", at=datetime(2027, 5, 22, 12, tzinfo=UTC)))  # 29
    send(apps, profile("ontime", "06-20", "UTC", at=datetime(2027, 5, 21, 23, tzinfo=UTC)))  # 30
    run = sweep(apps, "2027-06-20T00:10:00Z")
    assert (run["birthdayGifts"], run["birthdaysRefused"]) == (1, {"changed_too_recently": 1})
    assert "bal" not in member("late") and member("ontime")["bal"] == 500
    assert member("late")["birthdayOutcome"]["verdict"] == "changed_too_recently"
    assert member("late")["bdayAt"] == "2028-06-20T00:00:00.000000+00:00"
    assert sweep(apps, "2028-06-20T00:10:00Z")["birthdayGifts"] == 2  # next year both pay
    # Paid, then moved to a later day of the same year (30 days ahead): nothing more that year.
    send(apps, profile("ontime", "08-01", "UTC", at=datetime(2028, 7, 1, tzinfo=UTC)))
    again = sweep(apps, "2028-08-01T00:10:00Z")
    assert (again["birthdayGifts"], again["birthdaysRefused"]) == (0, {"duplicate": 1})
    assert member("ontime")["bdayAt"] == "2029-08-01T00:00:00.000000+00:00"


def test_the_gift_never_spends_past_its_budget(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    from shared.domain.keys import campaign_budget_key  # noqa: PLC0415

    campaign = next(c for c in PROGRAM.campaigns if c.id == "birthday")
    assert campaign.budget is not None
    pk, sk = campaign_budget_key(PROGRAM.id, "birthday", "2027-09")
    boto3.client("dynamodb").put_item(
        TableName=table_name,
        Item={"pk": {"S": pk}, "sk": {"S": sk}, "spent": {"N": str(campaign.budget.points - 500)}},
    )
    for name in ("b1", "b2"):
        send(apps, profile(name, "09-09", "UTC", at=datetime(2026, 10, 1, tzinfo=UTC)))
    run = sweep(apps, "2027-09-09T01:00:00Z")
    assert (run["birthdayGifts"], run["birthdaysRefused"]) == (1, {"budget_spent": 1})
    assert sweep(apps, "2027-09-09T02:00:00Z")["birthdaysRefused"] == {}


def test_the_gift_keeps_the_members_next_due_day_the_earliest(
    apps: dict[str, ModuleType], table_name: str
) -> None:
    """A member with points that expire later: the gift's expiry becomes their next due day (the
    settlement must find them then), and after it the later day again; spending takes the points
    that expire first (the gift's)."""
    from tests.helpers import order_completed  # noqa: PLC0415

    send(apps, profile("owen", "03-14", "UTC"))
    bought = order_completed(
        order_id="o-owen", customer_id="owen", completed_at="2026-06-01T12:00:00+00:00"
    )
    bought["time"] = "2026-06-01T12:00:00+00:00"
    bought["detail"]["total"] = {"amount": "500.00", "currency": "USD"}  # 1,000 points
    apps["ingestion"].lambda_handler(bought, FakeContext())
    assert sweep(apps, "2027-03-14T00:05:00Z")["birthdayGifts"] == 1
    owen = member("owen")
    # June 2026's points expire on 2027-07-01, announced on 2027-06-01; the gift on 2027-04-13.
    assert (owen["bal"], owen["av202606"], owen["xp20270413"]) == (1500, 1000, 500)
    assert owen["checkOn"] == "2027-04-13"
    # 300 spent: taken from the gift first (it expires first), so 200 of it expire.
    composition.customer_repository().client.update_item(
        TableName=table_name,
        Key={"pk": {"S": f"P#{PROGRAM.id}#M#owen"}, "sk": {"S": "MEMBER"}},
        UpdateExpression="ADD bal :minus, used :spent",
        ExpressionAttributeValues={":minus": {"N": "-300"}, ":spent": {"N": "300"}},
    )
    assert sweep(apps, "2027-04-13T00:05:00Z")["pointsExpired"] == 200
    owen = member("owen")
    assert (owen["bal"], owen["checkOn"], int(owen["used"])) == (1000, "2027-06-01", 0)


def test_overlapping_sweeps_pay_each_birthday_once(apps: dict[str, ModuleType]) -> None:
    """Two runs of the schedule at once (a slow run and the next one): each gift once."""
    import threading  # noqa: PLC0415
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from shared.logic.birthday import sweep_birthdays  # noqa: PLC0415

    names = [f"twin-{index}" for index in range(12)]
    for name in names:
        send(apps, profile(name, "10-10", "UTC"))
    store = composition.customer_repository()
    at = datetime(2026, 10, 10, 0, 5, tzinfo=UTC)
    barrier = threading.Barrier(3)

    def run(_: int) -> tuple[int, dict[str, int]]:
        barrier.wait()
        result = sweep_birthdays(at, PROGRAM, store)
        return result.paid, result.refused

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(run, range(3)))
    assert sum(paid for paid, _ in runs) == len(names), runs
    assert all(member(name)["bal"] == 500 for name in names)
    assert sweep_birthdays(at, PROGRAM, store).paid == 0
