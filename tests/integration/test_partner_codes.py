"""Partner codes on DynamoDB Local: a car-maintenance code a member was issued is redeemed by the
partner the perk names (its IAM principals), once; the same reference again answers the first
redemption; another partner, another reference, an unknown code and a code past its last valid
day are refused, each with its reason, and nothing is written by a refusal."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

from shared.domain.keys import partner_code_key
from tests.integration.test_perks_helpers import NOW, apps, call, http
from tests.integration.test_perks_redemption import redeem_event

__all__ = ["apps"]  # fixture, imported for pytest

ROUTE = "POST /v1/partner-codes/{code}/redemption"
AUTOCARE = "arn:aws:sts::123456789012:assumed-role/loyalty-autocare/shop-17"
OTHER = "arn:aws:sts::123456789012:assumed-role/loyalty-tyreworld/shop-2"


def partner_call(
    app: ModuleType, code: str, body: Any, principal: str, at: Any = NOW
) -> tuple[int, Any]:
    event = http(
        "POST", f"/v1/partner-codes/{code}/redemption", iam=True, body=body, at=at, route=ROUTE
    )
    event["requestContext"]["authorizer"]["iam"]["userArn"] = principal
    status, answer, _ = call(app, event)
    return status, answer


def issue_code(app: ModuleType, member: str) -> dict[str, Any]:
    status, body, _ = call(
        app, redeem_event(member, f"{member}-code", {"perkId": "car_maintenance"})
    )
    assert status == 201, body
    return dict(body)


def code_item(client: Any, table: str, code: str) -> dict[str, Any] | None:
    pk, sk = partner_code_key(code)
    response = client.get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def redemption(app: ModuleType, member: str, redemption_id: str) -> dict[str, Any]:
    status, page, _ = call(app, http("GET", "/v1/me/redemptions", sub=member))
    assert status == 200, page
    return next(r for r in page["redemptions"] if r["redemptionId"] == redemption_id)


def test_the_partner_redeems_a_code_once_and_a_retry_answers_the_same(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    perks = apps["perk_redemption"]
    issued = issue_code(perks, "pat")
    item = code_item(ddb_client, table_name, issued["code"])
    assert item is not None and item["partnerId"]["S"] == "autocare"
    assert item["validUntil"]["S"] == issued["validUntil"]

    later = NOW + timedelta(days=3)
    status, body = partner_call(
        perks, issued["code"].lower(), {"reference": "WO-1001"}, AUTOCARE, later
    )
    assert status == 200, body
    assert body["code"] == issued["code"] and body["discountRate"] == issued["discountRate"]
    assert body["partnerId"] == "autocare" and body["replayed"] is False
    assert "memberId" not in body  # the partner learns the discount, nothing of the member

    # A retry (lost answer) with the same reference: the first redemption again.
    status, again = partner_call(
        perks, issued["code"], {"reference": "WO-1001"}, AUTOCARE, later + timedelta(hours=1)
    )
    assert status == 200 and again["replayed"] is True
    assert again["redeemedAt"] == body["redeemedAt"]

    # Another sale: refused, saying when it was used.
    status, error = partner_call(perks, issued["code"], {"reference": "WO-2002"}, AUTOCARE, later)
    assert (status, error["error"]["code"]) == (409, "code_used")
    assert body["redeemedAt"][:10] in error["error"]["message"]

    # The member sees it used, by whom.
    shown = redemption(apps["member_api"], "pat", issued["redemptionId"])
    assert shown["usedBy"] == "autocare" and shown["usedAt"] == body["redeemedAt"]


def test_refusals_say_why_and_write_nothing(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    perks = apps["perk_redemption"]
    issued = issue_code(perks, "quinn")
    before = code_item(ddb_client, table_name, issued["code"])

    status, error = partner_call(perks, issued["code"], {"reference": "X-1"}, OTHER)
    assert (status, error["error"]["code"]) == (403, "other_partner")

    status, error = partner_call(perks, "ZZZZ-ZZZZ-ZZZZ", {"reference": "X-1"}, AUTOCARE)
    assert (status, error["error"]["code"]) == (404, "not_found")

    valid_until = issued["validUntil"]  # the last valid day, in the program's zone
    day_after = NOW + timedelta(days=31)
    assert day_after.date().isoformat() > valid_until
    status, error = partner_call(perks, issued["code"], {"reference": "X-1"}, AUTOCARE, day_after)
    assert (status, error["error"]["code"]) == (409, "code_expired")
    assert valid_until in error["error"]["message"]

    for bad, field in (
        ({}, "reference"),
        ({"reference": ""}, "reference"),
        ({"reference": "a", "memberId": "x"}, "memberId"),
    ):
        status, error = partner_call(perks, issued["code"], bad, AUTOCARE)
        assert status == 422, (bad, error)
        assert field in error["error"]["message"], error
    status, error = partner_call(perks, "not-a-code", {"reference": "X-1"}, AUTOCARE)
    assert status == 422 and "code" in error["error"]["message"]

    assert code_item(ddb_client, table_name, issued["code"]) == before
    assert redemption(apps["member_api"], "quinn", issued["redemptionId"])["usedAt"] is None


def test_a_member_token_cannot_redeem_a_code(apps: dict[str, ModuleType]) -> None:
    perks = apps["perk_redemption"]
    issued = issue_code(perks, "rae")
    event = http(
        "POST",
        f"/v1/partner-codes/{issued['code']}/redemption",
        sub="rae",
        body={"reference": "self"},
        route=ROUTE,
    )
    status, error, _ = call(perks, event)
    assert status == 403, error


def test_a_code_refused_by_its_quota_leaves_no_code_behind(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    perks = apps["perk_redemption"]
    issue_code(perks, "sam")
    status, refused, _ = call(perks, redeem_event("sam", "second", {"perkId": "car_maintenance"}))
    assert status == 409, refused
    scan = ddb_client.scan(
        TableName=table_name,
        FilterExpression="begins_with(pk, :code) AND memberId = :m",
        ExpressionAttributeValues={":code": {"S": "CODE#"}, ":m": {"S": "sam"}},
        ConsistentRead=True,
    )
    assert len(scan["Items"]) == 1  # the first code's, none for the refused one


def test_a_code_drawn_twice_is_drawn_again(table_name: str, ddb_client: Any) -> None:
    """Two members' redemptions that draw the same 60 bits: the second is decided again with a
    new code (its quota is not debited twice, and it is not refused)."""
    from shared.dal.perks import PerkRepository  # noqa: PLC0415
    from shared.domain.perks import RedemptionRequest  # noqa: PLC0415
    from shared.logic.perks import redeem  # noqa: PLC0415
    from shared.programs import load_program  # noqa: PLC0415

    draws = iter([b"\x01" * 10, b"\xaa" * 8, b"\x02" * 10, b"\xaa" * 8, b"\x03" * 10, b"\xbb" * 8])
    repo = PerkRepository(table_name, ddb_client)
    program = load_program("cart-star")
    body = RedemptionRequest.model_validate({"perkId": "car_maintenance"})
    first = redeem("tom", "k1", body, NOW, program, repo, lambda size: next(draws))
    second = redeem("uma", "k1", body, NOW, program, repo, lambda size: next(draws))
    assert first.status == 201 and second.status == 201, second.body
    assert first.redemption is not None and second.redemption is not None
    code = second.redemption.code
    assert code is not None and code != first.redemption.code
    assert code_item(ddb_client, table_name, code) is not None
