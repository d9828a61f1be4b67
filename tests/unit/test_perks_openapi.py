"""docs/openapi.json is generated from the handlers' models: it must match the code."""

from __future__ import annotations

import json

from samlite.template import read_stack

from infra.openapi import DOCUMENT, ROOT, render

TEMPLATE = ROOT / "template.yaml"


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert DOCUMENT.read_text() == render(), (
        "docs/openapi.json is out of date: run `python3 -m uv run python -m infra.openapi`"
    )


def test_the_document_covers_every_route_of_the_template() -> None:
    """Every route API Gateway serves is documented, and nothing else (the member, service and
    admin routes, and the partners' event routes)."""
    document = json.loads(DOCUMENT.read_text())
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    served = {tuple(route.route_key.split(" ", 1)) for route in read_stack(TEMPLATE).routes}
    assert routes == served
    assert ("POST", "/v1/events") in routes and ("GET", "/v1/me") in routes
    events = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in events["schema"]["oneOf"]} == {
        "CustomerSignedUpEvent",
        "DeliveryLateEvent",
        "MembershipChangedEvent",
        "OfferAcceptedEvent",
        "OfferDeclinedEvent",
        "OrderCancelledEvent",
        "OrderCompletedEvent",
        "OrderRefundedEvent",
        "ProfileUpdatedEvent",
        "TipAdjustedEvent",
    }
    for model in (
        "RedemptionRequest",
        "AdminReason",
        "HoldRequest",
        "PartnerCodeRequest",
        "DonationRequest",
        "PreferencesRequest",
        "Channels",
        "QuietHours",
    ):
        assert document["components"]["schemas"][model]["additionalProperties"] is False
    schemes = {
        "/v1/members/": "serviceIam",
        "/v1/events": "serviceIam",
        "/v1/partner-codes/": "serviceIam",
        "/v1/causes": "serviceIam",
        "/v1/admin/": "adminJwt",
        "/v1/me": "memberJwt",
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            (scheme,) = operation["security"][0]
            assert scheme == next(
                name for prefix, name in schemes.items() if path.startswith(prefix)
            )
            statuses = set(operation["responses"])
            if path.startswith("/v1/admin/"):
                # A route about one item (a member, a rating) may not find it; the stats route
                # names an unknown program with 422, as every bad query parameter.
                found = {"404"} if "{" in path else set()
                assert {"200", "401", "403", "422"} | found <= statuses
