"""What the use cases expect of storage, apart from any database: the results a store reports,
the error it raises when concurrent writers keep it from deciding, and the page tokens of its
lists. The DynamoDB repositories in ``shared.dal`` implement them; nothing here imports boto3.

The stores themselves are ``Protocol`` classes next to the use cases that need them (e.g.
``shared.logic.ingestion.LedgerStore``, ``shared.logic.perks.PerkStore``); the repositories
satisfy them structurally, and ``shared.composition`` builds them."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Protocol

from msgspec import Struct

from shared.domain.errors import InvalidInput

if TYPE_CHECKING:
    # An annotation only: the ports load no domain module (event_publisher's perk repository
    # imports this module, and needs no order, event or program model).
    from shared.domain.orders import OrderRecord


class TransientConflict(Exception):
    """Concurrent writers kept conflicting after every retry; the caller should retry later."""


class WriteResult(Struct, frozen=True):
    """Whether a conditional write applied; if not, the item as it stood (ALL_OLD)."""

    applied: bool
    existing: OrderRecord | None = None
    zone_refused: bool = False
    """The member item's zone was not the one the write assumed (``shared.domain.zones``)."""
    member_zone: str | None = None
    """When ``zone_refused``: the zone the member item holds (None: the program's)."""


class Found(Struct, frozen=True):
    """What a refused transaction found: the order item, the member item and the wallet's
    member item as they stood (None: the condition on that item held, or the item was not in
    the transaction; {}: the item does not exist)."""

    applied: bool
    order: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    wallet: dict[str, Any] | None = None
    """The member item of the program whose wallet pays a part of a checkout hold."""


# -- lists ----------------------------------------------------------------------------------------


class Page(Struct, frozen=True):
    """One page of a member's items, newest first, and the token of the next page (if any)."""

    items: list[dict[str, Any]]
    next_token: str | None


class PartitionPages(Protocol):
    """Where a member's items under a sort-key prefix are listed, page by page (the ledger, the
    redemptions, the donations: ``shared.dal.perks.PerkRepository``)."""

    def page(
        self,
        program_id: str,
        member_id: str,
        prefix: str,
        limit: int,
        after: str | None,
        consistent: bool,
    ) -> Page: ...


def encode_token(sk: str) -> str:
    """The page token of a sort key: only the sort key travels, the partition is the caller's."""
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def decode_token(token: str, prefix: str) -> str | None:
    """The sort key a page token stands for, if it is one of ``prefix``'s; else None. Only the
    sort key travels in a token: the partition is always the caller's own."""
    try:
        sk = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # A key DynamoDB would refuse (empty, or past its 1,024 bytes) is no token either.
    return sk if sk.startswith(prefix) and 0 < len(sk.encode()) <= 1024 else None


def page_after(token: str | None, prefix: str) -> str | None:
    """The sort key to read after, from a list's ``nextToken`` (None: the first page); a token
    the list did not give is a 422 on ``nextToken``."""
    if token is None:
        return None
    after = decode_token(token, prefix)
    if after is None:
        raise InvalidInput("nextToken: not a token this list gave", field="nextToken")
    return after


# -- perks ----------------------------------------------------------------------------------------


class StoredResult(Struct, frozen=True):
    """The first result of one ``Idempotency-Key``: replayed, status included, to every later
    request with the same key and body."""

    request_digest: str
    status: int
    body: str
    """The response body, JSON, as first sent."""
    redemption_id: str | None = None


class RedeemWrite(Struct, frozen=True):
    """What the redemption transaction found. ``applied``, or the reasons it was cancelled."""

    applied: bool
    replay: StoredResult | None = None
    """The key was used before: its stored result."""
    member_changed: bool = False
    member: dict[str, Any] | None = None
    """The member item as it stood when the guard failed ({} when there is none)."""
    quota_refused: bool = False
    quota: dict[str, Any] | None = None
    """The quota item as it stood when its condition failed."""
    code_taken: bool = False
    """The new code's item exists already (another redemption drew the same 60 bits)."""


class CashbackWrite(Struct, frozen=True):
    applied: bool
    existing: dict[str, Any] | None = None
    """The purchase was recorded before: its item."""
    member_changed: bool = False
