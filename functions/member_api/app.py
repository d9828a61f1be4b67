"""member_api: the member's own HTTP API (JWT authorizer; the member is the token's ``sub``).

Routes: ``GET /v1/me``. The member id is never taken from a path or a body.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.dal.factory import repository
from shared.domain.errors import DomainError, Unauthorized
from shared.logic.members import member_view
from shared.observability import logger, metrics, tracer
from shared.programs import load_program
from shared.settings import settings

app = APIGatewayHttpResolver()


def _member_id() -> str:
    claims = (
        (app.current_event.request_context.authorizer.jwt_claim or {})
        if (app.current_event.request_context.authorizer)
        else {}
    )
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    return str(subject)


def _now() -> datetime:
    epoch = app.current_event.request_context.time_epoch
    return datetime.fromtimestamp(epoch / 1000, tz=UTC) if epoch else datetime.now(UTC)


@app.get("/v1/me")
def get_me() -> Response[str]:
    program = load_program(settings().program_id)
    item = repository().get_member(program.id, _member_id())
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(member_view(item, _now(), program)),
    )


def _domain_error(error: DomainError) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": error.to_dict()}),
    )


app.exception_handler(DomainError)(_domain_error)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
