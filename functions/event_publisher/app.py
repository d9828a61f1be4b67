"""event_publisher: publishes the outbound events implied by each committed change.

Trigger: the table's stream (new and old images). A transactional outbox: an event goes out if
and only if its change was committed; a failed publication fails that record alone, and the
stream retries it (bisecting the batch), so nothing is lost. Events carry a deterministic
``eventId`` for consumers to drop the duplicates a retry can cause.

Before publishing, the projectors keep read models up to date from the same change (the ledger's
entries, one item each, for ``GET /v1/me/ledger``); their writes are idempotent, so a retried
record writes the same items again. The stats counters (``GET /v1/admin/stats``) are kept from
the same change too, once per record: a retried record finds its marker and adds nothing
(``shared.logic.stats_counting``, docs/stats.md).

Every published event is also an analytics row (docs/analytics.md). The rows of an invocation's
published events are delivered together after its records, in one ``PutRecordBatch`` (Firehose
on AWS; Parquet files on the local stack): a delivery that still fails after its retries fails
the invocation, and the stream retries the batch (events go out again with the same
``eventId``, which the analytics queries deduplicate on), so no row is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from shared.composition import (
    analytics_sink,
    digest_repository,
    perk_repository,
    publisher,
    stats_repository,
)
from shared.domain.analytics import analytics_row
from shared.domain.outbound import derive_all
from shared.logic.digest import digested_already
from shared.logic.outbox import DERIVERS, PROJECTORS
from shared.logic.stats_counting import count_change
from shared.observability import logger, metrics, tracer
from shared.streams import Change, change_of

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

_analytics: list[dict[str, Any]] = []
"""The analytics rows of the events published by the running invocation."""


def _report_late(change: Change, projected: int) -> None:
    """Entries written for a UTC day already digested are kept (they are real entries) but are
    not in that day's digest: say so now, rather than leave it to the next verification."""
    if change.program_id is None:
        return
    digest = digested_already(change.program_id, change.at, datetime.now(UTC), digest_repository())
    if digest is None:
        return
    metrics.add_metric(name="LateLedgerEntries", unit=MetricUnit.Count, value=projected)
    logger.error(
        "ledger entries recorded after their day's digest",
        extra={
            "program_id": change.program_id,
            "day": digest.day.isoformat(),
            "entries": projected,
            "item": f"{change.keys.get('pk')}|{change.sk}",
        },
    )


def _record(record: DynamoDBRecord) -> None:
    change = change_of(record)
    store = perk_repository()
    projected = sum(project(change.old, change.new, store, change.at) for project in PROJECTORS)
    if projected:
        metrics.add_metric(name="LedgerEntriesProjected", unit=MetricUnit.Count, value=projected)
        _report_late(change, projected)
    counted = count_change(change.record_id, change.old, change.new, change.at, stats_repository())
    if counted:
        metrics.add_metric(name="StatsCountersUpdated", unit=MetricUnit.Count, value=counted)
    events = derive_all(DERIVERS, change.old, change.new)
    if not events:
        return
    publisher().publish(events)
    if analytics_sink() is not None:
        published_at = datetime.now(UTC)
        _analytics.extend(analytics_row(event, published_at) for event in events)
    for event in events:
        metrics.add_metric(name=f"Published{event.detail_type}", unit=MetricUnit.Count, value=1)
        logger.info(
            "event published",
            extra={"detail_type": event.detail_type, "event_id": event.detail.get("eventId")},
        )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    _analytics.clear()
    response = process_partial_response(
        event=event, record_handler=_record, processor=processor, context=context
    )
    _deliver_analytics()
    return response


def _deliver_analytics() -> None:
    """The invocation's rows, at once; a failure fails the invocation (the stream retries it,
    then its on-failure queue keeps the batch), and is logged with the rows' count."""
    sink = analytics_sink()
    if sink is None or not _analytics:
        return
    rows = list(_analytics)
    _analytics.clear()
    try:
        sink.deliver(rows)
    except Exception:
        metrics.add_metric(name="AnalyticsRowsFailed", unit=MetricUnit.Count, value=len(rows))
        logger.exception("analytics rows not delivered", extra={"rows": len(rows)})
        raise
    metrics.add_metric(name="AnalyticsRowsDelivered", unit=MetricUnit.Count, value=len(rows))
