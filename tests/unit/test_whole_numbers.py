"""The request bodies' counts take a JSON number with a zero fraction as the integer it is
(the OpenAPI document's ``integer``; fuzzing sent ``500.0`` and got a 422), and still refuse
strings, booleans, fractions and numbers out of bounds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.api_models.checkout import HoldRequest
from shared.domain.perks import RedemptionRequest


def hold(points: Any) -> HoldRequest:
    return HoldRequest.model_validate({"orderId": "o-1", "points": points})


def booking(hours: Any) -> RedemptionRequest:
    return RedemptionRequest.model_validate(
        {"perkId": "care_days", "careType": "child", "hours": hours}
    )


@pytest.mark.parametrize("value", [500, 500.0, 5e2])
def test_a_whole_number_is_taken_whatever_its_spelling(value: Any) -> None:
    assert hold(value).points == 500
    assert type(hold(value).points) is int
    assert booking(value / 100).hours == 5


def test_zero_points_is_a_hold_the_wallet_alone_pays_and_zero_hours_no_booking() -> None:
    assert hold(0.0).points == 0 and type(hold(0.0).points) is int
    with pytest.raises(ValidationError):
        booking(0.0)


@pytest.mark.parametrize("value", ["500", True, 500.5, -1.0, 1e300, float("nan"), float("inf")])
def test_anything_else_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        hold(value)
    with pytest.raises(ValidationError):
        booking(value)
