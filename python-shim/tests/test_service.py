"""The embedded service's life cycle, with a fake `node` that serves the gRPC health check."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spark_conduit import service
from spark_conduit.__main__ import main as cli_main
from spark_conduit.errors import SparkConduitError

FAKE_NODE = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, sys, time
    from concurrent import futures
    args = sys.argv[1:]
    if args == ["--version"]:
        print(os.environ.get("FAKE_NODE_VERSION", "v22.1.0"))
        sys.exit(0)
    node_flags = [a for a in args if a.startswith("--max-semi-space-size")]
    assert node_flags == ["--max-semi-space-size=64"], args
    args = args[len(node_flags):]
    bundle, command = args[0], args[1]
    # The service starts with a scrubbed environment: the test steers the fake through a
    # file next to the bundle instead.
    control = json.loads(open(bundle + ".json").read()) if os.path.exists(bundle + ".json") else {{}}
    if control.get("crash"):
        print("fake service: cannot bind", file=sys.stderr)
        sys.exit(3)
    import grpc
    opts = dict(zip(args[2::2], args[3::2]))
    assert command == "serve", args
    runtime = os.path.dirname(opts["--pid-file"])
    with open(os.path.join(runtime, "starts.log"), "a") as f:
        f.write(" ".join(args) + "\\n")
    with open(os.path.join(runtime, "env.json"), "w") as f:
        json.dump(dict(os.environ), f)
    time.sleep(float(control.get("delay", 0.3)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    check = grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\\x08\\x01")
    health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {{"Check": check}})
    server.add_generic_rpc_handlers((health,))
    server.add_insecure_port(opts["--listen"])
    server.start()
    with open(opts["--pid-file"], "w") as f:
        f.write(str(os.getpid()))
    def stop(*_):
        os.unlink(opts["--pid-file"])
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("spark-conduit listening on " + opts["--listen"], flush=True)
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def fake_node(tmp_path, monkeypatch):
    # The fake must look like the real service to `ps`: "spark-conduit ... serve".
    node = tmp_path / "bin" / "node"
    node.parent.mkdir()
    node.write_text(FAKE_NODE.format(python=sys.executable))
    node.chmod(0o755)
    bundle = tmp_path / "spark-conduit.cjs"
    bundle.write_text("// fake bundle\n")
    runtime = Path(f"/tmp/scx-test-{os.getpid()}-{tmp_path.name[-12:]}")
    monkeypatch.setenv("SPARK_CONDUIT_NODE", str(node))
    monkeypatch.setenv("SPARK_CONDUIT_SERVER_BUNDLE", str(bundle))
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    service.forget_health()
    yield runtime
    service.stop_service(timeout=5)
    service.forget_health()
    shutil.rmtree(runtime, ignore_errors=True)


def starts(runtime: Path) -> int:
    log = runtime / "starts.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_starts_once_then_reuses(fake_node):
    runtime = fake_node
    target = service.ensure_service()
    assert target == f"unix:{runtime}/conduit.sock"
    assert service.health_check(target)
    assert starts(runtime) == 1
    line = (runtime / "starts.log").read_text()
    assert f"serve --listen unix:{runtime}/conduit.sock --pid-file {runtime}/service.pid" in line
    assert f"--log-file {runtime}/service.log" in line
    assert "--idle-exit-seconds 900" in line
    assert oct((runtime).stat().st_mode & 0o777) == "0o700"
    service.forget_health()
    assert service.ensure_service() == target
    assert starts(runtime) == 1
    info = service.status()
    assert info["serving"] is True and isinstance(info["pid"], int)


def test_concurrent_workers_start_one_service(fake_node):
    runtime = fake_node
    code = "from spark_conduit import service; print(service.ensure_service())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert {out.strip() for out, _ in outputs} == {f"unix:{runtime}/conduit.sock"}
    assert starts(runtime) == 1


def test_stop_and_restart(fake_node, capsys):
    runtime = fake_node
    service.ensure_service()
    pid = service.read_pid(runtime)
    assert cli_main(["stop"]) == 0
    assert f"pid {pid}" in capsys.readouterr().out
    deadline = time.monotonic() + 5
    while service.pid_alive(pid) and service.is_service_process(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cli_main(["status"]) == 3
    assert '"serving": false' in capsys.readouterr().out
    service.ensure_service()
    assert starts(runtime) == 2
    assert cli_main(["status"]) == 0


def test_stale_socket_and_pid_file_are_cleared(fake_node):
    runtime = fake_node
    runtime.mkdir(mode=0o700)
    # What a crashed service leaves: a socket file nobody listens on, a pid that is gone.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(runtime / "conduit.sock"))
    stale.close()
    (runtime / "service.pid").write_text("999999999")
    service.ensure_service()
    assert starts(runtime) == 1


def test_old_node_is_rejected(fake_node, monkeypatch):
    monkeypatch.setenv("FAKE_NODE_VERSION", "v18.19.0")
    with pytest.raises(SparkConduitError) as excinfo:
        service.ensure_service()
    assert excinfo.value.error_class == "NODE_NOT_FOUND"
    assert "Node.js 20 or newer" in str(excinfo.value) and "v18.19.0" in str(excinfo.value)


def test_missing_node(fake_node, monkeypatch):
    monkeypatch.delenv("SPARK_CONDUIT_NODE")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SparkConduitError, match="no `node` is on PATH"):
        service.ensure_service()


def test_missing_bundle(fake_node, monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_CONDUIT_SERVER_BUNDLE", str(tmp_path / "nope.cjs"))
    with pytest.raises(SparkConduitError) as excinfo:
        service.ensure_service()
    assert excinfo.value.error_class == "SERVICE_BUNDLE_MISSING"
    assert "npm run build" in str(excinfo.value)


def control(runtime_fixture_tmp: Path, **settings: object) -> None:
    """Steers the next fake service start (crash, delay) through a file next to the bundle."""
    (runtime_fixture_tmp / "spark-conduit.cjs.json").write_text(json.dumps(settings))


def test_crash_during_start_shows_the_log(fake_node, tmp_path):
    control(tmp_path, crash=True)
    with pytest.raises(SparkConduitError) as excinfo:
        service.ensure_service()
    assert excinfo.value.error_class == "SERVICE_START_FAILED"
    assert "cannot bind" in str(excinfo.value)


def test_socket_path_too_long(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(tmp_path / ("x" * 120)))
    with pytest.raises(SparkConduitError, match="longer than the 107 bytes"):
        service.ensure_service()


def test_runtime_dir_writable_by_others_is_refused(monkeypatch, tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    runtime.chmod(0o777)
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    with pytest.raises(SparkConduitError, match="has mode 0777, not 0700") as excinfo:
        service.ensure_service()
    assert excinfo.value.error_class == "SERVICE_NOT_PRIVATE"


def test_stop_when_nothing_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(tmp_path))
    assert cli_main(["stop"]) == 0
    assert "No spark-conduit service is running" in capsys.readouterr().out


def test_recycled_pid_is_never_signalled(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "service.pid").write_text(str(os.getpid()))  # this test process, not a service
    assert "No spark-conduit service is running" in service.stop_service()
