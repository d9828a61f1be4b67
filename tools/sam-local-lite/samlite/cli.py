"""The ``samlite`` command (``python -m samlite ...``).

::

    samlite serve [--template template.yaml] --dynamodb-endpoint URL [--http-port 3000]
                  [--events-port 3001] [--fresh] [--parameter NAME=VALUE] ...
    samlite token --sub SUBJECT [--scope SCOPE] [--ttl 3600] [--authorizer NAME]
    samlite fire FUNCTION [--time ISO] [--schedule NAME] [--endpoint URL]
    samlite status [--endpoint URL]

``serve`` runs the stack in the foreground. ``token`` prints a JWT that the stack's authorizer
accepts (signed with the key under ``<state dir>/jwt``; issuer and audience from the template's
JWT authorizer, or the local defaults). ``fire`` and ``status`` talk to a running stack through
its AWS endpoint (``/_local/`` routes).

A project embeds the same commands under its own name with :func:`parser` and :func:`run`,
giving its defaults (:class:`Defaults`) and a :class:`~.stack.DynamoDBStarter` that starts its
DynamoDB Local (then ``serve`` takes ``--dynamodb-port`` instead of requiring an endpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import load_key_pair, mint_token
from .stack import DynamoDBStarter, StackConfig, serve
from .template import read_stack

__all__ = ["Defaults", "main", "parser", "run"]

DEFAULT_ENDPOINT = "http://127.0.0.1:3001"
DEFAULT_CONCURRENCY = max(2, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class Defaults:
    template: Path = Path("template.yaml")
    state_dir: Path = Path(".samlite")
    stack_name: str = "local"
    parameters: tuple[tuple[str, str], ...] = ()
    """Template parameters a project sets locally (``--parameter`` overrides each)."""


def _parameters(values: Sequence[str]) -> dict[str, str]:
    parameters = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"--parameter takes NAME=VALUE, got {value!r}")
        parameters[name] = text
    return parameters


def _stack_parameters(args: argparse.Namespace) -> dict[str, str]:
    """The project's local parameters, then the command line's ``--parameter`` overrides."""
    defaults = dict(getattr(args, "default_parameters", ()))
    return {**defaults, **_parameters(args.parameter)}


def _common(parser: argparse.ArgumentParser, defaults: Defaults) -> None:
    parser.set_defaults(default_parameters=defaults.parameters)
    parser.add_argument("--template", type=Path, default=defaults.template, help="SAM template")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=defaults.state_dir,
        help=f"local state (default {defaults.state_dir})",
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


def parser(
    prog: str = "samlite", defaults: Defaults = Defaults(), *, starts_dynamodb: bool = False
) -> tuple[argparse.ArgumentParser, Any]:
    """The command's parser and its subparsers (to add a project's own commands to)."""
    root = argparse.ArgumentParser(prog=prog, description="A SAM template served locally.")
    commands = root.add_subparsers(dest="command", required=True)

    serve_ = commands.add_parser("serve", help="run the local stack in the foreground")
    _common(serve_, defaults)
    serve_.add_argument("--http-port", type=int, default=3000, help="0: a free port")
    serve_.add_argument("--events-port", type=int, default=3001, help="0: a free port")
    if starts_dynamodb:
        serve_.add_argument("--dynamodb-port", type=int, default=8000, help="0: a free port")
        serve_.add_argument("--dynamodb-endpoint", default=None, help="use this DynamoDB instead")
    else:
        serve_.add_argument(
            "--dynamodb-endpoint", required=True, help="a running DynamoDB Local (with streams)"
        )
    serve_.add_argument("--in-memory", action="store_true", help="keep no data between runs")
    serve_.add_argument("--fresh", action="store_true", help="start with an empty table")
    serve_.add_argument("--stack-name", default=defaults.stack_name)
    serve_.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"execution environments per function (default {DEFAULT_CONCURRENCY})",
    )
    serve_.add_argument("--async-retry-delay", type=float, default=1.0)
    serve_.add_argument("--verbose", action="store_true", help="print function logs too")
    serve_.add_argument("--ready-file", type=Path, default=None, help="written once serving")

    token = commands.add_parser("token", help="print a JWT the local HTTP API accepts")
    token.add_argument("--sub", required=True, help="the token's subject")
    token.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--authorizer", default=None, help="JWT authorizer name, if several")
    token.add_argument(
        "--audience", default=None, help="the token's aud (default: the authorizer's first)"
    )
    _common(token, defaults)

    fire = commands.add_parser("fire", help="fire a function's schedule now, at an event time")
    fire.add_argument("function", help="logical id, function name or code folder")
    fire.add_argument("--time", default=None, help="the event's time (ISO 8601; default now)")
    fire.add_argument("--schedule", default=None, help="the schedule's event name, if several")
    _endpoint(fire)

    status = commands.add_parser("status", help="describe the running stack and its counters")
    _endpoint(status)
    return root, commands


def request(endpoint: str, path: str, body: Any = None) -> Any:
    """GET (or POST ``body`` as JSON to) a control route of a running stack."""
    url = endpoint.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - a loopback URL given by the user
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=600) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", error.reason)
        raise SystemExit(f"error: {detail}") from error
    except urllib.error.URLError as error:
        raise SystemExit(
            f"error: no local stack answers at {endpoint} ({error.reason}); is it running?"
        ) from error


def _token(args: argparse.Namespace) -> int:
    model = read_stack(args.template, parameters=_stack_parameters(args))
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
    audience = args.audience or authorizer.audience[0]
    if audience not in authorizer.audience:
        accepted = ", ".join(authorizer.audience)
        raise SystemExit(
            f"error: the authorizer accepts the audiences {accepted}, not {audience!r}"
        )
    keys = load_key_pair(args.state_dir)
    print(
        mint_token(
            keys,
            subject=args.sub,
            issuer=authorizer.issuer,
            audience=audience,
            scopes=args.scope,
            ttl_seconds=args.ttl,
        )
    )
    return 0


def _serve(args: argparse.Namespace, dynamodb_starter: DynamoDBStarter | None) -> int:
    config = StackConfig(
        template=args.template,
        state_dir=args.state_dir,
        http_port=args.http_port,
        events_port=args.events_port,
        dynamodb_endpoint=args.dynamodb_endpoint,
        dynamodb_starter=dynamodb_starter,
        dynamodb_port=getattr(args, "dynamodb_port", 0),
        in_memory=args.in_memory,
        fresh=args.fresh,
        stack_name=args.stack_name,
        parameters=_stack_parameters(args),
        concurrency=args.concurrency,
        verbose=args.verbose,
        async_retry_delay=args.async_retry_delay,
    )
    return serve(config, args.ready_file)


def run(args: argparse.Namespace, *, dynamodb_starter: DynamoDBStarter | None = None) -> int:
    """Run a command parsed by :func:`parser`."""
    if args.command == "serve":
        return _serve(args, dynamodb_starter)
    if args.command == "token":
        return _token(args)
    if args.command == "fire":
        body = {"function": args.function, "schedule": args.schedule, "time": args.time}
        outcome = request(args.endpoint, "/_local/fire", body)
        print(json.dumps(outcome, indent=2))
        return 0 if outcome.get("ok") else 1
    if args.command == "status":
        description = request(args.endpoint, "/_local/stack")
        stats = request(args.endpoint, "/_local/stats")
        print(json.dumps({**description, "stats": stats}, indent=2))
        return 0
    raise SystemExit(f"error: unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    root, _ = parser()
    return run(root.parse_args(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
