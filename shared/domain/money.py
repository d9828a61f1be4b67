"""Money: a non-negative decimal amount with at most two decimal places and a currency code."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    amount: Amount
    currency: Currency
