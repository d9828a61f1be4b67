"""``make demo``: a synthetic marketplace sent through the running local stack.

A few hundred shoppers with 90 days of history, replayed in time order through PutEvents on the
bus the functions use: orders (single, double and triple batches; a few cancelled or refunded,
some refunds partial), tip adjustments (some of them tip-baiting), ratings, partner fuel
purchases (a few refunded), and the customers' side: every order also credits its customer in
the customer program (a third of the orders with an eco choice, which the ``eco_no_cutlery``
campaign rewards; a tenth rounding up for a cause; three in a customer's week pay the weekly
challenge), a fifth of the customers hold a Plus membership (``MembershipChanged`` from
billing), and every customer has a profile (``ProfileUpdated``): one in ten was born today,
and the birthday sweep pays them. Casual, regular, busy and pro shoppers are mixed so that every
tier shows up. Each event's ``Time`` is when it happened (plus a short delivery delay), as a
replay of the last 90 days.

Then it waits until the stack has processed everything and prints the tier distribution
(window points of each member item in the table, through the program's tiers), the customers'
statuses and points, the events routed to functions or left without a subscriber, the events
the functions published (from ``events.jsonl``), and the invocations per function.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import boto3
from boto3.dynamodb.types import TypeDeserializer

from shared.domain.tiers import tier_for
from shared.domain.window import window_points
from shared.programs import load_program

__all__ = ["Profile", "generate", "run_demo"]

SOURCE_ORDERS = "demo.orders"
SOURCE_RATINGS = "demo.ratings"
SOURCE_PARTNERS = "demo.fuel-partners"
SOURCE_BILLING = "demo.billing"
SOURCE_PROFILES = "demo.profiles"
DEMO_ZONES = ("Pacific/Auckland", "Europe/Berlin", "America/New_York", "America/Los_Angeles")
CUSTOMER_PROGRAM = "customer-rewards"
OUTSIDE_CONTROL = ["item_out_of_stock", "store_closed", "app_issue", "late_due_to_store"]
OWN_FAULT = ["late_delivery", "wrong_item", "damaged_item", "rude"]


@dataclass(frozen=True)
class Profile:
    name: str
    share: float
    orders: tuple[int, int]
    batch_weights: tuple[int, int, int]
    """Relative frequency of single, double and triple batches."""


PROFILES = (
    Profile("casual", 0.50, (1, 9), (9, 1, 0)),
    Profile("regular", 0.30, (10, 24), (4, 4, 2)),
    Profile("busy", 0.13, (38, 52), (1, 4, 5)),
    Profile("pro", 0.07, (68, 84), (0, 3, 7)),
)
"""Half the shoppers stay below Gold; busy ones reach Platinum and pros Diamond, taking more
double and triple batches, as high-volume shoppers do on delivery marketplaces."""


def _money(amount: float) -> dict[str, str]:
    return {"amount": f"{amount:.2f}", "currency": "USD"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def generate(
    members: int, *, seed: int, days: int, now: datetime
) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(delivery time, PutEvents entry without EventBusName), in delivery order."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by seed
    customers = [f"demo-customer-{index:04d}" for index in range(1, members * 2 + 1)]
    harsh = set(rng.sample(customers, k=max(1, len(customers) // 25)))
    # Eco choices from a generator of their own: the rest of the history stays as it was.
    eco = random.Random(seed + 1)  # noqa: S311 - synthetic data, reproducible by seed
    # Round-ups too (a tenth of the orders give their change to one of the program's causes).
    giving = random.Random(seed + 3)  # noqa: S311 - synthetic data, reproducible by seed
    rules = load_program(CUSTOMER_PROGRAM).giving
    causes = [cause.id for cause in rules.causes] if rules else []
    events: list[tuple[datetime, dict[str, Any]]] = []

    def add(at: datetime, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        delivered = min(now, at + timedelta(seconds=rng.randint(5, 600)))
        events.append(
            (
                delivered,
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Time": delivered,
                },
            )
        )

    for index in range(1, members + 1):
        member = f"demo-shopper-{index:04d}"
        profile = rng.choices(PROFILES, weights=[p.share for p in PROFILES])[0]
        for number in range(rng.randint(*profile.orders)):
            order = f"demo-order-{index:04d}-{number:03d}"
            customer = rng.choice(customers)
            completed = now - timedelta(days=rng.uniform(0, days - 1), minutes=30)
            tip = rng.choice([0, 2, 3, 5, 5, 8, 10, 12])
            add(
                completed,
                SOURCE_ORDERS,
                "OrderCompleted",
                {
                    "orderId": order,
                    "memberId": member,
                    "customerId": customer,
                    "completedAt": _iso(completed),
                    "batchSize": rng.choices((1, 2, 3), weights=profile.batch_weights)[0],
                    "total": _money(rng.uniform(15, 180)),
                    "tip": _money(tip),
                    # A third of the customers refuse plastic cutlery: the campaign's bonus.
                    **({"ecoChoices": ["no_cutlery"]} if eco.random() < 0.33 else {}),
                    **_round_up(giving, causes),
                },
            )
            roll = rng.random()
            later = completed + timedelta(hours=rng.uniform(1, 30))
            if roll < 0.02 or (roll < 0.03 and later < now):
                kind = "OrderCancelled" if roll < 0.02 else "OrderRefunded"
                add(
                    later,
                    SOURCE_ORDERS,
                    kind,
                    {"orderId": order, "memberId": member, "occurredAt": _iso(later)},
                )
                continue
            if roll < 0.05 and later < now:
                # A partial refund (a missing item): the customer's points come back in part.
                add(
                    later,
                    SOURCE_ORDERS,
                    "OrderRefunded",
                    {
                        "orderId": order,
                        "memberId": member,
                        "occurredAt": _iso(later),
                        "amount": _money(rng.uniform(2, 12)),
                    },
                )
            if tip and rng.random() < 0.05:
                baited = rng.random() < 0.5
                detail: dict[str, Any] = {
                    "orderId": order,
                    "memberId": member,
                    "customerId": customer,
                    "previousTip": _money(tip),
                    "newTip": _money(0 if baited else max(0, tip - 1)),
                    "occurredAt": _iso(later),
                }
                if not baited:
                    detail["reason"] = "item_missing"
                add(later, SOURCE_ORDERS, "TipAdjusted", detail)
            if rng.random() < 0.6:
                rated = completed + timedelta(minutes=rng.uniform(10, 600))
                stars = (
                    rng.choices((1, 2, 3, 4, 5), weights=(3, 3, 3, 1, 1))[0]
                    if customer in harsh
                    else rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 10, 60))[0]
                )
                reasons = [] if stars >= 4 else [rng.choice(OUTSIDE_CONTROL + OWN_FAULT)]
                add(
                    rated,
                    SOURCE_RATINGS,
                    "RatingSubmitted",
                    {
                        "ratingId": f"rating-{order}",
                        "orderId": order,
                        "memberId": member,
                        "customerId": customer,
                        "stars": stars,
                        "reasons": reasons,
                        "submittedAt": _iso(rated),
                    },
                )
        for number in range(rng.randint(0, 6)):
            at = now - timedelta(days=rng.uniform(0, days - 1))
            purchase = f"demo-fuel-{index:04d}-{number:02d}"
            add(
                at,
                SOURCE_PARTNERS,
                "FuelPurchaseReported",
                {
                    "purchaseId": purchase,
                    "memberId": member,
                    "amount": _money(rng.uniform(20, 90)),
                    "occurredAt": _iso(at),
                },
            )
            refunded = at + timedelta(hours=rng.uniform(1, 48))
            if rng.random() < 0.05 and refunded < now:
                add(
                    refunded,
                    SOURCE_PARTNERS,
                    "FuelPurchaseRefunded",
                    {"purchaseId": purchase, "memberId": member, "occurredAt": _iso(refunded)},
                )
    for customer in customers:
        if rng.random() < 0.2:
            joined = now - timedelta(days=rng.uniform(days / 2, days))
            add(
                joined,
                SOURCE_BILLING,
                "MembershipChanged",
                {
                    "customerId": customer,
                    "plan": "plus",
                    "validUntil": _iso(now + timedelta(days=30)),
                    "occurredAt": _iso(joined),
                },
            )
    # Profiles last, from a generator of their own: the history stays as it was.
    _profiles(customers, random.Random(seed + 2), now - timedelta(days=days + 1), now, add)  # noqa: S311
    events.sort(key=lambda item: item[0])
    yield from events


def _profiles(
    customers: list[str],
    born: random.Random,
    set_at: datetime,
    now: datetime,
    add: Callable[[datetime, str, str, Mapping[str, Any]], None],
) -> None:
    """Every customer's ``ProfileUpdated``: one in ten was born today in their zone (the
    birthday sweep of the 5-minute schedule pays them 500 points); the others' birthdays are
    spread over the year."""
    for customer in customers:
        zone = born.choice(DEMO_ZONES)
        if born.random() < 0.1:
            birthday = f"{now.astimezone(ZoneInfo(zone)):%m-%d}"
        else:
            birthday = f"{born.randint(1, 12):02d}-{born.randint(1, 28):02d}"
        add(
            set_at,
            SOURCE_PROFILES,
            "ProfileUpdated",
            {
                "programId": CUSTOMER_PROGRAM,
                "memberId": customer,
                "birthday": birthday,
                "timeZone": zone,
                "locale": born.choice(("en", "de", "ru")),
                "occurredAt": _iso(set_at),
            },
        )


# --------------------------------------------------------------------------- talking to the stack


def _get(endpoint: str, path: str) -> Any:
    with urlopen(endpoint.rstrip("/") + path, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _app_setting(stack: Mapping[str, Any], name: str, default: str) -> str:
    for function in stack.get("functions", {}).values():
        value = function.get("environment", {}).get(name)
        if value:
            return str(value)
    return default


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> Counter[str]:
    return Counter({key: value - before.get(key, 0) for key, value in after.items()}) + Counter()


def _wait_idle(endpoint: str, timeout: float) -> bool:
    """Wait until the stack has done everything (three idle answers in a row)."""
    deadline = time.monotonic() + timeout
    streak = 0
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        stats = _get(endpoint, "/_local/stats")
        streak = streak + 1 if stats["idle"] else 0
        if streak >= 3:
            return True
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            done = sum(function["invocations"] for function in stats["functions"].values())
            print(f"  ... {done} invocations so far", flush=True)
        time.sleep(0.5)
    return False


def _dynamodb(stack: Mapping[str, Any]) -> Any:
    """A client of the stack's DynamoDB Local."""
    return boto3.client(
        "dynamodb",
        endpoint_url=stack["dynamodbEndpoint"],
        region_name=stack.get("region", "us-east-1"),
        aws_access_key_id="demo",
        aws_secret_access_key="demo",  # noqa: S106 - DynamoDB Local ignores it
    )


def _tiers(stack: Mapping[str, Any], table: str, program_id: str, now: datetime) -> Counter[str]:
    program = load_program(program_id)
    client = _dynamodb(stack)
    deserializer = TypeDeserializer()
    counts: Counter[str] = Counter()
    paginator = client.get_paginator("scan")
    pages = paginator.paginate(
        TableName=table,
        FilterExpression="sk = :member AND begins_with(pk, :prefix)",
        ExpressionAttributeValues={
            ":member": {"S": "MEMBER"},
            ":prefix": {"S": f"P#{program_id}#M#demo-shopper-"},
        },
    )
    for page in pages:
        for item in page.get("Items", []):
            attributes = {name: deserializer.deserialize(value) for name, value in item.items()}
            tier = tier_for(window_points(attributes, now.date(), program), program)
            counts[tier.name if tier is not None else "none"] += 1
    return counts


def _round_up(rng: random.Random, causes: list[str]) -> dict[str, Any]:
    """A tenth of the orders round up to the next dollar or two for a cause (OrderCompleted's
    ``roundUp``)."""
    if not causes or rng.random() >= 0.1:
        return {}
    cents = rng.randint(1, 199)
    return {"roundUp": {**_money(cents / 100), "causeId": rng.choice(causes)}}


def _campaigns(events_log: Path, offset: int) -> tuple[Counter[str], Counter[str]]:
    """What the campaigns paid, from the published events: (rewards by campaign, points by
    campaign), donations included (``giving``: the donations and the company's match in cents)."""
    rewards: Counter[str] = Counter()
    points: Counter[str] = Counter()
    if not events_log.exists():
        return rewards, points
    with events_log.open("rb") as log:
        log.seek(offset)
        for line in log:
            try:
                event = json.loads(line)["event"]
                kind, detail = event["detail-type"], event["detail"]
                if kind in ("CampaignRewarded", "CampaignRewardReversed"):
                    sign = 1 if kind == "CampaignRewarded" else -1
                    rewards[str(detail["campaignId"])] += sign
                    points[str(detail["campaignId"])] += sign * int(detail["points"])
                elif kind in ("DonationMade", "DonationReversed"):
                    sign = 1 if kind == "DonationMade" else -1
                    rewards[f"{detail['campaignId']} ({detail['source']})"] += sign
                    amount, matched = detail["amount"]["amount"], detail["matched"]["amount"]
                    points["donated cents"] += sign * round(100 * float(amount))
                    points["matched cents"] += sign * round(100 * float(matched))
            except (ValueError, KeyError, TypeError):
                continue
    return rewards, points


def _customers(
    stack: Mapping[str, Any], table: str, now: datetime
) -> tuple[Counter[str], Counter[str]]:
    """The demo customers in the customer program: (members by status and plan, points)."""
    from shared.domain.customer import points_standing  # noqa: PLC0415

    program = load_program(CUSTOMER_PROGRAM)
    client = _dynamodb(stack)
    deserializer = TypeDeserializer()
    members: Counter[str] = Counter()
    points: Counter[str] = Counter()
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="sk = :member AND begins_with(pk, :prefix)",
        ExpressionAttributeValues={
            ":member": {"S": "MEMBER"},
            ":prefix": {"S": f"P#{CUSTOMER_PROGRAM}#M#demo-customer-"},
        },
    )
    for page in pages:
        for item in page.get("Items", []):
            attributes = {name: deserializer.deserialize(value) for name, value in item.items()}
            standing = points_standing(program, attributes, now)
            status = standing.status.name if standing.status is not None else "no status"
            plan = f" + {standing.plan.name or standing.plan.id}" if standing.plan else ""
            members[f"{status}{plan}"] += 1
            points["available"] += standing.available
            points["pending"] += standing.pending
            points["held"] += standing.held
            if attributes.get("birthday"):
                points["profiles"] += 1
            if any(str(name).startswith("xp") for name in attributes):
                points["birthday gifts"] += 1
    return members, points


def _published(events_log: Path, offset: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not events_log.exists():
        return counts
    with events_log.open("rb") as log:
        log.seek(offset)
        for line in log:
            try:
                counts[json.loads(line)["event"]["detail-type"]] += 1
            except (ValueError, KeyError):
                continue
    return counts


def _table(title: str, counts: Mapping[str, int]) -> None:
    print(title)
    if not counts:
        print("  (none)")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {count:>7}")


def _send(
    client: Any, events: Iterator[tuple[datetime, dict[str, Any]]], bus: str
) -> tuple[int, int]:
    """PutEvents, 10 entries a call; (sent, refused)."""
    sent = failed = 0
    batch: list[dict[str, Any]] = []
    for _, entry in events:
        batch.append({**entry, "EventBusName": bus})
        if len(batch) == 10:
            failed += client.put_events(Entries=batch).get("FailedEntryCount", 0)
            sent += len(batch)
            batch.clear()
            if sent % 2000 == 0:
                print(f"  sent {sent} events", flush=True)
    if batch:
        failed += client.put_events(Entries=batch).get("FailedEntryCount", 0)
        sent += len(batch)
    return sent, failed


def run_demo(
    endpoint: str, *, members: int = 200, seed: int = 7, days: int = 90, timeout: float = 900.0
) -> int:
    try:
        stack = _get(endpoint, "/_local/stack")
    except OSError as error:
        print(f"error: no local stack answers at {endpoint} ({error}); start it with `make run`")
        return 1
    bus = _app_setting(stack, "EVENT_BUS_NAME", "default")
    table = _app_setting(stack, "TABLE_NAME", "")
    program_id = _app_setting(stack, "PROGRAM_ID", "cart-star")
    events_log = Path(stack["eventsLog"])
    offset = events_log.stat().st_size if events_log.exists() else 0
    before = _get(endpoint, "/_local/stats")
    now = datetime.now(UTC).replace(microsecond=0)
    client = boto3.client(
        "events",
        endpoint_url=stack["awsEndpoint"],
        region_name=stack.get("region", "us-east-1"),
        aws_access_key_id="demo",
        aws_secret_access_key="demo",  # noqa: S106 - the local stack ignores it
    )
    print(f"demo: {members} shoppers, {days} days of history, onto bus {bus} at {endpoint}")
    began = time.monotonic()
    sent, failed = _send(client, generate(members, seed=seed, days=days, now=now), bus)
    print(f"sent {sent} events in {time.monotonic() - began:.1f}s ({failed} refused); waiting...")
    done = _wait_idle(endpoint, timeout)
    after = _get(endpoint, "/_local/stats")
    state = "processed" if done else f"NOT finished after {timeout:.0f}s"
    print(f"{state} in {time.monotonic() - began:.1f}s\n")
    if table:
        tiers = _tiers(stack, table, program_id, now)
        total = sum(tiers.values()) or 1
        print(f"Tiers today (90-day window points of each member item in {table}):")
        for name in ("Diamond", "Platinum", "Gold", "none"):
            count = tiers.get(name, 0)
            print(f"  {name:<9} {count:>5}  {'#' * round(40 * count / total)}")
        print()
        customers, points = _customers(stack, table, now)
        _table(f"Customers in {CUSTOMER_PROGRAM} (status this year, plan):", customers)
        value = load_program(CUSTOMER_PROGRAM).points
        worth = points["available"] * (value.value if value else 0)
        print(
            f"  points: {points['available']:,} available (${worth:,.2f}), "
            f"{points['pending']:,} pending, {points['held']:,} held"
        )
        print(
            f"  birthdays: {points['profiles']:,} profiles, {points['birthday gifts']:,} gifts of "
            "500 points paid today (the 5-minute schedule's sweep pays the rest of today's)\n"
        )
    rewards, paid = _campaigns(events_log, offset)
    _table("Campaigns paid (net of reversals, from the published events):", rewards)
    spent = [f"{name} {count:,}" for name, count in sorted(paid.items()) if "cents" not in name]
    print("  points: " + (", ".join(spent) or "none"))
    print(
        f"  giving: ${paid['donated cents'] / 100:,.2f} given, "
        f"${paid['matched cents'] / 100:,.2f} matched by the company\n"
    )
    events_before, events_after = before["events"], after["events"]
    _table("Events routed to functions:", _delta(events_after["routed"], events_before["routed"]))
    _table(
        "Events no rule routed (no function subscribes yet):",
        _delta(events_after["unrouted"], events_before["unrouted"]),
    )
    _table(f"Events published by the functions ({events_log}):", _published(events_log, offset))
    invocations = {
        name: value["invocations"] - before["functions"].get(name, {}).get("invocations", 0)
        for name, value in after["functions"].items()
    }
    errors = {
        name: value["errors"] - before["functions"].get(name, {}).get("errors", 0)
        for name, value in after["functions"].items()
    }
    print("Function invocations (errors):")
    for name, count in sorted(invocations.items()):
        print(f"  {name:<28} {count:>7} ({errors[name]})")
    return 0 if done and not failed else 1
