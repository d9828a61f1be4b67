"""The monthly prize draw on DynamoDB Local (docs/campaigns.md): customers' orders of November
enter through ``order_ingestion``; ``prize_draw`` opens the month before it starts and draws it
after its entries close; the outbox publishes ``PrizeDrawOpened`` and ``PrizeDrawn``; ``loyalty
draw verify`` recomputes the winners from the published facts and the stored entries, and
catches a tampered entry or seed."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra import cli
from infra import draw as draw_cli
from shared import composition
from shared.dal.draw import DrawRepository
from shared.domain.draw import choose_winners, draw_month_key, entries_digest
from shared.logic.draw import SealedSeed, compute
from tests.helpers import FakeContext, load_function, order_completed, order_reversed
from tests.integration.streams import RecordingPublisher, StreamReader

PROGRAM = "customer-rewards"
MONTH = "2026-11"
ORDERS = {"c-a": 1, "c-b": 2, "c-c": 3, "c-d": 4, "c-e": 5}


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    composition.reset()
    names = ("order_ingestion", "event_publisher", "prize_draw")
    yield {name: load_function(name) for name in names}
    composition.reset()


@pytest.fixture
def recorder(apps: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> RecordingPublisher:
    kept = RecordingPublisher()
    monkeypatch.setattr(apps["event_publisher"], "publisher", lambda: kept)
    return kept


def _publish(apps: dict[str, ModuleType], stream: StreamReader) -> None:
    response = apps["event_publisher"].lambda_handler(
        {"Records": stream.read()}, FakeContext(function_name="event_publisher")
    )
    assert response == {"batchItemFailures": []}, response


def _run(apps: dict[str, ModuleType], at: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = apps["prize_draw"].lambda_handler(
        {"time": at, **extra}, FakeContext(function_name="prize_draw")
    )
    return result


@pytest.fixture
def drawn(
    apps: dict[str, ModuleType], table_name: str, recorder: RecordingPublisher, tmp_path: Path
) -> Path:
    """November opened on 20 October, 15 orders of 5 customers plus one cancelled, drawn on
    4 December; the published events written as the local stack writes them."""
    stream = StreamReader(table_name)
    opened = _run(apps, "2026-10-20T01:00:00Z")
    assert {d["month"] for d in opened["draws"]} == {"2026-10", "2026-11"}
    ingest = apps["order_ingestion"].lambda_handler
    number = 0
    for customer, count in ORDERS.items():
        for _ in range(count):
            number += 1
            ingest(
                order_completed(
                    order_id=f"o-{number}",
                    customer_id=customer,
                    completed_at=f"2026-11-{number:02d}T10:00:00+00:00",
                    time=f"2026-11-{number:02d}T12:00:00Z",
                ),
                FakeContext(),
            )
    # A cancelled order leaves the draw; an order credited after the entries closed (3 days
    # after the month) never enters.
    ingest(
        order_completed(order_id="o-x", customer_id="c-z", time="2026-11-23T12:00:00Z"),
        FakeContext(),
    )
    cancelled = order_reversed(order_id="o-x", member_id="shopper-1")
    cancelled["detail"]["customerId"] = "c-z"
    ingest(cancelled, FakeContext())
    ingest(
        order_completed(
            order_id="o-late",
            customer_id="c-y",
            completed_at="2026-11-30T10:00:00+00:00",
            time="2026-12-04T00:30:00Z",
        ),
        FakeContext(),
    )
    early = _run(apps, "2026-12-02T01:00:00Z")  # entries still open: nothing drawn
    assert [d for d in early["draws"] if d["month"] == MONTH] == []
    result = _run(apps, "2026-12-04T01:00:00Z")
    nov = [d for d in result["draws"] if d["month"] == MONTH]
    assert nov and nov[0]["status"] == "drawn" and nov[0]["totalEntries"] == 15
    _publish(apps, stream)
    path = tmp_path / "events.jsonl"
    with path.open("w") as out:
        for event in recorder.events:
            out.write(
                json.dumps({"event": {"detail-type": event.detail_type, "detail": event.detail}})
                + "\n"
            )
    return path


def _verify(table_name: str, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = draw_cli.main(
        ["verify", "--table", table_name, "--program", PROGRAM, "--month", MONTH, *extra],
        out=out,
        err=io.StringIO(),
    )
    return code, out.getvalue()


def _draw_item(table_name: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=table_name, Key={"pk": {"S": f"P#{PROGRAM}#DRAWS"}, "sk": {"S": f"DRAW#{MONTH}"}}
    )["Item"]
    return item


def test_the_published_draw_recomputes_from_its_facts(
    drawn: Path, recorder: RecordingPublisher, table_name: str, apps: dict[str, ModuleType]
) -> None:
    opened = [d for d in recorder.of("PrizeDrawOpened") if d["month"] == MONTH]
    published = [d for d in recorder.of("PrizeDrawn") if d["month"] == MONTH]
    assert len(published) == 1 and "seed" not in opened[0]
    detail = published[0]
    entries = sorted(ORDERS.items())
    # Anyone can recompute it with the module's algorithm alone.
    assert detail["entriesDigest"] == entries_digest(PROGRAM, MONTH, entries)
    assert detail["winners"] == choose_winners(detail["seed"], PROGRAM, MONTH, entries, 3)
    assert len(set(detail["winners"])) == 3 and detail["totalEntries"] == 15
    assert len(recorder.of("PrizeWon")) == 3
    assert _verify(table_name, "--published", str(drawn))[0] == 0
    assert (
        cli.main(["draw", "verify", "--table", table_name, "--program", PROGRAM, "--month", MONTH])
        == 0
    )
    # A re-run changes nothing and publishes nothing.
    before = _draw_item(table_name)
    rerun = _run(apps, "2026-12-05T01:00:00Z", month=MONTH)
    assert rerun["draws"][0]["status"] == "unchanged"
    again = _run(apps, "2026-12-06T01:00:00Z")
    assert [d for d in again["draws"] if d["month"] == MONTH] == []
    assert _draw_item(table_name) == before


def test_a_tampered_entry_is_caught(drawn: Path, table_name: str) -> None:
    client = boto3.client("dynamodb")
    client.update_item(
        TableName=table_name,
        Key={"pk": {"S": f"P#{PROGRAM}#M#c-z"}, "sk": {"S": "ORDER#o-x"}},
        UpdateExpression="SET drawMonth = :m",
        ExpressionAttributeValues={":m": {"S": draw_month_key(PROGRAM, MONTH)}},
    )
    code, out = _verify(table_name, "--published", str(drawn))
    assert code == 1 and "the entries changed" in out


def test_a_tampered_seed_is_caught(drawn: Path, table_name: str) -> None:
    lines = drawn.read_text().splitlines()
    forged = []
    for line in lines:
        record = json.loads(line)
        if record["event"]["detail-type"] == "PrizeDrawn":
            record["event"]["detail"]["seed"] = "00" * 32
        forged.append(json.dumps(record))
    drawn.write_text("\n".join(forged) + "\n")
    code, out = _verify(table_name, "--published", str(drawn))
    assert code == 1 and "the seed was changed" in out


def test_a_rewritten_draw_item_is_caught(drawn: Path, table_name: str) -> None:
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": {"S": f"P#{PROGRAM}#DRAWS"}, "sk": {"S": f"DRAW#{MONTH}"}},
        UpdateExpression="SET seed = :s",
        ExpressionAttributeValues={":s": {"S": "11" * 32}},
    )
    code, out = _verify(table_name)
    assert code == 1 and "the seed was changed" in out
    code, out = _verify(table_name, "--published", str(drawn))
    assert code == 1 and "rewritten" in out


class XorVault:
    """A stand-in for KMS (tests/unit/test_seed_vault.py has the real calls on moto): the seed
    XORed with a keystream of a secret, the program and the month."""

    def __init__(self) -> None:
        self.secret = b"test-vault-secret"

    def _stream(self, program_id: str, month: str) -> bytes:
        return hashlib.sha256(self.secret + f"|{program_id}|{month}".encode()).digest()

    def seal(self, seed: str, program_id: str, month: str) -> bytes:
        stream = self._stream(program_id, month)
        return bytes(a ^ b for a, b in zip(bytes.fromhex(seed), stream, strict=True))

    def unseal(self, sealed: bytes, program_id: str, month: str) -> str:
        return self.seal(sealed.hex(), program_id, month).hex()


def test_a_sealed_seed_is_unreadable_until_the_draw(
    apps: dict[str, ModuleType],
    table_name: str,
    recorder: RecordingPublisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a vault (KMS on AWS) the draw item holds the sealed seed and its hash until the
    draw, then the seed in the clear (it is published): the winners are the seed's."""
    client = boto3.client("dynamodb")
    sealed_store = DrawRepository(table_name, client, vault=XorVault())
    monkeypatch.setattr(apps["prize_draw"], "draw_repository", lambda: sealed_store)
    stream = StreamReader(table_name)
    _run(apps, "2026-10-20T01:00:00Z")
    opened = _draw_item(table_name)
    assert "seed" not in opened and "B" in opened["seedSealed"]
    seed = XorVault().unseal(bytes(opened["seedSealed"]["B"]), PROGRAM, MONTH)
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == opened["seedHash"]["S"]
    assert seed not in json.dumps(opened, default=str)
    # Without the vault (a reader of the table, the verify command) the seed cannot be had.
    plain_store = DrawRepository(table_name, client)
    unopened = plain_store.get_draw(PROGRAM, MONTH)
    assert unopened is not None and unopened.seed == ""
    with pytest.raises(SealedSeed):
        compute(unopened, plain_store)
    for number, customer in enumerate(("c-a", "c-b", "c-b"), start=1):
        apps["order_ingestion"].lambda_handler(
            order_completed(
                order_id=f"o-{number}",
                customer_id=customer,
                completed_at=f"2026-11-{number:02d}T10:00:00+00:00",
                time=f"2026-11-{number:02d}T12:00:00Z",
            ),
            FakeContext(),
        )
    assert _run(apps, "2026-12-04T01:00:00Z")["draws"][-1]["status"] == "drawn"
    drawn = _draw_item(table_name)
    assert drawn["seed"]["S"] == seed and "seedSealed" not in drawn
    entries = [("c-a", 1), ("c-b", 2)]
    assert [w["S"] for w in drawn["winners"]["L"]] == choose_winners(
        seed, PROGRAM, MONTH, entries, 3
    )
    _publish(apps, stream)
    (published,) = [d for d in recorder.of("PrizeDrawn") if d["month"] == MONTH]
    assert published["seed"] == seed
    assert _verify(table_name)[0] == 0  # re-checked without the vault, from the clear seed
