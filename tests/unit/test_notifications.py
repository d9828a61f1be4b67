# ruff: noqa: RUF001 (the Russian messages are Cyrillic on purpose)
"""The notifier's pure rules: the words in each language, quiet hours on the member's clock
(across midnight, across daylight-saving changes), the week of the cap, the language chosen;
and the AWS channels (SNS, SES) through the handler, on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shared import composition
from shared.domain.notifications import (
    NOTIFIED,
    TEMPLATES,
    Preferences,
    in_quiet_hours,
    iso_week,
    locale_of,
    relay_mailbox,
    render,
)
from tests.helpers import FakeContext, load_function, sqs_event

BERLIN = "Europe/Berlin"
NIGHT = Preferences(quiet_start="22:00", quiet_end="07:00")


def test_a_tier_change_reads_in_german_with_the_programs_names() -> None:
    message = render(
        "MemberTierChanged", {"from": "gold", "to": "platinum"}, "de", {"platinum": "Platinum"}
    )
    assert message.title == "Deine Stufe hat sich geändert"
    assert message.text == "Du bist jetzt Platinum (vorher: gold)."
    first = render("MemberTierChanged", {"from": None, "to": "gold"}, "ru", {"gold": "Gold"})
    assert first.text == "Теперь у вас Gold (раньше: нет)."


def test_every_notified_event_has_words_in_every_language() -> None:
    for locale, words in TEMPLATES.items():
        assert set(words) == set(NOTIFIED), locale
        for detail_type in NOTIFIED:  # no field of the event: placeholders read "none"
            assert "{" not in render(detail_type, {}, locale, {}).text


def test_money_reads_as_amount_and_currency() -> None:
    matched = {"amount": "3.00", "currency": "USD"}
    detail = {"points": 300, "causeId": "food-bank", "matched": matched}
    text = render("DonationMade", detail, "en", {"food-bank": "Food bank"}).text
    assert text == "You gave 300 points to Food bank; the company matched 3.00 USD."


@pytest.mark.parametrize(
    ("utc", "quiet"),
    [
        ("2027-01-15T20:59:00+00:00", False),  # 21:59 in Berlin (UTC+1)
        ("2027-01-15T21:00:00+00:00", True),  # 22:00: the window opens
        ("2027-01-15T23:30:00+00:00", True),  # 00:30, past midnight
        ("2027-01-16T05:59:00+00:00", True),  # 06:59
        ("2027-01-16T06:00:00+00:00", False),  # 07:00: closed (the end is excluded)
        ("2027-01-16T11:00:00+00:00", False),  # noon
    ],
)
def test_quiet_hours_cross_midnight_on_the_members_clock(utc: str, quiet: bool) -> None:
    assert in_quiet_hours(NIGHT, datetime.fromisoformat(utc), BERLIN) is quiet


def test_quiet_hours_follow_the_wall_clock_across_daylight_saving() -> None:
    # Summer (UTC+2): 22:00 in Berlin is 20:00 UTC, not 21:00.
    assert in_quiet_hours(NIGHT, datetime(2027, 7, 1, 20, 0, tzinfo=UTC), BERLIN)
    assert not in_quiet_hours(NIGHT, datetime(2027, 7, 1, 19, 59, tzinfo=UTC), BERLIN)
    # Spring forward (2027-03-28, 02:00 -> 03:00): 06:59 local is 04:59 UTC, 07:00 is 05:00.
    assert in_quiet_hours(NIGHT, datetime(2027, 3, 28, 4, 59, tzinfo=UTC), BERLIN)
    assert not in_quiet_hours(NIGHT, datetime(2027, 3, 28, 5, 0, tzinfo=UTC), BERLIN)
    # A window in the skipped hour (02:00-02:30) never holds that night; 03:00 is past it.
    skipped = Preferences(quiet_start="02:00", quiet_end="02:30")
    assert not in_quiet_hours(skipped, datetime(2027, 3, 28, 1, 0, tzinfo=UTC), BERLIN)
    # Fall back (2027-10-31, 03:00 -> 02:00): 02:15 happens twice, both times quiet.
    repeated = Preferences(quiet_start="02:00", quiet_end="03:00")
    assert in_quiet_hours(repeated, datetime(2027, 10, 31, 0, 15, tzinfo=UTC), BERLIN)
    assert in_quiet_hours(repeated, datetime(2027, 10, 31, 1, 15, tzinfo=UTC), BERLIN)
    assert not in_quiet_hours(repeated, datetime(2027, 10, 31, 2, 0, tzinfo=UTC), BERLIN)


def test_no_window_and_a_daytime_window() -> None:
    noon = datetime(2027, 1, 15, 11, 0, tzinfo=UTC)
    assert not in_quiet_hours(Preferences(), noon, BERLIN)
    assert in_quiet_hours(Preferences(quiet_start="12:00", quiet_end="13:00"), noon, BERLIN)
    assert not in_quiet_hours(Preferences(quiet_start="12:00", quiet_end="13:00"), noon, "UTC")


def test_the_week_is_the_members() -> None:
    sunday_night = datetime(2027, 1, 17, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin
    assert iso_week(sunday_night, "UTC") == "2027-W02"
    assert iso_week(sunday_night, BERLIN) == "2027-W03"
    assert iso_week(datetime(2027, 1, 1, 12, tzinfo=UTC), "UTC") == "2026-W53"


def test_the_language_is_the_preference_then_the_profile_then_english() -> None:
    assert locale_of(Preferences(locale="ru"), "de") == "ru"
    assert locale_of(Preferences(), "de") == "de"
    assert locale_of(Preferences(), "fr") == "en"
    assert locale_of(Preferences(), None) == "en"


def test_the_relay_mailbox_is_a_pseudonym() -> None:
    mailbox = relay_mailbox("customer-rewards", "cust+1@example.com")
    assert mailbox.startswith("m-") and len(mailbox) == 26 and "cust" not in mailbox
    assert mailbox != relay_mailbox("cart-star", "cust+1@example.com")


def _tier_changed(event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "MemberTierChanged",
        "source": "loyalty",
        "time": "2026-12-05T12:00:00Z",
        "detail": {
            "eventId": event_id,
            "memberId": "s-1",
            "programId": "cart-star",
            "from": None,
            "to": "gold",
        },
    }


def test_the_aws_channels_publish_to_the_topic_and_mail_the_relay(
    moto_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS the handler publishes the push message to the topic (the member's id as an
    attribute, no address) and e-mails the member's relay address from the domain."""
    monkeypatch.delenv("SAMLITE_STATE_DIR", raising=False)
    monkeypatch.delenv("LOYALTY_NOTIFICATIONS_FILE", raising=False)
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    queue = boto3.client("sqs").create_queue(QueueName="push")["QueueUrl"]
    queue_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    boto3.client("ses").verify_domain_identity(Domain="mail.example.com")
    monkeypatch.setenv("NOTIFICATIONS_TOPIC_ARN", topic)
    monkeypatch.setenv("NOTIFICATION_EMAIL_DOMAIN", "mail.example.com")
    composition.reset()
    notifier = load_function("notifier")
    response = notifier.lambda_handler(sqs_event(_tier_changed("e-1")), FakeContext())
    assert response == {"batchItemFailures": []}
    (received,) = boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(received["Body"])
    pushed = json.loads(envelope["Message"])
    assert pushed["memberId"] == "s-1" and pushed["text"] == "You are now Gold (before: none)."
    assert envelope["MessageAttributes"]["memberId"]["Value"] == "s-1"
    from moto.backends import get_backend  # noqa: PLC0415

    sent = get_backend("ses")["123456789012"]["us-east-1"].sent_messages
    (mail,) = sent
    assert mail.destinations["ToAddresses"] == [
        f"{relay_mailbox('cart-star', 's-1')}@mail.example.com"
    ]
    # Delivered again: nothing more.
    notifier.lambda_handler(sqs_event(_tier_changed("e-1")), FakeContext())
    assert len(get_backend("ses")["123456789012"]["us-east-1"].sent_messages) == 1
