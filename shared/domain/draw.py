"""The monthly prize draw (docs/campaigns.md, "The monthly prize draw"): pure, so that anyone
holding the published facts can recompute the winners with this file alone.

- A month's draw is *opened* before the month starts: a random 32-byte seed is drawn and its
  SHA-256 (``seedHash``) published (``PrizeDrawOpened``). Once published, the seed can no longer
  be chosen to favour anyone: any other seed gives another hash.
- Each completed (credited) order of the month is one entry; ``entries`` is the sorted list of
  (member id, entries).
- After the month (and the late orders' grace) the draw is *drawn*: ``choose_winners`` picks
  the winners from the seed and the entries, and ``PrizeDrawn`` publishes the seed, the entries'
  digest and the winners.

The algorithm, ``prize-draw/v1``, exactly:

1. ``entries``: (memberId, n) pairs with n >= 1, sorted by memberId (Unicode code points, the
   same as UTF-8 byte order). ``entriesDigest`` = hex SHA-256 of the UTF-8 text
   ``"prize-draw/v1\n{programId}\n{month}\n"`` followed by ``"{memberId}\t{n}\n"`` for each pair.
2. For draw k = 0, 1, ... while winners are wanted and entries remain: ``r`` = the big-endian
   integer of HMAC-SHA256(key = the seed's 32 bytes, message = ``"{programId}|{month}|{k}"``);
   ``t = r mod R`` where R is the sum of n over the members not drawn yet; walking the members
   not drawn yet in sorted order, the winner is the first whose running sum of n exceeds ``t``
   (so each member's chance is n / R: weighted by entries); the winner is then removed (no
   member wins twice). The modulo's bias is below R / 2^256: nil.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct

from shared.domain.outbound import Image, OutboundEvent

ALGORITHM = "prize-draw/v1"
PRIZE_DRAW_OPENED = "PrizeDrawOpened"
PRIZE_DRAWN = "PrizeDrawn"
DRAW_MONTH_ATTR = "drawMonth"
"""On a credited order item of a program with a draw: ``P#{programId}#DRAW#{YYYY-MM}``, the
partition key of the sparse index ``ByDrawMonth`` (one index item per entry)."""
DRAW_SK_PREFIX = "DRAW#"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def draw_pk(program_id: str) -> str:
    """The program's draw items: one per month (``DRAW#{YYYY-MM}``)."""
    return f"P#{program_id}#DRAWS"


def draw_sk(month: str) -> str:
    return f"{DRAW_SK_PREFIX}{month}"


def draw_month_key(program_id: str, month: str) -> str:
    return f"P#{program_id}#DRAW#{month}"


def month_of(moment: datetime, zone: str) -> str:
    """The month (``YYYY-MM``) of an instant in the program's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.year:04d}-{local.month:02d}"


def month_start(month: str, zone: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime.combine(date(year, number, 1), time(0), tzinfo=ZoneInfo(zone))


def next_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def entries_close(month: str, zone: str, grace_days: int) -> datetime:
    """When the month's entries close: ``grace_days`` after the month ends (its last order may
    arrive late). An order credited after it earns no entry in that month (nor in another)."""
    return month_start(next_month(month), zone) + timedelta(days=grace_days)


def seed_hash(seed_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def entries_digest(program_id: str, month: str, entries: Iterable[tuple[str, int]]) -> str:
    digest = hashlib.sha256(f"{ALGORITHM}\n{program_id}\n{month}\n".encode())
    for member_id, count in entries:
        digest.update(f"{member_id}\t{count}\n".encode())
    return digest.hexdigest()


def count_entries(member_ids: Iterable[str]) -> list[tuple[str, int]]:
    """(member id, entries) sorted by member id, from one member id per entry."""
    counts: dict[str, int] = {}
    for member_id in member_ids:
        counts[member_id] = counts.get(member_id, 0) + 1
    return sorted(counts.items())


def choose_winners(
    seed_hex: str, program_id: str, month: str, entries: Sequence[tuple[str, int]], winners: int
) -> list[str]:
    """The winners, in the order drawn (the module's algorithm)."""
    key = bytes.fromhex(seed_hex)
    remaining = sorted((member, count) for member, count in entries if count > 0)
    total = sum(count for _, count in remaining)
    chosen: list[str] = []
    draw = 0
    while len(chosen) < winners and remaining:
        mac = hmac.new(key, f"{program_id}|{month}|{draw}".encode(), hashlib.sha256).digest()
        ticket = int.from_bytes(mac, "big") % total
        running = 0
        for index, (member, count) in enumerate(remaining):
            running += count
            if ticket < running:
                chosen.append(member)
                total -= count
                del remaining[index]
                break
        draw += 1
    return chosen


class Draw(Struct, frozen=True):
    """A month's draw item (``P#{programId}#DRAWS`` / ``DRAW#{month}``)."""

    program_id: str
    month: str
    seed: str
    """Hex; never published before ``state`` is ``drawn`` (on AWS stored sealed until then:
    empty when read by whoever cannot open it)."""
    seed_hash: str
    opened_at: str
    opened_late: bool
    prize: str
    winners_wanted: int
    state: str = "opened"
    entries_digest: str | None = None
    total_entries: int | None = None
    members: int | None = None
    winners: tuple[str, ...] = ()
    drawn_at: str | None = None
    algorithm: str = ALGORITHM

    def attributes(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "programId": self.program_id,
            "month": self.month,
            "seed": self.seed,
            "seedHash": self.seed_hash,
            "openedAt": self.opened_at,
            "openedLate": self.opened_late,
            "prize": self.prize,
            "winnersWanted": self.winners_wanted,
            "state": self.state,
            "algorithm": self.algorithm,
        }
        if self.state == "drawn":
            values.update(
                entriesDigest=self.entries_digest,
                totalEntries=self.total_entries,
                members=self.members,
                winners=list(self.winners),
                drawnAt=self.drawn_at,
            )
        return values

    @classmethod
    def of(cls, image: Mapping[str, Any]) -> Draw:
        def optional_int(name: str) -> int | None:
            value = image.get(name)
            return None if value is None else int(value)

        return cls(
            program_id=str(image["programId"]),
            month=str(image["month"]),
            seed=str(image.get("seed") or ""),  # "" while sealed (shared.dal.seed_vault)
            seed_hash=str(image["seedHash"]),
            opened_at=str(image.get("openedAt", "")),
            opened_late=bool(image.get("openedLate", False)),
            prize=str(image.get("prize", "")),
            winners_wanted=int(image.get("winnersWanted", 0)),
            state=str(image.get("state", "opened")),
            entries_digest=image.get("entriesDigest"),
            total_entries=optional_int("totalEntries"),
            members=optional_int("members"),
            winners=tuple(str(w) for w in image.get("winners") or ()),
            drawn_at=image.get("drawnAt"),
            algorithm=str(image.get("algorithm", ALGORITHM)),
        )


def is_draw_item(image: Image | None) -> bool:
    return bool(
        image
        and str(image.get("pk", "")).endswith("#DRAWS")
        and str(image.get("sk", "")).startswith(DRAW_SK_PREFIX)
    )


def draw_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    """``PrizeDrawOpened`` when a month's draw item is inserted (the seed's hash, never the
    seed); ``PrizeDrawn`` when it becomes ``drawn`` (the seed, the entries' digest, the
    winners). Any other change to a draw item publishes nothing."""
    if not is_draw_item(new):
        return []
    draw = Draw.of(new or {})
    if old is None and draw.state == "opened":
        event = OutboundEvent(
            PRIZE_DRAW_OPENED,
            {
                "programId": draw.program_id,
                "month": draw.month,
                "seedHash": draw.seed_hash,
                "prize": draw.prize,
                "winners": draw.winners_wanted,
                "openedLate": draw.opened_late,
                "algorithm": draw.algorithm,
                "reason": "prize_draw",
                "occurredAt": draw.opened_at,
            },
        )
        return [event.with_id(draw.program_id, draw.month, draw.seed_hash)]
    if old is not None and old.get("state") == "opened" and draw.state == "drawn":
        drawn = [
            OutboundEvent(
                PRIZE_DRAWN,
                {
                    "programId": draw.program_id,
                    "month": draw.month,
                    "seed": draw.seed,
                    "seedHash": draw.seed_hash,
                    "entriesDigest": draw.entries_digest,
                    "totalEntries": draw.total_entries,
                    "members": draw.members,
                    "winners": list(draw.winners),
                    "prize": draw.prize,
                    "algorithm": draw.algorithm,
                    "reason": "prize_draw",
                    "occurredAt": draw.drawn_at,
                },
            ).with_id(draw.program_id, draw.month, draw.seed)
        ]
        # One event per winner too, keyed by the member, for the notifier ("prize won").
        for place, member_id in enumerate(draw.winners, start=1):
            drawn.append(
                OutboundEvent(
                    "PrizeWon",
                    {
                        "memberId": member_id,
                        "programId": draw.program_id,
                        "month": draw.month,
                        "place": place,
                        "prize": draw.prize,
                        "reason": "prize_draw",
                        "occurredAt": draw.drawn_at,
                    },
                ).with_id(draw.program_id, draw.month, member_id)
            )
        return drawn
    return []
