"""The annual dividend on DynamoDB Local: the year's order total kept by the credit and its
cancellations and refunds, the Plus registry written by ``MembershipChanged``, and the job run by
``points_settlement`` from 15 March: Plus members of last year paid 10% of their year's orders
once, others not at all; a run that dies mid-page taken up from its checkpoint pays everyone
exactly once; a run after the year is done changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from infra.audit import audit_members
from shared import composition
from shared.dal.customers import CustomerRepository
from shared.domain.customer_events import customer_events
from shared.domain.events import MembershipChanged, OrderCancelled, OrderCompleted, OrderRefunded
from shared.domain.keys import reward_sk
from shared.logic.customers import change_membership, credit_customer, guesses, refund_customer
from shared.logic.dividend import run_dividend
from shared.logic.ledger import ledger_projection
from shared.programs import load_program
from tests.helpers import FakeContext, load_function

PROGRAM = load_program("customer-rewards")
CAMPAIGN = "annual_dividend"


@pytest.fixture
def store(table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CustomerRepository]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    guesses.clear()
    yield composition.customer_repository()
    composition.reset()


@pytest.fixture
def settlement(store: CustomerRepository) -> ModuleType:
    return load_function("points_settlement")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def plus(store: CustomerRepository, customer: str, start: str, until: str) -> None:
    change = MembershipChanged.model_validate(
        {"customerId": customer, "plan": "plus", "validUntil": until, "occurredAt": start}
    )
    change_membership(change, PROGRAM, store)


def order(store: CustomerRepository, customer: str, total: str, when: str) -> OrderCompleted:
    event = OrderCompleted.model_validate(
        {
            "orderId": f"o-{uuid.uuid4().hex[:10]}",
            "memberId": "shopper-1",
            "customerId": customer,
            "completedAt": when,
            "total": {"amount": total, "currency": "USD"},
            "tip": {"amount": "2.00", "currency": "USD"},
        }
    )
    credit_customer(event, at(when[:19]), PROGRAM, store, str(uuid.uuid4()))
    return event


def member(store: CustomerRepository, customer: str) -> dict[str, Any]:
    return store.get_member(PROGRAM.id, customer) or {}


def dividend(store: CustomerRepository, customer: str, year: int) -> dict[str, Any] | None:
    return store._get_item(PROGRAM.id, customer, reward_sk(CAMPAIGN, str(year)))


def schedule(settlement: ModuleType, when: str) -> dict[str, Any]:
    event = {"detail-type": "Scheduled Event", "time": when}
    run = settlement.lambda_handler(event, FakeContext("points_settlement"))
    return dict(run["programs"][0])


def test_plus_members_are_paid_a_tenth_of_their_year_once(
    store: CustomerRepository, settlement: ModuleType, table_name: str
) -> None:
    # Plus from March to September 2026: every order of 2026 counts, the others' years do not.
    plus(store, "cara", "2026-03-01T00:00:00Z", "2026-09-01T00:00:00Z")
    order(store, "cara", "1000.00", "2025-12-31T23:00:00Z")  # 2025's
    order(store, "cara", "120.50", "2026-01-10T10:00:00Z")  # before the plan: counts
    gone = order(store, "cara", "80.00", "2026-04-02T10:00:00Z")
    halved = order(store, "cara", "200.00", "2026-06-02T10:00:00Z")
    order(store, "cara", "99.00", "2027-01-05T10:00:00Z")  # 2027's
    assert member(store, "cara")["ot2026"] == 40050
    cancel = OrderCancelled.model_validate(
        {"orderId": gone.order_id, "memberId": "shopper-1", "occurredAt": "2026-04-03T00:00:00Z"}
    )
    refund_customer(cancel, "cara", at("2026-04-03T00:00:00"), PROGRAM, store)
    part = OrderRefunded.model_validate(
        {
            "orderId": halved.order_id,
            "memberId": "shopper-1",
            "occurredAt": "2026-06-04T00:00:00Z",
            "amount": {"amount": "50.00", "currency": "USD"},
        }
    )
    refund_customer(part, "cara", at("2026-06-04T00:00:00"), PROGRAM, store)
    refund_customer(part, "cara", at("2026-06-04T00:00:00"), PROGRAM, store)  # again: once
    cara = member(store, "cara")
    assert (cara["ot2025"], cara["ot2026"], cara["ot2027"]) == (100000, 27050, 9900)
    # Plus from November 2025 to 1 February 2026: held in both years.
    plus(store, "lena", "2025-11-01T00:00:00Z", "2026-02-01T00:00:00Z")
    order(store, "lena", "300.00", "2026-08-01T10:00:00Z")
    # Plus in 2026 without an order; never Plus with orders.
    plus(store, "quiet", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z")
    order(store, "nora", "500.00", "2026-05-01T10:00:00Z")
    # Plus from 1 January 2027 00:00 exactly: not held in 2026.
    plus(store, "newbie", "2027-01-01T00:00:00Z", "2027-12-01T00:00:00Z")
    order(store, "newbie", "50.00", "2026-12-01T10:00:00Z")

    # Before 15 March 2027 nothing is due: no read of the registry.
    assert schedule(settlement, "2027-03-14T23:55:00Z")["dividendState"] == "not_due"
    assert dividend(store, "cara", 2026) is None
    run = schedule(settlement, "2027-03-15T00:05:00Z")
    assert (run["dividendYear"], run["dividendState"]) == (2026, "done")
    assert (run["dividendsPaid"], run["dividendPoints"]) == (2, 2705 + 3000)
    assert run["dividendsRefused"] == {"nothing_earned": 1}
    # 10% of $270.50 is $27.05: 2,705 points at $0.01, available at once in March's lot.
    paid = dividend(store, "cara", 2026)
    assert paid is not None
    assert (paid["points"], paid["ruleVersion"], paid["orderTotalCents"], paid["rate"]) == (
        2705,
        PROGRAM.rule_version,
        27050,
        "0.10",
    )
    assert member(store, "cara")["av202703"] == 2705
    assert member(store, "lena")["av202703"] == 3000
    for nobody in ("quiet", "nora", "newbie"):
        assert dividend(store, nobody, 2026) is None
        assert "av202703" not in member(store, nobody)
    assert dividend(store, "lena", 2025) is None  # 2025's is not due
    # Its ledger entry and its event, from the reward item, as every campaign's.
    [(_, _, entry)] = ledger_projection(None, paid)
    assert (entry.kind, entry.points, entry.reason) == ("bonus", 2705, f"campaign:{CAMPAIGN}")
    [event] = customer_events(None, paid)
    assert event.detail_type == "CampaignRewarded"
    assert (event.detail["campaignId"], event.detail["occasion"]) == (CAMPAIGN, "2026")
    assert event.detail["ruleVersion"] == PROGRAM.rule_version
    client = boto3.client("dynamodb")
    assert audit_members(client, table_name, [(PROGRAM.id, m) for m in ("cara", "lena")]) == []

    # The year is done: a run the same day, or later, changes nothing.
    before = [member(store, m) for m in ("cara", "lena", "quiet")]
    again = schedule(settlement, "2027-03-15T00:10:00Z")
    assert (again["dividendState"], again["dividendsPaid"]) == ("done_before", 0)
    assert [member(store, m) for m in ("cara", "lena", "quiet")] == before


class Crash(Exception):
    pass


class CrashingStore:
    """The repository, dying after ``after`` dividends (before the page's checkpoint)."""

    def __init__(self, store: CustomerRepository, after: int) -> None:
        self.store, self.left = store, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def pay_dividend(self, *args: Any) -> Any:
        if self.left == 0:
            raise Crash
        self.left -= 1
        return self.store.pay_dividend(*args)


def test_a_run_dying_mid_page_is_taken_up_and_pays_everyone_once(
    store: CustomerRepository,
) -> None:
    members = [f"m{n:02d}" for n in range(7)]
    for n, customer in enumerate(members):
        plus(store, customer, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
        order(store, customer, f"{100 + n}.00", "2026-02-10T10:00:00Z")
    now = at("2027-03-16T08:00:00")
    # Pages of 3: the first page is paid and checkpointed, the run dies in the second.
    with pytest.raises(Crash):
        run_dividend(now, PROGRAM, CrashingStore(store, after=4), page_size=3)
    job = store.dividend_job(PROGRAM.id, 2026)
    assert job is not None
    assert (job["state"], job["cursor"], job["paid"]) == ("running", "m02", 3)
    assert sum(dividend(store, m, 2026) is not None for m in members) == 4
    # One page a run: the next run goes on from the checkpoint, the one after finishes.
    first = run_dividend(now, PROGRAM, store, pages=1, page_size=3)
    assert (first.state, first.paid, first.refused) == ("running", 2, {"duplicate": 1})
    last = run_dividend(now, PROGRAM, store, page_size=3)
    assert (last.state, last.paid) == ("done", 1)
    for n, customer in enumerate(members):
        paid = dividend(store, customer, 2026)
        assert paid is not None and paid["points"] == (100 + n) * 10
        assert member(store, customer)["av202703"] == (100 + n) * 10  # once
    job = store.dividend_job(PROGRAM.id, 2026)
    assert job is not None and (job["state"], job["paid"], job["duplicate"]) == ("done", 6, 1)
    # Done: a run reads the checkpoint and writes nothing.
    store.meter.reset()
    assert run_dividend(now, PROGRAM, store).state == "done_before"
    assert store.meter.by_operation == {"GetItem": 1}


def test_the_budget_is_never_overspent(store: CustomerRepository) -> None:
    tight = PROGRAM.model_copy(
        update={"dividend": PROGRAM.dividend.model_copy(update={"budget": 2500})}  # type: ignore[union-attr]
    )
    for customer, total in (("b1", "100.00"), ("b2", "100.00"), ("b3", "100.00")):
        plus(store, customer, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
        order(store, customer, total, "2026-02-10T10:00:00Z")
    run = run_dividend(at("2027-03-15T12:00:00"), tight, store)
    assert (run.paid, run.points, run.refused) == (2, 2000, {"budget_spent": 1})
