"""The notifier on DynamoDB Local: ``GET``/``PUT /v1/me/preferences`` (a round trip, a 422
naming each bad field), messages in the member's language, at most 3 marketing messages a
member and week (also under 8 concurrent deliveries), nothing marketing to a member who opted
out or in their quiet hours (transactional messages go anyway), one message per event however
often it is delivered, and the local JSON-lines log."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from shared import composition
from shared.dal.channels import FileSender
from shared.dal.notifications import NotificationRepository
from shared.domain.keys import member_pk, note_sk, note_week_sk
from shared.domain.notifications import Preferences
from shared.logic.notifications import Delivery, Outcome, notify
from shared.programs import load_program
from tests.helpers import FakeContext, load_function, sqs_event
from tests.integration.test_perks_helpers import call, http, seed_member

PROGRAM = load_program("cart-star")
# Friday 2026-12-04 12:00 UTC: 13:00 in Berlin; the ISO week 2026-W49.
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TRIALS = int(os.environ.get("NOTIFY_RACE_TRIALS", "5"))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "notifications.jsonl"


@pytest.fixture
def notifier(table_name: str, log: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("LOYALTY_NOTIFICATIONS_FILE", str(log))
    composition.reset()
    yield load_function("notifier")
    composition.reset()


def lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def preferences(app: ModuleType, member: str, body: Any = None) -> tuple[int, Any]:
    method = "GET" if body is None else "PUT"
    status, answer, _ = call(app, http(method, "/v1/me/preferences", sub=member, body=body))
    return status, answer


def event(detail_type: str, event_id: str, member: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"eb-{event_id}",
        "detail-type": detail_type,
        "source": "loyalty",
        "time": NOW.isoformat(),
        "detail": {"eventId": event_id, "memberId": member, "programId": PROGRAM.id, **detail},
    }


def deliver(app: ModuleType, *events: dict[str, Any], at: datetime = NOW) -> dict[str, Any]:
    response: dict[str, Any] = app.lambda_handler(
        sqs_event(*events, sent_ms=int(at.timestamp() * 1000)), FakeContext()
    )
    return response


def note(table: str, member: str, event_id: str) -> dict[str, Any]:
    item = (
        boto3.resource("dynamodb")
        .Table(table)
        .get_item(Key={"pk": member_pk(PROGRAM.id, member), "sk": note_sk(event_id)})
    )
    return dict(item.get("Item") or {})


def campaign(event_id: str, member: str) -> dict[str, Any]:
    return event("CampaignRewarded", event_id, member, campaignId="eco", points=50)


def test_preferences_round_trip(notifier: ModuleType, ddb_client: Any, table_name: str) -> None:
    status, body = preferences(notifier, "s-1")
    assert status == 200
    assert body == {
        "channels": {"push": True, "email": True},
        "quietHours": None,
        "locale": None,
        "marketingOptOut": False,
        "timeZone": "UTC",
        "updatedAt": None,
    }
    seed_member(ddb_client, table_name, "s-1", timeZone="Europe/Berlin")
    chosen = {
        "channels": {"push": False, "email": True},
        "quietHours": {"start": "22:00", "end": "07:30"},
        "locale": "ru",
        "marketingOptOut": True,
    }
    status, body = preferences(notifier, "s-1", chosen)
    assert status == 200, body
    assert {key: body[key] for key in chosen} == chosen
    assert body["timeZone"] == "Europe/Berlin" and body["updatedAt"].startswith("2026-11-23")
    assert preferences(notifier, "s-1") == (200, body)
    # A PUT replaces the whole: a field left out takes its default.
    status, body = preferences(notifier, "s-1", {"locale": "de"})
    assert (body["channels"], body["quietHours"], body["locale"]) == (
        {"push": True, "email": True},
        None,
        "de",
    )
    assert preferences(notifier, "s-2")[1]["locale"] is None  # another member's are theirs


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"push": "yes"}}, "channels.push"),
        ({"channels": {"sms": True}}, "channels.sms"),
        ({"quietHours": {"start": "25:00", "end": "07:00"}}, "quietHours.start"),
        ({"quietHours": {"start": "22:00", "end": "7:00"}}, "quietHours.end"),
        ({"quietHours": {"start": "22:00"}}, "quietHours.end"),
        ({"quietHours": {"start": "22:00", "end": "22:00"}}, "quietHours"),
        ({"locale": "fr"}, "locale"),
        ({"marketingOptOut": 1}, "marketingOptOut"),
        ({"timeZone": "Europe/Berlin"}, "timeZone"),
    ],
)
def test_a_bad_field_is_a_422_naming_it(notifier: ModuleType, body: Any, field: str) -> None:
    status, answer = preferences(notifier, "s-1", body)
    assert status == 422, answer
    assert answer["error"]["field"] == field, answer
    assert preferences(notifier, "s-1")[1]["updatedAt"] is None  # nothing saved


def test_a_body_that_is_not_an_object_is_a_400(notifier: ModuleType) -> None:
    assert preferences(notifier, "s-1", [{"locale": "de"}])[0] == 400
    assert preferences(notifier, "s-1", "{")[0] == 400


def test_a_tier_change_in_german_on_both_channels(
    notifier: ModuleType, table_name: str, log: Path
) -> None:
    assert preferences(notifier, "s-1", {"locale": "de"})[0] == 200
    tier = event("MemberTierChanged", "t-1", "s-1", **{"from": "gold", "to": "platinum"})
    assert deliver(notifier, tier) == {"batchItemFailures": []}
    written = lines(log)
    assert [line["channel"] for line in written] == ["push", "email"]
    for line in written:
        assert line["text"] == "Du bist jetzt Platinum (vorher: Gold)."
        assert line["title"] == "Deine Stufe hat sich geändert" and line["locale"] == "de"
        # The member's id and the words; no address, nothing else about the member.
        assert set(line) == {
            "at",
            "eventId",
            "programId",
            "memberId",
            "category",
            "channel",
            "locale",
            "title",
            "text",
        }
        assert (line["memberId"], line["category"]) == ("s-1", "transactional")
    record = note(table_name, "s-1", "t-1")
    assert (record["state"], record["done"]) == ("sent", ["push", "email"])


def test_the_fourth_marketing_message_of_a_week_is_refused_with_its_reason(
    notifier: ModuleType, table_name: str, log: Path
) -> None:
    assert preferences(notifier, "s-1", {"channels": {"push": True, "email": False}})[0] == 200
    for number in range(1, 5):
        deliver(notifier, campaign(f"c-{number}", "s-1"), at=NOW + timedelta(hours=number))
    assert [line["eventId"] for line in lines(log)] == ["c-1", "c-2", "c-3"]
    refused = note(table_name, "s-1", "c-4")
    assert (refused["state"], refused["reason"]) == ("skipped", "weekly_cap")
    # Transactional messages are not counted; next week (Monday) the member hears again.
    deliver(notifier, event("PerkRedeemed", "p-1", "s-1", perkId="fuel_cashback"))
    deliver(notifier, campaign("c-5", "s-1"), at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    assert [line["eventId"] for line in lines(log)][3:] == ["p-1", "c-5"]


def test_concurrent_marketing_deliveries_never_exceed_three(
    notifier: ModuleType, table_name: str, log: Path
) -> None:
    """8 marketing events of one member delivered at once: 3 sent, 5 refused, every time."""
    repository = NotificationRepository(table_name, boto3.client("dynamodb"))
    sender = FileSender(log)
    table = boto3.resource("dynamodb").Table(table_name)
    for trial in range(TRIALS):
        member = f"race-{trial}"

        def one(number: int, member: str = member) -> Outcome:
            detail = campaign(f"{member}-{number}", member)["detail"]
            result = notify(
                "CampaignRewarded",
                detail,
                NOW,
                lambda: datetime.now(UTC),
                PROGRAM,
                repository,
                sender,
            )
            return result.outcome

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(one, range(8)))
        assert sorted(outcomes) == sorted([Outcome.SENT] * 3 + [Outcome.SKIPPED] * 5), outcomes
        sent = [line for line in lines(log) if line["memberId"] == member]
        assert len(sent) == 3 * 2  # push and e-mail each
        counter = table.get_item(
            Key={"pk": member_pk(PROGRAM.id, member), "sk": note_week_sk("2026-W49")}
        )["Item"]
        assert counter["sent"] == 3


def test_an_opted_out_member_gets_no_marketing_but_transactional_messages(
    notifier: ModuleType, table_name: str, log: Path
) -> None:
    assert preferences(notifier, "s-1", {"marketingOptOut": True})[0] == 200
    deliver(notifier, campaign("c-1", "s-1"))
    deliver(notifier, event("MemberTierAtRisk", "r-1", "s-1", tier="gold", dropsOn="2027-01-01"))
    assert lines(log) == []
    assert note(table_name, "s-1", "c-1")["reason"] == "opted_out"
    assert note(table_name, "s-1", "r-1")["reason"] == "opted_out"
    deliver(notifier, event("PointsExpiring", "x-1", "s-1", points=120, expiresOn="2027-01-31"))
    assert {line["eventId"] for line in lines(log)} == {"x-1"}


def test_quiet_hours_skip_marketing_on_the_members_clock_and_not_transactional(
    notifier: ModuleType, ddb_client: Any, table_name: str, log: Path
) -> None:
    seed_member(ddb_client, table_name, "s-1", timeZone="Europe/Berlin")
    quiet = {"quietHours": {"start": "22:00", "end": "07:00"}}
    assert preferences(notifier, "s-1", quiet)[0] == 200
    late = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    deliver(notifier, campaign("c-1", "s-1"), at=late)
    deliver(notifier, event("PrizeWon", "w-1", "s-1", month="2026-11", prize="$100"), at=late)
    assert {line["eventId"] for line in lines(log)} == {"w-1"}
    assert note(table_name, "s-1", "c-1")["reason"] == "quiet_hours"
    # 20:30 UTC is 21:30 in Berlin: before the window, the message goes.
    deliver(notifier, campaign("c-2", "s-1"), at=datetime(2026, 12, 4, 20, 30, tzinfo=UTC))
    assert {line["eventId"] for line in lines(log)} == {"w-1", "c-2"}


def test_a_redelivered_event_sends_nothing_more(
    notifier: ModuleType, table_name: str, log: Path
) -> None:
    tier = event("MemberTierChanged", "t-1", "s-1", **{"from": None, "to": "gold"})
    for _ in range(3):
        assert deliver(notifier, tier) == {"batchItemFailures": []}
    assert deliver(notifier, tier, tier) == {"batchItemFailures": []}  # twice in one batch
    assert len(lines(log)) == 2  # push and e-mail, once
    # A marketing event redelivered is counted once against the week too.
    for _ in range(2):
        deliver(notifier, campaign("c-1", "s-1"))
    counter = (
        boto3.resource("dynamodb")
        .Table(table_name)
        .get_item(Key={"pk": member_pk(PROGRAM.id, "s-1"), "sk": note_week_sk("2026-W49")})
    )
    assert counter["Item"]["sent"] == 1


def test_a_failed_channel_is_retried_alone(
    notifier: ModuleType, table_name: str, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E-mail fails after push went out: the delivery fails (the queue retries it), and the
    retry sends the e-mail only."""
    sender = composition.notification_sender()
    original = sender.send

    def broken(delivery: Delivery) -> None:
        if delivery.channel == "email":
            raise ConnectionError("SES is down")
        original(delivery)

    monkeypatch.setattr(sender, "send", broken)
    tier = event("MemberTierChanged", "t-1", "s-1", **{"from": None, "to": "gold"})
    assert deliver(notifier, tier) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert note(table_name, "s-1", "t-1")["state"] == "failed"
    monkeypatch.setattr(sender, "send", original)
    assert deliver(notifier, tier) == {"batchItemFailures": []}
    assert [line["channel"] for line in lines(log)] == ["push", "email"]
    assert note(table_name, "s-1", "t-1")["state"] == "sent"


def test_events_members_do_not_hear_about_are_ignored(notifier: ModuleType, log: Path) -> None:
    deliver(notifier, event("PointsEarned", "e-1", "s-1", points=10))
    deliver(notifier, {**event("PrizeDrawOpened", "d-1", "s-1"), "detail": {"eventId": "d-1"}})
    assert lines(log) == []


def test_write_units_per_message(notifier: ModuleType, ddb_client: Any, table_name: str) -> None:
    """What each decision costs on DynamoDB Local (ConsumedCapacity), for docs/notifications.md;
    Local counts a transaction of two items as 2 units where AWS bills 4."""
    repository = NotificationRepository(table_name, boto3.client("dynamodb"))
    seed_member(ddb_client, table_name, "s-9", timeZone="Europe/Berlin")
    repository.save_preferences(PROGRAM.id, "s-9", Preferences(locale="de"))
    sender = FileSender(Path(os.devnull))
    costs: dict[str, tuple[float, float]] = {}

    def measure(name: str, detail_type: str, event_id: str, **detail: Any) -> None:
        repository.meter.reset()
        body = event(detail_type, event_id, "s-9", **detail)["detail"]
        notify(detail_type, body, NOW, lambda: datetime.now(UTC), PROGRAM, repository, sender)
        costs[name] = (repository.meter.read_units, repository.meter.write_units)

    measure("transactional", "PerkRedeemed", "p-1", perkId="x")
    measure("duplicate transactional", "PerkRedeemed", "p-1", perkId="x")
    measure("marketing", "CampaignRewarded", "c-1", campaignId="eco", points=5)
    measure("duplicate", "CampaignRewarded", "c-1", campaignId="eco", points=5)
    for number in (2, 3):
        measure("marketing", "CampaignRewarded", f"c-{number}", campaignId="eco", points=5)
    measure("capped", "CampaignRewarded", "c-4", campaignId="eco", points=5)
    repository.save_preferences(PROGRAM.id, "s-9", Preferences(marketing_opt_out=True))
    measure("skipped", "CampaignRewarded", "c-5", campaignId="eco", points=5)
    print("notification units (read, write):", costs)
    # One strongly consistent read of both items (2 units), then the writes.
    assert costs["transactional"] == (2, 2)  # the record put, then marked sent
    assert costs["marketing"] == (2, 3)  # the transaction (2 on Local), then marked sent
    assert costs["duplicate"] == (2, 0)  # the refused transaction (0 on Local)
    assert costs["capped"] == (2, 1)  # the refused transaction (0 on Local), the record
    assert costs["duplicate transactional"] == (2, 0)  # the refused put (0 on Local)
    assert costs["skipped"] == (2, 1)  # the record
