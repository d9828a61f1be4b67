"""The admin API's responses (``functions/admin_api``); its request body is
``shared.domain.ratings.AdminReason``.

Fields absent from an answer (an exclusion's details depend on its reason; ``waiting`` and
``expired`` come with the first page only) stay absent: answers are written with
``exclude_unset``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


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


class RatingChange(_Out):
    """An administrator's exclusion or restore: the rating as it stands, and whether it
    changed (false: it already stood so, nothing was audited)."""

    rating: RatingView
    changed: bool


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


class ExpiredRating(_Out):
    rating_id: str | None
    order_id: str | None
    reason: str | None
    at: str | None


class MemberRatings(_Out):
    """A member's standing and a page of their ratings, newest first."""

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
