"""Typed identifiers.

Ids come from other services. They are opaque strings, but they become parts of DynamoDB keys,
so they are constrained: no ``#`` (the key separator), no spaces, at most 128 characters.
"""

from __future__ import annotations

from typing import Annotated, NewType

from pydantic import StringConstraints

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$"

Identifier = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]

MemberId = NewType("MemberId", str)
CustomerId = NewType("CustomerId", str)
OrderId = NewType("OrderId", str)
ProgramId = NewType("ProgramId", str)

MemberIdField = Annotated[MemberId, StringConstraints(pattern=_ID_PATTERN)]
CustomerIdField = Annotated[CustomerId, StringConstraints(pattern=_ID_PATTERN)]
OrderIdField = Annotated[OrderId, StringConstraints(pattern=_ID_PATTERN)]
OfferIdField = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
BatchIdField = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
