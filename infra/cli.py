"""The ``loyalty`` command (``uv run loyalty ...``).

::

    loyalty token --sub MEMBER_ID [--program ID] [--scope loyalty/admin] [--ttl 3600]
    loyalty local serve [--fresh] [--http-port 3000] [--events-port 3001] [--dynamodb-port 8000]
    loyalty local fire FUNCTION [--time ISO] [--schedule NAME]
    loyalty local demo [--members 200] [--seed 7]
    loyalty local status
    loyalty replay --queue-url URL --function-name NAME [--max 100] [--dry-run]
    loyalty audit invariants [--table NAME] [--segments 4] [--program ID [--member ID]] [--json]
    loyalty audit verify [--table NAME] [--program ID] [--from DAY] [--to DAY] [--published F]
    loyalty stats check|rebuild [--table NAME] [--program ID] [--json]
    loyalty report [--from DAY] [--to DAY] [--program ID] [--data DIR] [--out FILE]
    loyalty draw verify --program ID --month YYYY-MM [--table NAME] [--published F] [--json]

``token`` and the ``local`` commands other than ``demo`` are those of the local stack's package
(``samlite``, tools/sam-local-lite), with this repository's defaults: template.yaml, state under
``.local``, and DynamoDB Local started by :func:`infra.local.start_dynamodb_local`. ``demo`` and
``status`` talk to a running stack (``make run``) through its endpoint on 127.0.0.1:3001.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from samlite import cli as samlite

from infra.local import start_dynamodb_local
from infra.local.demo import run_demo

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = {
    "recalc": "recalc",
    "replay": "replay",
    "audit": "audit",
    "stats": "stats",
    "report": "report",
    "draw": "draw",
}
"""Commands that are a module's ``main`` under ``infra``."""


def _audiences() -> str:
    """Locally, the JWT authorizer accepts each shipped program's app audience: a token minted
    for a program's app (``--program``) gets that program's answers."""
    from shared.programs import all_programs  # noqa: PLC0415

    return ",".join(program.app_audience for program in all_programs())


DEFAULTS = samlite.Defaults(
    template=REPO_ROOT / "template.yaml",
    state_dir=REPO_ROOT / ".local",
    stack_name="loyalty-local",
    parameters=(("JwtAudience", _audiences()),),
)


def _token_arguments(arguments: list[str]) -> list[str]:
    """``--program ID`` becomes ``--audience`` (the program's app audience)."""
    if "--program" not in arguments:
        return arguments
    index = arguments.index("--program")
    if index + 1 >= len(arguments):
        raise SystemExit("error: --program takes a program id")
    from shared.domain.errors import ProgramConfigError  # noqa: PLC0415
    from shared.programs import load_program, program_ids  # noqa: PLC0415

    try:
        program = load_program(arguments[index + 1])
    except ProgramConfigError:
        known = ", ".join(program_ids())
        raise SystemExit(f"error: no program {arguments[index + 1]!r} (shipped: {known})") from None
    return [*arguments[:index], "--audience", program.app_audience, *arguments[index + 2 :]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description="Loyalty engine tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "recalc",
        help="full tier recalculation: start | status | resume (see docs/tiers-recalculation.md)",
    )
    commands.add_parser(
        "token",
        help="print a JWT the local HTTP API accepts (--sub MEMBER_ID [--program ID])",
    )
    commands.add_parser("local", help="the local stack: serve | fire | status | demo")
    commands.add_parser(
        "audit",
        help="audit invariants: every member's totals against their items; audit verify: the "
        "ledger's daily digests (infra/audit.py)",
    )
    commands.add_parser(
        "stats",
        help="stats check: the live statistics' counters against the items; stats rebuild: "
        "correct them (infra/stats.py)",
    )
    commands.add_parser(
        "report",
        help="an HTML report of the analytics rows (.local/analytics): tiers, retention, "
        "points, perks, campaigns (infra/report.py, docs/analytics.md)",
    )
    commands.add_parser(
        "draw",
        help="draw verify: recompute a month's prize draw from its published facts and the "
        "stored entries (infra/draw.py)",
    )
    commands.add_parser(
        "replay",
        help="re-drive the stream batches in a consumer's on-failure queue (infra/replay.py)",
    )
    return parser


def _local_analytics(state_dir: Path, *, fresh: bool) -> None:
    """The local stand-in for the analytics Firehose stream: on the local stack event_publisher
    writes its rows as Parquet under <state>/analytics (shared.settings); ``--fresh`` empties
    it with the rest of the state."""
    folder = state_dir / "analytics"
    if fresh and folder.is_dir():
        shutil.rmtree(folder)


def _local_parser() -> argparse.ArgumentParser:
    parser, commands = samlite.parser("loyalty local", DEFAULTS, starts_dynamodb=True)
    demo = commands.add_parser("demo", help="feed the running stack a synthetic marketplace")
    demo.add_argument("--members", type=int, default=200)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--days", type=int, default=90, help="history length in days")
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the end")
    demo.add_argument("--endpoint", default=samlite.DEFAULT_ENDPOINT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] and arguments[0] in TOOLS:
        # recalc: full tier recalculation (infra/recalc.py); replay: re-drive the stream batches
        # a consumer gave up on (infra/replay.py); audit: every member's totals against their
        # items (infra/audit.py); stats: the live statistics' counters (infra/stats.py).
        # Imported only for their command (boto3-heavy).
        tool = importlib.import_module(f"infra.{TOOLS[arguments[0]]}")
        code: int = tool.main(arguments[1:])
        return code
    if arguments[:1] == ["token"]:
        token_parser, _ = samlite.parser("loyalty", DEFAULTS)
        return samlite.run(token_parser.parse_args(_token_arguments(arguments)))
    if arguments[:1] == ["local"]:
        args = _local_parser().parse_args(arguments[1:])
        if args.command == "demo":
            return run_demo(
                args.endpoint,
                members=args.members,
                seed=args.seed,
                days=args.days,
                timeout=args.timeout,
            )
        if args.command == "serve":
            _local_analytics(Path(args.state_dir), fresh=bool(getattr(args, "fresh", False)))
        return samlite.run(args, dynamodb_starter=start_dynamodb_local)
    _parser().parse_args(arguments)  # --help, or an error naming the commands
    return 2


if __name__ == "__main__":
    sys.exit(main())
