"""The stream's router: item kinds from the key, one handler per kind, other kinds ignored; and
the images rating moderation acts upon parsed into its values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.orders import OrderStatus
from shared.logic.moderation import OrderChanged, WaitingRemoved
from shared.rating_stream import rating_change
from shared.streams import Change, ItemKind, StreamRouter, kind_of

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PK = "P#cart-star#M#shopper-42"


def change(sk: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change:
    return Change(keys={"pk": PK, "sk": sk}, old=old, new=new, at=AT)


def order(status: str, **extra: Any) -> dict[str, Any]:
    return {"pk": PK, "sk": "ORDER#o-1", "memberId": "shopper-42", "orderId": "o-1"} | {
        "status": status,
        **extra,
    }


@pytest.mark.parametrize(
    ("sk", "kind"),
    [
        ("MEMBER", ItemKind.MEMBER),
        ("ORDER#o-1", ItemKind.ORDER),
        ("WAITING#o-1", ItemKind.WAITING),
        ("RATING#2026-11-23T09:00:00.000000Z#o-1", None),
        ("RATINGS", None),
        ("EXPIRED#o-1", None),
        ("LEDGER#2026-11-23T09:00:00.000000Z#o-1#credit", None),
        ("CUSTOMER", None),
        ("", None),
    ],
)
def test_the_kind_comes_from_the_key(sk: str, kind: ItemKind | None) -> None:
    assert kind_of(sk) is kind


def test_each_kind_goes_to_its_handler_and_other_kinds_are_ignored() -> None:
    seen: list[tuple[str, str]] = []
    router = StreamRouter(
        {
            ItemKind.MEMBER: lambda c: seen.append(("member", c.sk)),
            ItemKind.ORDER: lambda c: seen.append(("order", c.sk)),
        }
    )
    assert router.route(change("MEMBER", None, {"sk": "MEMBER"}))
    assert router.route(change("ORDER#o-1", None, order("credited")))
    assert not router.route(change("WAITING#o-1", {"sk": "WAITING#o-1"}, None))  # no handler
    assert not router.route(change("RATING#x#o-1", None, {"sk": "RATING#x#o-1"}))  # unknown kind
    assert seen == [("member", "MEMBER"), ("order", "ORDER#o-1")]


def test_an_order_change_carries_both_images_as_orders() -> None:
    completed = order("credited", customerId="c-1", completedAt="2026-11-23T09:00:00.000000Z")
    arrived = rating_change(change("ORDER#o-1", None, completed))
    assert isinstance(arrived, OrderChanged) and arrived.before is None
    assert arrived.after.completed_at == "2026-11-23T09:00:00.000000Z"
    refunded = rating_change(change("ORDER#o-1", completed, {**completed, "status": "reversed"}))
    assert isinstance(refunded, OrderChanged) and refunded.before is not None
    assert (refunded.before.status, refunded.after.status) == (
        OrderStatus.CREDITED,
        OrderStatus.REVERSED,
    )
    assert rating_change(change("ORDER#o-1", completed, None)) is None


def test_only_a_removed_waiting_item_reaches_moderation() -> None:
    waiting = {
        "pk": PK,
        "sk": "WAITING#o-1",
        "memberId": "shopper-42",
        "orderId": "o-1",
        "expiresAt": 1_800_000_000,
        "since": "2026-11-23T12:00:00.000000Z",
        "v": 1,
    }
    removed = rating_change(change("WAITING#o-1", waiting, None))
    assert isinstance(removed, WaitingRemoved)
    assert (removed.waiting.order_id, removed.waiting.expires_at) == ("o-1", 1_800_000_000)
    assert rating_change(change("WAITING#o-1", None, waiting)) is None
    assert rating_change(change("MEMBER", None, {"sk": "MEMBER"})) is None
