"""Who may call each route: the table below names, for every route in template.yaml, the caller
it is for (a member's token, an administrator's token, a signed service request), and the test
proves, through the local stack's gateway (which authorises as API Gateway does), that every
other caller is refused before the function runs, with the answer docs/openapi.json documents.

A route added to the template without a line here fails the first test."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samlite.template import read_stack
from samlite.testing import RunningStack, http, running_stack, signed_headers

from infra.ddb_local import DynamoDBLocal

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())

MEMBER, ADMIN, SERVICE = "member", "admin", "service"
ROUTES = {
    "GET /v1/me": MEMBER,
    "GET /v1/me/ledger": MEMBER,
    "GET /v1/me/perks": MEMBER,
    "GET /v1/me/challenges": MEMBER,
    "GET /v1/me/referral": MEMBER,
    "POST /v1/me/donations": MEMBER,
    "GET /v1/me/donations": MEMBER,
    "GET /v1/me/redemptions": MEMBER,
    "POST /v1/me/redemptions": MEMBER,
    "DELETE /v1/me/redemptions/{redemptionId}": MEMBER,
    "GET /v1/me/preferences": MEMBER,
    "PUT /v1/me/preferences": MEMBER,
    "GET /v1/admin/members/{memberId}": ADMIN,
    "GET /v1/admin/members/{memberId}/export": ADMIN,
    "POST /v1/admin/members/{memberId}/erasure": ADMIN,
    "POST /v1/admin/members/{memberId}/adjustments": ADMIN,
    "PUT /v1/admin/members/{memberId}/tier-override": ADMIN,
    "DELETE /v1/admin/members/{memberId}/tier-override": ADMIN,
    "POST /v1/admin/ratings/{ratingId}/exclusion": ADMIN,
    "DELETE /v1/admin/ratings/{ratingId}/exclusion": ADMIN,
    "DELETE /v1/admin/customers/{customerId}/tip-bait-flag": ADMIN,
    "GET /v1/admin/stats": ADMIN,
    "GET /v1/members/{memberId}/entitlements": SERVICE,
    "GET /v1/members/{memberId}/badge": SERVICE,
    "GET /v1/causes": SERVICE,
    "POST /v1/members/{memberId}/holds": SERVICE,
    "DELETE /v1/members/{memberId}/holds/{orderId}": SERVICE,
    "POST /v1/events": SERVICE,
    "POST /v1/events/fuel-purchases": SERVICE,
    "POST /v1/events/ratings": SERVICE,
    "POST /v1/partner-codes/{code}/redemption": SERVICE,
}
# Who gets past the gateway on a route for each kind of caller (an administrator's token is a
# valid token too: the member routes answer them about their own membership).
ADMITS = {
    MEMBER: {"member", "admin"},
    ADMIN: {"admin"},
    SERVICE: {"service"},
}
CALLERS = ("anonymous", "member", "admin", "service", "expired", "forged")
GATEWAY_REFUSALS = ({"message": "Unauthorized"}, {"message": "Forbidden"})


def test_every_route_of_the_template_has_its_caller() -> None:
    model = read_stack(TEMPLATE)
    kinds = {
        route.route_key: (
            SERVICE
            if route.auth == "AWS_IAM"
            else ADMIN
            if "loyalty/admin" in route.scopes
            else MEMBER
            if route.auth == "JWT"
            else "open"
        )
        for route in model.routes
    }
    assert kinds == ROUTES


@pytest.fixture(scope="module")
def stack(
    ddb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    state = tmp_path_factory.mktemp("route-auth")
    with running_stack(TEMPLATE, state, ddb_local.endpoint) as running:
        yield running
    assert running.process.returncode == 0, running.output.read_text()[-3000:]


def _headers(
    stack: RunningStack, caller: str, method: str, url: str, body: bytes
) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if caller == "member":
        headers["authorization"] = "Bearer " + stack.token("--sub", "route-member")
    elif caller == "admin":
        token = stack.token("--sub", "route-admin", "--scope", "loyalty/admin")
        headers["authorization"] = "Bearer " + token
    elif caller == "expired":
        headers["authorization"] = "Bearer " + stack.token("--sub", "late", "--ttl", "-60")
    elif caller == "forged":
        good = stack.token("--sub", "route-member").split(".")
        claims = json.dumps({"sub": "someone-else", "aud": "x", "exp": 9999999999}).encode()
        forged = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
        headers["authorization"] = "Bearer " + ".".join((good[0], forged, good[2]))
    elif caller == "service":
        headers.update(signed_headers(method, url, body))
    return headers


def _documented(route: str, status: int) -> dict[str, Any] | None:
    method, path = route.split(" ", 1)
    operation = OPENAPI["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    answer: dict[str, Any] = operation["responses"].get(str(status), {})
    return answer


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_only_the_routes_caller_gets_past_the_gateway(stack: RunningStack, route: str) -> None:
    method, path = route.split(" ", 1)
    url = stack.http + path.replace("{", "x").replace("}", "")
    body = b"{}" if method in ("POST", "DELETE") else b""
    admitted = ADMITS[ROUTES[route]]
    for caller in CALLERS:
        headers = _headers(stack, caller, method, url, body)
        status, got, answer = http(method, url, headers=headers, body=body or None)
        refused = status in (401, 403) and answer in GATEWAY_REFUSALS
        if caller in admitted:
            assert not refused, (route, caller, status, answer)
            assert status < 500, (route, caller, status, answer)
            continue
        assert refused, (route, caller, status, answer)
        assert got.get("content-type", "").startswith("application/json"), (route, got)
        # A JWT route refuses a caller without a valid token with 401; a missing scope and an
        # unsigned service request are 403, as API Gateway answers.
        expected = (
            403
            if ROUTES[route] == SERVICE or (ROUTES[route] == ADMIN and caller == "member")
            else 401
        )
        assert status == expected, (route, caller, status, answer)
        documented = _documented(route, status)
        assert documented is not None, (route, status)
        schema = json.dumps(documented.get("content", {}))
        assert "GatewayError" in schema, (route, status, documented)


BAD_BODIES = {
    "not UTF-8": b"\xff\xfe\x00{",
    "not JSON": b"points=500",
    "truncated JSON": b'{"orderId": "o1", ',
    "a JSON array": b"[1, 2, 3]",
    "a JSON string": b'"hello"',
    "deeply nested": b"[" * 5000 + b"]" * 5000,
    "nested within the parser's depth": b'{"detail": ' + b"[" * 900 + b"]" * 900 + b"}",
    "an event nested within it": (
        b'{"detail-type": "OrderCompleted", "source": "t", "detail": {"orderId": '
        + b"[" * 900
        + b"]" * 900
        + b"}}"
    ),
}


@pytest.mark.parametrize("route", sorted(r for r in ROUTES if r.split(" ", 1)[0] == "POST"))
def test_a_body_no_route_can_read_is_a_4xx_naming_why(stack: RunningStack, route: str) -> None:
    method, path = route.split(" ", 1)
    url = stack.http + path.replace("{", "x").replace("}", "")
    caller = {MEMBER: "member", ADMIN: "admin", SERVICE: "service"}[ROUTES[route]]
    for name, body in BAD_BODIES.items():
        headers = _headers(stack, caller, method, url, body)
        status, got, answer = http(method, url, headers=headers, body=body)
        assert 400 <= status < 500, (route, name, status, answer)
        assert got.get("content-type", "").startswith("application/json"), (route, name)
        error = answer["error"]
        assert error["code"] and error["message"], (route, name, answer)
        if _documented(route, status) is not None:
            assert _documented(route, status), (route, name, status, "not documented")
