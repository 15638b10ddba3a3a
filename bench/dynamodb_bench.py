"""Spark path of the DynamoDB benchmark: N rows written through Spark and the service into
DynamoDB Local, then read back with a parallel scan, while the service's memory is sampled.

Prints one JSON line with rows/s for each direction and the service's peak RSS. The
orchestration (DynamoDB Local, the direct ceiling, the ratio) is in scripts/bench.sh.
"""

import argparse
import json
import os
import threading
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    DecimalType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
)

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--write-concurrency", type=int, default=16)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--table", default="bench_spark")
    args = parser.parse_args()

    spark = (
        SparkSession.builder.master(f"local[{args.partitions}]")
        .appName("spark-conduit-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(args.partitions))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    common = {
        "table_name": args.table,
        "aws_region": "us-east-1",
        "endpoint_url": args.endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    df = spark.range(0, args.rows, numPartitions=args.partitions).selectExpr(
        "format_string('id-%09d', id) AS id",
        "concat('name-', id) AS name",
        "CAST(id % 100 AS INT) AS age",
        "id * 0.5 AS score",
        "CAST(id / 100 AS DECIMAL(18,2)) AS balance",
        "map('city', concat('c', id % 10), 'zip', CAST(id % 99999 AS STRING)) AS attrs",
    )

    runtime = Path(os.environ["SPARK_CONDUIT_RUNTIME_DIR"])
    sampler = RssSampler(runtime / "service.pid")
    sampler.start()

    start = time.perf_counter()
    (
        df.write.format("dynamodb")
        .mode("append")
        .options(**common)
        .option("create_table", "true")
        .option("hash_key", "id")
        .option("write_concurrency", str(args.write_concurrency))
        .save()
    )
    write_seconds = time.perf_counter() - start

    start = time.perf_counter()
    read = (
        spark.read.format("dynamodb")
        .schema(SCHEMA)
        .options(**common)
        .option("total_segments", str(args.segments))
        .load()
    )
    read.write.format("noop").mode("overwrite").save()
    read_seconds = time.perf_counter() - start
    count = read.count()
    sampler.stopped.set()
    if count != args.rows:
        raise SystemExit(f"Spark read returned {count} rows, expected {args.rows}")
    spark.stop()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "write_seconds": write_seconds,
                "read_seconds": read_seconds,
                "write_rows_per_s": args.rows / write_seconds,
                "read_rows_per_s": args.rows / read_seconds,
                "service_peak_rss_mib": sampler.peak_kib / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
