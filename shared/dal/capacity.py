"""A meter for what DynamoDB calls consume: capacity units from ``ConsumedCapacity`` and time.

Every repository call asks for ``ReturnConsumedCapacity=TOTAL`` (it costs nothing) and adds the
answer here, so benchmarks and tests read real units rather than estimates.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field


class CapacityMeter(Struct):
    read_units: float = 0.0
    write_units: float = 0.0
    calls: int = 0
    seconds: float = 0.0
    by_operation: dict[str, int] = field(default_factory=dict)

    def add(self, operation: str, response: dict[str, Any], seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
        consumed = response.get("ConsumedCapacity")
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        for entry in entries:
            read = entry.get("ReadCapacityUnits")
            write = entry.get("WriteCapacityUnits")
            if read is None and write is None:
                # Some operations report only CapacityUnits: reads for Get/Query, writes else.
                units = float(entry.get("CapacityUnits", 0.0))
                if operation in {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}:
                    self.read_units += units
                else:
                    self.write_units += units
            else:
                self.read_units += float(read or 0.0)
                self.write_units += float(write or 0.0)

    def reset(self) -> None:
        self.read_units = self.write_units = self.seconds = 0.0
        self.calls = 0
        self.by_operation.clear()
