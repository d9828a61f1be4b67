"""The tier in force at an instant, from the member item's last tier change (``tierChangedAt``
and the tier it replaced, ``tierFrom``): it prices a fuel purchase reported after a tier change
at the tier of its moment."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.tiers import tier_at
from shared.logic.perks import tier_then

UPGRADED = {"tier": "platinum", "tierFrom": "gold", "tierChangedAt": "20261123T120000Z"}


def test_before_the_last_change_the_tier_it_replaced() -> None:
    assert tier_at(UPGRADED, "20261123T115959Z") == (True, "gold")
    assert tier_at(UPGRADED, "20261123T120000Z") == (False, None)
    first = {"tier": "gold", "tierFrom": "", "tierChangedAt": "20261123T120000Z"}
    assert tier_at(first, "20261101T000000Z") == (True, None), "no tier before the first"
    # An item changed before tierFrom was written cannot tell: the tier now applies.
    assert tier_at({"tier": "gold", "tierChangedAt": "20261123T120000Z"}, "2026") == (False, None)


def test_a_purchase_takes_the_tier_of_its_instant_else_the_tier_now() -> None:
    made_while_gold = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert tier_then(UPGRADED, made_while_gold, "platinum") == "gold"
    assert tier_then(UPGRADED, datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC), "platinum") == (
        "platinum"
    )
    assert tier_then({}, made_while_gold, "diamond") == "diamond"
