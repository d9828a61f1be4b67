"""Configuration of a function, from its environment: read once, lazily, never at import."""

from __future__ import annotations

import os
from functools import cache

from msgspec import Struct

TABLE_NAME_LENGTH = (3, 255)


class Settings(Struct, frozen=True):
    table_name: str
    event_bus_name: str = "default"
    program_id: str = "cart-star"
    program_ids: tuple[str, ...] | None = None
    """``PROGRAM_IDS`` (comma-separated): the programs the functions serve; None: every program
    shipped in shared/programs/."""
    analytics_stream_name: str | None = None
    """``ANALYTICS_STREAM_NAME``: the Firehose delivery stream of the analytics rows."""
    analytics_dir: str | None = None
    """``LOYALTY_ANALYTICS_DIR``, or ``analytics`` in the local stack's state folder: the local
    stand-in for that stream, a folder of Parquet files (wins over the stream name)."""
    draw_seed_key: str | None = None
    """``DRAW_SEED_KEY_ID``: the KMS key that seals prize-draw seeds until the draw (None, and
    always on the local stack, which has no KMS: seeds are stored as they are)."""
    notifications_file: str | None = None
    """``LOYALTY_NOTIFICATIONS_FILE``, or ``notifications.jsonl`` in the local stack's state
    folder: where the notifier writes its messages instead of SNS and SES (wins over them)."""
    notifications_topic_arn: str | None = None
    """``NOTIFICATIONS_TOPIC_ARN``: the SNS topic of push messages."""
    notification_email_domain: str | None = None
    """``NOTIFICATION_EMAIL_DOMAIN``: the SES domain e-mails are sent from and relayed by
    (empty: no e-mail on AWS)."""


class MissingConfiguration(RuntimeError):
    pass


def _analytics_dir() -> str | None:
    """``LOYALTY_ANALYTICS_DIR``, else ``<state>/analytics`` on the local stack (samlite names
    its state folder ``SAMLITE_STATE_DIR``): there, the template's Firehose stream does not
    exist, and a function must never reach out to AWS."""
    explicit = os.environ.get("LOYALTY_ANALYTICS_DIR")
    if explicit:
        return explicit
    state = os.environ.get("SAMLITE_STATE_DIR")
    return os.path.join(state, "analytics") if state else None


def _notifications_file() -> str | None:
    """``LOYALTY_NOTIFICATIONS_FILE``, else ``<state>/notifications.jsonl`` on the local stack
    (never SNS or SES there: samlite emulates neither)."""
    explicit = os.environ.get("LOYALTY_NOTIFICATIONS_FILE")
    if explicit:
        return explicit
    state = os.environ.get("SAMLITE_STATE_DIR")
    return os.path.join(state, "notifications.jsonl") if state else None


@cache
def settings() -> Settings:
    """The function's settings from ``TABLE_NAME``, ``EVENT_BUS_NAME`` and ``PROGRAM_ID``."""
    table_name = os.environ.get("TABLE_NAME", "")
    shortest, longest = TABLE_NAME_LENGTH
    if not shortest <= len(table_name) <= longest:
        raise MissingConfiguration("TABLE_NAME must name the DynamoDB table (see template.yaml)")
    return Settings(
        table_name=table_name,
        event_bus_name=os.environ.get("EVENT_BUS_NAME", "default"),
        program_id=os.environ.get("PROGRAM_ID", "cart-star"),
        program_ids=tuple(
            name.strip() for name in os.environ.get("PROGRAM_IDS", "").split(",") if name.strip()
        )
        or None,
        analytics_stream_name=os.environ.get("ANALYTICS_STREAM_NAME") or None,
        analytics_dir=_analytics_dir(),
        draw_seed_key=None
        if os.environ.get("SAMLITE_STATE_DIR")
        else os.environ.get("DRAW_SEED_KEY_ID") or None,
        notifications_file=_notifications_file(),
        notifications_topic_arn=os.environ.get("NOTIFICATIONS_TOPIC_ARN") or None,
        notification_email_domain=os.environ.get("NOTIFICATION_EMAIL_DOMAIN") or None,
    )
