"""Key design of the single table (see docs/data-model.md)."""

from __future__ import annotations

MEMBER_SK = "MEMBER"
ORDER_SK_PREFIX = "ORDER#"


def member_pk(program_id: str, member_id: str) -> str:
    """Partition of one member of one program: the member item and its orders (ledger)."""
    return f"P#{program_id}#M#{member_id}"


def order_sk(order_id: str) -> str:
    return f"{ORDER_SK_PREFIX}{order_id}"
