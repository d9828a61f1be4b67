"""The annual dividend (docs/campaigns.md, "The annual dividend"): the registry and the job.

``MembershipChanged`` of the dividend's plan registers the member in each calendar year the plan
covers (``register_plan``). From ``dividend.startsOn`` of the next year, ``points_settlement``
runs the job on its schedule (``run_dividend``): it pages through last year's registry from its
checkpoint, pays each member once (the reward item is put only if absent), moves the checkpoint
after each page and marks the year done after the last. A run that dies mid-page is taken up
from the last checkpoint by the next run: the members of that page already paid are refused as
duplicates, the others paid. Once done, a run reads the checkpoint and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.customer import order_total_attr
from shared.domain.dividend import due_year, plan_dividend, plan_years
from shared.domain.events import MembershipChanged
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso

PAGE_SIZE = 100
"""Registry entries per page (and member items per ``BatchGetItem``)."""
PAGES_PER_RUN = 20
"""Pages one scheduled run pays at most (2,000 members, well within the function's 240 s); the
next run, 5 minutes later, goes on from the checkpoint: 576,000 members a day."""


class PlanRegistry(Protocol):
    def register_plan_years(
        self, program_id: str, member_id: str, years: Sequence[int], at: str
    ) -> None: ...


class DividendStore(PlanRegistry, Protocol):
    def dividend_members(
        self, program_id: str, year: int, after: str | None, limit: int
    ) -> tuple[list[str], str | None]: ...

    def order_totals(
        self, program_id: str, member_ids: Sequence[str], attribute: str
    ) -> dict[str, int | None]: ...

    def pay_dividend(self, program_id: str, member_id: str, plan: Any) -> Any: ...

    def dividend_job(self, program_id: str, year: int) -> dict[str, Any] | None: ...

    def save_dividend_job(
        self,
        program_id: str,
        year: int,
        read_cursor: str | None,
        cursor: str | None,
        counts: Mapping[str, int],
        at: str,
    ) -> bool: ...


def register_plan(event: MembershipChanged, program: Program, store: PlanRegistry) -> int:
    """Register the member in the years a membership of the dividend's plan covers (whether or
    not the change is the latest: an older one arriving late still shows the plan was held).
    The number of years registered."""
    dividend = program.dividend
    if dividend is None or event.plan != dividend.plan:
        return 0
    years = plan_years(program, event.occurred_at, event.valid_until)
    if years:
        store.register_plan_years(
            program.id, event.customer_id, years, to_utc_iso(event.occurred_at)
        )
    return len(years)


class DividendRun(Struct):
    program_id: str
    year: int | None = None
    state: str = "not_due"
    """``not_due`` (before ``startsOn``, or no dividend), ``running``, ``done`` (this run
    finished the year), ``done_before`` (a run before did: nothing read but the checkpoint),
    ``overtaken`` (another run moved the checkpoint first: this one stopped)."""
    pages: int = 0
    paid: int = 0
    points: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Members paid nothing, by why (``nothing_earned``, ``duplicate``, ``budget_spent``,
    ``no_member``)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "dividendYear": self.year,
            "dividendState": self.state,
            "dividendPages": self.pages,
            "dividendsPaid": self.paid,
            "dividendPoints": self.points,
            "dividendsRefused": dict(self.refused),
        }


def run_dividend(
    now: datetime,
    program: Program,
    store: DividendStore,
    pages: int = PAGES_PER_RUN,
    page_size: int = PAGE_SIZE,
) -> DividendRun:
    """Pay the due year's dividends from the checkpoint, at most ``pages`` pages."""
    run = DividendRun(program.id)
    dividend = program.dividend
    year = due_year(program, now)
    if dividend is None or year is None:
        return run
    run.year = year
    job = store.dividend_job(program.id, year) or {}
    if job.get("state") == "done":
        run.state = "done_before"
        return run
    cursor = job.get("cursor")
    at = to_utc_iso(now)
    attribute = order_total_attr(year)
    run.state = "running"
    for _ in range(pages):
        members, last = store.dividend_members(program.id, year, cursor, page_size)
        totals = store.order_totals(program.id, members, attribute) if members else {}
        counts = {"paid": 0, "points": 0}
        for member_id in members:
            total = totals.get(member_id)
            plan = plan_dividend(program, dividend, year, total or 0, now)
            if total is None or plan.points <= 0:
                why = "no_member" if total is None else "nothing_earned"
            else:
                why = str(store.pay_dividend(program.id, member_id, plan))
                if why == "rewarded":
                    counts["paid"] += 1
                    counts["points"] += plan.points
                    continue
            counts[why] = counts.get(why, 0) + 1
        if not store.save_dividend_job(program.id, year, cursor, last, counts, at):
            run.state = "overtaken"
            return run
        run.pages += 1
        run.paid += counts.pop("paid")
        run.points += counts.pop("points")
        for why, n in counts.items():
            run.refused[why] = run.refused.get(why, 0) + n
        cursor = last
        if last is None:
            run.state = "done"
            return run
    return run
