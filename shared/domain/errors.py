"""Domain errors: a small hierarchy, each mapped once to an HTTP status and an error code.

Handlers never match on messages; they map the class (see ``shared.http``).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(DomainError):
    """The input is well-formed JSON but breaks the contract (a field is missing, wrong, ...)."""

    code = "invalid_input"
    status = 422


class MalformedRequest(DomainError):
    """The request cannot be read at all (not JSON, not an object)."""

    code = "malformed_request"
    status = 400


class UnsupportedEvent(InvalidInput):
    """An event whose detail-type this function does not handle."""

    code = "unsupported_event"


class UnsupportedMediaType(DomainError):
    """A request body sent as something other than JSON."""

    code = "unsupported_media_type"
    status = 415


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class InsufficientWallet(Conflict):
    """The wallet's balance does not cover what a checkout hold asks of it."""

    code = "insufficient_wallet"


class HoldMismatch(Conflict):
    """An order already holds another amount of points."""

    code = "hold_mismatch"


class HoldClosed(Conflict):
    """The order is completed or cancelled, or its hold was captured: no (other) hold."""

    code = "hold_closed"


class ProgramConfigError(DomainError):
    """A program configuration file does not validate."""

    code = "invalid_program"
    status = 500


class Unauthorized(DomainError):
    """No valid identity (API Gateway normally answers this before the function runs)."""

    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


# -- perks and redemptions (docs/perks.md) --------------------------------------------------------


class PerkClosed(Forbidden):
    """The perk is not open to the member: tier too low, or below the rating floor."""

    code = "perk_closed"


class QuotaExhausted(Conflict):
    """The perk's quota for the period is used up."""

    code = "quota_exhausted"


class AlreadyBooked(Conflict):
    """The member already holds a booking of this perk on that date."""

    code = "already_booked"


class NotCancellable(Conflict):
    """The redemption can no longer be cancelled (its date has come, or it is a code)."""

    code = "not_cancellable"


class IdempotencyKeyReused(InvalidInput):
    """An ``Idempotency-Key`` sent again with a different body."""

    code = "idempotency_key_reused"


class RateLimited(DomainError):
    """The member sent more requests than the program allows in a minute or a day: 429, with
    ``Retry-After`` (seconds until the window that refused ends)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OtherPartner(Forbidden):
    """A partner code presented by a principal its perk's partner does not list."""

    code = "other_partner"


class CodeUsed(Conflict):
    """A partner code already redeemed (with another reference)."""

    code = "code_used"


class CodeExpired(Conflict):
    """A partner code past the last day it was valid."""

    code = "code_expired"
