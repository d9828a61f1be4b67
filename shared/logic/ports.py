"""What the use cases expect of storage, apart from any database: the results a store reports
and the error it raises when concurrent writers keep it from deciding. The DynamoDB
repositories in ``shared.dal`` implement them; nothing here imports boto3."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.orders import OrderRecord


class TransientConflict(Exception):
    """Concurrent writers kept conflicting after every retry; the caller should retry later."""


@dataclass(frozen=True)
class WriteResult:
    """Whether a conditional write applied; if not, the item as it stood (ALL_OLD)."""

    applied: bool
    existing: OrderRecord | None = None
