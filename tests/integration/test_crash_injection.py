"""Crash injection on DynamoDB Local: for every use case below and every N from 1 to the number
of DynamoDB and EventBridge calls its clean run makes, the Nth call fails (nothing sent) or its
response is lost (carried out, the caller never knows); the channel then redelivers the same
event or request, as Lambda, EventBridge, SQS or an HTTP client would, until it succeeds. After
that, the auditor (``infra/audit.py``) recomputes the members from their items and finds no
difference, and the members end as the clean run left its own (``tests/faults.py`` injects).

Each run works on members and orders of its own in one table, so the runs need no fresh table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.audit import audit_members, member_items
from shared import composition
from shared.domain.keys import member_pk, order_sk
from shared.domain.window import day_bucket, pack_days
from shared.logic.customers import guesses
from tests.faults import Faults, Mode
from tests.helpers import FakeContext, load_function, order_completed, order_reversed, sqs_event
from tests.integration.streams import StreamReader
from tests.integration.test_perks_helpers import NOW, http, seed_member

SHOPPERS = "cart-star"
CUSTOMERS = "customer-rewards"
FUNCTIONS = ("order_ingestion", "perk_redemption", "tier_recalculation", "event_publisher")
MODES: tuple[Mode, ...] = ("fail", "lost")
REDELIVERIES = 3

Member = tuple[str, str]


@pytest.fixture
def apps(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    composition.reset()
    guesses.clear()
    yield {name: load_function(name) for name in FUNCTIONS}
    composition.reset()
    guesses.clear()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    injector = Faults()
    injector.install(monkeypatch)
    return injector


@dataclass
class Run:
    """One run of a use case, on its own members: ``deliver`` hands the event or request over
    once and says whether the channel saw it succeed; ``members`` are audited after it."""

    deliver: Callable[[], bool]
    members: list[Member]
    check: Callable[[], Any] = lambda: None
    """What the run must end with, whatever broke (compared with the clean run's)."""


@dataclass
class Figures:
    use_cases: int = 0
    injection_points: int = 0
    runs: int = 0
    injected: Counter[str] = field(default_factory=Counter)


def _ok_invocation(call: Callable[[], Any]) -> bool:
    """An asynchronous invocation (EventBridge): it failed when the handler raised."""
    try:
        call()
    except Exception:  # any failure of the invocation: Lambda retries it
        return False
    return True


def _ok_batch(call: Callable[[], Any]) -> bool:
    """An SQS or stream batch: it failed when the handler raised or reported items."""
    try:
        response = call()
    except Exception:
        return False
    return not response.get("batchItemFailures")


def _snapshot(client: Any, table: str, members: list[Member]) -> list[dict[str, Any]]:
    """The members' totals and their items' states, without ids, times and versions (which
    differ between runs)."""
    shape = []
    for program_id, member_id in members:
        items = member_items(client, table, program_id, member_id)
        member = next((i for i in items if i["sk"] == "MEMBER"), {})
        totals = {
            name: value
            for name, value in member.items()
            if name not in {"v", "checkOn", "checkShard", "memberSince", "lastDue"}
            and not isinstance(value, str)
        }
        totals["tier"] = member.get("tier")
        states = sorted(
            (
                str(i["sk"]).split("#", 1)[0],
                str(i.get("status")),
                str((i.get("hold") or {}).get("state")),
            )
            for i in items
            if i["sk"] != "MEMBER" and not str(i["sk"]).startswith(("LIMIT#", "IDEMPOTENCY#"))
        )
        shape.append({"member": totals, "items": states})
    return shape


class Injection:
    """Runs a use case clean, then with each fault at each call, and audits every run."""

    def __init__(self, faults: Faults, table: str, figures: Figures) -> None:
        self.faults, self.table, self.figures = faults, table, figures
        self.client = boto3.client("dynamodb")

    def run(self, name: str, prepare: Callable[[str], Run]) -> int:
        """``prepare(suffix)`` sets up a run on members and orders named with ``suffix``."""
        clean = prepare(f"{name}-clean")
        with self.faults.armed():
            assert clean.deliver(), f"{name}: the clean run failed"
        calls = list(self.faults.calls)
        assert calls, f"{name}: no call to break"
        expected = (_snapshot(self.client, self.table, clean.members), clean.check())
        self.figures.use_cases += 1
        self.figures.injection_points += len(calls)
        for at in range(1, len(calls) + 1):
            for mode in MODES:
                self._once(name, prepare, at, mode, expected)
        return len(calls)

    def _once(
        self, name: str, prepare: Callable[[str], Run], at: int, mode: Mode, expected: Any
    ) -> None:
        guesses.clear()  # each run as a fresh execution environment would see it
        run = prepare(f"{name}-{at}{mode[0]}")
        with self.faults.armed(at, mode):
            succeeded = run.deliver()
        where = f"{name}, call {at} ({self.faults.injected}) {mode}"
        assert self.faults.injected, f"{where}: the run made fewer calls than the clean one"
        self.figures.runs += 1
        self.figures.injected[f"{self.faults.injected} {mode}"] += 1
        for _ in range(REDELIVERIES):
            if succeeded:
                break
            succeeded = run.deliver()
        assert succeeded, f"{where}: still failing after {REDELIVERIES} redeliveries"
        differences = audit_members(self.client, self.table, run.members)
        assert not differences, f"{where}: " + "; ".join(map(str, differences))
        found = (_snapshot(self.client, self.table, run.members), run.check())
        assert found == expected, f"{where}: ended otherwise than the clean run"


# -- the use cases ----------------------------------------------------------------------------


def _order(order_id: str, shopper: str, customer: str, at: datetime, total: str) -> dict[str, Any]:
    event = order_completed(
        order_id=order_id,
        member_id=shopper,
        customer_id=customer,
        completed_at=at.isoformat(),
        time=at.isoformat(),
    )
    event["detail"]["total"] = {"amount": total, "currency": "USD"}
    return event


def _hold_request(customer: str, order_id: str, points: int, at: datetime) -> dict[str, Any]:
    return http(
        "POST",
        f"/v1/members/{customer}/holds",
        iam=True,
        query={"programId": CUSTOMERS},
        body={"orderId": order_id, "points": points},
        at=at,
    )


def _answer(app: ModuleType, event: dict[str, Any], name: str) -> tuple[int, Any]:
    response = app.lambda_handler(event, FakeContext(function_name=name))
    return int(response["statusCode"]), json.loads(response["body"] or "null")


class UseCases:
    def __init__(self, apps: dict[str, ModuleType], table: str, faults: Faults) -> None:
        self.apps, self.table, self.faults = apps, table, faults
        self.client = boto3.client("dynamodb")
        self.reader = StreamReader(table)

    def ingest(self, event: dict[str, Any]) -> Any:
        return self.apps["order_ingestion"].lambda_handler(event, FakeContext())

    def _customer_with_points(self, suffix: str) -> tuple[str, str]:
        """A shopper and a customer with 2,000 points available (an order of a month ago)."""
        shopper, customer = f"s-{suffix}", f"c-{suffix}"
        self.ingest(_order(f"old-{suffix}", shopper, customer, NOW - timedelta(days=30), "1000"))
        return shopper, customer

    def order_completed(self, suffix: str) -> Run:
        """OrderCompleted through EventBridge: the shopper's and the customer's points."""
        shopper, customer = f"s-{suffix}", f"c-{suffix}"
        event = _order(f"o-{suffix}", shopper, customer, NOW, "40.00")
        return Run(
            lambda: _ok_invocation(lambda: self.ingest(event)),
            [(SHOPPERS, shopper), (CUSTOMERS, customer)],
        )

    def hold(self, suffix: str) -> Run:
        """The checkout's hold (IAM route): the same hold whatever the client saw first."""
        _, customer = self._customer_with_points(suffix)
        request = _hold_request(customer, f"cart-{suffix}", 500, NOW)
        answers: list[tuple[int, Any]] = []

        def deliver() -> bool:
            try:
                answers.append(_answer(self.apps["perk_redemption"], request, "perk_redemption"))
            except Exception:
                return False
            return answers[-1][0] < 500

        def check() -> Any:
            status, body = answers[-1]
            return status in (200, 201), body["points"], body["state"]

        return Run(deliver, [(CUSTOMERS, customer)], check)

    def capture(self, suffix: str) -> Run:
        """The held order's OrderCompleted through SQS: credit and capture together."""
        shopper, customer = self._customer_with_points(suffix)
        cart = f"cart-{suffix}"
        later = NOW + timedelta(minutes=5)
        status, _ = _answer(
            self.apps["perk_redemption"], _hold_request(customer, cart, 500, NOW), "holds"
        )
        assert status == 201
        batch = sqs_event(_order(cart, shopper, customer, later, "60.00"))
        return Run(
            lambda: _ok_batch(lambda: self.ingest(batch)),
            [(SHOPPERS, shopper), (CUSTOMERS, customer)],
        )

    def refund(self, suffix: str) -> Run:
        """A whole OrderRefunded of a captured order: the shopper's points reversed, the
        customer's clawed back and the spent points returned."""
        shopper, customer = self._customer_with_points(suffix)
        cart = f"cart-{suffix}"
        later = NOW + timedelta(minutes=5)
        _answer(self.apps["perk_redemption"], _hold_request(customer, cart, 500, NOW), "holds")
        self.ingest(_order(cart, shopper, customer, later, "60.00"))
        event = order_reversed(
            kind="OrderRefunded",
            order_id=cart,
            member_id=shopper,
            occurred_at=(later + timedelta(hours=1)).isoformat(),
            time=(later + timedelta(hours=1)).isoformat(),
        )
        return Run(
            lambda: _ok_invocation(lambda: self.ingest(event)),
            [(SHOPPERS, shopper), (CUSTOMERS, customer)],
        )

    def redemption(self, suffix: str) -> Run:
        """A care day (POST /v1/me/redemptions with an Idempotency-Key): once, and every
        retry with the key answers the redemption that was made."""
        member = f"d-{suffix}"
        seed_member(self.client, self.table, member, tier="diamond")
        request = http(
            "POST",
            "/v1/me/redemptions",
            sub=member,
            body={"perkId": "care_days", "careType": "child", "date": "2026-12-13", "unit": "day"},
            headers={"idempotency-key": f"key-{suffix}"},
        )
        answers: list[tuple[int, Any]] = []

        def deliver() -> bool:
            try:
                answers.append(_answer(self.apps["perk_redemption"], request, "perk_redemption"))
            except Exception:
                return False
            return answers[-1][0] < 500

        def check() -> Any:
            status, body = answers[-1]
            again = _answer(self.apps["perk_redemption"], request, "perk_redemption")
            made = [
                item["redemptionId"]
                for item in member_items(self.client, self.table, SHOPPERS, member)
                if str(item["sk"]).startswith("REDEMPTION#")
            ]
            assert made == [body["redemptionId"]], (made, body)
            assert again == (201, body), "a retry answers the first result"
            return status, body["status"], body["perkId"]

        return Run(deliver, [(SHOPPERS, member)], check)

    def _stream(self, member: str) -> list[dict[str, Any]]:
        pk = member_pk(SHOPPERS, member)
        return [
            record for record in self.reader.read() if record["dynamodb"]["Keys"]["pk"]["S"] == pk
        ]

    def _near_gold(self, suffix: str) -> tuple[str, list[dict[str, Any]]]:
        """A shopper 10 points short of Gold, then an order: the order's stream records."""
        shopper = f"t-{suffix}"
        now = datetime.now(UTC).replace(microsecond=0)
        earlier = (now - timedelta(days=2)).date()
        seed_member(
            self.client,
            self.table,
            shopper,
            extra=pack_days({earlier: 190}),
            lifetimePoints=190,
            ordersCompleted=1,
        )
        # ... and the order those points came from, as ingestion leaves it (for the auditor).
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": member_pk(SHOPPERS, shopper)},
                "sk": {"S": order_sk(f"seed-{suffix}")},
                "memberId": {"S": shopper},
                "orderId": {"S": f"seed-{suffix}"},
                "status": {"S": "credited"},
                "points": {"N": "190"},
                "bucket": {"S": day_bucket(earlier)},
            },
        )
        self.ingest(_order(f"o-{suffix}", shopper, f"tc-{suffix}", now, "40.00"))
        return shopper, self._stream(shopper)

    def tier_recalculation(self, suffix: str) -> Run:
        """tier_recalculation fed the order's stream records: the upgrade to Gold."""
        shopper, records = self._near_gold(suffix)
        batch = {"Records": records}
        app = self.apps["tier_recalculation"]
        return Run(
            lambda: _ok_batch(lambda: app.lambda_handler(batch, FakeContext("tier"))),
            [(SHOPPERS, shopper)],
        )

    def event_publisher(self, suffix: str) -> Run:
        """event_publisher fed the order's and the upgrade's stream records: every event
        published at least once (a lost response may publish one twice, with its id)."""
        shopper, records = self._near_gold(suffix)
        tier = self.apps["tier_recalculation"]
        assert _ok_batch(lambda: tier.lambda_handler({"Records": records}, FakeContext("tier")))
        batch = {"Records": records + self._stream(shopper)}
        app = self.apps["event_publisher"]
        start = len(self.faults.published)

        def check() -> Any:
            mine = [
                entry
                for entry in self.faults.published[start:]
                if entry["Detail"].get("memberId") == shopper
            ]
            distinct = {entry["Detail"]["eventId"]: entry["DetailType"] for entry in mine}
            return sorted(Counter(distinct.values()).items())

        return Run(
            lambda: _ok_batch(lambda: app.lambda_handler(batch, FakeContext("publisher"))),
            [(SHOPPERS, shopper)],
            check,
        )


def test_every_crash_point_of_every_use_case_leaves_no_difference(
    apps: dict[str, ModuleType], table_name: str, faults: Faults
) -> None:
    figures = Figures()
    injection = Injection(faults, table_name, figures)
    cases = UseCases(apps, table_name, faults)
    points = {
        name: injection.run(name, getattr(cases, name))
        for name in (
            "order_completed",
            "hold",
            "capture",
            "refund",
            "redemption",
            "tier_recalculation",
            "event_publisher",
        )
    }
    print(f"\ncrash injection: {points}, {figures}")
    assert figures.runs == 2 * figures.injection_points
    # Both kinds of fault hit a write somewhere: the runs are not all read failures.
    assert any("TransactWriteItems lost" in kind for kind in figures.injected)
    assert any("PutEvents lost" in kind for kind in figures.injected)


def test_the_auditor_finds_a_planted_difference(
    apps: dict[str, ModuleType], table_name: str, faults: Faults
) -> None:
    """Each total the auditor checks, changed behind the items' back, is reported by name."""
    cases = UseCases(apps, table_name, faults)
    for run in (cases.refund("a"), cases.redemption("a")):
        assert run.deliver()
    client = boto3.client("dynamodb")
    members = [(SHOPPERS, "s-a"), (CUSTOMERS, "c-a"), (SHOPPERS, "d-a")]
    assert audit_members(client, table_name, members) == []
    quota = next(
        item["sk"]
        for item in member_items(client, table_name, SHOPPERS, "d-a")
        if str(item["sk"]).startswith("MEMBER#Q#")
    )
    for (program_id, member_id), sk, attribute, reported in (
        ((SHOPPERS, "s-a"), "MEMBER", "lifetimePoints", "lifetimePoints"),
        ((SHOPPERS, "s-a"), "MEMBER", "ordersCompleted", "ordersCompleted"),
        ((CUSTOMERS, "c-a"), "MEMBER", "held", "held"),
        ((CUSTOMERS, "c-a"), "MEMBER", "bal", "bal+held+pend"),
        ((CUSTOMERS, "c-a"), "MEMBER", "used", "pd*+av*-used"),
        ((CUSTOMERS, "c-a"), "MEMBER", "yp2026", "yp2026"),
        ((SHOPPERS, "d-a"), quota, "used", f"{quota} used"),
    ):
        key = {"pk": {"S": member_pk(program_id, member_id)}, "sk": {"S": sk}}
        for change in ("1", "-1"):
            client.update_item(
                TableName=table_name,
                Key=key,
                UpdateExpression="ADD #a :change",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":change": {"N": change}},
            )
            if change == "1":
                found = audit_members(client, table_name, members)
                assert reported in {d.attribute for d in found}, (attribute, found)
    assert audit_members(client, table_name, members) == []
