"""``loyalty report`` on the rows the real publisher path writes (docs/analytics.md).

A four-month workload runs through the functions on DynamoDB Local: customers in four monthly
cohorts ordering less as months pass, shoppers delivering, eco choices and weekly challenges
paying campaign bonuses, settlements making points available, checkout holds captured, shopper
codes redeemed and fuel cashback, and the table's stream handed to tier_recalculation and
event_publisher as their mappings would. event_publisher writes its rows as Parquet (the local
sink); one batch is delivered twice, as a stream retry would. Then ``loyalty report`` runs and
its figures are checked against DuckDB queries written here independently (DuckDB's own
dialect: ``DISTINCT ON``, ``arg_max``, ``FILTER``), and against what was published.

The rendering test opens a report in headless Chromium and checks the DOM it built holds the
charts' SVG elements.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from samlite.patterns import matches

from infra import cli, report
from shared import composition
from shared.dal.analytics import ParquetSink
from shared.domain.analytics import analytics_row
from shared.domain.keys import MEMBER_SK, member_pk
from shared.domain.outbound import OutboundEvent
from shared.logic.customers import guesses
from tests.helpers import FakeContext, load_function, order_completed
from tests.integration.streams import RecordingPublisher, StreamReader
from tests.integration.test_engine_model import STREAM_FILTERS
from tests.integration.test_perks_helpers import call, http

SHOPPERS = "cart-star"
CUSTOMERS = "customer-rewards"
FUNCTIONS = ("order_ingestion", "perk_redemption", "points_settlement")
START = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)  # a Monday
WEEKS = 17
CUSTOMER_COUNT = 16
SHOPPER_COUNT = 4
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Workload:
    def __init__(self, table: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.table = table
        self.folder = folder
        self.stream = StreamReader(table)
        self.recorder = RecordingPublisher()
        self.apps = {name: load_function(name) for name in FUNCTIONS}
        self.tiers = load_function("tier_recalculation")
        self.publisher = load_function("event_publisher")
        monkeypatch.setattr(self.publisher, "publisher", lambda: self.recorder)
        self.now = START
        self.batches: list[tuple[int, list[dict[str, Any]]]] = []
        """(events published, records) of each batch handed to event_publisher."""

    def pump(self) -> None:
        """The new stream records: tier_recalculation (its filters), then event_publisher with
        the whole batch, as their mappings hand them over."""
        while records := self.stream.read():
            for record in records:
                record["dynamodb"]["ApproximateCreationDateTime"] = self.now.timestamp()
            for record in records:
                if any(matches(pattern, record) for pattern in STREAM_FILTERS):
                    answer = self.tiers.lambda_handler({"Records": [record]}, FakeContext("t"))
                    assert answer == {"batchItemFailures": []}, answer
            before = len(self.recorder.events)
            answer = self.publisher.lambda_handler({"Records": records}, FakeContext("p"))
            assert answer == {"batchItemFailures": []}, answer
            self.batches.append((len(self.recorder.events) - before, records))

    def order(self, order_id: str, shopper: str, customer: str, total: int, eco: bool) -> None:
        event = order_completed(
            order_id=order_id,
            member_id=shopper,
            customer_id=customer,
            completed_at=self.now.isoformat(),
            time=(self.now + timedelta(minutes=2)).isoformat(),
        )
        event["detail"]["total"] = {"amount": f"{total}.00", "currency": "USD"}
        if eco:
            event["detail"]["ecoChoices"] = ["no_cutlery"]
        self.apps["order_ingestion"].lambda_handler(event, FakeContext())

    def hold(self, order_id: str, customer: str) -> bool:
        status, _, _ = call(
            self.apps["perk_redemption"],
            http(
                "POST",
                f"/v1/members/{customer}/holds",
                iam=True,
                query={"programId": CUSTOMERS},
                body={"orderId": order_id, "points": 500},
                at=self.now - timedelta(minutes=5),
            ),
        )
        return status in {200, 201}

    def settle(self) -> None:
        schedule = {
            "detail-type": "Scheduled Event",
            "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.apps["points_settlement"].lambda_handler(schedule, FakeContext("settlement"))

    def redeem(self, shopper: str, key: str) -> None:
        event = http(
            "POST",
            "/v1/me/redemptions",
            sub=shopper,
            body={"perkId": "car_maintenance"},
            headers={"idempotency-key": key},
            at=self.now,
        )
        status, answer, _ = call(self.apps["perk_redemption"], event)
        assert status == 201, answer

    def fuel(self, purchase_id: str, shopper: str, amount: str) -> None:
        event = {
            "version": "0",
            "id": f"evt-{purchase_id}",
            "detail-type": "FuelPurchaseReported",
            "source": "fuel.partner",
            "time": self.now.isoformat(),
            "detail": {
                "purchaseId": purchase_id,
                "memberId": shopper,
                "amount": {"amount": amount, "currency": "USD"},
                "occurredAt": (self.now - timedelta(hours=1)).isoformat(),
            },
        }
        self.apps["perk_redemption"].lambda_handler(event, FakeContext())

    def expire(self, customer: str, points: int) -> None:
        """Points expire 12 months after they became available, beyond this workload: the
        member item is written as the settlement writes an expiry (its ``lastDue``)."""
        boto3.client("dynamodb").update_item(
            TableName=self.table,
            Key={"pk": {"S": member_pk(CUSTOMERS, customer)}, "sk": {"S": MEMBER_SK}},
            UpdateExpression="SET lastDue = :d",
            ExpressionAttributeValues={
                ":d": {"M": {"at": {"S": self.now.isoformat()}, "expired": {"N": str(points)}}}
            },
        )

    def run(self, seed: int = 11) -> None:
        rng = random.Random(seed)
        serial = 0
        for week in range(WEEKS):
            month = (START + timedelta(weeks=week)).month
            for index in range(CUSTOMER_COUNT):
                customer = f"c-{index:02d}"
                joins = 8 + index % 4  # four cohorts: August to November
                if month < joins:
                    continue
                # Fewer orders the longer a customer has been with us, and fewer for odd ones.
                age = month - joins
                chance = 0.85 - 0.25 * age - (0.3 if index % 2 else 0)
                for _ in range(2):
                    if rng.random() >= chance:
                        continue
                    serial += 1
                    order_id = f"o-{serial:04d}"
                    self.now = START + timedelta(weeks=week, hours=rng.randrange(0, 150))
                    if rng.random() < 0.25:
                        self.hold(order_id, customer)
                    self.order(
                        order_id,
                        f"s-{rng.randrange(SHOPPER_COUNT)}",
                        customer,
                        rng.randrange(40, 160),
                        eco=rng.random() < 0.3,
                    )
                    self.pump()
            self.now = START + timedelta(weeks=week, days=6, hours=12)
            self.settle()
            if week % 4 == 1:
                for shopper in range(0, SHOPPER_COUNT, 2):
                    self.redeem(f"s-{shopper}", f"k-{week}-{shopper}")
            self.fuel(f"p-{week}", f"s-{week % SHOPPER_COUNT}", f"{30 + week}.50")
            self.pump()
        self.expire("c-00", 120)
        self.expire("c-04", 80)
        self.pump()


@pytest.fixture
def workload(
    table_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Workload]:
    monkeypatch.setenv("TABLE_NAME", table_name)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")
    monkeypatch.setenv("LOYALTY_ANALYTICS_DIR", str(tmp_path / "analytics"))
    composition.reset()
    guesses.clear()
    run = Workload(table_name, tmp_path / "analytics", monkeypatch)
    run.run()
    yield run
    composition.reset()
    guesses.clear()


def _unique(folder: Path) -> duckdb.DuckDBPyConnection:
    """The rows, one per event id: DuckDB's own dialect, apart from infra.analytics_sql."""
    connection = duckdb.connect()
    connection.execute(
        "CREATE VIEW rows AS SELECT DISTINCT ON (event_id) * FROM read_parquet("
        f"'{folder}/*/*.parquet', hive_partitioning = true, hive_types_autocast = false) "
        "ORDER BY event_id, published_at"
    )
    return connection


def test_the_report_matches_independent_queries_of_what_was_published(
    workload: Workload, tmp_path: Path
) -> None:
    folder = workload.folder
    published = list(workload.recorder.events)
    # A stream retry delivers a batch's rows again: the report must not count them twice.
    count, again = max(workload.batches, key=lambda batch: batch[0])
    assert count > 0
    answer = workload.publisher.lambda_handler({"Records": again}, FakeContext("p"))
    assert answer == {"batchItemFailures": []}, answer
    assert len(workload.recorder.events) > len(published)
    db = _unique(folder)
    raw = db.execute(f"SELECT count(*) FROM read_parquet('{folder}/*/*.parquet')").fetchone()
    assert raw is not None and raw[0] > len(published)

    # Every published event is a row, and nothing else is.
    ids = {row[0] for row in db.execute("SELECT event_id FROM rows").fetchall()}
    assert ids == {event.detail["eventId"] for event in published}
    kinds = Counter(event.detail_type for event in published)
    for kind in ("PointsEarned", "CampaignRewarded", "PointsSpent", "PointsExpired"):
        assert kinds[kind] > 0, kinds
    assert kinds["MemberTierChanged"] > 0 and kinds["PerkRedeemed"] > 0, kinds

    out = tmp_path / "report.html"
    first, last = "2026-08-01", "2026-11-30"
    code = cli.main(
        ["report", "--data", str(folder), "--out", str(out), "--from", first, "--to", last]
    )
    assert code == 0 and out.is_file()
    start, end, reports = report.build(folder, tmp_path / "again.html", first, last, [])
    assert (start, end) == (first, last)
    by_program = {r.program_id: r for r in reports}
    assert set(by_program) == {SHOPPERS, CUSTOMERS}
    customers, shoppers = by_program[CUSTOMERS], by_program[SHOPPERS]

    # Points: totals by kind, against the published events and DuckDB.
    totals = dict(
        db.execute(
            "SELECT detail_type, sum(points) FROM rows WHERE program_id = ? "
            "AND day BETWEEN ? AND ? GROUP BY ALL",
            [CUSTOMERS, first, last],
        ).fetchall()
    )
    earned = sum(r[1] for r in customers.points)
    assert (
        earned
        == totals["PointsEarned"]
        == sum(
            e.detail["points"]
            for e in published
            if e.detail_type == "PointsEarned" and e.detail["programId"] == CUSTOMERS
        )
    )
    assert sum(r[2] for r in customers.points) == totals["CampaignRewarded"] - totals.get(
        "CampaignRewardReversed", 0
    )
    assert sum(r[3] for r in customers.points) == totals["PointsSpent"] > 0
    assert sum(r[4] for r in customers.points) == totals["PointsExpired"] == 200
    weeks = [week for week, *_ in customers.points]
    assert all(date.fromisoformat(week).weekday() == 0 for week in weeks), weeks  # Mondays
    html_text = out.read_text(encoding="utf-8")
    assert f"<td>{earned:,}</td>" in html_text

    # Tier mix on the last day: each member's latest tier, counted.
    for program, section in ((SHOPPERS, shoppers), (CUSTOMERS, customers)):
        latest = dict(
            db.execute(
                "SELECT tier, count(*) FROM (SELECT member_id, arg_max(tier, occurred_at) AS tier "
                "FROM rows WHERE detail_type = 'MemberTierChanged' AND program_id = ? "
                "AND day <= ? GROUP BY member_id) WHERE tier IS NOT NULL GROUP BY tier",
                [program, last],
            ).fetchall()
        )
        final_day = max(d for d, _, _ in section.tier_mix) if section.tier_mix else None
        mix = {t: n for d, t, n in section.tier_mix if d == final_day}
        assert mix == latest
    assert shoppers.tier_mix, "shoppers reached a tier"

    # Retention: cohorts by first-order month, members ordering k months later.
    months = db.execute(
        "SELECT DISTINCT member_id, strftime(CAST(day AS DATE), '%Y-%m') FROM rows "
        "WHERE program_id = ? AND detail_type = 'PointsEarned' AND reason = 'order_completed'",
        [CUSTOMERS],
    ).fetchall()
    by_member: dict[str, set[str]] = defaultdict(set)
    for member, month in months:
        by_member[member].add(month)
    expected: Counter[tuple[str, int]] = Counter()
    for active in by_member.values():
        cohort = min(active)
        for month in active:
            offset = (int(month[:4]) - int(cohort[:4])) * 12 + int(month[5:]) - int(cohort[5:])
            expected[(cohort, offset)] += 1
    assert {(c, k): n for c, k, n in customers.retention} == dict(expected)
    assert {c for c, _, _ in customers.retention} == {"2026-08", "2026-09", "2026-10", "2026-11"}
    august = {k: n for c, k, n in customers.retention if c == "2026-08"}
    assert august[0] == CUSTOMER_COUNT // 4 and august[3] < august[0]  # a quarter joined in August

    # Perk use: redemptions and cashback credits.
    perks = dict(
        db.execute(
            "SELECT coalesce(perk_id, 'gas_cashback'), count(*) FROM rows WHERE program_id = ? "
            "AND detail_type IN ('PerkRedeemed', 'CashbackCredited') AND day BETWEEN ? AND ? "
            "GROUP BY ALL",
            [SHOPPERS, first, last],
        ).fetchall()
    )
    assert {p: u for p, u, *_ in shoppers.perks} == perks
    assert perks["car_maintenance"] == len(range(0, SHOPPER_COUNT, 2)) * 4  # weeks 1, 5, 9, 13
    assert perks["gas_cashback"] == WEEKS

    # Campaigns: cost per extra order, from DuckDB's counts and the program's point value.
    orders = dict(
        db.execute(
            "SELECT member_id, count(*) FROM rows WHERE program_id = ? AND day BETWEEN ? AND ? "
            "AND detail_type = 'PointsEarned' AND reason = 'order_completed' GROUP BY ALL",
            [CUSTOMERS, first, last],
        ).fetchall()
    )
    rewards = db.execute(
        "SELECT campaign_id, member_id, sum(points) FILTER (detail_type = 'CampaignRewarded') "
        "- coalesce(sum(points) FILTER (detail_type = 'CampaignRewardReversed'), 0) FROM rows "
        "WHERE program_id = ? AND day BETWEEN ? AND ? AND campaign_id IS NOT NULL GROUP BY ALL",
        [CUSTOMERS, first, last],
    ).fetchall()
    campaigns: dict[str, dict[str, int]] = defaultdict(dict)
    for campaign, member, points in rewards:
        campaigns[campaign][member] = points
    assert {c.campaign_id for c in customers.campaigns} == set(campaigns) >= {"eco_no_cutlery"}
    for figures in customers.campaigns:
        members = campaigns[figures.campaign_id]
        others = {m: n for m, n in orders.items() if m not in members}
        their_orders = sum(orders.get(m, 0) for m in members)
        baseline = len(members) * sum(others.values()) / len(others)
        extra = their_orders - baseline
        cost = sum(members.values()) * Decimal("0.01")
        assert (figures.bonus_points, figures.rewarded_members) == (
            sum(members.values()),
            len(members),
        )
        assert figures.rewarded_orders == their_orders
        assert figures.extra_orders == pytest.approx(extra)
        if extra > 0:
            assert figures.cost_per_extra_order == (cost / Decimal(str(extra))).quantize(
                Decimal("0.01")
            )
            assert f"<td>{figures.cost_per_extra_order:,.2f}</td>" in html_text
        else:
            assert figures.cost_per_extra_order is None


# ---------------------------------------------------------------------------------- rendering


def _rows(folder: Path) -> None:
    """A few days of rows for both tiers, orders, bonuses, perks (written by the local sink)."""
    events = []
    for day in range(1, 40):
        at = datetime(2026, 9, 1, 10, tzinfo=UTC) + timedelta(days=day)
        member = f"c-{day % 5}"
        events.append(
            OutboundEvent(
                "PointsEarned",
                {
                    "programId": CUSTOMERS,
                    "memberId": member,
                    "orderId": f"o-{day}",
                    "points": 100 + day,
                    "reason": "order_completed",
                    "occurredAt": at.isoformat(),
                },
            ).with_id(day, "earned")
        )
        if member == "c-0":  # the campaign's member orders twice as often
            events.append(
                OutboundEvent(
                    "CampaignRewarded",
                    {
                        "programId": CUSTOMERS,
                        "memberId": member,
                        "campaignId": "eco_no_cutlery",
                        "points": 20,
                        "occurredAt": at.isoformat(),
                    },
                ).with_id(day, "bonus")
            )
            events.append(
                OutboundEvent(
                    "PointsEarned",
                    {
                        "programId": CUSTOMERS,
                        "memberId": member,
                        "orderId": f"x-{day}",
                        "points": 50,
                        "reason": "order_completed",
                        "occurredAt": at.isoformat(),
                    },
                ).with_id(day, "extra")
            )
        if day % 7 == 0:
            events.append(
                OutboundEvent(
                    "MemberTierChanged",
                    {
                        "programId": CUSTOMERS,
                        "memberId": member,
                        "from": None,
                        "to": "silver" if day < 30 else "gold",
                        "occurredAt": at.isoformat(),
                    },
                ).with_id(day, "tier")
            )
        if day % 9 == 0:
            events.append(
                OutboundEvent(
                    "PerkRedeemed",
                    {
                        "programId": CUSTOMERS,
                        "memberId": member,
                        "perkId": "free_delivery",
                        "occurredAt": at.isoformat(),
                    },
                ).with_id(day, "perk")
            )
    published = datetime(2026, 10, 20, tzinfo=UTC)
    ParquetSink(folder).deliver([analytics_row(event, published) for event in events])


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium missing: `make test` installs it (apt-get install chromium)",
)
def test_the_report_renders_its_charts_in_a_headless_browser(tmp_path: Path) -> None:
    _rows(tmp_path / "analytics")
    out = tmp_path / "report.html"
    assert report.main(["--data", str(tmp_path / "analytics"), "--out", str(out)]) == 0
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--dump-dom",
            out.as_uri(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        dom, errors = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors[-2000:]
    # The browser parsed the page into SVG elements: five charts, bars and cohort cells.
    assert dom.count('<svg class="chart"') == 5, dom[:2000]
    for chart in ("tier-mix", "retention", "points", "perks", "campaigns"):
        assert f'id="{CUSTOMERS}-{chart}"' in dom
    assert dom.count('<rect class="bar"') > 30 and '<rect class="cell"' in dom
    assert "no data" not in dom
    assert date(2026, 10, 10).isoformat() in dom  # the last day of data ends the range
