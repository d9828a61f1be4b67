"""The local stack end to end, on a fixture template (fixtures/templates/local_stack.yaml).

The stack runs as `samlite serve` in its own process, on free loopback ports, against the
session's DynamoDB Local. Tests drive it only through what a developer uses: the HTTP API, the
EventBridge and SQS endpoints (boto3, the aws CLI), `samlite token`, `samlite fire`, the
table in DynamoDB Local, and `events.jsonl`; then the stack is stopped.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from samlite import cli
from samlite.testing import RunningStack, eventually, http, running_stack, signed_headers

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "templates" / "local_stack.yaml"
REGION = "us-east-1"


# --------------------------------------------------------------------------- helpers


def seen(stack: RunningStack, service: str, key: str) -> dict[str, Any] | None:
    """The event the fixture recorder of `service` stored under `key`."""
    item = (
        stack.client("dynamodb")
        .get_item(TableName=stack.table(), Key={"pk": {"S": f"SEEN#{service}"}, "sk": {"S": key}})
        .get("Item")
    )
    return json.loads(item["event"]["S"]) if item else None


def receive_all(stack: RunningStack, queue_name: str, wait: float = 10) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += got
        if messages and not got:
            break
    return messages


@pytest.fixture(scope="module")
def stack(
    dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("local-stack")
    with running_stack(FIXTURE, state, dynamodb_endpoint, "--async-retry-delay", "0.2") as running:
        yield running
    assert running.process.returncode == 0, running.output.read_text()[-3000:]


# --------------------------------------------------------------------------- HTTP API


def test_jwt_routes_answer_like_the_http_api(stack: RunningStack) -> None:
    url = stack.http
    assert http("GET", f"{url}/me")[::2] == (401, {"message": "Unauthorized"})
    status, headers, _ = http("GET", f"{url}/me", headers={"Authorization": "Bearer nope"})
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]

    token = stack.token("--sub", "member-7")
    before = time.time() * 1000
    status, headers, body = http(
        "GET", f"{url}/me", headers={"Authorization": token, "Cookie": "a=1; b=2"}
    )
    assert status == 200
    assert headers["x-fixture"] == "http"
    assert headers["set-cookie"] == "fixture=1; Path=/"
    assert headers["apigw-requestid"]
    assert body["routeKey"] == "GET /me"
    claims = body["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "member-7"
    assert claims["iss"] == "https://issuer.fixture.test"
    assert claims["aud"] == "fixture-client"
    assert claims["exp"].isdigit()  # the HTTP API passes claims as strings
    assert body["cookies"] == ["a=1", "b=2"]
    assert before - 1000 <= body["timeEpoch"] <= time.time() * 1000
    assert body["service"] == "http"
    assert body["functionName"].endswith("HttpFunction")
    assert 0 < body["remainingMs"] <= 2000

    expired = stack.token("--sub", "member-7", "--ttl", "-60")
    assert http("GET", f"{url}/me", headers={"Authorization": expired})[0] == 401
    foreign = stack.token("--sub", "member-7", "--parameter", "JwtAudience=someone-else")
    assert http("GET", f"{url}/me", headers={"Authorization": foreign})[0] == 401


def test_scopes_route_precedence_and_payload_shapes(stack: RunningStack) -> None:
    url = stack.http
    member = stack.token("--sub", "member-7")
    admin = stack.token("--sub", "admin-1", "--scope", "fixture/admin")
    assert http("GET", f"{url}/admin/things/t-1", headers={"Authorization": member})[::2] == (
        403,
        {"message": "Forbidden"},
    )
    status, _, body = http("GET", f"{url}/admin/things/t%201", headers={"Authorization": admin})
    assert status == 200
    assert body["pathParameters"] == {"thingId": "t 1"}
    assert body["authorizer"]["jwt"]["scopes"] == ["fixture/admin"]

    # A literal route beats {thingId}; a result without statusCode is a 200 JSON body.
    assert http("GET", f"{url}/things/plain")[::2] == (200, {"plain": True})
    # Methods no route takes, the standard library's unknown ones included: the gateway's 404.
    for method in ("TRACE", "QUERY", "PATCH"):
        assert http(method, f"{url}/things/plain")[::2] == (404, {"message": "Not Found"}), method
    assert http("GET", f"{url}/things/other")[0] == 401

    status, _, body = http("POST", f"{url}/public/a/b?x=1&x=2&y=", body=b'{"hello": 1}')
    assert status == 201
    assert body["routeKey"] == "ANY /public/{proxy+}"
    assert body["pathParameters"] == {"proxy": "a/b"}
    assert body["query"] == {"x": "1,2", "y": ""}
    assert body["body"] == '{"hello": 1}'

    assert http("GET", f"{url}/nowhere")[::2] == (404, {"message": "Not Found"})
    assert http("DELETE", f"{url}/me")[0] == 404
    assert http("GET", f"{url}/public/boom")[::2] == (500, {"message": "Internal Server Error"})
    assert http("GET", f"{url}/public/slow")[::2] == (503, {"message": "Service Unavailable"})
    assert http("GET", f"{url}/things/plain")[0] == 200  # a fresh environment after the timeout


def raw_http(stack: RunningStack, target: str, extra: str = "") -> tuple[bytes, bytes]:
    """A GET written on the socket: the response's head and body as they came."""
    port = int(stack.http.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return head, body


def test_a_function_cannot_split_the_local_http_response(stack: RunningStack) -> None:
    head, body = raw_http(stack, "/public/reflect?value=fine&cookie=" + quote("c=1; Path=/"))
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nx-reflected: fine\r\n" in head and b"\r\nSet-Cookie: c=1; Path=/\r\n" in head
    for query in (
        "value=" + quote("1\r\nSet-Cookie: evil=1"),
        "value=" + quote("1\nSet-Cookie: evil=1"),
        "name=" + quote("x-a\r\nSet-Cookie: evil=1") + "&value=1",
        "cookie=" + quote("c=1\r\nSet-Cookie: evil=1"),
    ):
        head, body = raw_http(stack, f"/public/reflect?{query}")
        assert head.startswith(b"HTTP/1.1 500 "), query
        assert json.loads(body) == {"message": "Internal Server Error"}, query
        assert b"evil" not in head and b"x-reflected" not in head, query
        assert head.count(b"\r\n") == len(head.splitlines()) - 1  # no bare CR or LF


def test_a_token_cannot_write_headers_through_www_authenticate(stack: RunningStack) -> None:
    def segment(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    forged = ".".join(
        [
            segment({"alg": 'none"\r\nSet-Cookie: evil=1\r\nx-injected: "1', "typ": "JWT"}),
            segment({"sub": "x"}),
            "",
        ]
    )
    head, body = raw_http(stack, "/me", f"Authorization: Bearer {forged}\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body) == {"message": "Unauthorized"}
    lines = head.split(b"\r\n")
    assert not any(line.lower().startswith((b"set-cookie", b"x-injected")) for line in lines)
    (challenge,) = [line for line in lines if line.lower().startswith(b"www-authenticate:")]
    assert b'error="invalid_token"' in challenge
    assert b"\r" not in challenge and b"\n" not in challenge and challenge.count(b'"') == 6


def test_iam_routes_need_a_sigv4_signature(stack: RunningStack) -> None:
    url = f"{stack.http}/service"
    body = b'{"ping": true}'
    assert http("POST", url, body=body)[::2] == (403, {"message": "Forbidden"})
    status, _, answer = http("POST", url, body=body, headers=signed_headers("POST", url, body))
    assert status == 201
    assert answer["authorizer"]["iam"]["accessKey"] == "AKIDLOCALTEST"


# --------------------------------------------------------------------------- EventBridge


def test_put_events_routes_by_the_template_rules(stack: RunningStack) -> None:
    events = stack.client("events")
    bus = "fixture-test"

    def entry(key: str, size: int, **extra: Any) -> dict[str, Any]:
        return {
            "Source": "tests.things",
            "DetailType": "ThingHappened",
            "Detail": json.dumps({"key": key, "size": size}),
            **extra,
        }

    response = events.put_events(
        Entries=[
            entry("big", 5, EventBusName=bus, Time=datetime(2026, 11, 23, 11, 20, tzinfo=UTC)),
            entry("small", 1, EventBusName=bus),
            entry("on-default", 7),  # no EventBusName: the default bus reaches the app's rules
            entry(
                "arn-bus", 8, EventBusName=f"arn:aws:events:{REGION}:000000000000:event-bus/{bus}"
            ),
            {"Source": "tests.things", "DetailType": "ThingHappened", "Detail": "[1]"},
            entry("nowhere", 9, EventBusName="no-such-bus"),
        ]
    )
    assert response["FailedEntryCount"] == 2
    errors = [item.get("ErrorCode") for item in response["Entries"]]
    assert errors == [None, None, None, None, "MalformedDetail", "ResourceNotFoundException"]

    big = eventually(lambda: seen(stack, "recorder", "big"))
    assert big["time"] == "2026-11-23T11:20:00Z"
    assert big["detail-type"] == "ThingHappened"
    assert big["id"] == response["Entries"][0]["EventId"]
    eventually(lambda: seen(stack, "recorder", "on-default"))
    eventually(lambda: seen(stack, "recorder", "arn-bus"))
    stack.wait_idle()
    assert seen(stack, "recorder", "small") is None  # size > 2 only

    with pytest.raises(ClientError) as too_many:
        events.put_events(Entries=[entry(str(i), 3, EventBusName=bus) for i in range(11)])
    assert too_many.value.response["Error"]["Code"] == "ValidationException"


def test_published_events_are_printed_logged_and_routed(stack: RunningStack) -> None:
    detail = {"key": "pub-1", "size": 3, "publish": True, "thing": "lamp"}
    stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": "fixture-test",
                "Source": "tests.things",
                "DetailType": "ThingHappened",
                "Detail": json.dumps(detail),
            }
        ]
    )
    received = eventually(lambda: seen(stack, "subscriber", "published-pub-1"))
    assert received["source"] == "fixture.recorder"
    assert received["detail"] == {"key": "published-pub-1", "thing": "lamp"}
    log = Path(stack.description["eventsLog"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    published = [line for line in lines if line["event"]["detail"].get("key") == "published-pub-1"]
    assert len(published) == 1
    assert published[0]["publishedBy"] == "RecorderFunction"
    assert published[0]["routedTo"] == ["SubscriberFunction"]
    assert published[0]["bus"] == "fixture-test"
    # Events put by others (tests, producers) are routed but not logged as published.
    assert all(line["event"]["source"] == "fixture.recorder" for line in lines)
    eventually(lambda: "event ThingRecorded from RecorderFunction" in stack.output.read_text())


def test_aws_cli_put_events_and_input_path(stack: RunningStack) -> None:
    aws = shutil.which("aws")
    if aws is None:
        pytest.skip("the aws CLI is not installed")
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "cli",
        "AWS_SECRET_ACCESS_KEY": "cli",
        "AWS_DEFAULT_REGION": REGION,
    }
    entries = [{"Source": "tests.cli", "DetailType": "Ping", "Detail": '{"key": "ping-1"}'}]
    result = subprocess.run(
        [
            aws,
            "events",
            "put-events",
            "--endpoint-url",
            stack.aws,
            "--entries",
            json.dumps(entries),
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["FailedEntryCount"] == 0
    # The rule on the default bus hands the function only `$.detail` (InputPath).
    assert eventually(lambda: seen(stack, "subscriber", "ping-1")) == {"key": "ping-1"}


def test_rule_targets_a_queue_through_an_input_transformer(stack: RunningStack) -> None:
    stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": "fixture-test",
                "Source": "tests.audit",
                "DetailType": "AuditTrail",
                "Detail": json.dumps({"who": "alice"}),
            }
        ]
    )
    queue = next(name for name in stack.description["queues"].values() if "AuditQueue" in name)
    messages = receive_all(stack, queue.rsplit("/", 1)[-1])
    bodies = [json.loads(message["Body"]) for message in messages]
    assert len(bodies) == 1
    assert bodies[0]["audited"] == "alice"
    assert bodies[0]["rule"].endswith("-AuditRule")


def test_async_failures_are_retried_then_sent_to_the_destination(stack: RunningStack) -> None:
    stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": "fixture-test",
                "Source": "tests.things",
                "DetailType": "ThingHappened",
                "Detail": json.dumps({"key": "explodes", "size": 4, "explode": True}),
            }
        ]
    )

    def failure_record() -> dict[str, Any] | None:
        for message in receive_all(stack, "fixture-test-failures", wait=2):
            record: dict[str, Any] = json.loads(message["Body"])
            if record.get("requestPayload", {}).get("detail", {}).get("key") == "explodes":
                return record
        return None

    record = eventually(failure_record, timeout=30)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # MaximumRetryAttempts: 1
    assert record["responsePayload"]["errorMessage"] == "exploded on purpose"
    assert seen(stack, "recorder", "explodes") is None


# --------------------------------------------------------------------------- SQS


def test_sqs_partial_batch_failures_and_dead_letter_queue(stack: RunningStack) -> None:
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName="fixture-test-work")["QueueUrl"]
    bodies = [{"id": f"job-{i}"} for i in range(4)] + [{"id": "job-poison", "poison": True}]
    response = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(bodies)],
    )
    assert len(response["Successful"]) == 5

    ddb = stack.client("dynamodb")

    def processed() -> list[dict[str, Any]] | None:
        items = ddb.query(
            TableName=stack.table(),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "SQS"}},
        )["Items"]
        return items if len(items) == 4 else None

    items = eventually(processed)
    assert {item["sk"]["S"] for item in items} == {f"job-{i}" for i in range(4)}
    # (A message can be received twice if a cold start outlasts the 5 s visibility timeout;
    # 1 s sent every message to the dead-letter queue on a loaded machine.)
    assert all(1 <= int(item["batchSize"]["N"]) <= 5 for item in items)

    # The poison message fails alone; after maxReceiveCount (2) receives it is in the DLQ.
    dead = receive_all(stack, "fixture-test-work-dlq", wait=30)
    assert [json.loads(m["Body"]) for m in dead] == [{"id": "job-poison", "poison": True}]
    assert dead[0]["Attributes"]["DeadLetterQueueSourceArn"].endswith(":fixture-test-work")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"

    with pytest.raises(ClientError) as missing:
        sqs.get_queue_url(QueueName="no-such-queue")
    assert "NonExistentQueue" in str(missing.value) or "QueueDoesNotExist" in str(missing.value)


# --------------------------------------------------------------------------- streams


def test_stream_records_arrive_in_order_and_failures_go_to_the_destination(
    stack: RunningStack,
) -> None:
    ddb = stack.client("dynamodb")
    table = stack.table()
    for version in range(1, 7):
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": "ITEM#a"}, "sk": {"S": "A"}, "version": {"N": str(version)}},
        )

    def log_of(pk: str) -> dict[str, Any] | None:
        key = {"pk": {"S": pk}, "sk": {"S": "LOG"}}
        item: dict[str, Any] | None = ddb.get_item(TableName=table, Key=key).get("Item")
        return item

    def complete() -> dict[str, Any] | None:
        item = log_of("LOG#ITEM#a")
        return item if item and len(item["versions"]["L"]) == 6 else None

    log = eventually(complete)
    assert [int(v["N"]) for v in log["versions"]["L"]] == [1, 2, 3, 4, 5, 6]
    assert [e["S"] for e in log["events"]["L"]] == ["INSERT"] + ["MODIFY"] * 5

    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": "ITEM#bad"}, "sk": {"S": "B"}, "fail": {"BOOL": True}},
    )

    def failure_record() -> dict[str, Any] | None:
        for message in receive_all(stack, "fixture-test-failures", wait=2):
            record: dict[str, Any] = json.loads(message["Body"])
            if "DDBStreamBatchInfo" in record:
                return record
        return None

    record = eventually(failure_record, timeout=30)
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # MaximumRetryAttempts: 1
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    # The shard moves on past the skipped record.
    ddb.put_item(
        TableName=table, Item={"pk": {"S": "ITEM#after"}, "sk": {"S": "C"}, "version": {"N": "1"}}
    )
    eventually(lambda: log_of("LOG#ITEM#after"))


# --------------------------------------------------------------------------- schedules


def test_fire_a_schedule_with_an_explicit_time(stack: RunningStack) -> None:
    def fire(*arguments: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["fire", *arguments, "--endpoint", stack.aws])
        return code, out.getvalue()

    code, printed = fire(
        "RecorderFunction", "--schedule", "Hourly", "--time", "2026-03-01T05:00:00Z"
    )
    assert code == 0, printed
    outcome = json.loads(printed)
    assert outcome["ok"] is True
    event = seen(stack, "recorder", outcome["result"]["recorded"])
    assert event is not None
    assert (event["detail-type"], event["source"], event["time"]) == (
        "Scheduled Event",
        "aws.events",
        "2026-03-01T05:00:00Z",
    )
    assert event["resources"][0].endswith("RecorderFunctionHourly")

    # EventBridge Scheduler's context attributes are filled into the schedule's Input.
    code, printed = fire("recorder", "--schedule", "Nightly", "--time", "2026-03-02T01:30:00+00:00")
    assert code == 0, printed
    nightly = seen(stack, "recorder", "nightly-2026-03-02T01:30:00Z")
    assert nightly == {"key": "nightly-2026-03-02T01:30:00Z", "at": "2026-03-02T01:30:00Z"}

    with pytest.raises(SystemExit, match="several schedules"):
        fire("RecorderFunction")
    with pytest.raises(SystemExit, match="no such schedule"):
        fire("QueueFunction")


def test_the_stack_describes_itself(stack: RunningStack) -> None:
    description = stack.control("/_local/stack")
    routes = {route["route"]: route for route in description["routes"]}
    assert routes["GET /admin/things/{thingId}"]["scopes"] == ["fixture/admin"]
    assert any("NodeFunction" in warning for warning in description["warnings"])
    stats = stack.control("/_local/stats")
    assert stats["functions"]["HttpFunction"]["invocations"] >= 1
    assert (stack.state_dir / "logs" / "HttpFunction.log").exists()
