"""The member's profile and the birthday gift (docs/campaigns.md).

``ProfileUpdated`` keeps the member's birthday, time zone and language on their member item (the
latest by ``occurredAt``; an older or repeated one changes nothing) and puts the member in the
sparse index ``ByBirthday`` at the instant their next local birthday begins. The sweep (run by
``points_settlement`` on its schedule) asks the index for the birthdays begun by ``now`` and pays
each once, in the campaign transaction (the reward once a year, the member's count, the budget),
then moves the member to next year's birthday. Running it again finds nobody.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.birthday import (
    PAY,
    GiftPlan,
    Profile,
    birthday_campaign,
    decide,
    plan_gift,
    profile_attrs,
)
from shared.domain.errors import InvalidInput
from shared.domain.events import ProfileUpdated
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso
from shared.logic.customers import MAX_TRIES, CustomerOutcome, CustomerResult
from shared.logic.ports import TransientConflict

LOOKBACK_DAYS = 7
"""UTC days before today the sweep looks at too (an empty day costs half a read unit): a birthday
begun while the schedule was down is still found, and paid if ``shared.domain.birthday.LATE_DAYS``
allows, else recorded as missed and moved on. A schedule down for longer than this leaves those
members' index entries behind until their profile changes (see docs/campaigns.md)."""


class BirthdayStore(Protocol):
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def set_profile(
        self,
        program_id: str,
        member_id: str,
        values: Mapping[str, Any],
        removed: list[str],
        read_at: str | None,
    ) -> bool: ...

    def birthdays_due(
        self, program_id: str, day: date, until: datetime
    ) -> Iterator[dict[str, Any]]: ...

    def gift(
        self, program_id: str, member_id: str, plan: GiftPlan, at: str, lower_check: bool
    ) -> tuple[Any, dict[str, Any] | None]: ...

    def move_birthday(
        self,
        program_id: str,
        member_id: str,
        index_at: str,
        next_keys: Mapping[str, str],
        outcome: Mapping[str, Any] | None,
    ) -> bool: ...


def update_profile(
    event: ProfileUpdated,
    now: datetime,
    programs: Sequence[Program],
    store: BirthdayStore,
    shopper_id: str | None = None,
) -> CustomerResult:
    """Keep the member's profile in the program the event names (the latest wins).
    ``shopper_id``: the shopper program's id, which takes a profile too (its zone alone), named
    in the refusal of an unknown program."""
    program = next((p for p in programs if p.id == event.program_id), None)
    if program is None:
        known = [p.id for p in programs]
        if shopper_id is not None:
            known.insert(0, f"{shopper_id} (the shopper's zone only)")
        raise InvalidInput(
            f"detail.programId: {event.program_id!r} is not a program here "
            f"(known: {', '.join(known) or 'none'})",
            field="detail.programId",
        )
    profile = Profile(event.birthday, event.time_zone, event.locale, event.occurred_at)
    at = to_utc_iso(event.occurred_at)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, event.member_id) or {}
        read_at = member.get("profileAt")
        if read_at is not None and str(read_at) >= at:
            return CustomerResult(program.id, event.member_id, CustomerOutcome.PROFILE_STALE)
        values, removed = profile_attrs(program, member, profile, now)
        removed = [name for name in removed if name in member]
        if store.set_profile(
            program.id, event.member_id, values, removed, str(read_at) if read_at else None
        ):
            return CustomerResult(program.id, event.member_id, CustomerOutcome.PROFILE_UPDATED)
    raise TransientConflict(f"the profile of {event.member_id} kept changing")


class BirthdayRun(Struct):
    program_id: str
    paid: int = 0
    points: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Birthdays that paid nothing, by why (``changed_too_recently``, ``budget_spent``, ...)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "birthdayGifts": self.paid,
            "birthdayPoints": self.points,
            "birthdaysRefused": dict(self.refused),
        }


def sweep_birthdays(now: datetime, program: Program, store: BirthdayStore) -> BirthdayRun:
    """Pay the birthdays begun by ``now`` (found in the index, never by a Scan), once each."""
    run = BirthdayRun(program.id)
    campaign = birthday_campaign(program)
    if campaign is None:
        return run
    today = now.astimezone(UTC).date()
    for back in range(LOOKBACK_DAYS, -1, -1):
        for entry in list(store.birthdays_due(program.id, today - timedelta(days=back), now)):
            member_id = str(entry["pk"]).rsplit("#M#", 1)[1]
            why = _one(member_id, entry, now, program, campaign, store, run)
            if why is not None:
                run.refused[why] = run.refused.get(why, 0) + 1
    return run


def _one(
    member_id: str,
    entry: Mapping[str, Any],
    now: datetime,
    program: Program,
    campaign: Any,
    store: BirthdayStore,
    run: BirthdayRun,
) -> str | None:
    """One member's birthday: paid (None) or why not."""
    decision = decide(program, campaign, entry, now)
    index_at = str(entry["bdayAt"])
    if decision.verdict != PAY:
        outcome = {"verdict": decision.verdict, "at": to_utc_iso(now)}
        if decision.day is not None:
            outcome["day"] = decision.day.isoformat()
        store.move_birthday(program.id, member_id, index_at, decision.next_keys, outcome)
        return decision.verdict
    plan = plan_gift(program, campaign, entry, decision, now)
    lower_check = False
    for _ in range(MAX_TRIES):
        written, found = store.gift(program.id, member_id, plan, to_utc_iso(now), lower_check)
        verdict = str(written)
        if verdict == "rewarded":
            run.paid += 1
            run.points += plan.points
            return None
        if verdict == "no_member":
            if not found or found.get("bdayAt") != index_at:
                return "changed_meanwhile"  # its profile changed: the index has it anew
            lower_check = not lower_check  # the member's due day is not as assumed
            continue
        # Paid before (a crash after the gift), over the member's limit or the budget: move on.
        outcome = {"verdict": verdict, "day": plan.day.isoformat(), "at": to_utc_iso(now)}
        store.move_birthday(program.id, member_id, index_at, plan.next_keys, outcome)
        return verdict
    raise TransientConflict(f"the birthday of {member_id} kept changing")
