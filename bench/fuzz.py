"""Benchmark: schemathesis fuzzes every operation of docs/openapi.json against the local stack.

Starts DynamoDB Local and the local stack (``samlite serve`` on free loopback ports, the
repository's template), then, for every operation of the OpenAPI document, sends ``CASES``
generated requests: half of them valid by the document (positive), half of them broken in one
place (negative: a parameter of the wrong type or pattern, a body missing a field, ...). Each
goes with the credentials its route asks for, so that it reaches the function rather than stop
at the gateway: a member's token (one of a pool of members of every program, so that the
per-member request limit does not answer every write), an administrator's token (scope
``loyalty/admin``), or a SigV4 signature of the exact request for the IAM service routes.

Every answer must pass schemathesis' checks:
- ``not_a_server_error``: no 5xx (bad input is a 4xx naming the field, never a 5xx);
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the content type is the documented one;
- ``response_schema_conformance``: the body matches the documented schema of that status.

An operation without inputs (``GET /v1/me``) has nothing to vary but the caller, so it gets as
many cases as distinct callers; hypothesis stops once it has seen every input it can make.

Run: ``python -m bench.fuzz`` (part of ``make bench``): writes bench/results/fuzz.json (cases,
answers and failures per operation) and, with ``--update-readme README.md``, the README's
figures; ``--cases N`` for another count. tests/integration/test_fuzz.py runs the same with a
few cases per operation in every test run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import jwt
import requests
import schemathesis
from samlite.auth import load_key_pair, mint_token
from samlite.testing import RunningStack, http, running_stack, signed_headers
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench import common
from infra.ddb_local import DynamoDBLocal
from shared.programs import all_programs

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
OPENAPI = ROOT / "docs" / "openapi.json"
CASES = 500
"""Cases per operation (half positive, half negative) in the bench."""
MEMBERS_PER_PROGRAM = 12
CART, CUSTOMERS = "cart-star", "customer-rewards"
ADMINS = 12
SEEDED = 0.7
"""How often a valid case gets a seeded value for a parameter or field that has some."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
TIMEOUT_S = 30


def audience() -> str:
    """Every program's audience: the authorizer accepts each (a member of any program)."""
    return ",".join(program.app_audience for program in all_programs())


@contextlib.contextmanager
def stack() -> Iterator[RunningStack]:
    """DynamoDB Local and the local stack, in memory, accepting every program's tokens."""
    with (
        tempfile.TemporaryDirectory() as state,
        DynamoDBLocal() as dynamodb,
        running_stack(
            TEMPLATE,
            Path(state),
            dynamodb.endpoint,
            "--in-memory",
            "--parameter",
            f"JwtAudience={audience()}",
            cwd=ROOT,
        ) as running,
    ):
        yield running


class SigV4(requests.auth.AuthBase):
    """Signs the request as it goes on the wire (its final URL, query and body), as a service
    caller with execute-api:Invoke does."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):  # a streamed body: schemathesis sends none
            raise TypeError("cannot sign a streamed body")
        signed = signed_headers(str(request.method), str(request.url), body)
        for name, value in signed.items():
            if name.lower() != "content-type":
                request.headers[name] = value
        return request


@dataclass
class Callers:
    """The callers of each security scheme of the document: mostly the ones the gateway admits
    (a pool of members' tokens of every program, administrators' tokens, the SigV4 signer), and
    a few it refuses (no token, an expired one, a member on an admin route, an unsigned service
    request), whose 401 and 403 must be the ones the document describes too."""

    members: list[str]
    admins: list[str]
    expired: str

    @classmethod
    def of(cls, running: RunningStack) -> Callers:
        """Tokens signed with the stack's key, as ``samlite token`` signs them (which costs a
        read of the template per token): its first one gives the issuer."""
        accepted = ("--parameter", f"JwtAudience={audience()}")
        first = running.token(*accepted, "--sub", "fuzz-admin-0", "--scope", "loyalty/admin")
        issuer = jwt.decode(first, options={"verify_signature": False})["iss"]
        keys = load_key_pair(running.state_dir)

        def token(sub: str, aud: str, scopes: tuple[str, ...] = (), ttl: int = 3600) -> str:
            return mint_token(
                keys, subject=sub, issuer=issuer, audience=aud, scopes=scopes, ttl_seconds=ttl
            )

        programs = all_programs()
        members = [
            token(f"fuzz-{index}-{program.id}", program.app_audience)
            for program in programs
            for index in range(MEMBERS_PER_PROGRAM)
        ]
        admin = programs[0].app_audience
        admins = [first] + [
            token(f"fuzz-admin-{index}", admin, ("loyalty/admin",)) for index in range(1, ADMINS)
        ]
        return cls(members, admins, token("fuzz-late", admin, ttl=-60))

    def choices(self, scheme: str) -> list[dict[str, Any]]:
        """What a request may be sent with (headers, a requests auth), to pick from with a plain
        RNG: hypothesis would favour the first ones, and one member would meet its request
        limit (429) on every write."""

        def bearer(token: str) -> dict[str, Any]:
            return {"headers": {"authorization": f"Bearer {token}"}}

        refused: list[dict[str, Any]] = [{}, bearer(self.expired)]
        if scheme == "memberJwt":
            admitted = [bearer(token) for token in self.members]
        elif scheme == "adminJwt":
            admitted = [bearer(token) for token in self.admins]
            refused = [*refused, bearer(self.members[0])]
        elif scheme == "serviceIam":
            admitted = [{"auth": SigV4()}] * ADMINS
            refused = [*refused, bearer(self.members[0])]
        else:
            raise ValueError(f"no caller for the security scheme {scheme!r}")
        return admitted + refused


@dataclass
class Outcome:
    """What one operation's fuzzing found."""

    cases: Counter[str] = field(default_factory=Counter)
    """cases sent, by generation mode"""
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    """failure title -> count and the first example (status, message, curl)"""
    seconds: float = 0.0

    def fail(self, title: str, status: int | None, message: str, curl: str) -> None:
        known = self.failures.setdefault(
            title, {"count": 0, "status": status, "message": message[:2000], "curl": curl}
        )
        known["count"] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": sum(self.cases.values()),
            "by_mode": dict(self.cases),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": self.failures,
            "seconds": round(self.seconds, 1),
        }


def load_schema(base_url: str) -> Any:
    """docs/openapi.json as schemathesis reads it, aimed at ``base_url``."""
    schema = schemathesis.openapi.from_path(OPENAPI)
    schema.config.update(base_url=base_url)
    return schema


def operations(schema: Any) -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


Known = dict[str, list[Any]]
"""Seeded values by parameter or body field name, which valid cases use (odds ``SEEDED``)."""


def seed_data(running: RunningStack, now: datetime) -> Known:
    """Give the pool's members something to read and act on, through the service routes: an
    order of a month ago (points available), a recent order and its rating, and a checkout hold.
    Random ids would meet only 404s; the seeded ones lead the valid cases past them."""
    ratings: list[str] = []
    orders: list[str] = []
    shoppers = [f"fuzz-{index}-{CART}" for index in range(MEMBERS_PER_PROGRAM)]
    customers = [f"fuzz-{index}-{CUSTOMERS}" for index in range(MEMBERS_PER_PROGRAM)]

    def post(path: str, document: dict[str, Any], *, accepted: tuple[int, ...]) -> None:
        url = running.http + path
        body = json.dumps(document).encode()
        status, _, answer = http("POST", url, headers=signed_headers("POST", url, body), body=body)
        if status not in accepted:
            raise RuntimeError(f"seeding {path}: {status} {answer}")

    for index, (shopper, customer) in enumerate(zip(shoppers, customers, strict=True)):
        for order, completed in ((f"fuzz-old-{index}", 30), (f"fuzz-new-{index}", 2)):
            detail = {
                "orderId": order,
                "memberId": shopper,
                "customerId": customer,
                "completedAt": (now - timedelta(days=completed)).isoformat(),
                "batchSize": 1,
                "total": {"amount": "1000.00", "currency": "USD"},
                "tip": {"amount": "20.00", "currency": "USD"},
            }
            post("/v1/events", {"detail-type": "OrderCompleted", "detail": detail}, accepted=(200,))
            orders.append(order)
        rating_id = f"fuzz-rating-{index}"
        rating = {
            "ratingId": rating_id,
            "orderId": f"fuzz-new-{index}",
            "memberId": shopper,
            "customerId": customer,
            "stars": 1 + index % 5,
            "reasons": [],
            "submittedAt": (now - timedelta(days=1)).isoformat(),
        }
        post(
            "/v1/events/ratings",
            {"detail-type": "RatingSubmitted", "source": "fuzz", "detail": rating},
            accepted=(200,),
        )
        ratings.append(rating_id)
        post(
            f"/v1/members/{customer}/holds?programId={CUSTOMERS}",
            {"orderId": f"fuzz-hold-{index}", "points": 500},
            accepted=(201,),
        )
        orders.append(f"fuzz-hold-{index}")
    running.wait_idle(timeout=120)
    programs = all_programs()
    return {
        "memberId": shoppers + customers,
        "ratingId": ratings,
        "orderId": orders,
        # The customer program twice: the one whose points can be held.
        "programId": [CART, CUSTOMERS, CUSTOMERS],
        "points": [500, 1000, 1500],
        "perkId": sorted({perk.id for program in programs for perk in program.perks}),
    }


def _use_known(case: Any, known: Known, rng: random.Random, query: list[str]) -> None:
    """Put seeded values in place of generated ones (each with odds ``SEEDED``), and in an optional
    query parameter left out (``programId``: the default program holds no points); valid cases
    only: the seeded values are valid, and a broken case must stay broken where it was."""
    if query and case.query is None:
        case.query = {}
    for container, extra in ((case.path_parameters, []), (case.query, query), (case.body, [])):
        if not isinstance(container, dict):
            continue
        for name in dict.fromkeys([*container, *extra]):
            if name in known and rng.random() < SEEDED:
                container[name] = rng.choice(known[name])


def fuzz_operation(
    operation: Any,
    base_url: str,
    callers: Callers,
    cases: int,
    seed: int = 0,
    session: requests.Session | None = None,
    known: Known | None = None,
) -> Outcome:
    """Send up to ``cases`` generated requests (half positive, half negative) to ``operation``,
    run the checks on each answer, and collect what failed (the run goes on after a failure,
    so that the counts cover every case)."""
    outcome = Outcome()
    started = time.monotonic()
    raw = operation.schema.raw_schema["paths"][operation.path][operation.method.lower()]
    schemes = [name for requirement in raw.get("security", []) for name in requirement]
    choices = callers.choices(schemes[0]) if schemes else [{}]
    query = [p["name"] for p in raw.get("parameters", []) if p["in"] == "query"]
    rng = random.Random(seed)
    session = session or requests.Session()
    for mode in MODES:
        strategy = operation.as_strategy(generation_mode=mode)

        @hypothesis.settings(
            max_examples=max(1, cases // len(MODES)),
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
        )
        @hypothesis.seed(seed)
        @hypothesis.given(strategy)
        def run(case: Any) -> None:
            how = rng.choice(choices)
            generated = case.meta.generation.mode.value if case.meta else "?"
            if known and generated == schemathesis.GenerationMode.POSITIVE.value:
                _use_known(case, known, rng, query)
            outcome.cases[generated] += 1
            try:
                response = case.call(
                    base_url=base_url,
                    session=session,
                    headers=dict(how.get("headers", {})),
                    auth=how.get("auth"),
                    timeout=TIMEOUT_S,
                )
            except requests.RequestException as error:
                outcome.fail(f"no answer: {type(error).__name__}", None, str(error), "")
                return
            outcome.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                curl = case.as_curl_command(headers=dict(response.request.headers))
                for failure in group.exceptions:
                    outcome.fail(failure.title, response.status_code, failure.message, curl)

        # Nothing to negate (an operation without inputs): the positive cases cover it.
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            run()
    outcome.seconds = time.monotonic() - started
    return outcome


def fuzz(running: RunningStack, cases: int, seed: int = 0) -> dict[str, Any]:
    schema = load_schema(running.http)
    callers = Callers.of(running)
    known = seed_data(running, datetime.now(UTC))
    session = requests.Session()
    by_operation = {
        label(operation): fuzz_operation(
            operation, running.http, callers, cases, seed, session, known
        )
        for operation in operations(schema)
    }
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "schemathesis": schemathesis.__version__,
        "cases_asked_per_operation": cases,
        "operations": {name: outcome.as_dict() for name, outcome in by_operation.items()},
    }


def run(cases: int = CASES, seed: int = 0) -> dict[str, Any]:
    with stack() as running:
        return fuzz(running, cases, seed)


def table(results: dict[str, Any]) -> str:
    operations_ = results["operations"]
    rows = ["| operation | cases | answers | failures |", "|---|---|---|---|"]
    for name, figures in operations_.items():
        answers = ", ".join(f"{s}: {n}" for s, n in figures["statuses"].items())
        failed = sum(f["count"] for f in figures["failures"].values())
        rows.append(f"| {name} | {figures['cases']:,} | {answers} | {failed} |")
    total = sum(f["cases"] for f in operations_.values())
    failures = Counter(
        title
        for figures in operations_.values()
        for title, found in figures["failures"].items()
        for _ in range(found["count"])
    )
    server_errors = sum(
        n
        for figures in operations_.values()
        for s, n in figures["statuses"].items()
        if int(s) >= 500
    )
    rows += [
        "",
        f"{len(operations_)} operations, {total:,} cases "
        f"(up to {results['cases_asked_per_operation']} each, half of them invalid input): "
        f"**{sum(failures.values())} failed checks**, {server_errors} answers 5xx. "
        f"schemathesis {results['schemathesis']}, `python -m bench.fuzz`, {results['date']}.",
    ]
    for title, count in failures.most_common():
        rows.append(f"- {title}: {count}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=CASES, help="cases per operation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-readme", type=Path, help="README whose figures to replace")
    args = parser.parse_args()
    results = run(args.cases, args.seed)
    out = common.RESULTS / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    block = table(results)
    print(block)
    if args.update_readme:
        common.update_readme(args.update_readme, "fuzz", block)


if __name__ == "__main__":
    main()
