"""The derivers whose events the stream-fed publisher sends (see shared/domain/outbound.py)."""

from __future__ import annotations

from shared.domain.outbound import Deriver
from shared.domain.tier_events import tier_events

DERIVERS: list[Deriver] = [tier_events]
