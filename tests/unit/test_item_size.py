"""DynamoDB's item size rules (``shared.dal.item_size``). Each expectation was checked against
DynamoDB Local, which bills an item of 1,024 bytes so computed 1 write unit and of 1,025 bytes 2
(tests/integration/test_member_item_size.py checks the largest member item the same way)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.dal.item_size import attribute_sizes, item_size, number_size, value_size, write_units


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("0", 1),
        ("7", 2),
        ("100", 2),  # 1|00: trailing zeros cost nothing
        ("123", 3),  # 01|23
        ("1234", 3),
        ("12345", 4),
        ("4.873", 4),  # 4.|87|30: digit pairs are aligned on the decimal point
        ("1234.56", 4),
        ("-30", 3),  # a negative number takes one byte more
        ("1700000000", 2),
        ("99999999999999999999999999999999999", 19),  # a full day block: 35 digits
        ("12345678901234567890123456789012345678", 20),  # 38 digits, beyond Decimal's default
    ],
)
def test_a_number_takes_a_byte_per_pair_of_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size


def test_every_attribute_counts_its_name_and_its_value() -> None:
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": "P#cart-star#M#é"},  # UTF-8 bytes: é is 2
        "ok": {"BOOL": True},
        "no": {"NULL": True},
        "b": {"B": b"\x00\x01\x02"},
        "m": {"M": {"amount": {"N": "40"}, "currency": {"S": "USD"}}},
        "l": {"L": [{"S": "xy"}, {"N": "1"}]},
        "ss": {"SS": ["a", "bc"]},
    }
    assert attribute_sizes(item) == {
        "pk": 2 + 16,
        "ok": 3,
        "no": 3,
        "b": 4,
        "m": 1 + 3 + (1 + 6 + 2) + (1 + 8 + 3),
        "l": 1 + 3 + (1 + 2) + (1 + 2),
        "ss": 2 + 3,
    }
    assert item_size(item) == sum(attribute_sizes(item).values())
    with pytest.raises(ValueError, match="unknown attribute value type"):
        value_size({"X": 1})


def test_writes_are_billed_per_started_kilobyte() -> None:
    assert [write_units(size) for size in (0, 1, 1024, 1025, 2048, 2049)] == [1, 1, 1, 2, 2, 3]
