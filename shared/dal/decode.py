"""A fast decoder of DynamoDB items (low-level attribute values) for bulk reads.

boto3's ``TypeDeserializer`` dispatches every attribute value through a method lookup and turns
every number into a ``Decimal`` in DynamoDB's context. A full recalculation decodes every member
item of a program (a 1 MB Scan page holds a few thousand), where that dispatch costs as much as
evaluating the member. ``decode_item`` handles the types member items hold (strings, numbers,
booleans, nulls) inline and hands anything else to ``TypeDeserializer``; its result equals
``TypeDeserializer``'s (``==``), with one difference of type: a whole number comes back as an
``int`` (equal to the ``Decimal``, and what the tier arithmetic converts it to anyway), other
numbers as the same ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer

_deserializer = TypeDeserializer()
_create_decimal = DYNAMODB_CONTEXT.create_decimal
_PRECISION = DYNAMODB_CONTEXT.prec


def decode_number(text: str) -> Any:
    """A DynamoDB number: an ``int`` when it is written as a whole number, else a ``Decimal``
    (exactly as ``TypeDeserializer`` makes it, including its errors for more than 38 digits)."""
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit():
        if len(digits) > _PRECISION:
            _create_decimal(text)  # TypeDeserializer's check: it raises beyond 38 digits
        return int(text)
    return _create_decimal(text)


def decode_value(value: Mapping[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        return decode_number(value["N"])
    if "BOOL" in value:
        return value["BOOL"]
    if "NULL" in value:
        return None
    return _deserializer.deserialize(cast(Any, value))


def decode_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A low-level item (``{"name": {"N": "3"}, ...}``) as Python values."""
    return {name: decode_value(value) for name, value in item.items()}
