"""Use cases of the ledger's daily digest (docs/audit.md): build a program-day's digest once,
and verify stored digests against the entries and the chain.

- ``build_digests``: the scheduled job. The digest of a UTC day chains the hashes of the
  program's ledger entries recorded that day (``shared.domain.digest``) from the previous
  day's digest. Days missed since the last digest are built first, in order, so the chain has
  no gap. The item is written once: a run for a day already digested recomputes it and
  reports a difference (an entry recorded late, after the digest, or an edit) without
  changing anything.
- ``verify_digests``: ``loyalty audit verify``. Recomputes every stored digest of a range from
  the entries, checks each entry against its own hash and each digest's link to the one
  before, and lists every difference by day (and by entry where it can).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from msgspec import Struct, field

from shared.domain.digest import (
    GENESIS,
    HASH_KEY,
    DayChain,
    DayDigest,
    entry_hash,
    entry_order_key,
    utc_day,
)
from shared.domain.timeutil import to_utc_iso


class DigestStore(Protocol):
    """Where entries and digests are (``shared.dal.digest.DigestRepository``)."""

    def day_entries(self, program_id: str, day: date) -> Iterator[dict[str, Any]]: ...

    def get_digest(self, program_id: str, day: date) -> DayDigest | None: ...

    def digests(
        self, program_id: str, first: date | None = None, last: date | None = None
    ) -> Iterator[DayDigest]: ...

    def latest_digest_before(self, program_id: str, day: date) -> DayDigest | None: ...

    def put_digest(self, digest: DayDigest) -> DayDigest | None: ...


class DigestReader(Protocol):
    def get_digest(self, program_id: str, day: date) -> DayDigest | None: ...


def digested_already(
    program_id: str, recorded: datetime, now: datetime, store: DigestReader
) -> DayDigest | None:
    """The digest of the day of entries recorded at ``recorded``, when that day was digested
    before they were written: a *late* entry, which the digest does not hold. Looked up only for
    entries written on a later UTC day than their change was committed (the projector behind
    across midnight, or a stream batch replayed), so a projection reads nothing otherwise."""
    day = utc_day(recorded)
    if day >= utc_day(now):
        return None
    return store.get_digest(program_id, day)


class DayResult(Struct, frozen=True):
    """What a run did for one program-day: ``built``, ``unchanged`` (digested before, and the
    entries still give the same digest) or ``mismatch`` (digested before, and they do not)."""

    program_id: str
    day: date
    status: str
    entry_count: int
    digest: str
    stored_count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "programId": self.program_id,
            "day": self.day.isoformat(),
            "status": self.status,
            "entryCount": self.entry_count,
            "digest": self.digest,
            "storedCount": self.stored_count,
        }


def chain_day(store: DigestStore, program_id: str, day: date, previous: str) -> DayChain:
    """The day's chain from its entries (each hashed again from its fields)."""
    chain = DayChain(program_id, day, previous)
    for entry in store.day_entries(program_id, day):
        chain.add(entry_hash(entry), _key(entry))
    return chain


def _key(entry: dict[str, Any]) -> str:
    return entry_order_key(str(entry.get("pk", "")), str(entry.get("sk", "")))


def _compare(stored: DayDigest, store: DigestStore) -> DayResult:
    chain = chain_day(store, stored.program_id, stored.day, stored.previous_digest)
    same = chain.digest == stored.digest and chain.count == stored.entry_count
    return DayResult(
        stored.program_id,
        stored.day,
        "unchanged" if same else "mismatch",
        chain.count,
        chain.digest,
        stored.entry_count,
    )


def build_day(
    program_id: str, day: date, previous: str, now: datetime, store: DigestStore
) -> DayResult:
    """Digest one day after ``previous`` (the digest before it), once."""
    existing = store.get_digest(program_id, day)
    if existing is not None:
        return _compare(existing, store)
    chain = chain_day(store, program_id, day, previous)
    digest = DayDigest(
        program_id=program_id,
        day=day,
        entry_count=chain.count,
        digest=chain.digest,
        previous_digest=previous,
        built_at=to_utc_iso(now),
        checkpoint_every=chain.every,
        checkpoints=tuple(chain.checkpoints),
    )
    raced = store.put_digest(digest)
    if raced is not None:  # another run wrote it first: compare with what it wrote
        return _compare(raced, store)
    return DayResult(program_id, day, "built", chain.count, chain.digest)


def build_digests(
    program_id: str, now: datetime, store: DigestStore, day: date | None = None
) -> list[DayResult]:
    """The scheduled job for one program: the digest of ``day`` (default: yesterday, UTC, as
    of ``now``), after those of the days missed since the program's last digest. A program's
    first digest starts the chain (its previous digest is ``GENESIS``)."""
    target = day if day is not None else utc_day(now) - timedelta(days=1)
    if target >= utc_day(now):
        raise ValueError(f"day {target.isoformat()} is not over yet (UTC)")
    existing = store.get_digest(program_id, target)
    if existing is not None:
        return [_compare(existing, store)]
    latest = store.latest_digest_before(program_id, target)
    if latest is None:
        later = next(iter(store.digests(program_id, target + timedelta(days=1))), None)
        if later is not None:
            # A second genesis would break the chain the program already has.
            raise ValueError(
                f"{program_id}: {target.isoformat()} is before the first digested day "
                f"({later.day.isoformat()}), where the chain starts"
            )
    days = [target]
    previous = GENESIS
    if latest is not None:
        previous = latest.digest
        days = [latest.day + timedelta(days=n) for n in range(1, (target - latest.day).days + 1)]
    results = []
    for each in days:
        result = build_day(program_id, each, previous, now, store)
        results.append(result)
        stored = store.get_digest(program_id, each) if result.status != "built" else None
        previous = stored.digest if stored is not None else result.digest
    return results


# -- verify ----------------------------------------------------------------------------------------


class DigestDifference(Struct, frozen=True):
    """One thing the entries or the chain do not account for."""

    program_id: str
    day: str
    what: str
    entry: str | None = None
    """The entry (``{pk}|{sk}``) when it can be named."""

    def __str__(self) -> str:
        where = f"{self.program_id} {self.day}"
        return f"{where}: {self.what}" + (f" [{self.entry}]" if self.entry else "")


class VerifyRun(Struct):
    days: int = 0
    entries: int = 0
    differences: list[DigestDifference] = field(default_factory=list)


class _Locator:
    """Finds the first checkpoint of a stored digest that the recomputed chain misses, and
    names what differs there: with a checkpoint per entry (days of up to 1,000 entries), the
    entry deleted, inserted or changed; else the range of entries it is in."""

    def __init__(self, stored: DayDigest, run: VerifyRun) -> None:
        self.stored, self.run = stored, run
        self.marks = list(stored.checkpoints)
        self.next = 0
        self.segment: list[str] = []
        """Keys of the entries read since the last checkpoint passed."""
        self.found = False

    def _difference(self, what: str, entry: str | None = None) -> None:
        day = self.stored.day.isoformat()
        self.run.differences.append(DigestDifference(self.stored.program_id, day, what, entry))

    def _check(self, chain: DayChain) -> None:
        key, mark = self.marks[self.next]
        if not self.found and chain.mark != mark:
            self.found = True
            if self.stored.checkpoint_every == 1:
                self._name(key)
            else:
                after = self.marks[self.next - 1][0] if self.next else "the day's start"
                self._difference(
                    f"the first difference is among the {self.stored.checkpoint_every} "
                    f"entries after {after} up to {key}"
                )
        self.next += 1
        self.segment = []

    def _name(self, key: str) -> None:
        inserted = [other for other in self.segment if other != key]
        for other in inserted:
            self._difference(
                "entry not in the digest (inserted, or recorded after the digest was built)",
                other,
            )
        if key not in self.segment:
            self._difference("entry in the digest is no longer in the day's ledger", key)
        elif not inserted:
            self._difference("entry differs from the one digested", key)

    def before(self, key: str, chain: DayChain) -> None:
        """Pass the checkpoints that come before the entry ``key``."""
        while self.next < len(self.marks) and self.marks[self.next][0] < key:
            self._check(chain)

    def after(self, key: str) -> None:
        self.segment.append(key)

    def end(self, chain: DayChain) -> None:
        while self.next < len(self.marks):
            self._check(chain)
        if not self.found and self.segment and self.stored.checkpoint_every == 1:
            for other in self.segment:  # after the last entry digested
                self._difference(
                    "entry not in the digest (inserted, or recorded after the digest was built)",
                    other,
                )


def _verify_day(
    stored: DayDigest, store: DigestStore, run: VerifyRun, on_entry: Callable[[VerifyRun], None]
) -> None:
    program_id, day = stored.program_id, stored.day.isoformat()
    chain = DayChain(stored.program_id, stored.day, stored.previous_digest)
    locator = _Locator(stored, run)
    for entry in store.day_entries(stored.program_id, stored.day):
        hashed, key = entry_hash(entry), _key(entry)
        if entry.get(HASH_KEY) != hashed:
            run.differences.append(
                DigestDifference(
                    program_id,
                    day,
                    "entry changed after it was recorded (its fields no longer give its hash)"
                    if entry.get(HASH_KEY)
                    else "entry without a recorded hash (not written by the projector)",
                    key,
                )
            )
        locator.before(key, chain)
        chain.add(hashed)
        locator.after(key)
        run.entries += 1
        on_entry(run)
    locator.end(chain)
    if chain.count != stored.entry_count:
        run.differences.append(
            DigestDifference(
                program_id,
                day,
                f"{chain.count} entries where the digest counted {stored.entry_count} "
                "(entries deleted or inserted, or recorded after the digest was built)",
            )
        )
    if chain.digest != stored.digest:
        run.differences.append(
            DigestDifference(
                program_id,
                day,
                f"the entries give digest {chain.digest[:16]}..., the stored one is "
                f"{stored.digest[:16]}...",
            )
        )


def verify_digests(
    program_id: str,
    store: DigestStore,
    first: date | None = None,
    last: date | None = None,
    progress: Callable[[VerifyRun], None] | None = None,
    published: Mapping[date, str] | None = None,
) -> VerifyRun:
    """Recompute the program's digests from ``first`` to ``last`` (both included; open ends:
    all) and check the chain: each digest's ``previousDigest`` is the digest of the day before
    (``GENESIS`` for the program's first), with no day missing in between.

    ``published``: the program's digests as published (``LedgerDigestPublished``, kept outside
    the table), by day; each stored digest of the range must be among them, unchanged, and
    each published day of the range must still have its digest item."""
    run = VerifyRun()
    seen: set[date] = set()
    tick = progress or (lambda _run: None)
    before = store.latest_digest_before(program_id, first) if first is not None else None
    expected = before.digest if before is not None else GENESIS
    previous_day = before.day if before is not None else None
    for stored in store.digests(program_id, first, last):
        day = stored.day.isoformat()
        if previous_day is not None and stored.day != previous_day + timedelta(days=1):
            run.differences.append(
                DigestDifference(
                    program_id,
                    day,
                    f"no digest for {(previous_day + timedelta(days=1)).isoformat()} to "
                    f"{(stored.day - timedelta(days=1)).isoformat()} (the chain has a gap)",
                )
            )
        if stored.previous_digest != expected:
            of = previous_day.isoformat() if previous_day is not None else "none (first day)"
            run.differences.append(
                DigestDifference(
                    program_id,
                    day,
                    f"previousDigest {stored.previous_digest[:16]}... is not the digest of the "
                    f"day before ({of}: {expected[:16]}...): the chain is broken",
                )
            )
        if published is not None:
            seen.add(stored.day)
            _compare_published(stored, published.get(stored.day), run)
        _verify_day(stored, store, run, tick)
        run.days += 1
        tick(run)
        expected, previous_day = stored.digest, stored.day
    for gone in sorted(published or {}):
        if gone in seen or (first is not None and gone < first) or (last and gone > last):
            continue
        run.differences.append(
            DigestDifference(
                program_id, gone.isoformat(), "published digest has no digest item (deleted)"
            )
        )
    return run


def _compare_published(stored: DayDigest, published: str | None, run: VerifyRun) -> None:
    day = stored.day.isoformat()
    if published is None:
        what = "digest item not among the published digests"
    elif published != stored.digest:
        what = (
            f"stored digest {stored.digest[:16]}... is not the published one "
            f"{published[:16]}... (the digest item was rewritten)"
        )
    else:
        return
    run.differences.append(DigestDifference(stored.program_id, day, what))
