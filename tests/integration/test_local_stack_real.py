"""The local stack (the samlite package, tools/sam-local-lite) on the repository's own
template.yaml: every function and trigger is found; order_ingestion driven through the
EventBridge endpoint (PutEvents on the template's bus and on `default`) and through the
IAM-authorised HTTP route."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from samlite.cfn import load_template, resolve_intrinsics
from samlite.cli import request
from samlite.template import LOCAL_AUDIENCE, LOCAL_ISSUER, read_stack
from samlite.testing import RunningStack, eventually, http, running_stack, signed_headers

from infra import cli
from infra.ddb_local import DynamoDBLocal
from infra.local.demo import run_demo
from shared.domain.keys import member_pk, order_sk

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def stack(
    ddb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("local-stack-real")
    with running_stack(TEMPLATE, state, ddb_local.endpoint) as running:
        yield running
    assert running.process.returncode == 0, running.output.read_text()[-3000:]


def test_real_template_every_python_function_and_trigger_is_found() -> None:
    template = load_template(TEMPLATE)
    model = read_stack(TEMPLATE)
    declared = {
        lid
        for lid, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    assert set(model.functions) == declared
    ingestion = model.functions["OrderIngestionFunction"]
    assert ingestion.environment["TABLE_NAME"] == model.tables["LoyaltyTable"].name
    assert ingestion.environment["EVENT_BUS_NAME"] == "loyalty-dev"
    assert ingestion.on_failure == model.queues["OrderEventsFailureQueue"].arn
    # The scheduled functions: a run that raises is recorded beside the undelivered runs.
    for lid, failures in (
        ("TierRecalculationFunction", "TierStreamFailureQueue"),
        ("PointsSettlementFunction", "PointsSettlementFailureQueue"),
        ("LedgerDigestFunction", "LedgerDigestFailureQueue"),
        ("PrizeDrawFunction", "PrizeDrawFailureQueue"),
    ):
        assert model.functions[lid].on_failure == model.queues[failures].arn, lid
    rule = next(rule for rule in model.rules if rule.source == "OrderIngestionFunction.OrderEvents")
    assert rule.bus == "loyalty-dev"
    assert "source" not in rule.pattern  # AllowedEventSources is empty by default
    mapping = next(m for m in model.mappings if m.source == "OrderEventsQueueMapping")
    assert (mapping.kind, mapping.function, mapping.report_batch_item_failures) == (
        "sqs",
        "OrderIngestionFunction",
        True,
    )
    queue = model.queues[mapping.source_id]
    assert queue.dead_letter_arn == model.queues["OrderEventsDeadLetterQueue"].arn
    # The table's stream: its two consumers, each recording what fails in its own queue.
    streams = {m.function: m for m in model.mappings if m.kind == "dynamodb"}
    assert set(streams) == {"TierRecalculationFunction", "EventPublisherFunction"}
    for function, failures, retries, filtered in (
        ("TierRecalculationFunction", "TierStreamFailureQueue", 5, 3),
        ("EventPublisherFunction", "EventPublisherFailureQueue", 10, 0),
    ):
        consumer = streams[function]
        assert consumer.source_id == "LoyaltyTable"
        assert consumer.on_failure == model.queues[failures].arn
        assert (consumer.max_retry_attempts, len(consumer.filters)) == (retries, filtered)
        assert consumer.bisect_on_error and consumer.report_batch_item_failures
        assert consumer.starting_position == "TRIM_HORIZON"
    ingest = next(route for route in model.routes if route.route_key == "POST /v1/events")
    assert ingest.auth == "AWS_IAM"
    for route in model.routes:
        if route.authorizer is not None:  # JwtIssuer/JwtAudience have no default
            assert route.authorizer.issuer == LOCAL_ISSUER
            assert route.authorizer.audience == (LOCAL_AUDIENCE,)


def test_real_template_functions_take_what_globals_gives_them() -> None:
    model = read_stack(TEMPLATE)
    # Only the two parameters without a default: every loop expanded, nothing left out.
    assert len(model.warnings) == 2
    assert all(warning.startswith("parameter Jwt") for warning in model.warnings)
    assert len(model.functions) == 12
    own_limits = {
        "TierRecalculationFunction": (300.0, 512),
        "PointsSettlementFunction": (240.0, 512),
        "LedgerDigestFunction": (900.0, 512),
        "PrizeDrawFunction": (900.0, 512),
        "TierFullRecalculationFunction": (900.0, 1769),
    }
    table = model.tables["LoyaltyTable"].name
    for lid, function in model.functions.items():
        assert (function.handler, function.runtime) == ("app.lambda_handler", "python3.13"), lid
        assert (function.timeout, function.memory) == own_limits.get(lid, (30.0, 512)), lid
        # Globals' variables and the function's own, merged.
        assert function.environment["TABLE_NAME"] == table
        assert function.environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"  # StageConfig, dev
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == function.code_dir.name
    full = model.functions["TierFullRecalculationFunction"]
    assert (
        full.environment["RECALCULATION_QUEUE_URL"]
        == model.queues["TierFullRecalculationQueue"].url
    )


def test_real_template_alarms_are_made_by_loops() -> None:
    written = load_template(TEMPLATE, expand=False)
    assert not any(
        isinstance(resource, dict) and resource.get("Type") == "AWS::CloudWatch::Alarm"
        for resource in written["Resources"].values()
    )
    template = load_template(TEMPLATE)
    assert "AWS::LanguageExtensions" not in template["Transform"]
    alarms = {
        lid: resource["Properties"]
        for lid, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    queues = [
        "OrderEventsDeadLetterQueue",
        "OrderEventsFailureQueue",
        "OrderEventsRuleDeadLetterQueue",
        "TierStreamFailureQueue",
        "PointsSettlementFailureQueue",
        "LedgerDigestFailureQueue",
        "PrizeDrawFailureQueue",
        "TierFullRecalculationDeadLetterQueue",
        "EventPublisherFailureQueue",
        "PerkEventsFailureQueue",
        "PerkEventsRuleDeadLetterQueue",
        "RatingEventsDeadLetterQueue",
        "RatingEventsFailureQueue",
        "RatingEventsRuleDeadLetterQueue",
        "NotificationEventsDeadLetterQueue",
    ]
    # Every function has an Errors alarm; the two stream consumers an IteratorAge alarm too.
    functions = [
        lid.removesuffix("Function")
        for lid, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    assert len(functions) == 12
    stream_consumers = [
        resource["Properties"]["FunctionName"]["Ref"].removesuffix("Function")
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["EventSourceArn"]
        == {"Fn::GetAtt": ["LoyaltyTable", "StreamArn"]}
    ]
    assert sorted(stream_consumers) == ["EventPublisher", "TierRecalculation"]
    assert set(alarms) == {
        *(f"{queue}Alarm" for queue in queues),
        "OrderEventsQueueAgeAlarm",
        *(f"{name}ErrorsAlarm" for name in functions),
        *(f"{name}IteratorAgeAlarm" for name in stream_consumers),
    }
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for lid, alarm in alarms.items():
        (dimension,) = alarm["Dimensions"]
        # One period of 5 minutes; a stream's lag must last 5 one-minute periods.
        periods: tuple[int, int, int | None] = (300, 1, None)
        if lid.endswith("ErrorsAlarm"):
            watched = {"Ref": lid.removesuffix("ErrorsAlarm") + "Function"}
            expected = ("AWS/Lambda", "Errors", "FunctionName", "Sum", 0)
        elif lid.endswith("IteratorAgeAlarm"):
            watched = {"Ref": lid.removesuffix("IteratorAgeAlarm") + "Function"}
            expected = ("AWS/Lambda", "IteratorAge", "FunctionName", "Maximum", 60000)
            periods = (60, 5, 5)
        elif lid == "OrderEventsQueueAgeAlarm":
            watched = {"Fn::GetAtt": ["OrderEventsQueue", "QueueName"]}
            expected = ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "Maximum", 900)
        else:
            watched = {"Fn::GetAtt": [lid.removesuffix("Alarm"), "QueueName"]}
            expected = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "Maximum", 0)
        assert dimension["Value"] == watched, lid
        assert (
            alarm["Namespace"],
            alarm["MetricName"],
            dimension["Name"],
            alarm["Statistic"],
            alarm["Threshold"],
        ) == expected, lid
        assert (
            alarm["Period"],
            alarm["EvaluationPeriods"],
            alarm.get("DatapointsToAlarm"),
        ) == periods, lid
        assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
            "GreaterThanThreshold",
            "notBreaching",
        )
        assert alarm["AlarmActions"] == alarm["OKActions"] == actions
        description = resolve_intrinsics(alarm["AlarmDescription"], template)
        assert isinstance(description, str) and len(description) > 20, lid


def order_completed(order_id: str, member_id: str, batch_size: int = 1) -> dict[str, Any]:
    return {
        "orderId": order_id,
        "memberId": member_id,
        "customerId": "customer-1",
        "completedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "batchSize": batch_size,
        "total": {"amount": "42.00", "currency": "USD"},
        "tip": {"amount": "5.00", "currency": "USD"},
    }


def order_item(stack: RunningStack, member: str, order: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        stack.client("dynamodb")
        .get_item(
            TableName=stack.description["tables"]["LoyaltyTable"],
            Key={"pk": {"S": member_pk("cart-star", member)}, "sk": {"S": order_sk(order)}},
        )
        .get("Item")
    )
    return item


def test_order_events_through_put_events_reach_order_ingestion(stack: RunningStack) -> None:
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    bus = stack.description["functions"]["OrderIngestionFunction"]["environment"]["EVENT_BUS_NAME"]
    response = stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "orders.service",
                "DetailType": "OrderCompleted",
                "Detail": json.dumps(order_completed("order-1", member, batch_size=3)),
            },
            {  # a producer that leaves out EventBusName lands on `default`, routed all the same
                "Source": "orders.service",
                "DetailType": "OrderCompleted",
                "Detail": json.dumps(order_completed("order-2", member)),
            },
        ]
    )
    assert response["FailedEntryCount"] == 0
    first = eventually(lambda: order_item(stack, member, "order-1"))
    assert first["points"]["N"] == "30"
    eventually(lambda: order_item(stack, member, "order-2"))


def test_the_iam_route_ingests_signed_requests_only(stack: RunningStack) -> None:
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    url = f"{stack.http}/v1/events"
    body = json.dumps(
        {"detail-type": "OrderCompleted", "detail": order_completed("order-http", member)}
    ).encode()
    assert http("POST", url, body=body)[::2] == (403, {"message": "Forbidden"})
    status, _, answer = http("POST", url, body=body, headers=signed_headers("POST", url, body))
    assert status == 200, answer
    assert answer["result"]["outcome"] == "credited"
    assert order_item(stack, member, "order-http") is not None
    status, _, answer = http(
        "POST",
        url,
        body=b'{"detail-type": "OrderCompleted"}',
        headers=signed_headers("POST", url, b'{"detail-type": "OrderCompleted"}'),
    )
    assert status in (400, 422), answer


def test_the_daily_digest_runs_on_the_local_stack(stack: RunningStack) -> None:
    """The schedule's function fired through the stack: the index exists on the local table,
    the stream projects the entries, the digest is built and the outbox publishes it."""
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    url = f"{stack.http}/v1/events"
    body = json.dumps(
        {"detail-type": "OrderCompleted", "detail": order_completed("order-digest", member)}
    ).encode()
    status, _, answer = http("POST", url, body=body, headers=signed_headers("POST", url, body))
    assert status == 200, answer
    stack.wait_idle()  # the stream's consumers wrote the ledger entries
    today = datetime.now(UTC).date()
    tomorrow = f"{(today + timedelta(days=1)).isoformat()}T00:30:00Z"
    outcome = request(
        stack.aws, "/_local/fire", {"function": "LedgerDigestFunction", "time": tomorrow}
    )
    assert outcome.get("ok"), outcome
    stack.wait_idle()  # the digest items' insertions, published by the outbox
    digests = [
        json.loads(line)["event"]["detail"]
        for line in (stack.state_dir / "events.jsonl").read_text().splitlines()
        if '"LedgerDigestPublished"' in line
    ]
    mine = {d["programId"]: d for d in digests if d["day"] == today.isoformat()}
    assert set(mine) == {"cart-star", "customer-rewards"}
    assert mine["cart-star"]["entryCount"] >= 1
    published = str(stack.state_dir / "events.jsonl")
    verify = ["audit", "verify", "--table", stack.table(), "--quiet", "--published", published]
    assert cli.main(verify) == 0


def test_published_events_become_parquet_rows_in_the_state_folder(stack: RunningStack) -> None:
    """On the local stack event_publisher writes its analytics rows under <state>/analytics
    (the template's Firehose stream is not emulated, and nothing may call AWS): every event in
    events.jsonl is a row there."""
    import duckdb  # noqa: PLC0415

    member = f"shopper-{uuid.uuid4().hex[:8]}"
    url = f"{stack.http}/v1/events"
    body = json.dumps(
        {"detail-type": "OrderCompleted", "detail": order_completed("order-rows", member)}
    ).encode()
    status, _, answer = http("POST", url, body=body, headers=signed_headers("POST", url, body))
    assert status == 200, answer
    stack.wait_idle()
    published = {
        json.loads(line)["event"]["detail"]["eventId"]
        for line in (stack.state_dir / "events.jsonl").read_text().splitlines()
    }
    files = f"{stack.state_dir}/analytics/day=*/*.parquet"
    rows = duckdb.connect().execute(f"SELECT DISTINCT event_id, member_id FROM '{files}'")
    found = rows.fetchall()
    assert {event_id for event_id, _ in found} == published
    assert member in {member_id for _, member_id in found}


def test_the_demo_pays_campaigns_on_the_local_stack(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make demo``, small: its events go through the stack, the campaigns pay out (eco
    bonuses, weekly challenges, round-ups matched for causes) and it says so."""
    assert run_demo(stack.aws, members=2, seed=1, days=21, timeout=240) == 0
    printed = capsys.readouterr().out
    paid = printed.split("Campaigns paid")[1].split("Events routed")[0]
    counts = dict(re.findall(r"^  (\S+(?: \(\w+\))?)\s+(-?\d+)$", paid, re.M))
    assert int(counts["eco_no_cutlery"]) > 0, paid
    assert int(counts["three_orders_week"]) > 0, paid
    assert int(counts["giving (roundUp)"]) > 0, paid
    given, matched = re.findall(r"\$([\d,.]+) given, \$([\d,.]+) matched", paid)[0]
    assert float(given) > 0 and given == matched, paid  # the match budget is far from spent


def test_a_tier_upgrade_becomes_a_message_in_the_members_language(stack: RunningStack) -> None:
    """The whole path on the local stack: the member's preferences through the HTTP API, orders
    that lift them to Gold, the outbox's MemberTierChanged on the bus, the rule's queue, the
    notifier, and the message in German in <state>/notifications.jsonl (never SNS or SES)."""
    member = f"shopper-{uuid.uuid4().hex[:8]}"
    url = f"{stack.http}/v1/me/preferences"
    headers = {
        "authorization": "Bearer " + stack.token("--sub", member),
        "content-type": "application/json",
    }
    body = json.dumps({"locale": "de", "channels": {"push": True, "email": False}}).encode()
    status, _, answer = http("PUT", url, body=body, headers=headers)
    assert status == 200 and answer["locale"] == "de", answer
    ingest = f"{stack.http}/v1/events"
    for number in range(7):  # 7 x 3 = 21 orders, 210 points: Gold
        detail = order_completed(f"order-note-{number}", member, batch_size=3)
        event = json.dumps({"detail-type": "OrderCompleted", "detail": detail}).encode()
        status, _, answer = http(
            "POST", ingest, body=event, headers=signed_headers("POST", ingest, event)
        )
        assert status == 200, answer
    log = stack.state_dir / "notifications.jsonl"

    def message() -> dict[str, Any] | None:
        if not log.exists():
            return None
        mine = [json.loads(line) for line in log.read_text().splitlines() if member in line]
        return mine[0] if mine else None

    written = eventually(message, timeout=60)
    assert (written["channel"], written["locale"]) == ("push", "de")
    assert written["text"] == "Du bist jetzt Gold (vorher: keine)."
    stack.wait_idle()
    assert len([line for line in log.read_text().splitlines() if member in line]) == 1
