"""The analytics record of an outbound event: one flat row per published event.

Every event ``event_publisher`` puts on the bus is also delivered to analytics (a Firehose
stream into S3 as Parquet on AWS, Parquet files under ``.local/analytics`` locally; see
docs/analytics.md). Queries want columns, not nested JSON: the fields every event shares get a
column each, a few typed columns carry what the report sums (points, amounts, tiers, perks,
campaigns), and the whole detail stays as a JSON string for everything else.

Column names are snake_case because Glue and Athena fold column names to lower case: a
camelCase ``eventId`` would be ``eventid`` there, and the same SQL must run on DuckDB locally.

Pure: no boto3, no clock (the publication instant is given).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .outbound import OutboundEvent
from .timeutil import to_utc_iso

COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("detail_type", "string"),
    ("program_id", "string"),
    ("member_id", "string"),
    ("order_id", "string"),
    ("campaign_id", "string"),
    ("perk_id", "string"),
    ("tier", "string"),
    ("reason", "string"),
    ("points", "bigint"),
    ("amount", "decimal(12,2)"),
    ("occurred_at", "string"),
    ("published_at", "string"),
    ("detail", "string"),
)
"""The data columns, with their Glue (Hive) types; the table is partitioned by ``day``
(``YYYY-MM-DD``, UTC day of ``occurred_at``), which is a partition column, not a data column.
template.yaml's Glue table lists the same columns (a unit test compares them)."""

PARTITION = "day"
AMOUNT_PLACES = Decimal("0.01")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _amount(detail: dict[str, Any]) -> Decimal | None:
    """The money the event moved: a wallet payment's ``amount``, a cashback's amount."""
    raw: Any = detail.get("amount")
    cashback = detail.get("cashback")
    if raw is None and isinstance(cashback, dict):
        raw = cashback.get("amount")
    if isinstance(raw, dict):
        raw = raw.get("amount")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return Decimal(str(raw)).quantize(AMOUNT_PLACES)
    except InvalidOperation:
        return None


def _points(detail: dict[str, Any]) -> int | None:
    points = detail.get("points")
    if isinstance(points, bool) or not isinstance(points, int | Decimal | float):
        return None
    return int(points)


def _occurred(detail: dict[str, Any], published_at: datetime) -> datetime:
    """The event's own instant (``occurredAt``, else ``effectiveAt``); the publication instant
    for the few events without one, so that every row has a day."""
    for key in ("occurredAt", "effectiveAt"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment
    return published_at


def analytics_row(event: OutboundEvent, published_at: datetime) -> dict[str, Any]:
    """The flat row of ``event`` (``day`` included, as the partition key), published at
    ``published_at``. Instants are UTC in the fixed-width storage form, so they sort as text."""
    detail = event.detail
    occurred = _occurred(detail, published_at)
    tier = detail.get("to") if event.detail_type == "MemberTierChanged" else detail.get("tier")
    return {
        "event_id": _text(detail.get("eventId")),
        "detail_type": event.detail_type,
        "program_id": _text(detail.get("programId")),
        "member_id": _text(detail.get("memberId") or detail.get("customerId")),
        "order_id": _text(detail.get("orderId")),
        "campaign_id": _text(detail.get("campaignId")),
        "perk_id": _text(detail.get("perkId")),
        "tier": _text(tier),
        "reason": _text(detail.get("reason")),
        "points": _points(detail),
        "amount": _amount(detail),
        "occurred_at": to_utc_iso(occurred),
        "published_at": to_utc_iso(published_at),
        "detail": json.dumps(detail, default=_json_default, sort_keys=True),
        PARTITION: occurred.astimezone(UTC).date().isoformat(),
    }


def firehose_json(row: dict[str, Any]) -> bytes:
    """A row as Firehose receives it: one JSON object and a newline (the record format
    conversion reads JSON; the amount goes as a number, the Glue column's decimal)."""
    return (json.dumps(row, default=_json_default, separators=(",", ":")) + "\n").encode()
