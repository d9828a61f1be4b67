"""points_settlement: what falls due in the customer programs, on a schedule.

Trigger (template.yaml): an EventBridge schedule every 5 minutes. For each customer program:
checkout holds not captured within their time are released, pending points whose day came
become available, lots past their expiry expire, expiry notices fall due, referrals whose first
order's points became available are paid (``shared.logic.referrals.settle_referral``), and the
birthdays begun by now are paid (``shared.logic.birthday.sweep_birthdays``), and from
``dividend.startsOn`` the annual dividend of last year's plan members is paid, a few pages of
its registry a run from a checkpoint (``shared.logic.dividend.run_dividend``). Members and holds
are found in the table's sparse indexes (``ByCheckDate``, ``ByBirthday``) and the dividend's
registry, never by a Scan; every step is idempotent (``shared.logic.customers.settle_due``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from shared.composition import customer_repository
from shared.ingress import scheduled_at
from shared.logic.birthday import sweep_birthdays
from shared.logic.customers import settle_due
from shared.logic.dividend import run_dividend
from shared.observability import logger, metrics, tracer
from shared.programs import customer_programs
from shared.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_METRICS = {
    "holdsReleased": "HoldsExpired",
    "membersSettled": "MembersSettled",
    "pointsMatured": "PointsMatured",
    "pointsExpired": "PointsExpired",
    "expiryNotices": "ExpiryNotices",
    "birthdayGifts": "BirthdayGifts",
    "referralsPaid": "ReferralsPaid",
    "dividendsPaid": "DividendsPaid",
}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = scheduled_at(event)
    runs = []
    for program in customer_programs(settings().program_ids):
        run = settle_due(now, program, customer_repository()).as_dict()
        run.update(sweep_birthdays(now, program, customer_repository()).as_dict())
        run.update(run_dividend(now, program, customer_repository()).as_dict())
        for key, name in _METRICS.items():
            value = run[key]
            if isinstance(value, int) and value:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        logger.info("settlement done", extra=run)
        runs.append(run)
    return {"at": now.isoformat(), "programs": runs}
