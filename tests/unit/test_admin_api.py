"""admin_api on a moto table: its routes on the shared HTTP module with validation, and every
bad input answered with a 4xx naming the field (never a 5xx)."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from shared.composition import rating_repository
from shared.programs import load_program
from tests.helpers import FakeContext, load_function
from tests.ratings_support import NOW, World, admin_request, order_completed, rating_submitted

MEMBER, CUSTOMER = "shopper-42", "cust-7"
EXCLUSION = "/v1/admin/ratings/r-1/exclusion"


@pytest.fixture
def admin(moto_table: str) -> ModuleType:
    world = World(load_program("cart-star"), rating_repository(), simple_ledger=True)
    world.deliver(order_completed("o-1", MEMBER, CUSTOMER, NOW - timedelta(hours=3)))
    world.deliver(rating_submitted("r-1", "o-1", MEMBER, CUSTOMER, 5, NOW - timedelta(hours=1)))
    assert world.rejected == []
    return load_function("admin_api")


def call(app: ModuleType, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = app.lambda_handler(admin_request(method, path, **kwargs), FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_exclude_restore_and_the_member_view(admin: ModuleType) -> None:
    status, body = call(admin, "POST", EXCLUSION, body={"reason": "abusive customer"})
    assert status == 200 and body["changed"] is True
    assert body["rating"]["counted"] is False
    assert body["rating"]["exclusions"] == [
        {
            "reason": "admin",
            "by": "admin-7",
            "at": body["rating"]["exclusions"][0]["at"],
            "why": "abusive customer",
        }
    ]
    status, view = call(admin, "GET", f"/v1/admin/members/{MEMBER}")
    assert status == 200
    assert set(view) == {
        "memberId",
        "rating",
        "eligible",
        "eligibilityReason",
        "eligibilityChangedAt",
        "counted",
        "excluded",
        "nextToken",
        "waiting",
        "expired",
        "adminActions",
        "tierOverride",
    }
    assert view["adminActions"] == [] and view["tierOverride"] is None
    assert [r["ratingId"] for r in view["excluded"]] == ["r-1"] and view["counted"] == []
    assert view["nextToken"] is None and view["waiting"] == [] and view["expired"] == []
    status, body = call(admin, "DELETE", EXCLUSION, query={"reason": "appeal accepted"})
    assert status == 200 and body["changed"] is True and body["rating"]["counted"] is True
    status, body = call(admin, "DELETE", EXCLUSION, body={"reason": "again, in a body"})
    assert status == 200 and body["changed"] is False


def test_a_later_page_carries_no_waiting_or_expired(admin: ModuleType) -> None:
    status, first = call(admin, "GET", f"/v1/admin/members/{MEMBER}", query={"limit": "1"})
    assert status == 200 and first["nextToken"]
    status, second = call(
        admin,
        "GET",
        f"/v1/admin/members/{MEMBER}",
        query={"limit": "1", "nextToken": first["nextToken"]},
    )
    assert status == 200 and "waiting" not in second and "expired" not in second


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    [
        ("POST", EXCLUSION, {"body": {}}, 422, "invalid_input", "reason"),
        ("POST", EXCLUSION, {"body": {"reason": "x"}}, 422, "invalid_input", "reason"),
        ("POST", EXCLUSION, {"body": {"reason": 5}}, 422, "invalid_input", "reason"),
        ("POST", EXCLUSION, {"body": {"reason": "abc", "by": "me"}}, 422, "invalid_input", "by"),
        ("POST", EXCLUSION, {"body": "{oops"}, 400, "malformed_request", None),
        ("POST", EXCLUSION, {"body": "[]"}, 400, "malformed_request", None),
        ("POST", EXCLUSION, {"body": [{"reason": "abc"}]}, 400, "malformed_request", None),
        ("POST", EXCLUSION, {"body": '"abc"'}, 400, "malformed_request", None),
        ("POST", EXCLUSION, {}, 400, "malformed_request", None),
        ("DELETE", EXCLUSION, {}, 422, "invalid_input", "reason"),
        ("DELETE", EXCLUSION, {"query": {"reason": "no"}}, 422, "invalid_input", "reason"),
        ("DELETE", EXCLUSION, {"body": {"why": "abc"}}, 422, "invalid_input", "reason"),
        (
            "POST",
            "/v1/admin/ratings/r-404/exclusion",
            {"body": {"reason": "abc"}},
            404,
            "not_found",
            "ratingId",
        ),
        (
            "POST",
            "/v1/admin/ratings/r%23x/exclusion",
            {"body": {"reason": "abc"}},
            422,
            "invalid_input",
            "ratingId",
        ),
        ("GET", "/v1/admin/members/nobody", {}, 404, "not_found", "memberId"),
        (
            "GET",
            f"/v1/admin/members/{MEMBER}",
            {"query": {"limit": "0"}},
            422,
            "invalid_input",
            "limit",
        ),
        (
            "GET",
            f"/v1/admin/members/{MEMBER}",
            {"query": {"limit": "abc"}},
            422,
            "invalid_input",
            "limit",
        ),
        (
            "GET",
            f"/v1/admin/members/{MEMBER}",
            {"query": {"limit": "101"}},
            422,
            "invalid_input",
            "limit",
        ),
        (
            "GET",
            f"/v1/admin/members/{MEMBER}",
            {"query": {"nextToken": "bm9wZQ"}},
            422,
            "invalid_input",
            "nextToken",
        ),
        ("GET", f"/v1/admin/members/{MEMBER}", {"scopes": ()}, 403, "forbidden", None),
        (
            "POST",
            EXCLUSION,
            {"body": {"reason": "abc"}, "scopes": ("loyalty/member",)},
            403,
            "forbidden",
            None,
        ),
        ("POST", EXCLUSION, {"body": {"reason": "abc"}, "sub": None}, 401, "unauthorized", None),
        ("DELETE", EXCLUSION, {"query": {"reason": "abc"}, "sub": None}, 401, "unauthorized", None),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    admin: ModuleType,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    got, body = call(admin, method, path, **kwargs)
    assert (got, body["error"]["code"], body["error"].get("field")) == (status, code, field)
    assert body["error"]["message"]
    _, view = call(admin, "GET", f"/v1/admin/members/{MEMBER}")
    assert [r["ratingId"] for r in view["counted"]] == ["r-1"]  # nothing changed


def test_the_views_keep_each_detail_of_their_kind(admin: ModuleType) -> None:
    world = World(load_program("cart-star"), rating_repository(), simple_ledger=True)
    world.deliver(order_completed("o-2", MEMBER, "cust-8", NOW - timedelta(hours=2)))
    world.deliver(
        rating_submitted(
            "r-2", "o-2", MEMBER, "cust-8", 2, NOW - timedelta(hours=1), ("store_closed",)
        )
    )
    world.deliver(rating_submitted("r-3", "o-3", MEMBER, "cust-9", 4, NOW - timedelta(hours=1)))
    assert world.rejected == []
    status, view = call(admin, "GET", f"/v1/admin/members/{MEMBER}")
    assert status == 200
    (excluded,) = view["excluded"]
    assert excluded["exclusions"] == [
        {"reason": "outside_control", "ratingReasons": ["store_closed"]}
    ]
    assert excluded["audit"] == [] and excluded["stars"] == 2
    (waiting,) = view["waiting"]
    assert waiting == {
        "ratingId": "r-3",
        "orderId": "o-3",
        "waitingSince": waiting["waitingSince"],
        "expiresAt": waiting["expiresAt"],
        "reason": "order_not_arrived",
    }
    assert view["rating"] == {"average": "5.000", "count": 1, "countedTotal": 1, "lastN": 100}
    assert view["eligibilityChangedAt"] is None and view["eligibilityReason"] == "not_judged"


@pytest.mark.parametrize(
    ("headers", "body", "base64", "status", "code"),
    [
        ({"content-type": "multipart/form-data"}, '{"reason": "x y z"}', False, 415, None),
        ({"Content-Type": "text/plain; charset=utf-8"}, "reason", False, 415, None),
        ({"content-type": "application/json"}, "0A==", True, 400, "malformed_request"),
        ({"content-type": "application/json"}, "not base64!", True, 400, "malformed_request"),
    ],
    ids=["multipart", "text", "not-utf-8", "bad-base64"],
)
def test_a_body_no_route_can_read_is_a_4xx_not_a_crash(
    admin: ModuleType, headers: dict[str, str], body: str, base64: bool, status: int, code: str
) -> None:
    """Powertools' validation raises on these (a multipart type without a boundary, bytes that
    are not UTF-8): the shared HTTP module answers them first."""
    request = admin_request("POST", EXCLUSION)
    request["headers"] = {"host": "api.example.com", **headers}
    request["body"], request["isBase64Encoded"] = body, base64
    response = admin.lambda_handler(request, FakeContext())
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == status
    assert error["code"] == (code or "unsupported_media_type")


def test_a_body_that_is_not_json_is_a_400(admin: ModuleType) -> None:
    status, body = call(admin, "POST", EXCLUSION, body="reason")
    assert status == 400 and body["error"]["code"] == "malformed_request"
