"""The HTTP API keeps the contract of docs/openapi.json under generated input: schemathesis
fuzzes every operation of the document through the local stack's gateway (bench/fuzz.py, with a
few cases per operation here; ``python -m bench.fuzz`` sends 500 each), valid requests and
requests broken in one place, from the callers each route admits and from a few it refuses.
No answer may be a 5xx, and every answer, the gateway's own 401 and 403 included, must have a
status, a content type and a body the document gives the operation."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from samlite.testing import RunningStack, running_stack

from bench import fuzz
from infra.ddb_local import DynamoDBLocal

CASES = int(os.environ.get("FUZZ_CASES", "16"))
"""Cases per operation (half of them invalid input): about 1 s an operation on 2 cores."""
DOCUMENT = json.loads(fuzz.OPENAPI.read_text())
OPERATIONS = [
    f"{method.upper()} {path}" for path, methods in DOCUMENT["paths"].items() for method in methods
]


@pytest.fixture(scope="module")
def stack(
    ddb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("fuzz")
    parameter = ("--parameter", f"JwtAudience={fuzz.audience()}")
    with running_stack(fuzz.TEMPLATE, state, ddb_local.endpoint, *parameter) as running:
        yield running
    assert running.process.returncode == 0, running.output.read_text()[-3000:]


@pytest.fixture(scope="module")
def callers(stack: RunningStack) -> fuzz.Callers:
    return fuzz.Callers.of(stack)


@pytest.fixture(scope="module")
def known(stack: RunningStack) -> fuzz.Known:
    return fuzz.seed_data(stack, datetime.now(UTC))


@pytest.fixture(scope="module")
def schema(stack: RunningStack) -> Any:
    return fuzz.load_schema(stack.http)


def _operation(schema: Any, label: str) -> Any:
    return next(op for op in fuzz.operations(schema) if fuzz.label(op) == label)


def test_every_operation_of_the_document_is_fuzzed(schema: Any) -> None:
    assert sorted(fuzz.label(op) for op in fuzz.operations(schema)) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_generated_requests_get_documented_answers(
    stack: RunningStack, callers: fuzz.Callers, known: fuzz.Known, schema: Any, label: str
) -> None:
    operation = _operation(schema, label)
    outcome = fuzz.fuzz_operation(operation, stack.http, callers, CASES, known=known)
    assert outcome.cases["positive"] > 0, outcome.as_dict()
    # The admitted callers got past the gateway (a signer that signs wrong would leave 403s).
    assert set(outcome.statuses) - {401, 403}, outcome.as_dict()
    assert not outcome.failures, json.dumps(outcome.failures, indent=1)[:6000]
    assert not [status for status in outcome.statuses if status >= 500], outcome.statuses


def test_the_checks_catch_an_answer_the_document_does_not_give(
    stack: RunningStack, callers: fuzz.Callers
) -> None:
    """The same run against a document that forgets the 422 of a route and the gateway's body
    of its 401: invalid input must then fail the status check, and a request without a valid
    token the schema check (the fuzzing can fail)."""
    document = copy.deepcopy(DOCUMENT)
    responses = document["paths"]["/v1/me/ledger"]["get"]["responses"]
    del responses["422"]
    responses["401"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/ErrorBody"
    }
    forgetful = schemathesis.openapi.from_dict(document)
    forgetful.config.update(base_url=stack.http)
    outcome = fuzz.fuzz_operation(
        _operation(forgetful, "GET /v1/me/ledger"), stack.http, callers, 20
    )
    assert outcome.statuses[422] > 0, outcome.as_dict()
    assert outcome.statuses[401] > 0, outcome.as_dict()
    titles = " ".join(outcome.failures).lower()
    assert "status code" in titles and "schema" in titles, outcome.failures
