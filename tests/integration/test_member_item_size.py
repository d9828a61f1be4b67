"""The member item stays under 1 KB at its largest, so that an order costs 4 write units.

Every order writes the member item in a transaction, billed 2 units per started KB of the
larger of the item before and after (docs/data-model.md, "Member item size"). The item is built
here by the code that writes it, on DynamoDB Local: orders on each of the window's 90 days
(ingestion), then the longest tier decision, a rating standing and a wallet
(``tests.member_item``). Its size is computed with DynamoDB's rules (``shared.dal.item_size``)
and checked against DynamoDB Local's own count. An attribute added to any of these writes later
counts here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from shared.dal.item_size import KB, attribute_sizes, item_size
from shared.dal.ledger import LedgerRepository
from shared.dal.tiers import TierRepository
from shared.domain.events import InboundEvent, parse_detail, parse_envelope
from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.program import EarningRules, Program
from shared.domain.tiers import Trigger
from shared.domain.window import block_first_day, day_buckets
from shared.logic.ingestion import INGESTED_EVENTS, Outcome, ingest
from shared.logic.tiers import evaluate_member
from shared.programs import load_program
from tests.helpers import order_completed
from tests.member_item import LONGEST_MEMBER_ID, give_every_attribute

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""A day whose 90-day window spans 14 blocks of 7 days (the most it can)."""
BUDGET = 900
"""The target for realistic values: a margin of 124 bytes under 1 KB for attributes to come."""


def program_earning(day_points: int) -> Program:
    """The shopper program, earning ``day_points`` with one triple batch (one order a day).

    Such orders are beyond what a program may earn (``EarningRules`` refuses one that 288
    orders a day could push past 99,999 points a day); the rules are built unchecked here, on
    purpose: what is measured is the item with every day at the most it can hold, reached in
    90 orders rather than 26,000."""
    earning = EarningRules.model_construct(
        points_per_order=day_points // 3, max_batch_size=3, bonuses=()
    )
    return load_program("cart-star").model_copy(update={"earning": earning})


def credit(
    repo: LedgerRepository, program: Program, order_id: str, completed: datetime, now: datetime
) -> None:
    raw = order_completed(
        order_id=order_id,
        member_id=LONGEST_MEMBER_ID,
        completed_at=completed.isoformat(),
        batch_size=3,
        time=now.isoformat(),
    )
    envelope = parse_envelope(raw)
    event: InboundEvent = parse_detail(envelope.detail_type, envelope.detail, INGESTED_EVENTS)
    result = ingest(event, now, program, repo, f"attempt-{order_id}")
    assert result.outcome is Outcome.CREDITED, result


def raw_member(client: Any, table: str) -> dict[str, Any]:
    key = {"pk": {"S": member_pk("cart-star", LONGEST_MEMBER_ID)}, "sk": {"S": MEMBER_SK}}
    item: dict[str, Any] = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return item


def breakdown(item: dict[str, Any]) -> str:
    sizes = attribute_sizes(item)
    blocks = [name for name in sizes if block_first_day(name) is not None]
    lines = [f"{name}: {size}" for name, size in sizes.items() if name not in blocks]
    lines.append(f"{len(blocks)} day blocks: {sum(sizes[name] for name in blocks)}")
    return f"{item_size(item)} bytes: " + ", ".join(lines)


def member_with_a_full_window(client: Any, table: str, day_points: int, now: datetime) -> Program:
    program = program_earning(day_points)
    repo = LedgerRepository(table, client, sleep=lambda _: None)
    for offset in range(program.window.days):
        credit(repo, program, f"o-{offset}", now - timedelta(days=offset, hours=1), now)
    give_every_attribute(client, table, program, LONGEST_MEMBER_ID, now)
    return program


@pytest.mark.parametrize(
    ("day_points", "budget"),
    [(9_990, BUDGET), (99_999, KB)],
    ids=["4-digit days (realistic)", "99,999 points every day (the most a day holds)"],
)
def test_the_largest_member_item_stays_under_1_kb(
    ddb_client: Any, table_name: str, day_points: int, budget: int
) -> None:
    program = member_with_a_full_window(ddb_client, table_name, day_points, NOW)
    item = raw_member(ddb_client, table_name)
    attributes = {name: TypeDeserializer().deserialize(value) for name, value in item.items()}
    assert len(day_buckets(attributes)) == program.window.days
    assert sum(1 for name in item if block_first_day(name) is not None) == 14
    for name in (
        "tierHeldUntil",
        "atRiskDropsTo",
        "eligibilityChangedAt",
        "eligibilityFlips",
        "walletBalance",
    ):
        assert name in item, f"{name} missing: give_every_attribute no longer writes it"
    size = item_size(item)
    assert size < budget, breakdown(item)
    # DynamoDB Local's own size rules agree: a plain write of it is 1 unit, a byte more is 2.
    written = ddb_client.put_item(TableName=table_name, Item=item, ReturnConsumedCapacity="TOTAL")
    assert written["ConsumedCapacity"]["CapacityUnits"] == 1.0
    padded = {**item, "pad": {"S": "x" * (KB - size - len("pad") + 1)}}
    written = ddb_client.put_item(TableName=table_name, Item=padded, ReturnConsumedCapacity="TOTAL")
    assert item_size(padded) == KB + 1 and written["ConsumedCapacity"]["CapacityUnits"] == 2.0


def test_a_member_back_after_a_long_absence_stays_under_1_kb(
    ddb_client: Any, table_name: str
) -> None:
    """The blocks of a window a year old are beyond every order's pruning: the returning order
    adds its own block beside them, and the tier evaluation of that change removes them."""
    before = NOW - timedelta(days=365)
    program = member_with_a_full_window(ddb_client, table_name, 9_990, before)
    repo = LedgerRepository(table_name, ddb_client, sleep=lambda _: None)
    credit(repo, program, "back", NOW - timedelta(hours=1), NOW)
    item = raw_member(ddb_client, table_name)
    blocks = sum(1 for name in item if block_first_day(name) is not None)
    assert blocks == 15 and item_size(item) < KB, breakdown(item)

    attributes = {name: TypeDeserializer().deserialize(value) for name, value in item.items()}
    tiers = TierRepository(table_name, ddb_client, sleep=lambda _: None)
    evaluate_member(attributes, NOW, program, Trigger.STREAM, tiers)
    item = raw_member(ddb_client, table_name)
    assert sum(1 for name in item if block_first_day(name) is not None) == 1
    attributes = {name: TypeDeserializer().deserialize(value) for name, value in item.items()}
    assert day_buckets(attributes) == {(NOW - timedelta(hours=1)).date(): 9_990}
