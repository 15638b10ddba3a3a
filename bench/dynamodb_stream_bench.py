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
import subprocess

from bench_common import ROOT, SCHEMA, StreamRead, Usage, bench_processes, bench_session, read_stream, stream_latency
from pyspark.sql import DataFrame, SparkSession

from spark_conduit import dynamodb_change_schema


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


def throughput(args: argparse.Namespace) -> None:
    spark = bench_session(args.partitions)

    def read_all(table: str, events: int, trigger: str) -> StreamRead:
        # "limited": the default trigger with max_records_per_trigger, so reading the next
        # micro-batch (the service's prefetch) overlaps this one's tasks.
        limited = args.max_records if trigger == "limited" else 0
        stream = changes(spark, args.endpoint, table, SCHEMA, limited)
        return read_stream(stream, trigger, events, args.timeout, table)

    if args.warmup_table:
        read_all(args.warmup_table, args.warmup_events, "available-now")
    processes = bench_processes(spark)
    for trigger in args.triggers.split(","):
        with Usage(processes) as usage:
            seconds, rows, durations, _ = read_all(args.table, args.events, trigger)
        if rows != args.events:
            raise SystemExit(f"the streaming read returned {rows} change events, expected {args.events}")
        # Spark's JVM with its Python workers (its children); the service runs on its own.
        figures = {
            "events": rows,
            "trigger": trigger,
            "seconds": seconds,
            "events_per_s": rows / seconds,
            "service_peak_rss_mib": usage.peak_rss_mib,
            **{f"{name}_cpu_us_per_event": value for name, value in usage.cpu_us_per(rows).items()},
            "triggers": durations,
        }
        print(json.dumps(figures), flush=True)
    spark.stop()


def latency(args: argparse.Namespace) -> None:
    spark = bench_session(args.partitions)

    def write(count: int) -> None:
        writer = [
            "node", str(ROOT / "bench" / "direct-dynamodb-stream.mjs"), "paced", "--endpoint", args.endpoint,
            "--table", args.table, "--count", str(count), "--interval-ms", str(args.interval_ms),
        ]  # fmt: skip
        subprocess.run(writer, check=True, stdout=subprocess.DEVNULL)

    stream = changes(spark, args.endpoint, args.table, "id string, written_at bigint")
    figures = stream_latency(stream, "new_image.written_at", write, args.writes, args.warmup_writes, args.timeout)
    spark.stop()
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
