"""Inbound events (the contract in README.md): the fields of ``detail``, camelCase on the wire.

Events reach the functions three ways (EventBridge, SQS, the IAM HTTP route) and always in the
EventBridge shape ``{"detail-type": ..., "detail": {...}}``. Parsing is strict about what the
contract says (types, ranges, ISO timestamps with an offset, non-negative amounts) and tolerant
of fields the contract does not name: producers may add fields without poisoning every event.
Unknown fields are reported back (``unknown_fields``) so the caller can log them; they are
never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .errors import InvalidInput, MalformedRequest, UnsupportedEvent
from .ids import BatchIdField, CustomerIdField, MemberIdField, OfferIdField, OrderIdField
from .money import Amount, Currency, Money
from .program import Slug
from .timeutil import Birthday, Instant, TimeZoneName


class InboundEvent(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        defer_build=True,  # each function validates its own events: built on first use
    )
    detail_type: ClassVar[str]

    @property
    def unknown_fields(self) -> list[str]:
        return sorted(self.model_extra or {})


class RoundUp(BaseModel):
    """The change of an order the customer gives to a cause (docs/campaigns.md, "Giving").
    Checked against the program when applied, not here: a cause it does not know (or another
    currency, or too much) is kept as a refusal with its reason, and the order still counts."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        defer_build=True,
    )

    amount: Amount
    currency: Currency
    cause_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class OrderCompleted(InboundEvent):
    """One completed order, or one event for a whole batch.

    A batch is several orders delivered together, each with its own customer, tip and rating.
    Producers describe it one of two ways: one event per order, each carrying the batch's
    ``batchId`` (each is one order, ``batchSize`` 1), or one event for the batch with its
    ``batchSize`` (the points and the orders count are the batch's; the event's customer is
    the one its rating and tip belong to). Both ways at once is refused."""

    detail_type: ClassVar[str] = "OrderCompleted"

    order_id: OrderIdField
    member_id: MemberIdField
    customer_id: CustomerIdField
    completed_at: Instant
    batch_id: BatchIdField | None = None
    """The batch this order was delivered in (an event with a batch id is one order)."""
    batch_size: Annotated[int, Field(ge=1, le=3, strict=True)] = 1
    total: Money
    tip: Money
    eco_choices: Annotated[tuple[Slug, ...], Field(max_length=10)] = ()
    """What the customer chose to spare (e.g. ``no_cutlery``): campaigns may reward it."""
    round_up: RoundUp | None = None
    """The change given to a cause (customer programs with causes)."""

    @field_validator("batch_size")
    @classmethod
    def _one_order_per_batch_id(cls, value: int, info: ValidationInfo) -> int:
        # batch_id is declared first, so it is validated by now (absent from data if invalid).
        if value > 1 and info.data.get("batch_id") is not None:
            raise ValueError(
                "an event with a batchId is one order of its batch: batchSize must be 1 "
                "(send each order of the batch as its own event)"
            )
        return value


class OrderCancelled(InboundEvent):
    detail_type: ClassVar[str] = "OrderCancelled"

    order_id: OrderIdField
    member_id: MemberIdField
    occurred_at: Instant
    customer_id: CustomerIdField | None = None
    """Optional: the order's customer (customer programs find it from the shopper's order
    otherwise)."""


class OrderRefunded(OrderCancelled):
    detail_type: ClassVar[str] = "OrderRefunded"

    amount: Money | None = None
    """A partial refund: the amount refunded (none: the whole order)."""


class MembershipChanged(InboundEvent):
    """From billing: a customer's paid membership started, renewed, or ended (``plan`` null)."""

    detail_type: ClassVar[str] = "MembershipChanged"

    customer_id: CustomerIdField
    plan: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")] | None
    valid_until: Instant | None = None
    occurred_at: Instant

    @model_validator(mode="after")
    def _a_plan_has_an_end(self) -> MembershipChanged:
        if self.plan is not None and self.valid_until is None:
            raise ValueError("validUntil is required with a plan")
        return self


class CustomerSignedUp(InboundEvent):
    """From the sign-up service: a new customer, and the referral code they gave (if any). The
    referral is recorded in every customer program with a referral campaign (docs/campaigns.md)."""

    detail_type: ClassVar[str] = "CustomerSignedUp"

    customer_id: CustomerIdField
    referral_code: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=40,
                pattern=r"^[A-Za-z0-9 -]+$",
                description="The code as the customer typed it: case, spaces and hyphens do not "
                "matter (Crockford base32: I and L read as 1, O as 0).",
            ),
        ]
        | None
    ) = None
    signed_up_at: Instant


class ProfileUpdated(InboundEvent):
    """From the profile service: a customer's birthday, time zone and language, as they now
    stand (an absent or null field is not set). The latest by ``occurredAt`` wins."""

    detail_type: ClassVar[str] = "ProfileUpdated"

    program_id: Slug
    member_id: MemberIdField
    birthday: Birthday | None = None
    time_zone: TimeZoneName | None = None
    locale: Literal["en", "de", "ru"] | None = None
    occurred_at: Instant


class TipAdjusted(InboundEvent):
    detail_type: ClassVar[str] = "TipAdjusted"

    order_id: OrderIdField
    member_id: MemberIdField
    customer_id: CustomerIdField
    previous_tip: Money
    new_tip: Money
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    occurred_at: Instant


class OfferAccepted(InboundEvent):
    """From dispatch: the shopper accepted an offer (a batch to shop and deliver)."""

    detail_type: ClassVar[str] = "OfferAccepted"

    offer_id: OfferIdField
    member_id: MemberIdField
    occurred_at: Instant


class OfferDeclined(OfferAccepted):
    """From dispatch: the shopper declined an offer; after accepting it, a drop."""

    detail_type: ClassVar[str] = "OfferDeclined"


class DeliveryLate(InboundEvent):
    """From dispatch: the order was delivered (or is on its way) past its promised time."""

    detail_type: ClassVar[str] = "DeliveryLate"

    order_id: OrderIdField
    member_id: MemberIdField
    minutes_late: Annotated[int, Field(ge=1, le=100_000, strict=True)]
    occurred_at: Instant


QualityEvent = OfferAccepted | OfferDeclined | DeliveryLate


class Envelope(BaseModel):
    """The EventBridge envelope around ``detail``: only ``detail-type`` and ``detail`` matter."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    detail_type: Annotated[str, Field(alias="detail-type", min_length=1, max_length=128)]
    detail: dict[str, Any]
    time: Instant | None = None
    id: str | None = None
    source: str | None = None


def _first_error(exc: ValidationError, prefix: str) -> InvalidInput:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"])
    field = f"{prefix}.{path}" if prefix and path else (prefix or path)
    reason = str(first["msg"]).removeprefix("Value error, ")
    message = f"{field}: {reason}" if field else reason
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidInput(message, field=field or None)


def parse_envelope(raw: Any) -> Envelope:
    """Validate the outer shape; raise ``MalformedRequest`` or ``InvalidInput`` with the field."""
    if not isinstance(raw, Mapping):
        raise MalformedRequest("an event must be a JSON object with detail-type and detail")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc, "") from exc


def parse_detail(
    detail_type: str, detail: Mapping[str, Any], supported: Mapping[str, type[InboundEvent]]
) -> InboundEvent:
    """Validate ``detail`` against the model of its detail-type."""
    model = supported.get(detail_type)
    if model is None:
        raise UnsupportedEvent(
            f"detail-type {detail_type!r} is not handled here; expected one of "
            f"{', '.join(sorted(supported))}",
            field="detail-type",
        )
    try:
        return model.model_validate(detail)
    except ValidationError as exc:
        raise _first_error(exc, "detail") from exc


def event_time(event: InboundEvent) -> datetime:
    """When the event happened upstream (completion or occurrence time)."""
    if isinstance(event, OrderCompleted):
        return event.completed_at
    assert isinstance(
        event, OrderCancelled | TipAdjusted | MembershipChanged | QualityEvent | ProfileUpdated
    )
    return event.occurred_at
