"""member_api: the read side of the HTTP API (DynamoDB reads only; writes are perk_redemption's).

Member routes (JWT authorizer; the member is always the token's ``sub``, never a path, query or
body field, so a member can only ever read their own partition):
- ``GET /v1/me``: tier, window points, projection, rating, eligibility, wallet, badge (1 item).
- ``GET /v1/me/ledger``: points entries, newest first (``?limit=``, ``?nextToken=``).
- ``GET /v1/me/perks``: each perk, open or not and why, and the quota left.
- ``GET /v1/me/redemptions``: the member's redemptions, newest first.

Service routes (IAM authorizer; the caller is a service, the member is the path's):
- ``GET /v1/members/{memberId}/entitlements``: early batch access and other entitlements.
- ``GET /v1/members/{memberId}/badge``: the public badge (tier, orders, tenure), or 404.

Requests and responses are pydantic models validated by Powertools (``enable_validation``),
which also generates the OpenAPI document (``python -m infra.openapi``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.dal.dynamodb import TransientConflict
from shared.dal.factory import repository
from shared.dal.perks import perk_repository
from shared.domain.errors import DomainError, Forbidden, NotFound, Unauthorized
from shared.domain.ids import Identifier
from shared.logic.members import (
    EntitlementsView,
    ErrorBody,
    LedgerPage,
    MemberBadge,
    MemberView,
    entitlements_view,
    invalid_input_from,
    ledger_page,
    member_view,
    public_badge,
)
from shared.logic.perks import PerksView, RedemptionsPage, perks_view, redemptions_page
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

app = APIGatewayHttpResolver(enable_validation=True)

MEMBER: list[dict[str, list[str]]] = [{"memberJwt": []}]
SERVICE: list[dict[str, list[str]]] = [{"serviceIam": []}]
PageSize = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
PageToken = Annotated[
    str | None,
    Query(alias="nextToken", max_length=2048, description="nextToken of the previous page."),
]
MemberIdPath = Annotated[Identifier, Path(alias="memberId", description="The member's id.")]


def responses(ok: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success (the return model) and its error statuses."""
    described: dict[int, OpenAPIResponse] = {200: {"description": ok}}
    texts = {
        400: "Malformed request",
        401: "No valid token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict (quota, state)",
        422: "Invalid input (the field is named)",
        503: "Busy: retry",
    }
    for status in errors:
        described[status] = {
            "description": texts[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return described


def _member_id() -> str:
    """The member: the JWT's subject, and nothing else."""
    claims = app.current_event.request_context.authorizer.jwt_claim
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    return str(subject)


def _service() -> None:
    """Service routes are IAM-authorised at the API; refuse anything else (a member's token)."""
    authorizer = app.current_event.request_context.authorizer
    if not authorizer.get("iam") or authorizer.get("jwt"):
        raise Forbidden("this route is for services (IAM-signed requests)")


def _now() -> datetime:
    epoch = app.current_event.request_context.time_epoch
    return datetime.fromtimestamp(epoch / 1000, tz=UTC) if epoch else datetime.now(UTC)


@app.get(
    "/v1/me",
    summary="The member's standing",
    security=MEMBER,
    tags=["member"],
    responses=responses("The member's standing (one item read)", 401, 422),
)
def get_me() -> MemberView:
    program = load_program(settings().program_id)
    item = repository().get_member(program.id, _member_id())
    return member_view(item, _now(), program)


@app.get(
    "/v1/me/ledger",
    summary="Points entries, newest first",
    security=MEMBER,
    tags=["member"],
    responses=responses("A page of ledger entries", 401, 422),
)
def get_ledger(limit: PageSize = 50, next_token: PageToken = None) -> LedgerPage:
    program = load_program(settings().program_id)
    return ledger_page(_member_id(), limit, next_token, program, perk_repository())


@app.get(
    "/v1/me/perks",
    summary="Perks, open or not and why, with the quota left",
    security=MEMBER,
    tags=["perks"],
    responses=responses("The program's perks as they stand for the member", 401, 422),
)
def get_perks() -> PerksView:
    program = load_program(settings().program_id)
    return perks_view(_member_id(), _now(), program, perk_repository())


@app.get(
    "/v1/me/redemptions",
    summary="The member's redemptions, newest first",
    security=MEMBER,
    tags=["perks"],
    responses=responses("A page of redemptions", 401, 422),
)
def get_redemptions(limit: PageSize = 20, next_token: PageToken = None) -> RedemptionsPage:
    program = load_program(settings().program_id)
    return redemptions_page(_member_id(), limit, next_token, program, perk_repository())


@app.get(
    "/v1/members/<memberId>/entitlements",
    summary="Entitlements of a member (early batch access), for services",
    security=SERVICE,
    tags=["services"],
    responses=responses("The member's entitlements now (one item read)", 403, 422),
)
def get_entitlements(member_id: MemberIdPath) -> EntitlementsView:
    _service()
    program = load_program(settings().program_id)
    item = perk_repository().get_member_eventually(program.id, member_id)
    view = entitlements_view(member_id, item, _now(), program)
    metrics.add_metric(name="EntitlementChecks", unit=MetricUnit.Count, value=1)
    return view


@app.get(
    "/v1/members/<memberId>/badge",
    summary="A member's public badge: tier, orders completed, tenure",
    security=SERVICE,
    tags=["services"],
    responses=responses("The badge (no private data)", 403, 404, 422),
)
def get_badge(member_id: MemberIdPath) -> MemberBadge:
    _service()
    program = load_program(settings().program_id)
    item = perk_repository().get_member_eventually(program.id, member_id)
    badge = public_badge(member_id, item, _now(), program)
    if badge is None:
        raise NotFound(f"member {member_id} holds no badge", field="memberId")
    return badge


def _error(error: DomainError) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": error.to_dict()}),
    )


def _invalid(exc: RequestValidationError) -> Response[str]:
    return _error(invalid_input_from(list(exc.errors())))


def _busy(exc: TransientConflict) -> Response[str]:
    logger.warning("conflict persisted after retries", extra={"reason": str(exc)})
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": "busy", "message": str(exc)}}),
        headers={"Retry-After": "1"},
    )


app.exception_handler(RequestValidationError)(_invalid)
app.exception_handler(DomainError)(_error)
app.exception_handler(TransientConflict)(_busy)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
