"""admin_api: the administrators' HTTP API (JWT authorizer with the ``loyalty/admin`` scope).

Routes:
- ``GET /v1/admin/members/{memberId}``: the member's rating standing, counted and excluded
  ratings with their reasons (newest first, ``?limit=`` up to 100, ``?nextToken=``), ratings
  waiting for their order, and expired ones.
- ``POST /v1/admin/ratings/{ratingId}/exclusion`` (body ``{"reason": "..."}``): exclude a
  rating, audited (who: the token's ``sub``, when, why).
- ``DELETE /v1/admin/ratings/{ratingId}/exclusion`` (body ``{"reason": "..."}`` or
  ``?reason=``): restore it, audited the same way.

API Gateway enforces the scope (``AuthorizationScopes``); the handler checks it again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.composition import rating_repository
from shared.domain.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    MalformedRequest,
    Unauthorized,
)
from shared.domain.ratings import ADMIN_SCOPE, AdminReason
from shared.logic.moderation import exclude_rating, member_ratings, restore_rating
from shared.logic.ports import TransientConflict
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

app = APIGatewayHttpResolver()

DEFAULT_PAGE = 50
MAX_PAGE = 100


def _admin() -> str:
    """The administrator: the token's ``sub``, holding the admin scope."""
    authorizer = app.current_event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer else {}
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    scopes = set(authorizer.jwt_scopes or []) if authorizer else set()
    scopes |= set(str(claims.get("scope", "")).split())
    if ADMIN_SCOPE not in scopes:
        raise Forbidden(f"this route needs the {ADMIN_SCOPE} scope")
    return str(subject)


def _now() -> datetime:
    epoch = app.current_event.request_context.time_epoch
    return datetime.fromtimestamp(epoch / 1000, tz=UTC) if epoch else datetime.now(UTC)


def _json(status: int, body: Any) -> Response[str]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


def _reason(required_body: bool) -> AdminReason:
    raw = app.current_event.decoded_body
    if raw:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise MalformedRequest(f"request body is not JSON: {exc}") from exc
    elif not required_body and app.current_event.get_query_string_value("reason"):
        document = {"reason": app.current_event.get_query_string_value("reason")}
    else:
        document = {}
    try:
        return AdminReason.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput(
            f"{field}: {first['msg']}" if field else first["msg"], field=field
        ) from exc


@app.get("/v1/admin/members/<member_id>")
def get_member(member_id: str) -> Response[str]:
    _admin()
    raw_limit = app.current_event.get_query_string_value("limit") or str(DEFAULT_PAGE)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}", field="limit")
    cursor = app.current_event.get_query_string_value("nextToken")
    program = load_program(settings().program_id)
    body = member_ratings(program, rating_repository(), member_id, int(raw_limit), cursor)
    return _json(200, body)


@app.post("/v1/admin/ratings/<rating_id>/exclusion")
def exclude(rating_id: str) -> Response[str]:
    admin = _admin()
    reason = _reason(required_body=True)
    program = load_program(settings().program_id)
    changed, view = exclude_rating(
        program, rating_repository(), rating_id, admin, reason.reason, _now()
    )
    if changed:
        metrics.add_metric(name="RatingsExcludedByAdmin", unit=MetricUnit.Count, value=1)
    logger.info(
        "rating excluded by an administrator",
        extra={"rating_id": rating_id, "changed": changed, "admin": admin},
    )
    return _json(200, {"rating": view, "changed": changed})


@app.delete("/v1/admin/ratings/<rating_id>/exclusion")
def restore(rating_id: str) -> Response[str]:
    admin = _admin()
    reason = _reason(required_body=False)
    program = load_program(settings().program_id)
    changed, view = restore_rating(
        program, rating_repository(), rating_id, admin, reason.reason, _now()
    )
    if changed:
        metrics.add_metric(name="RatingsRestoredByAdmin", unit=MetricUnit.Count, value=1)
    logger.info(
        "rating restored by an administrator",
        extra={"rating_id": rating_id, "changed": changed, "admin": admin},
    )
    return _json(200, {"rating": view, "changed": changed})


def _domain_error(error: DomainError) -> Response[str]:
    logger.info("request refused", extra={"error_code": error.code, "field": error.field})
    return _json(error.status, {"error": error.to_dict()})


def _conflict(error: TransientConflict) -> Response[str]:
    logger.warning("conflict persisted after retries", extra={"reason": str(error)})
    response = _json(503, {"error": {"code": "busy", "message": str(error)}})
    response.headers["Retry-After"] = "1"
    return response


app.exception_handler(DomainError)(_domain_error)
app.exception_handler(TransientConflict)(_conflict)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
