"""The table's stream as rating moderation takes it: the images of order items and of removed
waiting items parsed into ``shared.logic.moderation``'s values (kinds from ``shared.streams``).
"""

from __future__ import annotations

from shared.dal.dynamodb import order_record
from shared.dal.ratings import waiting_of
from shared.logic.moderation import OrderChanged, TableChange, WaitingRemoved
from shared.streams import Change, ItemKind, kind_of

RATING_KINDS = (ItemKind.ORDER, ItemKind.WAITING)
"""The item kinds whose changes rating moderation acts upon."""


def rating_change(change: Change) -> TableChange | None:
    """The change as rating moderation takes it: an order item written (its images as orders),
    or a waiting item removed; None for anything else (a waiting item written)."""
    kind = kind_of(change.sk)
    if kind is ItemKind.ORDER and change.new is not None:
        before = order_record(change.old) if change.old is not None else None
        return OrderChanged(before=before, after=order_record(change.new))
    if kind is ItemKind.WAITING and change.new is None and change.old is not None:
        return WaitingRemoved(waiting_of(change.old))
    return None
