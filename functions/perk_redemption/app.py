"""perk_redemption: the write side of perks (the only function whose role can debit a quota or
credit a wallet).

Triggers (template.yaml):
- ``POST /v1/me/redemptions`` (JWT; header ``Idempotency-Key``): redeem a perk. The same key and
  body answer the first result, status included; the same key with another body is a 422.
- ``DELETE /v1/me/redemptions/{redemptionId}`` (JWT): cancel before the date; the quota comes back.
- ``FuelPurchaseReported``, ``FuelPurchaseRefunded``: an EventBridge rule, and the IAM-authorised
  route ``POST /v1/events/fuel-purchases`` (EventBridge shape, as ``POST /v1/events``), through
  ``shared.ingress.EventIngress``: cashback to the wallet at the tier's rate, once per purchase,
  and back out at the same rate on a refund.
- ``POST /v1/partner-codes/{code}/redemption`` (IAM, the partner who honours a code perk's
  codes): the code is used, once; docs/perks.md, "Partner codes".
- ``GET /v1/me/referral`` (JWT, a customer program's token): the member's referral code, made
  on the first request and the same after (a write, hence here and not in member_api):
  docs/campaigns.md, "Referral".
- ``POST /v1/me/donations`` (JWT, a customer program's token): points given to a cause, once
  per Idempotency-Key, matched by the company: docs/campaigns.md, "Giving".
- ``POST /v1/members/{memberId}/holds`` and ``DELETE /v1/members/{memberId}/holds/{orderId}``
  (IAM, the checkout service; ``?programId=``): points held for an order, released (the order's
  completion captures them, in order_ingestion).

The member is always the token's ``sub``. Request bodies refuse unknown and read-only fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.api_models.checkout import Hold, HoldRequest, HoldValue
from shared.composition import customer_repository, perk_repository
from shared.domain.errors import InvalidInput
from shared.domain.events import InboundEvent
from shared.domain.ids import Identifier
from shared.domain.perks import (
    PARTNER_CODE,
    FuelPurchaseRefunded,
    FuelPurchaseReported,
    IdempotencyKey,
    PartnerCodeRedemption,
    PartnerCodeRequest,
    Redemption,
    RedemptionRequest,
)
from shared.http_api import (
    Header,
    HttpApi,
    Path,
    Query,
    Response,
    answer_errors,
    error_responses,
    json_response,
    request_time,
    require_object_body,
    require_service,
    resolve,
    service_program,
    token_program,
    token_subject,
)
from shared.ingress import EventIngress
from shared.logic.customers import HoldView, place_hold, release_hold
from shared.logic.giving import DonationRequest, DonationView, donate_points
from shared.logic.limits import admit_member_request
from shared.logic.perks import (
    CashbackOutcome,
    cancel,
    credit_fuel_purchase,
    redeem,
    redeem_partner_code,
    refund_fuel_purchase,
)
from shared.logic.referrals import ReferralView, referral_code
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.domain.program import Program

FUEL_ROUTE = "/v1/events/fuel-purchases"
MEMBER: list[dict[str, list[str]]] = [{"memberJwt": []}]
SERVICE: list[dict[str, list[str]]] = [{"serviceIam": []}]

app = HttpApi()

KeyHeader = Annotated[
    IdempotencyKey,
    Header(
        alias="Idempotency-Key",
        description="A key of the client's choosing (a UUID): retries with the same key and "
        "body answer the first result.",
    ),
]
RedemptionIdPath = Annotated[
    str, Path(alias="redemptionId", pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="ULID")
]
MemberIdPath = Annotated[Identifier, Path(alias="memberId", description="The customer's id.")]
OrderIdPath = Annotated[Identifier, Path(alias="orderId", description="The held order's id.")]
ProgramIdQuery = Annotated[
    str | None,
    Query(
        alias="programId",
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="The program (default: the shopper program, which holds no points).",
    ),
]


_ERROR_TEXTS = {
    403: "The perk is closed to the member (tier, rating floor)",
    404: "No such redemption (of this member)",
    409: "Quota used up, date already booked, or no longer cancellable",
    422: "Invalid input (the field is named), or a key reused with another body",
    429: "Too many requests from the member this minute or day (see Retry-After)",
    503: "Busy: retry with the same Idempotency-Key",
}


def _documented(ok_status: int, ok: str, *errors: int) -> dict[int, OpenAPIResponse]:
    success: OpenAPIResponse = {
        "description": ok,
        "content": {"application/json": {"model": Redemption}},
    }
    return {ok_status: success, **error_responses(errors, _ERROR_TEXTS)}


@app.get(
    "/v1/me/referral",
    summary="The member's referral code (made on the first request, the same after)",
    security=MEMBER,
    tags=["member"],
    responses={
        200: {"description": "The code, and what a referral pays"},
        **error_responses((401, 404, 422), {404: "The token's program has no referrals"}),
    },
)
def get_referral() -> ReferralView:
    program = token_program(app, settings().program_id)
    return referral_code(token_subject(app), request_time(app), program, customer_repository())


_DONATION_TEXTS = {
    404: "The token's program has no causes",
    409: "insufficient_points: more points than the member has available (nothing is written)",
    422: "Invalid input (the field is named): an unknown cause, fewer than 100 points, or a key "
    "reused with another body",
    429: "Too many requests from the member this minute or day (see Retry-After)",
    503: "Busy: retry with the same Idempotency-Key",
}


@app.post(
    "/v1/me/donations",
    summary="Give points to a cause (idempotent with Idempotency-Key); the company matches",
    security=MEMBER,
    tags=["member"],
    status_code=201,
    responses={
        201: {
            "description": "The donation, with the company's match",
            "content": {"application/json": {"model": DonationView}},
        },
        **error_responses((400, 401, 404, 409, 415, 422, 429, 503), _DONATION_TEXTS),
    },
)
def post_donation(body: DonationRequest, idempotency_key: KeyHeader) -> Response:
    require_object_body(app)
    program = token_program(app, settings().program_id)
    member_id, now = token_subject(app), request_time(app)
    admit_member_request(member_id, now, program, perk_repository())
    view, made = donate_points(
        member_id, idempotency_key, body, now, program, customer_repository()
    )
    metrics.add_metric(
        name="Donations" if made else "DonationReplays", unit=MetricUnit.Count, value=1
    )
    headers = {} if made else {"Idempotent-Replayed": "true"}
    return json_response(201 if made else 200, view.model_dump_json(by_alias=True), headers)


@app.post(
    "/v1/me/redemptions",
    summary="Redeem a perk (idempotent with Idempotency-Key)",
    security=MEMBER,
    tags=["perks"],
    status_code=201,
    responses=_documented(201, "The redemption, confirmed", 400, 401, 403, 409, 415, 422, 429, 503),
)
def post_redemption(body: RedemptionRequest, idempotency_key: KeyHeader) -> Response:
    require_object_body(app)  # the validation takes a one-element array's element: refuse it
    program = token_program(app, settings().program_id)
    member_id, now = token_subject(app), request_time(app)
    admit_member_request(member_id, now, program, perk_repository())
    result = redeem(member_id, idempotency_key, body, now, program, perk_repository())
    if result.replayed:
        metrics.add_metric(name="RedemptionReplays", unit=MetricUnit.Count, value=1)
    elif result.status == 201:
        metrics.add_metric(name="RedemptionsConfirmed", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="RedemptionsRefused", unit=MetricUnit.Count, value=1)
    logger.info(
        "redemption answered",
        extra={"perk_id": body.perk_id, "status": result.status, "replayed": result.replayed},
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.redemption is not None:
        headers["Location"] = f"/v1/me/redemptions/{result.redemption.redemption_id}"
    return json_response(result.status, result.body, headers)


@app.delete(
    "/v1/me/redemptions/<redemptionId>",
    summary="Cancel a redemption before its date (the quota comes back)",
    security=MEMBER,
    tags=["perks"],
    responses=_documented(200, "The redemption, cancelled", 401, 404, 409, 422, 429, 503),
)
def delete_redemption(redemption_id: RedemptionIdPath) -> Response:
    program = token_program(app, settings().program_id)
    member_id, now = token_subject(app), request_time(app)
    admit_member_request(member_id, now, program, perk_repository())
    redemption = cancel(member_id, redemption_id, now, program, perk_repository())
    metrics.add_metric(name="RedemptionsCancelled", unit=MetricUnit.Count, value=1)
    return json_response(200, redemption.model_dump_json(by_alias=True))


_HOLD_TEXTS = {
    403: "Not a service (IAM-signed) request",
    404: "No such member (or no hold for this order)",
    409: "insufficient_points, insufficient_wallet, hold_mismatch (other amounts for this "
    "order) or hold_closed",
    422: "Invalid input (the field is named): a program without points, too few points, not "
    "a multiple, neither points nor wallet, a wallet the program does not take",
}


def _hold_documented(ok_status: int, ok: str, *errors: int) -> dict[int, OpenAPIResponse]:
    success: OpenAPIResponse = {
        "description": ok,
        "content": {"application/json": {"model": Hold}},
    }
    return {ok_status: success, **error_responses(errors, _HOLD_TEXTS)}


def _points_program(program_id: str | None) -> Program:
    program = service_program(program_id, settings().program_id)
    if program.points is None:
        raise InvalidInput(
            f"programId: {program.id} holds no points (a customer program does)", field="programId"
        )
    return program


def _hold_answer(status: int, view: HoldView) -> Response:
    hold = Hold(
        hold_id=view.hold_id,
        order_id=view.order_id,
        points=view.points,
        value=HoldValue(amount=view.value.amount, currency=view.value.currency),
        wallet=(
            HoldValue(amount=view.wallet.amount, currency=view.wallet.currency)
            if view.wallet is not None
            else None
        ),
        state=view.state,
        expires_at=view.expires_at,
    )
    return json_response(status, hold.model_dump_json(by_alias=True))


@app.post(
    "/v1/members/<memberId>/holds",
    summary="Hold a customer's points for an order at checkout (idempotent by orderId)",
    security=SERVICE,
    tags=["checkout"],
    status_code=201,
    responses=_hold_documented(
        201, "The hold (200: the same hold, asked again)", 400, 403, 404, 409, 415, 422, 503
    ),
)
def post_hold(
    member_id: MemberIdPath, body: HoldRequest, program_id: ProgramIdQuery = None
) -> Response:
    require_service(app)
    require_object_body(app)
    program = _points_program(program_id)
    view = place_hold(
        member_id,
        body.order_id,
        body.points,
        request_time(app),
        program,
        customer_repository(),
        str(app.request.context.get("requestId") or uuid.uuid4()),
        body.wallet,
    )
    metrics.add_metric(
        name="HoldsPlaced" if view.created else "HoldReplays", unit=MetricUnit.Count, value=1
    )
    return _hold_answer(201 if view.created else 200, view)


@app.delete(
    "/v1/members/<memberId>/holds/<orderId>",
    summary="Release a hold (the points come back; a captured hold stays spent)",
    security=SERVICE,
    tags=["checkout"],
    responses=_hold_documented(200, "The hold, released", 403, 404, 409, 422, 503),
)
def delete_hold(
    member_id: MemberIdPath, order_id: OrderIdPath, program_id: ProgramIdQuery = None
) -> Response:
    require_service(app)
    program = _points_program(program_id)
    view = release_hold(
        member_id, order_id, request_time(app), program, customer_repository(), "checkout"
    )
    metrics.add_metric(name="HoldsReleased", unit=MetricUnit.Count, value=1)
    return _hold_answer(200, view)


_CODE_TEXTS = {
    403: "Not a service (IAM-signed) request, or not the code's partner (other_partner)",
    404: "No such code",
    409: "code_used (redeemed with another reference) or code_expired",
    422: "Invalid input (the field is named)",
}

CodePath = Annotated[
    str,
    Path(
        alias="code",
        pattern=PARTNER_CODE,
        description="The code as the member shows it (XXXX-XXXX-XXXX, any case).",
    ),
]


@app.post(
    "/v1/partner-codes/<code>/redemption",
    summary="A partner redeems a member's discount code, once (the same reference again "
    "answers the first redemption)",
    security=SERVICE,
    tags=["partners"],
    responses={
        200: {
            "description": "The code, redeemed: the discount to give",
            "content": {"application/json": {"model": PartnerCodeRedemption}},
        },
        **error_responses((400, 403, 404, 409, 415, 422, 503), _CODE_TEXTS),
    },
)
def post_partner_code(code: CodePath, body: PartnerCodeRequest) -> Response:
    require_service(app)
    require_object_body(app)
    iam = app.request.authorizer.get("iam")
    principal = iam.get("userArn") if isinstance(iam, Mapping) else None
    answer = redeem_partner_code(
        code,
        str(principal) if principal else None,
        body,
        request_time(app),
        load_program,
        perk_repository(),
    )
    metrics.add_metric(
        name="PartnerCodeReplays" if answer.replayed else "PartnerCodesRedeemed",
        unit=MetricUnit.Count,
        value=1,
    )
    return json_response(200, answer.model_dump_json(by_alias=True))


answer_errors(app)


_CASHBACK_METRICS = {
    CashbackOutcome.CREDITED: "CashbackCredited",
    CashbackOutcome.DECLINED: "CashbackDeclined",
    CashbackOutcome.DUPLICATE: "DuplicateDeliveries",
    CashbackOutcome.REFUNDED: "CashbackRefunded",
    CashbackOutcome.REFUNDED_BEFORE_REPORT: "CashbackRefundedBeforeReport",
}


def _fuel_purchase(event: InboundEvent, now: datetime, attempt_id: str) -> Mapping[str, object]:
    program = load_program(settings().program_id)
    if isinstance(event, FuelPurchaseRefunded):
        result = refund_fuel_purchase(event, now, program, perk_repository())
    else:
        assert isinstance(event, FuelPurchaseReported)
        result = credit_fuel_purchase(event, now, program, perk_repository())
    metrics.add_metric(name=_CASHBACK_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    logger.info("event applied", extra=result.as_dict())
    return result.as_dict()


ingress = EventIngress(
    {model.detail_type: model for model in (FuelPurchaseReported, FuelPurchaseRefunded)},
    _fuel_purchase,
    FUEL_ROUTE,
)


def _is_member_route(event: Mapping[str, Any]) -> bool:
    context = event.get("requestContext")
    return (
        isinstance(context, Mapping)
        and "http" in context
        and event.get("routeKey") != f"POST {FUEL_ROUTE}"
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId || id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if _is_member_route(event):
        return resolve(app, event, context)
    return ingress.handle(event, context)
