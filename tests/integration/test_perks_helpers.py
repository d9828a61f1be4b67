"""Helpers of the perk and member API tests: HTTP API v2 events (JWT or IAM), seeded members,
the table's stream as Lambda receives it, a publisher that records, and Lambda environments in
parallel processes for the concurrency tests. No tests here."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from shared import composition
from shared.domain.keys import MEMBER_SK, member_pk
from tests.helpers import FakeContext, load_function

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROGRAM = "cart-star"
FUNCTIONS = ("member_api", "perk_redemption", "order_ingestion", "event_publisher")


def http(
    method: str,
    path: str,
    *,
    sub: str | None = None,
    iam: bool = False,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    at: datetime = NOW,
    route: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event as the JWT or IAM authorizer hands it over."""
    authorizer: dict[str, Any] = {}
    if sub is not None:
        authorizer["jwt"] = {"claims": {"sub": sub, "scope": "openid"}, "scopes": ["openid"]}
    if iam:
        authorizer["iam"] = {
            "accountId": "123456789012",
            "callerId": "AIDAEXAMPLE",
            "userArn": "arn:aws:iam::123456789012:role/dispatch-service",
            "userId": "AIDAEXAMPLE",
        }
    encoded = None
    if body is not None:
        encoded = body if isinstance(body, str) else json.dumps(body)
    query_string = "&".join(f"{name}={value}" for name, value in (query or {}).items())
    return {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query_string,
        "queryStringParameters": dict(query) if query else None,
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": authorizer,
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
            },
            "requestId": f"req-{method}-{path}",
            "routeKey": route or f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "body": encoded,
        "isBase64Encoded": False,
    }


def call(app: ModuleType, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """Invoke a function's handler; (status, JSON body, headers)."""
    response = app.lambda_handler(event, FakeContext(function_name="api"))
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], body, response.get("headers") or {}


def seed_member(
    client: Any,
    table: str,
    member_id: str,
    tier: str | None = None,
    eligible: bool | None = None,
    extra: dict[str, Any] | None = None,
    **attributes: Any,
) -> None:
    """A member item as ingestion, tier recalculation and rating moderation leave it."""
    item: dict[str, Any] = {
        "pk": {"S": member_pk(PROGRAM, member_id)},
        "sk": {"S": MEMBER_SK},
        "memberId": {"S": member_id},
        "programId": {"S": PROGRAM},
        "v": {"N": "1"},
    }
    if tier is not None:
        item["tier"] = {"S": tier}
    if eligible is not None:
        item["eligible"] = {"BOOL": eligible}
    for name, value in {**(extra or {}), **attributes}.items():
        item[name] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
    client.put_item(TableName=table, Item=item)


def publish_stream(apps: dict[str, ModuleType], records: list[dict[str, Any]]) -> None:
    response = apps["event_publisher"].lambda_handler(
        {"Records": records}, FakeContext(function_name="event_publisher")
    )
    assert response == {"batchItemFailures": []}, response


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    yield {name: load_function(name) for name in FUNCTIONS}
    composition.reset()


# -- concurrent requests: one process per Lambda execution environment ----------------------------
#
# Lambda runs one request at a time per execution environment, so concurrent requests run in
# separate environments. Threads in one process would not model that: Powertools' resolvers
# keep the current event in a class attribute, shared by every resolver of the process.

_WORKER: dict[str, Any] = {}


def _in_environment(table: str, event: dict[str, Any], start_at: float) -> tuple[int, Any]:
    """In a worker process: perk_redemption's handler for ``event``, started at ``start_at``."""
    if _WORKER.get("table") != table:
        os.environ["TABLE_NAME"] = table
        composition.reset()
        _WORKER["table"] = table
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    response = _WORKER["app"].lambda_handler(event, FakeContext(function_name="perk_redemption"))
    return int(response["statusCode"]), json.loads(response["body"])


def _ready(pause: float) -> int:
    """Start a worker: load the function as a cold start would, then hold a moment."""
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    from shared.observability import logger  # noqa: PLC0415 (the worker's own)

    logger.setLevel("WARNING")
    _WORKER["app"] = load_function("perk_redemption")
    time.sleep(pause)
    return os.getpid()


_FUNCTION_IMPORTS = (
    "aws_lambda_powertools.metrics",
    "shared.api_models.checkout",
    "shared.http_api",
    "shared.ingress",
    "shared.logic.customers",
    "shared.logic.giving",
    "shared.logic.limits",
    "shared.logic.perks",
    "shared.logic.referrals",
    "shared.observability",
    "shared.programs",
)
"""perk_redemption's imports (functions/perk_redemption/app.py), preloaded by the fork server."""


class Environments:
    """``size`` warm worker processes that send requests at the same instant."""

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("forkserver")
        # The server imports what the function imports, once: each worker forked from it then
        # runs only app.py's own module code (its cold start), not the libraries' imports again
        # (16 times over on 2 cores was most of this fixture's time).
        context.set_forkserver_preload([__name__, *_FUNCTION_IMPORTS])
        self.size = size
        self.pool = ProcessPoolExecutor(size, mp_context=context)
        # Start every worker now (one task each, held long enough for all to be spawned).
        pids = set(self.pool.map(_ready, [1.0] * size))
        assert len(pids) == size, pids

    def at_once(self, table: str, events: Sequence[dict[str, Any]]) -> list[tuple[int, Any]]:
        """Each event in its own environment, all released at the same instant."""
        assert len(events) <= self.size
        start_at = time.time() + 0.05
        futures = [self.pool.submit(_in_environment, table, e, start_at) for e in events]
        return [future.result(timeout=120) for future in futures]

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def environments(ddb_local: Any) -> Iterator[Environments]:
    """16 Lambda execution environments (processes), pointed at the session's DynamoDB Local."""
    workers = Environments(16)
    try:
        yield workers
    finally:
        workers.close()
