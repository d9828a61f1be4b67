"""The stats counters' deltas (shared/domain/stats.py): whatever the sequence of a member
item's images, the deltas of its changes add up to what the last image holds; redemptions and
cashback count their transitions once each way; the shard of a member never moves."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.stats import (
    CASHBACK_CENTS,
    NOW,
    SHARDS,
    shard_of,
    stats_deltas,
)

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PK = "P#customer-rewards#M#c-1"

member_images = st.fixed_dictionaries(
    {},
    optional={
        "tier": st.sampled_from(["gold", "platinum", "diamond"]),
        "eligible": st.booleans(),
        "pend": st.integers(-500, 5_000),
        "bal": st.integers(-500, 5_000),
        "held": st.integers(0, 5_000),
        "walletBalance": st.decimals(-50, 500, places=2),
        "walletHeld": st.decimals(0, 500, places=2),
    },
).map(lambda attributes: {"pk": PK, "sk": "MEMBER", **attributes})


def _state(image: dict[str, Any] | None) -> Counter[str]:
    """The recount of one image, written apart from the module's own."""
    if image is None:
        return Counter()
    counted = Counter(
        {
            "members": 1,
            f"t:{image.get('tier', '-')}": 1,
            "eligible": int(image.get("eligible") is not False),
            "pend": image.get("pend", 0),
            "bal": image.get("bal", 0),
            "held": image.get("held", 0),
            "walletCents": int(image.get("walletBalance", 0) * 100),
            "walletHeldCents": int(image.get("walletHeld", 0) * 100),
        }
    )
    return Counter({name: value for name, value in counted.items() if value})


@given(st.lists(st.one_of(st.none(), member_images), min_size=1, max_size=8))
def test_the_deltas_of_a_member_items_changes_add_up_to_its_last_image(
    images: list[dict[str, Any] | None],
) -> None:
    total: Counter[str] = Counter()
    previous: dict[str, Any] | None = None
    for image in images:
        for delta in stats_deltas(previous, image, AT):
            assert delta.bucket == NOW and delta.shard == shard_of("c-1")
            assert all(delta.counts.values())
            total.update(delta.counts)
        previous = image
    assert Counter({k: v for k, v in total.items() if v}) == _state(images[-1])


def test_a_redemption_counts_once_and_its_cancellation_takes_it_back() -> None:
    base = {"pk": "P#cart-star#M#s-1", "sk": "REDEMPTION#01J", "perkId": "care_days"}
    confirmed = {**base, "status": "confirmed", "period": "2026-Q4"}
    cancelled = {**confirmed, "status": "cancelled"}
    (made,) = stats_deltas(None, confirmed, AT)
    assert (made.bucket, made.counts) == ("PER#2026-Q4", {"r:care_days": 1})
    assert stats_deltas(confirmed, confirmed, AT) == []
    (undone,) = stats_deltas(confirmed, cancelled, AT)
    assert undone.counts == {"r:care_days": -1}


def test_cashback_counts_when_credited_and_comes_out_when_refunded() -> None:
    base = {"pk": "P#cart-star#M#s-1", "sk": "FUEL#p-1", "month": "2026-11"}
    credited = {**base, "status": "credited", "cashback": {"amount": "1.37", "currency": "USD"}}
    (made,) = stats_deltas(None, credited, AT)
    assert (made.bucket, made.counts) == ("PER#2026-11", {CASHBACK_CENTS: 137})
    assert stats_deltas(None, {**credited, "status": "declined"}, AT) == []
    (undone,) = stats_deltas(credited, {**credited, "status": "refunded"}, AT)
    assert undone.counts == {CASHBACK_CENTS: -137}


def test_an_at_risk_notice_counts_in_its_week_once() -> None:
    member = {"pk": "P#cart-star#M#s-1", "sk": "MEMBER", "tier": "gold"}
    notice = {**member, "atRiskFor": "2026-11-30"}
    deltas = stats_deltas(member, notice, AT)
    assert [(d.bucket, d.counts) for d in deltas] == [("PER#2026-W48", {"atRisk": 1})]
    assert stats_deltas(notice, {**notice, "bal": 0}, AT) == []


def test_other_items_count_nothing_and_shards_are_stable() -> None:
    assert stats_deltas(None, {"pk": "P#cart-star#M#s-1", "sk": "ORDER#o-1"}, AT) == []
    assert stats_deltas(None, {"pk": "P#cart-star#STATS#3", "sk": "NOW", "members": 4}, AT) == []
    assert stats_deltas(None, {"pk": "STATSREC#e-1", "sk": "STATS"}, AT) == []
    shards = {shard_of(f"m-{index}") for index in range(200)}
    assert shards == set(range(SHARDS))
    assert shard_of("m-1") == shard_of("m-1") == 2  # sha256, not the per-process hash()
