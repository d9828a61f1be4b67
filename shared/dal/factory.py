"""The repository behind a cached factory: one boto3 client per execution environment,
created on first use (never at import). ``AWS_ENDPOINT_URL_DYNAMODB`` points it at DynamoDB
Local."""

from __future__ import annotations

from functools import cache

import boto3

from shared.settings import settings

from .dynamodb import DynamoRepository
from .publisher import EventBridgePublisher
from .tiers import TierRepository


@cache
def repository() -> DynamoRepository:
    return DynamoRepository(settings().table_name, boto3.client("dynamodb"))


def reset() -> None:
    """Forget the cached repository and settings (tests point functions at fresh tables)."""
    repository.cache_clear()
    tier_repository.cache_clear()
    publisher.cache_clear()
    settings.cache_clear()


@cache
def tier_repository() -> TierRepository:
    return TierRepository(settings().table_name, repository().client)


@cache
def publisher() -> EventBridgePublisher:
    return EventBridgePublisher(settings().event_bus_name, boto3.client("events"))
