"""The per-member request limit of the routes that write for a member (docs/perks.md, "Request
limits"): counted before the route does anything, refused with 429 and ``Retry-After``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from shared.domain.limits import RequestWindow, refusal
from shared.domain.program import Program
from shared.logic.ports import TransientConflict

__all__ = ["RequestCounter", "admit_member_request"]

TRIES = 4


class RequestCounter(Protocol):
    def count_request(
        self, program_id: str, member_id: str, window: RequestWindow
    ) -> dict[str, Any] | None: ...


def admit_member_request(
    member_id: str, now: datetime, program: Program, store: RequestCounter
) -> None:
    """Count the request, or raise ``RateLimited`` when the member is past the program's
    ``limits.memberRequestsPerMinute`` or ``limits.memberRequestsPerDay``."""
    window = RequestWindow.at(
        now, program.limits.member_requests_per_minute, program.limits.member_requests_per_day
    )
    for _ in range(TRIES):
        counted = store.count_request(program.id, member_id, window)
        if counted is None:
            return
        refused = refusal(window, counted)
        if refused is not None:
            raise refused
        # The minute moved under a concurrent request: count again.
    raise TransientConflict(f"the request count of {member_id} kept changing")
