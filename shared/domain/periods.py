"""Names of the calendar periods quotas and campaigns count in (a module of its own: order
ingestion's campaigns need it without the perk models)."""

from __future__ import annotations

from datetime import date

from .program import CampaignPeriod, QuotaPeriod
from .timeutil import quarter_of

__all__ = ["period_key"]


def period_key(day: date, period: QuotaPeriod | CampaignPeriod) -> str:
    """``2026-11`` (month), ``2026-Q4`` (quarter), ``2026`` (year) or ``2026-W48`` (the ISO
    week, Monday to Sunday, named by its ISO year)."""
    if period == CampaignPeriod.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if period == QuotaPeriod.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if period == QuotaPeriod.QUARTER:
        year, quarter = quarter_of(day)
        return f"{year:04d}-Q{quarter}"
    return f"{day.year:04d}"
