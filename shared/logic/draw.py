"""Use cases of the monthly prize draw (docs/campaigns.md): the scheduled job opens each month's
draw before it starts and draws it once its entries have closed; ``verify_draw`` (``loyalty draw
verify``) recomputes a drawn month from its published facts and the stored entries.

The job is resumable and re-runnable: opening is a write-once item (a re-run finds it and keeps
its seed); drawing reads the month's entries again from the start and writes the result only
while the item is ``opened``, so a run that died half-way is simply run again, and a run after
the draw recomputes it and compares: a difference is reported, never written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct, structs

from shared.domain.draw import (
    ALGORITHM,
    Draw,
    choose_winners,
    count_entries,
    entries_close,
    entries_digest,
    month_of,
    month_start,
    next_month,
    seed_hash,
)
from shared.domain.program import Program
from shared.domain.timeutil import to_utc_iso


class DrawStore(Protocol):
    """Where draws and entries are (``shared.dal.draw.DrawRepository``)."""

    def month_entry_members(self, program_id: str, month: str) -> Iterator[str]: ...

    def get_draw(self, program_id: str, month: str) -> Draw | None: ...

    def open_draws(self, program_id: str) -> Iterator[Draw]: ...

    def open_draw(self, draw: Draw) -> Draw | None: ...

    def record_drawn(self, draw: Draw) -> Draw | None: ...


def new_seed() -> str:
    """32 random bytes from the operating system's generator, hex."""
    return secrets.token_hex(32)


class SealedSeed(RuntimeError):
    """A draw to compute whose seed this store cannot open (no vault, or not the key's user)."""


class DrawResult(Struct, frozen=True):
    """What a run did for one program-month: ``opened``, ``drawn``, ``unchanged`` (drawn
    before, and recomputing it gives the same) or ``mismatch`` (it does not)."""

    program_id: str
    month: str
    status: str
    total_entries: int | None = None
    winners: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "programId": self.program_id,
            "month": self.month,
            "status": self.status,
            "totalEntries": self.total_entries,
            "winners": list(self.winners),
        }


def compute(draw: Draw, store: DrawStore) -> Draw:
    """The draw of the month's stored entries, from its seed: what ``record_drawn`` writes."""
    if not draw.seed:
        raise SealedSeed(
            f"the seed of {draw.program_id} {draw.month} is sealed and cannot be opened here"
        )
    entries = count_entries(store.month_entry_members(draw.program_id, draw.month))
    winners = choose_winners(draw.seed, draw.program_id, draw.month, entries, draw.winners_wanted)
    return structs.replace(
        draw,
        state="drawn",
        entries_digest=entries_digest(draw.program_id, draw.month, entries),
        total_entries=sum(count for _, count in entries),
        members=len(entries),
        winners=tuple(winners),
    )


def _same(a: Draw, b: Draw) -> bool:
    return (a.entries_digest, a.total_entries, a.winners) == (
        b.entries_digest,
        b.total_entries,
        b.winners,
    )


def run_draws(
    program: Program,
    now: datetime,
    store: DrawStore,
    seed: Callable[[], str] = new_seed,
    month: str | None = None,
) -> list[DrawResult]:
    """One run of the schedule for one program: open this month's draw (late, if the job was
    not running before it started) and next month's; draw every opened month whose entries
    have closed. ``month``: an operator's re-run of one drawn month (recomputed, compared)."""
    rules = program.prize_draw
    if rules is None:
        return []
    zone = program.time_zone
    results: list[DrawResult] = []
    if month is not None:
        stored = store.get_draw(program.id, month)
        if stored is not None and stored.state == "drawn":
            fresh = compute(stored, store)
            status = "unchanged" if _same(fresh, stored) else "mismatch"
            return [DrawResult(program.id, month, status, fresh.total_entries, fresh.winners)]
    current = month_of(now, zone)
    for candidate in (current, next_month(current)):
        value = seed()
        opened = Draw(
            program_id=program.id,
            month=candidate,
            seed=value,
            seed_hash=seed_hash(value),
            opened_at=to_utc_iso(now),
            opened_late=now >= month_start(candidate, zone),
            prize=rules.prize,
            winners_wanted=rules.winners,
        )
        if store.open_draw(opened) is None:
            results.append(DrawResult(program.id, candidate, "opened"))
    for draw in list(store.open_draws(program.id)):
        if now < entries_close(draw.month, zone, rules.entries_close_days):
            continue
        drawn = structs.replace(compute(draw, store), drawn_at=to_utc_iso(now))
        stored = store.record_drawn(drawn)
        if stored is None:
            results.append(
                DrawResult(program.id, draw.month, "drawn", drawn.total_entries, drawn.winners)
            )
        elif stored.state == "drawn":
            status = "unchanged" if _same(drawn, stored) else "mismatch"
            results.append(
                DrawResult(program.id, draw.month, status, drawn.total_entries, drawn.winners)
            )
    return results


# -- verification ---------------------------------------------------------------------------------


def published_draws(
    events: Iterator[Mapping[str, Any]], program_id: str, month: str
) -> dict[str, dict[str, Any]]:
    """The ``PrizeDrawOpened`` and ``PrizeDrawn`` details of one program-month among published
    events (each an EventBridge event, or one wrapped under ``event``), by detail-type."""
    found: dict[str, dict[str, Any]] = {}
    for raw in events:
        event = raw.get("event", raw) if isinstance(raw, Mapping) else None
        if not isinstance(event, Mapping):
            continue
        kind = event.get("detail-type")
        detail = event.get("detail")
        if isinstance(detail, str):
            import json  # noqa: PLC0415

            try:
                detail = json.loads(detail)
            except ValueError:
                continue
        if kind not in ("PrizeDrawOpened", "PrizeDrawn") or not isinstance(detail, Mapping):
            continue
        if detail.get("programId") == program_id and detail.get("month") == month:
            found[str(kind)] = dict(detail)
    return found


def verify_facts(
    program_id: str,
    month: str,
    seed: str,
    seed_hash_published: str,
    entries: list[tuple[str, int]],
    digest: str,
    winners: list[str],
    wanted: int,
    algorithm: str = ALGORITHM,
) -> list[str]:
    """Every difference between what was announced and what the seed and the entries give."""
    problems: list[str] = []
    if algorithm != ALGORITHM:
        problems.append(f"unknown algorithm {algorithm!r} (this code knows {ALGORITHM})")
        return problems
    try:
        hashed = seed_hash(seed)
    except ValueError:
        return [f"the seed {seed!r} is not hex"]
    if hashed != seed_hash_published:
        problems.append(
            f"the seed's SHA-256 is {hashed}, the hash published before the month is "
            f"{seed_hash_published}: the seed was changed"
        )
    fresh_digest = entries_digest(program_id, month, entries)
    if fresh_digest != digest:
        problems.append(
            f"the stored entries give digest {fresh_digest}, the published one is {digest}: "
            f"the entries changed ({sum(n for _, n in entries)} entries of {len(entries)} members)"
        )
    recomputed = choose_winners(seed, program_id, month, entries, wanted)
    if recomputed != list(winners):
        problems.append(f"the seed and the entries give winners {recomputed}, not {winners}")
    return problems


def verify_draw(
    program_id: str,
    month: str,
    store: DrawStore,
    published: Iterator[Mapping[str, Any]] | None = None,
) -> list[str]:
    """``loyalty draw verify``: the differences found (none: the draw checks out). The facts
    are the published events when given (``PrizeDrawOpened``'s seed hash, ``PrizeDrawn``'s
    seed, digest and winners), else the draw item; the entries are the stored ones. With
    events, the draw item must also agree with them."""
    stored = store.get_draw(program_id, month)
    if stored is None:
        return [f"{program_id} {month}: no draw item"]
    if stored.state != "drawn":
        return [f"{program_id} {month}: not drawn yet (state {stored.state})"]
    entries = count_entries(store.month_entry_members(program_id, month))
    problems: list[str] = []
    if published is not None:
        facts = published_draws(published, program_id, month)
        opened, drawn = facts.get("PrizeDrawOpened"), facts.get("PrizeDrawn")
        if opened is None or drawn is None:
            missing = [k for k in ("PrizeDrawOpened", "PrizeDrawn") if k not in facts]
            return [f"{program_id} {month}: not among the published events: {', '.join(missing)}"]
        problems += verify_facts(
            program_id,
            month,
            str(drawn.get("seed")),
            str(opened.get("seedHash")),
            entries,
            str(drawn.get("entriesDigest")),
            [str(w) for w in drawn.get("winners") or []],
            int(opened.get("winners") or len(drawn.get("winners") or [])),
            str(drawn.get("algorithm", ALGORITHM)),
        )
        if (stored.seed, stored.seed_hash, list(stored.winners)) != (
            drawn.get("seed"),
            opened.get("seedHash"),
            drawn.get("winners"),
        ):
            problems.append("the draw item is not the published draw (it was rewritten)")
    else:
        problems += verify_facts(
            program_id,
            month,
            stored.seed,
            stored.seed_hash,
            entries,
            str(stored.entries_digest),
            list(stored.winners),
            stored.winners_wanted,
            stored.algorithm,
        )
    return [f"{program_id} {month}: {problem}" for problem in problems]
