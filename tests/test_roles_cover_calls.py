"""Each function's role in template.yaml grants exactly what its code calls.

The calls are recorded while the rest of the suite runs the functions' handlers
(tests/iam_calls.py); this test runs last (tests/conftest.py) and compares, per function:

- every permission the code used is granted by its role (else it fails on AWS with
  AccessDenied, which no local test would show);
- every permission the role grants is used by the code, or by the Lambda service on the
  function's behalf: polling its SQS event sources, reading the table's stream for its stream
  event source, sending to its on-failure destination. Anything else is privilege to remove.

Run alone (or with a part of the suite) it skips: the whole suite is the workload. With
``ROLES_TEST_PARTIAL=1`` it runs anyway (to see where a part of the suite calls what a role
does not grant; its "unused" findings then mean nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from samlite.cfn import load_template
from samlite.template import read_stack

from tests import iam_calls

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
WHOLE_SUITE = 400
"""Fewer tests collected than this: a partial run, whose handlers do not cover the code."""

# SAM policy templates (https://docs.aws.amazon.com/serverless-application-model/latest/
# developerguide/serverless-policy-template-list.html): the actions each grants.
POLICY_TEMPLATES = {
    "SQSPollerPolicy": (
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibilityBatch",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ),
    "SQSSendMessagePolicy": ("sqs:SendMessage*",),
    "EventBridgePutEventsPolicy": ("events:PutEvents",),
}
UNTESTED_PATHS = {
    ("tier_recalculation", "dynamodb:Query", "table"): (
        "a refunded or cancelled order whose counted rating leaves a member's last-100 window "
        "with no spare refills it from older ratings (shared/logic/moderation/core.py, "
        "_older_counted); the engine's model (randomised) reaches it through the stream in some "
        "runs, rating_moderation's tests in every run"
    ),
    ("prize_draw", "kms:Encrypt", "key"): (
        "on AWS only: the tests and the local stack have no KMS (the seal's calls are tested on "
        "moto's KMS in tests/unit/test_seed_vault.py, outside a handler run)"
    ),
    ("prize_draw", "kms:Decrypt", "key"): (
        "on AWS only: the tests and the local stack have no KMS (the seal's calls are tested on "
        "moto's KMS in tests/unit/test_seed_vault.py, outside a handler run)"
    ),
}
"""Grants the code needs on a path the suite does not reach through this function in every run:
kept, each with why (used or not, never reported unused)."""
STREAM_READS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}


def _resource(value: Any) -> str:
    """The kind of resource a statement names: table, index/<name>, stream."""
    if isinstance(value, list):
        kinds = {_resource(item) for item in value}
        assert len(kinds) == 1, value
        return kinds.pop()
    if isinstance(value, Mapping) and value.get("Ref") == "NotificationsTopic":
        return "topic"
    if isinstance(value, Mapping) and value.get("Fn::GetAtt", [""])[0] == "PrizeDrawSeedKey":
        return "key"
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"][1]
        return {"Arn": "table", "StreamArn": "stream"}[attribute]
    if isinstance(value, Mapping) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        text = text if isinstance(text, str) else text[0]
        if ":ses:" in text:
            return "identity"
        tail = text.split("}", 1)[1]
        if tail.startswith("/index/"):
            return "index/" + tail.removeprefix("/index/")
        if tail.startswith("/stream/"):
            return "stream"
    raise AssertionError(f"a resource this test does not know: {value}")


def _queue(value: Mapping[str, Any]) -> str:
    """The logical id of the queue a policy template's QueueName names."""
    return str(value["QueueName"]["Fn::GetAtt"][0])


def granted(policies: list[Any]) -> Iterator[tuple[str, str, str]]:
    """(action, resource, why) for every permission a function's Policies grant; ``why`` is
    ``code`` for statements and for sends and puts, or the queue polled / sent to."""
    for policy in policies:
        if "Statement" in policy:
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"]
                for action in [actions] if isinstance(actions, str) else actions:
                    yield action, _resource(statement["Resource"]), "code"
            continue
        ((name, arguments),) = policy.items()
        for action in POLICY_TEMPLATES[name]:
            if name == "EventBridgePutEventsPolicy":
                yield action, "bus", "code"
            else:
                yield action, "queue", _queue(arguments)


def roles() -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """Per function's logical id: its folder under functions/ and what its role grants."""
    template = load_template(TEMPLATE)
    found: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, Mapping):
            continue
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        folder = Path(resource["Properties"]["CodeUri"]).name
        found[logical_id] = (folder, list(granted(resource["Properties"].get("Policies", []))))
    return found


def test_roles_grant_what_the_code_calls_and_no_more(request: pytest.FixtureRequest) -> None:
    if len(request.session.items) < WHOLE_SUITE and not os.environ.get("ROLES_TEST_PARTIAL"):
        pytest.skip("needs the whole suite: its handler runs are the workload")
    model = read_stack(TEMPLATE)
    queue_ids = {queue.arn: lid for lid, queue in model.queues.items()}
    problems: list[str] = []
    for logical_id, (folder, grants) in roles().items():
        used = iam_calls.RECORDED.get(folder, set())
        if not used:
            problems.append(f"{folder}: no handler run recorded a call (is it tested?)")
            continue
        mappings = [m for m in model.mappings if m.function == logical_id]
        polled = {m.source_id for m in mappings if m.kind == "sqs"}
        streams = any(m.kind == "dynamodb" for m in mappings)
        destinations = {
            queue_ids.get(arn)
            for arn in [
                model.functions[logical_id].on_failure,
                *(m.on_failure for m in mappings),
            ]
            if arn
        }
        # What the code used must be granted.
        for action, resource in sorted(used):
            if action.startswith("dynamodb:"):
                ok = (action, resource) in {(a, r) for a, r, _ in grants}
            else:
                ok = any(
                    a == action or (a.endswith("*") and action.startswith(a[:-1]))
                    for a, _, _ in grants
                )
            if not ok:
                problems.append(
                    f"{folder}: calls {action} on {resource}, not granted "
                    f"(from {iam_calls.WHERE.get((folder, (action, resource)), '?')})"
                )
        # What the role grants must be used, by the code or by Lambda for the function.
        for action, resource, why in grants:
            if why == "code":
                is_used = any(
                    a == action and (r == resource or not action.startswith("dynamodb:"))
                    for a, r in used
                )
                if action in STREAM_READS and streams:
                    is_used = True
                waived = (folder, action, resource) in UNTESTED_PATHS
                if not is_used and not waived:
                    problems.append(f"{folder}: its role grants {action} on {resource}, unused")
            elif action.startswith("sqs:Send"):
                if why not in destinations and not any(a.startswith("sqs:Send") for a, _ in used):
                    problems.append(f"{folder}: may send to {why}, neither code nor destination")
            elif why not in polled:
                problems.append(f"{folder}: may poll {why}, which is not its event source")
    assert not problems, "\n".join(problems)
