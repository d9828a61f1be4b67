"""Privacy requests an administrator makes for a member (docs/privacy.md): the export of every
item kept under the member's partition, and the erasure of the member's personal fields, which
keeps the totals, the ledger and the audit trail.

The personal fields are those a member's profile brings (birthday, zone, language) and what is
derived from them (the birthday index keys, when it changed, what the last birthday paid), and
the quiet hours and language of the member's notification preferences;
everything else the engine keeps is ids, points, money and the rules that decided them."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from msgspec import Struct

from shared.domain.errors import NotFound
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso
from shared.logic.ports import Page, TransientConflict

PERSONAL_ATTRS = (
    "birthday",
    "timeZone",
    "locale",
    "birthdayChangedAt",
    "bdayDay",
    "bdayAt",
    "birthdayOutcome",
)
"""The member item's personal fields (the profile's and what derives from it)."""
PERSONAL_PREFERENCES = ("quietStart", "quietEnd", "locale")
"""The personal fields of the member's notification preferences (the ``PREFS`` item): their
quiet hours and language. The channel choices and the marketing opt-out stay, so that the erasure
does not turn on messages the member had turned off."""
PREFERENCES_PREFIX = "preferences."
"""How an erased preference is named in ``removed`` and the audit (``preferences.locale``)."""
MAX_TRIES = 5
MAX_EXPORT_PAGE = 500


class PrivacyStore(Protocol):
    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...

    def member_items(
        self, program_id: str, member_id: str, limit: int, after: str | None
    ) -> Page: ...

    def preference_fields(
        self, program_id: str, member_id: str, names: Sequence[str]
    ) -> tuple[str, ...]: ...

    def erase(
        self,
        program_id: str,
        member_id: str,
        removed: Sequence[str],
        audit: Mapping[str, Any],
        profile_at: str,
        preferences: Sequence[str] = (),
    ) -> bool: ...


class Erasure(Struct, frozen=True):
    member_id: str
    program_id: str
    changed: bool
    """False: no personal field was left (nothing erased, nothing audited)."""
    removed: tuple[str, ...]
    erased_at: str | None


def plain(value: Any) -> Any:
    """A stored value as JSON can carry it: whole numbers as numbers, other decimals as
    strings, binary as base64, sets as sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    raw = getattr(value, "value", value)  # boto3's Binary holds its bytes in ``value``
    if isinstance(raw, bytes | bytearray):
        return base64.b64encode(bytes(raw)).decode()
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def export_member(
    program: Program, member_id: str, store: PrivacyStore, limit: int, after: str | None
) -> Page:
    """A page of everything kept under the member's partition in ``program``, in key order."""
    page = store.member_items(program.id, member_id, min(limit, MAX_EXPORT_PAGE), after)
    if not page.items and after is None:
        raise NotFound(f"memberId: no member {member_id} in {program.id}", field="memberId")
    return Page([plain(item) for item in page.items], page.next_token)


def erase_member(
    program: Program, member_id: str, by: str, reason: str, now: datetime, store: PrivacyStore
) -> Erasure:
    """Remove the member item's personal fields and those of the member's notification
    preferences, audited (who, when, why, which fields) on the member item. Idempotent: a
    member with none left is answered unchanged."""
    at = to_utc_iso(now)
    for _ in range(MAX_TRIES):
        member = store.get_member(program.id, member_id)
        if member is None:
            raise NotFound(f"memberId: no member {member_id} in {program.id}", field="memberId")
        fields = tuple(name for name in PERSONAL_ATTRS if name in member)
        preferences = store.preference_fields(program.id, member_id, PERSONAL_PREFERENCES)
        present = fields + tuple(PREFERENCES_PREFIX + name for name in preferences)
        if not present:
            last = (member.get("erasures") or [{}])[-1]
            return Erasure(member_id, program.id, False, (), last.get("erasedAt"))
        audit = {"erasedAt": at, "by": by, "reason": reason, "fields": list(present)}
        profile_at = max(at, str(member.get("profileAt") or ""))
        if store.erase(program.id, member_id, fields, audit, profile_at, preferences):
            return Erasure(member_id, program.id, True, present, at)
    raise TransientConflict(f"the profile of {member_id} kept changing during its erasure")
