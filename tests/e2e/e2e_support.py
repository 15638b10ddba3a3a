"""Helpers for the end-to-end tests (imported by conftest.py and the test modules).

Shared by both databases: infrastructure checks (``missing``), running node scripts,
the error assertions, and the streaming helpers. Then one test-access class per database,
independent of the connector under test: ``DynamoDb`` (tests/e2e/dynamodb_helper.mjs, AWS
SDK for JavaScript) and ``Cassandra`` (scripts/cql.mjs, the npm cassandra-driver).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("dynamodb_helper.mjs")
CQL = ROOT / "scripts" / "cql.mjs"
IN_CI = os.environ.get("CI", "").lower() == "true"
CREDENTIALS = {"aws_access_key_id": "dummy", "aws_secret_access_key": "dummy"}


def missing(reason: str) -> None:
    """Missing infrastructure: a failure in CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: missing infrastructure is a failure)", pytrace=False)
    pytest.skip(reason)


def is_connect(session) -> bool:
    return type(session).__module__.startswith("pyspark.sql.connect")


def run(command: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM (a service drains), then SIGKILL if it has not exited in ``timeout`` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


# --- What a user sees when something fails ---------------------------------------------


def failure(action: Callable[[], object]) -> str:
    """Runs ``action``, which must fail; returns the text the user sees."""
    with pytest.raises(Exception) as excinfo:
        action()
    return str(excinfo.value)


def assert_error(text: str, error_class: str, *names: str, secrets: Iterable[str] = ("dummy-secret",)) -> None:
    """The message carries ``[ERROR_CLASS]`` and every name; no ``undefined``, no secret."""
    assert f"[{error_class}]" in text, text[:3000]
    for name in names:
        assert name in text, f"{name!r} not in: {text[:3000]}"
    assert "undefined" not in text
    for secret in secrets:
        assert secret not in text, "a credential appears in the message"


# --- Streaming ---------------------------------------------------------------------------


RATE_ROWS_PER_SECOND = 20


def rate_source(spark):
    """Spark's rate source (columns ``timestamp``, ``value`` = 0, 1, 2, ...), two partitions."""
    return (
        spark.readStream.format("rate")
        .option("rowsPerSecond", str(RATE_ROWS_PER_SECOND))
        .option("numPartitions", "2")
        .load()
    )


def wait_for_batches(query, count: int, first_batch: bool = False, timeout: float = 120.0) -> int:
    """Waits until ``count`` micro-batches with rows completed; returns the last batch id
    seen (or the first one, with ``first_batch``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query.exception() is not None:
            raise AssertionError(f"streaming query failed: {query.exception()}")
        progress = [p for p in query.recentProgress if (p.numInputRows or 0) > 0]
        if first_batch and progress:
            return progress[0].batchId
        if len(progress) >= count:
            return progress[-1].batchId
        time.sleep(0.5)
    pytest.fail(f"the streaming query did not complete {count} batches in {timeout:.0f} s: {query.status}")


def committed_rows(query) -> int:
    """How many rows of ``rate_source`` the (stopped) query committed: values 0 .. n-1.

    The rate source's offset counts seconds (value = second x rows per second), and a
    progress report is made only once a micro-batch is committed. A micro-batch cut short
    by ``stop()`` is not committed: some of its rows may be written (tasks that finished),
    and a restart from the checkpoint writes it again.
    """
    progress = query.recentProgress
    if not progress:
        return 0
    end = progress[-1].sources[0].endOffset
    return int(json.loads(end) if isinstance(end, str) else end) * RATE_ROWS_PER_SECOND


def assert_nothing_lost(values: Iterable[int], committed: int) -> None:
    """Every row of every committed micro-batch (values 0 .. committed-1) was written."""
    present = set(values)
    assert committed > 0, "no micro-batch was committed"
    lost = sorted(set(range(committed)) - present)
    assert not lost, f"rows of committed micro-batches are missing: {lost[:50]}"


# --- DynamoDB Local ----------------------------------------------------------------------


def wait_for_rows(query, total: int, timeout: float = 180.0) -> None:
    """Waits until a streaming query's committed micro-batches hold ``total`` input rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query.exception() is not None:
            raise AssertionError(f"streaming query failed: {query.exception()}")
        done = sum(p.numInputRows or 0 for p in query.recentProgress)
        if done >= total:
            return
        time.sleep(0.5)
    pytest.fail(f"the query read fewer than {total} rows in {timeout:.0f} s: {query.recentProgress[-1:]}")


def input_rows(query) -> list[int]:
    """The input row counts of a streaming query's micro-batches that had rows."""
    return [p.numInputRows for p in query.recentProgress if p.numInputRows]


def memory_query(spark, df, name: str, checkpoint: Path):
    """``df`` into a memory table ``name`` with ``trigger(availableNow=True)``, started."""
    return (
        df.writeStream.format("memory")
        .queryName(name)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )


def run_to_end(spark, df, tmp_path: Path, timeout: float = 180.0) -> str:
    """Runs a streaming read to the end (availableNow) into a memory table; raises what Spark
    raises; returns the memory table's name."""
    name = f"run_{uuid.uuid4().hex[:8]}"
    query = memory_query(spark, df, name, tmp_path / f"cp-{uuid.uuid4().hex[:6]}")
    try:
        assert query.awaitTermination(timeout), "the query did not end"
        if query.exception() is not None:
            raise RuntimeError(str(query.exception()))
    finally:
        query.stop()
    return name


class BackgroundRounds:
    """Calls ``make_round(r)`` for each ``r`` of ``rounds`` in a background thread, pausing
    between rounds, so changes keep coming while queries stop and start. Bounded by
    ``rounds``; ``join(stop=True)`` ends it early."""

    def __init__(self, make_round: Callable[[int], None], rounds: range, pause: float = 0.5, timeout: float = 180.0):
        self.make_round = make_round
        self.rounds = rounds
        self.pause = pause
        self.timeout = timeout
        self.done_rounds = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for r in self.rounds:
                if self.stopping.is_set():
                    return
                self.make_round(r)
                self.done_rounds += 1
                self.stopping.wait(self.pause)
        except BaseException as error:  # surfaced by join()
            self.error = error

    def start(self):
        self.thread.start()
        return self

    def wait_rounds(self, count: int) -> None:
        deadline = time.monotonic() + self.timeout
        while self.done_rounds < count and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.done_rounds >= count, f"the writer made {self.done_rounds} of {count} rounds ({self.error})"

    def join(self, stop: bool = False) -> None:
        if stop:
            self.stopping.set()
        self.thread.join(timeout=self.timeout)
        assert not self.thread.is_alive(), "the background writer did not finish"
        if self.error is not None:
            raise self.error


def stop_and_restart_while_writing(start_query, writer: BackgroundRounds, first_rows: int, round_rows: int) -> list:
    """Runs a streaming query (``start_query()`` starts it on its checkpoint) until it read
    ``first_rows``, stops it, and starts it again until it read a round written after the
    stop (``round_rows``), while ``writer`` keeps writing; then stops the writer. Returns both
    queries (the caller drains the rest and compares)."""
    queries = []
    try:
        for rows in (first_rows, round_rows):
            seen = writer.done_rounds
            query = start_query()
            queries.append(query)
            try:
                writer.wait_rounds(seen + 1)
                wait_for_rows(query, rows)
            finally:
                query.stop()
            assert query.exception() is None
            assert writer.thread.is_alive(), f"the writer stopped before query {len(queries)} did"
    finally:
        writer.join(stop=True)
    return queries


class DynamoDb:
    """Test access to DynamoDB Local (through the AWS SDK for JavaScript)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _call(self, command: str, args: dict | None = None) -> str:
        result = run(["node", str(HELPER), self.endpoint, command, json.dumps(args or {})])
        if result.returncode != 0:
            raise RuntimeError(f"dynamodb_helper {command} failed: {result.stderr.strip()}")
        return result.stdout

    def create_table(self, table: str, hash_key: tuple[str, str] = ("id", "S"), range_key=None) -> str:
        self.drop_table(table)
        self._call(
            "create",
            {"table": table, "hash": list(hash_key), "range": list(range_key) if range_key else None},
        )
        return table

    def drop_table(self, table: str) -> None:
        self._call("drop", {"table": table})

    def put_items(self, table: str, items: list[dict]) -> None:
        self._call("put", {"table": table, "items": [marshal(item) for item in items]})

    def raw_items(self, table: str) -> list[dict]:
        return json.loads(self._call("scan", {"table": table}))

    def items(self, table: str) -> list[dict]:
        """Plain Python items, sorted by ``id`` when present."""
        items = [unmarshal_item(item) for item in self.raw_items(table)]
        return sorted(items, key=lambda item: str(item.get("id", "")))

    def tables(self) -> list[str]:
        return json.loads(self._call("tables"))


def marshal(value):
    if isinstance(value, dict):
        return {k: _marshal_value(v) for k, v in value.items()}
    raise TypeError(value)


def _marshal_value(value):
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_marshal_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _marshal_value(v) for k, v in value.items()}}
    raise TypeError(f"cannot marshal {value!r}")


def _unmarshal(value: dict):
    [(kind, inner)] = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        number = Decimal(inner)
        return int(number) if number == number.to_integral_value() and "." not in inner else number
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    if kind == "L":
        return [_unmarshal(v) for v in inner]
    if kind == "M":
        return {k: _unmarshal(v) for k, v in inner.items()}
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {Decimal(v) for v in inner}
    return {kind: inner}


def unmarshal_item(item: dict) -> dict:
    return {k: _unmarshal(v) for k, v in item.items()}


# --- Cassandra ---------------------------------------------------------------------------


class Cassandra:
    """Test access to the local Cassandra, through scripts/cql.mjs (npm cassandra-driver).

    ``info`` is the JSON that ``node scripts/local-cassandra.mjs start`` prints (and
    scripts/test.sh passes as SPARK_CONDUIT_TEST_CASSANDRA): host, port, tlsPort,
    caCertFile, username, password, localDataCenter.
    """

    def __init__(self, info: dict) -> None:
        self.host: str = info["host"]
        self.port = int(info["port"])
        self.tls_port = int(info.get("tlsPort") or info["port"])
        self.ca_cert_file: str | None = info.get("caCertFile")
        self.username: str | None = info.get("username")
        self.password: str | None = info.get("password")
        self.local_datacenter: str = info.get("localDataCenter") or "datacenter1"

    @property
    def options(self) -> dict[str, str]:
        """What a seed example adds for the local server: its port and the login
        (PasswordAuthenticator is on). ``host`` stays the seed's 127.0.0.1."""
        login = {"username": self.username, "password": self.password} if self.username else {}
        return {"port": str(self.port), **login}

    def cql(self, *statements: str) -> list[list[dict]]:
        """Runs the statements in order; returns each one's rows."""
        env = {
            "CASSANDRA_HOST": self.host,
            "CASSANDRA_PORT": str(self.port),
            "CASSANDRA_USERNAME": self.username or "",
            "CASSANDRA_PASSWORD": self.password or "",
            "CASSANDRA_LOCAL_DC": self.local_datacenter,
            "CASSANDRA_CA_CERT": "",
        }
        result = run(["node", str(CQL), *statements], timeout=180, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"scripts/cql.mjs failed: {result.stderr.strip()}")
        # Decimals keep every digit (Cassandra renders them as JSON numbers).
        return [json.loads(line, parse_float=Decimal) for line in result.stdout.splitlines() if line.strip()]

    def rows(self, keyspace: str, table: str, key: str = "id") -> list[dict]:
        """Every row as Cassandra renders it with SELECT JSON, sorted by ``key``."""
        [rows] = self.cql(f"SELECT JSON * FROM {keyspace}.{table}")
        return sorted(rows, key=lambda row: str(row.get(key)))

    def count(self, keyspace: str, table: str) -> int:
        [[row]] = self.cql(f"SELECT count(*) FROM {keyspace}.{table}")
        return int(row["count"])

    def keyspaces(self) -> list[str]:
        [rows] = self.cql("SELECT keyspace_name FROM system_schema.keyspaces")
        return sorted(row["keyspace_name"] for row in rows)

    def tables(self, keyspace: str) -> list[str]:
        [rows] = self.cql(f"SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{keyspace}'")
        return sorted(row["table_name"] for row in rows)

    def create_keyspace(self, keyspace: str) -> None:
        self.cql(
            f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
