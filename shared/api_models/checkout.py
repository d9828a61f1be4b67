"""The checkout service's requests and answers: points held for an order like a card
authorisation (``POST /v1/members/{memberId}/holds``), released or captured later."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.ids import OrderIdField
from shared.domain.numbers import WHOLE


class HoldRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, defer_build=True
    )

    order_id: OrderIdField = Field(description="The order the points pay for (one hold each).")
    points: Annotated[int, Field(ge=0, le=100_000_000, strict=True), WHOLE] = Field(
        default=0,
        description="Points to hold: at least the program's minimum, in its multiples (0 or "
        "absent: the wallet alone pays).",
    )
    wallet: (
        Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2, allow_inf_nan=False)] | None
    ) = Field(
        default=None,
        description="Money to hold of the member's wallet (their cashback credits in the "
        'program `holds.walletFrom` names), e.g. "12.50"; with points or alone.',
    )


class HoldValue(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    amount: Decimal = Field(description="What the points are worth at checkout, e.g. 5.00.")
    currency: str


class Hold(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    hold_id: str = Field(description="The hold's id (its order's id: one hold per order).")
    order_id: str
    points: int
    value: HoldValue
    wallet: HoldValue | None = Field(
        default=None, description="What the member's wallet pays (null: points alone)."
    )
    state: str = Field(description="held, captured (by the order's completion) or released")
    expires_at: str = Field(description="Released then unless captured first.")
