"""What rating moderation expects of storage, apart from any database: the values it reads and
commits, the store's protocol, and the table changes it is handed (already parsed from the
stream's images). ``shared.dal.ratings`` implements the store on DynamoDB; nothing here
imports it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

from msgspec import Struct

from shared.domain.orders import OrderRecord
from shared.domain.raters import Given, RaterState
from shared.domain.rating_window import RatingWindow
from shared.domain.ratings import Exclusion, RatingFacts, RatingSlot, TipChange

SLOT_KEY_PREFIX = "RATING#"


def slot_key(completed_at: str, order_id: str) -> str:
    """A slot's key among the member's slots (the store's sort key of the slot): sorts by the
    order's completion (``completed_at`` in the storage form of ``to_utc_iso``)."""
    return f"{SLOT_KEY_PREFIX}{completed_at}#{order_id}"


def slot_key_of(slot: RatingSlot) -> str:
    return slot_key(slot.completed_at, slot.order_id)


class Waiting(Struct, frozen=True):
    """A rating and/or tip changes that arrived before their order."""

    member_id: str
    order_id: str
    rating: RatingFacts | None
    tips: tuple[TipChange, ...]
    expires_at: int
    """Epoch seconds (the table's TTL attribute)."""
    since: str
    version: int


class RatingRef(Struct, frozen=True):
    rating_id: str
    member_id: str
    order_id: str
    slot_sk: str


class SlotWrite(Struct, frozen=True):
    """A slot to write, with what the moderation decided about it (stored for reading)."""

    slot: RatingSlot
    read_version: int | None
    """The version read (None: the slot did not exist)."""
    exclusions: tuple[Exclusion, ...]
    counted: bool
    entry: int | None
    rule_version: str | None = None
    """The program version whose rules decided it (stored as the slot's ``ruleVersion``)."""


class MemberRating(Struct, frozen=True):
    """The member item's rating attributes (the rest of the member item is not ours)."""

    average: Decimal | None
    count: int
    eligible: bool
    reason: str
    changed_at: str | None
    flipped: bool = False
    """Eligibility flips with this commit: the member item's flip count goes up by one, so that
    two flips at the same instant publish two events with different ids."""


class Commit(Struct, frozen=True):
    program_id: str
    member_id: str
    slots: Sequence[SlotWrite] = ()
    window: RatingWindow | None = None
    """The window to write; its ``version`` is the one read (0: none yet)."""
    member: MemberRating | None = None
    """Written after the transaction, outside it (1 write unit instead of 2), guarded by the
    window's version; a lost write is made again by the next delivery that changes nothing."""
    rater: RaterState | None = None
    """The rater's item to write; its ``version`` is the one read (0: none yet). Only a low
    rating (or a first tip bait) commits it; a rating at or above the floor writes it after
    (``put_rater``)."""
    delete_waiting: Waiting | None = None


class CommitResult(Struct, frozen=True):
    applied: bool
    failed: tuple[str, ...] = ()
    """Which items' conditions failed: ``slot``, ``window``, ``rater``, ``waiting``."""


class OrderChanged(Struct, frozen=True):
    """An order item changed (the stream's old and new images, as orders)."""

    before: OrderRecord | None
    after: OrderRecord


class WaitingRemoved(Struct, frozen=True):
    """A waiting item was removed (by its TTL, or once applied)."""

    waiting: Waiting


TableChange = OrderChanged | WaitingRemoved
"""The committed changes of the table that rating moderation acts upon."""


class RatingStore(Protocol):
    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None: ...
    def read_for_rating(
        self, program_id: str, member_id: str, order_id: str, customer_id: str
    ) -> tuple[OrderRecord | None, RatingWindow, RaterState]:
        """The order, the member's window and the rater, in one eventually consistent read:
        a stale window or rater only fails a version condition (then read again); an order
        not delivered must be read again, strongly, before the rating waits."""
        ...

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None: ...
    def get_slot(self, program_id: str, member_id: str, sk: str) -> RatingSlot | None: ...
    def get_slots(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> dict[str, RatingSlot]: ...
    def get_window(self, program_id: str, member_id: str) -> RatingWindow: ...
    def read_slots_and_window(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> tuple[dict[str, RatingSlot], RatingWindow]:
        """Some of a member's slots and their window, in one eventually consistent read (a
        stale one fails the commit's version conditions)."""
        ...

    def get_rater(self, program_id: str, customer_id: str) -> RaterState: ...
    def get_waiting(self, program_id: str, member_id: str, order_id: str) -> Waiting | None: ...
    def get_ref(self, program_id: str, rating_id: str) -> RatingRef | None: ...
    def claim_ref(self, program_id: str, ref: RatingRef) -> RatingRef | None:
        """Make ``ref.rating_id`` name ``ref``'s order unless it names another one (then left
        unchanged). Answers the reference as it stood before (None: there was none)."""
        ...

    def release_ref(self, program_id: str, ref: RatingRef) -> bool:
        """Drop the reference if it still names ``ref``'s order."""
        ...

    def query_given(
        self, program_id: str, customer_id: str, first_day: int, last_day: int
    ) -> list[Given]: ...
    def put_given(self, program_id: str, customer_id: str, given: Given) -> None:
        """Add a low rating to the rater's index: a plain write, before the rating's
        transaction, idempotent (its key holds the rating id). An entry whose rating never
        committed (refused, or not delivered again) names a slot that holds no such rating:
        the reconciliation ignores it."""
        ...

    def counted_before(
        self, program_id: str, member_id: str, boundary: int | None, page: int
    ) -> Iterator[tuple[str, int]]: ...
    def list_slots(
        self, program_id: str, member_id: str, limit: int, after: str | None
    ) -> tuple[list[tuple[str, RatingSlot, dict[str, Any]]], str | None]: ...
    def list_waiting(self, program_id: str, member_id: str) -> list[Waiting]: ...
    def list_expired(self, program_id: str, member_id: str) -> list[dict[str, Any]]: ...
    def put_waiting(
        self,
        program_id: str,
        member_id: str,
        order_id: str,
        since: str,
        expires_at: int,
        rating: RatingFacts | None = None,
        tip: TipChange | None = None,
        max_tips: int = 20,
    ) -> tuple[bool, Waiting | None]: ...
    def delete_waiting(self, program_id: str, waiting: Waiting) -> bool: ...
    def record_expired(
        self, program_id: str, waiting: Waiting, reason: str, at: str, now_epoch: int
    ) -> None: ...
    def commit(self, commit: Commit) -> CommitResult:
        """The transaction; then, if it applied, the member's rating attributes (``sync_member``
        with the window's new version)."""
        ...

    def sync_member(
        self, program_id: str, member_id: str, rating: MemberRating, version: int
    ) -> bool:
        """Write the member item's rating attributes from the window of ``version``, unless
        they come from a newer one already. Whether it wrote."""
        ...

    def put_rater(self, program_id: str, state: RaterState) -> bool:
        """Write the rater's item (a plain write, outside any transaction) unless it changed
        since ``state.version`` was read. Whether it wrote."""
        ...

    def clear_reconcile(self, program_id: str, customer_id: str, version: int) -> bool: ...
