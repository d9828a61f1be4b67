"""Use cases of rating moderation: the rating floor and the exclusions (docs/ratings.md).

Each use case reads what its decision needs, lets the domain decide, and commits the result in
one transaction guarded by versions; when another writer committed first, it reads again.
Events never publish anything: ``MemberEligibilityChanged`` and
``CustomerFlaggedForTipBaiting`` are derived from the committed member and customer items by
``shared.domain.rating_events``.

Entry points:
- ``moderate``: one ``RatingSubmitted`` or ``TipAdjusted`` (``submission``).
- ``apply_table_change``: one change of the table's stream, parsed by the stream's router
  (``table_changes``).
- ``exclude_rating``, ``restore_rating``, ``member_ratings``, ``clear_tip_bait_flag``: the admin
  API (``admin``).

Modules: ``ports`` (the store's protocol and the values it takes), ``core`` (results, the
member's window and standing), ``ratings`` (a rating of a known order, and what waited for the
order), ``tips`` (tip changes), ``reconcile`` (retroactive hard-to-please verdicts),
``submission``, ``table_changes``, ``admin``. Nothing here imports ``shared.dal``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin import (
        AdminEdit,
        ExpiredRating,
        FlagLift,
        MemberPage,
        clear_tip_bait_flag,
        exclude_rating,
        member_ratings,
        restore_rating,
    )
    from .core import METRIC_NAMES, ModerationResult, Outcome
    from .ports import (
        Commit,
        CommitResult,
        MemberRating,
        OrderChanged,
        RatingRef,
        RatingStore,
        SlotWrite,
        TableChange,
        Waiting,
        WaitingRemoved,
    )
    from .submission import adjust_tip, moderate, submit_rating
    from .table_changes import apply_table_change

_MODULE_OF = {
    "AdminEdit": "admin",
    "FlagLift": "admin",
    "clear_tip_bait_flag": "admin",
    "Commit": "ports",
    "CommitResult": "ports",
    "ExpiredRating": "admin",
    "METRIC_NAMES": "core",
    "MemberPage": "admin",
    "MemberRating": "ports",
    "ModerationResult": "core",
    "OrderChanged": "ports",
    "Outcome": "core",
    "RatingRef": "ports",
    "RatingStore": "ports",
    "SlotWrite": "ports",
    "TableChange": "ports",
    "Waiting": "ports",
    "WaitingRemoved": "ports",
    "adjust_tip": "submission",
    "apply_table_change": "table_changes",
    "exclude_rating": "admin",
    "member_ratings": "admin",
    "moderate": "submission",
    "restore_rating": "admin",
    "submit_rating": "submission",
}
"""Where each name lives: imported on first use (PEP 562), so that a function loads only the
modules it uses (the admin API never loads the submission's)."""


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "METRIC_NAMES",
    "AdminEdit",
    "Commit",
    "CommitResult",
    "ExpiredRating",
    "FlagLift",
    "MemberPage",
    "MemberRating",
    "ModerationResult",
    "OrderChanged",
    "Outcome",
    "RatingRef",
    "RatingStore",
    "SlotWrite",
    "TableChange",
    "Waiting",
    "WaitingRemoved",
    "adjust_tip",
    "apply_table_change",
    "clear_tip_bait_flag",
    "exclude_rating",
    "member_ratings",
    "moderate",
    "restore_rating",
    "submit_rating",
]
