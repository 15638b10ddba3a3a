"""Spark path of the DynamoDB benchmark: N rows written through Spark and the service into
DynamoDB Local, then read back with a parallel scan, while the service's memory is sampled.

Prints one JSON line with rows/s for each direction and the service's peak RSS. The
orchestration (DynamoDB Local, the direct ceiling, the ratio) is in scripts/bench.sh.
"""

import argparse

from bench_common import SCHEMA, bench_rows, bench_session, measure, warm_up
from pyspark.sql import DataFrame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--write-concurrency", type=int, default=16)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--table", default="bench_spark")
    parser.add_argument("--warmup-rows", type=int, default=200_000, help="unmeasured first pass (0: none)")
    args = parser.parse_args()

    spark = bench_session(args.partitions)
    common = {
        "aws_region": "us-east-1",
        "endpoint_url": args.endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }

    def write(df: DataFrame, table: str) -> None:
        (
            df.write.format("dynamodb")
            .mode("append")
            .options(**common)
            .option("table_name", table)
            .option("create_table", "true")
            .option("hash_key", "id")
            .option("write_concurrency", str(args.write_concurrency))
            .save()
        )

    def read(table: str) -> DataFrame:
        return (
            spark.read.format("dynamodb")
            .schema(SCHEMA)
            .options(**common)
            .option("table_name", table)
            .option("total_segments", str(args.segments))
            .load()
        )

    if args.warmup_rows > 0:
        warmup = bench_rows(spark, args.warmup_rows, args.partitions)
        warm_up(lambda: write(warmup, f"{args.table}_warmup"), lambda: read(f"{args.table}_warmup"))
    df = bench_rows(spark, args.rows, args.partitions)
    measure(args.rows, write=lambda: write(df, args.table), read=lambda: read(args.table))
    spark.stop()


if __name__ == "__main__":
    main()
