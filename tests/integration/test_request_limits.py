"""The per-member request limit on the routes that write for a member, on DynamoDB Local: a
minute's and a day's count in one item, never more admitted than the limit under concurrent
requests, a 429 with Retry-After through the handler, and what a request costs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from shared import composition
from shared.dal.perks import PerkRepository
from shared.domain.errors import RateLimited
from shared.domain.keys import limit_sk, member_pk
from shared.domain.program import Program
from shared.logic.limits import admit_member_request
from shared.programs import load_program
from tests.integration.test_perks_helpers import apps, call, http, seed_member

__all__ = ["apps"]  # a fixture, imported for pytest

NOW = datetime(2026, 12, 4, 10, 15, 30, tzinfo=UTC)


def limited(per_minute: int, per_day: int) -> Program:
    program = load_program("cart-star")
    limits = program.limits.model_copy(
        update={"member_requests_per_minute": per_minute, "member_requests_per_day": per_day}
    )
    return program.model_copy(update={"limits": limits})


@pytest.fixture
def store(table_name: str, monkeypatch: pytest.MonkeyPatch) -> PerkRepository:
    monkeypatch.setenv("TABLE_NAME", table_name)
    composition.reset()
    return composition.perk_repository()


def admitted(store: PerkRepository, program: Program, member: str, at: datetime) -> bool:
    try:
        admit_member_request(member, at, program, store)
    except RateLimited:
        return False
    return True


def test_a_minute_and_a_day_each_admit_their_limit(store: PerkRepository) -> None:
    program = limited(per_minute=3, per_day=5)
    first_minute = [admitted(store, program, "ann", NOW + timedelta(seconds=i)) for i in range(5)]
    assert first_minute == [True, True, True, False, False]
    # The next minute starts a new count, until the day's 5 are used.
    later = NOW + timedelta(minutes=1)
    assert [admitted(store, program, "ann", later) for _ in range(3)] == [True, True, False]
    with pytest.raises(RateLimited) as refused:
        admit_member_request("ann", later + timedelta(minutes=5), program, store)
    assert refused.value.retry_after == 13 * 3600 + 38 * 60 + 30  # to 00:00 UTC
    # Another member, and the next UTC day, count apart.
    assert admitted(store, program, "bob", later)
    assert admitted(store, program, "ann", datetime(2026, 12, 5, 0, 0, 1, tzinfo=UTC))
    item = store.client.get_item(
        TableName=store.table_name,
        Key={"pk": {"S": member_pk(program.id, "ann")}, "sk": {"S": limit_sk("2026-12-04")}},
    )["Item"]
    assert (item["n"]["N"], item["mw"]["S"], item["mn"]["N"]) == ("5", "10:16", "2")
    assert int(item["expiresAt"]["N"]) == int(datetime(2026, 12, 7, tzinfo=UTC).timestamp())


def test_concurrent_requests_never_pass_the_limit(store: PerkRepository) -> None:
    program = limited(per_minute=20, per_day=1000)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: admitted(store, program, "cy", NOW), range(48)))
    assert results.count(True) == 20


def test_what_a_request_costs(store: PerkRepository) -> None:
    program = limited(per_minute=20, per_day=1000)
    store.meter.reset()
    admit_member_request("dee", NOW, program, store)
    assert (store.meter.calls, store.meter.write_units) == (1, 1.0)  # a minute's first
    # The next ones in the same minute: the first write is refused (DynamoDB bills a refused
    # conditional write as a write, but reports no ConsumedCapacity with the refusal), the
    # second counts.
    store.meter.reset()
    admit_member_request("dee", NOW, program, store)
    assert (store.meter.calls, store.meter.write_units) == (2, 1.0)


def test_the_route_answers_429_with_retry_after(
    apps: dict[str, ModuleType], table_name: str, ddb_client: Any
) -> None:
    seed_member(ddb_client, table_name, "eve", tier="diamond")
    app = apps["perk_redemption"]
    per_minute = load_program("cart-star").limits.member_requests_per_minute
    statuses = []
    for index in range(per_minute + 1):
        event = http(
            "DELETE",
            f"/v1/me/redemptions/01ARZ3NDEKTSV4RRFFQ69G5F{index:02d}",
            sub="eve",
            at=NOW,
            route="DELETE /v1/me/redemptions/{redemptionId}",
        )
        status, body, headers = call(app, event)
        statuses.append(status)
    assert statuses[:per_minute] == [404] * per_minute, statuses
    assert statuses[-1] == 429
    assert body["error"]["code"] == "rate_limited" and "a minute" in body["error"]["message"]
    assert headers["Retry-After"] == "30"
    later = http(
        "DELETE",
        "/v1/me/redemptions/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        sub="eve",
        at=NOW + timedelta(seconds=30),
        route="DELETE /v1/me/redemptions/{redemptionId}",
    )
    assert call(app, later)[0] == 404
