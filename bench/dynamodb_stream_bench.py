"""Spark path of the streaming benchmark: a DynamoDB Stream read through Spark and the service.

    python bench/dynamodb_stream_bench.py throughput --endpoint URL --table T --events N [--warmup-table W]
    python bench/dynamodb_stream_bench.py latency --endpoint URL --table T --writes K [--interval-ms MS]

throughput: ``spark.readStream.format("dynamodb")`` from ``trim_horizon`` with
``trigger(availableNow=True)`` (and/or, with ``--triggers``, Spark's default trigger until the
N events are read) into the noop sink, timed from ``start()`` to the query's end (T's N
changes were made by ``bench/direct-dynamodb-stream.mjs prepare``), while the embedded
service's RSS and the CPU of the service and of Spark are sampled. Prints one JSON line per
trigger with events/s, the service's peak RSS, CPU per event and Spark's own split of each
trigger (``durationMs``: latestOffset, addBatch, ...).

latency: the same read at a 1-second processing-time trigger into ``foreachBatch``; K items,
each holding the time it was written, are put one every MS ms by the Node client while the
query runs; an event's latency is the time its row reaches the foreachBatch function minus
the time it was written. Prints p50/p95/max. The orchestration is in scripts/bench.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench_common import SCHEMA, RssSampler, bench_session
from pyspark.sql import DataFrame, SparkSession

from spark_conduit import dynamodb_change_schema

ROOT = Path(__file__).resolve().parents[1]


def changes(spark: SparkSession, endpoint: str, table: str, item_schema, max_records: int = 0) -> DataFrame:
    reader = spark.readStream.format("dynamodb")
    if max_records:
        reader = reader.option("max_records_per_trigger", str(max_records))
    return (
        reader.schema(dynamodb_change_schema(item_schema, ["id"]))
        .option("table_name", table)
        .option("aws_region", "us-east-1")
        .option("endpoint_url", endpoint)
        .option("aws_access_key_id", "bench")
        .option("aws_secret_access_key", "bench")
        .option("starting_position", "trim_horizon")
        .load()
    )


def read_all(
    spark: SparkSession, args: argparse.Namespace, table: str, events: int, trigger: str
) -> tuple[float, int, list[dict]]:
    """Reads the table's ``events`` changes; returns the seconds, rows and every trigger's durations.

    ``available-now`` runs the query to its end; ``default`` (Spark's default
    trigger: the next micro-batch as soon as the last one ends) until its micro-batches
    have read ``events`` rows, timed to the end of that micro-batch."""
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as checkpoint:
        # "limited": the default trigger with max_records_per_trigger, so reading the next
        # micro-batch (the service's prefetch) overlaps this one's tasks.
        limited = args.max_records if trigger == "limited" else 0
        writer = changes(spark, args.endpoint, table, SCHEMA, limited).writeStream.format("noop")
        writer = writer.option("checkpointLocation", checkpoint)
        if trigger == "available-now":
            writer = writer.trigger(availableNow=True)
        start = time.perf_counter()
        query = writer.start()
        deadline = time.monotonic() + args.timeout
        end = None
        while end is None and time.monotonic() < deadline and query.exception() is None:
            if trigger == "available-now":
                if query.awaitTermination(0.05):
                    end = time.perf_counter()
            elif sum(p.numInputRows or 0 for p in query.recentProgress) >= events:
                end = time.perf_counter()
            else:
                time.sleep(0.05)
        progress = query.recentProgress
        query.stop()
        if query.exception() is not None:
            raise SystemExit(f"the streaming read of {table} failed: {query.exception()}")
        if end is None:
            raise SystemExit(f"the streaming read of {table} did not end within {args.timeout:.0f} s")
        rows = sum(p.numInputRows or 0 for p in progress)
        return end - start, rows, [{"rows": p.numInputRows, **p.durationMs} for p in progress]


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


def throughput(args: argparse.Namespace) -> None:
    spark = bench_session(args.partitions)
    if args.warmup_table:
        read_all(spark, args, args.warmup_table, args.warmup_events, "available-now")
    pid_file = Path(os.environ["SPARK_CONDUIT_RUNTIME_DIR"]) / "service.pid"
    service, jvm = int(pid_file.read_text().strip()), int(spark.sparkContext._jvm.ProcessHandle.current().pid())
    for trigger in args.triggers.split(","):
        sampler = RssSampler(pid_file)
        sampler.start()
        before = {name: cpu_seconds(pid) for name, pid in (("service", service), ("spark", jvm))}
        seconds, rows, durations = read_all(spark, args, args.table, args.events, trigger)
        sampler.stopped.set()
        if rows != args.events:
            raise SystemExit(f"the streaming read returned {rows} change events, expected {args.events}")
        # Spark's JVM with its Python workers (its children); the service runs on its own.
        figures = {
            "events": rows,
            "trigger": trigger,
            "seconds": seconds,
            "events_per_s": rows / seconds,
            "service_peak_rss_mib": sampler.peak_kib / 1024,
            **{
                f"{name}_cpu_us_per_event": round((cpu_seconds(pid) - before[name]) * 1e6 / rows, 1)
                for name, pid in (("service", service), ("spark", jvm))
            },
            "triggers": durations,
        }
        print(json.dumps(figures), flush=True)
    spark.stop()


def latency(args: argparse.Namespace) -> None:
    spark = bench_session(args.partitions)
    latencies: list[float] = []
    lock = threading.Lock()

    def arrived(batch: DataFrame, _batch_id: int) -> None:
        written = [row.written_at for row in batch.select("new_image.written_at").collect()]
        now = time.time() * 1000
        with lock:
            latencies.extend(now - w for w in written if w is not None)

    item = "id string, written_at bigint"
    with tempfile.TemporaryDirectory(prefix="stream-latency-") as checkpoint:
        query = (
            changes(spark, args.endpoint, args.table, item)
            .writeStream.foreachBatch(arrived)
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            # The first trigger plans the query and starts Spark's workers: writes begin after it.
            deadline = time.monotonic() + args.timeout
            while not query.recentProgress and time.monotonic() < deadline:
                time.sleep(0.2)

            def put(count: int) -> None:
                writer = [
                    "node", str(ROOT / "bench" / "direct-dynamodb-stream.mjs"), "paced", "--endpoint", args.endpoint,
                    "--table", args.table, "--count", str(count), "--interval-ms", str(args.interval_ms),
                ]  # fmt: skip
                subprocess.run(writer, check=True, stdout=subprocess.DEVNULL)
                while time.monotonic() < deadline and query.exception() is None:
                    with lock:
                        if len(latencies) >= count:
                            return
                    time.sleep(0.2)

            # Unmeasured: the first micro-batches with rows start Spark's Python workers.
            put(args.warmup_writes)
            with lock:
                latencies.clear()
            warm = len([p for p in query.recentProgress if (p.numInputRows or 0) > 0])
            put(args.writes)
            progress = [p for p in query.recentProgress if (p.numInputRows or 0) > 0][warm:]
        finally:
            query.stop()
    spark.stop()
    if len(latencies) != args.writes:
        raise SystemExit(f"{len(latencies)} of {args.writes} written events reached the sink in time")
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    def median_ms(key: str) -> float:
        values = sorted(p.durationMs.get(key, 0) for p in progress)
        return values[len(values) // 2] if values else 0

    figures = {
        "writes": args.writes,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "max_ms": ordered[-1],
        "micro_batches": len(progress),
        # A micro-batch's own time (median): the latency is the wait for the next trigger plus this.
        "batch_median_ms": {key: median_ms(key) for key in ("triggerExecution", "latestOffset", "addBatch")},
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["throughput", "latency"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--events", type=int, default=0, help="throughput: the changes the table's stream holds")
    parser.add_argument("--warmup-table", default="", help="throughput: a table read first, unmeasured")
    parser.add_argument("--warmup-events", type=int, default=0, help="throughput: the changes the warm-up table holds")
    parser.add_argument(
        "--triggers",
        default="available-now",
        help="throughput: available-now, default and/or limited (default trigger with --max-records), comma-separated",
    )
    parser.add_argument("--max-records", type=int, default=5000, help="throughput: 'limited' max_records_per_trigger")
    parser.add_argument("--writes", type=int, default=50, help="latency: items written while the query runs")
    parser.add_argument("--interval-ms", type=int, default=200)
    parser.add_argument("--warmup-writes", type=int, default=10, help="latency: unmeasured writes first")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    (throughput if args.mode == "throughput" else latency)(args)


if __name__ == "__main__":
    main()
