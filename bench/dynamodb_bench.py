"""Spark path of the DynamoDB benchmark: N rows written through Spark and the service into
DynamoDB Local, then read back with a parallel scan, while the service's memory is sampled.

Prints one JSON line with rows/s for each direction and the service's peak RSS. The
orchestration (DynamoDB Local, the direct ceiling, the ratio) is in scripts/bench.sh.
"""

import argparse
import json
import os
import time
from pathlib import Path

from bench_common import SCHEMA, RssSampler, bench_rows, bench_session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--write-concurrency", type=int, default=16)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--table", default="bench_spark")
    args = parser.parse_args()

    spark = bench_session(args.partitions)
    common = {
        "table_name": args.table,
        "aws_region": "us-east-1",
        "endpoint_url": args.endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    df = bench_rows(spark, args.rows, args.partitions)

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
