from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from shared import composition
from shared.dal.ledger import LedgerRepository
from shared.domain.program import Program
from shared.programs import load_program

TABLE = "loyalty-unit"


@pytest.fixture(autouse=True)
def _no_endpoint_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests run on moto: drop endpoint overrides that the integration session (which may
    run first, in the same process) points at DynamoDB Local or at a closed port."""
    for name in [key for key in os.environ if key.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)


@pytest.fixture
def program() -> Program:
    return load_program("cart-star")


@pytest.fixture
def moto_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto table with the template's key schema, and the function env pointing at it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        composition.reset()
        yield TABLE
        composition.reset()


@pytest.fixture
def repo(moto_table: str) -> LedgerRepository:
    return LedgerRepository(moto_table, boto3.client("dynamodb"), sleep=lambda _: None)
