"""What the Spark paths of the benchmarks share: the benchmark's rows (bench/rows.mjs builds
the same ones for the direct clients), the Spark session, the service's memory sampler and
the timed write-then-read."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

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
    sampler = RssSampler(Path(os.environ["SPARK_CONDUIT_RUNTIME_DIR"]) / "service.pid")
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
