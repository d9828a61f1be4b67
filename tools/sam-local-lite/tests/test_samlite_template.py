"""The local stack's parts that need no server: reading templates, event patterns, schedule
expressions, the JWT authorizer and SigV4 checks."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from samlite.auth import AuthError, load_key_pair, mint_token, parse_sigv4, verify_jwt
from samlite.bus import json_path, parse_time
from samlite.patterns import PatternError, matches
from samlite.schedules import Schedule, ScheduleError, ScheduleRunner
from samlite.template import ScheduleSpec, read_stack

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE = FIXTURES / "templates" / "local_stack.yaml"


# --------------------------------------------------------------------------- templates


def test_fixture_template_is_read_generically() -> None:
    model = read_stack(FIXTURE, stack_name="t", services_url="http://127.0.0.1:4001")

    assert set(model.functions) == {
        "HttpFunction",
        "RecorderFunction",
        "SubscriberFunction",
        "QueueFunction",
        "StreamFunction",
    }
    assert any("NodeFunction" in warning and "nodejs" in warning for warning in model.warnings)
    recorder = model.functions["RecorderFunction"]
    assert recorder.environment == {
        "TABLE_NAME": "t-Table",
        "EVENT_BUS_NAME": "fixture-test",
        "STAGE": "test",
        "POWERTOOLS_SERVICE_NAME": "recorder",
    }
    assert recorder.code_dir == FIXTURES / "functions" / "fixture_recorder"
    assert recorder.max_retry_attempts == 1
    assert recorder.on_failure == "arn:aws:sqs:us-east-1:000000000000:fixture-test-failures"
    assert model.functions["HttpFunction"].timeout == 2.0
    assert model.functions["QueueFunction"].timeout == 5.0  # from Globals

    assert "NeverCreatedQueue" not in model.queues  # its Condition is false
    work = model.queues["WorkQueue"]
    assert work.url == "http://127.0.0.1:4001/000000000000/fixture-test-work"
    assert work.dead_letter_arn == model.queues["WorkDeadLetterQueue"].arn
    assert (work.visibility_timeout, work.max_receive_count) == (5, 2)
    assert model.queues["AuditQueue"].name == "t-AuditQueue"

    routes = {route.route_key: route for route in model.routes}
    assert set(routes) == {
        "GET /me",
        "GET /things/{thingId}",
        "GET /things/plain",
        "GET /admin/things/{thingId}",
        "ANY /public/{proxy+}",
        "POST /service",
    }
    assert routes["GET /me"].auth == "JWT"
    authorizer = routes["GET /me"].authorizer
    assert authorizer is not None
    assert authorizer.issuer == "https://issuer.fixture.test"
    assert authorizer.audience == ("fixture-client", "other-client")
    assert routes["GET /admin/things/{thingId}"].scopes == ("fixture/admin",)
    assert routes["GET /things/plain"].auth == "NONE"
    assert routes["POST /service"].auth == "AWS_IAM"

    rules = {rule.source: rule for rule in model.rules}
    things = rules["RecorderFunction.Things"]
    assert things.bus == "fixture-test"
    # `source: !If [HasAllowedSources, ..., !Ref AWS::NoValue]` disappears with the default.
    assert things.pattern == {
        "detail-type": ["ThingHappened"],
        "detail": {"size": [{"numeric": [">", 2]}]},
    }
    assert rules["SubscriberFunction.OnDefaultBus"].bus == "default"
    assert rules["SubscriberFunction.OnDefaultBus"].targets[0].input_path == "$.detail"
    audit = rules["AuditRule"]
    assert audit.targets[0].arn == model.queues["AuditQueue"].arn

    schedules = {schedule.event_name: schedule for schedule in model.schedules}
    assert schedules["Hourly"].kind == "events"
    assert schedules["Hourly"].expression == "rate(1 hour)"
    assert schedules["Nightly"].kind == "scheduler"
    assert schedules["Nightly"].timezone == "Europe/Paris"

    mappings = {mapping.source: mapping for mapping in model.mappings}
    stream = mappings["StreamFunction.Items"]
    assert (stream.kind, stream.source_id, stream.starting_position) == (
        "dynamodb",
        "Table",
        "TRIM_HORIZON",
    )
    assert stream.filters == ({"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "ITEM#"}]}}}},)
    assert stream.on_failure == model.queues["FailureQueue"].arn
    queue = mappings["QueueFunction.Work"]
    assert (queue.kind, queue.batch_size, queue.report_batch_item_failures) == ("sqs", 5, True)


def test_parameter_overrides_reach_conditions_and_lists() -> None:
    model = read_stack(FIXTURE, parameters={"AllowedSources": "a.one, b.two", "Stage": "dev"})

    rule = next(rule for rule in model.rules if rule.source == "RecorderFunction.Things")
    assert rule.pattern["source"] == ["a.one", "b.two"]
    assert rule.bus == "fixture-dev"
    assert model.functions["RecorderFunction"].environment["STAGE"] == "dev"


def test_loops_reach_the_local_stack(tmp_path: Path) -> None:
    recorder = FIXTURES / "functions" / "fixture_recorder"
    template = tmp_path / "template.yaml"
    template.write_text(
        f"""
Transform:
  - AWS::LanguageExtensions
  - AWS::Serverless-2016-10-31
Parameters:
  Feeds:
    Type: CommaDelimitedList
    Default: alpha,beta
Globals:
  Function:
    Handler: app.lambda_handler
    Runtime: python3.13
    Timeout: 7
Resources:
  Fn::ForEach::FeedQueues:
    - Feed
    - !Ref Feeds
    - ${{Feed}}Queue:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: !Sub loop-${{Feed}}
  Fn::ForEach::FromStack:
    - Name
    - !GetAtt Elsewhere.Names
    - ${{Name}}Queue:
        Type: AWS::SQS::Queue
  RecorderFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {recorder}
      Events:
        Fn::ForEach::FeedEvents:
          - Feed
          - !Ref Feeds
          - ${{Feed}}Messages:
              Type: SQS
              Properties:
                Queue: !GetAtt [!Sub "${{Feed}}Queue", Arn]
                BatchSize: 3
""",
        encoding="utf-8",
    )

    model = read_stack(template)

    assert set(model.queues) == {"alphaQueue", "betaQueue"}
    assert model.queues["betaQueue"].name == "loop-beta"
    function = model.functions["RecorderFunction"]
    assert (function.handler, function.timeout) == ("app.lambda_handler", 7.0)
    mappings = {mapping.source: mapping for mapping in model.mappings}
    assert set(mappings) == {"RecorderFunction.alphaMessages", "RecorderFunction.betaMessages"}
    assert (
        mappings["RecorderFunction.betaMessages"].source_id,
        mappings["RecorderFunction.betaMessages"].batch_size,
    ) == ("betaQueue", 3)
    assert len(model.warnings) == 1
    assert "Resources.Fn::ForEach::FromStack" in model.warnings[0]
    assert "left out" in model.warnings[0]

    overridden = read_stack(template, parameters={"Feeds": "gamma"})
    assert set(overridden.queues) == {"gammaQueue"}
    assert [mapping.source for mapping in overridden.mappings] == ["RecorderFunction.gammaMessages"]


# --------------------------------------------------------------------------- patterns

EVENT: dict[str, Any] = {
    "source": "orders.service",
    "detail-type": "OrderCompleted",
    "detail": {
        "batchSize": 3,
        "memberId": "shopper-42",
        "tags": ["peak", "rain"],
        "ip": "10.0.0.7",
        "reason": None,
        "total": {"amount": "40.00"},
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"detail-type": ["OrderCompleted", "OrderCancelled"]}, True),
        ({"detail-type": ["OrderCancelled"]}, False),
        ({"source": [{"prefix": "orders."}]}, True),
        ({"source": [{"suffix": ".service"}]}, True),
        ({"source": [{"prefix": {"equals-ignore-case": "ORDERS."}}]}, True),
        ({"source": [{"anything-but": ["orders.service"]}]}, False),
        ({"source": [{"anything-but": {"prefix": "tips."}}]}, True),
        ({"detail": {"batchSize": [{"numeric": [">", 1, "<=", 3]}]}}, True),
        ({"detail": {"batchSize": [{"numeric": [">", 3]}]}}, False),
        ({"detail": {"batchSize": [3.0]}}, True),
        ({"detail": {"tags": ["rain"]}}, True),
        ({"detail": {"tags": [{"anything-but": "snow"}]}}, True),
        ({"detail": {"memberId": [{"wildcard": "shopper-*"}]}}, True),
        ({"detail": {"memberId": [{"equals-ignore-case": "SHOPPER-42"}]}}, True),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        ({"detail": {"reason": [None]}}, True),
        ({"detail": {"missing": [None]}}, False),
        ({"detail": {"memberId": [{"exists": True}], "missing": [{"exists": False}]}}, True),
        ({"detail": {"missing": [{"exists": True}]}}, False),
        ({"detail": {"total": {"amount": ["40.00"]}}}, True),
        ({"detail": {"nothing": {"deeper": [{"exists": False}]}}}, True),
        ({"detail": {"nothing": {"deeper": ["x"]}}}, False),
        ({"$or": [{"source": ["x"]}, {"detail": {"batchSize": [3]}}]}, True),
        ({"$or": [{"source": ["x"]}, {"detail": {"batchSize": [2]}}]}, False),
    ],
)
def test_event_patterns(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


def test_invalid_patterns_raise() -> None:
    with pytest.raises(PatternError):
        matches({"source": "orders.service"}, EVENT)
    with pytest.raises(PatternError):
        matches({"source": [{"regex": "o.*"}]}, EVENT)


def test_json_paths_and_put_events_times() -> None:
    assert json_path(EVENT, "$.detail.tags[1]") == "rain"
    assert json_path(EVENT, "$") == EVENT
    assert json_path(EVENT, "$.detail.nope.deeper") is None
    noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert parse_time(noon.timestamp()) == noon
    assert parse_time("2026-11-23T12:00:00Z") == noon


# --------------------------------------------------------------------------- schedules

MONDAY = datetime(2026, 11, 23, 10, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("cron(15 0 * * ? *)", "UTC", datetime(2026, 11, 24, 0, 15, tzinfo=UTC)),
        ("cron(0/20 * * * ? *)", "UTC", datetime(2026, 11, 23, 10, 20, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", "Europe/Paris", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
        ("cron(0 12 ? * 1 *)", "UTC", datetime(2026, 11, 29, 12, 0, tzinfo=UTC)),  # Sunday
        ("cron(0 0 L * ? *)", "UTC", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
        ("cron(0 0 1 JAN,JUL ? 2027)", "UTC", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("rate(1 day)", "UTC", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("rate(5 minutes)", "UTC", datetime(2026, 11, 23, 10, 20, tzinfo=UTC)),
        ("at(2026-12-01T00:00:00)", "UTC", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_schedule_expressions(expression: str, timezone: str, expected: datetime) -> None:
    started = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert Schedule(expression, timezone).next_after(MONDAY, started) == expected


@pytest.mark.parametrize(
    "expression",
    ["cron(0 12 * * * *)", "cron(0 12 ? * 2#1 *)", "cron(0 12 15W * ? *)", "daily", "rate(0 days)"],
)
def test_unsupported_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule(expression)


def test_the_runner_fires_due_schedules_and_arms_only_what_it_can() -> None:
    every_minute = ScheduleSpec(
        source="F.Minutely",
        event_name="Minutely",
        kind="events",
        name="minutely",
        arn="arn:aws:events:us-east-1:000000000000:rule/minutely",
        expression="rate(1 minute)",
        timezone="UTC",
        targets=(),
    )
    disabled = replace(every_minute, source="F.Off", enabled=False)
    unsupported = replace(every_minute, source="F.Odd", expression="cron(0 12 ? * 2#1 *)")
    fired: list[tuple[str, datetime]] = []
    reports: list[str] = []
    runner = ScheduleRunner(
        [every_minute, disabled, unsupported],
        lambda spec, when: fired.append((spec.source, when)),
        reports.append,
    )
    assert [spec.source for spec, _ in runner.armed] == ["F.Minutely"]
    assert any("F.Off" in line for line in reports)
    assert any("F.Odd" in line and "not armed" in line for line in reports)
    assert runner.next["F.Minutely"] == runner.started + timedelta(minutes=1)
    due = datetime.now(UTC)
    runner.next["F.Minutely"] = due  # as if a minute had passed
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert fired == [("F.Minutely", due)]
    assert runner.next["F.Minutely"] == runner.started + timedelta(minutes=1)


# --------------------------------------------------------------------------- authorisation


def test_jwt_authorizer_checks(tmp_path: Path) -> None:
    keys = load_key_pair(tmp_path)
    assert load_key_pair(tmp_path) == keys  # generated once, then reused
    issuer, audience = "https://issuer.test", ("client-a", "client-b")

    def token(**overrides: Any) -> str:
        arguments: dict[str, Any] = {"subject": "m-1", "issuer": issuer, "audience": "client-b"}
        arguments.update(overrides)
        return mint_token(keys, **arguments)

    claims, scopes = verify_jwt(keys, f"Bearer {token()}", issuer=issuer, audience=audience)
    assert (claims["sub"], scopes) == ("m-1", [])
    verify_jwt(keys, token(), issuer=issuer, audience=audience)  # "Bearer " is optional
    _, scopes = verify_jwt(
        keys,
        token(scopes=["fixture/admin", "x"]),
        issuer=issuer,
        audience=audience,
        required_scopes=["fixture/admin"],
    )
    assert scopes == ["fixture/admin", "x"]
    failures = {
        "missing": (None, 401),
        "not a jwt": ("Bearer abc.def", 401),
        "expired": (token(ttl_seconds=-5), 401),
        "issuer": (token(issuer="https://other"), 401),
        "audience": (token(audience="client-c"), 401),
        "no scope": (token(), 403),
    }
    for name, (value, status) in failures.items():
        with pytest.raises(AuthError) as caught:
            verify_jwt(
                keys,
                value,
                issuer=issuer,
                audience=audience,
                required_scopes=["fixture/admin"] if name == "no scope" else [],
            )
        assert caught.value.status == status, name
    other_keys = load_key_pair(tmp_path / "other")
    with pytest.raises(AuthError):
        verify_jwt(
            keys,
            mint_token(other_keys, subject="m", issuer=issuer, audience="client-a"),
            issuer=issuer,
            audience=audience,
        )


def test_sigv4_shape_checks() -> None:
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    caller = parse_sigv4(header, now, service="execute-api")
    assert (caller.access_key, caller.region) == ("AKIDEXAMPLE", "us-east-1")
    for bad_header, date in [
        (None, now),
        ("Bearer x", now),
        (header.replace("execute-api", "sqs"), now),
        (header.replace("host;", ""), now),
        (header, "20200101T000000Z"),
    ]:
        with pytest.raises(AuthError) as caught:
            parse_sigv4(bad_header, date, service="execute-api")
        assert caught.value.status == 403
