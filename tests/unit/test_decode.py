"""The fast item decoder of bulk reads equals boto3's TypeDeserializer on the same items."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from shared.dal.decode import decode_item, decode_number

_deserializer = TypeDeserializer()
_serializer = TypeSerializer()

numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(str),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20
    ).map(lambda value: _serializer.serialize(value)["N"]),
    st.from_regex(r"-?0{0,3}[0-9]{1,12}(\.[0-9]{1,6})?(E-?[0-9]{1,2})?", fullmatch=True),
)
scalars = st.one_of(
    st.text(max_size=20).map(lambda text: {"S": text}),
    numbers.map(lambda text: {"N": text}),
    st.booleans().map(lambda flag: {"BOOL": flag}),
    st.just({"NULL": True}),
    st.binary(max_size=8).map(lambda data: {"B": data}),
    st.sets(st.text(max_size=5), min_size=1, max_size=3).map(lambda names: {"SS": list(names)}),
    st.sets(st.integers(-1000, 1000), min_size=1, max_size=3).map(
        lambda values: {"NS": [str(value) for value in values]}
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: {"L": items}),
        st.dictionaries(st.text(max_size=5), inner, max_size=3).map(lambda m: {"M": m}),
    ),
    max_leaves=8,
)
items = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=30)


def _same_numbers(fast: Any, slow: Any) -> None:
    if isinstance(slow, Decimal):
        assert isinstance(fast, int | Decimal)
        assert not isinstance(fast, bool)
        if isinstance(fast, Decimal):
            assert str(fast) == str(slow)
    elif isinstance(slow, dict):
        for name in slow:
            _same_numbers(fast[name], slow[name])
    elif isinstance(slow, list):
        for one, other in zip(fast, slow, strict=True):
            _same_numbers(one, other)


@given(items)
def test_decode_item_equals_the_type_deserializer(item: dict[str, Any]) -> None:
    def slow_or_error(value: Any) -> Any:
        return _deserializer.deserialize(value)

    try:
        expected = {name: slow_or_error(value) for name, value in item.items()}
    except Exception as exc:
        with pytest.raises(type(exc)):
            decode_item(item)
        return
    decoded = decode_item(item)
    assert decoded == expected
    _same_numbers(decoded, expected)


def test_whole_numbers_come_back_as_ints_others_as_the_same_decimal() -> None:
    assert decode_number("42") == 42
    assert type(decode_number("-7")) is int
    assert decode_number("0042") == 42
    assert decode_number("1.50") == Decimal("1.50")
    assert str(decode_number("1E+3")) == str(_deserializer.deserialize({"N": "1E+3"}))


def test_more_than_38_digits_is_refused_as_by_the_type_deserializer() -> None:
    with pytest.raises(Exception) as slow:
        _deserializer.deserialize({"N": "1" * 39})
    with pytest.raises(type(slow.value)):
        decode_number("1" * 39)
