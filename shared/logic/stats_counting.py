"""Counting the live statistics from the table's stream (docs/stats.md): the
``event_publisher``'s step for each committed change. The change's counter deltas
(``shared.domain.stats``) are applied exactly once per stream record: the deltas and a marker
named after the record go in one transaction, and the marker's condition refuses a second
delivery of the record (a plain ``ADD`` would count a redelivered batch twice).

A module apart from the request's side (``shared.logic.stats``) so that the publisher loads
neither the program model nor the answer's views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain.stats import Delta, stats_deltas

MARK_TTL = timedelta(days=2)
"""How long a record's marker is kept: longer than the stream keeps a record (24 hours), so
every redelivery finds it; TTL removes it afterwards, free of charge."""


class CounterStore(Protocol):
    """Where the counters are kept (``shared.dal.stats.StatsRepository``)."""

    def apply_once(self, record_id: str, deltas: Sequence[Delta], expires_at: int) -> bool:
        """Add the deltas and write the record's marker, in one transaction; False (nothing
        written) when the marker exists: the record was counted already."""
        ...


def count_change(
    record_id: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    at: datetime,
    store: CounterStore,
) -> int:
    """Apply one committed change's counter deltas, once. Returns how many counter items it
    changed (0: nothing to count, or counted by an earlier delivery)."""
    deltas = stats_deltas(old, new, at)
    if not deltas:
        return 0
    if not record_id:
        raise ValueError("a stream record without an eventID or sequence number")
    expires_at = int((at + MARK_TTL).timestamp())
    return len(deltas) if store.apply_once(record_id, deltas, expires_at) else 0
