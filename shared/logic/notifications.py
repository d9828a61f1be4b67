"""Use cases of the notifier: an outbound event becomes a message, once, by the member's
preferences; the preferences themselves (docs/notifications.md).

Exactly once per event: the first delivery *claims* the event (a record keyed by its
``eventId``, put only if absent), sends, then marks the record sent. A redelivery finds the
record and sends nothing. A marketing message's claim is one transaction with the member's
counter of the week (``sent < 3``), so that concurrent deliveries never send a fourth; a refused
counter leaves a record saying ``weekly_cap``. A channel that fails marks the record failed
with the channels already done; the queue's next delivery takes it over and sends the rest. A
delivery that died between sending and marking leaves a claim that another delivery takes over
once its lease ran out (``LEASE``): that one window can send a message twice, never lose it.

Times: ``now`` is the event's delivery instant (SQS ``SentTimestamp``), the same at every
redelivery, so quiet hours and the week are judged the same way each time; ``wall`` is the
clock, for the lease only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from msgspec import Struct, structs

from shared.domain.notifications import (
    MARKETING_PER_WEEK,
    NOTIFIED,
    Category,
    Message,
    Preferences,
    Skip,
    in_quiet_hours,
    iso_week,
    locale_of,
    render,
)
from shared.domain.program import Program
from shared.domain.zones import member_zone_name

CHANNELS = ("push", "email")
LEASE = timedelta(minutes=5)
"""A claim older than this, still ``sending``, is a delivery that died: it is taken over."""
NOTE_DAYS = 35
"""How long an event's record is kept (TTL): longer than any redelivery (the queue keeps a
message 4 days, EventBridge retries for a day)."""


class State(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Note(Struct, frozen=True):
    """The notifier's record of one event for one member."""

    event_id: str
    detail_type: str
    category: str
    state: str
    token: str
    at: str
    """When it was claimed or decided (the wall clock, ISO)."""
    reason: str | None = None
    channels: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    week: str | None = None
    locale: str | None = None


class Claim(StrEnum):
    CLAIMED = "claimed"
    EXISTS = "exists"
    CAPPED = "capped"


class Delivery(Struct, frozen=True):
    """What a channel is handed: ids and the words, never an address (the channel resolves
    it)."""

    event_id: str
    program_id: str
    member_id: str
    category: str
    channel: str
    message: Message


class NotificationStore(Protocol):
    def member_settings(
        self, program_id: str, member_id: str
    ) -> tuple[Preferences | None, Mapping[str, Any] | None]:
        """The member's preferences (None: never set) and member item (zone, language)."""
        ...

    def save_preferences(
        self, program_id: str, member_id: str, preferences: Preferences
    ) -> None: ...

    def claim(
        self, program_id: str, member_id: str, note: Note, limit: int, expires_at: int
    ) -> tuple[Claim, Note | None]:
        """Put ``note`` if the event has none; with ``note.week``, in the same transaction add
        one to the week's counter if it is below ``limit``. The existing note on EXISTS."""
        ...

    def put_note(self, program_id: str, member_id: str, note: Note, expires_at: int) -> Note | None:
        """Put ``note`` if the event has none: None when put, else the existing one."""
        ...

    def take_over(self, program_id: str, member_id: str, old: Note, new: Note) -> bool:
        """Replace ``old`` (still as it was: same token and state) by ``new``."""
        ...

    def finish(self, program_id: str, member_id: str, note: Note) -> None:
        """Write the note's state and channels done (its claim's token still holding)."""
        ...


class Sender(Protocol):
    channels: tuple[str, ...]
    """The channels this sender can deliver to (e-mail needs a domain on AWS)."""

    def send(self, delivery: Delivery) -> None: ...


class InFlight(Exception):
    """Another delivery of the event is sending it now: retry later (the queue will)."""


class Outcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class Result(Struct, frozen=True):
    outcome: Outcome
    event_id: str | None
    detail_type: str
    category: str | None = None
    reason: str | None = None
    channels: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "event_id": self.event_id,
            "detail_type": self.detail_type,
            "category": self.category,
            "reason": self.reason,
            "channels": list(self.channels),
        }


def display_names(program: Program) -> dict[str, str]:
    """The program's ids as members read them (tiers, perks, campaigns, causes)."""
    names = {tier.id: tier.name for tier in program.tiers}
    names.update({c.id: c.name for c in program.campaigns if c.name})
    names.update({perk.id: perk.name for perk in program.perks if perk.name})
    if program.giving is not None:
        names.update({cause.id: cause.name for cause in program.giving.causes})
    return names


def member_clock(program: Program, member: Mapping[str, Any] | None) -> str:
    """The member's zone: their profile's, else the program's."""
    return member_zone_name(member) or program.time_zone


def notify(
    detail_type: str,
    detail: Mapping[str, Any],
    now: datetime,
    wall: Callable[[], datetime],
    program: Program,
    store: NotificationStore,
    sender: Sender,
) -> Result:
    """The message of one outbound event, sent at most once by the member's preferences."""
    category = NOTIFIED.get(detail_type)
    event_id = detail.get("eventId")
    member_id = detail.get("memberId")
    if category is None or not event_id or not member_id:
        return Result(Outcome.IGNORED, str(event_id) if event_id else None, detail_type)
    event_id, member_id = str(event_id), str(member_id)
    stored, member = store.member_settings(program.id, member_id)
    preferences = stored or Preferences()
    zone = member_clock(program, member)
    channels = tuple(
        name for name in CHANNELS if getattr(preferences, name) and name in sender.channels
    )
    note = Note(
        event_id=event_id,
        detail_type=detail_type,
        category=category.value,
        state=State.SENDING,
        token=uuid.uuid4().hex,
        at=wall().isoformat(),
        channels=channels,
        locale=locale_of(preferences, (member or {}).get("locale")),
        week=iso_week(now, zone) if category is Category.MARKETING else None,
    )
    expires_at = int((now + timedelta(days=NOTE_DAYS)).timestamp())
    reason = _refusal(category, preferences, channels, now, zone)
    if reason is not None:
        return _skip(program.id, member_id, note, reason, store, expires_at)
    claim, existing = store.claim(program.id, member_id, note, MARKETING_PER_WEEK, expires_at)
    if claim is Claim.CAPPED:
        return _skip(program.id, member_id, note, Skip.WEEKLY_CAP, store, expires_at)
    if claim is Claim.EXISTS:
        assert existing is not None
        if existing.state in (State.SENT, State.SKIPPED):
            return _duplicate(existing)
        if existing.state == State.SENDING and wall() - _parse(existing.at) < LEASE:
            raise InFlight(f"event {event_id} is being sent by another delivery")
        taken = structs.replace(
            existing, state=State.SENDING, token=note.token, at=note.at, channels=channels
        )
        if not store.take_over(program.id, member_id, existing, taken):
            raise InFlight(f"event {event_id} was taken over by another delivery")
        note = taken
    message = render(detail_type, detail, note.locale or "en", display_names(program))
    done = list(note.done)
    for channel in note.channels:
        if channel in done:
            continue
        try:
            sender.send(Delivery(event_id, program.id, member_id, note.category, channel, message))
        except Exception:
            store.finish(
                program.id,
                member_id,
                structs.replace(note, state=State.FAILED, done=tuple(done)),
            )
            raise
        done.append(channel)
    store.finish(program.id, member_id, structs.replace(note, state=State.SENT, done=tuple(done)))
    return Result(Outcome.SENT, event_id, detail_type, note.category, None, tuple(done))


def _refusal(
    category: Category,
    preferences: Preferences,
    channels: tuple[str, ...],
    now: datetime,
    zone: str,
) -> Skip | None:
    """Why the member gets no message, before any counting (None: send)."""
    if category is Category.MARKETING and preferences.marketing_opt_out:
        return Skip.OPTED_OUT
    if not channels:
        return Skip.NO_CHANNEL
    if category is Category.MARKETING and in_quiet_hours(preferences, now, zone):
        return Skip.QUIET_HOURS
    return None


def _skip(
    program_id: str,
    member_id: str,
    note: Note,
    reason: Skip,
    store: NotificationStore,
    expires_at: int,
) -> Result:
    skipped = structs.replace(note, state=State.SKIPPED, reason=reason.value, week=None)
    existing = store.put_note(program_id, member_id, skipped, expires_at)
    if existing is not None:
        return _duplicate(existing)
    return Result(Outcome.SKIPPED, note.event_id, note.detail_type, note.category, reason.value)


def _duplicate(existing: Note) -> Result:
    return Result(
        Outcome.DUPLICATE,
        existing.event_id,
        existing.detail_type,
        existing.category,
        existing.reason,
        existing.done,
    )


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def preferences_of(
    program: Program, member_id: str, store: NotificationStore
) -> tuple[Preferences, str]:
    """The member's preferences (the defaults when never set) and the zone they apply in."""
    stored, member = store.member_settings(program.id, member_id)
    return stored or Preferences(), member_clock(program, member)


def save_preferences(
    program: Program, member_id: str, preferences: Preferences, store: NotificationStore
) -> tuple[Preferences, str]:
    """Replace the member's preferences; answers them with the zone they apply in."""
    store.save_preferences(program.id, member_id, preferences)
    return preferences_of(program, member_id, store)
