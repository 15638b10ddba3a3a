"""Spark path of the Cassandra benchmark: N rows written through Spark and the service into
the local Cassandra, then read back by token range, while the service's memory is sampled.

Connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD (scripts/bench.sh sets them).
The table ``<keyspace>.<table>`` is created (and dropped at the end) with scripts/cql.mjs.
Prints one JSON line with rows/s for each direction and the service's peak RSS. The
orchestration (Cassandra, the direct ceiling, the ratio) is in scripts/bench.sh.
"""

import argparse
import os
import subprocess
from pathlib import Path

from bench_common import SCHEMA, bench_rows, bench_session, measure

ROOT = Path(__file__).resolve().parents[1]


def cql(*statements: str) -> None:
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "cql.mjs"), *statements], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"scripts/cql.mjs failed: {result.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=2, help="Spark tasks (local[N])")
    parser.add_argument("--concurrency", type=int, default=100, help="write requests in flight per task")
    parser.add_argument("--read-partitions", type=int, default=8, help="token-range splits of the read")
    parser.add_argument("--keyspace", default="bench")
    parser.add_argument("--table", default="bench_spark")
    args = parser.parse_args()

    table = f"{args.keyspace}.{args.table}"
    cql(
        f"CREATE KEYSPACE IF NOT EXISTS {args.keyspace} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} (id text PRIMARY KEY, name text, age int, score double, balance decimal, "
        "attrs map<text, text>)",
    )

    spark = bench_session(args.partitions)
    common = {
        "host": os.environ.get("CASSANDRA_HOST", "127.0.0.1"),
        "port": os.environ.get("CASSANDRA_PORT", "9042"),
        "keyspace": args.keyspace,
        "table": args.table,
    }
    if os.environ.get("CASSANDRA_USERNAME"):
        common["username"] = os.environ["CASSANDRA_USERNAME"]
        common["password"] = os.environ.get("CASSANDRA_PASSWORD", "")
    df = bench_rows(spark, args.rows, args.partitions)

    try:
        measure(
            args.rows,
            write=lambda: (
                df.write.format("pycassandra")
                .mode("append")
                .options(**common)
                .option("concurrency", str(args.concurrency))
                .save()
            ),
            read=lambda: (
                spark.read.format("pycassandra")
                .schema(SCHEMA)
                .options(**common)
                .option("read_partitions", str(args.read_partitions))
                .load()
            ),
        )
        spark.stop()
    finally:
        cql(f"DROP TABLE IF EXISTS {table}")


if __name__ == "__main__":
    main()
