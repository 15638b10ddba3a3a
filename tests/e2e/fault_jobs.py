"""Helpers for the fault-injection tests: run tests/e2e/spark_jobs/fault_driver.py as a
separate, killable Spark driver, watch its progress, kill the embedded service or the
driver, and build the exact rows the driver generates so whole tables can be compared.

Each job gets its own runtime directory for the embedded service, so killing "the service"
kills only the one this job's tasks use, never the one of the pytest session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_support import HELPER, ROOT, run

DRIVER = Path(__file__).with_name("spark_jobs") / "fault_driver.py"
DYNAMODB_COUNT = Path(__file__).with_name("spark_jobs") / "dynamodb_count.mjs"


def expected_row(i: int) -> dict:
    """Row ``i`` of fault_driver.source_rows (the same formulas, in Python)."""
    return {"id": i, "name": f"name-{i}", "v": (i * 7919) % 1000003, "payload": f"payload-{i}-" + "x" * 300}


def expected_rows(ids) -> dict[int, dict]:
    return {i: expected_row(i) for i in ids}


def wait_for(condition: Callable[[], object], timeout: float, what: str, job: FaultJob | None = None):
    """Polls ``condition`` until it returns something truthy; fails after ``timeout`` s
    (or at once when ``job`` exits first, with its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if job is not None and job.process.poll() is not None:
            value = condition()
            if value:
                return value
            pytest.fail(f"the Spark job exited ({job.process.returncode}) before {what}:\n{job.log_tail()}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}" + (f":\n{job.log_tail()}" if job else ""))


@dataclass
class Progress:
    """Lines of the driver's progress file: (phase, batch id or -1, partition, attempt, rows)."""

    lines: list[tuple[str, int, int, int, int]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Progress:
        lines = []
        with contextlib.suppress(FileNotFoundError):
            for text in path.read_text().splitlines():
                parts = text.split()
                if len(parts) == 5:  # a line being appended right now may be incomplete
                    phase, batch, partition, attempt, rows = parts
                    lines.append((phase, -1 if batch == "-" else int(batch), int(partition), int(attempt), int(rows)))
        return cls(lines)

    def rows(self, phase: str, batch: int | None = None, attempt: int | None = None) -> int:
        return sum(
            r
            for p, b, _, a, r in self.lines
            if p == phase and (batch is None or b == batch) and (attempt is None or a == attempt)
        )

    def retried(self, phase: str, batch: int | None = None) -> bool:
        """Whether a task of the phase (and batch) ran a second attempt."""
        return any(p == phase and (batch is None or b == batch) and a > 0 for p, b, _, a, _ in self.lines)

    def batches(self, phase: str) -> list[int]:
        return sorted({b for p, b, *_ in self.lines if p == phase})


class FaultJob:
    """One run of fault_driver.py in its own process group (so a kill takes the JVM and the
    Python workers with it) with a private service runtime directory."""

    def __init__(self, mode: str, spec: dict, workdir: Path, runtime_dir: Path, name: str) -> None:
        self.workdir = workdir
        self.runtime_dir = runtime_dir
        self.spec_file = workdir / f"{name}.spec.json"
        self.log_file = workdir / f"{name}.log"
        self.result_file = Path(spec["result_file"])
        self.spec_file.write_text(json.dumps(spec))
        env = {
            **os.environ,
            "SPARK_CONDUIT_RUNTIME_DIR": str(runtime_dir),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true",
        }
        env.pop("SPARK_CONDUIT_ENDPOINT", None)
        env.pop("SPARK_REMOTE", None)
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(DRIVER), mode, str(self.spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )

    def wait(self, timeout: float) -> dict:
        """Waits for a clean exit; returns the driver's result JSON."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the Spark job did not finish within {timeout:.0f} s:\n{self.log_tail()}")
        assert code == 0, f"the Spark job failed (exit {code}):\n{self.log_tail()}"
        return json.loads(self.result_file.read_text())

    def kill(self) -> None:
        """SIGKILL to the driver's whole process group (driver, its JVM, Python workers).
        The embedded service runs in its own session and survives, as on a real host."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        # Wait for the rest of the group (the JVM) to be gone too.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def service_pid(runtime_dir: Path) -> int | None:
    """The live embedded service of ``runtime_dir`` (its pid file, checked to be the service)."""
    from spark_conduit.service import is_service_process, pid_alive

    for pid_file in sorted(runtime_dir.rglob("service.pid")):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if pid_alive(pid) and is_service_process(pid):
                return pid
    return None


def kill_service(runtime_dir: Path) -> int:
    """SIGKILLs the job's embedded service; returns the pid it had."""
    pid = service_pid(runtime_dir)
    assert pid is not None, f"no live service under {runtime_dir}"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), f"the service {pid} survived SIGKILL"
    return pid


def _alive(pid: int) -> bool:
    """Alive and not a zombie (the service is not our child, but be exact)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_services(runtime_dir: Path) -> None:
    """Ends whatever service the job left running (it would idle for 15 minutes)."""
    for _ in range(3):
        pid = service_pid(runtime_dir)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def runtime_directory():
    """A private, short runtime dir (unix socket paths are limited to 108 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="scx-f-", dir="/tmp"))
    try:
        yield directory
    finally:
        stop_services(directory)
        shutil.rmtree(directory, ignore_errors=True)


# --- Independent access to the tables (not through the connector) -----------------------


def dynamodb_count(endpoint: str, table: str) -> int:
    result = run(["node", str(DYNAMODB_COUNT), endpoint, table], timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def dynamodb_table(endpoint: str, table: str) -> list[dict]:
    """Every item of the table as plain Python (numbers as int), straight from the SDK."""
    from e2e_support import unmarshal_item

    result = run(["node", str(HELPER), endpoint, "scan", json.dumps({"table": table})], timeout=300)
    assert result.returncode == 0, result.stderr
    return [unmarshal_item(item) for item in json.loads(result.stdout)]


def cassandra_table(cassandra, keyspace: str, table: str) -> list[dict]:
    [rows] = cassandra.cql(f"SELECT id, name, v, payload FROM {keyspace}.{table}")
    return rows


@dataclass(frozen=True)
class JobTable:
    """A fresh table for the driver's rows: the format and options to write it, and its
    count and rows read straight from the database."""

    format: str
    options: dict[str, str]
    count: Callable[[], int]
    rows: Callable[[], list[dict]]


@contextlib.contextmanager
def dynamodb_job_table(dynamodb):
    from e2e_support import CREDENTIALS

    table = f"faults_{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(table, ("id", "N"))
    try:
        options = {"table_name": table, "aws_region": "us-east-1", "endpoint_url": dynamodb.endpoint, **CREDENTIALS}
        yield JobTable(
            "dynamodb",
            options,
            lambda: dynamodb_count(dynamodb.endpoint, table),
            lambda: dynamodb_table(dynamodb.endpoint, table),
        )
    finally:
        dynamodb.drop_table(table)


@contextlib.contextmanager
def cassandra_job_table(cassandra, keyspace: str):
    table = f"faults_{uuid.uuid4().hex[:10]}"
    cassandra.cql(f"CREATE TABLE {keyspace}.{table} (id bigint PRIMARY KEY, name text, v bigint, payload text)")
    try:
        options = {"host": cassandra.host, "keyspace": keyspace, "table": table, **cassandra.options}
        yield JobTable(
            "pycassandra",
            options,
            lambda: cassandra.count(keyspace, table),
            lambda: cassandra_table(cassandra, keyspace, table),
        )
    finally:
        cassandra.cql(f"DROP TABLE IF EXISTS {keyspace}.{table}")


def compare(actual: list[dict], expected: dict[int, dict]) -> tuple[int, int, list]:
    """(rows lost, rows duplicated or extra, first differing rows) of a whole table."""
    seen: dict[int, int] = {}
    wrong = []
    for row in actual:
        key = int(row["id"])
        seen[key] = seen.get(key, 0) + 1
        want = expected.get(key)
        got = {
            "id": key,
            "name": row.get("name"),
            "v": int(row["v"]) if row.get("v") is not None else None,
            "payload": row.get("payload"),
        }
        if want is not None and got != want and len(wrong) < 5:
            wrong.append((got, want))
    lost = sum(1 for key in expected if key not in seen)
    extra = sum(count - 1 for count in seen.values()) + sum(1 for key in seen if key not in expected)
    return lost, extra, wrong
