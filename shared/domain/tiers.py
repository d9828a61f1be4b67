"""Tier arithmetic and the tier evaluation rules (docs/tiers.md).

Pure functions of the member item's attributes, a date and the program:

- upgrades take effect as soon as the points are there (the stream evaluation, seconds after
  the order);
- downgrades happen when points age out of the window (rolling mode) or a period closes (fixed
  mode), found by the daily evaluation, after an optional grace period;
- a member whose tier will drop within N days gets one "tier at risk" notice per drop date;
- a member below the rating floor (``eligible`` false on the member item, maintained by rating
  moderation) holds no tier until reinstated; points keep accruing meanwhile;
- a member who fails a tier's quality gates (``shared.domain.gates``) holds the highest tier
  below it whose gates they meet, at once, as the rating floor does;
- an administrator's tier override (``ovT`` until the day ``ovU``, docs/admin.md) sets the tier
  exactly while it lasts, over every rule above; once it is lifted or its last day has passed,
  the next evaluation applies the rules again at once (no grace period: the tier was given, not
  earned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from .gates import gate_cap
from .program import Program, Tier, WindowMode
from .window import day_buckets, rolling_points, window_points

HORIZON_DAYS = 400
"""How far ahead ``next_drop_day`` looks: beyond any window or period."""


class TierReason(StrEnum):
    POINTS_GAINED = "points_gained"
    POINTS_EXPIRED = "points_expired"
    RATING_INELIGIBLE = "rating_ineligible"
    RATING_REINSTATED = "rating_reinstated"
    QUALITY_GATE_UNMET = "quality_gate_unmet"
    QUALITY_GATE_MET = "quality_gate_met"
    PERIOD_CLOSED = "period_closed"
    POLICY_CHANGED = "policy_changed"
    ADMIN_OVERRIDE = "admin_override"


class Trigger(StrEnum):
    STREAM = "stream"
    """The member item changed (an order, a reversal, an eligibility change)."""
    SCHEDULE = "schedule"
    """The daily evaluation of members whose check date has come."""
    RECALCULATION = "recalculation"
    """A full recalculation after the thresholds changed."""


OVERRIDE_TIER = "ovT"
"""Member item: the tier an administrator set (``PUT /v1/admin/members/{id}/tier-override``)."""
OVERRIDE_UNTIL = "ovU"
"""Member item: the override's last day (ISO date, the member's local day), included."""


def override_of(attributes: Mapping[str, Any]) -> tuple[str, date] | None:
    """The override the member item holds (tier, last day), active or not; None without one."""
    tier, until = attributes.get(OVERRIDE_TIER), _parse_day(attributes.get(OVERRIDE_UNTIL))
    if not tier or until is None:
        return None
    return str(tier), until


def active_override(attributes: Mapping[str, Any], today: date) -> tuple[str, date] | None:
    """The override in force on ``today`` (its last day included), or None."""
    found = override_of(attributes)
    return found if found is not None and today <= found[1] else None


def tier_for(points: int, program: Program) -> Tier | None:
    """The highest tier whose threshold ``points`` reaches; None below the first tier."""
    reached = [tier for tier in program.tiers if points >= tier.min_points]
    return reached[-1] if reached else None


def points_to_next_tier(points: int, program: Program) -> int | None:
    """Points missing to the next tier; None at the top tier."""
    for tier in program.tiers:
        if points < tier.min_points:
            return tier.min_points - points
    return None


def rank(tier_id: str | None, program: Program) -> int:
    """0 below the first tier, 1 for the first tier, ...; an unknown id (a tier removed by a
    new configuration) ranks above every known tier, so that a recalculation moves it."""
    if tier_id is None:
        return 0
    for index, tier in enumerate(program.tiers, start=1):
        if tier.id == tier_id:
            return index
    return len(program.tiers) + 1


def is_eligible(attributes: Mapping[str, Any]) -> bool:
    """Absent means not judged yet, which is eligible (a member with fewer ratings than the
    program's minimum is not judged)."""
    return bool(attributes.get("eligible", True))


def earned_tier(attributes: Mapping[str, Any], day: date, program: Program) -> str | None:
    """The tier the points reach on ``day``, ignoring eligibility."""
    tier = tier_for(window_points(attributes, day, program), program)
    return tier.id if tier else None


class _Points:
    """A member's window points on any day, from one reading of the item's buckets (rolling
    mode unpacks the day blocks once, not once per question)."""

    __slots__ = ("attributes", "buckets", "program")

    def __init__(self, attributes: Mapping[str, Any], program: Program) -> None:
        self.attributes = attributes
        self.program = program
        rolling = program.window.mode is WindowMode.ROLLING
        self.buckets = day_buckets(attributes) if rolling else None

    def on(self, day: date) -> int:
        if self.buckets is not None:
            return rolling_points(self.buckets, day, self.program)
        return window_points(self.attributes, day, self.program)

    def tier_on(self, day: date) -> str | None:
        tier = tier_for(self.on(day), self.program)
        return tier.id if tier else None


def next_drop_day(
    attributes: Mapping[str, Any], today: date, tier_id: str, program: Program
) -> date | None:
    """The first day after ``today`` on which, with no new points, the points no longer reach
    ``tier_id``; None if that does not happen within the horizon (no points left to expire
    is impossible: points always expire, so None means a tier without points to lose)."""
    return _drop_day(_Points(attributes, program), today, tier_id)


def tier_drops_on(
    attributes: Mapping[str, Any], today: date, tier_id: str | None, program: Program
) -> date | None:
    """The day the member would lose ``tier_id`` if they earned no more points (``GET /v1/me``
    ``tierDropsOn``): the first day the window points fall below the tier's threshold (fixed
    mode: the start of the first period whose tier is lower), plus the program's grace days,
    and never before a recalculation's hold ends. Points already below it (the daily evaluation
    has not run, or a grace period runs) count from the day the evaluation saw them below,
    else today. None without a tier, or when the points never fall below it."""
    if tier_id is None:
        return None
    points = _Points(attributes, program)
    override = active_override(attributes, today)
    if override is not None and override[0] == tier_id:
        # The override holds the tier through its last day; the day after, the points decide
        # at once (no grace): the tier goes then unless the points reach it.
        after = override[1] + timedelta(days=1)
        if rank(points.tier_on(after), program) < rank(tier_id, program):
            return after
        below = _drop_day(points, override[1], tier_id)
        if below is None:
            return None
    elif rank(points.tier_on(today), program) >= rank(tier_id, program):
        below = _drop_day(points, today, tier_id)
        if below is None:
            return None
    else:
        below = _parse_day(attributes.get("belowSince")) or today
    drop = below + timedelta(days=program.downgrade.grace_days)
    held = _parse_day(attributes.get("tierHeldUntil"))
    return max(drop, held) if held is not None else drop


def _drop_day(points: _Points, today: date, tier_id: str) -> date | None:
    program = points.program
    needed = rank(tier_id, program)
    if points.buckets is not None:
        # Tiers ascend strictly, so "below the tier" is "below its threshold" (an unknown tier
        # ranks above every known one: any points are below it).
        known = needed <= len(program.tiers)
        threshold = program.tiers[needed - 1].min_points if known else None
        return _rolling_drop_day(points.buckets, today, threshold, program)
    day = today
    for _ in range(HORIZON_DAYS):
        day += timedelta(days=1)
        if rank(points.tier_on(day), program) < needed:
            return day
    return None


def _rolling_drop_day(
    buckets: Mapping[date, int], today: date, threshold: int | None, program: Program
) -> date | None:
    """First day in ``today + 1 .. today + HORIZON_DAYS`` whose window points are below
    ``threshold`` (None: below on every day). The points only change on the days a bucket
    enters the window (a day after today that holds points) or leaves it (``window.days``
    after its day), so only those days are visited: O(buckets log buckets), not one step per
    day ahead. Between two such days the points stand still, so the first day below is
    tomorrow or one of them."""
    first = today + timedelta(days=1)
    if threshold is None:
        return first
    span = timedelta(days=program.window.days)
    last = today + timedelta(days=HORIZON_DAYS)
    changes: dict[date, int] = {}
    for day, value in buckets.items():
        if day > today:
            changes[day] = changes.get(day, 0) + value
        leaves = day + span
        if leaves > today:
            changes[leaves] = changes.get(leaves, 0) - value
    points = rolling_points(buckets, today, program)
    if points < threshold and first not in changes:
        return first
    for day in sorted(changes):
        if day > last:
            break
        points += changes[day]
        if points < threshold:
            return day
    return None


@dataclass(frozen=True)
class TierDecision:
    """What an evaluation concludes; ``changed`` says whether the tier moves."""

    current: str | None
    tier: str | None
    reason: TierReason | None
    points: int
    check_on: date | None
    """Next day the daily evaluation must look at this member (None: nothing can drop)."""
    at_risk_on: date | None = None
    """Set when a new "tier at risk" notice is due: the day the tier will drop."""
    drops_to: str | None = None
    below_since: date | None = None
    """First day the daily evaluation saw the points below the tier (for the grace period)."""
    held_until: date | None = None
    """A full recalculation that may not downgrade keeps the tier until this day (the end of
    the current period), whatever evaluates the member meanwhile."""
    rule_version: str | None = field(default=None, compare=False)
    """The program version whose rules decided it (written with a change: ``tierRuleVersion``)."""

    @property
    def changed(self) -> bool:
        return self.tier != self.current


def _parse_day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def evaluate(
    attributes: Mapping[str, Any],
    today: date,
    program: Program,
    trigger: Trigger,
    allow_downgrades: bool = True,
) -> TierDecision:
    """The member's tier on ``today`` and when to look again (``_evaluate``), with the rule
    version that decided it."""
    decision = _evaluate(attributes, today, program, trigger, allow_downgrades)
    return replace(decision, rule_version=program.rule_version)


def tier_at(attributes: Mapping[str, Any], stamp: str) -> tuple[bool, str | None]:
    """The stored tier in force at ``stamp`` (compact UTC): (True, tier) when the last change
    (``tierChangedAt``) came after ``stamp``, then the tier it replaced (``tierFrom``, written
    by the change's own update; "" for none); else (False, None): the tier now is the tier
    then. Items changed before ``tierFrom`` existed answer (False, None) too."""
    before = attributes.get("tierFrom")
    changed_at = attributes.get("tierChangedAt")
    if before is None or changed_at is None or str(changed_at) <= stamp:
        return False, None
    return True, str(before) or None


def _evaluate(  # noqa: PLR0911, PLR0912 (one return per rule reads best)
    attributes: Mapping[str, Any],
    today: date,
    program: Program,
    trigger: Trigger,
    allow_downgrades: bool = True,
) -> TierDecision:
    """The member's tier on ``today`` and when to look again.

    ``allow_downgrades`` (recalculation only): False keeps a member's current tier until the
    end of the current period, as Voucherify's "refresh tiers" does; the check date is then
    set to the period's end.
    """
    current = attributes.get("tier")
    current = str(current) if current else None
    window = _Points(attributes, program)
    points = window.on(today)
    earned = tier_for(points, program)
    earned_id = earned.id if earned else None
    eligible = is_eligible(attributes)
    below_since = _parse_day(attributes.get("belowSince"))

    override = active_override(attributes, today)
    if override is not None:
        # An administrator's override is exact and wins over every rule, the stream's
        # "never downgrade" included; the daily evaluation looks again the day after it ends.
        tier_id, until = override
        reason = TierReason.ADMIN_OVERRIDE if tier_id != current else None
        return TierDecision(current, tier_id, reason, points, until + timedelta(days=1))
    if attributes.get("tierReason") == TierReason.ADMIN_OVERRIDE.value:
        # The override that set the tier is over (lifted or past its last day): the rules
        # decide again now, on any trigger, without a grace period.
        return _after_override(current, earned_id, eligible, points, attributes, window, today)

    if not eligible:
        reason = TierReason.RATING_INELIGIBLE if current is not None else None
        return TierDecision(current, None, reason, points, None)

    allowed_id = gate_cap(earned_id, attributes, program)
    if rank(allowed_id, program) < min(rank(earned_id, program), rank(current, program)):
        # A quality gate the member fails takes the tier down now, as the rating floor does
        # (points keep accruing); the stream applies it too.
        reason = TierReason.QUALITY_GATE_UNMET
        return _with_schedule(current, allowed_id, reason, points, attributes, window, today)
    earned_id = allowed_id

    was_suspended = attributes.get("tierReason") == TierReason.RATING_INELIGIBLE.value
    was_gated = attributes.get("tierReason") == TierReason.QUALITY_GATE_UNMET.value
    if rank(earned_id, program) > rank(current, program):
        if current is None and was_suspended:
            reason = TierReason.RATING_REINSTATED
        elif was_gated:
            reason = TierReason.QUALITY_GATE_MET
        elif trigger is Trigger.RECALCULATION:
            reason = TierReason.POLICY_CHANGED
        else:
            reason = TierReason.POINTS_GAINED
        return _with_schedule(current, earned_id, reason, points, attributes, window, today)

    if rank(earned_id, program) == rank(current, program):
        return _with_schedule(current, current, None, points, attributes, window, today)

    # The points no longer reach the current tier.
    held_until = _parse_day(attributes.get("tierHeldUntil"))
    if trigger is Trigger.RECALCULATION and not allow_downgrades:
        held_until = max(held_until or today, _period_end(today, program))
    if held_until is not None and today < held_until:
        return TierDecision(current, current, None, points, held_until, held_until=held_until)
    if trigger is Trigger.STREAM:
        # Downgrades are the daily evaluation's: make sure it looks today.
        return TierDecision(current, current, None, points, today, below_since=below_since)
    below_since = below_since or today
    grace_ends = below_since + timedelta(days=program.downgrade.grace_days)
    if today < grace_ends:
        return TierDecision(current, current, None, points, grace_ends, below_since=below_since)
    if trigger is Trigger.RECALCULATION:
        reason = TierReason.POLICY_CHANGED
    elif program.window.mode is WindowMode.FIXED:
        reason = TierReason.PERIOD_CLOSED
    else:
        reason = TierReason.POINTS_EXPIRED
    decision = _with_schedule(current, earned_id, reason, points, attributes, window, today)
    return decision


def _after_override(
    current: str | None,
    earned_id: str | None,
    eligible: bool,
    points: int,
    attributes: Mapping[str, Any],
    window: _Points,
    today: date,
) -> TierDecision:
    """The tier once an override is over: what the rules give today (rating floor, gates,
    points), always with a reason, so that ``tierReason`` stops saying ``admin_override`` even
    when the tier stays."""
    program = window.program
    if not eligible:
        return TierDecision(current, None, TierReason.RATING_INELIGIBLE, points, None)
    allowed = gate_cap(earned_id, attributes, program)
    if rank(allowed, program) < rank(earned_id, program):
        reason = TierReason.QUALITY_GATE_UNMET
    elif rank(allowed, program) >= rank(current, program):
        reason = TierReason.POINTS_GAINED
    elif program.window.mode is WindowMode.FIXED:
        reason = TierReason.PERIOD_CLOSED
    else:
        reason = TierReason.POINTS_EXPIRED
    return _with_schedule(current, allowed, reason, points, attributes, window, today)


def _period_end(today: date, program: Program) -> date:
    """First day of the next quarter (fixed mode) or of the next window turn (rolling)."""
    first_month = 3 * ((today.month - 1) // 3) + 1
    if first_month == 10:
        return date(today.year + 1, 1, 1)
    return date(today.year, first_month + 3, 1)


def _with_schedule(
    current: str | None,
    tier: str | None,
    reason: TierReason | None,
    points: int,
    attributes: Mapping[str, Any],
    window: _Points,
    today: date,
) -> TierDecision:
    """Attach the next check date and a due "at risk" notice to a decision for ``tier``."""
    if tier is None:
        return TierDecision(current, tier, reason, points, None)
    program = window.program
    drop = _drop_day(window, today, tier)
    if drop is None:
        return TierDecision(current, tier, reason, points, None)
    notice_days = program.downgrade.at_risk_notice_days
    notice_from = drop - timedelta(days=notice_days)
    # One notice per risk: while a notice for this tier is outstanding (its drop date has not
    # passed), new points that only push the drop a few days later send no second notice.
    notified_for = _parse_day(attributes.get("atRiskFor"))
    already = (
        tier == current
        and attributes.get("atRiskTier") == tier
        and notified_for is not None
        and notified_for >= today
    )
    at_risk_on = None
    drops_to = None
    if notice_days and notice_from <= today and not already:
        at_risk_on = drop
        drops_to = window.tier_on(drop)
    check_on = notice_from if notice_days and notice_from > today else drop
    return TierDecision(current, tier, reason, points, check_on, at_risk_on, drops_to)
