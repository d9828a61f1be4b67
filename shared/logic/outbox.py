"""What the stream-fed publisher does with each committed change (see shared/domain/outbound.py):

- ``DERIVERS``: pure functions (old image, new image) -> the outbound events the change implies;
- ``PROJECTORS``: read models kept from the changes, written idempotently before the events are
  published (a failure fails the record, and the stream retries both), through the store the
  function gives them (``ReadModelStore``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain.customer_events import customer_events
from shared.domain.digest import digest_events
from shared.domain.draw import draw_events
from shared.domain.order_events import shopper_order_events
from shared.domain.outbound import Deriver, Image
from shared.domain.perk_events import perk_events
from shared.domain.rating_events import rating_events
from shared.domain.tier_events import tier_events
from shared.logic.ledger import LedgerEntryWriter, project_ledger

ReadModelStore = LedgerEntryWriter
"""What the projectors write to (the perk repository holds the ledger's read model)."""

Projector = Callable[[Image | None, Image | None, ReadModelStore, datetime], int]
"""(old image, new image, store, when the change was committed) -> items written."""

DERIVERS: list[Deriver] = [
    tier_events,
    rating_events,
    perk_events,
    customer_events,
    shopper_order_events,
    digest_events,
    draw_events,
]
PROJECTORS: list[Projector] = [project_ledger]
