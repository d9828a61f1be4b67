"""Schedule expressions of EventBridge and EventBridge Scheduler: ``rate(...)`` and ``cron(...)``.

``cron(minutes hours day-of-month month day-of-week year)`` as AWS reads it: day-of-week 1-7 is
Sunday-Saturday (or ``SUN``-``SAT``), one of the two day fields is ``?``; ``*``, lists, ranges,
``/`` steps, names and ``L`` (last day of the month) are supported. ``W`` and ``#`` are not: such
an expression raises :class:`ScheduleError`, and the stack does not arm it (``POST /_local/fire``
still can). ``at(...)`` one-time schedules fire once at their time.
"""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .template import ScheduleSpec

__all__ = ["Schedule", "ScheduleError", "ScheduleRunner", "parse_schedule"]

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = {name.upper(): index for index, name in enumerate(calendar.month_abbr) if name}
_DAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_SEARCH_DAYS: Final = 366 * 5


class ScheduleError(ValueError):
    """The expression is not one the local stack can fire on its own."""


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        step = 1
        stepped = "/" in item
        part = item
        if stepped:
            part, step_text = item.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise ScheduleError(f"bad step in {text!r}")
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(part, names)
            end = high if stepped else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{text!r} is outside {low}-{high}")
        if end < start:  # wraps, e.g. FRI-MON
            values.update(range(start, high + 1, step))
            values.update(range(low, end + 1, step))
        else:
            values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int] | None) -> int:
    upper = text.upper()
    if names is not None and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not supported locally")
    return int(text)


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None
    """Days of the month, None for ``?``."""
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int] | None
    """ISO weekdays (Monday 1 ... Sunday 7), None for ``?``."""
    years: frozenset[int] | None

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        if self.weekdays is not None and day.isoweekday() not in self.weekdays:
            return False
        if self.last_day and day.day != calendar.monthrange(day.year, day.month)[1]:
            return False
        return self.days is None or day.day in self.days


def _cron(body: str) -> _Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(f"cron takes 6 fields, got {len(fields)}: {body!r}")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("one of day-of-month and day-of-week must be '?'")
    last_day = dom == "L"
    days = None if dom in ("?", "L") else _field(dom, 1, 31)
    weekdays = None
    if dow != "?":
        aws_days = _field(dow, 1, 7, _DAYS)  # 1 = Sunday
        weekdays = frozenset(7 if day == 1 else day - 1 for day in aws_days)
    return _Cron(
        minutes=_field(minutes, 0, 59),
        hours=_field(hours, 0, 23),
        days=days,
        last_day=last_day,
        months=_field(month, 1, 12, _MONTHS),
        weekdays=weekdays,
        years=None if year in ("*", "?") else _field(year, 1970, 2199),
    )


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self._parsed()  # validate early

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown time zone {self.timezone!r}") from exc

    def _parsed(self) -> timedelta | _Cron | datetime:
        text = self.expression.strip()
        rate = _RATE.match(text)
        if rate:
            count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
            if count < 1:
                raise ScheduleError(f"{text}: the rate must be positive")
            return timedelta(seconds=count * _UNITS[unit])
        cron = _CRON.match(text)
        if cron:
            if re.search(r"[W#]|\dL|L-", cron.group(1)):
                raise ScheduleError(f"{text}: W, # and L-offsets are not supported locally")
            return _cron(cron.group(1))
        at = _AT.match(text)
        if at:
            return datetime.fromisoformat(at.group(1)).replace(tzinfo=self._zone())
        raise ScheduleError(f"{text!r} is not a rate(), cron() or at() expression")

    def next_after(self, moment: datetime, started: datetime | None = None) -> datetime | None:
        """The first firing strictly after ``moment`` (aware, UTC); None if there is none.

        A rate fires every period from ``started`` (the stack's start), as a new rule does.
        """
        parsed = self._parsed()
        if isinstance(parsed, timedelta):
            origin = started or moment
            periods = int((moment - origin) / parsed) + 1
            return origin + parsed * periods
        if isinstance(parsed, datetime):
            fire = parsed.astimezone(UTC)
            return fire if fire > moment else None
        zone = self._zone()
        local = moment.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = local.replace(hour=0, minute=0)
        for offset in range(_SEARCH_DAYS):
            candidate_day = day + timedelta(days=offset)
            if not parsed.day_matches(candidate_day):
                continue
            for hour in sorted(parsed.hours):
                for minute in sorted(parsed.minutes):
                    naive = candidate_day.replace(hour=hour, minute=minute, tzinfo=None)
                    candidate = naive.replace(tzinfo=zone)
                    if candidate >= local:
                        return candidate.astimezone(UTC)
        return None


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """A schedule the stack can arm; raises ScheduleError otherwise."""
    return Schedule(expression, timezone)


class ScheduleRunner:
    """Fires each enabled schedule at its times, on one thread, until stopped."""

    def __init__(
        self,
        schedules: Sequence[ScheduleSpec],
        fire: Callable[[ScheduleSpec, datetime], None],
        report: Callable[[str], None],
    ) -> None:
        self.fire = fire
        self.report = report
        self.started = datetime.now(UTC)
        self.armed: list[tuple[ScheduleSpec, Schedule]] = []
        for spec in schedules:
            if not spec.enabled:
                report(f"schedule {spec.source} is disabled in the template; not armed")
                continue
            try:
                self.armed.append((spec, parse_schedule(spec.expression, spec.timezone)))
            except ScheduleError as error:
                report(f"schedule {spec.source} not armed: {error} (firing it by hand works)")
        self.next: dict[str, datetime | None] = {
            spec.source: schedule.next_after(self.started, self.started)
            for spec, schedule in self.armed
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def start(self) -> None:
        if self.armed:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for spec, schedule in self.armed:
                due = self.next.get(spec.source)
                if due is not None and due <= now:
                    stamp = due.strftime("%Y-%m-%dT%H:%M:%SZ")
                    self.report(f"schedule {spec.source} ({spec.expression}) fired for {stamp}")
                    self.fire(spec, due)
                    self.next[spec.source] = schedule.next_after(due, self.started)
            pending = [moment for moment in self.next.values() if moment is not None]
            wait = min((moment - now).total_seconds() for moment in pending) if pending else 60.0
            self._stop.wait(max(0.05, min(wait, 60.0)))
