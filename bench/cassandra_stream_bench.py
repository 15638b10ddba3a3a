"""Spark path of the Cassandra streaming benchmark: streaming reads (``pycassandra`` with
``starting_position``) against the batch read of the same rows, and the latency of a write.

    python bench/cassandra_stream_bench.py throughput --rows N [--warmup-rows W] [--max-rows M]
    python bench/cassandra_stream_bench.py latency --writes K [--interval-ms MS] [--lags 500,5000]

throughput: N of the benchmark's rows (bench_common.bench_rows, plus ``ts timestamp``, row i
at a fixed moment plus i ms, the newest two minutes old) are written through the connector
into two tables: ``sai``, keyed by ``id`` with an SAI index on ``ts``, and ``clustering``,
``PRIMARY KEY ((bucket), ts, id)`` with 1,000 buckets (ts the first clustering column).
For each table, ``spark.read.format("pycassandra")`` into the noop sink (the ceiling, run
before and after the streaming reads; the faster counts) and
``spark.readStream.format("pycassandra")`` with ``stream_column`` ts from ``earliest`` into
the noop sink, with ``trigger(availableNow=True)``, with Spark's default trigger (until the N
rows are read), and with the default trigger and ``max_rows_per_trigger`` M ("limited",
default N/4), each timed from ``start()`` to the end of the micro-batch that reads the last
row. The Spark path and Cassandra are first warmed up, unmeasured, on a table of W rows of
each kind: one batch read and ``--warmup-passes`` (3) availableNow streaming reads. Prints
one JSON line per table: seconds, rows/s, Spark tasks, the service's peak RSS, CPU per row
of the service, of Spark (its JVM and Python workers) and of Cassandra (``--cassandra-pid``),
and Spark's split of every trigger (``durationMs``).

latency: for each stream_lag_ms in ``--lags``, a table keyed by id with an SAI index on ts is
read from ``latest`` at a 1-second processing-time trigger into ``foreachBatch`` while a
Node cassandra-driver client inserts K rows one every MS ms, each with ts = the time it
was sent (after 10 unmeasured ones); a row's latency is the time it reaches the foreachBatch
function minus its ts. Prints one JSON line per lag with p50/p95/max and the median
micro-batch's split. The orchestration (the local Cassandra) is in scripts/bench.sh.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from bench_common import (
    ROOT,
    Usage,
    bench_processes,
    bench_rows,
    bench_session,
    cassandra_options,
    cql,
    read_stream,
    stream_latency,
)
from pyspark.sql import DataFrame, SparkSession

BENCH_COLUMNS = "id text, name text, age int, score double, balance decimal, attrs map<text, text>"
# The two tables a stream can follow cheaply: ts with an SAI index (an index range read), and
# ts as the first clustering column (a slice of each partition).
TABLES = {
    "sai": f"({BENCH_COLUMNS}, ts timestamp, PRIMARY KEY (id))",
    "clustering": f"(bucket int, {BENCH_COLUMNS}, ts timestamp, PRIMARY KEY ((bucket), ts, id))",
}
BUCKETS = 1000

# Inserts `count` rows one every `interval` ms into `table` (id, ts), each with ts = the time
# it is sent; connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD, _LOCAL_DC.
PACED_WRITER = """
const cassandra = require("cassandra-driver");
const [table, prefix, count, interval] = process.argv.slice(1);
const env = process.env;
const client = new cassandra.Client({
  contactPoints: [env.CASSANDRA_HOST || "127.0.0.1"],
  protocolOptions: { port: Number(env.CASSANDRA_PORT || 9042) },
  localDataCenter: env.CASSANDRA_LOCAL_DC || "datacenter1",
  ...(env.CASSANDRA_USERNAME
    ? { authProvider: new cassandra.auth.PlainTextAuthProvider(env.CASSANDRA_USERNAME, env.CASSANDRA_PASSWORD ?? "") }
    : {}),
});
const insert = `INSERT INTO ${table} (id, ts) VALUES (?, ?)`;
(async () => {
  await client.connect();
  const start = Date.now();
  for (let i = 0; i < Number(count); i++) {
    const wait = start + i * Number(interval) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await client.execute(insert, [`${prefix}-${i}`, new Date()], { prepare: true });
  }
})()
  .catch((error) => { console.error(error.message); process.exitCode = 1; })
  .finally(() => client.shutdown());
"""


def tasks_of(spark: SparkSession, group: str) -> int:
    """Spark tasks run by the jobs of a job group (a streaming query's group is its runId)."""
    tracker = spark.sparkContext.statusTracker()
    tasks = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else []:
            stage_info = tracker.getStageInfo(stage)
            tasks += stage_info.numTasks if stage_info else 0
    return tasks


def throughput(args: argparse.Namespace) -> None:
    ks = args.keyspace
    kinds = args.tables.split(",")
    tables = {kind: f"{args.table_prefix}_{kind}" for kind in kinds}
    # One warm-up table of each kind, read before the measured runs and dropped.
    warmups = {kind: f"{args.table_prefix}_{kind}_warmup" for kind in kinds} if args.warmup_rows else {}
    every = [(kind, name, args.warmup_rows) for kind, name in warmups.items()]
    every += [(kind, name, args.rows) for kind, name in tables.items()]
    cql(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        *(f"DROP TABLE IF EXISTS {ks}.{name}" for _, name, _ in every),
        *(f"CREATE TABLE {ks}.{name} {TABLES[kind]}" for kind, name, _ in every),
        *(f"CREATE INDEX ON {ks}.{name} (ts) USING 'sai'" for kind, name, _ in every if kind == "sai"),
    )
    spark = bench_session(args.partitions)
    common = cassandra_options(ks)
    if args.read_partitions:
        common["read_partitions"] = str(args.read_partitions)

    def write(table: str, kind: str, rows: int) -> None:
        # Row i is written at `oldest` + i ms, the newest two minutes before now: every row is
        # past the stream's lag, so a query from `earliest` reads all N.
        oldest = int(time.time() * 1000) - rows - 120_000
        df = bench_rows(spark, rows, args.partitions).selectExpr(
            "*", f"timestamp_millis({oldest} + CAST(substring(id, 4) AS BIGINT)) AS ts"
        )
        if kind == "clustering":
            df = df.selectExpr("*", f"CAST(CAST(substring(id, 4) AS BIGINT) % {BUCKETS} AS INT) AS bucket")
        df.write.format("pycassandra").mode("append").options(**common).option("table", table).save()

    def batch(table: str) -> DataFrame:
        return spark.read.format("pycassandra").options(**common).option("table", table).load()

    def stream(table: str, max_rows: int = 0) -> DataFrame:
        reader = spark.readStream.format("pycassandra").options(**common).option("table", table)
        if max_rows:
            reader = reader.option("max_rows_per_trigger", str(max_rows))
        return reader.option("stream_column", "ts").option("starting_position", "earliest").load()

    # The processes whose CPU is measured; the service starts with the first write.
    processes: dict[str, int] = {}

    def run_batch(table: str) -> dict:
        group = f"batch-read-{table}-{time.monotonic_ns()}"
        spark.sparkContext.setJobGroup(group, f"batch read of {table}")
        with Usage(processes) as usage:
            start = time.perf_counter()
            batch(table).write.format("noop").mode("overwrite").save()
            seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "rows_per_s": args.rows / seconds,
            "tasks": tasks_of(spark, group),
            "service_peak_rss_mib": usage.peak_rss_mib,
            "cpu_us_per_row": usage.cpu_us_per(args.rows),
        }

    def run_stream(table: str, trigger: str) -> dict:
        max_rows = (args.max_rows or max(1, args.rows // 4)) if trigger == "limited" else 0
        with Usage(processes) as usage:
            read = read_stream(stream(table, max_rows), trigger, args.rows, args.timeout, table)
        if read.rows != args.rows:
            raise SystemExit(
                f"the streaming read of {table} ({trigger}) returned {read.rows} rows, expected {args.rows}"
            )
        return {
            "trigger": trigger,
            **({"max_rows_per_trigger": max_rows} if max_rows else {}),
            "seconds": read.seconds,
            "rows_per_s": read.rows / read.seconds,
            "micro_batches": len([t for t in read.triggers if t["rows"]]),
            "tasks": tasks_of(spark, read.run_id),
            "service_peak_rss_mib": usage.peak_rss_mib,
            "cpu_us_per_row": usage.cpu_us_per(read.rows),
            "triggers": read.triggers,
        }

    try:
        # Setup, unmeasured: the first writes also pay for Spark's and the service's start.
        for kind, table, rows in every:
            write(table, kind, rows)
        # Warm-up, unmeasured: the first batch and streaming reads of a Spark application pay
        # for the JIT of their paths (Spark's, the Python data source's, the service's), and a
        # fresh Cassandra's first index reads are slow (its CPU per row of a streaming read of
        # the SAI table fell from 300 to 75 us over its first four 20,000-row reads).
        for table in warmups.values():
            batch(table).write.format("noop").mode("overwrite").save()
            for _ in range(args.warmup_passes):
                read_stream(stream(table), "available-now", args.warmup_rows, args.timeout, table)
        # Dropped before measuring: their memtables would otherwise be flushed during the runs.
        if warmups:
            cql(*(f"DROP TABLE IF EXISTS {ks}.{table}" for table in warmups.values()))
        processes.update(bench_processes(spark))
        if args.cassandra_pid:
            processes["cassandra"] = args.cassandra_pid
        for kind, table in tables.items():
            if (count := batch(table).count()) != args.rows:
                raise SystemExit(f"{ks}.{table} holds {count} rows, expected {args.rows}")
            before = run_batch(table)
            streams = [run_stream(table, trigger) for trigger in args.triggers.split(",")]
            after = run_batch(table)
            print(
                json.dumps({"table": kind, "rows": args.rows, "batch": [before, after], "stream": streams}), flush=True
            )
        spark.stop()
    finally:
        cql(*(f"DROP TABLE IF EXISTS {ks}.{name}" for _, name, _ in every))


def latency(args: argparse.Namespace) -> None:
    ks = args.keyspace
    lags = [int(lag) for lag in args.lags.split(",")]
    tables = {lag: f"{args.table_prefix}_latency_{lag}" for lag in lags}
    cql(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        *(f"DROP TABLE IF EXISTS {ks}.{table}" for table in tables.values()),
        *(f"CREATE TABLE {ks}.{table} (id text PRIMARY KEY, ts timestamp)" for table in tables.values()),
        *(f"CREATE INDEX ON {ks}.{table} (ts) USING 'sai'" for table in tables.values()),
    )
    spark = bench_session(args.partitions)
    try:
        for lag, table in tables.items():
            written = 0

            def write(count: int, table: str = table) -> None:
                nonlocal written
                prefix = f"w{written}"
                written += count
                subprocess.run(
                    ["node", "-e", PACED_WRITER, f"{ks}.{table}", prefix, str(count), str(args.interval_ms)],
                    cwd=ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

            stream = (
                spark.readStream.format("pycassandra")
                .options(**cassandra_options(ks))
                .option("table", table)
                .option("stream_column", "ts")
                .option("starting_position", "latest")
                .option("stream_lag_ms", str(lag))
                .load()
            )
            figures = stream_latency(stream, "unix_millis(ts)", write, args.writes, args.warmup_writes, args.timeout)
            print(json.dumps({"stream_lag_ms": lag, **figures}), flush=True)
        spark.stop()
    finally:
        cql(*(f"DROP TABLE IF EXISTS {ks}.{table}" for table in tables.values()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["throughput", "latency"])
    parser.add_argument("--keyspace", default="bench")
    parser.add_argument("--table-prefix", default="bench_stream")
    parser.add_argument("--rows", type=int, default=200_000, help="throughput: rows per table")
    parser.add_argument("--tables", default="sai,clustering", help="throughput: sai and/or clustering, comma-separated")
    parser.add_argument("--warmup-rows", type=int, default=20_000, help="throughput: rows per warm-up table (0: none)")
    parser.add_argument(
        "--warmup-passes", type=int, default=3, help="throughput: streaming reads of each warm-up table"
    )
    parser.add_argument(
        "--triggers",
        default="available-now,default,limited",
        help="throughput: available-now, default and/or limited (default trigger with --max-rows), comma-separated",
    )
    parser.add_argument(
        "--max-rows", type=int, default=0, help="throughput: 'limited' max_rows_per_trigger (0: rows/4)"
    )
    parser.add_argument("--read-partitions", type=int, default=0, help="throughput: read_partitions (0: the defaults)")
    parser.add_argument("--cassandra-pid", type=int, default=0, help="throughput: Cassandra's pid, for its CPU per row")
    parser.add_argument("--writes", type=int, default=50, help="latency: rows inserted while the query runs")
    parser.add_argument("--interval-ms", type=int, default=200)
    parser.add_argument("--warmup-writes", type=int, default=10, help="latency: unmeasured writes first")
    parser.add_argument("--lags", default="500,5000", help="latency: stream_lag_ms values, comma-separated")
    parser.add_argument("--partitions", type=int, default=2, help="Spark task slots (local[N])")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    (throughput if args.mode == "throughput" else latency)(args)


if __name__ == "__main__":
    main()
