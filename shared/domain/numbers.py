"""Whole numbers in request bodies.

The API's counts (points to hold, hours to book) are strict integers: ``"5"`` and ``true`` are
refused, as a client that sends them has a bug worth hearing about. A JSON number written with a
fraction of zero (``500.0``, what some encoders write for a float) is still the integer the
OpenAPI document asks for (JSON Schema's ``integer`` is any number without a fractional part), so
it is taken as that integer; ``500.5`` stays refused. Found by fuzzing the API
(bench/fuzz.py): valid bodies by the document were answered 422.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE = BeforeValidator(_whole)
"""Put after the ``Field(..., strict=True)`` of an ``int`` (before it, pydantic no longer
documents the bounds as ``minimum``/``maximum``)."""
