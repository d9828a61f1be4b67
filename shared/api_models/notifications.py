"""The member's notification preferences as the API reads and writes them
(``GET``/``PUT /v1/me/preferences``); the domain's record is ``shared.domain.notifications.
Preferences``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.alias_generators import to_camel

from shared.domain.notifications import Preferences

Clock = Annotated[
    str,
    Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 00:00 to 23:59"),
]


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    push: StrictBool = Field(default=True, description="Push notifications to the app.")
    email: StrictBool = Field(default=True, description="E-mail.")


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    start: Clock = Field(description="From (included), on the member's clock (their time zone).")
    end: Clock = Field(description="To (excluded); before start: the window crosses midnight.")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: leave quietHours out for none")
        return self


class PreferencesRequest(BaseModel):
    """The whole of the member's preferences (a field left out takes its default)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, defer_build=True
    )

    channels: Channels = Field(default_factory=Channels)
    quiet_hours: QuietHours | None = Field(
        default=None,
        description="Marketing messages are not sent in this window (transactional ones are).",
    )
    locale: Literal["en", "de", "ru"] | None = Field(
        default=None, description="null: the profile's language, else en."
    )
    marketing_opt_out: StrictBool = Field(
        default=False, description="true: no marketing messages at all."
    )

    def preferences(self, updated_at: str) -> Preferences:
        quiet = self.quiet_hours
        return Preferences(
            push=self.channels.push,
            email=self.channels.email,
            quiet_start=quiet.start if quiet else None,
            quiet_end=quiet.end if quiet else None,
            locale=self.locale,
            marketing_opt_out=self.marketing_opt_out,
            updated_at=updated_at,
        )


class PreferencesView(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    channels: Channels
    quiet_hours: QuietHours | None
    locale: Literal["en", "de", "ru"] | None
    marketing_opt_out: bool
    time_zone: str = Field(description="The zone quiet hours and weeks are counted in.")
    updated_at: str | None = Field(description="null: never set (these are the defaults).")

    @classmethod
    def of(cls, preferences: Preferences, time_zone: str) -> PreferencesView:
        quiet = (
            QuietHours(start=preferences.quiet_start, end=preferences.quiet_end)
            if preferences.quiet_start and preferences.quiet_end
            else None
        )
        return cls(
            channels=Channels(push=preferences.push, email=preferences.email),
            quiet_hours=quiet,
            locale=preferences.locale,
            marketing_opt_out=preferences.marketing_opt_out,
            time_zone=time_zone,
            updated_at=preferences.updated_at,
        )
