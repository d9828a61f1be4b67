"""The repository's template: checkov's skips live in one configuration file, each with its
reason (no resource carries its own); the functions' permissions follow what their code calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from samlite.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_checkov_skips_live_in_one_file_each_with_its_reason() -> None:
    template = load_template(ROOT / "template.yaml", expand=False)
    in_metadata = [
        lid
        for lid, resource in template["Resources"].items()
        if "checkov" in ((resource.get("Metadata") or {}) if isinstance(resource, dict) else {})
    ]
    assert in_metadata == []
    lines = (ROOT / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    skips = [index for index, line in enumerate(lines) if re.match(r"^\s+- CKV", line)]
    assert skips
    config = yaml.safe_load("\n".join(lines))
    assert len(config["skip-check"]) == len(skips) == len(set(config["skip-check"]))
    for index in skips:
        assert lines[index - 1].strip().startswith("#"), f"{lines[index]} has no reason above it"


def _statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in props.get("Policies") or []
        if isinstance(policy, dict)
        for statement in policy.get("Statement") or []
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_only_the_function_that_publishes_may_put_events() -> None:
    template = load_template(ROOT / "template.yaml")
    functions = {
        lid: resource["Properties"]
        for lid, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    allowed = {
        lid
        for lid, props in functions.items()
        if any("EventBridgePutEventsPolicy" in policy for policy in props.get("Policies") or [])
        or any(action.startswith("events:") for s in _statements(props) for action in _actions(s))
    }
    # The code that calls PutEvents: a function that takes the publisher (shared.composition).
    publishing = {
        lid
        for lid, props in functions.items()
        if re.search(
            # one line, or a parenthesised list over several
            r"^from shared\.composition import (?:\([^)]*|.*)\bpublisher\b",
            (ROOT / props["CodeUri"] / "app.py").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    }
    assert allowed == publishing == {"EventPublisherFunction"}


def test_stream_consumers_read_the_tables_stream_only() -> None:
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    stream = {"Fn::GetAtt": ["LoyaltyTable", "StreamArn"]}
    # SAM's DynamoDB event would attach AWSLambdaDynamoDBExecutionRole (every stream in the
    # account): the stream mappings are AWS::Lambda::EventSourceMapping resources instead.
    for lid, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            events = (resource["Properties"].get("Events") or {}).values()
            assert all(event["Type"] not in ("DynamoDB", "Kinesis") for event in events), lid
    consumers = {
        resource["Properties"]["FunctionName"]["Ref"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["EventSourceArn"] == stream
    }
    assert consumers == {"TierRecalculationFunction", "EventPublisherFunction"}
    reads = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        granted: set[str] = set()
        for statement in _statements(resource["Properties"]):
            actions = set(_actions(statement))
            if actions & reads:
                assert statement["Resource"] == stream, lid
                granted |= actions & reads
            if "dynamodb:ListStreams" in actions:
                assert statement["Resource"] == {"Fn::Sub": "${LoyaltyTable.Arn}/stream/*"}, lid
                granted.add("dynamodb:ListStreams")
        expected = {*reads, "dynamodb:ListStreams"} if lid in consumers else set()
        assert granted == expected, lid


def test_the_dashboard_shows_what_the_code_emits_and_every_function() -> None:
    """Each metric of the operations dashboard is one a function emits (namespace Loyalty) or
    AWS's; every function's errors are on it; every name it substitutes is in the template."""
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    body_text = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([A-Za-z]+)(?:\.[A-Za-z]+)?\}", body_text))
    assert names - {"AWS"} <= set(resources), names - set(resources)
    body = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body_text))
    metrics = [m for widget in body["widgets"] for m in widget["properties"]["metrics"]]
    source = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*/app.py"))
    source += "\n".join(p.read_text() for p in (ROOT / "shared").rglob("*.py"))
    for metric in metrics:
        namespace, name = metric[0], metric[1]
        assert namespace in {"Loyalty", "AWS/Lambda", "AWS/SQS"}, metric
        if namespace == "Loyalty":
            assert f'"{name}"' in source or f"'{name}'" in source, f"{name} is never emitted"
    functions = {r for r, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    shown = {m[3] for m in metrics if m[:2] == ["AWS/Lambda", "Errors"]}
    assert shown == functions
