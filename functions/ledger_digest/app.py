"""ledger_digest: the previous UTC day's ledger digest of every program, on a schedule.

Trigger (template.yaml): an EventBridge schedule at 00:30 UTC. For each program served, the
ledger entries recorded on the day before (the sparse index ``ByLedgerDay``, never a Scan) are
chained into one digest, linked to the day before's, and written once; the outbox publishes
``LedgerDigestPublished`` when the item is inserted (``shared.logic.digest``, docs/audit.md).

An event may name the day (``{"day": "2026-12-04"}``, an operator's re-run): a day digested
before is recomputed and compared, never rewritten. A difference (an entry recorded after the
digest, or an edit) is logged as an error and counted (``LedgerDigestMismatches``); the run
still digests the other programs and then fails, so the failure queue and the errors alarm
show it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import digest_repository
from shared.ingress import scheduled_at
from shared.logic.digest import build_digests
from shared.observability import logger, metrics, tracer
from shared.programs import program_ids
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class DigestMismatch(RuntimeError):
    """A day digested before no longer gives the same digest."""


def _day(event: Any) -> date | None:
    raw = event.get("day") if isinstance(event, dict) else None
    return date.fromisoformat(raw) if isinstance(raw, str) else None


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = scheduled_at(event)
    day = _day(event)
    results = []
    for program_id in settings().program_ids or program_ids():
        for result in build_digests(program_id, now, digest_repository(), day):
            if result.status == "built":
                metrics.add_metric(name="LedgerDigestsBuilt", unit=MetricUnit.Count, value=1)
                logger.info("ledger digest built", extra=result.as_dict())
            elif result.status == "mismatch":
                metrics.add_metric(name="LedgerDigestMismatches", unit=MetricUnit.Count, value=1)
                logger.error("ledger digest mismatch", extra=result.as_dict())
            results.append(result.as_dict())
    mismatches = [r for r in results if r["status"] == "mismatch"]
    if mismatches:
        days = ", ".join(f"{r['programId']} {r['day']}" for r in mismatches)
        raise DigestMismatch(f"digested days whose entries changed since: {days}")
    return {"at": now.isoformat(), "days": results}
