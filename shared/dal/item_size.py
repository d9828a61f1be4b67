"""The size DynamoDB bills for an item, from its attribute values (AWS: "Item sizes and formats").

A write costs 1 unit per started KB of the larger of the item before and after (twice that in a
transaction), so the member item, written by every order, must stay under 1,024 bytes
(docs/data-model.md, "Member item size"). The rules:

- every attribute counts its name (UTF-8 bytes) plus its value; the keys too;
- string: UTF-8 bytes; binary: its bytes; boolean and null: 1 byte;
- number: 1 byte per two significant digits, pairs aligned on the decimal point (DynamoDB stores
  numbers in base 100), plus 1 byte; 1 more for a negative number;
- list and map: 3 bytes, plus 1 byte and the size of each element (a map's keys count as
  names);
- sets: the sum of their elements.

Pure: the values are boto3's low-level attribute values (``{"S": ...}``, ``{"N": ...}``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

KB = 1024


def number_size(value: str | int | Decimal) -> int:
    """Bytes of a number: its base-100 digit pairs, plus 1 (plus 1 when negative)."""
    number = Decimal(str(value))
    if number.is_zero():
        return 1
    # Not Decimal.normalize(): it rounds to the context's 28 digits, DynamoDB keeps 38.
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite number: {value!r}")
    while digits and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    while digits and digits[0] == 0:
        digits = digits[1:]
    highest = exponent + len(digits) - 1
    pairs = highest // 2 - exponent // 2 + 1
    return pairs + 1 + (1 if sign else 0)


def _text(data: Any) -> int:
    return len(str(data).encode())


_SIZES: dict[str, Callable[[Any], int]] = {
    "S": _text,
    "N": number_size,
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda data: sum(_text(element) for element in data),
    "NS": lambda data: sum(number_size(element) for element in data),
    "BS": lambda data: sum(len(element) for element in data),
    "L": lambda data: 3 + sum(1 + value_size(element) for element in data),
    "M": lambda data: (
        3 + sum(1 + _text(name) + value_size(element) for name, element in data.items())
    ),
}


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value (without its name)."""
    ((kind, data),) = value.items()
    if kind not in _SIZES:
        raise ValueError(f"unknown attribute value type {kind!r}")
    return _SIZES[kind](data)


def attribute_sizes(item: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Bytes of each attribute, name included."""
    return {name: len(name.encode()) + value_size(value) for name, value in item.items()}


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for the item (keys included)."""
    return sum(attribute_sizes(item).values())


def write_units(size: int) -> int:
    """Units of a plain write of an item of ``size`` bytes (double them in a transaction)."""
    return max(1, -(-size // KB))
