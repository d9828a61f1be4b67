"""member_api: the read side of the HTTP API (DynamoDB reads only; writes are perk_redemption's).

Member routes (JWT authorizer; the member is always the token's ``sub``, never a path, query or
body field, so a member can only ever read their own partition):
- ``GET /v1/me``: tier, window points, projection, rating, eligibility, wallet, badge (1 item).
- ``GET /v1/me/ledger``: points entries, newest first (``?limit=``, ``?nextToken=``).
- ``GET /v1/me/perks``: each perk, open or not and why, and the quota left.
- ``GET /v1/me/redemptions``: the member's redemptions, newest first.
- ``GET /v1/me/donations``: the member's donations and refused round-ups.

Service routes (IAM authorizer; the caller is a service, the member is the path's):
- ``GET /v1/members/{memberId}/entitlements``: early batch access and other entitlements.
- ``GET /v1/members/{memberId}/badge``: the public badge (tier, orders, tenure), or 404.
- ``GET /v1/causes?programId=``: each cause's donated and matched totals (counters only).

Requests and responses are pydantic models, validated by ``shared.http_api`` and documented
by Powertools in the OpenAPI document (``python -m infra.openapi``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import customer_repository, ledger_repository, perk_repository
from shared.domain.errors import NotFound
from shared.domain.ids import Identifier
from shared.http_api import (
    HttpApi,
    Path,
    Query,
    answer_errors,
    error_responses,
    request_time,
    require_service,
    resolve,
    service_program,
    token_program,
    token_subject,
)
from shared.logic.giving import CausesView, DonationsPage, causes_view, donations_page
from shared.logic.members import (
    ChallengesView,
    EntitlementsView,
    LedgerPage,
    MemberBadge,
    MemberView,
    challenges_view,
    customer_view,
    entitlements_view,
    ledger_page,
    member_view,
    public_badge,
)
from shared.logic.perks import PerksView, RedemptionsPage, perks_view, redemptions_page
from shared.observability import logger, metrics, tracer
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = HttpApi()

MEMBER: list[dict[str, list[str]]] = [{"memberJwt": []}]
SERVICE: list[dict[str, list[str]]] = [{"serviceIam": []}]
PageSize = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
PageToken = Annotated[
    str | None,
    Query(alias="nextToken", max_length=2048, description="nextToken of the previous page."),
]
MemberIdPath = Annotated[Identifier, Path(alias="memberId", description="The member's id.")]
ProgramIdQuery = Annotated[
    str | None,
    Query(
        alias="programId",
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="The program (default: the shopper program).",
    ),
]


def responses(ok: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success (the return model) and its error statuses."""
    return {200: {"description": ok}, **error_responses(errors)}


@app.get(
    "/v1/me",
    summary="The member's standing",
    security=MEMBER,
    tags=["member"],
    responses=responses("The member's standing (one item read)", 401, 422),
)
def get_me() -> MemberView:
    program = token_program(app, settings().program_id)
    item = ledger_repository().get_member(program.id, token_subject(app))
    if program.points is not None:
        return customer_view(item, request_time(app), program)
    return member_view(item, request_time(app), program)


@app.get(
    "/v1/me/ledger",
    summary="Points entries, newest first",
    security=MEMBER,
    tags=["member"],
    responses=responses("A page of ledger entries", 401, 422),
)
def get_ledger(limit: PageSize = 50, next_token: PageToken = None) -> LedgerPage:
    program = token_program(app, settings().program_id)
    return ledger_page(token_subject(app), limit, next_token, program, perk_repository())


@app.get(
    "/v1/me/perks",
    summary="Perks, open or not and why, with the quota left",
    security=MEMBER,
    tags=["perks"],
    responses=responses("The program's perks as they stand for the member", 401, 422),
)
def get_perks() -> PerksView:
    program = token_program(app, settings().program_id)
    return perks_view(token_subject(app), request_time(app), program, perk_repository())


@app.get(
    "/v1/me/challenges",
    summary="Campaigns and the member's progress in each this period",
    security=MEMBER,
    tags=["member"],
    responses=responses("Each campaign of the member's program, with their progress", 401, 422),
)
def get_challenges() -> ChallengesView:
    program = token_program(app, settings().program_id)
    return challenges_view(token_subject(app), request_time(app), program, perk_repository())


@app.get(
    "/v1/me/redemptions",
    summary="The member's redemptions, newest first",
    security=MEMBER,
    tags=["perks"],
    responses=responses("A page of redemptions", 401, 422),
)
def get_redemptions(limit: PageSize = 20, next_token: PageToken = None) -> RedemptionsPage:
    program = token_program(app, settings().program_id)
    return redemptions_page(token_subject(app), limit, next_token, program, perk_repository())


@app.get(
    "/v1/me/donations",
    summary="The member's donations to causes, round-ups and refused round-ups included",
    security=MEMBER,
    tags=["member"],
    responses=responses("A page of donations", 401, 422),
)
def get_donations(limit: PageSize = 20, next_token: PageToken = None) -> DonationsPage:
    program = token_program(app, settings().program_id)
    return donations_page(token_subject(app), limit, next_token, program, perk_repository())


@app.get(
    "/v1/members/<memberId>/entitlements",
    summary="Entitlements of a member (early batch access), for services",
    security=SERVICE,
    tags=["services"],
    responses=responses("The member's entitlements now (one item read)", 403, 422),
)
def get_entitlements(
    member_id: MemberIdPath, program_id: ProgramIdQuery = None
) -> EntitlementsView:
    require_service(app)
    program = service_program(program_id, settings().program_id)
    item = perk_repository().get_member_eventually(program.id, member_id)
    view = entitlements_view(member_id, item, request_time(app), program)
    metrics.add_metric(name="EntitlementChecks", unit=MetricUnit.Count, value=1)
    return view


@app.get(
    "/v1/members/<memberId>/badge",
    summary="A member's public badge: tier, orders completed, tenure",
    security=SERVICE,
    tags=["services"],
    responses=responses("The badge (no private data)", 403, 404, 422),
)
def get_badge(member_id: MemberIdPath, program_id: ProgramIdQuery = None) -> MemberBadge:
    require_service(app)
    program = service_program(program_id, settings().program_id)
    item = perk_repository().get_member_eventually(program.id, member_id)
    badge = public_badge(member_id, item, request_time(app), program)
    if badge is None:
        raise NotFound(f"member {member_id} holds no badge", field="memberId")
    return badge


@app.get(
    "/v1/causes",
    summary="A program's causes with what was given and matched this month and in all",
    security=SERVICE,
    tags=["services"],
    responses=responses("Each cause's totals (counters only)", 403, 404, 422),
)
def get_causes(program_id: ProgramIdQuery = None) -> CausesView:
    require_service(app)
    program = service_program(program_id, settings().program_id)
    return causes_view(program, request_time(app), customer_repository())


answer_errors(app)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
