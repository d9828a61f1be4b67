# ruff: noqa: RUF001 (the Russian messages are Cyrillic on purpose)
"""Member notifications: which outbound events become a message, in which words, and when.

Pure functions of the event, the member's preferences and "now" (docs/notifications.md):

- ``NOTIFIED``: the events a member hears about, each *transactional* (about something the
  member did or holds: a tier change, a redemption, a donation's receipt, points about to
  expire, a prize won) or *marketing* (a nudge: a tier at risk, a campaign's bonus). Marketing
  messages are capped per member and ISO week, and never sent to a member who opted out or
  during their quiet hours; transactional ones are sent whatever the hour.
- ``TEMPLATES``: the words, in English, German and Russian (``render``).
- ``in_quiet_hours``: whether a local wall-clock time falls in the member's quiet window, which
  may cross midnight; computed on the member's own clock, so a daylight-saving change moves the
  window with the member's day.
- ``iso_week``: the ISO week of an instant on the member's clock (the cap's period).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct

LOCALES = ("en", "de", "ru")
DEFAULT_LOCALE = "en"
MARKETING_PER_WEEK = 3
"""At most this many marketing messages a member and ISO week (on the member's clock)."""


class Category(StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


NOTIFIED: Mapping[str, Category] = {
    "MemberTierChanged": Category.TRANSACTIONAL,
    "PerkRedeemed": Category.TRANSACTIONAL,
    "DonationMade": Category.TRANSACTIONAL,
    "PointsExpiring": Category.TRANSACTIONAL,
    "PrizeWon": Category.TRANSACTIONAL,
    "MemberTierAtRisk": Category.MARKETING,
    "CampaignRewarded": Category.MARKETING,
}
"""The outbound events that become a message, and their kind. (``PrizeDrawOpened`` names no
member: announcing it to everyone is a campaign tool's job, not a per-member message.)"""


class Skip(StrEnum):
    """Why a message was not sent (kept on its record)."""

    OPTED_OUT = "opted_out"
    QUIET_HOURS = "quiet_hours"
    WEEKLY_CAP = "weekly_cap"
    NO_CHANNEL = "no_channel"


class Preferences(Struct, frozen=True):
    """A member's choices; a member who never chose has these defaults."""

    push: bool = True
    email: bool = True
    quiet_start: str | None = None
    """``HH:MM`` on the member's clock; with ``quiet_end``, or both None (no quiet hours)."""
    quiet_end: str | None = None
    locale: str | None = None
    """None: the profile's language (``ProfileUpdated``), else English."""
    marketing_opt_out: bool = False
    updated_at: str | None = None


class Message(Struct, frozen=True):
    title: str
    text: str
    locale: str


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(preferences: Preferences, now: datetime, zone: str) -> bool:
    """Whether ``now`` is within the member's quiet hours on the clock of ``zone``: from
    ``quiet_start`` included to ``quiet_end`` excluded, across midnight when start > end.

    The comparison is of wall-clock times in the member's zone, so 22:00-07:00 stays 22:00-07:00
    on both sides of a daylight-saving change (the window is an hour shorter or longer in
    absolute time that night). A window whose start does not exist that night (02:30 on the
    spring-forward night in Berlin) begins at the first local time after it."""
    if preferences.quiet_start is None or preferences.quiet_end is None:
        return False
    start, end = _clock(preferences.quiet_start), _clock(preferences.quiet_end)
    local = now.astimezone(ZoneInfo(zone)).time().replace(second=0, microsecond=0, tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def iso_week(now: datetime, zone: str) -> str:
    """``YYYY-Www``: the ISO week of ``now`` on the clock of ``zone`` (weeks start on Monday)."""
    year, week, _ = now.astimezone(ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


def locale_of(preferences: Preferences, profile_locale: str | None) -> str:
    """The member's language: their preference, else their profile's, else English."""
    for candidate in (preferences.locale, profile_locale):
        if candidate in LOCALES:
            return str(candidate)
    return DEFAULT_LOCALE


# The words of each message: title and text, with the event's fields in braces. Tier and perk
# ids are shown as the program names them (``names``); numbers as they come.
TEMPLATES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "en": {
        "MemberTierChanged": ("Your tier changed", "You are now {to} (before: {from})."),
        "PerkRedeemed": ("Perk redeemed", "Your {perkId} is confirmed."),
        "DonationMade": (
            "Thank you for giving",
            "You gave {points} points to {causeId}; the company matched {matched}.",
        ),
        "PointsExpiring": ("Points expiring", "{points} points expire on {expiresOn}."),
        "PrizeWon": ("You won!", "You won the {month} prize draw: {prize}."),
        "MemberTierAtRisk": (
            "Keep your tier",
            "Your {tier} tier drops to {dropsTo} on {dropsOn}: a few orders keep it.",
        ),
        "CampaignRewarded": ("Bonus points", "{points} bonus points from {campaignId}."),
    },
    "de": {
        "MemberTierChanged": (
            "Deine Stufe hat sich geändert",
            "Du bist jetzt {to} (vorher: {from}).",
        ),
        "PerkRedeemed": ("Vorteil eingelöst", "Dein {perkId} ist bestätigt."),
        "DonationMade": (
            "Danke für deine Spende",
            "Du hast {points} Punkte an {causeId} gespendet; das Unternehmen legt {matched} dazu.",
        ),
        "PointsExpiring": ("Punkte verfallen", "{points} Punkte verfallen am {expiresOn}."),
        "PrizeWon": ("Gewonnen!", "Du hast die Verlosung {month} gewonnen: {prize}."),
        "MemberTierAtRisk": (
            "Behalte deine Stufe",
            "Deine Stufe {tier} fällt am {dropsOn} auf {dropsTo}: ein paar Aufträge halten sie.",
        ),
        "CampaignRewarded": ("Bonuspunkte", "{points} Bonuspunkte aus {campaignId}."),
    },
    "ru": {
        "MemberTierChanged": ("Ваш уровень изменился", "Теперь у вас {to} (раньше: {from})."),
        "PerkRedeemed": ("Привилегия получена", "Ваш {perkId} подтверждён."),
        "DonationMade": (
            "Спасибо за пожертвование",
            "Вы передали {points} баллов в {causeId}; компания добавила {matched}.",
        ),
        "PointsExpiring": ("Баллы сгорают", "{points} баллов сгорят {expiresOn}."),
        "PrizeWon": ("Вы выиграли!", "Вы выиграли розыгрыш {month}: {prize}."),
        "MemberTierAtRisk": (
            "Сохраните уровень",
            "Уровень {tier} понизится до {dropsTo} {dropsOn}: несколько заказов сохранят его.",
        ),
        "CampaignRewarded": ("Бонусные баллы", "{points} бонусных баллов от {campaignId}."),
    },
}

NONE_WORD = {"en": "none", "de": "keine", "ru": "нет"}


class _Fields(dict[str, Any]):
    """The event's fields for a template: a field the event lacks reads as "none"."""

    def __init__(self, values: Mapping[str, Any], locale: str) -> None:
        super().__init__(values)
        self.locale = locale

    def __missing__(self, key: str) -> str:
        return NONE_WORD[self.locale]


def _shown(value: Any, names: Mapping[str, str], locale: str) -> Any:
    if value is None:
        return NONE_WORD[locale]
    if isinstance(value, Mapping) and "amount" in value:  # money: "12.50 USD"
        return f"{value.get('amount')} {value.get('currency', '')}".strip()
    return names.get(str(value), value)


def render(
    detail_type: str, detail: Mapping[str, Any], locale: str, names: Mapping[str, str]
) -> Message:
    """The message of an event in ``locale`` (``names``: display names of the program's ids,
    such as ``gold`` -> ``Gold``)."""
    words = TEMPLATES.get(locale) or TEMPLATES[DEFAULT_LOCALE]
    title, text = words[detail_type]
    fields = _Fields({key: _shown(value, names, locale) for key, value in detail.items()}, locale)
    return Message(title=title, text=text.format_map(fields), locale=locale)


def relay_mailbox(program_id: str, member_id: str) -> str:
    """The local part of a member's relay address: a pseudonym the company's mail relay maps to
    the real address, so that the engine never holds one (docs/notifications.md)."""
    return "m-" + hashlib.sha256(f"{program_id}|{member_id}".encode()).hexdigest()[:24]
