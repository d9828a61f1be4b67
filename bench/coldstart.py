"""Benchmark: each function's cold start, as a ratio to the floor (boto3 and one client).

For each ``functions/<name>/app.py``, a fresh Python process (this venv, an environment like
Lambda's: ``TABLE_NAME``, ``EVENT_BUS_NAME``, ``POWERTOOLS_SERVICE_NAME``, ``AWS_REGION``, the
function's name, dummy credentials, DynamoDB pointed at an unused loopback port) times what a
cold start does before the first request's work: import the module by file as ``app`` (the
function's directory and the repository's root on ``sys.path``, as the function's code and the
layer are on Lambda), then create its first boto3 client the way the function does (its
repository factory). Paired with it, the floor: a fresh process timing
``import boto3; boto3.client("dynamodb")``. Runs alternate function and floor, 7 pairs; the
medians of each give the ratio. A reference row measures boto3, a client, pydantic and
Powertools' Logger and Metrics the same way.

Times are taken inside the child (interpreter start-up, common to all, is left out), after one
untimed run that compiles the bytecode, in CPU time for the ratio (wall-clock time is kept too:
on a shared machine it measures the neighbours as much as the imports). One more run per
function under ``-X importtime`` keeps the costliest imports beyond the floor's, and fails the
bench if anything opens a socket (no network call: the client is created, never used).

Run: ``python -m bench.coldstart`` (part of ``make bench``; no DynamoDB Local): writes
bench/results/coldstart.json and, with ``--update-readme README.md``, the README's figures.
``--only NAME`` (repeatable) measures those functions and the reference, and only prints them.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
PAIRS = 7
TOP_IMPORTS = 12

FIRST_CLIENT: dict[str, str] = {
    "admin_api": "shared.composition:rating_repository",
    "event_publisher": "shared.composition:perk_repository",
    "ledger_digest": "shared.composition:digest_repository",
    "prize_draw": "shared.composition:draw_repository",
    "member_api": "shared.composition:ledger_repository",
    "notifier": "shared.composition:notification_repository",
    "order_ingestion": "shared.composition:ledger_repository",
    "perk_redemption": "shared.composition:perk_repository",
    "points_settlement": "shared.composition:customer_repository",
    "rating_moderation": "shared.composition:rating_repository",
    "tier_full_recalculation": "shared.composition:recalculation_repository",
    "tier_recalculation": "shared.composition:tier_repository",
}
"""The factory whose call creates the function's first boto3 client (its first request's)."""
DEFAULT_CLIENT = "shared.composition:ledger_repository"

_GUARD = """
import sys
def _no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg"):
        raise SystemExit(f"network call during the cold start: {event} {args!r}")
sys.addaudithook(_no_network)
"""

_FUNCTION = """
import time
started = time.perf_counter(), time.process_time()
import importlib, importlib.util, sys
sys.path[:0] = [{function_dir!r}, {root!r}]
spec = importlib.util.spec_from_file_location("app", {app_path!r})
app = importlib.util.module_from_spec(spec)
sys.modules["app"] = app
spec.loader.exec_module(app)
getattr(importlib.import_module({factory_module!r}), {factory!r})()
print(time.perf_counter() - started[0], time.process_time() - started[1])
"""

_FLOOR = """
import time
started = time.perf_counter(), time.process_time()
import boto3
boto3.client("dynamodb")
print(time.perf_counter() - started[0], time.process_time() - started[1])
"""

_REFERENCE = """
import time
started = time.perf_counter(), time.process_time()
import boto3
from pydantic import BaseModel
from aws_lambda_powertools import Logger, Metrics
Logger()
Metrics(namespace="Loyalty")
boto3.client("dynamodb")
print(time.perf_counter() - started[0], time.process_time() - started[1])
"""

REFERENCE_LABEL = "reference: boto3 + client + pydantic + Powertools Logger and Metrics"


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lambda_environment(name: str, home: str) -> dict[str, str]:
    """An environment like Lambda's for function ``name`` (Powertools and the X-Ray SDK see
    ``LAMBDA_TASK_ROOT``, as on Lambda), and nothing of this machine's AWS configuration (no
    profile, no credentials file, no instance metadata)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "coldstart",
        "AWS_SECRET_ACCESS_KEY": "coldstart",
        "AWS_SESSION_TOKEN": "coldstart",
        "AWS_CONFIG_FILE": os.path.join(home, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{_unused_port()}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"loyalty-dev-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(FUNCTIONS / name),
        "TABLE_NAME": "loyalty-dev",
        "EVENT_BUS_NAME": "loyalty-dev",
        "PROGRAM_ID": "cart-star",
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    }


def function_script(name: str) -> str:
    module, factory = FIRST_CLIENT.get(name, DEFAULT_CLIENT).split(":")
    function_dir = FUNCTIONS / name
    return _FUNCTION.format(
        function_dir=str(function_dir),
        root=str(ROOT),
        app_path=str(function_dir / "app.py"),
        factory_module=module,
        factory=factory,
    )


def run_child(
    script: str, environment: dict[str, str], *flags: str
) -> tuple[tuple[float, float], str]:
    """Run ``script`` in a fresh interpreter: its (wall-clock, CPU) seconds and its stderr."""
    done = subprocess.run(
        [sys.executable, "-I", *flags, "-c", script],
        env=environment,
        cwd=environment["HOME"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"cold start child failed ({done.returncode}):\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return (float(wall), float(cpu)), done.stderr


def paired(script: str, environment: dict[str, str]) -> dict[str, Any]:
    """Medians of ``script`` and of the floor over alternating runs, and their ratios."""
    run_child(script, environment)  # compiles the bytecode: no run below pays for it
    run_child(_FLOOR, environment)
    measured: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    for _ in range(PAIRS):
        measured.append(run_child(script, environment)[0])
        floor.append(run_child(_FLOOR, environment)[0])
    row: dict[str, Any] = {}
    for index, clock in enumerate(("wall", "cpu")):
        seconds = statistics.median(run[index] for run in measured)
        floor_seconds = statistics.median(run[index] for run in floor)
        row[clock] = {
            "seconds": round(seconds, 4),
            "floor_seconds": round(floor_seconds, 4),
            "ratio": round(seconds / floor_seconds, 2),
            "ratio_of_minima": round(
                min(run[index] for run in measured) / min(run[index] for run in floor), 2
            ),
            "runs": [round(run[index], 4) for run in measured],
            "floor_runs": [round(run[index], 4) for run in floor],
        }
    return row


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """``-X importtime``'s lines as (module, self, cumulative, depth), in the order printed."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append(
            {
                "module": name.strip(),
                "self_ms": int(self_us) / 1000,
                "cumulative_ms": int(cumulative_us) / 1000,
                "depth": depth,
            }
        )
    return rows


def top_imports(rows: list[dict[str, Any]], floor: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The costliest imports beyond the floor's (modules the floor does not import): by
    cumulative time, and by time of their own."""
    beyond = [row for row in rows if row["module"] not in floor]
    by_cumulative = sorted(beyond, key=lambda row: -row["cumulative_ms"])[:TOP_IMPORTS]
    by_self = sorted(beyond, key=lambda row: -row["self_ms"])[:TOP_IMPORTS]
    return {
        "by_cumulative": [
            {"module": row["module"], "ms": round(row["cumulative_ms"], 1)} for row in by_cumulative
        ],
        "by_self": [{"module": row["module"], "ms": round(row["self_ms"], 1)} for row in by_self],
    }


def run(only: Sequence[str] = ()) -> dict[str, Any]:
    names = sorted(path.parent.name for path in FUNCTIONS.glob("*/app.py"))
    unknown = set(only) - set(names)
    if unknown:
        raise SystemExit(f"no such function: {', '.join(sorted(unknown))}")
    names = [name for name in names if not only or name in only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="coldstart-") as home:
        _, stderr = run_child(_FLOOR, lambda_environment("floor", home), "-X", "importtime")
        floor = {row["module"] for row in parse_importtime(stderr)}
        for name in names:
            environment = lambda_environment(name, home)
            script = function_script(name)
            _, stderr = run_child(_GUARD + script, environment, "-X", "importtime")
            row = {"function": name, **paired(script, environment)}
            row["imports"] = top_imports(parse_importtime(stderr), floor)
            rows.append(row)
            cpu, wall = row["cpu"], row["wall"]
            print(
                f"{name}: {cpu['seconds']:.3f} s CPU, {cpu['ratio']:.2f}x the floor "
                f"({wall['ratio']:.2f}x in wall-clock time)",
                flush=True,
            )
        environment = lambda_environment("reference", home)
        reference = {"function": REFERENCE_LABEL, **paired(_REFERENCE, environment)}
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "python": sys.version.split()[0],
        "pairs": PAIRS,
        "floor": 'import boto3; boto3.client("dynamodb")',
        "rows": rows,
        "reference": reference,
    }


def readme_block(results: dict[str, Any]) -> str:
    lines = [
        "| function | cold start (CPU), median | floor (CPU), median | ratio to the floor "
        "| ratio of the minima | ratio, wall-clock |",
        "|---|---|---|---|---|---|",
    ]
    for row in [*results["rows"], results["reference"]]:
        label = row["function"]
        label = label if label.startswith("reference") else f"`{label}`"
        cpu, wall = row["cpu"], row["wall"]
        lines.append(
            f"| {label} | {cpu['seconds'] * 1000:.0f} ms | {cpu['floor_seconds'] * 1000:.0f} ms "
            f"| **{cpu['ratio']:.2f}x** | {cpu['ratio_of_minima']:.2f}x | {wall['ratio']:.2f}x |"
        )
    lines.append("")
    lines.append(
        "Cold start: a fresh process imports the function's `app.py` as Lambda does and creates "
        "its first boto3 client (its repository factory), in a Lambda-like environment, with no "
        f"network call; the floor is `{results['floor']}` in a fresh process. Medians of "
        f"{results['pairs']} alternating pairs, timed inside the process (interpreter start-up "
        "left out) in CPU time, which other work on the machine disturbs less than wall-clock "
        "time (both are in the results); the ratio of the fastest runs of each is the least "
        f"disturbed. `make bench`, {results['date']}, Python "
        f"{results['python']} on 2 shared cores: meaningful as ratios. The costliest imports "
        "per function: `bench/results/coldstart.json`."
    )
    return "\n".join(lines)


def main() -> None:
    """``--only NAME`` (repeatable) measures those functions and the reference and prints them,
    writing no results; without it, every function (``bench.common.main``'s options)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    known, rest = parser.parse_known_args()
    if not known.only:
        sys.argv[1:] = rest
        common.main("coldstart", __doc__, run, readme_block, readme=True)
        return
    if rest:
        raise SystemExit(f"--only takes no other option: {' '.join(rest)}")
    print(readme_block(run(known.only)))


if __name__ == "__main__":
    main()
