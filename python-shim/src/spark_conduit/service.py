"""The embedded service: one spark-conduit process per host (and user), shared by every
Spark task and session on it.

It listens on ``<runtime dir>/conduit.sock``; the runtime dir is
``SPARK_CONDUIT_RUNTIME_DIR`` or ``/tmp/spark-conduit-<uid>`` (kept short: unix socket
paths are limited to 108 bytes). The first Python process that needs it starts it under
an ``fcntl`` lock, so concurrent Spark workers start only one; everyone else finds it
with the standard gRPC health check. It exits by itself after 15 idle minutes.

``python -m spark_conduit status|start|stop`` inspects and controls it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import grpc

from spark_conduit.errors import (
    NODE_NOT_FOUND,
    SERVICE_BUNDLE_MISSING,
    SERVICE_START_FAILED,
    SparkConduitError,
)

RUNTIME_DIR_ENV = "SPARK_CONDUIT_RUNTIME_DIR"
NODE_ENV = "SPARK_CONDUIT_NODE"
BUNDLE_ENV = "SPARK_CONDUIT_SERVER_BUNDLE"  # development: run a service bundle from elsewhere
SOCKET_NAME = "conduit.sock"
PID_FILE = "service.pid"
LOG_FILE = "service.log"
LOCK_FILE = "service.lock"
IDLE_EXIT_SECONDS = 900
START_TIMEOUT_SECONDS = 20.0
MIN_NODE_MAJOR = 20
MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL

HEALTH_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}

# A process that found the service healthy skips the probe for this long.
_HEALTHY_CACHE_SECONDS = 5.0
_healthy_until: dict[str, float] = {}
_started: list[subprocess.Popen] = []  # keeps Popen objects alive (no ResourceWarning)
_lock = threading.Lock()


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = (env.get(RUNTIME_DIR_ENV) or "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(f"/tmp/spark-conduit-{os.getuid()}")


def socket_path(environ: Mapping[str, str] | None = None) -> Path:
    return runtime_dir(environ) / SOCKET_NAME


def bundle_path() -> Path:
    configured = (os.environ.get(BUNDLE_ENV) or "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(__file__).resolve().parent / "server" / "spark-conduit.cjs"


def health_check(target: str, timeout: float = 1.0) -> bool:
    """True when the gRPC service at ``target`` answers the standard health check SERVING."""
    try:
        with grpc.insecure_channel(target) as channel:
            check = channel.unary_unary(HEALTH_METHOD, request_serializer=None, response_deserializer=None)
            return check(b"", timeout=timeout) == HEALTH_SERVING
    except grpc.RpcError:
        return False


def _prepare_runtime_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError as error:
        raise SparkConduitError(
            SERVICE_START_FAILED,
            f"Cannot create the spark-conduit runtime directory {directory}: {error.strerror}. Set "
            f"{RUNTIME_DIR_ENV} to a writable directory, or set SPARK_CONDUIT_ENDPOINT to a running service.",
            {"path": str(directory)},
        ) from error
    # Someone else's directory could hold a socket that impersonates the service.
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
        raise SparkConduitError(
            SERVICE_START_FAILED,
            f"The spark-conduit runtime directory {directory} is not owned by this user or is writable by "
            f"others; remove it or set {RUNTIME_DIR_ENV} to a private directory.",
            {"path": str(directory)},
        )


def _check_socket_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > MAX_UNIX_SOCKET_PATH:
        raise SparkConduitError(
            SERVICE_START_FAILED,
            f"The socket path {path} is longer than the {MAX_UNIX_SOCKET_PATH} bytes a unix socket "
            f"allows; set {RUNTIME_DIR_ENV} to a shorter directory.",
            {"path": str(path)},
        )


def node_executable() -> str:
    """The Node.js binary (``SPARK_CONDUIT_NODE`` or ``node`` on PATH), checked to be >= 20."""
    configured = (os.environ.get(NODE_ENV) or "").strip()
    node = configured or shutil.which("node")
    if not node:
        raise SparkConduitError(
            NODE_NOT_FOUND,
            f"Node.js {MIN_NODE_MAJOR} or newer is needed to run the spark-conduit service on this host, "
            f"and no `node` is on PATH. Install Node.js {MIN_NODE_MAJOR}+, set {NODE_ENV} to its binary, or "
            "set SPARK_CONDUIT_ENDPOINT (or the service_endpoint option) to a running service.",
        )
    try:
        output = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=15, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise SparkConduitError(
            NODE_NOT_FOUND,
            f"Cannot run Node.js at {node}: {error}. Set {NODE_ENV} to a Node.js {MIN_NODE_MAJOR}+ binary.",
            {"node": node},
        ) from error
    match = re.match(r"v?(\d+)\.", output)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise SparkConduitError(
            NODE_NOT_FOUND,
            f"The spark-conduit service needs Node.js {MIN_NODE_MAJOR} or newer, but {node} is "
            f"{output or 'of unknown version'}. Install a newer Node.js or set {NODE_ENV} to one.",
            {"node": node, "version": output},
        )
    return node


def _check_bundle() -> Path:
    bundle = bundle_path()
    if not bundle.is_file():
        raise SparkConduitError(
            SERVICE_BUNDLE_MISSING,
            f"The spark-conduit service bundle is missing ({bundle}). This installation of the Python "
            "package was built without the service: build it with `npm run build` in the spark-conduit "
            "repository before installing python-shim, or set SPARK_CONDUIT_ENDPOINT to a running service.",
            {"path": str(bundle)},
        )
    return bundle


def read_pid(directory: Path) -> int | None:
    try:
        return int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_service_process(pid: int) -> bool:
    """True when ``pid`` runs ``spark-conduit ... serve`` (guards against a recycled pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            command = subprocess.run(
                ["ps", "-p", str(pid), "-o", "command="],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return False
    return "spark-conduit" in command and " serve" in command


def _log_tail(directory: Path, lines: int = 20) -> str:
    try:
        text = (directory / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stop_stale(directory: Path, sock: Path) -> None:
    """Clears what a crashed or wedged service left behind (we hold the lock)."""
    pid = read_pid(directory)
    if pid and pid_alive(pid) and is_service_process(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (directory / PID_FILE).unlink()
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()


# A larger young generation for the service's V8: rows in flight (Arrow batches, driver
# requests) outlive the default 16 MiB semi-space and get copied on every scavenge. 64 MiB
# cut the service's CPU per written Cassandra row by about a tenth (npm run bench:service)
# for at most ~100 MiB more memory. docker/service.Dockerfile passes the same flag.
NODE_FLAGS = ("--max-semi-space-size=64",)


def _start(directory: Path, sock: Path) -> None:
    bundle = _check_bundle()
    node = node_executable()
    target = f"unix:{sock}"
    command = [
        node,
        *NODE_FLAGS,
        str(bundle),
        "serve",
        "--listen",
        target,
        "--pid-file",
        str(directory / PID_FILE),
        "--idle-exit-seconds",
        str(IDLE_EXIT_SECONDS),
    ]
    with open(directory / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(directory),
            start_new_session=True,
            close_fds=True,
        )
    _started.append(process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if health_check(target, timeout=1.0):
            return
        if process.poll() is not None and not health_check(target, timeout=1.0):
            raise SparkConduitError(
                SERVICE_START_FAILED,
                f"The spark-conduit service exited during start-up (exit code {process.returncode}). "
                f"Its log {directory / LOG_FILE} ends with:\n{_log_tail(directory)}",
                {"log": str(directory / LOG_FILE)},
            )
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        process.terminate()
    raise SparkConduitError(
        SERVICE_START_FAILED,
        f"The spark-conduit service did not become healthy within {START_TIMEOUT_SECONDS:.0f} s. "
        f"Its log {directory / LOG_FILE} ends with:\n{_log_tail(directory)}",
        {"log": str(directory / LOG_FILE)},
    )


def ensure_service() -> str:
    """Finds or starts the embedded service of this host; returns its gRPC target."""
    directory = runtime_dir()
    sock = directory / SOCKET_NAME
    target = f"unix:{sock}"
    now = time.monotonic()
    if _healthy_until.get(target, 0.0) > now:
        return target
    with _lock:
        if health_check(target, timeout=2.0):
            _healthy_until[target] = time.monotonic() + _HEALTHY_CACHE_SECONDS
            return target
        _prepare_runtime_dir(directory)
        _check_socket_path(sock)
        with open(directory / LOCK_FILE, "a+") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                # Another process may have started it while we waited for the lock.
                if not health_check(target, timeout=2.0):
                    _stop_stale(directory, sock)
                    _start(directory, sock)
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
        _healthy_until[target] = time.monotonic() + _HEALTHY_CACHE_SECONDS
        return target


def forget_health() -> None:
    """Makes the next call probe the service again (after a failed call)."""
    _healthy_until.clear()


def stop_service(timeout: float = 10.0) -> str:
    """Stops this host's embedded service (SIGTERM to its pid); returns what happened."""
    directory = runtime_dir()
    pid = read_pid(directory)
    if pid is None or not pid_alive(pid) or not is_service_process(pid):
        return f"No spark-conduit service is running for {directory}."
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as error:
        if error.errno == errno.ESRCH:
            return f"No spark-conduit service is running for {directory}."
        raise
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    forget_health()
    if pid_alive(pid):
        return f"Sent SIGTERM to the spark-conduit service (pid {pid}); it is still shutting down."
    return f"Stopped the spark-conduit service (pid {pid})."


def _reap(pid: int) -> None:
    """Collects the exit status if the service is our own child (avoids a zombie)."""
    for process in list(_started):
        if process.pid == pid and process.poll() is not None:
            _started.remove(process)


def status() -> dict[str, object]:
    directory = runtime_dir()
    sock = directory / SOCKET_NAME
    pid = read_pid(directory)
    return {
        "runtime_dir": str(directory),
        "socket": str(sock),
        "pid": pid if pid and pid_alive(pid) and is_service_process(pid) else None,
        "serving": health_check(f"unix:{sock}", timeout=2.0) if sock.exists() else False,
        "log": str(directory / LOG_FILE),
        "bundle": str(bundle_path()),
        "bundle_present": bundle_path().is_file(),
    }
