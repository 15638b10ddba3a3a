"""Cassandra under injected faults, through real PySpark, the shim and the service.

The service reaches Cassandra through the fault proxy (tests/support/fault-proxy,
``--protocol cql``), which answers chosen CQL requests with the errors a real node sends
(write timeouts that were applied and that were not, unavailable, overloaded, read
timeouts), drops connections before and after Cassandra answered, and stalls all traffic
like a stopped node. Every write test then reads the WHOLE table straight from Cassandra
(scripts/cql.mjs, not the proxy, not the connector) and compares it with the source:
exact count, no row lost, no row extra, every value equal.

Heavy runs use the classic session only (the machine has two cores); the proxy's own
behaviour is covered in tests/integration/cassandra-faults.test.ts.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from e2e_support import IN_CI, missing
from fault_proxy import FaultProxy

CLASSIC = pytest.mark.parametrize("spark", ["classic"], indirect=True)
ROWS = 100_000
#: Rows that share a partition key (p = id div GROUP): the writer sends them as one UNLOGGED batch.
GROUP = 3


@pytest.fixture(scope="module")
def keyspace(cassandra):
    name = f"faults_{uuid.uuid4().hex[:10]}"
    cassandra.create_keyspace(name)
    yield name
    cassandra.cql(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture
def table(cassandra, keyspace):
    name = f"t_{uuid.uuid4().hex[:10]}"
    cassandra.cql(f"CREATE TABLE {keyspace}.{name} (p int, id bigint, v text, d double, PRIMARY KEY (p, id))")
    return name


@pytest.fixture
def proxy(cassandra):
    with FaultProxy("cql", cassandra.host, cassandra.port, max_seconds=600) as running:
        yield running


def source(spark, rows: int):
    """The DataFrame every write test writes: deterministic, so the expected table is known."""
    return spark.range(0, rows, numPartitions=2).selectExpr(
        f"cast(id div {GROUP} as int) as p",
        "id",
        "concat('v', cast(id as string)) as v",
        "cast(id as double) * 0.25 as d",
    )


def expected(rows: int) -> set[tuple]:
    return {(i // GROUP, i, f"v{i}", i * 0.25) for i in range(rows)}


def options(cassandra, proxy, keyspace: str, table: str, **extra: str) -> dict[str, str]:
    return {
        "host": proxy.host,
        "port": str(proxy.port),
        "keyspace": keyspace,
        "table": table,
        "username": cassandra.username or "",
        "password": cassandra.password or "",
        **extra,
    }


def table_rows(cassandra, keyspace: str, table: str) -> list[tuple]:
    """Every row, read straight from Cassandra (no proxy, no connector)."""
    [rows] = cassandra.cql(f"SELECT p, id, v, d FROM {keyspace}.{table}")
    return [(r["p"], int(r["id"]), r["v"], float(r["d"])) for r in rows]


def assert_table_equals_source(cassandra, keyspace: str, table: str, rows: int) -> None:
    actual = table_rows(cassandra, keyspace, table)
    want = expected(rows)
    got = set(actual)
    assert len(actual) == rows, f"{len(actual)} rows in the table, {rows} in the source"
    assert len(got) == len(actual), "a primary key came back twice"
    lost, extra = want - got, got - want
    assert not lost and not extra, (
        f"{len(lost)} rows lost (e.g. {sorted(lost)[:3]}), {len(extra)} extra (e.g. {sorted(extra)[:3]})"
    )


def write(spark, rows: int, opts: dict[str, str]) -> float:
    started = time.monotonic()
    source(spark, rows).write.format("pycassandra").mode("append").options(**opts).save()
    return time.monotonic() - started


def data_requests(stats: dict) -> int:
    return stats.get("requests_EXECUTE", 0) + stats.get("requests_BATCH", 0)


# --------------------------------------------------------------------------------------
# The big mixed write
# --------------------------------------------------------------------------------------


@CLASSIC
def test_100k_rows_through_every_write_fault_arrive_exactly_once(spark, cassandra, proxy, keyspace, table):
    """100,000 rows in 2 tasks while about 4% of the write requests fail in every way a node
    can fail them (and a few connections drop): the table equals the source."""
    proxy.configure(
        {
            "seed": 9,
            "rules": [
                {"fault": "write_timeout", "match": table, "probability": 0.01},
                {"fault": "write_timeout_not_applied", "match": table, "probability": 0.01},
                {"fault": "unavailable", "match": table, "probability": 0.01},
                {"fault": "overloaded", "match": table, "probability": 0.01},
                {"fault": "drop_unsent", "match": table, "after": 3_000, "every": 9_000, "max": 2},
                {"fault": "drop_before_answer", "match": table, "after": 6_000, "every": 9_000, "max": 2},
                {"fault": "drop_after_answer", "match": table, "after": 9_000, "every": 9_000, "max": 2},
            ],
        }
    )
    seconds = write(spark, ROWS, options(cassandra, proxy, keyspace, table))
    stats = proxy.stats()
    print(f"\n100k mixed faults: {seconds:.1f} s, proxy stats {json.dumps(stats, sort_keys=True)}")
    for fault in (
        "write_timeout",
        "write_timeout_not_applied",
        "unavailable",
        "overloaded",
        "drop_unsent",
        "drop_before_answer",
        "drop_after_answer",
    ):
        assert stats[fault] > 0, f"{fault} never fired: {stats}"
    assert stats["write_timeout_applied_answers_replaced"] > 0
    # Every row went through the proxy (about ROWS / GROUP requests, more with retries).
    assert data_requests(stats) >= ROWS // GROUP
    assert_table_equals_source(cassandra, keyspace, table, ROWS)


# --------------------------------------------------------------------------------------
# One smaller write per fault kind
# --------------------------------------------------------------------------------------

SMALL = 6_000


@CLASSIC
@pytest.mark.parametrize(
    "rule",
    [
        {"fault": "write_timeout", "every": 20},
        {"fault": "write_timeout_not_applied", "every": 20},
        {"fault": "unavailable", "every": 20},
        {"fault": "overloaded", "every": 20},
        {"fault": "drop_unsent", "after": 300, "every": 700, "max": 2},
        {"fault": "drop_before_answer", "after": 300, "every": 700, "max": 2},
        {"fault": "drop_after_answer", "after": 300, "every": 700, "max": 2},
    ],
    ids=lambda rule: rule["fault"],
)
def test_each_write_fault_alone_loses_and_duplicates_nothing(spark, cassandra, proxy, keyspace, table, rule):
    proxy.configure({"rules": [{**rule, "match": table}]})
    seconds = write(spark, SMALL, options(cassandra, proxy, keyspace, table))
    stats = proxy.stats()
    print(f"\n[fault report] {rule['fault']}: {SMALL} rows, {stats[rule['fault']]} injected, {seconds:.1f} s")
    assert stats[rule["fault"]] > 0, stats
    assert_table_equals_source(cassandra, keyspace, table, SMALL)


# --------------------------------------------------------------------------------------
# A stalled node
# --------------------------------------------------------------------------------------


@CLASSIC
def test_a_node_stalled_past_the_request_timeout_mid_write_ends_with_the_exact_table(
    spark, cassandra, proxy, keyspace, table
):
    """All traffic stops for 5 s mid-write while the client gives a request 2 s: requests time
    out on the client, the writer retries them after the node is back, and the table is
    exact. (Decided: a stall shorter than the retry budget must not fail the job.)"""
    proxy.configure({"rules": [{"fault": "pause", "match": table, "after": 2_000, "ms": 5_000, "max": 1}]})
    seconds = write(spark, 20_000, options(cassandra, proxy, keyspace, table, request_timeout_ms="2000"))
    stats = proxy.stats()
    print(f"\nstalled 5 s: write took {seconds:.1f} s, {json.dumps(stats, sort_keys=True)}")
    assert stats["pause"] == 1
    assert seconds >= 5
    assert_table_equals_source(cassandra, keyspace, table, 20_000)


def _cassandra_we_may_stop(cassandra) -> int | None:
    """The pid of a Cassandra this run may SIGSTOP: one the CI run started for the tests (its
    launcher JSON carries the pid) or one named by SPARK_CONDUIT_TEST_CASSANDRA_STOPPABLE=1.
    Never the shared Cassandra other developers use."""
    info = json.loads(os.environ.get("SPARK_CONDUIT_TEST_CASSANDRA") or "{}")
    pid = info.get("pid")
    allowed = IN_CI or os.environ.get("SPARK_CONDUIT_TEST_CASSANDRA_STOPPABLE") == "1"
    if not allowed or not isinstance(pid, int) or int(info.get("port", -1)) != cassandra.port:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.is_file() or b"CassandraDaemon" not in cmdline.read_bytes():
        return None
    return pid


@CLASSIC
def test_a_really_stopped_cassandra_process_mid_write_ends_with_the_exact_table(spark, cassandra, keyspace, table):
    """SIGSTOP of the real Cassandra process for 5 s in the middle of a write (no proxy), then
    SIGCONT: the table equals the source. Only a Cassandra this run may stop (see above)."""
    pid = _cassandra_we_may_stop(cassandra)
    if pid is None:
        missing(
            "no Cassandra that this run may SIGSTOP (CI's, or SPARK_CONDUIT_TEST_CASSANDRA_STOPPABLE=1 with its pid)"
        )
    rows = 60_000
    stopped_at: list[float] = []
    writing = threading.Event()

    def stop_then_continue():
        # Stop once the write's rows reach the table, so the stop lands inside the write
        # (a fixed delay may stop it before the tasks start or after they end).
        deadline = time.monotonic() + 120
        while writing.is_set() and time.monotonic() < deadline:
            [found] = cassandra.cql(f"SELECT id FROM {keyspace}.{table} LIMIT 1")
            if found:
                break
            time.sleep(0.1)
        if not writing.is_set():
            return
        os.kill(pid, signal.SIGSTOP)
        stopped_at.append(time.monotonic())
        try:
            time.sleep(5)
        finally:
            os.kill(pid, signal.SIGCONT)

    stopper = threading.Thread(target=stop_then_continue, daemon=True)
    opts = {
        "host": cassandra.host,
        "port": str(cassandra.port),
        "keyspace": keyspace,
        "table": table,
        "username": cassandra.username or "",
        "password": cassandra.password or "",
        "request_timeout_ms": "2000",
    }
    writing.set()
    stopper.start()
    try:
        seconds = write(spark, rows, opts)
        ended = time.monotonic()
    finally:
        writing.clear()
        stopper.join(timeout=30)
        os.kill(pid, signal.SIGCONT)
    assert stopped_at, "the process was never stopped"
    assert stopped_at[0] + 5 <= ended, "the write ended before the 5 s stop did: make it longer"
    print(f"\n[fault report] SIGSTOP 5 s mid-write: {rows} rows, write took {seconds:.1f} s")
    assert_table_equals_source(cassandra, keyspace, table, rows)


# --------------------------------------------------------------------------------------
# Beyond the retry budget; non-idempotent statements; reads
# --------------------------------------------------------------------------------------


@CLASSIC
def test_faults_beyond_the_retry_budget_fail_the_job_clearly_and_in_bounded_time(
    spark, cassandra, proxy, keyspace, table
):
    """Every write answered Overloaded: the job fails within seconds with an error naming the
    table and the retries. This also proves the service never bypasses the proxy."""
    proxy.configure({"rules": [{"fault": "overloaded", "match": table}]})
    started = time.monotonic()
    with pytest.raises(Exception) as failure:
        write(spark, 2_000, options(cassandra, proxy, keyspace, table, max_retries="3"))
    seconds = time.monotonic() - started
    message = str(failure.value)
    assert f"{keyspace}.{table}" in message, message
    assert "after 3 retries" in message, message
    assert seconds < 60, f"the failing job took {seconds:.0f} s"
    assert proxy.stats()["overloaded"] >= 4


@CLASSIC
def test_a_list_column_is_not_appended_twice_when_a_timed_out_write_is_replayed(spark, cassandra, proxy, keyspace):
    """Non-idempotent: INSERT of a non-frozen list keys its cells by time UUIDs the node makes,
    so replaying an applied write appends the elements again (tests/integration/
    cassandra-faults.test.ts shows it with the driver alone). Every write of this table is
    applied and reported timed out once: each list must hold its elements once."""
    table = f"l_{uuid.uuid4().hex[:10]}"
    cassandra.cql(f"CREATE TABLE {keyspace}.{table} (id bigint PRIMARY KEY, l list<int>)")
    # 15% of the writes at random (a fixed rhythm like every 2nd can meet one statement's
    # retries every time): the writer retries each with its row's next write timestamp, at
    # most 7 times after an applied attempt, so max_retries=10 leaves the slots as the limit
    # (a row meets 8 timeouts in a row about once in 10^4 runs; at 25% once in 170).
    proxy.configure({"seed": 3, "rules": [{"fault": "write_timeout", "match": table, "probability": 0.15}]})
    rows = 400
    df = spark.range(0, rows, numPartitions=2).selectExpr("id", "array(cast(id as int), 7) as l")
    error: Exception | None = None
    try:
        df.write.format("pycassandra").mode("append").options(
            **options(cassandra, proxy, keyspace, table, max_retries="10")
        ).save()
    except Exception as failure:
        error = failure
    injected = proxy.stats()["write_timeout"]
    print(f"\n[fault report] list replays: {rows} rows, {injected} applied write timeouts, job error: {error}")
    assert injected > 20
    [stored] = cassandra.cql(f"SELECT id, l FROM {keyspace}.{table}")
    doubled = [r for r in stored if len(r["l"] or []) != 2]
    assert not doubled, (
        f"{len(doubled)} of {len(stored)} lists hold their elements more than once, "
        f"e.g. {doubled[:2]} (job error: {error})"
    )
    assert error is None, f"the job failed: {error}"
    assert sorted((int(r["id"]), r["l"]) for r in stored) == [(i, [i, 7]) for i in range(rows)]


@pytest.mark.parametrize("spark", ["classic"], indirect=True)
def test_a_read_through_read_timeouts_returns_every_row_exactly_once(spark, cassandra, proxy, keyspace, table):
    """Every third page request gets a ReadTimeout of the kind a node retries itself (enough
    replicas answered, the data replica did not): every row comes back exactly once."""
    rows = 30_000
    write(spark, rows, options(cassandra, proxy, keyspace, table))
    proxy.configure(
        {
            "rules": [
                {
                    "fault": "read_timeout",
                    "match": f'FROM "{keyspace}"."{table}"',
                    "every": 3,
                    "received": 1,
                    "blockfor": 1,
                }
            ]
        }
    )
    got = (
        spark.read.format("pycassandra")
        .options(**options(cassandra, proxy, keyspace, table, read_page_size="1000", read_partitions="6"))
        .load()
        .collect()
    )
    injected = proxy.stats()["read_timeout"]
    print(f"\n[fault report] read with read timeouts: {rows} rows, {injected} injected, {len(got)} returned")
    assert proxy.stats()["read_timeout"] > 0
    keys = [row["id"] for row in got]
    assert len(keys) == rows and len(set(keys)) == rows
    assert {(r["p"], r["id"], r["v"], r["d"]) for r in got} == expected(rows)


@pytest.mark.parametrize("spark", ["classic"], indirect=True)
def test_a_read_meeting_overloaded_nodes_returns_every_row_or_fails_naming_the_table(
    spark, cassandra, proxy, keyspace, table
):
    """Overloaded answers to page requests: the read either returns every row exactly once or
    fails with an error naming the table, in bounded time; never a silent short read."""
    rows = 20_000
    write(spark, rows, options(cassandra, proxy, keyspace, table))
    proxy.configure({"rules": [{"fault": "overloaded", "match": f'FROM "{keyspace}"."{table}"', "every": 4}]})
    started = time.monotonic()
    try:
        got = (
            spark.read.format("pycassandra")
            .options(**options(cassandra, proxy, keyspace, table, read_page_size="1000", read_partitions="6"))
            .load()
            .collect()
        )
    except Exception as failure:
        assert f"{keyspace}.{table}" in str(failure), str(failure)
        assert time.monotonic() - started < 60
        print(f"\nread with Overloaded pages failed: {str(failure).splitlines()[0][:300]}")
        return
    finally:
        assert proxy.stats()["overloaded"] > 0
    injected = proxy.stats()["overloaded"]
    print(f"\n[fault report] read with Overloaded pages: {rows} rows, {injected} injected, {len(got)} returned")
    keys = [row["id"] for row in got]
    assert len(keys) == rows and len(set(keys)) == rows
