"""The member's last-N counted ratings, kept in one small item (see docs/ratings.md).

The window holds one 8-byte *entry* per counted rating among the member's N most recent ones
(by the order's completion time), and a count (``older``) of the member's other counted
ratings, all older than every entry. So a new rating costs one read of one item, never a read
of N ratings; only when a rating inside a full window stops counting (an exclusion) must the
next older counted rating be found, by a query that stops at the first one.

An entry is a 64-bit integer ``(µs since 1970 << 12) | (hash of the order id, 9 bits) << 3 |
stars``: entries sort by completion time (ties, two completions of one member in the same
microsecond, by the hash), and carry the stars the sum needs.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from msgspec import Struct
from msgspec.structs import replace

from .ratings import EligibilityReason

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPARE_ENTRIES = 4
"""Older counted ratings kept as entries too (``spare``): a rating leaving a full window is
replaced from them, without a query (4 entries: 33 bytes, the window item stays under 1 KB)."""
TIME_BITS = 52
"""Microseconds since 1970 fit in 52 bits until 2112."""
HASH_BITS = 9
STARS_BITS = 3
ENTRY_BYTES = 8


def order_key(completed_at: datetime, order_id: str) -> int:
    """Where a rated order stands in the member's order of ratings (completion, then hash)."""
    micros = (completed_at - EPOCH) // timedelta(microseconds=1)
    if not 0 <= micros < 1 << TIME_BITS:
        raise ValueError(f"completion time out of range: {completed_at.isoformat()}")
    digest = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:2], "big")
    return (micros << HASH_BITS) | (digest & ((1 << HASH_BITS) - 1))


def make_entry(key: int, stars: int) -> int:
    if not 1 <= stars <= 5:
        raise ValueError("stars must be 1 to 5")
    return (key << STARS_BITS) | stars


def entry_stars(entry: int) -> int:
    return entry & ((1 << STARS_BITS) - 1)


def entry_key(entry: int) -> int:
    return entry >> STARS_BITS


def entry_time(entry: int) -> datetime:
    """The completion instant an entry was made from (to the microsecond)."""
    return EPOCH + timedelta(microseconds=entry >> (STARS_BITS + HASH_BITS))


def encode(entries: Sequence[int]) -> bytes:
    return b"".join(entry.to_bytes(ENTRY_BYTES, "big") for entry in entries)


def decode(blob: bytes) -> tuple[int, ...]:
    if len(blob) % ENTRY_BYTES:
        raise ValueError("a window blob is a whole number of 8-byte entries")
    return tuple(
        int.from_bytes(blob[at : at + ENTRY_BYTES], "big")
        for at in range(0, len(blob), ENTRY_BYTES)
    )


class RatingWindow(Struct, frozen=True):
    """The member's counted ratings: the N most recent as entries, the rest as a count."""

    entries: tuple[int, ...] = ()
    """Ascending (oldest first)."""
    older: int = 0
    """Counted ratings older than every entry (not held, or held in ``spare``)."""
    spare: tuple[int, ...] = ()
    """The newest of the ``older`` ratings (at most ``SPARE_ENTRIES``, ascending): every other
    older rating is older than these."""
    version: int = 0
    eligible: bool = True
    """The standing last written to the member item (the next judgement starts from it)."""
    reason: str = EligibilityReason.NOT_JUDGED.value
    changed_at: str | None = None
    """When ``eligible`` last changed (ISO UTC)."""

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def total(self) -> int:
        return sum(entry_stars(entry) for entry in self.entries)

    @property
    def counted_total(self) -> int:
        """All the member's counted ratings, in the window or older."""
        return len(self.entries) + self.older

    @property
    def oldest(self) -> int | None:
        return self.entries[0] if self.entries else None


def _with_spare(window: RatingWindow, more: Sequence[int]) -> RatingWindow:
    """``more`` (older counted ratings, each newer than every older one not held) join the
    spare entries, of which the newest ``SPARE_ENTRIES`` are kept."""
    spare = sorted({*window.spare, *more})[-SPARE_ENTRIES:]
    return replace(window, spare=tuple(spare))


def insert(window: RatingWindow, entry: int, last_n: int) -> RatingWindow:
    """A rating starts counting. It joins the entries if it is newer than the oldest entry, or
    if the window has room and no older counted rating is waiting to fill it; else it is one
    more older rating (a refill may still bring it in, see ``missing``), and a spare entry if
    it is newer than one of them (or they hold every older rating)."""
    entries = list(window.entries)
    if (entries and entry > entries[0]) or (not window.older and len(entries) < last_n):
        bisect.insort(entries, entry)
        return trim(replace(window, entries=tuple(entries)), last_n)
    older = replace(window, older=window.older + 1)
    if (window.spare and entry > window.spare[0]) or len(window.spare) == window.older:
        return _with_spare(older, [entry])
    return older


def remove(window: RatingWindow, entry: int) -> RatingWindow:
    """A rating stops counting: out of the entries (or the spare ones) if it is one, else one
    older rating less."""
    entries = list(window.entries)
    at = bisect.bisect_left(entries, entry)
    if at < len(entries) and entries[at] == entry:
        del entries[at]
        return replace(window, entries=tuple(entries))
    spare = tuple(kept for kept in window.spare if kept != entry)
    return replace(window, older=max(0, window.older - 1), spare=spare)


def trim(window: RatingWindow, last_n: int) -> RatingWindow:
    """At most ``last_n`` entries: the oldest beyond that become older (and spare) ratings."""
    extra = len(window.entries) - last_n
    if extra <= 0:
        return window
    moved = window.entries[:extra]
    trimmed = replace(window, entries=window.entries[extra:], older=window.older + extra)
    return _with_spare(trimmed, moved)


def from_spare(window: RatingWindow, last_n: int) -> RatingWindow:
    """Fill the entries up to ``last_n`` from the spare ones (the newest older ratings)."""
    wanted = min(last_n - len(window.entries), len(window.spare))
    if wanted <= 0:
        return window
    moved = window.spare[-wanted:]
    return replace(
        window,
        entries=tuple(sorted([*moved, *window.entries])),
        spare=window.spare[:-wanted],
        older=window.older - wanted,
    )


def missing(window: RatingWindow, last_n: int) -> int:
    """How many older counted ratings must move into the entries to make them the last N."""
    return min(last_n - len(window.entries), window.older) if len(window.entries) < last_n else 0


def refill(window: RatingWindow, found: Sequence[int], wanted: int) -> RatingWindow:
    """Move ``found`` (the newest older counted ratings, at most ``wanted``) into the entries.
    Finding fewer than wanted means there are no more: ``older`` is then corrected to 0."""
    entries = sorted([*window.entries, *found])
    complete = len(found) == wanted
    older = window.older - len(found) if complete else 0
    spare = tuple(entry for entry in window.spare if entry not in found) if complete else ()
    return replace(window, entries=tuple(entries), older=max(0, older), spare=spare)
