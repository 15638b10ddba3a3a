"""A live service that is slow to answer (paused, starved, draining) is waited for and
never killed by a client; only what a dead service left behind is cleared."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from test_service import fake_node, starts  # noqa: F401  (fixture)

from spark_conduit import service
from spark_conduit.errors import SparkConduitError


def state(pid: int) -> str:
    """The process state letter from /proc (T: stopped), or "" when it is gone."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def test_paused_service_is_waited_for_not_killed(fake_node):  # noqa: F811
    runtime = fake_node
    service.ensure_service()
    pid = service.read_pid(runtime)
    assert pid
    os.kill(pid, signal.SIGSTOP)  # a GC pause or a starved CPU, stretched to 5 s
    resume = threading.Timer(5.0, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        service.forget_health()
        began = time.monotonic()
        target = service.ensure_service()
        waited = time.monotonic() - began
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
    assert waited >= 4.5, waited  # it did wait for the paused service ...
    assert service.read_pid(runtime) == pid and service.is_service_process(pid)  # ... the same one
    assert starts(runtime) == 1  # nothing was killed and nothing else started
    assert service.health_check(target)


def test_service_that_never_answers_is_left_running(fake_node, monkeypatch):  # noqa: F811
    runtime = fake_node
    service.ensure_service()
    pid = service.read_pid(runtime)
    assert pid
    monkeypatch.setattr(service, "PATIENCE_SECONDS", 4.0)
    os.kill(pid, signal.SIGSTOP)
    try:
        service.forget_health()
        began = time.monotonic()
        with pytest.raises(SparkConduitError) as excinfo:
            service.ensure_service()
        waited = time.monotonic() - began
        assert state(pid) == "T"  # still there, still paused: not signalled to death
    finally:
        os.kill(pid, signal.SIGCONT)
    assert waited >= 4.0
    error = excinfo.value
    assert error.error_class == "SERVICE_UNAVAILABLE"
    assert f"(pid {pid}) is running but did not answer" in str(error)
    assert "It was left running" in str(error) and "python -m spark_conduit stop" in str(error)
    assert error.parameters["pid"] == str(pid)
    # Once it answers again, the next task uses it.
    service.forget_health()
    service.ensure_service()
    assert service.read_pid(runtime) == pid and starts(runtime) == 1


def test_pid_of_another_program_is_not_waited_for(fake_node):  # noqa: F811
    runtime = fake_node
    runtime.mkdir(mode=0o700)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (runtime / "service.pid").write_text(str(sleeper.pid))  # a recycled pid: alive, not the service
        began = time.monotonic()
        service.ensure_service()
        assert time.monotonic() - began < 20
        assert starts(runtime) == 1
        assert sleeper.poll() is None  # never signalled
    finally:
        sleeper.kill()
        sleeper.wait()
