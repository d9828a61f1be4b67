"""Fixtures for tests against DynamoDB Local (AWS's own engine, see infra/ddb_local.py).

- ``ddb_local`` (session): one in-memory DynamoDB Local on a free loopback port; while it
  runs, AWS_ENDPOINT_URL_DYNAMODB points at it and dummy credentials and us-east-1 are
  set, so a plain ``boto3.client("dynamodb")`` / ``boto3.resource("dynamodb")`` uses it.
  DynamoDB Local slows down with every table it has ever created (deleted ones too: 4.5
  times slower after 1,000), so between two test modules, once the session has created
  ``RENEW_AFTER_TABLES`` tables since the last renewal, it is replaced by a new, empty one on
  the same port (about 2 s).
- ``ddb_client`` (session): a DynamoDB client for it.
- ``table_name`` (function): a fresh, uniquely named table built from the repo's
  template.yaml (via samlite.cfn), deleted after the test.

Every test under tests/integration is marked ``integration``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.client import BaseClient
from samlite.cfn import create_table, load_template, table_logical_ids

from infra.ddb_local import DynamoDBLocal
from tests.integration.streams import RecordingPublisher

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
MAIN_TABLE = "LoyaltyTable"
REGION = "us-east-1"
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
}
RENEW_AFTER_TABLES = 60
_created_tables = [0]
"""CreateTable calls (any client, any test) since DynamoDB Local was last (re)started."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Hooks in a conftest see the whole session's items: mark only the ones under here.
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ddb_local() -> Iterator[DynamoDBLocal]:
    """One DynamoDB Local for the session, with the AWS environment pointing at it."""
    server = DynamoDBLocal()
    try:
        server.start()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.endpoint)
            env.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", server.endpoint)
            # No test may reach AWS: every other service points at a closed loopback port
            # (tests that publish events replace the publisher).
            for service in ("EVENTS", "EVENTBRIDGE", "SQS", "STS", "SCHEDULER", "SNS", "SESV2"):
                env.setenv(f"AWS_ENDPOINT_URL_{service}", "http://127.0.0.1:9")
            for name, value in ENVIRONMENT.items():
                env.setenv(name, value)
            # A real session token or profile must not mix with the dummy keys.
            env.delenv("AWS_SESSION_TOKEN", raising=False)
            env.delenv("AWS_PROFILE", raising=False)
            original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009

            def counting(self: BaseClient, operation: str, params: Any) -> Any:
                if operation == "CreateTable":
                    _created_tables[0] += 1
                return original(self, operation, params)

            env.setattr(BaseClient, "_make_api_call", counting)
            _created_tables[0] = 0
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def _renewed_ddb_local(ddb_local: DynamoDBLocal) -> None:
    """Before a module's fixtures: a new DynamoDB Local once enough tables were made."""
    if _created_tables[0] >= RENEW_AFTER_TABLES:
        ddb_local.restart()
        _created_tables[0] = 0


@pytest.fixture(scope="session")
def ddb_client(ddb_local: DynamoDBLocal) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=ddb_local.endpoint,
        region_name=REGION,
        aws_access_key_id=ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="session")
def loyalty_template() -> Mapping[str, Any]:
    """The repo's template.yaml, parsed once."""
    if not TEMPLATE_PATH.is_file():
        pytest.fail(f"{TEMPLATE_PATH} is missing: the table_name fixture builds its table from it")
    return load_template(TEMPLATE_PATH)


@pytest.fixture
def table_name(ddb_client: DynamoDBClient, loyalty_template: Mapping[str, Any]) -> Iterator[str]:
    """A fresh table shaped like the template's LoyaltyTable; deleted after the test."""
    name = f"loyalty-test-{uuid.uuid4().hex[:12]}"
    logical_id = MAIN_TABLE if MAIN_TABLE in table_logical_ids(loyalty_template) else None
    create_table(ddb_client, loyalty_template, name, logical_id)
    try:
        yield name
    finally:
        # The test may have deleted it itself.
        with contextlib.suppress(ddb_client.exceptions.ResourceNotFoundException):
            ddb_client.delete_table(TableName=name)


@pytest.fixture
def published(apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    """What event_publisher would send, kept instead (``apps``: the test module's loaded
    functions, event_publisher among them)."""
    recorder = RecordingPublisher()
    monkeypatch.setattr(apps["event_publisher"], "publisher", lambda: recorder)
    return recorder
