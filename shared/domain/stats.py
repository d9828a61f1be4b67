"""Live program statistics (``GET /v1/admin/stats``): the counters the stream keeps, as pure
functions of a committed change's old and new images (docs/stats.md).

A change to a member item moves the member between counters (tier, eligibility) and changes the
program's sums (points pending, available and held; the wallets' cashback credit); a redemption,
a fuel purchase's cashback and a tier-at-risk notice count in their period. Each change yields
at most one ``Delta`` per counter item, keyed by the member's *shard*: the counters of a program
are spread over ``SHARDS`` items so that no single item takes every order's write, and a
request sums the shards.

No I/O: ``shared.logic.stats_counting`` applies the deltas (exactly once per stream record)
and ``shared.logic.stats`` reads them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from msgspec import Struct

from shared.domain.keys import MEMBER_SK

SHARDS = 8
"""Counter items per program and bucket. At 5 million orders a day (about 60 a second, a few
hundred at peak) and one transactional counter write of 2 units per change that moves a
counter, 8 items keep each well under a partition's 1,000 write units a second."""

NOW = "NOW"
"""The bucket of the state counters: what holds now (members by tier, balances)."""
PERIOD_PREFIX = "PER#"
"""Buckets of the flow counters: what happened in a period (``PER#2026-12``, ``PER#2026-Q4``,
``PER#2026``, ``PER#2026-W49``)."""
MARK_SK = "STATS"
"""Sort key of a stream record's marker (its partition key names the record)."""

REDEMPTION_PREFIX = "REDEMPTION#"
FUEL_PREFIX = "FUEL#"

MEMBERS = "members"
ELIGIBLE = "eligible"
PENDING = "pend"
AVAILABLE = "bal"
HELD = "held"
WALLET_CENTS = "walletCents"
WALLET_HELD_CENTS = "walletHeldCents"
TIER_PREFIX = "t:"
NO_TIER = "-"
"""The tier counter of members below the first tier (no ``tier`` attribute)."""
REDEEMED_PREFIX = "r:"
CASHBACK_CENTS = "cashbackCents"
AT_RISK = "atRisk"


def shard_of(member_id: str) -> int:
    """The member's shard, 0 to ``SHARDS - 1``: stable (a hash of the id, not Python's
    randomised ``hash``), so every change of a member goes to the same counter items."""
    digest = hashlib.sha256(member_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % SHARDS


def stats_pk(program_id: str, shard: int) -> str:
    """Partition of one shard of a program's counters (one partition key per shard, so the
    shards are spread over the table's partitions)."""
    return f"P#{program_id}#STATS#{shard}"


def period_bucket(period: str) -> str:
    return f"{PERIOD_PREFIX}{period}"


def week_of(day: date) -> str:
    """``2026-W49``: the ISO week."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def mark_pk(event_id: str) -> str:
    """Partition of the marker of one stream record (its ``eventID``, unique in the stream):
    its own partition, so markers spread over the table like the records themselves."""
    return f"STATSREC#{event_id}"


class Delta(Struct, frozen=True):
    """What one change adds to one counter item (never zero: zero entries are dropped)."""

    program_id: str
    shard: int
    bucket: str
    counts: dict[str, int]


def _program_of(pk: str) -> str | None:
    parts = pk.split("#", 3)
    return parts[1] if len(parts) > 3 and parts[0] == "P" and parts[2] == "M" else None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _cents(value: Any) -> int:
    try:
        return int((Decimal(str(value or 0)) * 100).to_integral_value())
    except ArithmeticError:
        return 0


def _member_state(image: Mapping[str, Any] | None) -> dict[str, int]:
    """What one member item contributes to its program's state counters."""
    if not image:
        return {}
    state = {
        MEMBERS: 1,
        f"{TIER_PREFIX}{image.get('tier') or NO_TIER}": 1,
        ELIGIBLE: 0 if image.get("eligible") is False else 1,
        PENDING: _int(image.get("pend")),
        AVAILABLE: _int(image.get("bal")),
        HELD: _int(image.get("held")),
        WALLET_CENTS: _cents(image.get("walletBalance")),
        WALLET_HELD_CENTS: _cents(image.get("walletHeld")),
    }
    return {name: value for name, value in state.items() if value}


def _difference(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    names = before.keys() | after.keys()
    moved = {name: after.get(name, 0) - before.get(name, 0) for name in sorted(names)}
    return {name: value for name, value in moved.items() if value}


def _member_deltas(
    program_id: str, shard: int, old: Mapping[str, Any], new: Mapping[str, Any], at: datetime
) -> list[Delta]:
    found: list[Delta] = []
    moved = _difference(_member_state(old or None), _member_state(new or None))
    if moved:
        found.append(Delta(program_id, shard, NOW, moved))
    if new.get("atRiskFor") and new.get("atRiskFor") != old.get("atRiskFor"):
        # A new "tier at risk" notice (the outbox publishes MemberTierAtRisk for the same
        # transition), counted in the UTC week it was decided.
        found.append(Delta(program_id, shard, period_bucket(week_of(at.date())), {AT_RISK: 1}))
    return found


def _redemption_deltas(
    program_id: str, shard: int, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Delta]:
    """A confirmed redemption counts once in its quota period; a cancellation takes it back."""
    before, after = old.get("status"), new.get("status")
    if after == "confirmed" and before != "confirmed":
        step = 1
    elif before == "confirmed" and after != "confirmed":
        step = -1
    else:
        return []
    image = new or old
    period = str(image.get("period") or "")
    perk = str(image.get("perkId") or "")
    if not period or not perk:
        return []
    return [Delta(program_id, shard, period_bucket(period), {f"{REDEEMED_PREFIX}{perk}": step})]


def _cashback_deltas(
    program_id: str, shard: int, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Delta]:
    """A purchase's cashback counts in its month when credited, and comes out when refunded."""
    before, after = old.get("status"), new.get("status")
    if after == "credited" and before != "credited":
        sign = 1
    elif before == "credited" and after != "credited":
        sign = -1
    else:
        return []
    image = new if sign > 0 else old
    cashback = image.get("cashback")
    cents = _cents(cashback.get("amount")) if isinstance(cashback, Mapping) else 0
    month = str(image.get("month") or "")
    if not cents or not month:
        return []
    return [Delta(program_id, shard, period_bucket(month), {CASHBACK_CENTS: sign * cents})]


def stats_deltas(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, at: datetime
) -> list[Delta]:
    """The counter deltas of one committed change (``at``: when it was committed, the same on
    every delivery of its stream record). Pure: the same images give the same deltas, so a
    redelivered record gives what it gave the first time, and whether to apply them again is
    the caller's (``shared.logic.stats_counting``)."""
    image = new or old
    if not image:
        return []
    program_id = _program_of(str(image.get("pk", "")))
    member_id = str(image.get("pk", "")).split("#", 3)[-1]
    if program_id is None or not member_id:
        return []
    sk = str(image.get("sk", ""))
    before, after = old or {}, new or {}
    shard = shard_of(member_id)
    if sk == MEMBER_SK:
        return _member_deltas(program_id, shard, before, after, at)
    if sk.startswith(REDEMPTION_PREFIX):
        return _redemption_deltas(program_id, shard, before, after)
    if sk.startswith(FUEL_PREFIX):
        return _cashback_deltas(program_id, shard, before, after)
    return []
