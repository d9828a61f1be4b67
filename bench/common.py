"""What the DynamoDB Local benches share: the environment and DynamoDB Local, the handlers on a
measuring client, and ``main`` (write bench/results/<name>.json, print the table).

Units as AWS bills them. DynamoDB Local counts plain reads and writes as AWS does, but
under-counts ``TransactWriteItems`` (2.0 for any two small items). So :class:`MeasuringClient`
replays each item of each transaction as a plain write on a *shadow* table holding the same
item as it stood before the transaction, and doubles DynamoDB Local's count of it (a
transactional write costs 2 units per KB of the larger of the item before and after). A
``ConditionCheck`` counts as a plain write of the checked item's size (put on a scratch table).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from samlite.cfn import create_table

from infra.ddb_local import DynamoDBLocal
from shared import composition
from shared.dal.ledger import LedgerRepository
from shared.observability import logger
from tests.helpers import load_function

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
READ_OPERATIONS = {"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"}
_NOT_REPLAYED = ("ConditionExpression", "ReturnValuesOnConditionCheckFailure")


class MeasuringClient:
    """A proxy around the handlers' DynamoDB client that adds up what AWS would bill.

    Transactions are replayed on the shadow table (see the module's docstring), in one of two
    ways:

    - deferred (the default): each transaction waits in ``pending`` until :meth:`settle`,
      called after the handler returned (outside its timing). The shadow table must hold the
      items as the table did before: it sees the same transactions through the replays, and
      items written around this client are copied with :meth:`copy_to_shadow` (or written to
      both tables). ``local_units`` is what DynamoDB Local reported for the pending
      transactions (to be replaced by what ``settle`` returns).
    - ``immediate``: before each transaction the items it touches are copied from the table to
      the shadow table as they stand, and after it the items are replayed at once, so the
      shadow needs no history. The seconds this takes are kept in ``overhead``, to be left out
      of the handler's timing.

    Other calls are passed through, and their ``ConsumedCapacity`` added to ``reads`` or
    ``writes`` (with the billed units of the transactions replayed); ``calls`` counts the
    calls by operation. While ``active`` is false (seeding: see :meth:`paused`), calls go
    straight through: nothing is counted, recorded or replayed.
    """

    def __init__(
        self,
        client: Any,
        bare: Any,
        table: str,
        shadow_table: str,
        scratch_table: str | None = None,
        *,
        immediate: bool = False,
        active: bool = True,
    ) -> None:
        self._client = client
        self._bare = bare
        self.table = table
        self.shadow_table = shadow_table
        self.scratch_table = scratch_table
        """Where a ``ConditionCheck``'s item is written plain (needed only for those)."""
        self.immediate = immediate
        self.active = active
        self.pending: list[dict[str, Any]] = []
        self.local_units = 0.0
        self.reads = 0.0
        self.writes = 0.0
        self.calls: dict[str, int] = {}
        self.overhead = 0.0
        """Seconds spent measuring inside the handler (immediate mode's copies and replays)."""

    # -- the proxy ----------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or not self.active:
            return method
        operation = "".join(part.capitalize() for part in name.split("_"))

        def call(**request: Any) -> Any:
            try:
                response = method(**request)
            except self._client.exceptions.ClientError as error:
                self._count(operation, dict(error.response))
                raise
            self._count(operation, response)
            return response

        return call

    def transact_write_items(self, **request: Any) -> Any:
        if not self.active:
            return self._client.transact_write_items(**request)
        if self.immediate:
            started = time.perf_counter()
            for entry in request["TransactItems"]:
                ((_kind, operation),) = entry.items()
                item = operation.get("Item")
                self.copy_to_shadow(operation.get("Key") or {"pk": item["pk"], "sk": item["sk"]})
            self.overhead += time.perf_counter() - started
        try:
            response = self._client.transact_write_items(**request)
        except self._client.exceptions.TransactionCanceledException:
            # Refused by a condition: counted apart (AWS bills the items it had to check).
            self.calls["RefusedTransactions"] = self.calls.get("RefusedTransactions", 0) + 1
            raise
        self.calls["TransactWriteItems"] = self.calls.get("TransactWriteItems", 0) + 1
        if self.immediate:
            started = time.perf_counter()
            self.writes += self._replay(request)
            self.overhead += time.perf_counter() - started
        else:
            self.pending.append(request)
            for entry in response.get("ConsumedCapacity", []):
                self.local_units += float(entry.get("CapacityUnits", 0.0))
        return response

    # -- measuring ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the counts (not the pending transactions: see :meth:`settle`)."""
        self.reads = self.writes = self.overhead = 0.0
        self.calls = {}

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls go straight through (seeding): nothing counted, recorded or replayed."""
        active, self.active = self.active, False
        try:
            yield
        finally:
            self.active = active

    def settle(self) -> float:
        """Units AWS bills for the transactions recorded since the last call (deferred mode),
        replayed now; also added to ``writes``."""
        billed = sum(self._replay(request) for request in self.pending)
        self.pending.clear()
        self.local_units = 0.0
        self.writes += billed
        return billed

    def copy_to_shadow(self, key: dict[str, Any]) -> None:
        """The item under ``key`` as it stands in the table, copied to the shadow table (or
        removed from it when the table has none)."""
        current = self._bare.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        if "Item" in current:
            self._bare.put_item(TableName=self.shadow_table, Item=current["Item"])
        else:
            self._bare.delete_item(TableName=self.shadow_table, Key=key)

    def _count(self, operation: str, response: dict[str, Any]) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        consumed = response.get("ConsumedCapacity")
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        for entry in entries:
            units = float(entry.get("CapacityUnits", 0.0))
            if operation in READ_OPERATIONS:
                self.reads += units
            else:
                self.writes += units

    def _replay(self, request: dict[str, Any]) -> float:
        """Units AWS bills for one transaction: twice the sum of its items written plain, plus
        their index writes (global secondary indexes are updated as plain writes)."""
        billed = 0.0
        for entry in request["TransactItems"]:
            ((kind, operation),) = entry.items()
            table, indexes = self._replay_item(kind, copy.deepcopy(operation))
            billed += 2 * table + indexes
        return billed

    def _replay_item(self, kind: str, operation: dict[str, Any]) -> tuple[float, float]:
        """Units of one transaction item written plain (1 per KB of the larger image), and of
        its index writes."""
        for field in _NOT_REPLAYED:
            operation.pop(field, None)
        operation["TableName"] = self.shadow_table
        if kind == "ConditionCheck":
            if self.scratch_table is None:
                raise AssertionError("a ConditionCheck needs a scratch table")
            key = operation["Key"]
            item = self._bare.get_item(TableName=self.table, Key=key).get("Item") or key
            answer = self._bare.put_item(
                TableName=self.scratch_table, Item=item, ReturnConsumedCapacity="TOTAL"
            )
            return float(answer["ConsumedCapacity"]["CapacityUnits"]), 0.0
        elif kind in {"Put", "Delete"}:
            operation.pop("ExpressionAttributeNames", None)
            operation.pop("ExpressionAttributeValues", None)
            write = self._bare.put_item if kind == "Put" else self._bare.delete_item
            answer = write(**operation, ReturnConsumedCapacity="INDEXES")
        elif kind == "Update":
            expression = operation["UpdateExpression"]
            for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
                # Only those of the update expression (others were the condition's).
                used = {k: v for k, v in operation.get(field, {}).items() if _uses(expression, k)}
                if used:
                    operation[field] = used
                else:
                    operation.pop(field, None)
            answer = self._bare.update_item(**operation, ReturnConsumedCapacity="INDEXES")
        else:
            raise AssertionError(f"unexpected transaction item {kind}")
        consumed = answer["ConsumedCapacity"]
        total = float(consumed["CapacityUnits"])
        indexes = sum(
            float(index.get("CapacityUnits", 0.0))
            for index in (consumed.get("GlobalSecondaryIndexes") or {}).values()
        )
        return total - indexes, indexes


def _uses(expression: str, placeholder: str) -> bool:
    """Whether ``expression`` names ``placeholder`` (``#n`` or ``:v``), not a longer one."""
    return re.search(re.escape(placeholder) + r"(?![A-Za-z0-9_])", expression) is not None


# -- the environment ----------------------------------------------------------------------------


@contextmanager
def dynamodb_local(*tables: str) -> Iterator[Any]:
    """The benches' environment (AWS_* defaults, Powertools quiet, no metrics), DynamoDB Local
    running with ``tables`` created from template.yaml; yields a plain client."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "Loyalty"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logger.setLevel("WARNING")  # created on import, before the setting above
    with DynamoDBLocal() as server:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
        bare = boto3.client("dynamodb")
        for table in tables:
            create_table(bare, ROOT / "template.yaml", table)
        yield bare


def measured_handlers(
    bare: Any,
    functions: Sequence[str],
    table: str,
    shadow_table: str,
    scratch_table: str | None = None,
    **options: bool,
) -> tuple[dict[str, Any], LedgerRepository, MeasuringClient]:
    """The ``functions`` loaded on ``table``, and their cached ledger repository; the cached
    repositories' client is now a :class:`MeasuringClient` (``options``: its ``immediate`` and
    ``active``)."""
    os.environ["TABLE_NAME"] = table
    composition.reset()
    apps = {name: load_function(name) for name in functions}
    repo = composition.ledger_repository()
    measuring = MeasuringClient(repo.client, bare, table, shadow_table, scratch_table, **options)
    for cached in (
        repo,
        composition.perk_repository(),
        composition.tier_repository(),
        composition.rating_repository(),
        composition.customer_repository(),
    ):
        cached.client = measuring  # type: ignore[assignment]
    return apps, repo, measuring


# -- main -----------------------------------------------------------------------------------------


def update_readme(path: Path, name: str, block: str) -> None:
    """Replace the README's text between ``<!-- bench:<name>:start/end -->``."""
    text = path.read_text()
    pattern = re.compile(
        rf"(<!-- bench:{name}:start -->\n).*?(\n<!-- bench:{name}:end -->)", re.DOTALL
    )
    if not pattern.search(text):
        raise SystemExit(f"{path} has no <!-- bench:{name}:start/end --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + block + m.group(2), text))


def main(
    name: str,
    doc: str | None,
    run: Callable[[], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    readme: bool = False,
) -> None:
    """Run a bench, write bench/results/<name>.json and print its markdown; with ``readme``,
    ``--update-readme README.md`` also puts the markdown between the README's markers."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    if readme:
        parser.add_argument("--update-readme", type=Path, help="README whose figures to replace")
    args = parser.parse_args()
    results = run()
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    block = table(results)
    print(block)
    if readme and args.update_readme:
        update_readme(args.update_readme, name, block)
