"""The prize draw's algorithm (shared/domain/draw.py): weighted by entries, without
replacement, deterministic from the seed; its events carry the seed only once drawn."""

from __future__ import annotations

from collections import Counter

from shared.domain.draw import (
    Draw,
    choose_winners,
    count_entries,
    draw_events,
    entries_digest,
    seed_hash,
)

SEED = "ab" * 32


def test_winners_are_deterministic_distinct_and_weighted() -> None:
    entries = [("a", 1), ("b", 9)]
    assert choose_winners(SEED, "p", "2026-11", entries, 2) == choose_winners(
        SEED, "p", "2026-11", entries, 2
    )
    assert sorted(choose_winners(SEED, "p", "2026-11", entries, 3)) == ["a", "b"]
    firsts = Counter(
        choose_winners(f"{n:064x}", "p", "2026-11", entries, 1)[0] for n in range(2000)
    )
    assert 1700 < firsts["b"] < 1900  # 90% of the tickets


def test_the_digest_names_each_count_and_the_month() -> None:
    entries = count_entries(["b", "a", "b"])
    assert entries == [("a", 1), ("b", 2)]
    assert entries_digest("p", "2026-11", entries) != entries_digest(
        "p", "2026-11", [("a", 2), ("b", 1)]
    )
    assert entries_digest("p", "2026-11", entries) != entries_digest("p", "2026-12", entries)


def test_opened_publishes_the_hash_and_drawn_the_seed() -> None:
    opened = Draw("p", "2026-11", SEED, seed_hash(SEED), "t", False, "prize", 3)
    image = {"pk": "P#p#DRAWS", "sk": "DRAW#2026-11", **opened.attributes()}
    [event] = draw_events(None, image)
    assert event.detail_type == "PrizeDrawOpened" and SEED not in str(event.detail)
    drawn = {**image, "state": "drawn", "winners": ["a"], "entriesDigest": "d", "totalEntries": 1}
    kinds = [e.detail_type for e in draw_events(image, drawn)]
    assert kinds == ["PrizeDrawn", "PrizeWon"]
    assert draw_events(drawn, {**drawn, "seed": "00" * 32}) == []
