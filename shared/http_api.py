"""What the HTTP API's handlers share (member_api, perk_redemption, admin_api): the subject from
the token (and its scope), the request's instant, JSON answers, the error answers and their
OpenAPI description.

Every error is ``{"error": {"code", "message", "field"?}}`` (``ErrorBody``): a domain error with
its status, a validation error as 422 naming the field (400 for a body that is not JSON), and a
transaction conflict that outlived its retries as 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from shared.domain.errors import (
    DomainError,
    Forbidden,
    MalformedRequest,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.logic.members import ErrorBody, invalid_input_from
from shared.logic.ports import TransientConflict
from shared.observability import logger

ERROR_TEXTS: Mapping[int, str] = {
    400: "Malformed request",
    401: "No valid token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict (quota, state)",
    415: "The body is not sent as application/json",
    422: "Invalid input (the field is named)",
    503: "Busy: retry",
}


def error_responses(
    statuses: tuple[int, ...], texts: Mapping[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """OpenAPI descriptions of a route's error statuses (``texts`` overrides the defaults)."""
    wording = {**ERROR_TEXTS, **(texts or {})}
    return {
        status: {
            "description": wording[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
        for status in statuses
    }


def token_subject(app: APIGatewayHttpResolver) -> str:
    """The member: the JWT's subject, and nothing else (never a path, query or body)."""
    claims = app.current_event.request_context.authorizer.jwt_claim
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    return str(subject)


def scoped_subject(app: APIGatewayHttpResolver, scope: str) -> str:
    """The token's subject, which must hold ``scope`` (the JWT's ``scope`` claim or the scopes
    API Gateway's authorizer lists): 401 without a subject, 403 without the scope."""
    authorizer = app.current_event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer else {}
    subject = (claims or {}).get("sub")
    if not subject:
        raise Unauthorized("the token carries no subject (sub)")
    scopes = set(authorizer.jwt_scopes or []) if authorizer else set()
    scopes |= set(str((claims or {}).get("scope", "")).split())
    if scope not in scopes:
        raise Forbidden(f"this route needs the {scope} scope")
    return str(subject)


def require_object_body(app: APIGatewayHttpResolver) -> None:
    """Refuse a body that is not a JSON object: Powertools' validation unwraps a one-element
    array into its element."""
    if not isinstance(app.current_event.json_body, dict):
        raise MalformedRequest("the request body must be a JSON object")


def request_time(app: APIGatewayHttpResolver) -> datetime:
    """The request's instant as API Gateway stamped it ("now" for the rules)."""
    epoch = app.current_event.request_context.time_epoch
    return datetime.fromtimestamp(epoch / 1000, tz=UTC) if epoch else datetime.now(UTC)


def json_response(status: int, body: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers=headers or {},
    )


def _error(error: DomainError) -> Response[str]:
    return json_response(error.status, json.dumps({"error": error.to_dict()}))


def _invalid(exc: RequestValidationError) -> Response[str]:
    return _error(invalid_input_from(list(exc.errors())))


def _busy(exc: TransientConflict) -> Response[str]:
    logger.warning("conflict persisted after retries", extra={"reason": str(exc)})
    body = json.dumps({"error": {"code": "busy", "message": str(exc)}})
    return json_response(503, body, {"Retry-After": "1"})


def _body_problem(event: Mapping[str, Any]) -> DomainError | None:
    """What makes a request's body unreadable before any route sees it: not UTF-8 text, or
    sent as another media type than JSON (Powertools' validation would fail on either with an
    exception of its own, a 500)."""
    body = event.get("body")
    if not body:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(body), validate=True)
        except (binascii.Error, ValueError):
            return MalformedRequest("the request body is not valid base64")
    else:
        raw = str(body).encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return MalformedRequest("the request body is not UTF-8 text")
    headers = event.get("headers") or {}
    content_type = next(
        (str(value) for name, value in headers.items() if str(name).lower() == "content-type"),
        "",
    )
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        return UnsupportedMediaType(f"the body is sent as {media}: send it as application/json")
    return None


def resolve(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``app.resolve``, after refusing a body no route can read (400 or 415, the error body)."""
    problem = _body_problem(event)
    if problem is not None:
        return {
            "statusCode": problem.status,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps({"error": problem.to_dict()}),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)


def answer_errors(app: APIGatewayHttpResolver) -> None:
    """Install the error answers on a resolver."""
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(DomainError)(_error)
    app.exception_handler(TransientConflict)(_busy)
