"""Referrals (docs/campaigns.md): a member's code, the referral a new customer's sign-up
records, and when it pays.

A code is 10 characters of Crockford's base32 (50 random bits: unguessable by enumeration, and
short enough to type). Reading a code forgives what people do with codes: case, spaces and
hyphens do not matter, and I and L read as 1, O as 0. The referral pays both members once the
referred customer's first credited order has survived its pending period (its points lot has
become available) without being cancelled or wholly refunded. Pure: the writes are in
``shared.dal.referrals``, the sequencing in ``shared.logic.referrals``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date
from typing import Any

from msgspec import Struct

from .program import Campaign, Program

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
"""Characters of a code: 5 bits each, 50 random bits."""
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})

PENDING = "pending"
PAID = "paid"
VOID = "void"

# Why a referral was refused (stored with the refusal, visible to operators).
UNKNOWN_CODE = "unknown_code"
SELF_REFERRAL = "self_referral"
ALREADY_REFERRED = "already_referred"
FIRST_ORDER_CANCELLED = "first_order_cancelled"
REFERRER_YEARLY_CAP = "referrer_yearly_cap"
BUDGET_SPENT = "budget_spent"


def new_code() -> str:
    """A fresh code: 50 bits from the operating system's secure random source."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def read_code(typed: str) -> str | None:
    """The code a customer typed, in its one spelling; None: it cannot be anyone's code."""
    code = typed.upper().translate(_READ_AS)
    if len(code) != CODE_LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


def referral_campaign(program: Program) -> Campaign | None:
    return next((c for c in program.campaigns if c.is_referral), None)


def lot_day(lot: str) -> date | None:
    """The day a points lot is (or was) available from: ``pd{YYYYMMDD}`` its day, ``av{YYYYMM}``
    the first of its month (available already)."""
    digits = lot[2:]
    if lot.startswith("pd") and len(digits) == 8:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    if lot.startswith("av") and len(digits) == 6:
        return date(int(digits[:4]), int(digits[4:]), 1)
    return None


def referral_due(member: Mapping[str, Any]) -> date | None:
    """When a referred customer's pending referral falls due: the day their first order's lot
    becomes available (None: no referral waiting, or no first order yet)."""
    if member.get("refState") != PENDING or not member.get("firstLot"):
        return None
    return lot_day(str(member["firstLot"]))


def first_order_survived(order: Mapping[str, Any] | None) -> bool:
    """The first order is still credited: neither cancelled nor wholly refunded (which make it
    ``reversed``; partial refunds that add up to the whole too). A partial refund keeps it."""
    return bool(order) and (order or {}).get("status") == "credited"


class ReferralPayout(Struct, frozen=True):
    """Paying a referral: the referred customer's points and, within the referrer's yearly
    limit, the referrer's, both available at once (this month's lot)."""

    campaign: Campaign
    customer_id: str
    referrer_id: str
    first_order_id: str
    lot: str
    """``av{YYYYMM}`` of the day it is paid (the program's zone): available at once."""
    year: str
    """The referrer's count's period: the year of the day paid, on the referrer's clock."""
    budget_period: str | None
    pay_referrer: bool
    today: date
    occurred_at: str
    rule_version: str

    @property
    def points(self) -> int:
        return self.campaign.points

    @property
    def limit(self) -> int:
        return self.campaign.per_member.count
