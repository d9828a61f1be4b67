"""Configuration of a function, from its environment: read once, lazily, never at import."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    event_bus_name: str = "default"
    program_id: str = "cart-star"


class MissingConfiguration(RuntimeError):
    pass


@cache
def settings() -> Settings:
    """The function's settings from ``TABLE_NAME``, ``EVENT_BUS_NAME`` and ``PROGRAM_ID``."""
    try:
        return Settings(
            table_name=os.environ.get("TABLE_NAME", ""),
            event_bus_name=os.environ.get("EVENT_BUS_NAME", "default"),
            program_id=os.environ.get("PROGRAM_ID", "cart-star"),
        )
    except ValidationError as exc:
        raise MissingConfiguration(
            "TABLE_NAME must name the DynamoDB table (see template.yaml)"
        ) from exc
