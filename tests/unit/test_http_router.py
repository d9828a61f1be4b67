"""shared.http_api's router on a toy API: dispatch, validation as Powertools' enable_validation
did it (path, query, header, body; 422 naming the field, 400 for a body that is not a JSON
object), the answers of a route that returns a model, and the OpenAPI document Powertools
generates from the same routes. The functions' own routes are covered by their tests."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict

from shared.domain.errors import NotFound
from shared.http_api import (
    Body,
    Header,
    HttpApi,
    Path,
    Query,
    Response,
    answer_errors,
    json_response,
    require_object_body,
    resolve,
)


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    size: int = 1


class Answer(BaseModel):
    model_config = ConfigDict(defer_build=True)

    thing_id: str
    limit: int


api = HttpApi()


@api.get("/v1/things/<thingId>", summary="A thing")
def get_thing(
    thing_id: Annotated[str, Path(alias="thingId", pattern=r"^t-\d+$")],
    limit: Annotated[int, Query(ge=1, le=10)] = 5,
) -> Answer:
    if thing_id == "t-0":
        raise NotFound("no such thing", field="thingId")
    return Answer(thing_id=thing_id, limit=limit)


@api.post("/v1/things", summary="Make a thing", status_code=201)
def post_thing(
    body: Thing, key: Annotated[str, Header(alias="Idempotency-Key", min_length=3)]
) -> Response:
    require_object_body(api)
    return json_response(201, json.dumps({"name": body.name, "key": key}))


@api.delete("/v1/things/<thingId>", summary="Drop a thing")
def delete_thing(
    thing_id: Annotated[str, Path(alias="thingId")],
    body: Annotated[Thing | None, Body()] = None,
) -> Response:
    return json_response(200, json.dumps({"thingId": thing_id, "body": body is not None}))


answer_errors(api)


def request(
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    stage: str = "$default",
) -> tuple[int, Any]:
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path if stage == "$default" else f"/{stage}{path}",
        "headers": {"content-type": "application/json", **(headers or {})},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": method, "path": path}, "stage": stage},
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }
    answer = resolve(api, event, None)
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])


def test_a_route_returning_a_model_answers_its_json_by_alias_with_validated_parameters() -> None:
    assert request("GET", "/v1/things/t-7", query={"limit": "3"}) == (
        200,
        {"thing_id": "t-7", "limit": 3},
    )
    assert request("GET", "/v1/things/t-7") == (200, {"thing_id": "t-7", "limit": 5})
    assert request("GET", "/v1/things/t-7", stage="dev") == (200, {"thing_id": "t-7", "limit": 5})


@pytest.mark.parametrize(("raw", "meant"), [("t-7", "t-7"), ("t%2D7", "t-7"), ("%74-7", "t-7")])
def test_a_percent_encoded_path_parameter_reaches_the_handler_decoded(raw: str, meant: str) -> None:
    # Found by fuzzing (bench/fuzz.py): an id with ``@`` or ``+``, sent encoded, was refused.
    assert request("GET", f"/v1/things/{raw}") == (200, {"thing_id": meant, "limit": 5})


@pytest.mark.parametrize(
    ("method", "path", "query", "field"),
    [
        ("GET", "/v1/things/x-1", None, "thingId"),
        ("GET", "/v1/things/t-1", {"limit": "11"}, "limit"),
        ("GET", "/v1/things/t-1", {"limit": "many"}, "limit"),
    ],
)
def test_a_bad_parameter_is_a_422_naming_it(
    method: str, path: str, query: dict[str, str] | None, field: str
) -> None:
    status, body = request(method, path, query=query)
    assert status == 422 and body["error"]["code"] == "invalid_input"
    assert body["error"]["field"] == field


def test_every_problem_is_counted_and_the_first_named() -> None:
    status, body = request("GET", "/v1/things/x-1", query={"limit": "0"})
    assert status == 422 and body["error"]["field"] == "thingId"
    assert body["error"]["message"].endswith("(and 1 more problem)")


def test_the_body_and_header_are_validated() -> None:
    ok = {"Idempotency-Key": "k-123"}
    assert request("POST", "/v1/things", {"name": "a"}, headers=ok) == (
        201,
        {"name": "a", "key": "k-123"},
    )
    status, body = request("POST", "/v1/things", {"name": "a"})
    assert status == 422 and body["error"]["field"] == "Idempotency-Key"
    status, body = request("POST", "/v1/things", {"name": "a", "colour": "red"}, headers=ok)
    assert status == 422 and body["error"]["field"] == "colour"
    status, body = request("POST", "/v1/things", {"size": 2}, headers=ok)
    assert status == 422 and body["error"]["field"] == "name"


@pytest.mark.parametrize("body", ["{not json", None, "[]", '[{"name": "a"}]', '"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(body: str | None) -> None:
    status, answer = request("POST", "/v1/things", body, headers={"Idempotency-Key": "k-123"})
    assert status == 400 and answer["error"]["code"] == "malformed_request"


def test_an_optional_body_may_be_absent() -> None:
    assert request("DELETE", "/v1/things/t-1") == (200, {"thingId": "t-1", "body": False})
    assert request("DELETE", "/v1/things/t-1", {"name": "a"}) == (
        200,
        {"thingId": "t-1", "body": True},
    )


def test_domain_errors_are_answered_and_unknown_routes_are_404() -> None:
    status, body = request("GET", "/v1/things/t-0")
    assert status == 404 and body["error"]["field"] == "thingId"
    assert request("GET", "/v1/nothing") == (404, {"statusCode": 404, "message": "Not found"})
    assert request("PUT", "/v1/things/t-1") == (404, {"statusCode": 404, "message": "Not found"})


def test_an_exception_without_an_answer_is_raised() -> None:
    broken = HttpApi()

    @broken.get("/boom")
    def boom() -> Response:
        raise RuntimeError("boom")

    event = {"rawPath": "/boom", "requestContext": {"http": {"method": "GET"}}}
    with pytest.raises(RuntimeError, match="boom"):
        broken.resolve(event, None)


def test_powertools_documents_the_same_routes() -> None:
    schema = api.get_openapi_schema(title="t", version="1").model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    thing = schema["paths"]["/v1/things/{thingId}"]["get"]
    parameters = {parameter["name"]: parameter for parameter in thing["parameters"]}
    assert parameters["thingId"]["in"] == "path"
    assert parameters["thingId"]["schema"]["pattern"] == r"^t-\d+$"
    assert parameters["limit"]["in"] == "query" and parameters["limit"]["schema"]["maximum"] == 10
    post = schema["paths"]["/v1/things"]["post"]
    assert post["parameters"][0]["name"].lower() == "idempotency-key"
    assert post["parameters"][0]["in"] == "header"
    assert "requestBody" in post


def test_the_router_module_does_not_import_powertools_event_handler() -> None:
    """The point of the router: its import (and the functions') leaves Powertools' resolver
    package alone (checked in a fresh interpreter, where nothing else imported it)."""
    import subprocess  # noqa: PLC0415

    code = (
        "import sys, shared.http_api; "
        "sys.exit('aws_lambda_powertools.event_handler' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert done.returncode == 0, done.stderr
