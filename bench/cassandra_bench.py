"""Spark path of the Cassandra benchmark: N rows written through Spark and the service into
the local Cassandra, then read back by token range, while the service's memory is sampled.

Connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD (scripts/bench.sh sets them).
The tables ``<keyspace>.<table>`` and its ``_warmup`` twin (an unmeasured first pass, as the
direct path gets) are created and dropped at the end with scripts/cql.mjs.
Prints one JSON line with rows/s for each direction and the service's peak RSS. The
orchestration (Cassandra, the direct ceiling, the ratio) is in scripts/bench.sh.
"""

import argparse

from bench_common import SCHEMA, bench_rows, bench_session, cassandra_options, cql, measure, warm_up
from pyspark.sql import DataFrame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2, help="Spark tasks (local[N])")
    parser.add_argument("--concurrency", type=int, default=100, help="write requests in flight per task")
    parser.add_argument("--read-partitions", type=int, default=8, help="token-range splits of the read")
    parser.add_argument("--keyspace", default="bench")
    parser.add_argument("--table", default="bench_spark")
    parser.add_argument("--warmup-rows", type=int, default=200_000, help="unmeasured first pass (0: none)")
    args = parser.parse_args()

    tables = [f"{args.keyspace}.{args.table}", f"{args.keyspace}.{args.table}_warmup"]
    columns = "(id text PRIMARY KEY, name text, age int, score double, balance decimal, attrs map<text, text>)"
    cql(
        f"CREATE KEYSPACE IF NOT EXISTS {args.keyspace} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        *(f"DROP TABLE IF EXISTS {table}" for table in tables),
        *(f"CREATE TABLE {table} {columns}" for table in tables),
    )

    spark = bench_session(args.partitions)
    common = cassandra_options(args.keyspace)

    def write(df: DataFrame, table: str) -> None:
        (
            df.write.format("pycassandra")
            .mode("append")
            .options(**common)
            .option("table", table)
            .option("concurrency", str(args.concurrency))
            .save()
        )

    def read(table: str) -> DataFrame:
        return (
            spark.read.format("pycassandra")
            .schema(SCHEMA)
            .options(**common)
            .option("table", table)
            .option("read_partitions", str(args.read_partitions))
            .load()
        )

    try:
        if args.warmup_rows > 0:
            warmup = bench_rows(spark, args.warmup_rows, args.partitions)
            warm_up(lambda: write(warmup, f"{args.table}_warmup"), lambda: read(f"{args.table}_warmup"))
            # Dropped before measuring, as the direct client drops its warm-up table: its
            # memtable would otherwise be flushed during the measured write.
            cql(f"DROP TABLE IF EXISTS {tables[1]}")
        df = bench_rows(spark, args.rows, args.partitions)
        measure(args.rows, write=lambda: write(df, args.table), read=lambda: read(args.table))
        spark.stop()
    finally:
        cql(*(f"DROP TABLE IF EXISTS {table}" for table in tables))


if __name__ == "__main__":
    main()
