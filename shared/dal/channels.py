"""Where the notifier's messages go: SNS (push) and SES (e-mail) on AWS; a JSON-lines file on
the local stack and in tests (``.local/notifications.jsonl``), never AWS.

A channel is handed ids and words, never an address: the push topic's subscriber (the app's
push gateway) finds the member's devices by ``memberId``; an e-mail goes to the member's relay
address on ``NOTIFICATION_EMAIL_DOMAIN`` (a pseudonym, ``relay_mailbox``), which the company's
mail relay maps to the real one (docs/notifications.md).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.domain.notifications import relay_mailbox
from shared.logic.notifications import Delivery


def _line(delivery: Delivery) -> dict[str, Any]:
    """A message as the log keeps it: the member's id and the words, nothing personal else."""
    return {
        "at": datetime.now(UTC).isoformat(),
        "eventId": delivery.event_id,
        "programId": delivery.program_id,
        "memberId": delivery.member_id,
        "category": delivery.category,
        "channel": delivery.channel,
        "locale": delivery.message.locale,
        "title": delivery.message.title,
        "text": delivery.message.text,
    }


class FileSender:
    """Appends each message as one JSON line (the local stand-in for SNS and SES)."""

    channels: tuple[str, ...] = ("push", "email")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> None:
        text = json.dumps(_line(delivery), ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(text)


class AwsSender:
    """Push through the notifications topic, e-mail through SES (when a domain is set)."""

    def __init__(
        self,
        topic_arn: str | None,
        email_domain: str | None,
        sns: Any,
        ses: Any,
    ) -> None:
        self.topic_arn = topic_arn
        self.email_domain = email_domain
        self.sns = sns
        self.ses = ses
        self.channels = tuple(
            name
            for name, ready in (
                ("push", bool(topic_arn and sns)),
                ("email", bool(email_domain and ses)),
            )
            if ready
        )

    def send(self, delivery: Delivery) -> None:
        message = delivery.message
        if delivery.channel == "push":
            assert self.sns is not None and self.topic_arn
            body = {
                "memberId": delivery.member_id,
                "programId": delivery.program_id,
                "eventId": delivery.event_id,
                "title": message.title,
                "text": message.text,
                "locale": message.locale,
            }
            self.sns.publish(
                TopicArn=self.topic_arn,
                Message=json.dumps(body, ensure_ascii=False),
                MessageAttributes={
                    "memberId": {"DataType": "String", "StringValue": delivery.member_id},
                    "programId": {"DataType": "String", "StringValue": delivery.program_id},
                    "category": {"DataType": "String", "StringValue": delivery.category},
                },
            )
            return
        assert self.ses is not None and self.email_domain
        mailbox = relay_mailbox(delivery.program_id, delivery.member_id)
        self.ses.send_email(
            FromEmailAddress=f"notifications@{self.email_domain}",
            Destination={"ToAddresses": [f"{mailbox}@{self.email_domain}"]},
            Content={
                "Simple": {
                    "Subject": {"Data": message.title, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                }
            },
        )
