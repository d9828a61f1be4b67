"""Full tier recalculation jobs, from the command line (see docs/tiers-recalculation.md).

::

    python -m infra.recalc start --segments 16 --queue-url URL [--allow-downgrades] [--wait]
    python -m infra.recalc start --segments 4 --local [--allow-downgrades]
    python -m infra.recalc status JOB [--json] [--watch]
    python -m infra.recalc resume JOB (--queue-url URL | --local)

The table is ``TABLE_NAME`` (``AWS_ENDPOINT_URL_DYNAMODB`` points boto3 at DynamoDB Local); the
program is ``PROGRAM_ID`` (default cart-star), as shipped in shared/programs/: the deployed
workers check that they run the same configuration version. ``--local`` runs every segment in
this process, one thread each, without SQS (tests, the bench, a small table). Otherwise the
first message of each segment goes to the queue given by ``--queue-url`` (the stack output
``TierRecalculationQueueUrl``), and the workers carry on from there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config

from shared.dal.recalculation import RecalculationRepository
from shared.domain.program import Program
from shared.domain.recalculation import JobState, SegmentMessage
from shared.logic.recalculation import (
    WRITERS,
    JobProgress,
    job_progress,
    resume_messages,
    run_in_process,
    start_job,
    utc_now,
)
from shared.programs import load_program, parse_program
from shared.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BAR_WIDTH = 30
POLL_SECONDS = 1.0


def dynamodb_client(segments: int = 8) -> DynamoDBClient:
    """A client with a connection for each thread of ``segments`` workers: the segment's own,
    its next page's Scan, and its ``WRITERS`` batch writers."""
    connections = max(10, segments * (WRITERS + 2) + 2)
    return boto3.client(
        "dynamodb",
        config=Config(max_pool_connections=connections, retries={"mode": "standard"}),
    )


def send_messages(queue_url: str, messages: Sequence[SegmentMessage]) -> None:
    """First messages of the segments, 10 per SendMessageBatch; raises if any was refused."""
    sqs = boto3.client("sqs")
    for begin in range(0, len(messages), 10):
        batch = messages[begin : begin + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(message.segment), "MessageBody": message.to_json()} for message in batch
            ],
        )
        failed = response.get("Failed") or []
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} messages: {failed[:3]}")


# -- progress display --------------------------------------------------------------------------


def bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    if fraction is None:
        return "[" + "?" * width + "]   ?%"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"


def render(progress: JobProgress) -> str:
    """A table of the segments and a total line with a progress bar."""
    job, total = progress.job, progress.total
    lines = [
        f"job {job.job_id}  {job.program_id} v{job.program_version}  {job.state.value}"
        f"  allow downgrades: {'yes' if job.allow_downgrades else 'no'}",
        f"{'segment':>7}  {'progress':<{BAR_WIDTH + 7}}  {'page':>6}  {'scanned':>10}"
        f"  {'members':>10}  {'written':>8}  {'changes':>8}",
    ]
    for state in progress.segments:
        counts = state.counts
        lines.append(
            f"{state.segment:>7}  {bar(progress.segment_fraction(state)):<{BAR_WIDTH + 7}}"
            f"  {state.page:>6}  {counts.scanned:>10,}  {counts.members:>10,}"
            f"  {counts.written:>8,}  {sum(counts.changes.values()):>8,}"
            + ("  done" if state.done else "")
        )
    changes = ", ".join(f"{name} {count:,}" for name, count in sorted(total.changes.items()))
    lines.append(
        f"{'total':>7}  {bar(progress.fraction):<{BAR_WIDTH + 7}}  {'':>6}  {total.scanned:>10,}"
        f"  {total.members:>10,}  {total.written:>8,}  {sum(total.changes.values()):>8,}"
    )
    lines.append(
        f"segments done {progress.done_segments}/{job.segments}; stale {total.stale:,}, "
        f"failed {total.failed:,}; read units {total.read_units:,.1f}, write units "
        f"{total.write_units:,.1f}" + (f"; changes: {changes}" if changes else "")
    )
    return "\n".join(lines)


def watch(
    load: Callable[[], JobProgress],
    until: Callable[[JobProgress], bool],
    out: IO[str],
    interval: float = POLL_SECONDS,
) -> JobProgress:
    """Show the progress until ``until``: redrawn in place on a terminal, a line per change
    otherwise."""
    tty = out.isatty()
    drawn = 0
    last = ""
    while True:
        progress = load()
        if tty:
            text = render(progress)
            if drawn:
                out.write(f"\x1b[{drawn}F\x1b[J")
            out.write(text + "\n")
            drawn = text.count("\n") + 1
        else:
            done = f"{progress.done_segments}/{progress.job.segments}"
            line = f"{bar(progress.fraction)} segments done {done}"
            if line != last:
                out.write(line + "\n")
                last = line
        out.flush()
        if until(progress):
            return progress
        time.sleep(interval)


def _finished(progress: JobProgress) -> bool:
    return progress.job.state is not JobState.RUNNING


# -- commands ------------------------------------------------------------------------------------


def _run_local(
    repository: Callable[[], RecalculationRepository],
    messages: Sequence[SegmentMessage],
    job_id: str,
    program: Program,
    out: IO[str],
    quiet: bool,
) -> JobProgress:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_in_process(program, messages, lambda _segment: repository())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work, name="recalculation")
    worker.start()
    monitor = repository()
    if quiet:
        worker.join()
    else:
        watch(lambda: job_progress(monitor, job_id), lambda _p: not worker.is_alive(), out)
        worker.join()
    if errors:
        raise errors[0]
    return job_progress(monitor, job_id)


def _estimated_items(client: DynamoDBClient, table: str) -> int | None:
    try:
        return int(client.describe_table(TableName=table)["Table"].get("ItemCount", 0)) or None
    except Exception:  # only for progress estimates: DescribeTable may not be allowed
        return None


def _program(args: argparse.Namespace, program_id: str) -> Program:
    """The configuration to apply: ``--program-file`` if given, else the shipped one."""
    if args.program_file is not None:
        path = Path(args.program_file)
        return parse_program(path.read_text(encoding="utf-8"), source=path.name)
    return load_program(program_id)


def cmd_start(args: argparse.Namespace, out: IO[str]) -> int:
    if not args.local and not args.queue_url:
        raise SystemExit("start: give --queue-url (the deployed queue) or --local")
    client = dynamodb_client(args.segments)
    table = args.table or settings().table_name
    program = _program(args, args.program)

    def repository() -> RecalculationRepository:
        return RecalculationRepository(table, client)

    job, messages = start_job(
        program,
        args.segments,
        repository(),
        utc_now(),
        allow_downgrades=args.allow_downgrades,
        page_size=args.page_size,
        estimated_items=_estimated_items(client, table),
    )
    out.write(f"started {job.job_id} ({job.segments} segments)\n")
    if args.local:
        progress = _run_local(repository, messages, job.job_id, program, out, args.quiet)
    else:
        send_messages(args.queue_url, messages)
        if not args.wait:
            out.write(f"follow it with: python -m infra.recalc status {job.job_id} --watch\n")
            return 0
        monitor = repository()
        progress = watch(lambda: job_progress(monitor, job.job_id), _finished, out)
    if args.json:
        out.write(json.dumps(progress.as_dict(), indent=2) + "\n")
    return 0 if progress.job.state is JobState.DONE else 1


def cmd_status(args: argparse.Namespace, out: IO[str]) -> int:
    table = args.table or settings().table_name
    repository = RecalculationRepository(table, dynamodb_client())
    if args.watch:
        progress = watch(lambda: job_progress(repository, args.job_id), _finished, out)
    else:
        progress = job_progress(repository, args.job_id)
        if not args.json:
            out.write(render(progress) + "\n")
    if args.json:
        out.write(json.dumps(progress.as_dict(), indent=2) + "\n")
    return 0


def cmd_resume(args: argparse.Namespace, out: IO[str]) -> int:
    if not args.local and not args.queue_url:
        raise SystemExit("resume: give --queue-url (the deployed queue) or --local")
    table = args.table or settings().table_name
    client = dynamodb_client(64)

    def repository() -> RecalculationRepository:
        return RecalculationRepository(table, client)

    job = repository().get_job(args.job_id)
    if job is None:
        raise SystemExit(f"no job {args.job_id}")
    messages = resume_messages(repository(), args.job_id)
    out.write(f"resuming {len(messages)} unfinished segments of {args.job_id}\n")
    if not messages:
        return 0
    if args.local:
        program = _program(args, job.program_id)
        progress = _run_local(repository, messages, job.job_id, program, out, args.quiet)
        return 0 if progress.job.state is JobState.DONE else 1
    send_messages(args.queue_url, messages)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recalc", description="Full tier recalculation after a new configuration version."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="start a job over every member of the program")
    start.add_argument("--segments", type=int, required=True, help="parallel Scan segments")
    start.add_argument(
        "--allow-downgrades",
        action="store_true",
        help="downgrade now (default: nobody is downgraded before the current period ends)",
    )
    start.add_argument("--local", action="store_true", help="run here, one thread per segment")
    start.add_argument("--queue-url", default=os.environ.get("RECALCULATION_QUEUE_URL"))
    start.add_argument("--wait", action="store_true", help="show the progress until done")
    start.add_argument("--page-size", type=int, help="Scan Limit (default: 1 MB pages)")
    start.add_argument("--program", default=os.environ.get("PROGRAM_ID", "cart-star"))
    start.add_argument("--quiet", action="store_true", help="no progress display")
    start.set_defaults(handler=cmd_start)

    status = commands.add_parser("status", help="progress of a job, per segment and in total")
    status.add_argument("job_id", metavar="JOB")
    status.add_argument("--watch", action="store_true", help="refresh until the job ends")
    status.set_defaults(handler=cmd_status)

    resume = commands.add_parser("resume", help="restart unfinished segments from checkpoints")
    resume.add_argument("job_id", metavar="JOB")
    resume.add_argument("--local", action="store_true")
    resume.add_argument("--queue-url", default=os.environ.get("RECALCULATION_QUEUE_URL"))
    resume.add_argument("--quiet", action="store_true")
    resume.set_defaults(handler=cmd_resume)

    for command in (start, resume):
        command.add_argument(
            "--program-file",
            help="a program configuration file (YAML or JSON) instead of the shipped one; "
            "the deployed workers must run the same version",
        )
    for command in (start, status, resume):
        command.add_argument("--table", help="table name (default: TABLE_NAME)")
        command.add_argument("--json", action="store_true", help="print the progress as JSON")
    return parser


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "segments", 1) < 1:
        raise SystemExit("--segments must be at least 1")
    handler: Callable[[argparse.Namespace, IO[str]], int] = args.handler
    return handler(args, out or sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
