"""The real service bundle as the shim starts it: its own capped log file, a start-up log
that only holds the latest start, and the token never taken from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from spark_conduit import service


@pytest.fixture
def real_service(monkeypatch):
    bundle = service.bundle_path()
    assert bundle.is_file(), f"the service bundle {bundle} is missing: run `node scripts/build.mjs`"
    assert shutil.which("node"), "Node.js must be on PATH"
    runtime = Path(tempfile.mkdtemp(prefix="scx-real-", dir="/tmp"))
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    service.forget_health()
    yield runtime
    service.stop_service(timeout=15)
    service.forget_health()
    shutil.rmtree(runtime, ignore_errors=True)


def test_shim_starts_the_service_with_its_own_log_file(real_service):
    runtime = real_service
    (runtime / "service.start.log").write_text("left by an earlier start\n" * 1000)
    service.ensure_service()
    pid = service.read_pid(runtime)
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert [b"--log-file", str(runtime / "service.log").encode()] == command[command.index(b"--log-file") :][:2]
    lines = [json.loads(line) for line in (runtime / "service.log").read_text().splitlines()]
    assert any(line["msg"] == "listening" and line["address"] == f"unix:{runtime}/conduit.sock" for line in lines)
    # The start-up log is truncated on each start: it holds this start's output only.
    assert (runtime / "service.start.log").read_text() == f"spark-conduit listening on unix:{runtime}/conduit.sock\n"
    for name in ("service.log", "service.start.log"):
        assert os.stat(runtime / name).st_mode & 0o777 == 0o600, name


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node
    return subprocess.run(
        [node, str(service.bundle_path()), "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_token_on_the_command_line_is_refused(tmp_path):
    result = serve("--listen", f"unix:{tmp_path}/s.sock", "--token", "s3cret-token")
    assert result.returncode == 1
    assert "--token is not accepted" in result.stderr and "--token-file" in result.stderr
    assert "s3cret-token" not in result.stderr


def test_token_file_readable_by_others_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o644)
    result = serve("--listen", f"unix:{tmp_path}/s.sock", "--token-file", str(token))
    assert result.returncode == 1
    assert f"The token file {token} has mode 0644" in result.stderr and f"chmod 600 {token}" in result.stderr
    assert "s3cret-token" not in result.stderr
