"""The ledger's daily digest: a hash chain over each day's ledger entries, per program
(docs/audit.md).

Pure: no I/O, no clock. The stream projector stamps each ledger entry with the UTC day its
change was committed (``digest_day_key``) and its own hash (``entry_hash``); the daily job and
``loyalty audit verify`` fold a day's entries, in the index's order, into one digest
(``DayChain``) that starts from the previous day's digest, so that a day cannot be changed
without changing every digest after it. The digest item's insertion is published as
``LedgerDigestPublished`` by the outbox (``digest_events``).

The canonical form of an entry is the JSON of the fields in ``HASHED_FIELDS`` that it has, with
sorted keys, no whitespace, UTF-8 and integers as integers: two encoders that follow these rules
produce the same bytes. A field added to it is a new ``ALGORITHM``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from msgspec import Struct

from shared.domain.outbound import Image, OutboundEvent

ALGORITHM = "sha256-chain/v1"
"""How a digest is computed; carried by every digest item and event."""
GENESIS = "0" * 64
"""The previous digest of a program's first digested day."""

HASHED_FIELDS = (
    "pk",
    "sk",
    "memberId",
    "orderId",
    "kind",
    "points",
    "ruleVersion",
    "reason",
    "occurredAt",
    "batchSize",
    "availableOn",
    "recordedAt",
)
"""What an entry's hash covers: its key, whose it is, what it changed, why, and when it
happened and was recorded. Not the index keys (they follow from ``pk`` and ``recordedAt``) nor
the hash itself."""

DAY_KEY = "ledgerDay"
"""The sparse index ``ByLedgerDay``'s partition key on ledger entries:
``P#{programId}#D#{yyyy-mm-dd}``."""
ORDER_KEY = "ledgerKey"
"""The index's sort key: ``{pk}|{sk}``, the order in which a day's entries are chained."""
HASH_KEY = "entryHash"
"""The entry's own hash, written with it (names an entry edited behind the projector's back)."""

DIGEST_PK_SUFFIX = "#DIGEST"
DIGEST_SK_PREFIX = "D#"
LEDGER_DIGEST_PUBLISHED = "LedgerDigestPublished"


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an instant (digests are by UTC day, whatever the program's zone)."""
    return moment.astimezone(UTC).date()


def digest_day_key(program_id: str, day: date) -> str:
    return f"P#{program_id}#D#{day.isoformat()}"


def entry_order_key(pk: str, sk: str) -> str:
    return f"{pk}|{sk}"


def digest_pk(program_id: str) -> str:
    """The program's digest partition: one item per digested day, ``D#{yyyy-mm-dd}``."""
    return f"P#{program_id}{DIGEST_PK_SUFFIX}"


def digest_sk(day: date) -> str:
    return f"{DIGEST_SK_PREFIX}{day.isoformat()}"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash is computed from (see the module docstring)."""
    fields = {name: _plain(entry[name]) for name in HASHED_FIELDS if entry.get(name) is not None}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_entry(entry)).hexdigest()


CHECKPOINTS = 1000
"""At most this many checkpoints in a digest item (about 200 bytes each)."""


@dataclass
class DayChain:
    """A day's digest, folded entry by entry in the index's order:
    ``h0 = sha256(algorithm, program, day, previous digest)``, then ``h = sha256(h || entry
    hash)`` for each entry; the digest is the last ``h``.

    Along the way it keeps *checkpoints*: after every ``every``-th entry, that entry's key and
    the first 16 hex digits of ``h`` then. ``every`` starts at 1 and doubles (dropping every
    other checkpoint) whenever there would be more than ``CHECKPOINTS``: a day of up to 1,000
    entries keeps every entry's key, so ``verify`` can name a deleted or inserted entry; a
    longer day narrows a difference down to ``every`` entries."""

    program_id: str
    day: date
    previous: str
    count: int = 0
    every: int = 1
    checkpoints: list[tuple[str, str]] = field(default_factory=list)
    _state: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        head = f"{ALGORITHM}\n{self.program_id}\n{self.day.isoformat()}\n{self.previous}"
        self._state = hashlib.sha256(head.encode()).digest()

    def add(self, hashed: str, key: str | None = None) -> None:
        self._state = hashlib.sha256(self._state + bytes.fromhex(hashed)).digest()
        self.count += 1
        if key is not None and self.count % self.every == 0:
            self.checkpoints.append((key, self.mark))
            if len(self.checkpoints) > CHECKPOINTS:
                self.checkpoints = self.checkpoints[1::2]
                self.every *= 2

    @property
    def mark(self) -> str:
        """The running hash, shortened (what a checkpoint keeps)."""
        return self._state.hex()[:16]

    @property
    def digest(self) -> str:
        return self._state.hex()


class DayDigest(Struct, frozen=True):
    """What the digest item holds (and ``LedgerDigestPublished`` carries)."""

    program_id: str
    day: date
    entry_count: int
    digest: str
    previous_digest: str
    built_at: str
    algorithm: str = ALGORITHM
    checkpoint_every: int = 1
    checkpoints: tuple[tuple[str, str], ...] = ()
    """(entry key, running hash's first 16 hex digits), see ``DayChain``."""

    def attributes(self) -> dict[str, Any]:
        return {
            "programId": self.program_id,
            "day": self.day.isoformat(),
            "entryCount": self.entry_count,
            "digest": self.digest,
            "previousDigest": self.previous_digest,
            "algorithm": self.algorithm,
            "builtAt": self.built_at,
            "checkpointEvery": self.checkpoint_every,
            # "{mark} {key}": the mark has no space, the key may hold any character.
            "checkpoints": [f"{mark} {key}" for key, mark in self.checkpoints],
        }

    @classmethod
    def of(cls, image: Mapping[str, Any]) -> DayDigest:
        marks = [str(raw).split(" ", 1) for raw in image.get("checkpoints") or []]
        return cls(
            program_id=str(image["programId"]),
            day=date.fromisoformat(str(image["day"])),
            entry_count=int(image["entryCount"]),
            digest=str(image["digest"]),
            previous_digest=str(image["previousDigest"]),
            built_at=str(image.get("builtAt", "")),
            algorithm=str(image.get("algorithm", ALGORITHM)),
            checkpoint_every=int(image.get("checkpointEvery", 1)),
            checkpoints=tuple((pair[1], pair[0]) for pair in marks if len(pair) == 2),
        )


def is_digest_item(image: Image | None) -> bool:
    return bool(
        image
        and str(image.get("pk", "")).endswith(DIGEST_PK_SUFFIX)
        and str(image.get("sk", "")).startswith(DIGEST_SK_PREFIX)
    )


def digest_events(old: Image | None, new: Image | None) -> list[OutboundEvent]:
    """``LedgerDigestPublished`` when a day's digest item is inserted (it is written once:
    any later change to it is tampering, which ``loyalty audit verify`` reports, not news)."""
    if old is not None or not is_digest_item(new):
        return []
    digest = DayDigest.of(new or {})
    event = OutboundEvent(
        LEDGER_DIGEST_PUBLISHED,
        {
            "programId": digest.program_id,
            "day": digest.day.isoformat(),
            "entryCount": digest.entry_count,
            "digest": digest.digest,
            "previousDigest": digest.previous_digest,
            "algorithm": digest.algorithm,
            "reason": "daily_digest",
            "occurredAt": digest.built_at,
        },
    )
    return [event.with_id(digest.program_id, digest.day.isoformat(), digest.digest)]
