"""The member item at its largest, built by the code that writes it (tests and benchmarks).

Every attribute of the member item is written by one of four repositories: ingestion's credit
(``LedgerRepository.credit_order``: totals, version, day blocks, ``memberSince``), the tier
decision (``TierRepository.apply_tier``), the rating standing (``RatingRepository.commit``) and
cashback (``PerkRepository.credit_cashback``). ``give_every_attribute`` runs the last three with
their longest realistic values, after the member's orders, so that an attribute one of them
starts writing later counts in the size checks (tests/integration/test_member_item_size.py,
bench/ingestion.py) without anyone listing it here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from msgspec.structs import replace

from shared.dal.gates import GateRepository
from shared.dal.perks import PerkRepository
from shared.dal.ratings import RatingRepository
from shared.dal.tiers import TierRepository
from shared.domain.gates import COMPLETION_RATE, ON_TIME_RATE, Standing
from shared.domain.perks import MemberGuard, cashback_month
from shared.domain.program import Program
from shared.domain.tiers import TierDecision, TierReason
from shared.domain.timeutil import local_day, to_utc_iso
from shared.logic.moderation import MemberRating

LONGEST_MEMBER_ID = "3f2b8c1e-9d4a-4e7b-8c3e-5a1d2e3f4b6c"
"""Member ids are the producers' (a UUID here: 36 characters); they are in the key too."""


def give_every_attribute(
    client: Any, table: str, program: Program, member_id: str, now: datetime
) -> None:
    """The tier state with every optional attribute, a rating standing and a wallet, on an
    existing member item, as tier recalculation, rating moderation and cashback write them."""
    tiers = TierRepository(table, client, sleep=lambda _: None)
    member = tiers.get_member(program.id, member_id)
    if member is None:
        raise ValueError(f"member {member_id} has no item yet: credit an order first")
    today = local_day(now, program.zone)
    # The longest decision: a tier change (reason and time), a check date, an at-risk notice
    # (Diamond dropping to Platinum), a grace period running and a recalculation's hold.
    decision = TierDecision(
        current=None,
        tier="diamond",
        reason=TierReason.RATING_REINSTATED,
        points=int(member.get("lifetimePoints", 0)),
        check_on=today + timedelta(days=5),
        at_risk_on=today + timedelta(days=6),
        drops_to="platinum",
        below_since=today - timedelta(days=1),
        held_until=today + timedelta(days=30),
    )
    applied = tiers.apply_tier(program.id, member_id, decision, int(member["v"]), to_utc_iso(now))
    if not applied:
        raise RuntimeError("the tier write was refused")
    # A full window of ratings (the count is of the last N), reinstated a moment ago.
    standing = MemberRating(
        average=Decimal("4.873"),
        count=program.rating.last_n,
        eligible=True,
        reason="rating_reinstated",
        changed_at=to_utc_iso(now),
        flipped=True,
    )
    ratings = RatingRepository(table, client, sleep=lambda _: None)
    # The window's version that wrote it (``rV``): a million rating changes, the longest.
    if not ratings.sync_member(program.id, member_id, standing, 999_999):
        raise RuntimeError("the rating write was refused")
    # Years of fuel cashback in the wallet.
    perks = PerkRepository(table, client, sleep=lambda _: None)
    purchase = {"purchaseId": "fuel-largest", "memberId": member_id, "status": "credited"}
    guard = MemberGuard(tiers=("diamond",))
    # The month's counter is its own item: a month with room for the whole balance.
    month = replace(cashback_month("gas_cashback", now, program), limit=Decimal("5000.00"))
    if not perks.credit_cashback(
        program.id, member_id, purchase, Decimal("4321.09"), guard, month
    ).applied:
        raise RuntimeError("the cashback write was refused")
    # Both quality gates' standings over full windows, written by a millionth window version.
    gates = GateRepository(table, client, sleep=lambda _: None)
    for gate in (COMPLETION_RATE, ON_TIME_RATE):
        if not gates.write_standing(program.id, member_id, gate, Standing(100, 97), 999_999):
            raise RuntimeError("the gate standing write was refused")
