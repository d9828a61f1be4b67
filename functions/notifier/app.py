"""notifier: the member's messages about what happened to them, by their preferences.

Triggers (template.yaml):
- ``NotificationEventsQueue`` (SQS, with a DLQ), fed by an EventBridge rule on the bus for the
  outbound events members hear about (``shared.domain.notifications.NOTIFIED``): each becomes
  at most one message, in the member's language, by push (SNS) and e-mail (SES) as they chose;
  a JSON line in ``notifications.jsonl`` on the local stack. Marketing messages: at most 3 a
  member and week, none to a member who opted out, none in their quiet hours (recorded with
  the reason). Exactly once per ``eventId``: a redelivery sends nothing more
  (``shared.logic.notifications``, docs/notifications.md).
- ``GET`` and ``PUT /v1/me/preferences`` (JWT; the member is the token's ``sub``): the member's
  channels, quiet hours, language and marketing opt-out, per program (the token's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.api_models.notifications import PreferencesRequest, PreferencesView
from shared.batch import BatchProcessor, EventType, process_partial_response
from shared.composition import notification_repository, notification_sender
from shared.http_api import (
    HttpApi,
    answer_errors,
    error_responses,
    request_time,
    require_object_body,
    resolve,
    token_program,
    token_subject,
)
from shared.logic.notifications import notify, preferences_of, save_preferences
from shared.observability import logger, metrics, tracer
from shared.programs import load_program, program_ids
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

MEMBER: list[dict[str, list[str]]] = [{"memberJwt": []}]

app = HttpApi()


def _view_response() -> dict[int, Any]:
    return {
        200: {
            "description": "The member's preferences (the defaults when never set)",
            "content": {"application/json": {"model": PreferencesView}},
        }
    }


@app.get(
    "/v1/me/preferences",
    summary="The member's notification preferences",
    security=MEMBER,
    tags=["member"],
    responses={**_view_response(), **error_responses((401,))},
)
def get_preferences() -> PreferencesView:
    program = token_program(app, settings().program_id)
    preferences, zone = preferences_of(program, token_subject(app), notification_repository())
    return PreferencesView.of(preferences, zone)


@app.put(
    "/v1/me/preferences",
    summary="Replace the member's notification preferences (a field left out: its default)",
    security=MEMBER,
    tags=["member"],
    responses={**_view_response(), **error_responses((400, 401, 415, 422))},
)
def put_preferences(body: PreferencesRequest) -> PreferencesView:
    require_object_body(app)
    program = token_program(app, settings().program_id)
    at = request_time(app).isoformat()
    preferences, zone = save_preferences(
        program, token_subject(app), body.preferences(at), notification_repository()
    )
    metrics.add_metric(name="PreferencesSaved", unit=MetricUnit.Count, value=1)
    return PreferencesView.of(preferences, zone)


answer_errors(app)


def _message(record: SQSRecord) -> Mapping[str, object]:
    """One outbound event (EventBridge's envelope, as the rule put it on the queue)."""
    event = json.loads(record.body)
    detail = event.get("detail") or {}
    detail_type = str(event.get("detail-type", ""))
    program_id = str(detail.get("programId") or settings().program_id)
    if program_id not in program_ids():
        logger.warning("event of an unknown program", extra={"detail_type": detail_type})
        return {"outcome": "ignored"}
    now = datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, tz=UTC)
    result = notify(
        detail_type,
        detail,
        now,
        lambda: datetime.now(UTC),
        load_program(program_id),
        notification_repository(),
        notification_sender(),
    )
    name = {"sent": "NotificationsSent", "skipped": "NotificationsSkipped"}.get(
        result.outcome.value, "DuplicateDeliveries" if result.outcome.value == "duplicate" else ""
    )
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    body = result.as_dict()
    logger.info("notification decided", extra=body)
    return body


def _is_http(event: Mapping[str, Any]) -> bool:
    context = event.get("requestContext")
    return isinstance(context, Mapping) and "http" in context


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if _is_http(event):
        return resolve(app, event, context)
    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=_message, processor=processor, context=context
    )
