"""How events reach an event-driven function: EventBridge, SQS, or the IAM-authorised HTTP route.

All three carry the EventBridge shape ``{"detail-type": ..., "detail": {...}}``. Whatever the
channel, a valid event is applied once through the function's use case, and an invalid one is
rejected with its reason (the field and why), never dropped silently and never retried forever:

- EventBridge (asynchronous invocation): the reason is logged and the invocation fails, so Lambda
  sends the event with the error message to the function's on-failure destination after its
  bounded retries (``MaximumRetryAttempts`` in template.yaml).
- SQS: that message alone is reported in ``batchItemFailures`` (the rest of the batch succeeds);
  after ``maxReceiveCount`` receives it moves to the dead-letter queue. The reason is logged with
  the message id.
- HTTP: a 4xx JSON error ``{"error": {"code", "message", "field"}}``.

"Now" is the delivery time the channel gives (EventBridge ``time``, SQS ``SentTimestamp``, HTTP
``requestContext.timeEpoch``), so that a redelivered event is evaluated at the same instant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.batch import BatchProcessor, EventType, process_partial_response
from shared.domain.errors import DomainError, MalformedRequest
from shared.domain.events import InboundEvent, parse_detail, parse_envelope
from shared.logic.ports import TransientConflict
from shared.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

JSON = "application/json"

Process = Callable[[InboundEvent, datetime, str], Mapping[str, object]]
"""The function's use case: (validated event, now, attempt id) -> a JSON-able result."""


class RejectedEvent(Exception):
    """An EventBridge event that breaks the contract. Raising it fails the invocation, so Lambda
    hands the event and this message to the on-failure destination."""


def _json_response(status: int, body: Mapping[str, object]) -> Response[str]:
    from aws_lambda_powertools.event_handler.api_gateway import Response  # noqa: PLC0415 (HTTP only)

    return Response(status_code=status, content_type=JSON, body=json.dumps(body))


def _error_response(status: int, body: dict[str, str]) -> Response[str]:
    return _json_response(status, {"error": body})


def _is_sqs(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (
        bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:sqs"
    )


def _is_http(event: Mapping[str, Any]) -> bool:
    context = event.get("requestContext")
    return isinstance(context, Mapping) and "http" in context


class EventIngress:
    """Routes a Lambda invocation to ``process``, one event at a time, whatever its channel.

    What a channel needs is imported on its first event (Powertools' HTTP resolver, its batch
    processor), so that a cold start pays only for the trigger that woke the function.
    """

    def __init__(
        self,
        supported: Mapping[str, type[InboundEvent]],
        process: Process,
        http_path: str = "/v1/events",
    ) -> None:
        self.supported = supported
        self.process = process
        self.http_path = http_path
        self._http: APIGatewayHttpResolver | None = None

    @property
    def http(self) -> APIGatewayHttpResolver:
        """The HTTP route's resolver, built on the first HTTP event."""
        if self._http is None:
            from aws_lambda_powertools.event_handler.api_gateway import (  # noqa: PLC0415 (HTTP only)
                APIGatewayHttpResolver,
            )

            http = APIGatewayHttpResolver()
            http.post(self.http_path)(self._http_route)
            http.exception_handler(DomainError)(self._http_domain_error)
            http.exception_handler(TransientConflict)(self._http_conflict)
            self._http = http
        return self._http

    # -- entry point --------------------------------------------------------------------------

    def handle(self, event: Any, context: LambdaContext) -> Any:
        if isinstance(event, Mapping) and _is_sqs(event):
            processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
            return process_partial_response(
                event=dict(event),
                record_handler=self._sqs_record,
                processor=processor,
                context=context,
            )
        if isinstance(event, Mapping) and _is_http(event):
            return self.http.resolve(dict(event), context)
        if isinstance(event, Mapping) and "detail-type" in event:
            return self._eventbridge(event)
        self._reject(MalformedRequest("not an EventBridge, SQS or HTTP API event"), "unknown")
        raise RejectedEvent("not an EventBridge, SQS or HTTP API event")

    # -- channels -----------------------------------------------------------------------------

    def _apply(self, raw: Any, delivered_at: datetime) -> Mapping[str, object]:
        envelope = parse_envelope(raw)
        event = parse_detail(envelope.detail_type, envelope.detail, self.supported)
        if event.unknown_fields:
            logger.info(
                "fields not in the contract were ignored",
                extra={"detail_type": envelope.detail_type, "fields": event.unknown_fields},
            )
        return self.process(event, delivered_at, str(uuid.uuid4()))

    def _reject(self, error: DomainError, channel: str, **context: object) -> None:
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
        logger.warning(
            "event rejected",
            extra={
                "channel": channel,
                "error_code": error.code,
                "field": error.field,
                "reason": error.message,
                **context,
            },
        )

    def _eventbridge(self, event: Mapping[str, Any]) -> Mapping[str, object]:
        delivered_at = _parse_time(event.get("time"))
        try:
            return self._apply(event, delivered_at)
        except DomainError as error:
            self._reject(error, "eventbridge", event_id=event.get("id"))
            raise RejectedEvent(f"{error.code}: {error.message}") from error

    def _sqs_record(self, record: SQSRecord) -> Mapping[str, object]:
        delivered_at = datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, tz=UTC)
        try:
            try:
                raw = json.loads(record.body)
            except (TypeError, ValueError, RecursionError) as exc:
                raise MalformedRequest(f"message body is not JSON: {exc}") from exc
            return self._apply(raw, delivered_at)
        except DomainError as error:
            self._reject(
                error,
                "sqs",
                message_id=record.message_id,
                receive_count=record.attributes.approximate_receive_count,
            )
            raise

    def _http_route(self) -> Response[str]:
        request = self.http.current_event
        delivered_at = datetime.fromtimestamp(
            int(request.request_context.time_epoch) / 1000, tz=UTC
        )
        try:
            raw = json.loads(request.decoded_body or "")
        except (ValueError, RecursionError) as exc:
            raise MalformedRequest(f"request body is not JSON: {exc}") from exc
        result = self._apply(raw, delivered_at)
        return _json_response(200, {"result": result})

    def _http_domain_error(self, error: DomainError) -> Response[str]:
        self._reject(error, "http")
        return _error_response(error.status, error.to_dict())

    def _http_conflict(self, error: TransientConflict) -> Response[str]:
        logger.warning("conflict persisted after retries", extra={"reason": str(error)})
        response = _error_response(503, {"code": "busy", "message": str(error)})
        response.headers["Retry-After"] = "1"
        return response


def scheduled_at(event: Any) -> datetime:
    """A schedule's "now": the EventBridge envelope's ``time``, so that a retried or re-run
    invocation is evaluated at the same instant (an operator's event without it: the clock)."""
    return _parse_time(event.get("time") if isinstance(event, dict) else None)


def _parse_time(value: Any) -> datetime:
    """EventBridge's envelope ``time`` (UTC, ISO 8601); the clock only if a caller left it out."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return datetime.now(UTC)
