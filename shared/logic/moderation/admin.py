"""The administrators' use cases: a member's standing and ratings (counted and excluded, with
their reasons, waiting and expired), and an audited exclusion or restore of one rating.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from shared.domain.errors import InvalidInput, NotFound
from shared.domain.program import Program
from shared.domain.ratings import (
    MAX_AUDIT_ENTRIES,
    AdminAction,
    Exclusion,
    RatingSlot,
    average_of,
    exclusions,
    is_counted,
)
from shared.domain.timeutil import stored_instant_iso, to_utc_iso

from .core import edit_slot
from .ports import SLOT_KEY_PREFIX, RatingStore


def encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        sk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return sk if sk.startswith(SLOT_KEY_PREFIX) else None


def exclusion_details(slot: RatingSlot, program: Program) -> list[dict[str, object]]:
    details: list[dict[str, object]] = []
    for reason in exclusions(slot, program):
        detail: dict[str, object] = {"reason": reason.value}
        if reason is Exclusion.ADMIN and slot.admin is not None:
            detail.update(by=slot.admin.by, at=slot.admin.at, why=slot.admin.why)
        elif reason is Exclusion.TIP_BAITED and slot.tips:
            latest = max(slot.tips, key=lambda change: change.occurred_at)
            detail.update(
                at=latest.occurred_at,
                tipAtDelivery=str(slot.tip_at_delivery.amount) if slot.tip_at_delivery else None,
                tip=str(latest.new_tip.amount),
            )
        elif reason is Exclusion.OUTSIDE_CONTROL and slot.rating is not None:
            detail["ratingReasons"] = list(slot.rating.reasons)
        elif reason is Exclusion.ORDER_NOT_DELIVERED:
            detail["orderStatus"] = slot.order_status
        details.append(detail)
    return details


def rating_view(slot: RatingSlot, program: Program) -> dict[str, object]:
    assert slot.rating is not None
    return {
        "ratingId": slot.rating.rating_id,
        "orderId": slot.order_id,
        "customerId": slot.customer_id,
        "stars": slot.rating.stars,
        "reasons": list(slot.rating.reasons),
        "submittedAt": slot.rating.submitted_at,
        "completedAt": slot.completed_at,
        "counted": is_counted(slot, program),
        "exclusions": exclusion_details(slot, program),
        "audit": [{"action": a.action, "by": a.by, "at": a.at, "why": a.why} for a in slot.audit],
    }


def admin_edit(
    program: Program,
    store: RatingStore,
    rating_id: str,
    edit: Callable[[RatingSlot], RatingSlot | None],
    now: datetime,
) -> tuple[bool, dict[str, object]]:
    ref = store.get_ref(program.id, rating_id)
    if ref is None:
        raise NotFound(f"no rating {rating_id}", field="ratingId")
    edited = edit_slot(program, store, ref.member_id, ref.slot_sk, edit, now)
    if edited is None or edited[1].rating is None:
        raise NotFound(f"no rating {rating_id}", field="ratingId")
    before, after, _window = edited
    return before is not after, rating_view(after, program)


def exclude_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> tuple[bool, dict[str, object]]:
    """Exclude a rating (audited). Idempotent: excluding an excluded rating changes nothing."""
    action = AdminAction("exclude", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is not None:
            return None
        return replace(slot, admin=action, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return admin_edit(program, store, rating_id, edit, now)


def restore_rating(
    program: Program, store: RatingStore, rating_id: str, admin: str, why: str, now: datetime
) -> tuple[bool, dict[str, object]]:
    """Lift an administrator's exclusion (audited); the other exclusions still apply."""
    action = AdminAction("restore", admin, to_utc_iso(now), why)

    def edit(slot: RatingSlot) -> RatingSlot | None:
        if slot.admin is None:
            return None
        return replace(slot, admin=None, audit=(*slot.audit, action)[-MAX_AUDIT_ENTRIES:])

    return admin_edit(program, store, rating_id, edit, now)


def member_ratings(
    program: Program, store: RatingStore, member_id: str, limit: int, cursor: str | None
) -> dict[str, object]:
    """The member's standing and ratings (newest first, a page of slots), counted and
    excluded with their reasons, and those waiting for their order or expired."""
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
    counted: list[dict[str, object]] = []
    excluded: list[dict[str, object]] = []
    for _sk, slot, _item in rows:
        if slot.rating is None:
            continue
        view = rating_view(slot, program)
        (counted if view["counted"] else excluded).append(view)
    body: dict[str, object] = {
        "memberId": member_id,
        "rating": {
            "average": str(average_of(window.total, window.count)) if window.count else None,
            "count": window.count,
            "countedTotal": window.counted_total,
            "lastN": program.rating.last_n,
        },
        "eligible": bool(member.get("eligible", True)),
        "eligibilityReason": member.get("eligibilityReason", "not_judged"),
        "eligibilityChangedAt": stored_instant_iso(member.get("eligibilityChangedAt")),
        "counted": counted,
        "excluded": excluded,
        "nextToken": encode_cursor(last) if last else None,
    }
    if after is None:
        body["waiting"] = [
            {
                "ratingId": w.rating.rating_id,
                "orderId": w.order_id,
                "waitingSince": w.since,
                "expiresAt": w.expires_at,
                "reason": "order_not_arrived",
            }
            for w in store.list_waiting(program.id, member_id)
            if w.rating is not None
        ]
        body["expired"] = [
            {
                "ratingId": item.get("rating", {}).get("ratingId"),
                "orderId": item.get("orderId"),
                "reason": item.get("reason"),
                "at": item.get("expiredAt"),
            }
            for item in store.list_expired(program.id, member_id)
        ]
    return body
