"""An in-memory ``RatingStore`` with the repository's semantics (versions checked, all or
nothing commits, newest-first queries), for property tests that need thousands of commits.

The real repository (``shared.dal.ratings``) runs the same use cases against moto and DynamoDB
Local in the other tests; this fake only trades the wire for speed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from shared.dal.dynamodb import order_record
from shared.domain.orders import OrderRecord
from shared.domain.raters import Given, RaterState
from shared.domain.rating_window import RatingWindow, entry_time
from shared.domain.ratings import RatingFacts, RatingSlot, TipChange
from shared.domain.timeutil import to_utc_iso
from shared.logic.moderation.ports import (
    Commit,
    CommitResult,
    MemberRating,
    RatingRef,
    Waiting,
    slot_key_of,
)


@dataclass
class StoredSlot:
    slot: RatingSlot
    counted: bool
    entry: int | None
    exclusions: tuple[str, ...]


@dataclass
class FakeRatingStore:
    orders: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    slots: dict[tuple[str, str], StoredSlot] = field(default_factory=dict)
    windows: dict[str, RatingWindow] = field(default_factory=dict)
    raters: dict[str, RaterState] = field(default_factory=dict)
    given: dict[tuple[str, str], tuple[str, Given]] = field(default_factory=dict)
    refs: dict[str, RatingRef] = field(default_factory=dict)
    waiting: dict[tuple[str, str], Waiting] = field(default_factory=dict)
    expired: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    commits: int = 0

    # -- orders (written by the test's ledger) ------------------------------------------------

    def order_image(self, member_id: str, order_id: str) -> dict[str, Any] | None:
        image = self.orders.get((member_id, order_id))
        return dict(image) if image is not None else None

    def put_order_image(self, member_id: str, order_id: str, image: dict[str, Any]) -> None:
        self.orders[(member_id, order_id)] = dict(image)

    def get_order(self, program_id: str, member_id: str, order_id: str) -> OrderRecord | None:
        image = self.orders.get((member_id, order_id))
        return order_record(image) if image is not None else None

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        member = self.members.get(member_id)
        return dict(member) if member is not None else None

    # -- reads --------------------------------------------------------------------------------

    def get_slot(self, program_id: str, member_id: str, sk: str) -> RatingSlot | None:
        stored = self.slots.get((member_id, sk))
        return stored.slot if stored else None

    def get_slots(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> dict[str, RatingSlot]:
        return {sk: self.slots[(member_id, sk)].slot for sk in sks if (member_id, sk) in self.slots}

    def get_window(self, program_id: str, member_id: str) -> RatingWindow:
        return self.windows.get(member_id, RatingWindow())

    def read_slots_and_window(
        self, program_id: str, member_id: str, sks: Sequence[str]
    ) -> tuple[dict[str, RatingSlot], RatingWindow]:
        return self.get_slots(program_id, member_id, sks), self.get_window(program_id, member_id)

    def get_rater(self, program_id: str, customer_id: str) -> RaterState:
        return self.raters.get(customer_id, RaterState(customer_id))

    def get_waiting(self, program_id: str, member_id: str, order_id: str) -> Waiting | None:
        return self.waiting.get((member_id, order_id))

    def read_for_rating(
        self, program_id: str, member_id: str, order_id: str, customer_id: str
    ) -> tuple[OrderRecord | None, RatingWindow, RaterState]:
        return (
            self.get_order(program_id, member_id, order_id),
            self.get_window(program_id, member_id),
            self.get_rater(program_id, customer_id),
        )

    def get_ref(self, program_id: str, rating_id: str) -> RatingRef | None:
        return self.refs.get(rating_id)

    def claim_ref(self, program_id: str, ref: RatingRef) -> RatingRef | None:
        known = self.refs.get(ref.rating_id)
        if known is None or (known.member_id, known.order_id) == (ref.member_id, ref.order_id):
            self.refs[ref.rating_id] = ref
        return known

    def release_ref(self, program_id: str, ref: RatingRef) -> bool:
        known = self.refs.get(ref.rating_id)
        if known is None or (known.member_id, known.order_id) != (ref.member_id, ref.order_id):
            return False
        del self.refs[ref.rating_id]
        return True

    def query_given(
        self, program_id: str, customer_id: str, first_day: int, last_day: int
    ) -> list[Given]:
        return [
            given
            for (customer, _sk), (_, given) in sorted(self.given.items())
            if customer == customer_id and first_day <= given.day <= last_day
        ]

    def put_given(self, program_id: str, customer_id: str, given: Given) -> None:
        key = f"{given.day}#{given.order_id}#{given.rating_id}"
        self.given[(customer_id, key)] = (customer_id, given)

    def counted_before(
        self, program_id: str, member_id: str, boundary: int | None, page: int
    ) -> Iterator[tuple[str, int]]:
        upper = f"RATING#{to_utc_iso(entry_time(boundary))}#~" if boundary is not None else "~"
        rows = sorted(
            ((sk, stored) for (member, sk), stored in self.slots.items() if member == member_id),
            reverse=True,
        )
        for sk, stored in rows:
            if sk <= upper and stored.counted and stored.entry is not None:
                yield sk, stored.entry

    def list_slots(
        self, program_id: str, member_id: str, limit: int, after: str | None
    ) -> tuple[list[tuple[str, RatingSlot, dict[str, Any]]], str | None]:
        rows = sorted(
            ((sk, stored) for (member, sk), stored in self.slots.items() if member == member_id),
            reverse=True,
        )
        if after is not None:
            rows = [(sk, stored) for sk, stored in rows if sk < after]
        page = rows[:limit]
        last = page[-1][0] if len(rows) > limit else None
        return [(sk, stored.slot, {}) for sk, stored in page], last

    def list_waiting(self, program_id: str, member_id: str) -> list[Waiting]:
        return [w for (member, _), w in self.waiting.items() if member == member_id]

    def list_expired(self, program_id: str, member_id: str) -> list[dict[str, Any]]:
        return [e for (member, _), e in self.expired.items() if member == member_id]

    # -- writes -------------------------------------------------------------------------------

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
    ) -> tuple[bool, Waiting | None]:
        key = (member_id, order_id)
        current = self.waiting.get(key)
        if current is not None:
            if (
                rating is not None
                and current.rating is not None
                and current.rating.rating_id != rating.rating_id
            ):
                return False, current
            if tip is not None and len(current.tips) >= max_tips:
                return False, current
        base = current or Waiting(member_id, order_id, None, (), expires_at, since, 0)
        self.waiting[key] = replace(
            base,
            rating=rating if rating is not None else base.rating,
            tips=(*base.tips, tip) if tip is not None else base.tips,
            version=base.version + 1,
        )
        return True, None

    def delete_waiting(self, program_id: str, waiting: Waiting) -> bool:
        key = (waiting.member_id, waiting.order_id)
        current = self.waiting.get(key)
        if current is None or current.version != waiting.version:
            return False
        del self.waiting[key]
        return True

    def record_expired(
        self, program_id: str, waiting: Waiting, reason: str, at: str, now_epoch: int
    ) -> None:
        assert waiting.rating is not None
        self.expired.setdefault(
            (waiting.member_id, waiting.order_id),
            {
                "rating": {"ratingId": waiting.rating.rating_id},
                "orderId": waiting.order_id,
                "reason": reason,
                "expiredAt": at,
            },
        )

    def commit(self, commit: Commit) -> CommitResult:
        member = commit.member_id
        failed: list[str] = []
        for write in commit.slots:
            stored = self.slots.get((member, slot_key_of(write.slot)))
            if (stored.slot.version if stored else None) != (write.read_version or None):
                failed.append("slot")
        if commit.window is not None:
            current = self.windows.get(member)
            if (current.version if current else 0) != commit.window.version:
                failed.append("window")
        if commit.rater is not None:
            current_rater = self.raters.get(commit.rater.customer_id)
            if (current_rater.version if current_rater else 0) != commit.rater.version:
                failed.append("rater")
        if commit.delete_waiting is not None:
            waiting = self.waiting.get((member, commit.delete_waiting.order_id))
            if waiting is None or waiting.version != commit.delete_waiting.version:
                failed.append("waiting")
        if failed:
            return CommitResult(applied=False, failed=tuple(failed))
        self.commits += 1
        for write in commit.slots:
            self.slots[(member, slot_key_of(write.slot))] = StoredSlot(
                write.slot,
                write.counted,
                write.entry,
                tuple(reason.value for reason in write.exclusions),
            )
        if commit.window is not None:
            self.windows[member] = replace(commit.window, version=commit.window.version + 1)
        if commit.rater is not None:
            self.raters[commit.rater.customer_id] = replace(
                commit.rater, version=commit.rater.version + 1
            )
        if commit.delete_waiting is not None:
            del self.waiting[(member, commit.delete_waiting.order_id)]
        if commit.member is not None:
            assert commit.window is not None
            self.sync_member(commit.program_id, member, commit.member, commit.window.version + 1)
        return CommitResult(applied=True)

    def sync_member(
        self, program_id: str, member_id: str, rating: MemberRating, version: int
    ) -> bool:
        item = self.members.setdefault(member_id, {"memberId": member_id})
        if item.get("rV", 0) >= version:
            return False
        item["rV"] = version
        if rating.average is None:
            item.pop("ratingAverage", None)
        else:
            item["ratingAverage"] = rating.average
        item.update(
            ratingCount=rating.count, eligible=rating.eligible, eligibilityReason=rating.reason
        )
        if rating.changed_at is not None:
            item["eligibilityChangedAt"] = rating.changed_at
        if rating.flipped:
            item["eligibilityFlips"] = item.get("eligibilityFlips", 0) + 1
        item["v"] = item.get("v", 0) + 1  # as the repository: the member's version moves
        return True

    def put_rater(self, program_id: str, state: RaterState) -> bool:
        current = self.raters.get(state.customer_id)
        if (current.version if current else 0) != state.version:
            return False
        self.raters[state.customer_id] = replace(state, version=state.version + 1)
        return True

    def clear_reconcile(self, program_id: str, customer_id: str, version: int) -> bool:
        current = self.raters.get(customer_id)
        if current is None or current.version != version:
            return False
        self.raters[customer_id] = replace(current, reconcile=None, version=version + 1)
        return True

    def stored_slot(self, member_id: str, sk: str) -> StoredSlot | None:
        return self.slots.get((member_id, sk))
