"""The admin API's responses (``functions/admin_api``), built from the use cases' values
(``shared.logic.moderation.admin``); its request body is ``shared.domain.ratings.AdminReason``.

Fields absent from an answer (an exclusion's details depend on its reason; ``waiting`` and
``expired`` come with the first page only) stay absent: answers are written with
``exclude_unset`` (``answer_json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from shared.domain.numbers import WHOLE
from shared.domain.program import Program
from shared.domain.ratings import Exclusion, RatingSlot, average_of, exclusions, is_counted
from shared.logic.admin_actions import AdminTrail, OverrideChange
from shared.logic.moderation.admin import AdminEdit, FlagLift, MemberPage
from shared.logic.moderation.ports import Waiting


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    def answer_json(self) -> str:
        """The answer's JSON: camelCase, and only the fields given."""
        return self.model_dump_json(by_alias=True, exclude_unset=True)


class ExclusionView(_Out):
    """One reason a rating does not count, with its details."""

    reason: str = Field(
        description="admin, tip_baited, outside_control, hard_to_please, order_not_delivered"
    )
    by: str | None = Field(default=None, description="admin: the administrator (token sub)")
    at: str | None = Field(default=None, description="admin: when; tip_baited: the tip change")
    why: str | None = Field(default=None, description="admin: the reason given")
    tip_at_delivery: str | None = Field(default=None, description="tip_baited")
    tip: str | None = Field(default=None, description="tip_baited: the tip after the change")
    rating_reasons: list[str] | None = Field(default=None, description="outside_control")
    order_status: str | None = Field(default=None, description="order_not_delivered")

    @classmethod
    def of(cls, reason: Exclusion, slot: RatingSlot) -> Self:
        details: dict[str, Any] = {}
        if reason is Exclusion.ADMIN and slot.admin is not None:
            details.update(by=slot.admin.by, at=slot.admin.at, why=slot.admin.why)
        elif reason is Exclusion.TIP_BAITED and slot.tips:
            latest = max(slot.tips, key=lambda change: change.occurred_at)
            delivered = slot.tip_at_delivery
            details.update(
                at=latest.occurred_at,
                tip_at_delivery=str(delivered.amount) if delivered else None,
                tip=str(latest.new_tip.amount),
            )
        elif reason is Exclusion.OUTSIDE_CONTROL and slot.rating is not None:
            details["rating_reasons"] = list(slot.rating.reasons)
        elif reason is Exclusion.ORDER_NOT_DELIVERED:
            details["order_status"] = slot.order_status
        return cls(reason=reason.value, **details)


class AuditEntry(_Out):
    action: str = Field(description="exclude or restore")
    by: str
    at: str
    why: str


class RatingView(_Out):
    rating_id: str
    order_id: str
    customer_id: str
    stars: int
    reasons: list[str]
    submitted_at: str
    completed_at: str
    counted: bool
    exclusions: list[ExclusionView]
    audit: list[AuditEntry]

    @classmethod
    def of(cls, slot: RatingSlot, program: Program) -> Self:
        assert slot.rating is not None
        return cls(
            rating_id=slot.rating.rating_id,
            order_id=slot.order_id,
            customer_id=slot.customer_id,
            stars=slot.rating.stars,
            reasons=list(slot.rating.reasons),
            submitted_at=slot.rating.submitted_at,
            completed_at=slot.completed_at,
            counted=is_counted(slot, program),
            exclusions=[ExclusionView.of(reason, slot) for reason in exclusions(slot, program)],
            audit=[AuditEntry(action=a.action, by=a.by, at=a.at, why=a.why) for a in slot.audit],
        )


class RatingChange(_Out):
    """An administrator's exclusion or restore: the rating as it stands, and whether it
    changed (false: it already stood so, nothing was audited)."""

    rating: RatingView
    changed: bool

    @classmethod
    def of(cls, edit: AdminEdit, program: Program) -> Self:
        return cls(rating=RatingView.of(edit.slot, program), changed=edit.changed)


class ClearanceView(_Out):
    flagged_at: str
    order_ids: list[str] = Field(description="The baited orders the flag was raised on")
    cleared_at: str
    by: str = Field(description="The administrator (the token's subject)")
    reason: str


class TipBaitFlag(_Out):
    """A customer's tip-baiting flag after an administrator's request to lift it: whether it
    changed (false: the customer was not flagged, nothing was audited) and the audit trail of
    lifted flags."""

    customer_id: str
    flagged: bool
    changed: bool
    clearances: list[ClearanceView]

    @classmethod
    def of(cls, lift: FlagLift) -> Self:
        state = lift.state
        return cls(
            customer_id=state.customer_id,
            flagged=state.flagged_at is not None,
            changed=lift.changed,
            clearances=[
                ClearanceView(
                    flagged_at=entry.flagged_at,
                    order_ids=list(entry.orders),
                    cleared_at=entry.cleared_at,
                    by=entry.by,
                    reason=entry.reason,
                )
                for entry in state.clearances
            ],
        )


class MemberExport(_Out):
    """A page of everything kept under the member's partition in one program, in key order
    (stored values as JSON carries them: binary as base64, sets as lists)."""

    member_id: str
    program_id: str
    items: list[dict[str, Any]]
    next_token: str | None = None


class MemberErasure(_Out):
    """An erasure of a member's personal fields: which were removed (none, and ``changed``
    false, when none were left), and when."""

    member_id: str
    program_id: str
    changed: bool
    removed: list[str]
    erased_at: str | None = None


class Standing(_Out):
    average: str | None = Field(description="Over the last N counted ratings, rounded down")
    count: int
    counted_total: int
    last_n: int


class WaitingRating(_Out):
    rating_id: str
    order_id: str
    waiting_since: str
    expires_at: int = Field(description="Epoch seconds")
    reason: str

    @classmethod
    def of(cls, waiting: Waiting) -> Self:
        assert waiting.rating is not None
        return cls(
            rating_id=waiting.rating.rating_id,
            order_id=waiting.order_id,
            waiting_since=waiting.since,
            expires_at=waiting.expires_at,
            reason="order_not_arrived",
        )


class ExpiredRating(_Out):
    rating_id: str | None
    order_id: str | None
    reason: str | None
    at: str | None


Why = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, defer_build=True
    )


class AdjustmentRequest(_In):
    """``POST /v1/admin/members/{memberId}/adjustments``: points to add (positive) or remove
    (negative), and why."""

    points: Annotated[int, Field(ge=-1_000_000, le=1_000_000, strict=True), WHOLE] = Field(
        description="Non-zero: positive adds, negative removes (at most 1,000,000 either way)."
    )
    reason: Why = Field(description="Why (kept in the audit trail and the ledger).")
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] | None = Field(
        default=None, description="A label of the operator's choosing (goodwill, ...)."
    )


class TierOverrideRequest(_In):
    """``PUT /v1/admin/members/{memberId}/tier-override``: the tier, its last day, and why."""

    tier: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="One of the program's tiers."
    )
    until: date = Field(
        description="The override's last day (the member's local day), after today and "
        "within 366 days."
    )
    reason: Why = Field(description="Why (kept in the audit trail).")


class AdminActionView(_Out):
    """One administrator's action on the member (the audit trail)."""

    action: str = Field(description="adjustment, tier_override or tier_override_lifted")
    by: str = Field(description="The administrator (the token's subject)")
    at: str
    reason: str
    adjustment_id: str | None = Field(default=None, description="adjustment: its Idempotency-Key")
    points: int | None = Field(default=None, description="adjustment: points added (or removed)")
    kind: str | None = None
    day: str | None = Field(default=None, description="adjustment: the member's day it counted on")
    tier: str | None = Field(default=None, description="tier_override: the tier set")
    until: str | None = Field(default=None, description="tier_override: its last day")
    previous: dict[str, str] | None = Field(
        default=None, description="tier_override*: the override it replaced or lifted"
    )
    rule_version: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Self:
        fields: dict[str, Any] = {
            "action": str(record.get("action", "")),
            "by": str(record.get("by", "")),
            "at": str(record.get("at", "")),
            "reason": str(record.get("reason", "")),
        }
        for name, attribute in (
            ("adjustment_id", "adjustmentId"),
            ("kind", "kind"),
            ("day", "day"),
            ("tier", "tier"),
            ("until", "until"),
            ("rule_version", "ruleVersion"),
        ):
            if record.get(attribute) is not None:
                fields[name] = str(record[attribute])
        if record.get("points") is not None:
            fields["points"] = int(record["points"])
        if isinstance(record.get("previous"), Mapping):
            fields["previous"] = {str(k): str(v) for k, v in record["previous"].items()}
        return cls(**fields)


class AdjustmentView(_Out):
    """A points adjustment as first made (a replay answers the same, ``replayed`` true)."""

    member_id: str
    program_id: str
    adjustment: AdminActionView
    replayed: bool

    @classmethod
    def of(cls, record: Mapping[str, Any], replayed: bool) -> Self:
        return cls(
            member_id=str(record.get("memberId", "")),
            program_id=str(record.get("programId", "")),
            adjustment=AdminActionView.of(record),
            replayed=replayed,
        )


class TierOverrideState(_Out):
    tier: str
    until: date = Field(description="Its last day (the member's local day), included")
    active: bool = Field(description="False once its last day has passed")


class TierOverrideView(_Out):
    """A member's tier override after a request to set or lift it: whether it changed (false:
    it already stood so, nothing audited) and the audit record written."""

    member_id: str
    program_id: str
    override: TierOverrideState | None
    changed: bool
    audit: AdminActionView | None = None

    @classmethod
    def of(cls, member_id: str, program_id: str, change: OverrideChange) -> Self:
        fields: dict[str, Any] = {}
        if change.record is not None:
            fields["audit"] = AdminActionView.of(change.record)
        return cls(
            member_id=member_id,
            program_id=program_id,
            override=TierOverrideState(
                tier=change.override[0], until=change.override[1], active=change.active
            )
            if change.override
            else None,
            changed=change.changed,
            **fields,
        )


class MemberRatings(_Out):
    """A member's standing and a page of their ratings, newest first; on the first page, the
    administrators' actions on the member and their tier override."""

    member_id: str
    rating: Standing
    eligible: bool
    eligibility_reason: str
    eligibility_changed_at: str | None
    counted: list[RatingView]
    excluded: list[RatingView]
    next_token: str | None
    waiting: list[WaitingRating] | None = Field(default=None, description="First page only")
    expired: list[ExpiredRating] | None = Field(default=None, description="First page only")
    admin_actions: list[AdminActionView] | None = Field(
        default=None,
        description="First page only: administrators' adjustments and tier overrides, newest "
        "first (who, when, why)",
    )
    tier_override: TierOverrideState | None = Field(
        default=None, description="First page only: the member's tier override, if any"
    )

    @classmethod
    def of(cls, page: MemberPage, program: Program, trail: AdminTrail | None = None) -> Self:
        window = page.window
        views = [RatingView.of(slot, program) for slot in page.slots]
        fields: dict[str, Any] = {}
        if page.waiting is not None:
            fields["waiting"] = [WaitingRating.of(waiting) for waiting in page.waiting]
        if page.expired is not None:
            fields["expired"] = [
                ExpiredRating(rating_id=e.rating_id, order_id=e.order_id, reason=e.reason, at=e.at)
                for e in page.expired
            ]
        if trail is not None:
            fields["admin_actions"] = [AdminActionView.of(record) for record in trail.records]
            fields["tier_override"] = (
                TierOverrideState(
                    tier=trail.override[0], until=trail.override[1], active=trail.active
                )
                if trail.override
                else None
            )
        return cls(
            member_id=page.member_id,
            rating=Standing(
                average=str(average_of(window.total, window.count)) if window.count else None,
                count=window.count,
                counted_total=window.counted_total,
                last_n=program.rating.last_n,
            ),
            eligible=page.eligible,
            eligibility_reason=page.eligibility_reason,
            eligibility_changed_at=page.eligibility_changed_at,
            counted=[view for view in views if view.counted],
            excluded=[view for view in views if not view.counted],
            next_token=page.next_token,
            **fields,
        )
