"""The birthday gift's rules (docs/campaigns.md): pure functions of the member item, the program
and ``now``; no I/O.

A member with a birthday carries, on their member item, the instant their next local birthday
begins (``bdayAt``, UTC) and that instant's UTC day with the program (``bdayDay``): the keys of
the sparse index ``ByBirthday``. The sweep asks the index for the members whose birthday has
begun, pays or refuses each once, and moves them to next year's birthday: a member is read by
the sweep about once a year, never by a Scan, whatever their time zone.

Days are the member's (their ``timeZone``, else the program's). 02-29 falls on 02-28 in other
years. A birthday set or changed fewer than ``settledDays`` days before it pays nothing that
year, so moving a birthday cannot collect a second gift.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct

from .periods import period_key
from .program import Campaign, Program
from .timeutil import local_day, parse_instant, to_utc_iso

EXPIRING_PREFIX = "xp"
"""A lot that expires on a day of its own: ``xp{YYYYMMDD}`` (see ``shared.domain.customer``)."""

INDEX_ATTRS = ("bdayDay", "bdayAt")
"""The member item's keys in ``ByBirthday`` (absent: no birthday, out of the index)."""


def birthday_campaign(program: Program) -> Campaign | None:
    """The program's birthday campaign (None: the program gives no birthday gift)."""
    return next((c for c in program.campaigns if c.when.schedule == "birthday"), None)


def birthday_in(month_day: str, year: int) -> date:
    """The day ``MM-DD`` falls on in ``year``: 02-29 is 02-28 in a year without it."""
    month, day = int(month_day[:2]), int(month_day[3:])
    if (month, day) == (2, 29):
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def member_zone(member: Mapping[str, Any], program: Program) -> ZoneInfo:
    """The member's time zone, else the program's."""
    name = member.get("timeZone")
    return ZoneInfo(str(name)) if name else program.zone


def day_starts(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) ``day`` begins in ``zone``. Where a clock change skips midnight, the day
    begins at the change (the first instant whose local day is ``day``)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    # fold=0 maps a skipped midnight to the offset before the change: that instant is the change
    # itself. Guard anyway: never an instant still on the day before.
    while local_day(start, zone) < day:
        start += timedelta(minutes=15)
    return start


def next_birthday(month_day: str, zone: ZoneInfo, now: datetime) -> date:
    """The member's next local birthday: today if it is today, else the coming one."""
    today = local_day(now, zone)
    this_year = birthday_in(month_day, today.year)
    return this_year if this_year >= today else birthday_in(month_day, today.year + 1)


def index_keys(program_id: str, day: date, zone: ZoneInfo) -> dict[str, str]:
    """``bdayDay`` and ``bdayAt`` of the birthday on ``day``: the sweep finds the member once the
    instant has come."""
    start = day_starts(day, zone)
    return {"bdayDay": f"{program_id}#{start.date().isoformat()}", "bdayAt": to_utc_iso(start)}


def index_day(program_id: str, day: date) -> str:
    """The ``bdayDay`` partition of the UTC ``day``."""
    return f"{program_id}#{day.isoformat()}"


class Profile(Struct, frozen=True):
    """A ``ProfileUpdated`` as the member item keeps it."""

    birthday: str | None
    time_zone: str | None
    locale: str | None
    at: datetime


def profile_attrs(
    program: Program, member: Mapping[str, Any], profile: Profile, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """(attributes to set, attributes to remove) on the member item for ``profile``. The time
    the birthday was set or last changed (``birthdayChangedAt``) moves only when it changes; the
    index keys follow the birthday and the zone."""
    values: dict[str, Any] = {"profileAt": to_utc_iso(profile.at)}
    removed: list[str] = []
    for name, value in (
        ("birthday", profile.birthday),
        ("timeZone", profile.time_zone),
        ("locale", profile.locale),
    ):
        if value is None:
            removed.append(name)
        else:
            values[name] = value
    if profile.birthday != member.get("birthday"):
        if profile.birthday is None:
            removed.append("birthdayChangedAt")
        else:
            values["birthdayChangedAt"] = to_utc_iso(profile.at)
    if profile.birthday is None or birthday_campaign(program) is None:
        removed.extend(INDEX_ATTRS)
    else:
        zone = ZoneInfo(profile.time_zone) if profile.time_zone else program.zone
        values.update(index_keys(program.id, next_birthday(profile.birthday, zone, now), zone))
    return values, removed


PAY = "pay"
TOO_RECENT = "changed_too_recently"
MISSED = "missed"
STALE = "stale"
"""The index entry no longer matches the member's birthday (changed since): move it on."""

LATE_DAYS = 1
"""A sweep that comes late still pays a birthday up to this many days after it (the sweep runs
every few minutes; this covers an outage of a day)."""


class BirthdayDecision(Struct, frozen=True):
    verdict: str
    """``pay``, ``changed_too_recently``, ``missed`` or ``stale``."""
    day: date | None
    """The member's local birthday this decision is about."""
    next_keys: dict[str, str]
    """The index keys of the member's following birthday."""


def decide(
    program: Program, campaign: Campaign, member: Mapping[str, Any], now: datetime
) -> BirthdayDecision:
    """What the sweep does with a member the index found due at ``now``."""
    month_day = member.get("birthday")
    at = member.get("bdayAt")
    zone = member_zone(member, program)
    if not month_day or not at:
        return BirthdayDecision(STALE, None, {})
    start = parse_instant(str(at))
    day = local_day(start, zone)
    following = birthday_in(str(month_day), day.year + 1)
    next_keys = index_keys(program.id, following, zone)
    if day != birthday_in(str(month_day), day.year) or start != day_starts(day, zone):
        # Not the start of this member's birthday (the zone's rules moved): recompute.
        fresh = next_birthday(str(month_day), zone, now)
        return BirthdayDecision(STALE, None, index_keys(program.id, fresh, zone))
    if local_day(now, zone) > day + timedelta(days=LATE_DAYS):
        return BirthdayDecision(MISSED, day, next_keys)
    changed = member.get("birthdayChangedAt")
    settled = campaign.when.settled_days
    if changed and local_day(parse_instant(str(changed)), zone) > day - timedelta(days=settled):
        return BirthdayDecision(TOO_RECENT, day, next_keys)
    return BirthdayDecision(PAY, day, next_keys)


class GiftPlan(Struct, frozen=True):
    """The birthday gift of one member for one birthday: the campaign transaction's input."""

    campaign: Campaign
    occasion: str
    """The birthday's year (the reward item's key ``REWARD#{campaignId}#{YYYY}``: once a year)."""
    day: date
    points: int
    period: str
    budget_period: str | None
    lot: str
    expires_on: date
    occurred_at: str
    rule_version: str
    index_at: str
    """The member's ``bdayAt`` as the sweep read it (the write's condition)."""
    next_keys: dict[str, str]

    @property
    def limit(self) -> int:
        return self.campaign.per_member.count

    @property
    def budget(self) -> int | None:
        return self.campaign.budget.points if self.campaign.budget else None


def expiring_attr(day: date) -> str:
    return f"{EXPIRING_PREFIX}{day:%Y%m%d}"


def plan_gift(
    program: Program,
    campaign: Campaign,
    member: Mapping[str, Any],
    decision: BirthdayDecision,
    now: datetime,
) -> GiftPlan:
    assert decision.day is not None
    day = decision.day
    expires = day + timedelta(days=campaign.expires_in_days or 365)
    budget = campaign.budget
    return GiftPlan(
        campaign=campaign,
        occasion=str(day.year),
        day=day,
        points=campaign.points,
        period=period_key(day, campaign.per_member.period),
        budget_period=period_key(day, budget.period) if budget else None,
        lot=expiring_attr(expires),
        expires_on=expires,
        occurred_at=to_utc_iso(now),
        rule_version=program.rule_version,
        index_at=str(member["bdayAt"]),
        next_keys=decision.next_keys,
    )
