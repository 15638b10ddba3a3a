"""What the Spark paths of the benchmarks share: the benchmark's rows (bench/rows.mjs builds
the same ones for the direct clients), the Spark session, the service's memory sampler, the
CPU of processes, the timed write-then-read, the local Cassandra's connection, and the timed
streaming reads (to their end, and the latency of single writes)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    DecimalType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
)

# The benchmark's columns; reads pass this schema (no inference, the same types back).
SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField("name", StringType()),
        StructField("age", IntegerType()),
        StructField("score", DoubleType()),
        StructField("balance", DecimalType(18, 2)),
        StructField("attrs", MapType(StringType(), StringType())),
    ]
)


def bench_session(partitions: int) -> SparkSession:
    spark = (
        SparkSession.builder.master(f"local[{partitions}]")
        .appName("spark-conduit-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


def bench_rows(spark: SparkSession, rows: int, partitions: int) -> DataFrame:
    """Row i of bench/rows.mjs: id, name, age int, score double, balance decimal(18,2),
    attrs map<string,string>."""
    return spark.range(0, rows, numPartitions=partitions).selectExpr(
        "format_string('id-%09d', id) AS id",
        "concat('name-', id) AS name",
        "CAST(id % 100 AS INT) AS age",
        "CAST(id * 0.5 AS DOUBLE) AS score",
        "CAST(id / 100 AS DECIMAL(18,2)) AS balance",
        "map('city', concat('c', id % 10), 'zip', CAST(id % 99999 AS STRING)) AS attrs",
    )


ROOT = Path(__file__).resolve().parents[1]


def service_pid_file() -> Path:
    """The embedded service's pid file (scripts/bench.sh sets SPARK_CONDUIT_RUNTIME_DIR)."""
    return Path(os.environ["SPARK_CONDUIT_RUNTIME_DIR"]) / "service.pid"


class RssSampler(threading.Thread):
    """Samples the service's resident set size from /proc every 100 ms."""

    def __init__(self, pid_file: Path) -> None:
        super().__init__(daemon=True)
        self.pid_file = pid_file
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            try:
                pid = int(self.pid_file.read_text().strip())
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                continue


def warm_up(write: Callable[[], None], read: Callable[[], DataFrame]) -> None:
    """One unmeasured write and full read, as the direct path gets a warm-up pass: the first
    job of a Spark application pays for Spark's JIT, the Python worker daemons, the
    service's start and its JIT (about 10 s on the 2-core machine), which is start-up
    rather than throughput."""
    write()
    read().write.format("noop").mode("overwrite").save()


def measure(rows: int, write: Callable[[], None], read: Callable[[], DataFrame]) -> None:
    """Times ``write`` then a full read of ``read()`` (every column materialized by the noop
    sink) while sampling the embedded service's memory; prints the figures as one JSON line."""
    sampler = RssSampler(service_pid_file())
    sampler.start()
    start = time.perf_counter()
    write()
    write_seconds = time.perf_counter() - start

    start = time.perf_counter()
    df = read()
    df.write.format("noop").mode("overwrite").save()
    read_seconds = time.perf_counter() - start
    sampler.stopped.set()
    count = df.count()
    if count != rows:
        raise SystemExit(f"Spark read returned {count} rows, expected {rows}")
    print(
        json.dumps(
            {
                "rows": rows,
                "write_seconds": write_seconds,
                "read_seconds": read_seconds,
                "write_rows_per_s": rows / write_seconds,
                "read_rows_per_s": rows / read_seconds,
                "service_peak_rss_mib": sampler.peak_kib / 1024,
            }
        )
    )


def cassandra_options(keyspace: str) -> dict[str, str]:
    """The connector's connection options for the local Cassandra, from CASSANDRA_HOST, _PORT,
    _USERNAME, _PASSWORD (scripts/bench.sh sets them)."""
    options = {
        "host": os.environ.get("CASSANDRA_HOST", "127.0.0.1"),
        "port": os.environ.get("CASSANDRA_PORT", "9042"),
        "keyspace": keyspace,
    }
    if os.environ.get("CASSANDRA_USERNAME"):
        options["username"] = os.environ["CASSANDRA_USERNAME"]
        options["password"] = os.environ.get("CASSANDRA_PASSWORD", "")
    return options


def cql(*statements: str) -> None:
    """Runs CQL statements in order on the local Cassandra with scripts/cql.mjs."""
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "cql.mjs"), *statements], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"scripts/cql.mjs failed: {result.stderr.strip()}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / ticks
        todo.extend(children.get(current, []))
    return total


def bench_processes(spark: SparkSession) -> dict[str, int]:
    """The service and Spark's JVM (its Python workers are its children; the service runs on its own)."""
    return {
        "service": int(service_pid_file().read_text().strip()),
        "spark": int(spark.sparkContext._jvm.ProcessHandle.current().pid()),
    }


class Usage:
    """Over a with-block: the service's peak RSS and the CPU seconds of processes (each with its
    descendants), e.g. ``bench_processes(spark)``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.cpu: dict[str, float] = {}
        self.peak_rss_mib = 0.0

    def __enter__(self) -> Usage:
        self._sampler = RssSampler(service_pid_file())
        self._sampler.start()
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *_exc: object) -> None:
        self._sampler.stopped.set()
        self.peak_rss_mib = self._sampler.peak_kib / 1024
        self.cpu = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}

    def cpu_us_per(self, count: int) -> dict[str, float]:
        return {name: round(seconds * 1e6 / count, 1) for name, seconds in self.cpu.items()}


class StreamRead(NamedTuple):
    seconds: float
    rows: int
    # Every trigger's durations (Spark's ``durationMs``) with its ``rows``.
    triggers: list[dict]
    # The query's runId, which is also the job group of its Spark jobs.
    run_id: str


def read_stream(stream: DataFrame, trigger: str, rows: int, timeout: float, what: str) -> StreamRead:
    """Runs a streaming read into the noop sink; returns the seconds, the rows read and every
    trigger's durations.

    ``available-now``: with ``trigger(availableNow=True)``, timed from ``start()`` to the
    query's end. Otherwise (``default``, ``limited``: Spark's default trigger, the next
    micro-batch as soon as the last one ends) until its micro-batches have read ``rows`` rows,
    timed to the end of that micro-batch."""
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as checkpoint:
        writer = stream.writeStream.format("noop").option("checkpointLocation", checkpoint)
        if trigger == "available-now":
            writer = writer.trigger(availableNow=True)
        start = time.perf_counter()
        query = writer.start()
        deadline = time.monotonic() + timeout
        end = None
        while end is None and time.monotonic() < deadline and query.exception() is None:
            if trigger == "available-now":
                if query.awaitTermination(0.05):
                    end = time.perf_counter()
            elif sum(p.numInputRows or 0 for p in query.recentProgress) >= rows:
                end = time.perf_counter()
            else:
                time.sleep(0.05)
        progress = query.recentProgress
        query.stop()
        if query.exception() is not None:
            raise SystemExit(f"the streaming read of {what} failed: {query.exception()}")
        if end is None:
            raise SystemExit(f"the streaming read of {what} did not end within {timeout:.0f} s")
        read = sum(p.numInputRows or 0 for p in progress)
        triggers = [{"rows": p.numInputRows, **p.durationMs} for p in progress]
        return StreamRead(end - start, read, triggers, str(query.runId))


def stream_latency(
    stream: DataFrame,
    written_ms: str,
    write: Callable[[int], None],
    writes: int,
    warmup_writes: int,
    timeout: float,
) -> dict:
    """The latency from a write to its row reaching a ``foreachBatch`` function at a 1-second
    trigger. ``write(count)`` makes ``count`` writes while the query runs (paced, and returning
    when it has made them); ``written_ms`` is the SQL expression, over ``stream``'s columns, of
    the time each was written (epoch milliseconds). ``warmup_writes`` come first, unmeasured (the
    first micro-batches with rows start Spark's Python workers). Returns p50/p95/max in ms and
    the median micro-batch's split."""
    latencies: list[float] = []
    lock = threading.Lock()

    def arrived(batch: DataFrame, _batch_id: int) -> None:
        written = [row[0] for row in batch.selectExpr(written_ms).collect()]
        now = time.time() * 1000
        with lock:
            latencies.extend(now - w for w in written if w is not None)

    with tempfile.TemporaryDirectory(prefix="stream-latency-") as checkpoint:
        query = (
            stream.writeStream.foreachBatch(arrived)
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            # The first trigger plans the query and starts Spark's workers: writes begin after it.
            deadline = time.monotonic() + timeout
            while not query.recentProgress and time.monotonic() < deadline:
                time.sleep(0.2)

            def put(count: int) -> None:
                write(count)
                while time.monotonic() < deadline and query.exception() is None:
                    with lock:
                        if len(latencies) >= count:
                            return
                    time.sleep(0.2)

            put(warmup_writes)
            with lock:
                latencies.clear()
            warm = len([p for p in query.recentProgress if (p.numInputRows or 0) > 0])
            put(writes)
            progress = [p for p in query.recentProgress if (p.numInputRows or 0) > 0][warm:]
        finally:
            query.stop()
    if len(latencies) != writes:
        raise SystemExit(f"{len(latencies)} of {writes} written rows reached the sink in time")
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    def median_ms(key: str) -> float:
        values = sorted(p.durationMs.get(key, 0) for p in progress)
        return values[len(values) // 2] if values else 0

    return {
        "writes": writes,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "max_ms": ordered[-1],
        "micro_batches": len(progress),
        # A micro-batch's own time (median): the latency is the wait for the next trigger plus this.
        "batch_median_ms": {key: median_ms(key) for key in ("triggerExecution", "latestOffset", "addBatch")},
    }


def trigger_split(seconds: float, triggers: list[dict]) -> dict[str, float]:
    """Spark's split of a streaming read's time, in seconds: reading ahead (latestOffset), the
    tasks (addBatch), all triggers, and the rest (query start, commits, stop)."""
    totals = {
        key: sum(t.get(key, 0) for t in triggers) / 1000 for key in ("latestOffset", "addBatch", "triggerExecution")
    }
    return {**totals, "outside": seconds - totals["triggerExecution"]}
