"""``loyalty draw verify``: recompute a month's prize draw (docs/campaigns.md, "The monthly prize
draw") from its facts and the stored entries, and say every difference.

::

    loyalty draw verify --program ID --month YYYY-MM [--table NAME] [--published FILE] [--json]

The facts are the published events with ``--published`` (JSON lines, each an EventBridge event
or one wrapped under ``event`` as in the local stack's ``.local/events.jsonl``): the seed hash
announced before the month (``PrizeDrawOpened``), the seed, the entries' digest and the winners
announced after (``PrizeDrawn``); without it, the draw item. The entries are read from the
sparse index ``ByDrawMonth``. Exit 0 when everything agrees, 1 on any difference, 2 on bad
arguments (the option named). Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from shared.domain.draw import MONTH

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty draw", description="The monthly prize draw.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify", help="recompute a drawn month's winners; exit 1 on any difference"
    )
    verify.add_argument("--table", default=os.environ.get("TABLE_NAME"))
    verify.add_argument("--program", required=True, help="the program (a customer program)")
    verify.add_argument("--month", required=True, help="the month drawn, YYYY-MM")
    verify.add_argument(
        "--published", type=Path, help="JSON lines of published events (PrizeDrawOpened/-Drawn)"
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _events(path: Path) -> Iterator[Mapping[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def main(
    argv: Sequence[str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    client: Any = None,
) -> int:
    from shared.dal.draw import DrawRepository  # noqa: PLC0415 (boto3-heavy, on use)
    from shared.domain.errors import ProgramConfigError  # noqa: PLC0415
    from shared.logic.draw import verify_draw  # noqa: PLC0415
    from shared.programs import load_program, program_ids  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    args = _parser().parse_args(argv)
    if not args.table:
        print("error: --table (or TABLE_NAME) must name the table", file=err)
        return 2
    if not MONTH.match(args.month):
        print(f"error: --month must be YYYY-MM (got {args.month!r})", file=err)
        return 2
    try:
        program = load_program(args.program)
    except ProgramConfigError:
        print(f"error: --program {args.program!r} is not a program ({program_ids()})", file=err)
        return 2
    if program.prize_draw is None:
        print(f"error: --program {args.program!r} has no prize draw", file=err)
        return 2
    if args.published is not None and not args.published.is_file():
        print(f"error: --published {args.published} is not a file", file=err)
        return 2
    if client is None:
        import boto3  # noqa: PLC0415

        client = boto3.client("dynamodb")
    store = DrawRepository(args.table, client)
    published = _events(args.published) if args.published is not None else None
    problems = verify_draw(program.id, args.month, store, published)
    if args.json:
        print(json.dumps({"differences": problems}), file=out)
    else:
        for problem in problems:
            print(problem, file=out)
        print(f"{program.id} {args.month}: {len(problems)} differences", file=out)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
