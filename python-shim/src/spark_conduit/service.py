"""The embedded service: one spark-conduit process per host, user and credential
environment, shared by every Spark task and session that has the same.

It listens on ``<runtime dir>/conduit.sock``; the runtime dir is ``SPARK_CONDUIT_RUNTIME_DIR``
or ``/tmp/spark-conduit-<uid>-<key>``, where the key is a short hash of the environment
variables that decide whose credentials the service uses (kept short: unix socket paths are
limited to 108 bytes). The first Python process that needs it starts it under an ``fcntl``
lock, so concurrent Spark workers start only one; everyone else finds it with the standard
gRPC health check. It exits by itself after 15 idle minutes.

Trust comes before use: the runtime dir must be ours, mode 0700 and not a symlink, and the
process behind the socket must run as our uid (``SO_PEERCRED``), before a single byte is sent.
A service that is alive but slow to answer is waited for, never killed by a client.
See docs/embedded-service.md.

``python -m spark_conduit status|start|stop`` inspects and controls it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import grpc

from spark_conduit.errors import (
    NODE_NOT_FOUND,
    SERVICE_BUNDLE_MISSING,
    SERVICE_NOT_PRIVATE,
    SERVICE_START_FAILED,
    SERVICE_UNAVAILABLE,
    SparkConduitError,
)

RUNTIME_DIR_ENV = "SPARK_CONDUIT_RUNTIME_DIR"
NODE_ENV = "SPARK_CONDUIT_NODE"
BUNDLE_ENV = "SPARK_CONDUIT_SERVER_BUNDLE"  # development: run a service bundle from elsewhere
SOCKET_NAME = "conduit.sock"
PID_FILE = "service.pid"
LOG_FILE = "service.log"  # the service's own log, size-capped and rotated by the service
START_LOG_FILE = "service.start.log"  # stdout/stderr of the latest start only (truncated each start)
LOCK_FILE = "service.lock"
IDLE_EXIT_SECONDS = 900
START_TIMEOUT_SECONDS = 60.0
# Longer than the service's 30 s drain grace: a service that is draining, paused by a GC or
# starved of CPU gets the time to answer again. Clients wait for it; they never kill it.
PATIENCE_SECONDS = 60.0
_BACKOFF_FIRST_SECONDS = 0.25
_BACKOFF_MAX_SECONDS = 5.0
MIN_NODE_MAJOR = 20
MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL

HEALTH_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}

# The environment the service starts with: nothing else of the starting job's environment
# reaches it (no NODE_OPTIONS, no proxies, no job secrets). The AWS names are those the AWS
# SDK v3 bundled in the service reads (default credential chain, region, endpoints, retries).
PASSED_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "TMPDIR",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "SPARK_CONDUIT_LOG_LEVEL",
        # credentials: environment, shared files, web identity, container and instance metadata
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_CREDENTIAL_SCOPE",
        "AWS_ACCOUNT_ID",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_LOGIN_CACHE_DIRECTORY",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_EC2_METADATA_V1_DISABLED",
        # region, endpoints and client behaviour
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE",
        "AWS_ENDPOINT_DISCOVERY_ENABLED",
        "AWS_ENABLE_ENDPOINT_DISCOVERY",
        "AWS_AUTH_SCHEME_PREFERENCE",
        "AWS_SIGV4A_SIGNING_REGION_SET",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_DEFAULTS_MODE",
        "AWS_SDK_UA_APP_ID",
    }
)
PASSED_ENV_PREFIXES = (
    "LC_",
    "AWS_CONTAINER_CREDENTIALS_",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL_",
    "AWS_BEARER_TOKEN_",
)
# Passed but harmless to share: they do not change whose identity or trust the service uses.
_UNKEYED_ENV_NAMES = frozenset({"PATH", "LANG", "TZ", "TMPDIR", "SPARK_CONDUIT_LOG_LEVEL"})

# A process that found the service healthy skips the probe for this long.
_HEALTHY_CACHE_SECONDS = 5.0
_healthy_until: dict[str, float] = {}
_started: list[subprocess.Popen] = []  # keeps Popen objects alive (no ResourceWarning)
_lock = threading.Lock()


def _passed(name: str) -> bool:
    return name in PASSED_ENV_NAMES or name.startswith(PASSED_ENV_PREFIXES)


def service_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of ``environ``: the whole environment the service starts with."""
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items() if _passed(name)}


def environment_key(environ: Mapping[str, str] | None = None) -> str:
    """12 hex digits that differ when the service would act with another identity or trust.

    A truncated, unkeyed SHA-256: every process of a job must find the same name without
    sharing any state, and the name is visible to all local users. The secret inputs
    (secret keys, session tokens) carry far more entropy than anyone can search, and
    SHA-256 cannot be inverted, so 48 bits of the digest reveal nothing usable about them;
    the most an observer can do is confirm a guess of the complete set of non-secret values
    (e.g. a profile name when no key is set).
    """
    env = service_environment(environ)
    digest = hashlib.sha256(b"spark-conduit runtime key v1\0")
    for name in sorted(env):
        if name in _UNKEYED_ENV_NAMES or name.startswith("LC_"):
            continue
        digest.update(name.encode() + b"=" + env[name].encode(errors="surrogateescape") + b"\0")
    return digest.hexdigest()[:12]


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = (env.get(RUNTIME_DIR_ENV) or "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(f"/tmp/spark-conduit-{os.getuid()}-{environment_key(env)}")


def socket_path(environ: Mapping[str, str] | None = None) -> Path:
    return runtime_dir(environ) / SOCKET_NAME


def bundle_path() -> Path:
    configured = (os.environ.get(BUNDLE_ENV) or "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(__file__).resolve().parent / "server" / "spark-conduit.cjs"


def health_check(target: str, timeout: float = 1.0) -> bool:
    """True when the gRPC service at ``target`` answers the standard health check SERVING.

    Sends a request: for the embedded service, call it only after :func:`_probe`'s checks.
    """
    try:
        with grpc.insecure_channel(target) as channel:
            check = channel.unary_unary(HEALTH_METHOD, request_serializer=None, response_deserializer=None)
            return check(b"", timeout=timeout) == HEALTH_SERVING
    except grpc.RpcError:
        return False


def _not_private(what: str, path: Path, found_uid: int | None = None, **extra: str) -> SparkConduitError:
    parameters = {"path": str(path), "uid": str(os.getuid()), **extra}
    if found_uid is not None:
        parameters["owner_uid"] = str(found_uid)
    return SparkConduitError(
        SERVICE_NOT_PRIVATE,
        f"Refusing to use the spark-conduit service at {path}: {what}. Nothing was sent to it. Another local "
        f"user could be impersonating the service to receive your options and credentials. If the path is "
        f"yours, remove it and retry; otherwise set {RUNTIME_DIR_ENV} to a private directory (mode 0700) "
        f"owned by you (uid {os.getuid()}).",
        parameters,
    )


def _check_runtime_dir(directory: Path, create: bool) -> bool:
    """Checks that ``directory`` is ours, mode 0700 and not a symlink; False when it is absent.

    Runs before anything connects to a socket in it: whoever can write there can plant one.
    """
    created = False
    if create:
        try:
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.mkdir(directory, 0o700)
            created = True
        except FileExistsError:
            pass
        except OSError as error:
            raise SparkConduitError(
                SERVICE_START_FAILED,
                f"Cannot create the spark-conduit runtime directory {directory}: {error.strerror}. Set "
                f"{RUNTIME_DIR_ENV} to a writable directory, or set SPARK_CONDUIT_ENDPOINT to a running service.",
                {"path": str(directory)},
            ) from error
    try:
        # O_NOFOLLOW: a symlink fails here (ELOOP) instead of being followed to someone else's directory.
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError as error:
        if os.path.islink(directory):
            target = os.readlink(directory)
            raise _not_private(f"the runtime directory is a symbolic link (to {target})", directory) from error
        raise _not_private(
            f"the runtime directory cannot be opened as a directory ({error.strerror})", directory
        ) from error
    try:
        info = os.fstat(fd)
        if created and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != 0o700:
            os.fchmod(fd, 0o700)  # a umask can only remove bits from 0700, never add: restore them
            info = os.fstat(fd)
    finally:
        os.close(fd)
    if info.st_uid != os.getuid():
        raise _not_private(f"the runtime directory is owned by uid {info.st_uid}, not by you", directory, info.st_uid)
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o700:
        raise _not_private(
            f"the runtime directory has mode {mode:04o}, not 0700 (group or others can reach what is in it)",
            directory,
            info.st_uid,
            mode=f"{mode:04o}",
        )
    return True


def _check_socket_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > MAX_UNIX_SOCKET_PATH:
        raise SparkConduitError(
            SERVICE_START_FAILED,
            f"The socket path {path} is longer than the {MAX_UNIX_SOCKET_PATH} bytes a unix socket "
            f"allows; set {RUNTIME_DIR_ENV} to a shorter directory.",
            {"path": str(path)},
        )


def _check_socket_file(sock: Path) -> bool:
    """False when there is no socket file; raises when the path is not our socket."""
    try:
        info = os.lstat(sock)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode):
        raise _not_private("the socket path is not a socket", sock, info.st_uid)
    if info.st_uid != os.getuid():
        raise _not_private(f"the socket is owned by uid {info.st_uid}, not by you", sock, info.st_uid)
    return True


def peer_uid(connection: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected unix socket (None: cannot tell here)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", raw)[1]
    if sys.platform == "darwin":  # struct xucred {u_int cr_version; uid_t cr_uid; ...} at SOL_LOCAL
        raw = connection.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), 76)
        return struct.unpack_from("2I", raw)[1]
    return None


_ABSENT, _SERVING, _SILENT = "absent", "serving", "silent"


def _probe(sock: Path, timeout: float = 2.0) -> str:
    """``serving``, ``absent`` (nobody listens) or ``silent`` (someone listens, no answer yet).

    Connects once without sending anything to learn the peer's uid, and only health-checks
    (the first request) a peer that runs as us.
    """
    if not _check_socket_file(sock):
        return _ABSENT
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(str(sock))
        except (ConnectionRefusedError, FileNotFoundError):
            return _ABSENT
        except (TimeoutError, BlockingIOError, InterruptedError):
            return _SILENT  # the listen backlog is full: busy, not dead
        except OSError as error:
            if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return _ABSENT
            raise
        uid = peer_uid(connection)
    if uid is not None and uid != os.getuid():
        raise _not_private(f"the process listening on it runs as uid {uid}, not as you", sock, uid, peer_uid=str(uid))
    return _SERVING if health_check(f"unix:{sock}", timeout=timeout) else _SILENT


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
    for name in (START_LOG_FILE, LOG_FILE):
        try:
            text = (directory / name).read_text(errors="replace").strip()
        except OSError:
            continue
        if text:
            return "\n".join(text.splitlines()[-lines:])
    return ""


def running_service_pid(directory: Path) -> int | None:
    """The pid in the pid file if that process is alive and is the service, else None."""
    pid = read_pid(directory)
    return pid if pid and pid_alive(pid) and is_service_process(pid) else None


def _clear_stale(directory: Path, sock: Path) -> None:
    """Removes what a service that is gone left behind (we hold the lock; it signals no one)."""
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
        "--log-file",
        str(directory / LOG_FILE),
        "--idle-exit-seconds",
        str(IDLE_EXIT_SECONDS),
    ]
    # The service logs to its own capped --log-file; this file only catches what it prints
    # before its logger exists (or a crash), so it starts empty each time and stays small.
    start_log = os.open(directory / START_LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(start_log, 0o600)  # also when an earlier file had looser bits
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=start_log,
            stderr=start_log,
            cwd=str(directory),
            env=service_environment(),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(start_log)
    _started.append(process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _probe(sock, timeout=1.0) == _SERVING:
            return
        if process.poll() is not None and _probe(sock, timeout=1.0) != _SERVING:
            raise SparkConduitError(
                SERVICE_START_FAILED,
                f"The spark-conduit service exited during start-up (exit code {process.returncode}). "
                f"Its log {directory / START_LOG_FILE} ends with:\n{_log_tail(directory)}",
                {"log": str(directory / START_LOG_FILE)},
            )
        time.sleep(0.1)
    # Our own child that never served anyone: stopping it harms no other task.
    with contextlib.suppress(OSError):
        process.terminate()
    raise SparkConduitError(
        SERVICE_START_FAILED,
        f"The spark-conduit service did not become healthy within {START_TIMEOUT_SECONDS:.0f} s. "
        f"Its log {directory / START_LOG_FILE} ends with:\n{_log_tail(directory)}",
        {"log": str(directory / START_LOG_FILE)},
    )


def _start_unless_running(directory: Path, sock: Path) -> bool:
    """Under the start lock: starts a service if none is alive; False when one is alive but silent."""
    with open(directory / LOCK_FILE, "a+") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            # Another process may have started it while we waited for the lock.
            if _probe(sock) == _SERVING:
                return True
            if running_service_pid(directory) is not None:
                return False
            _clear_stale(directory, sock)
            _start(directory, sock)
            return True
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def _silent_service_error(directory: Path, sock: Path, pid: int | None, waited: float) -> SparkConduitError:
    return SparkConduitError(
        SERVICE_UNAVAILABLE,
        f"The spark-conduit service at unix:{sock} (pid {pid}) is running but did not answer for "
        f"{waited:.0f} s. It was left running, since other Spark tasks on this host may be using it. If it "
        f"is stuck, stop it with `python -m spark_conduit stop` (in the same environment) or `kill {pid}` "
        f"and retry; its log is {directory / LOG_FILE}.",
        {"endpoint": f"unix:{sock}", "pid": str(pid)},
    )


def ensure_service() -> str:
    """Finds or starts the embedded service of this host; returns its gRPC target.

    A live service that does not answer yet is waited for (exponential backoff, up to
    PATIENCE_SECONDS) and never killed: it may be draining, paused or starved, and other
    tasks may depend on it. Only what a dead service left behind is cleared.
    """
    directory = runtime_dir()
    sock = directory / SOCKET_NAME
    target = f"unix:{sock}"
    if _healthy_until.get(target, 0.0) > time.monotonic():
        return target
    with _lock:
        _check_socket_path(sock)
        _check_runtime_dir(directory, create=True)
        started = time.monotonic()
        delay = _BACKOFF_FIRST_SECONDS
        while _probe(sock) != _SERVING:
            pid = running_service_pid(directory)
            if pid is None and _start_unless_running(directory, sock):
                break
            waited = time.monotonic() - started
            if waited >= PATIENCE_SECONDS:
                raise _silent_service_error(directory, sock, pid or running_service_pid(directory), waited)
            time.sleep(min(delay, PATIENCE_SECONDS - waited))
            delay = min(delay * 2, _BACKOFF_MAX_SECONDS)
        _healthy_until[target] = time.monotonic() + _HEALTHY_CACHE_SECONDS
        return target


def forget_health() -> None:
    """Makes the next call probe the service again (after a failed call)."""
    _healthy_until.clear()


def stop_service(timeout: float = 10.0) -> str:
    """Stops this host's embedded service (SIGTERM to its pid): an operator's explicit action."""
    directory = runtime_dir()
    if not _check_runtime_dir(directory, create=False):
        return f"No spark-conduit service is running for {directory}."
    pid = running_service_pid(directory)
    if pid is None:
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
    present = _check_runtime_dir(directory, create=False)
    return {
        "runtime_dir": str(directory),
        "socket": str(sock),
        "pid": running_service_pid(directory) if present else None,
        "serving": present and _probe(sock) == _SERVING,
        "log": str(directory / LOG_FILE),
        "start_log": str(directory / START_LOG_FILE),
        "bundle": str(bundle_path()),
        "bundle_present": bundle_path().is_file(),
    }
