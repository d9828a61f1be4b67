"""Every write path to the member item, enumerated from the repositories' source: each one that
changes points or eligibility bumps the member's version ``v`` (docs/data-model.md), and each
one that does not says why. A new method that touches the member item fails this test until
it is classified here. The behaviour itself is checked on DynamoDB Local (the rating flip in
tests/integration/test_rating_moderation.py; the
wallet, which does not, in test_perks_redemption.py; the credits in test_full_recalculation.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

DAL = Path(__file__).resolve().parents[2] / "shared" / "dal"
TOUCHES_MEMBER = re.compile(
    r"MEMBER_SK|_member_key\(|_update_member_if\(|_member_update\(|_credit_member\(|"
    r"_member_rating\(|_spend\(|_refund_member\(|_member_write\("
)
BUMP = re.compile(r'\.add\("v", 1\)')

BUMPS = "bumps"
READS = "reads"
# (module, function): BUMPS (its own update adds 1 to v), ("via", helper) (the helper's
# update, which bumps, is the member write), or why it leaves v alone.
PATHS: dict[tuple[str, str], object] = {
    ("customers.py", "_update_member_if"): "a helper: its callers decide",
    ("campaigns.py", "reward"): BUMPS,
    ("campaigns.py", "reverse_reward"): BUMPS,
    ("challenges.py", "complete_week"): BUMPS,
    ("challenges.py", "_take_bonus"): BUMPS,
    ("giving.py", "donate"): BUMPS,
    # The personal fields only, but the zone among them moves the member's days, as a zone
    # change does: v goes up when the zone goes.
    ("privacy.py", "erase"): BUMPS,
    ("admin_actions.py", "_member_write"): "a helper: its callers decide",
    ("admin_actions.py", "adjust_shopper"): BUMPS,
    ("admin_actions.py", "adjust_customer"): BUMPS,
    # An override changes what the tier rules decide: a decision computed before it is stale.
    ("admin_actions.py", "set_override"): BUMPS,
    ("dynamodb.py", "_partition_page"): READS,
    ("notifications.py", "member_settings"): READS,
    ("referrals.py", "record_referral"): "who referred the customer: no points, no eligibility",
    ("referrals.py", "_decide"): "a helper: its callers decide",
    ("referrals.py", "_member_bonus"): BUMPS,
    ("customers.py", "_wallet_request"): "the wallet is not part of v (docs/perks.md)",
    ("customers.py", "credit"): ("via", "_credit_member"),
    ("customers.py", "_credit_member"): BUMPS,
    ("customers.py", "change_membership"): "the membership plan: no points, no eligibility",
    ("customers.py", "_spend"): BUMPS,
    ("customers.py", "place_hold"): ("via", "_spend"),
    ("customers.py", "capture_late"): ("via", "_spend"),
    ("customers.py", "release_hold"): BUMPS,
    ("customers.py", "refund"): ("via", "_refund_member"),
    ("customers.py", "_refund_member"): BUMPS,
    # The annual dividend: the members' year totals read in batches, the dividend paid.
    ("dividend.py", "order_totals"): READS,
    ("dividend.py", "pay_dividend"): BUMPS,
    ("customers.py", "apply_due"): BUMPS,
    ("customers.py", "gift"): BUMPS,
    ("customers.py", "set_profile"): "the profile: no points, no eligibility",
    ("customers.py", "move_birthday"): "the next birthday's index keys: no points",
    ("dynamodb.py", "get_member"): READS,
    ("dynamodb.py", "member_zone_item"): READS,
    ("ledger.py", "_member_update"): BUMPS,
    ("ledger.py", "credit_order"): ("via", "_member_update"),
    ("ledger.py", "reverse_order"): ("via", "_member_update"),
    # The shopper's zone moves their days (the window's, the tier's): a tier decision computed
    # on the old clock must not apply.
    ("ledger.py", "set_member_zone"): BUMPS,
    ("perks.py", "_member_key"): "a key",
    ("perks.py", "get_member_eventually"): READS,
    ("perks.py", "redeem"): "a condition check of the member: no write",
    ("perks.py", "credit_cashback"): "the wallet is not part of v (docs/perks.md)",
    ("perks.py", "refund_cashback"): "the wallet is not part of v (docs/perks.md)",
    ("ratings.py", "sync_member"): ("via", "_member_rating"),
    ("ratings.py", "_member_rating"): BUMPS,
    ("gates.py", "write_standing"): BUMPS,
    ("recalculation.py", "tier_statement"): "a tier decision (and tierFrom, the tier it replaced): "
    "conditioned on v, never bumps",
    ("recalculation.py", "scan_members"): READS,
    ("tiers.py", "apply_tier"): "a tier decision (and tierFrom, the tier it replaced, in the "
    "same update): conditioned on v, never bumps",
    ("tiers.py", "remove_buckets"): "unreachable buckets: points unchanged",
    ("tiers.py", "get_members"): READS,
}


def member_functions() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(DAL.glob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                segment = ast.get_source_segment(source, node) or ""
                body = segment[segment.index(")") :]  # not the function's own name
                if TOUCHES_MEMBER.search(body):
                    found[(path.name, node.name)] = segment
    return found


def test_every_member_write_path_is_classified() -> None:
    assert set(member_functions()) == set(PATHS)


def test_every_path_that_changes_points_or_eligibility_bumps_the_version() -> None:
    found = member_functions()
    for key, kind in PATHS.items():
        if kind == BUMPS:
            assert BUMP.search(found[key]), f"{key} must add 1 to v"
        elif isinstance(kind, tuple):
            helper = (key[0], kind[1])
            assert f"{kind[1]}(" in found[key] and PATHS[helper] == BUMPS, key
        elif kind != READS:
            assert not BUMP.search(found[key]), f"{key} leaves v alone: {kind}"
