"""``loyalty audit invariants`` on DynamoDB Local: a table the engine wrote passes, a member item
edited behind the engine's back is named, and the exit code says which."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from infra import cli
from shared import composition
from tests.helpers import FakeContext, load_function, order_completed


@pytest.fixture
def ingested(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Orders of three shoppers and their customers, through order ingestion."""
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    app = load_function("order_ingestion")
    for index in range(9):
        event = order_completed(
            order_id=f"o-{index}", member_id=f"s-{index % 3}", customer_id=f"c-{index % 3}"
        )
        app.lambda_handler(event, FakeContext())
    # Another program's partition: not known to this code, counted apart, not a failure.
    boto3.client("dynamodb").put_item(
        TableName=table_name,
        Item={"pk": {"S": "P#retired#M#x"}, "sk": {"S": "MEMBER"}, "lifetimePoints": {"N": "5"}},
    )
    yield app
    composition.reset()


def test_a_clean_table_passes_and_an_edited_member_is_named(
    ingested: ModuleType, table_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["audit", "invariants", "--table", table_name, "--segments", "3"]) == 0
    summary = capsys.readouterr().out
    assert "6 members audited" in summary and "0 differences" in summary
    assert "unknown programs: retired (1)" in summary

    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": {"S": "P#cart-star#M#s-1"}, "sk": {"S": "MEMBER"}},
        UpdateExpression="ADD lifetimePoints :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert cli.main(["audit", "invariants", "--table", table_name, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["members"] == 6
    assert [(d["member_id"], d["attribute"]) for d in result["differences"]] == [
        ("s-1", "lifetimePoints")
    ]
    # One member, by id: the same finding, and a clean one passes.
    arguments = ["audit", "invariants", "--table", table_name, "--program", "cart-star"]
    assert cli.main([*arguments, "--member", "s-1"]) == 1
    assert "cart-star/s-1: lifetimePoints" in capsys.readouterr().out
    assert cli.main([*arguments, "--member", "s-2"]) == 0


def test_bad_arguments_say_what_is_missing(
    table_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    assert cli.main(["audit", "invariants"]) == 2
    assert "--table" in capsys.readouterr().err
    assert cli.main(["audit", "invariants", "--table", table_name, "--member", "s-1"]) == 2
    assert "--member needs --program" in capsys.readouterr().err
