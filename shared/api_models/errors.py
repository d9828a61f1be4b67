"""The HTTP APIs' error body and the validation error's translation: every error is
``{"error": {"code", "message", "field"?}}``, naming the field at fault (``shared.http_api``
answers with them; the OpenAPI document describes them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.domain.errors import InvalidInput, MalformedRequest


class _Out(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class ErrorDetail(_Out):
    code: str
    message: str
    field: str | None = None


class ErrorBody(_Out):
    """Every error: ``{"error": {"code", "message", "field"?}}``."""

    error: ErrorDetail


_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "json_invalid", "model_type"}


def invalid_input_from(errors: Sequence[Mapping[str, Any]]) -> InvalidInput | MalformedRequest:
    """Our error for a request the handler's models refused, naming the field at fault."""
    if not errors:
        return InvalidInput("the request is invalid")
    first = errors[0]
    location = [str(part) for part in first.get("loc", ())]
    where = location[0] if location else ""
    kind = first.get("type")
    whole_body = where == "body" and (len(location) == 1 or kind == "json_invalid")
    if whole_body and (kind in _NOT_AN_OBJECT or kind == "missing"):
        return MalformedRequest("the request body must be a JSON object")
    path = location[1:] if where in _LOCATIONS else location
    field = ".".join(path) or where or None
    if where == "header" and field:
        field = "-".join(part.capitalize() for part in field.split("-"))
    if kind == "extra_forbidden":
        reason = "unknown or read-only field: it cannot be set"
    else:
        reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    message = f"{field}: {reason}" if field else reason
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InvalidInput(message, field=field)
