"""Key design of the single table (see docs/data-model.md): the items' identities.

Plain strings, no I/O: the repositories build their keys from them, and the stream-fed use cases
read them back from the images (which item a change is about)."""

from __future__ import annotations

import zlib
from datetime import date

MEMBER_SK = "MEMBER"
ORDER_SK_PREFIX = "ORDER#"


def member_pk(program_id: str, member_id: str) -> str:
    """Partition of one member of one program: the member item and its orders (ledger)."""
    return f"P#{program_id}#M#{member_id}"


def order_sk(order_id: str) -> str:
    return f"{ORDER_SK_PREFIX}{order_id}"


# -- rating moderation (docs/ratings.md) ----------------------------------------------------------

RATING_SK_PREFIX = "RATING#"
"""Under the member: one *slot* per rated (or tip-adjusted) order, sorted by completion."""
RATING_WINDOW_SK = "RATINGS"
"""Under the member: the window of the last N counted ratings."""
WAITING_SK_PREFIX = "WAITING#"
"""Under the member: a rating or tip change that arrived before its order (with a TTL)."""
EXPIRED_SK_PREFIX = "EXPIRED#"
"""Under the member: a waiting rating whose order never came, with the reason."""
CUSTOMER_SK = "CUSTOMER"
"""Under the customer: the rater's hard-to-please state and tip-baiting flag."""
GIVEN_SK_PREFIX = "GIVEN#"
"""Under the customer: the index of the ratings they gave, by day."""
RATING_REF_SK = "RATING"
"""Under the rating id: where the rating lives (for the admin API)."""


def rating_sk(completed_at: str, order_id: str) -> str:
    """``completed_at`` in the storage form (``to_utc_iso``: fixed width, sorts by time)."""
    return f"{RATING_SK_PREFIX}{completed_at}#{order_id}"


def waiting_sk(order_id: str) -> str:
    return f"{WAITING_SK_PREFIX}{order_id}"


def expired_sk(order_id: str) -> str:
    return f"{EXPIRED_SK_PREFIX}{order_id}"


def customer_pk(program_id: str, customer_id: str) -> str:
    """Partition of one customer (a rater) of one program."""
    return f"P#{program_id}#C#{customer_id}"


def given_sk(day: str, order_id: str) -> str:
    """``day`` as an ISO date (sorts by day)."""
    return f"{GIVEN_SK_PREFIX}{day}#{order_id}"


def rating_ref_pk(program_id: str, rating_id: str) -> str:
    return f"P#{program_id}#R#{rating_id}"


# -- perks, redemptions, wallet and the ledger's read model (docs/perks.md) ------------------------

QUOTA_SK_PREFIX = f"{MEMBER_SK}#Q#"
"""Under the member, right after the member item: one quota counter per perk and period
(``used``, booked date slots), the latest-ending period first (see ``quota_sk``)."""
LEGACY_QUOTA_SK_PREFIX = "QUOTA#"
"""Quota counters as keyed before (``QUOTA#{perkId}#{period}``): no longer read or written
(docs/perks.md, "Quota keys")."""
REDEMPTION_SK_PREFIX = "REDEMPTION#"
"""Under the member: one redemption; its id is time-ordered, so the prefix sorts by time."""
IDEMPOTENCY_SK_PREFIX = "IDEMPOTENCY#"
"""Under the member: the first result of one ``Idempotency-Key`` (with a TTL)."""
FUEL_SK_PREFIX = "FUEL#"
"""Under the member: one reported fuel purchase and the cashback it earned, once."""
LEDGER_SK_PREFIX = "LEDGER#"
"""Under the member: one points entry (credit or reversal) of the ledger's read model."""


def _descending(day: date) -> str:
    """``day`` as 8 digits that sort in reverse order of the days (each digit 9 minus the
    digit of ``YYYYMMDD``): a later day sorts first."""
    return f"{99_999_999 - (day.year * 10_000 + day.month * 100 + day.day):08d}"


def quota_sk(perk_id: str, period: str, ends: date) -> str:
    """``MEMBER#Q#{ends, descending}#{perkId}#{period}``; ``ends`` is the first day after the
    period (when the quota resets). The periods that end latest sort first, right after
    ``MEMBER``, so the member item and the quotas of the current (and later) periods are one
    key range: ``member_and_quotas_range``."""
    return f"{QUOTA_SK_PREFIX}{_descending(ends)}#{perk_id}#{period}"


def member_and_quotas_range(today: date) -> tuple[str, str]:
    """The sort-key range (both ends included) of the member item and of the quota items of
    the periods that end after ``today``: current periods and later ones (dates booked ahead),
    never a past one (a period that ends on ``today`` or before sorts after the range)."""
    return MEMBER_SK, f"{QUOTA_SK_PREFIX}{_descending(today)}"


def redemption_sk(redemption_id: str) -> str:
    return f"{REDEMPTION_SK_PREFIX}{redemption_id}"


def partner_code_key(code: str) -> tuple[str, str]:
    """(pk, sk) of an issued code, outside every member's partition: a partner knows the code
    only. Codes are 60 random bits, unique across programs."""
    return f"CODE#{code}", "CODE"


def idempotency_sk(key_digest: str) -> str:
    return f"{IDEMPOTENCY_SK_PREFIX}{key_digest}"


def fuel_sk(purchase_id: str) -> str:
    return f"{FUEL_SK_PREFIX}{purchase_id}"


def ledger_sk(occurred_at: str, order_id: str, kind: str) -> str:
    """``occurred_at`` in the storage form (``to_utc_iso``), so the prefix sorts by time."""
    return f"{LEDGER_SK_PREFIX}{occurred_at}#{order_id}#{kind}"


LIMIT_SK_PREFIX = "LIMIT#"
"""A member's request count of a UTC day (docs/perks.md, "Request limits")."""


def limit_sk(day: str) -> str:
    """``day``: ``YYYY-MM-DD`` (UTC)."""
    return f"{LIMIT_SK_PREFIX}{day}"


REWARD_SK_PREFIX = "REWARD#"
"""Under the member: a campaign's bonus for one order, once (docs/campaigns.md)."""
CAMPAIGN_SK_PREFIX = "CAMPAIGN#"
"""Under the member: how many times the member earned a campaign in a period."""


def reward_sk(campaign_id: str, order_id: str) -> str:
    return f"{REWARD_SK_PREFIX}{campaign_id}#{order_id}"


def campaign_count_sk(campaign_id: str, period: str) -> str:
    return f"{CAMPAIGN_SK_PREFIX}{campaign_id}#{period}"


CHALLENGE_SK_PREFIX = "CHALLENGE#"
"""Under the member: a weekly challenge's progress in one week (orders counted, bonus paid)."""
CHALLENGE_ORDER_SK_PREFIX = "CHORDER#"
"""Under the member: one order counted toward a weekly challenge (once; its week)."""


def challenge_week_sk(campaign_id: str, week: str) -> str:
    return f"{CHALLENGE_SK_PREFIX}{campaign_id}#{week}"


def challenge_order_sk(campaign_id: str, order_id: str) -> str:
    return f"{CHALLENGE_ORDER_SK_PREFIX}{campaign_id}#{order_id}"


REFERRAL_CODE_SK = "REFCODE"
"""Under the member: their referral code (``code``); the code's own item has the same sort key
under ``P#{programId}#REFCODE#{code}`` and names the member."""
REFERRAL_SK = "REFERRAL"
"""Under a referred customer: who referred them, and what became of it (docs/campaigns.md)."""
REFERRAL_REFUSED_SK_PREFIX = "REFERRAL#REFUSED#"
"""Under a customer: a referral refused, with why (one item per code and sign-up instant)."""


def referral_code_pk(program_id: str, code: str) -> str:
    return f"P#{program_id}#REFCODE#{code}"


def referral_refused_sk(signed_up_at: str, code: str) -> str:
    return f"{REFERRAL_REFUSED_SK_PREFIX}{signed_up_at}#{code}"


def campaign_budget_key(program_id: str, campaign_id: str, period: str) -> tuple[str, str]:
    """(pk, sk) of what a campaign paid in a period: one item per campaign and period, outside
    every member's partition."""
    return f"P#{program_id}#CAMPAIGN#{campaign_id}", f"BUDGET#{period}"


# -- quality gates (docs/tiers.md, "Quality gates") -----------------------------------------------

GATE_SK_PREFIX = "GATES#"
"""Under the member: one window item per gate (``GATES#completionRate``, ``GATES#onTimeRate``):
the entries of its last N events and their marks, as number sets."""
OFFER_SK_PREFIX = "OFFER#"
"""Under the member: an offer's acceptance and latest decline times (with a TTL), so that
whichever of the two arrives second knows both."""


def gate_sk(gate: str) -> str:
    return f"{GATE_SK_PREFIX}{gate}"


def offer_sk(offer_id: str) -> str:
    return f"{OFFER_SK_PREFIX}{offer_id}"


DONATION_SK_PREFIX = "DONATION#"
"""Under the member: a donation (``DONATION#api#{Idempotency-Key}`` for points given through
the API, ``DONATION#order#{orderId}`` for an order's round-up), put once."""
CAUSE_TOTAL_SK = "TOTAL"


def donation_sk(source: str, key: str) -> str:
    return f"{DONATION_SK_PREFIX}{source}#{key}"


def cause_pk(program_id: str, cause_id: str) -> str:
    """A cause's counters (one item per month, ``MONTH#{YYYY-MM}``, and ``TOTAL``), outside
    every member's partition."""
    return f"P#{program_id}#CAUSE#{cause_id}"


def cause_month_sk(month: str) -> str:
    return f"MONTH#{month}"


DUE_SHARDS = 16
"""Shards of the customers' due index (a member's shard is fixed by their id)."""


def due_shard(program_id: str, member_id: str) -> str:
    """Members with something due (pending points, expiry, a notice) on ``checkOn``."""
    return f"{program_id}#{zlib.crc32(member_id.encode()) % DUE_SHARDS:02d}"


def hold_shard(program_id: str, member_id: str) -> str:
    """Holds to release at ``checkOn`` (an instant) unless captured first."""
    return f"{program_id}#H#{zlib.crc32(member_id.encode()) % DUE_SHARDS:02d}"


# -- the annual dividend (docs/campaigns.md, "The annual dividend") --------------------------------

DIVIDEND_HOLDER_PREFIX = "M#"
DIVIDEND_JOB_SK = "JOB"


def dividend_pk(program_id: str, year: int) -> str:
    """A dividend year's partition, outside every member's: one registry item per member who
    held the plan that year (``M#{memberId}``) and the job's checkpoint (``JOB``)."""
    return f"P#{program_id}#DIVIDEND#{year}"


def dividend_holder_sk(member_id: str) -> str:
    return f"{DIVIDEND_HOLDER_PREFIX}{member_id}"


# -- administrators' actions (docs/admin.md) ------------------------------------------------------

ADMIN_SK_PREFIX = "ADMIN#"
"""Under the member: the audit trail of administrators' actions (one item each)."""
ADJUSTMENT_SK_PREFIX = f"{ADMIN_SK_PREFIX}ADJ#"
"""A points adjustment, keyed by its ``Idempotency-Key`` (put once, with the points' change)."""
OVERRIDE_SK_PREFIX = f"{ADMIN_SK_PREFIX}TIER#"
"""A tier override set or lifted, keyed by when."""


def adjustment_sk(idempotency_key: str) -> str:
    return f"{ADJUSTMENT_SK_PREFIX}{idempotency_key}"


def override_sk(at: str, unique: str) -> str:
    """``at`` in the storage form (``to_utc_iso``, to the microsecond); ``unique`` tells apart
    two actions of the same instant."""
    return f"{OVERRIDE_SK_PREFIX}{at}#{unique}"


# -- notifications (docs/notifications.md) --------------------------------------------------------

PREFERENCES_SK = "PREFS"
"""Under the member: their notification preferences (channels, quiet hours, language)."""
NOTE_SK_PREFIX = "NOTE#"
"""Under the member: the notifier's record of one outbound event (sent or why not), put once
(its ``eventId`` is the key), with a TTL."""
NOTE_WEEK_SK_PREFIX = "NOTEWEEK#"
"""Under the member: the marketing messages sent in one ISO week of the member's clock."""


def note_sk(event_id: str) -> str:
    return f"{NOTE_SK_PREFIX}{event_id}"


def note_week_sk(week: str) -> str:
    return f"{NOTE_WEEK_SK_PREFIX}{week}"
