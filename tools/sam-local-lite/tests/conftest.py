"""The DynamoDB Local the stack tests run against.

``SAMLITE_TEST_DYNAMODB_ENDPOINT`` names a running one (``java -jar DynamoDBLocal.jar
-inMemory``, or ``docker run amazon/dynamodb-local``). Without it, the harness of the project that
holds this package (``infra.ddb_local``, when importable) starts one; without either, the tests
that need it are skipped.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    endpoint = os.environ.get("SAMLITE_TEST_DYNAMODB_ENDPOINT")
    if endpoint:
        yield endpoint
        return
    try:
        harness = importlib.import_module("infra.ddb_local")
    except ImportError:
        pytest.skip("no DynamoDB Local: set SAMLITE_TEST_DYNAMODB_ENDPOINT")
    server = harness.DynamoDBLocal()
    try:
        server.start()
        yield str(server.endpoint)
    finally:
        server.stop()
