"""prize_draw: the monthly prize draw of every customer program that has one, on a schedule.

Trigger (template.yaml): an EventBridge schedule, daily at 01:00 UTC. Each run opens this
month's and next month's draw when missing (a seed drawn, its hash published by the outbox as
``PrizeDrawOpened``) and draws each opened month whose entries have closed (``PrizeDrawn``, from
the draw item's change on the stream): ``shared.logic.draw``, docs/campaigns.md.

An event may name a month (``{"month": "2026-11"}``, an operator's re-run): a drawn month is
recomputed and compared, never rewritten. A difference is logged as an error and counted
(``PrizeDrawMismatches``) and the run fails, so the failure queue and the errors alarm show it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import draw_repository
from shared.ingress import scheduled_at
from shared.logic.draw import run_draws
from shared.observability import logger, metrics, tracer
from shared.programs import load_program, program_ids
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class DrawMismatch(RuntimeError):
    """A drawn month no longer gives the same draw from its stored entries."""


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = scheduled_at(event)
    month = event.get("month") if isinstance(event, dict) else None
    results = []
    for program_id in settings().program_ids or program_ids():
        program = load_program(program_id)
        for result in run_draws(
            program, now, draw_repository(), month=month if isinstance(month, str) else None
        ):
            if result.status == "drawn":
                metrics.add_metric(name="PrizeDrawsDrawn", unit=MetricUnit.Count, value=1)
            elif result.status == "mismatch":
                metrics.add_metric(name="PrizeDrawMismatches", unit=MetricUnit.Count, value=1)
                logger.error("prize draw mismatch", extra=result.as_dict())
            logger.info("prize draw", extra={"programId": program_id, **result.as_dict()})
            results.append(result.as_dict())
    mismatches = [r for r in results if r["status"] == "mismatch"]
    if mismatches:
        months = ", ".join(f"{r['programId']} {r['month']}" for r in mismatches)
        raise DrawMismatch(f"drawn months whose entries changed since: {months}")
    return {"at": now.isoformat(), "draws": results}
