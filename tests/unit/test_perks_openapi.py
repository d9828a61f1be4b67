"""docs/openapi.json is generated from the handlers' models: it must match the code."""

from __future__ import annotations

import json

from infra.openapi import DOCUMENT, render


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert DOCUMENT.read_text() == render(), (
        "docs/openapi.json is out of date: run `python3 -m uv run python -m infra.openapi`"
    )


def test_the_document_covers_every_member_service_and_admin_route() -> None:
    document = json.loads(DOCUMENT.read_text())
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert routes == {
        ("GET", "/v1/me"),
        ("GET", "/v1/me/ledger"),
        ("GET", "/v1/me/perks"),
        ("GET", "/v1/me/redemptions"),
        ("POST", "/v1/me/redemptions"),
        ("DELETE", "/v1/me/redemptions/{redemptionId}"),
        ("GET", "/v1/members/{memberId}/entitlements"),
        ("GET", "/v1/members/{memberId}/badge"),
        ("POST", "/v1/members/{memberId}/holds"),
        ("DELETE", "/v1/members/{memberId}/holds/{orderId}"),
        ("GET", "/v1/admin/members/{memberId}"),
        ("POST", "/v1/admin/ratings/{ratingId}/exclusion"),
        ("DELETE", "/v1/admin/ratings/{ratingId}/exclusion"),
    }
    for model in ("RedemptionRequest", "AdminReason", "HoldRequest"):
        assert document["components"]["schemas"][model]["additionalProperties"] is False
    schemes = {"/v1/members/": "serviceIam", "/v1/admin/": "adminJwt", "/v1/me": "memberJwt"}
    for path, item in document["paths"].items():
        for operation in item.values():
            (scheme,) = operation["security"][0]
            assert scheme == next(
                name for prefix, name in schemes.items() if path.startswith(prefix)
            )
            statuses = set(operation["responses"])
            if path.startswith("/v1/admin/"):
                assert {"200", "401", "403", "404", "422"} <= statuses
