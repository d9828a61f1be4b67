"""Names of the calendar periods quotas and campaigns count in (a module of its own: order
ingestion's campaigns need it without the perk models)."""

from __future__ import annotations

from datetime import date

from .program import QuotaPeriod
from .timeutil import quarter_of

__all__ = ["period_key"]


def period_key(day: date, period: QuotaPeriod) -> str:
    """``2026-11`` (month), ``2026-Q4`` (quarter) or ``2026`` (year), in the program's zone."""
    if period is QuotaPeriod.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if period is QuotaPeriod.QUARTER:
        year, quarter = quarter_of(day)
        return f"{year:04d}-Q{quarter}"
    return f"{day.year:04d}"
