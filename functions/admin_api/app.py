"""admin_api: the administrators' HTTP API (JWT authorizer with the ``loyalty/admin`` scope).

Routes:
- ``GET /v1/admin/members/{memberId}``: the member's rating standing, counted and excluded
  ratings with their reasons (newest first, ``?limit=`` up to 100, ``?nextToken=``), ratings
  waiting for their order, and expired ones.
- ``POST /v1/admin/ratings/{ratingId}/exclusion`` (body ``{"reason": "..."}``): exclude a
  rating, audited (who: the token's ``sub``, when, why).
- ``GET /v1/admin/members/{memberId}/export`` and ``POST /v1/admin/members/{memberId}/erasure``
  (``?programId=``): a member's data export, and the erasure of their personal fields
  (docs/privacy.md).
- ``DELETE /v1/admin/customers/{customerId}/tip-bait-flag`` (a reason, as for a restore): lift a
  customer's tip-baiting flag, audited on the customer's item.
- ``DELETE /v1/admin/ratings/{ratingId}/exclusion`` (body ``{"reason": "..."}`` or
  ``?reason=``): restore it, audited the same way.
- ``GET /v1/admin/stats?programId=``: a program's live statistics, summed from the counters
  the table's stream keeps (``shared.logic.stats``, docs/stats.md): one batch read.
- ``POST /v1/admin/members/{memberId}/adjustments?programId=`` (header ``Idempotency-Key``, body
  ``{"points", "reason", "kind"?}``): add or remove points, once per key, audited
  (``shared.logic.admin_actions``, docs/admin.md).
- ``PUT`` / ``DELETE /v1/admin/members/{memberId}/tier-override?programId=``: hold the member at
  exactly a tier until a day (``{"tier", "until", "reason"}``), or lift it; audited, idempotent.

API Gateway enforces the scope (``AuthorizationScopes``); the handler checks it again.
Requests and responses are pydantic models, validated by ``shared.http_api`` and documented
by Powertools in the OpenAPI document (``python -m infra.openapi``); errors are
``shared.http_api``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from shared.api_models.admin import (
    AdjustmentRequest,
    AdjustmentView,
    MemberErasure,
    MemberExport,
    MemberRatings,
    RatingChange,
    TierOverrideRequest,
    TierOverrideView,
    TipBaitFlag,
)
from shared.api_models.errors import invalid_input_from
from shared.api_models.stats import ProgramStatsView
from shared.composition import (
    admin_action_repository,
    customer_repository,
    privacy_repository,
    rating_repository,
    stats_repository,
)
from shared.domain.ids import Identifier
from shared.domain.perks import IdempotencyKey
from shared.domain.ratings import ADMIN_SCOPE, AdminReason
from shared.http_api import (
    Body,
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
    resolve,
    scoped_subject,
    service_program,
)
from shared.logic.admin_actions import (
    adjust_points,
    admin_trail,
    lift_tier_override,
    set_tier_override,
)
from shared.logic.moderation import (
    clear_tip_bait_flag,
    exclude_rating,
    member_ratings,
    restore_rating,
)
from shared.logic.stats import program_stats
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = HttpApi()

ADMIN: list[dict[str, list[str]]] = [{"adminJwt": []}]
MAX_PAGE = 100

MemberIdPath = Annotated[Identifier, Path(alias="memberId", description="The member's id.")]
RatingIdPath = Annotated[Identifier, Path(alias="ratingId", description="The rating's id.")]
CustomerIdPath = Annotated[
    Identifier, Path(alias="customerId", description="The customer (rater) flagged.")
]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size (1-100).")]
PageToken = Annotated[
    str | None,
    Query(alias="nextToken", max_length=2048, description="nextToken of the previous page."),
]
ReasonQuery = Annotated[
    str | None,
    Query(min_length=3, max_length=500, description="Why, when the request has no body."),
]
ProgramIdQuery = Annotated[
    str,
    Query(
        alias="programId",
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="The program (one of the deployed programs' ids).",
    ),
]
ProgramQuery = Annotated[
    str | None,
    Query(
        alias="programId",
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="The program (default: the shopper program).",
    ),
]
KeyHeader = Annotated[
    IdempotencyKey,
    Header(
        alias="Idempotency-Key",
        description="A key of the administrator's choosing (a UUID): a retry with the same key "
        "and body answers the first result; another body is a 422 naming the header.",
    ),
]
_ERROR_TEXTS = {
    401: "No subject in the token",
    403: f"The token lacks the {ADMIN_SCOPE} scope",
    404: "No such rating (or member)",
    409: "Fewer points available than the adjustment removes (the answer says how many)",
}


EDIT_ERRORS = (400, 401, 403, 404, 415, 422, 503)
"""What an exclusion or a restore may answer besides the rating."""


def _responses(ok: str, model: type[BaseModel], *errors: int) -> dict[int, OpenAPIResponse]:
    success: OpenAPIResponse = {
        "description": ok,
        "content": {"application/json": {"model": model}},
    }
    return {200: success, **error_responses(errors, _ERROR_TEXTS)}


def _answer(
    model: MemberRatings
    | RatingChange
    | TipBaitFlag
    | MemberExport
    | MemberErasure
    | ProgramStatsView
    | TierOverrideView,
) -> Response:
    return json_response(200, model.answer_json())


def _reason(body: AdminReason | None, query: str | None) -> str:
    """Why: the body's ``reason``, or (without a body) the ``reason`` query parameter."""
    if body is not None:
        require_object_body(app)
        return body.reason
    try:
        return AdminReason.model_validate({"reason": query} if query is not None else {}).reason
    except ValidationError as exc:
        raise invalid_input_from(list(exc.errors(include_url=False))) from exc


@app.get(
    "/v1/admin/members/<memberId>",
    summary="A member's rating standing and ratings, counted and excluded, with their reasons",
    security=ADMIN,
    tags=["admin"],
    responses=_responses(
        "The member's standing and a page of ratings", MemberRatings, 401, 403, 404, 422
    ),
)
def get_member(
    member_id: MemberIdPath,
    limit: PageSize = 50,
    next_token: PageToken = None,
    program_id: ProgramQuery = None,
) -> Response:
    scoped_subject(app, ADMIN_SCOPE)
    program = service_program(program_id, settings().program_id)
    page = member_ratings(program, rating_repository(), member_id, limit, next_token)
    trail = None
    if next_token is None:  # the administrators' actions come with the first page
        trail = admin_trail(program, member_id, request_time(app), admin_action_repository())
    return _answer(MemberRatings.of(page, program, trail))


@app.post(
    "/v1/admin/ratings/<ratingId>/exclusion",
    summary="Exclude a rating (audited; idempotent)",
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The rating as it stands", RatingChange, *EDIT_ERRORS),
)
def exclude(rating_id: RatingIdPath, body: AdminReason) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    why = _reason(body, None)
    program = load_program(settings().program_id)
    edit = exclude_rating(program, rating_repository(), rating_id, admin, why, request_time(app))
    if edit.changed:
        metrics.add_metric(name="RatingsExcludedByAdmin", unit=MetricUnit.Count, value=1)
    logger.info(
        "rating excluded by an administrator",
        extra={"rating_id": rating_id, "changed": edit.changed, "admin": admin},
    )
    return _answer(RatingChange.of(edit, program))


@app.delete(
    "/v1/admin/ratings/<ratingId>/exclusion",
    summary="Restore a rating an administrator excluded (audited; idempotent)",
    description=(
        'The reason is required, in the body (`{"reason": ...}`) or, for a client whose '
        "DELETE carries no body, as the `reason` query parameter: without either, 422 naming "
        "`reason`."
    ),
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The rating as it stands", RatingChange, *EDIT_ERRORS),
)
def restore(
    rating_id: RatingIdPath,
    body: Annotated[AdminReason | None, Body()] = None,
    reason: ReasonQuery = None,
) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    why = _reason(body, reason)
    program = load_program(settings().program_id)
    edit = restore_rating(program, rating_repository(), rating_id, admin, why, request_time(app))
    if edit.changed:
        metrics.add_metric(name="RatingsRestoredByAdmin", unit=MetricUnit.Count, value=1)
    logger.info(
        "rating restored by an administrator",
        extra={"rating_id": rating_id, "changed": edit.changed, "admin": admin},
    )
    return _answer(RatingChange.of(edit, program))


@app.get(
    "/v1/admin/stats",
    summary="A program's live statistics: members by tier, points and their value, perk use",
    description=(
        "Kept current by the table's stream (counters sharded per program, summed here): one "
        "batch read whatever the number of members. An unknown `programId` is a 422 naming it. "
        "Donations and matches are not counted yet (`notCounted`)."
    ),
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The program's statistics", ProgramStatsView, 401, 403, 422),
)
def get_stats(program_id: ProgramIdQuery) -> Response:
    scoped_subject(app, ADMIN_SCOPE)
    program = service_program(program_id, settings().program_id)
    stats = program_stats(program, stats_repository(), request_time(app))
    return _answer(ProgramStatsView.of(stats))


@app.delete(
    "/v1/admin/customers/<customerId>/tip-bait-flag",
    summary="Lift a customer's tip-baiting flag (audited; idempotent)",
    description=(
        "The baits counted so far are forgotten, and tip changes of orders delivered before "
        "now flag nobody again; later baits count afresh. The reason is required, in the body "
        '(`{"reason": ...}`) or as the `reason` query parameter.'
    ),
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The customer's flag as it stands", TipBaitFlag, *EDIT_ERRORS),
)
def lift_tip_bait_flag(
    customer_id: CustomerIdPath,
    body: Annotated[AdminReason | None, Body()] = None,
    reason: ReasonQuery = None,
) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    why = _reason(body, reason)
    program = load_program(settings().program_id)
    lift = clear_tip_bait_flag(
        program, rating_repository(), customer_id, admin, why, request_time(app)
    )
    if lift.changed:
        metrics.add_metric(name="TipBaitFlagsLifted", unit=MetricUnit.Count, value=1)
    logger.info(
        "tip-baiting flag lifted by an administrator",
        extra={"customer_id": customer_id, "changed": lift.changed, "admin": admin},
    )
    return _answer(TipBaitFlag.of(lift))


ExportToken = Annotated[
    str | None,
    Query(alias="nextToken", max_length=2048, description="nextToken of the previous page."),
]
ExportSize = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]


@app.get(
    "/v1/admin/members/<memberId>/export",
    summary="Everything kept of a member in a program, page by page (a data export request)",
    security=ADMIN,
    tags=["admin"],
    responses=_responses("A page of the member's items", MemberExport, 401, 403, 404, 422),
)
def export(
    member_id: MemberIdPath,
    program_id: ProgramQuery = None,
    limit: ExportSize = 200,
    next_token: ExportToken = None,
) -> Response:
    from shared.logic.ports import page_after  # noqa: PLC0415
    from shared.logic.privacy import export_member  # noqa: PLC0415

    admin = scoped_subject(app, ADMIN_SCOPE)
    program = service_program(program_id, settings().program_id)
    after = page_after(next_token, "")
    page = export_member(program, member_id, privacy_repository(), limit, after)
    logger.info(
        "member data exported",
        extra={"member_id": member_id, "program_id": program.id, "admin": admin},
    )
    return _answer(
        MemberExport(
            member_id=member_id,
            program_id=program.id,
            items=page.items,
            next_token=page.next_token,
        )
    )


@app.post(
    "/v1/admin/members/<memberId>/erasure",
    summary="Erase a member's personal fields (audited; idempotent); totals and ledger stay",
    security=ADMIN,
    tags=["admin"],
    responses=_responses("What was erased", MemberErasure, *EDIT_ERRORS),
)
def erase(member_id: MemberIdPath, body: AdminReason, program_id: ProgramQuery = None) -> Response:
    from shared.logic.privacy import erase_member  # noqa: PLC0415

    admin = scoped_subject(app, ADMIN_SCOPE)
    why = _reason(body, None)
    program = service_program(program_id, settings().program_id)
    done = erase_member(program, member_id, admin, why, request_time(app), privacy_repository())
    if done.changed:
        metrics.add_metric(name="MembersErased", unit=MetricUnit.Count, value=1)
    logger.info(
        "member personal data erased",
        extra={"member_id": member_id, "changed": done.changed, "admin": admin},
    )
    return _answer(
        MemberErasure(
            member_id=member_id,
            program_id=program.id,
            changed=done.changed,
            removed=list(done.removed),
            erased_at=done.erased_at,
        )
    )


@app.post(
    "/v1/admin/members/<memberId>/adjustments",
    summary="Add or remove a member's points (audited; idempotent with Idempotency-Key)",
    description=(
        "Customer programs: a credit is available at once (it expires like the month's other "
        "points), a removal takes available points, never more (409 naming how many are "
        "available). Shopper programs: a credit counts on the member's today in the tier "
        "window (it ages out like an order's points), a removal takes the window's newest days "
        "first, never more than the window holds; the tier follows as after an order. Each "
        "adjustment is a ledger entry `adjustment` (reason `admin:{reason}`, the administrator "
        "as `actor`). The same Idempotency-Key and body answer the first result (200, "
        "`replayed` true); the same key with another body is a 422 naming `Idempotency-Key`."
    ),
    security=ADMIN,
    tags=["admin"],
    status_code=201,
    responses={
        201: {
            "description": "The adjustment, made now",
            "content": {"application/json": {"model": AdjustmentView}},
        },
        **_responses(
            "The first result of this Idempotency-Key",
            AdjustmentView,
            400,
            401,
            403,
            404,
            409,
            415,
            422,
            503,
        ),
    },
)
def post_adjustment(
    member_id: MemberIdPath,
    body: AdjustmentRequest,
    idempotency_key: KeyHeader,
    program_id: ProgramQuery = None,
) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    require_object_body(app)
    program = service_program(program_id, settings().program_id)
    done = adjust_points(
        program,
        member_id,
        idempotency_key,
        (body.points, body.reason, body.kind),
        admin,
        request_time(app),
        admin_action_repository(),
        customer_repository(),
    )
    if done.created:
        metrics.add_metric(name="PointsAdjustedByAdmin", unit=MetricUnit.Count, value=1)
    logger.info(
        "points adjusted by an administrator",
        extra={
            "member_id": member_id,
            "program_id": program.id,
            "made": done.created,
            "admin": admin,
        },
    )
    view = AdjustmentView.of(done.record, replayed=not done.created)
    headers = {} if done.created else {"Idempotent-Replayed": "true"}
    return json_response(201 if done.created else 200, view.answer_json(), headers)


@app.put(
    "/v1/admin/members/<memberId>/tier-override",
    summary="Hold a member at exactly a tier until a day (audited; idempotent)",
    description=(
        "While it lasts (through `until`, the member's local day) the member's tier is "
        "exactly this one, whatever the points, rating floor or quality gates say; the daily "
        "evaluation looks again the day after, and the rules then decide at once (no grace). "
        "`GET /v1/me` shows `tierReason` `admin_override` and `tierOverrideUntil`. The same "
        "override again changes nothing (`changed` false, nothing audited); another one "
        "replaces it. Tier programs only (422 naming `programId` for a customer program)."
    ),
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The override as it stands", TierOverrideView, *EDIT_ERRORS),
)
def put_tier_override(
    member_id: MemberIdPath, body: TierOverrideRequest, program_id: ProgramQuery = None
) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    require_object_body(app)
    program = service_program(program_id, settings().program_id)
    change = set_tier_override(
        program,
        member_id,
        (body.tier, body.until),
        body.reason,
        admin,
        request_time(app),
        admin_action_repository(),
    )
    if change.changed:
        metrics.add_metric(name="TierOverridesSet", unit=MetricUnit.Count, value=1)
    logger.info(
        "tier override set by an administrator",
        extra={"member_id": member_id, "changed": change.changed, "admin": admin},
    )
    return _answer(TierOverrideView.of(member_id, program.id, change))


@app.delete(
    "/v1/admin/members/<memberId>/tier-override",
    summary="Lift a member's tier override before its day (audited; idempotent)",
    description=(
        "The rules decide the tier again at the stream's evaluation, seconds later (no grace "
        'period). The reason is required, in the body (`{"reason": ...}`) or as the `reason` '
        "query parameter. A member without an override: `changed` false, nothing audited."
    ),
    security=ADMIN,
    tags=["admin"],
    responses=_responses("The override as it stands (none)", TierOverrideView, *EDIT_ERRORS),
)
def delete_tier_override(
    member_id: MemberIdPath,
    body: Annotated[AdminReason | None, Body()] = None,
    reason: ReasonQuery = None,
    program_id: ProgramQuery = None,
) -> Response:
    admin = scoped_subject(app, ADMIN_SCOPE)
    why = _reason(body, reason)
    program = service_program(program_id, settings().program_id)
    change = lift_tier_override(
        program, member_id, why, admin, request_time(app), admin_action_repository()
    )
    if change.changed:
        metrics.add_metric(name="TierOverridesLifted", unit=MetricUnit.Count, value=1)
    logger.info(
        "tier override lifted by an administrator",
        extra={"member_id": member_id, "changed": change.changed, "admin": admin},
    )
    return _answer(TierOverrideView.of(member_id, program.id, change))


answer_errors(app)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
