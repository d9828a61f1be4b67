"""The administrators' use cases: a member's standing and a page of their ratings (with those
waiting for their order and expired), and an audited exclusion or restore of one rating.

They answer values, not the API's shape: ``shared.api_models.admin`` builds the answers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime

from msgspec import Struct
from msgspec.structs import replace

from shared.domain.errors import InvalidInput, NotFound
from shared.domain.program import Program
from shared.domain.raters import RaterState, cleared_of_tip_baiting
from shared.domain.rating_window import RatingWindow
from shared.domain.ratings import MAX_AUDIT_ENTRIES, AdminAction, RatingSlot
from shared.domain.timeutil import stored_instant_iso, to_utc_iso
from shared.logic.ports import TransientConflict

from .core import edit_slot
from .ports import SLOT_KEY_PREFIX, RatingStore, Waiting


def encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        sk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return sk if sk.startswith(SLOT_KEY_PREFIX) else None


class AdminEdit(Struct, frozen=True):
    slot: RatingSlot
    """The rated slot as it stands."""
    changed: bool
    """False: it already stood so (nothing audited)."""


class ExpiredRating(Struct, frozen=True):
    """A waiting rating never applied, and why."""

    rating_id: str | None
    order_id: str | None
    reason: str | None
    at: str | None


class MemberPage(Struct, frozen=True):
    """A member's standing and a page of their rated slots, newest first."""

    member_id: str
    window: RatingWindow
    eligible: bool
    eligibility_reason: str
    eligibility_changed_at: str | None
    slots: tuple[RatingSlot, ...]
    next_token: str | None
    waiting: tuple[Waiting, ...] | None
    """Ratings waiting for their order (the first page only, else None)."""
    expired: tuple[ExpiredRating, ...] | None
    """The first page only, else None."""


def _admin_edit(
    program: Program,
    store: RatingStore,
    rating_id: str,
    edit: Callable[[RatingSlot], RatingSlot | None],
    now: datetime,
) -> AdminEdit:
    ref = store.get_ref(program.id, rating_id)
    if ref is None:
        raise NotFound(f"no rating {rating_id}", field="ratingId")

    def edit_this(slot: RatingSlot) -> RatingSlot | None:
        # A reference left by a rating refused for its order names a slot rated by another.
        if slot.rating is None or slot.rating.rating_id != rating_id:
            return None
        return edit(slot)

    edited = edit_slot(program, store, ref.member_id, ref.slot_sk, edit_this, now)
    rating = edited[1].rating if edited is not None else None
    if edited is None or rating is None or rating.rating_id != rating_id:
        raise NotFound(f"no rating {rating_id}", field="ratingId")
    before, after, _window = edited
    return AdminEdit(slot=after, changed=before is not after)


def exclude_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> AdminEdit:
    """Exclude a rating (audited). Idempotent: excluding an excluded rating changes nothing."""
    action = AdminAction("exclude", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is not None:
            return None
        return replace(slot, admin=action, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return _admin_edit(program, store, rating_id, edit, now)


def restore_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> AdminEdit:
    """Lift an administrator's exclusion (audited); the other exclusions still apply."""
    action = AdminAction("restore", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is None:
            return None
        return replace(slot, admin=None, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return _admin_edit(program, store, rating_id, edit, now)


def member_ratings(
    program: Program, store: RatingStore, member_id: str, limit: int, cursor: str | None
) -> MemberPage:
    """The member's standing and ratings (newest first, a page of slots), and on the first
    page those waiting for their order or expired."""
    after = None
    if cursor is not None:
        after = decode_cursor(cursor)
        if after is None:
            raise InvalidInput("nextToken is not one this API gave", field="nextToken")
    member = store.get_member(program.id, member_id) or {}
    window = store.get_window(program.id, member_id)
    rows, last = store.list_slots(program.id, member_id, limit, after)
    if not member and not rows and window.version == 0 and after is None:
        raise NotFound(f"no member {member_id}", field="memberId")
    first = after is None
    return MemberPage(
        member_id=member_id,
        window=window,
        eligible=bool(member.get("eligible", True)),
        eligibility_reason=str(member.get("eligibilityReason", "not_judged")),
        eligibility_changed_at=stored_instant_iso(member.get("eligibilityChangedAt")),
        slots=tuple(slot for _sk, slot, _item in rows if slot.rating is not None),
        next_token=encode_cursor(last) if last else None,
        waiting=tuple(w for w in store.list_waiting(program.id, member_id) if w.rating is not None)
        if first
        else None,
        expired=tuple(
            ExpiredRating(
                rating_id=item.get("rating", {}).get("ratingId"),
                order_id=item.get("orderId"),
                reason=item.get("reason"),
                at=item.get("expiredAt"),
            )
            for item in store.list_expired(program.id, member_id)
        )
        if first
        else None,
    )


MAX_FLAG_ATTEMPTS = 5
"""How many times lifting a flag reads the customer again when rating moderation wrote it first."""


class FlagLift(Struct, frozen=True):
    state: RaterState
    """The customer as it stands."""
    changed: bool
    """False: the customer was not flagged (nothing lifted, nothing audited)."""


def clear_tip_bait_flag(
    program: Program, store: RatingStore, customer_id: str, by: str, reason: str, now: datetime
) -> FlagLift:
    """An administrator lifts a customer's tip-baiting flag (audited on the customer's item: who,
    when, why, and the flag lifted). Idempotent: a customer not flagged is answered as is. The
    write is conditioned on the customer's version, like rating moderation's own."""
    for _ in range(MAX_FLAG_ATTEMPTS):
        state = store.get_rater(program.id, customer_id)
        if state.version == 0:
            raise NotFound(f"customerId: no customer {customer_id} has rated", field="customerId")
        lifted = cleared_of_tip_baiting(state, by, reason, now)
        if lifted is None:
            return FlagLift(state, changed=False)
        if store.put_rater(program.id, lifted):
            return FlagLift(replace(lifted, version=state.version + 1), changed=True)
    raise TransientConflict("the customer kept changing while the flag was lifted")
