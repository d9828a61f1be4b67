"""Where the functions get their repositories: every one is built here, and only here.

One boto3 client per service and execution environment, created on first use (never at import,
so that importing a function costs no client) and cached with the repositories built on it.
``AWS_ENDPOINT_URL_DYNAMODB`` points the DynamoDB client at DynamoDB Local. ``reset()`` forgets
everything (tests point the functions at fresh tables).

Each repository's module is imported on first use too: a function pays at cold start only for
the repositories it uses (order ingestion never loads the rating moderation's).

The use cases never import this module: they are given the repositories, which satisfy their
store protocols structurally (``shared.logic``)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3

from shared.dal.capacity import CapacityMeter
from shared.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

    from shared.dal.admin_actions import AdminActionRepository
    from shared.dal.analytics import FirehoseSink, ParquetSink
    from shared.dal.channels import AwsSender, FileSender
    from shared.dal.customers import CustomerRepository
    from shared.dal.digest import DigestRepository
    from shared.dal.draw import DrawRepository
    from shared.dal.gates import GateRepository
    from shared.dal.ledger import LedgerRepository
    from shared.dal.notifications import NotificationRepository
    from shared.dal.perks import PerkRepository
    from shared.dal.privacy import PrivacyRepository
    from shared.dal.publisher import EventBridgePublisher
    from shared.dal.ratings import RatingRepository
    from shared.dal.recalculation import RecalculationRepository
    from shared.dal.stats import StatsRepository
    from shared.dal.tiers import TierRepository


@cache
def dynamodb() -> DynamoDBClient:
    """The execution environment's DynamoDB client (boto3 clients are thread-safe)."""
    return boto3.client("dynamodb")


@cache
def sqs() -> SQSClient:
    """The SQS client (the full recalculation sends its continuation messages with it)."""
    return boto3.client("sqs")


@cache
def meter() -> CapacityMeter:
    """The capacity meter the ledger and perk repositories share (the member API reads through
    both, and counts its units as one)."""
    return CapacityMeter()


@cache
def ledger_repository() -> LedgerRepository:
    from shared.dal.ledger import LedgerRepository  # noqa: PLC0415 (on first use)

    return LedgerRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def perk_repository() -> PerkRepository:
    from shared.dal.perks import PerkRepository  # noqa: PLC0415 (on first use)

    return PerkRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def tier_repository() -> TierRepository:
    from shared.dal.tiers import TierRepository  # noqa: PLC0415 (on first use)

    return TierRepository(settings().table_name, dynamodb())


@cache
def rating_repository() -> RatingRepository:
    from shared.dal.ratings import RatingRepository  # noqa: PLC0415 (on first use)

    return RatingRepository(settings().table_name, dynamodb())


@cache
def recalculation_repository() -> RecalculationRepository:
    """The full recalculation's repository, with its own meter (a worker reads its units)."""
    from shared.dal.recalculation import RecalculationRepository  # noqa: PLC0415 (on first use)

    return RecalculationRepository(settings().table_name, dynamodb())


@cache
def publisher() -> EventBridgePublisher:
    from shared.dal.publisher import EventBridgePublisher  # noqa: PLC0415 (on first use)

    return EventBridgePublisher(settings().event_bus_name, boto3.client("events"))


@cache
def analytics_sink() -> FirehoseSink | ParquetSink | None:
    """Where event_publisher delivers the analytics rows: a local folder of Parquet files when
    ``LOYALTY_ANALYTICS_DIR`` is set (the local stack), else the Firehose stream of
    ``ANALYTICS_STREAM_NAME``, else nowhere (tests that do not look at analytics)."""
    config = settings()
    if config.analytics_dir:
        from pathlib import Path  # noqa: PLC0415

        from shared.dal.analytics import ParquetSink  # noqa: PLC0415 (on first use)

        return ParquetSink(Path(config.analytics_dir))
    if config.analytics_stream_name:
        from shared.dal.analytics import FirehoseSink  # noqa: PLC0415 (on first use)

        return FirehoseSink(config.analytics_stream_name, boto3.client("firehose"))
    return None


@cache
def customer_repository() -> CustomerRepository:
    from shared.dal.customers import CustomerRepository  # noqa: PLC0415 (on first use)

    return CustomerRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def gate_repository() -> GateRepository:
    """The quality gates' windows (order ingestion: offers, deliveries, late reports)."""
    from shared.dal.gates import GateRepository  # noqa: PLC0415 (on first use)

    return GateRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def privacy_repository() -> PrivacyRepository:
    """The administrators' privacy requests (export, erasure)."""
    from shared.dal.privacy import PrivacyRepository  # noqa: PLC0415 (on first use)

    return PrivacyRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def admin_action_repository() -> AdminActionRepository:
    """The administrators' points adjustments and tier overrides (docs/admin.md)."""
    from shared.dal.admin_actions import AdminActionRepository  # noqa: PLC0415 (on first use)

    return AdminActionRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def digest_repository() -> DigestRepository:
    from shared.dal.digest import DigestRepository  # noqa: PLC0415 (on first use)

    return DigestRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def draw_repository() -> DrawRepository:
    """The monthly prize draw's items and entries."""
    from shared.dal.draw import DrawRepository  # noqa: PLC0415 (on first use)
    from shared.dal.seed_vault import KmsSeedVault  # noqa: PLC0415

    config = settings()
    vault = None
    if config.draw_seed_key:  # on AWS: the seeds sealed with the function's KMS key
        vault = KmsSeedVault(boto3.client("kms"), config.draw_seed_key)
    return DrawRepository(config.table_name, dynamodb(), meter=meter(), vault=vault)


@cache
def stats_repository() -> StatsRepository:
    """The stats counters (event_publisher keeps them, the admin API reads them)."""
    from shared.dal.stats import StatsRepository  # noqa: PLC0415 (on first use)

    return StatsRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def notification_repository() -> NotificationRepository:
    """The notifier's preferences, event records and weekly counters."""
    from shared.dal.notifications import NotificationRepository  # noqa: PLC0415 (on first use)

    return NotificationRepository(settings().table_name, dynamodb(), meter=meter())


@cache
def notification_sender() -> FileSender | AwsSender:
    """Where the notifier's messages go: a JSON-lines file when one is configured (the local
    stack, tests), else SNS (push) and SES (e-mail, when a domain is set)."""
    config = settings()
    if config.notifications_file:
        from pathlib import Path  # noqa: PLC0415

        from shared.dal.channels import FileSender  # noqa: PLC0415 (on first use)

        return FileSender(Path(config.notifications_file))
    from shared.dal.channels import AwsSender  # noqa: PLC0415 (on first use)

    topic, domain = config.notifications_topic_arn, config.notification_email_domain
    return AwsSender(
        topic,
        domain,
        boto3.client("sns") if topic else None,
        boto3.client("sesv2") if domain else None,
    )


_CACHED = (
    dynamodb,
    sqs,
    meter,
    ledger_repository,
    perk_repository,
    tier_repository,
    rating_repository,
    customer_repository,
    gate_repository,
    digest_repository,
    draw_repository,
    privacy_repository,
    admin_action_repository,
    stats_repository,
    notification_repository,
    notification_sender,
    recalculation_repository,
    publisher,
    analytics_sink,
    settings,
)


def reset() -> None:
    """Forget the cached clients, repositories and settings."""
    for function in _CACHED:
        function.cache_clear()
