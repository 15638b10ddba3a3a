"""The embedded service is trusted only when nobody else can stand in for it: the runtime
directory and the socket must be ours, and so must the process behind the socket, before
anything (a health check included) is sent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_conduit import service
from spark_conduit.__main__ import main as cli_main
from spark_conduit.errors import SparkConduitError

NOBODY = 65534


@pytest.fixture
def as_root() -> None:
    """These tests give a file or a process another uid, which needs root: without it they
    fail in CI (CI=true: nothing may skip) and skip elsewhere."""
    if os.getuid() != 0:
        reason = "needs root to give a file or a process another uid"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a test that cannot run is a failure)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private scratch directory with a short path (unix socket paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="scx-priv-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def listening_socket(path: Path) -> socket.socket:
    """A real listener on ``path``: if the shim connected, accept() would return it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    listener.setblocking(False)
    return listener


def assert_never_connected(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()


def refused(monkeypatch, runtime: Path) -> SparkConduitError:
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    service.forget_health()
    with pytest.raises(SparkConduitError) as excinfo:
        service.ensure_service()
    assert excinfo.value.error_class == "SERVICE_NOT_PRIVATE"
    message = str(excinfo.value)
    assert "Nothing was sent to it" in message and "SPARK_CONDUIT_RUNTIME_DIR" in message
    return excinfo.value


def test_runtime_dir_with_mode_0755_is_refused_before_connecting(monkeypatch, short_dir):
    runtime = short_dir / "rt"
    runtime.mkdir()
    runtime.chmod(0o755)
    listener = listening_socket(runtime / "conduit.sock")
    error = refused(monkeypatch, runtime)
    assert f"{runtime}" in str(error) and "mode 0755, not 0700" in str(error)
    assert error.parameters["mode"] == "0755"
    assert_never_connected(listener)
    # The operator commands refuse it too: they would trust the pid file and the socket in it.
    assert cli_main(["status"]) == 1
    assert cli_main(["stop"]) == 1


def test_runtime_dir_readable_by_group_is_refused(monkeypatch, short_dir):
    runtime = short_dir / "rt"
    runtime.mkdir()
    runtime.chmod(0o750)  # not writable by anyone else, yet not private
    listener = listening_socket(runtime / "conduit.sock")
    assert "mode 0750" in str(refused(monkeypatch, runtime))
    assert_never_connected(listener)


def test_runtime_dir_of_another_uid_is_refused_before_connecting(monkeypatch, short_dir):
    if os.getuid() == 0:
        runtime = short_dir / "rt"
        runtime.mkdir(mode=0o700)
        listener = listening_socket(runtime / "conduit.sock")
        os.chown(runtime, NOBODY, NOBODY)
        other = NOBODY
    else:  # not root: a directory that exists and belongs to root stands in for "another user"
        runtime, listener, other = Path("/"), None, 0
    error = refused(monkeypatch, runtime)
    assert f"owned by uid {other}, not by you" in str(error)
    assert error.parameters["owner_uid"] == str(other)
    if listener is not None:
        assert_never_connected(listener)


def test_symlinked_runtime_dir_is_refused_before_connecting(monkeypatch, short_dir):
    private = short_dir / "private"
    private.mkdir(mode=0o700)  # ours and 0700: only the link is wrong
    listener = listening_socket(private / "conduit.sock")
    link = short_dir / "link"
    link.symlink_to(private)
    error = refused(monkeypatch, link)
    assert f"symbolic link (to {private})" in str(error)
    assert_never_connected(listener)


def test_runtime_dir_is_created_private(monkeypatch, short_dir):
    runtime = short_dir / "new" / "rt"
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    old = os.umask(0o022)
    try:
        assert service._check_runtime_dir(runtime, create=True) is True
    finally:
        os.umask(old)
    info = os.lstat(runtime)
    assert oct(info.st_mode & 0o777) == "0o700" and info.st_uid == os.getuid()


def test_socket_path_that_is_not_a_socket_is_refused(monkeypatch, short_dir):
    runtime = short_dir / "rt"
    runtime.mkdir(mode=0o700)
    (runtime / "conduit.sock").write_text("not a socket")
    assert "the socket path is not a socket" in str(refused(monkeypatch, runtime))
    assert (runtime / "conduit.sock").read_text() == "not a socket"  # left alone


@pytest.mark.usefixtures("as_root")
def test_socket_owned_by_another_uid_is_refused_before_connecting(monkeypatch, short_dir):
    runtime = short_dir / "rt"
    runtime.mkdir(mode=0o700)
    listener = listening_socket(runtime / "conduit.sock")
    os.chown(runtime / "conduit.sock", NOBODY, NOBODY)
    error = refused(monkeypatch, runtime)
    assert f"the socket is owned by uid {NOBODY}" in str(error)
    assert_never_connected(listener)


# Binds as root (so the socket file is ours), then drops to uid 65534 before listen(): the
# kernel records the listener's credentials at listen(), which is what SO_PEERCRED reports.
# It then accepts one connection and reports how many bytes the client sent before closing.
IMPOSTOR = textwrap.dedent(
    """
    import os, socket, sys
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sys.argv[1])
    os.setgid(65534)
    os.setuid(65534)
    listener.listen(8)
    print("ready", flush=True)
    listener.settimeout(30)
    connection, _ = listener.accept()
    connection.settimeout(10)
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except socket.timeout:
        print("client kept the connection open", flush=True)
    print(f"accepted 1 connection, received {len(received)} bytes", flush=True)
    """
)


@pytest.mark.usefixtures("as_root")
def test_listener_running_as_another_uid_is_refused_before_any_request(monkeypatch, short_dir):
    runtime = short_dir / "rt"
    runtime.mkdir(mode=0o700)
    sock = runtime / "conduit.sock"
    impostor = subprocess.Popen(
        [sys.executable, "-c", IMPOSTOR, str(sock)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert impostor.stdout is not None
        assert impostor.stdout.readline().strip() == "ready"
        assert os.lstat(sock).st_uid == os.getuid()  # the file looks like ours: only the peer check can tell
        error = refused(monkeypatch, runtime)
        assert f"the process listening on it runs as uid {NOBODY}, not as you" in str(error)
        assert error.parameters["peer_uid"] == str(NOBODY)
        out, err = impostor.communicate(timeout=60)
    finally:
        if impostor.poll() is None:
            impostor.kill()
            impostor.wait()
    assert out.strip() == "accepted 1 connection, received 0 bytes", (out, err)
