"""The ``loyalty`` command (``uv run loyalty ...``).

::

    loyalty token --sub MEMBER_ID [--scope loyalty/admin] [--ttl 3600]
    loyalty local serve [--fresh] [--http-port 3000] [--events-port 3001] [--dynamodb-port 8000]
    loyalty local fire FUNCTION [--time ISO] [--schedule NAME]
    loyalty local demo [--members 200] [--seed 7]
    loyalty local status

``token`` prints a JWT that the local stack's authorizer accepts (signed with the key under
``.local/jwt``; issuer and audience from the template's JWT authorizer, or the local defaults).
The ``local`` commands other than ``serve`` talk to a running stack (``make run``) through its
endpoint on 127.0.0.1:3001.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.local.auth import load_key_pair, mint_token
from infra.local.demo import run_demo
from infra.local.stack import StackConfig, serve
from infra.local.template import read_stack

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_STATE = REPO_ROOT / ".local"
DEFAULT_ENDPOINT = "http://127.0.0.1:3001"
DEFAULT_CONCURRENCY = max(2, min(4, (os.cpu_count() or 2) // 2))


def _parameters(values: Sequence[str]) -> dict[str, str]:
    parameters = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"--parameter takes NAME=VALUE, got {value!r}")
        parameters[name] = text
    return parameters


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="SAM template")
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE, help="local state (default .local)"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override (repeatable)",
    )


def _endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=DEFAULT_ENDPOINT,
        help=f"the running stack's AWS endpoint (default {DEFAULT_ENDPOINT})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description="Loyalty engine tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "recalc",
        help="full tier recalculation: start | status | resume (see docs/tiers-recalculation.md)",
    )

    token = commands.add_parser("token", help="print a JWT the local HTTP API accepts")
    token.add_argument("--sub", required=True, help="the member id (the token's subject)")
    token.add_argument(
        "--scope", action="append", default=[], help="a scope, e.g. loyalty/admin (repeatable)"
    )
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--authorizer", default=None, help="JWT authorizer name, if several")
    _common(token)

    local = commands.add_parser("local", help="the local stack").add_subparsers(
        dest="local_command", required=True
    )
    serve = local.add_parser("serve", help="run the local stack in the foreground (make run)")
    _common(serve)
    serve.add_argument("--http-port", type=int, default=3000)
    serve.add_argument("--events-port", type=int, default=3001)
    serve.add_argument("--dynamodb-port", type=int, default=8000, help="0: a free port")
    serve.add_argument("--dynamodb-endpoint", default=None, help="use this DynamoDB instead")
    serve.add_argument("--in-memory", action="store_true", help="keep no data between runs")
    serve.add_argument("--fresh", action="store_true", help="start with an empty table")
    serve.add_argument("--stack-name", default="loyalty-local")
    serve.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"execution environments per function (default {DEFAULT_CONCURRENCY})",
    )
    serve.add_argument("--async-retry-delay", type=float, default=1.0)
    serve.add_argument("--verbose", action="store_true", help="print function logs too")
    serve.add_argument("--ready-file", type=Path, default=None, help="written once serving")

    fire = local.add_parser("fire", help="fire a function's schedule now, at an event time")
    fire.add_argument("function", help="logical id, function name or code folder")
    fire.add_argument("--time", default=None, help="the event's time (ISO 8601; default now)")
    fire.add_argument("--schedule", default=None, help="the schedule's event name, if several")
    _endpoint(fire)

    demo = local.add_parser("demo", help="feed the running stack a synthetic marketplace")
    demo.add_argument("--members", type=int, default=200)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--days", type=int, default=90, help="history length in days")
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the end")
    _endpoint(demo)

    status = local.add_parser("status", help="describe the running stack and its counters")
    _endpoint(status)
    return parser


def _request(endpoint: str, path: str, body: Any = None) -> Any:
    url = endpoint.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a loopback URL given by the user
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", error.reason)
        raise SystemExit(f"error: {detail}") from error
    except urllib.error.URLError as error:
        raise SystemExit(
            f"error: no local stack answers at {endpoint} ({error.reason}); "
            "start it with `make run`"
        ) from error


def _token(args: argparse.Namespace) -> int:
    model = read_stack(args.template, parameters=_parameters(args.parameter))
    authorizers = {r.authorizer.name: r.authorizer for r in model.routes if r.authorizer}
    if args.authorizer is not None:
        if args.authorizer not in authorizers:
            raise SystemExit(f"error: no JWT authorizer {args.authorizer!r} in the template")
        authorizer = authorizers[args.authorizer]
    elif len(authorizers) > 1:
        raise SystemExit(f"error: pick one with --authorizer: {', '.join(sorted(authorizers))}")
    elif authorizers:
        authorizer = next(iter(authorizers.values()))
    else:
        raise SystemExit("error: no route of the template uses a JWT authorizer")
    keys = load_key_pair(args.state_dir)
    print(
        mint_token(
            keys,
            subject=args.sub,
            issuer=authorizer.issuer,
            audience=authorizer.audience[0],
            scopes=args.scope,
            ttl_seconds=args.ttl,
        )
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = StackConfig(
        template=args.template,
        state_dir=args.state_dir,
        http_port=args.http_port,
        events_port=args.events_port,
        dynamodb_port=args.dynamodb_port,
        dynamodb_endpoint=args.dynamodb_endpoint,
        in_memory=args.in_memory,
        fresh=args.fresh,
        stack_name=args.stack_name,
        parameters=_parameters(args.parameter),
        concurrency=args.concurrency,
        verbose=args.verbose,
        async_retry_delay=args.async_retry_delay,
    )
    return serve(config, args.ready_file)


def _fire(args: argparse.Namespace) -> int:
    body = {"function": args.function, "schedule": args.schedule, "time": args.time}
    outcome = _request(args.endpoint, "/_local/fire", body)
    print(json.dumps(outcome, indent=2))
    return 0 if outcome.get("ok") else 1


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["recalc"]:
        # Full tier recalculation: start / status / resume (its own parser, infra/recalc.py).
        from infra import recalc  # noqa: PLC0415 (boto3-heavy; only this command needs it)

        return recalc.main(arguments[1:])
    args = _parser().parse_args(arguments)
    if args.command == "token":
        return _token(args)
    if args.local_command == "serve":
        return _serve(args)
    if args.local_command == "fire":
        return _fire(args)
    if args.local_command == "demo":
        return run_demo(
            args.endpoint,
            members=args.members,
            seed=args.seed,
            days=args.days,
            timeout=args.timeout,
        )
    print(
        json.dumps(
            {
                **_request(args.endpoint, "/_local/stack"),
                "stats": _request(args.endpoint, "/_local/stats"),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
