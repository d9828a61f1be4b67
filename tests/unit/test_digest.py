"""The ledger digest's pure parts (shared/domain/digest.py): the canonical form is fixed bytes
(a digest computed elsewhere, from the documented rules, must match), the chain depends on
every entry, their order and the previous digest, and the outbox publishes a digest item's
insertion only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from shared.domain.digest import (
    GENESIS,
    DayChain,
    DayDigest,
    canonical_entry,
    digest_events,
    entry_hash,
    utc_day,
)
from shared.logic.digest import build_digests, verify_digests

ENTRY = {
    "pk": "P#cart-star#M#s-1",
    "sk": "LEDGER#2026-11-23T10:00:00.000000+00:00#o-1#credit",
    "memberId": "s-1",
    "orderId": "o-1",
    "kind": "credit",
    "points": Decimal(10),
    "ruleVersion": "cart-star@1",
    "reason": "OrderCompleted",
    "occurredAt": "2026-11-23T10:00:00.000000+00:00",
    "batchSize": Decimal(1),
    "recordedAt": "2026-11-23T12:00:00.000000+00:00",
    # Not hashed: the index keys and the hash itself.
    "ledgerDay": "P#cart-star#D#2026-11-23",
    "ledgerKey": "whatever",
    "entryHash": "0" * 64,
}


def test_the_canonical_form_is_sorted_compact_json_of_the_hashed_fields() -> None:
    assert canonical_entry(ENTRY) == (
        b'{"batchSize":1,"kind":"credit","memberId":"s-1","occurredAt":'
        b'"2026-11-23T10:00:00.000000+00:00","orderId":"o-1","pk":"P#cart-star#M#s-1",'
        b'"points":10,"reason":"OrderCompleted","recordedAt":"2026-11-23T12:00:00.000000+00:00",'
        b'"ruleVersion":"cart-star@1","sk":"LEDGER#2026-11-23T10:00:00.000000+00:00#o-1#credit"}'
    )
    assert entry_hash(ENTRY) == hashlib.sha256(canonical_entry(ENTRY)).hexdigest()
    # The index keys and the stored hash do not count; every hashed field does.
    assert entry_hash({**ENTRY, "ledgerKey": "other", "entryHash": "1"}) == entry_hash(ENTRY)
    assert entry_hash({**ENTRY, "points": Decimal(11)}) != entry_hash(ENTRY)
    assert entry_hash({**ENTRY, "recordedAt": "2026-11-24T00:00:00+00:00"}) != entry_hash(ENTRY)


def test_the_chain_depends_on_each_entry_their_order_and_the_previous_digest() -> None:
    day = date(2026, 11, 23)
    hashes = [entry_hash({**ENTRY, "orderId": f"o-{n}"}) for n in range(3)]

    def digest(entries: list[str], previous: str = GENESIS, program: str = "cart-star") -> str:
        chain = DayChain(program, day, previous)
        for hashed in entries:
            chain.add(hashed)
        return chain.digest

    head = hashlib.sha256(f"sha256-chain/v1\ncart-star\n2026-11-23\n{GENESIS}".encode()).digest()
    expected = head
    for hashed in hashes:
        expected = hashlib.sha256(expected + bytes.fromhex(hashed)).digest()
    assert digest(hashes) == expected.hex()
    assert len({digest(hashes), digest(hashes[::-1]), digest(hashes[:2])}) == 3
    assert digest(hashes, previous="f" * 64) != digest(hashes)
    assert digest(hashes, program="customer-rewards") != digest(hashes)
    assert digest([]) == head.hex()  # a day without entries still has a digest, linked


def test_the_day_is_utc() -> None:
    late_evening_in_chicago = datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=-6)))
    assert utc_day(late_evening_in_chicago) == date(2026, 11, 24)
    assert utc_day(datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)) == date(2026, 11, 23)


def test_only_a_digest_items_insertion_is_published() -> None:
    item = {
        "pk": "P#cart-star#DIGEST",
        "sk": "D#2026-11-23",
        "programId": "cart-star",
        "day": "2026-11-23",
        "entryCount": Decimal(3),
        "digest": "a" * 64,
        "previousDigest": GENESIS,
        "algorithm": "sha256-chain/v1",
        "builtAt": "2026-11-24T00:30:00.000000+00:00",
    }
    (event,) = digest_events(None, item)
    assert event.detail_type == "LedgerDigestPublished"
    assert event.detail["entryCount"] == 3 and event.detail["previousDigest"] == GENESIS
    assert event.detail["occurredAt"] == item["builtAt"]
    assert digest_events(None, item)[0].detail["eventId"] == event.detail["eventId"]
    assert digest_events(item, {**item, "digest": "b" * 64}) == []  # an edit is not news
    assert digest_events(None, {**item, "pk": "P#cart-star#M#s-1"}) == []
    assert digest_events(item, None) == []


def test_checkpoints_thin_out_to_at_most_a_thousand() -> None:
    chain = DayChain("cart-star", date(2026, 11, 23), GENESIS)
    for n in range(2500):
        chain.add(entry_hash({**ENTRY, "orderId": f"o-{n}"}), f"k{n:05d}")
    assert chain.every == 4 and len(chain.checkpoints) == 625
    assert [key for key, _ in chain.checkpoints[:3]] == ["k00003", "k00007", "k00011"]
    assert chain.checkpoints[-1][0] == "k02499"


class _Day:
    """One program-day in memory (shared.logic.digest.DigestStore)."""

    def __init__(self, entries: list[dict[str, object]]) -> None:
        self.entries = entries
        self.stored: dict[date, DayDigest] = {}

    def day_entries(self, program_id: str, day: date) -> Iterator[dict[str, Any]]:
        yield from sorted(self.entries, key=lambda e: f"{e['pk']}|{e['sk']}")

    def get_digest(self, program_id: str, day: date) -> DayDigest | None:
        return self.stored.get(day)

    def digests(
        self, program_id: str, first: date | None = None, last: date | None = None
    ) -> Iterator[DayDigest]:
        yield from (self.stored[day] for day in sorted(self.stored))

    def latest_digest_before(self, program_id: str, day: date) -> DayDigest | None:
        return None

    def put_digest(self, digest: DayDigest) -> DayDigest | None:
        self.stored[digest.day] = digest
        return None


def test_a_long_day_narrows_a_deletion_down_to_a_range() -> None:
    entries: list[dict[str, object]] = [
        {**ENTRY, "sk": f"LEDGER#{n:05d}", "orderId": f"o-{n}"} for n in range(2500)
    ]
    for entry in entries:
        entry["entryHash"] = entry_hash(entry)
    day = _Day(entries)
    (built,) = build_digests("cart-star", datetime(2026, 11, 24, 1, tzinfo=UTC), day)
    assert (built.status, built.entry_count) == ("built", 2500)
    assert verify_digests("cart-star", day).differences == []
    del entries[1234]
    found = verify_digests("cart-star", day).differences
    assert found[0].what == (
        "the first difference is among the 4 entries after "
        "P#cart-star#M#s-1|LEDGER#01231 up to P#cart-star#M#s-1|LEDGER#01235"
    )
    assert "2499 entries where the digest counted 2500" in found[1].what
