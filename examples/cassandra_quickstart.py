"""The seed README's PyCassandra examples, in order, against a local Cassandra; then reads.

    CASSANDRA_PORT=9042 CASSANDRA_USERNAME=cassandra CASSANDRA_PASSWORD=cassandra \\
        python examples/cassandra_quickstart.py

The seed's batch writes name no save mode; Spark 4 refuses that for every Python data source
(UNSUPPORTED_DATA_SOURCE_SAVE_MODE: its default, ErrorIfExists, is not supported), so they
say ``.mode("append")`` here.

(``npm run quickstart`` starts a local Cassandra, exports CASSANDRA_HOST, _PORT, _USERNAME,
_PASSWORD and _CA_CERT, and runs this.) Each example is the seed's code with what the local
server needs added: its port, and username/password (it runs PasswordAuthenticator). The
keyspace ``myks`` and table ``users`` are created first with scripts/cql.mjs (the connector
reads and writes rows; it runs no DDL). The spark-conduit service is started by the shim
itself on first use. Prints what each step reads back; exits non-zero if any step fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructField, StructType
from quickstart_support import local_session, run_examples, run_micro_batches, step

from cassandra_data_source import CassandraDataSource

ROOT = Path(__file__).resolve().parents[1]
HOST = os.environ.get("CASSANDRA_HOST", "127.0.0.1")
CA_CERT = os.environ.get("CASSANDRA_CA_CERT", "").strip()
# What the local server needs beyond the seed's options.
LOCAL = {
    "port": os.environ.get("CASSANDRA_PORT", "9042"),
    **(
        {"username": os.environ["CASSANDRA_USERNAME"], "password": os.environ.get("CASSANDRA_PASSWORD", "")}
        if os.environ.get("CASSANDRA_USERNAME")
        else {}
    ),
}
ALICE = "550e8400-e29b-41d4-a716-446655440000"
BOB = "550e8400-e29b-41d4-a716-446655440001"
CAROL = "550e8400-e29b-41d4-a716-446655440002"


def cql(*statements: str) -> None:
    """Runs CQL statements with scripts/cql.mjs (same CASSANDRA_* connection settings)."""
    env = {**os.environ, "CASSANDRA_HOST": HOST, "CASSANDRA_PORT": LOCAL["port"]}
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "cql.mjs"), *statements], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/cql.mjs failed: {result.stderr.strip()}")


def read_users(spark: SparkSession):
    return (
        spark.read.format("pycassandra")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**LOCAL)
        .load()
    )


def create_keyspace_and_table() -> None:
    step("Create keyspace myks and table users (scripts/cql.mjs; emptied if it exists)")
    cql(
        "CREATE KEYSPACE IF NOT EXISTS myks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        "CREATE TABLE IF NOT EXISTS myks.users (id uuid PRIMARY KEY, name text, age int)",
        "TRUNCATE myks.users",
    )
    print("myks.users (id uuid PRIMARY KEY, name text, age int) is ready and empty")


def batch_write(spark: SparkSession):
    step("Batch Write")
    spark.dataSource.register(CassandraDataSource)

    df = spark.createDataFrame(
        [("550e8400-e29b-41d4-a716-446655440000", "Alice", 30), ("550e8400-e29b-41d4-a716-446655440001", "Bob", 25)],
        ["id", "name", "age"],
    )

    (
        df.write.format("pycassandra")
        .mode("append")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**LOCAL)
        .save()
    )
    read_users(spark).orderBy("name").show(truncate=False)
    return df


def streaming_write(spark: SparkSession, checkpoint: str, batches: int = 3, timeout: float = 120.0) -> None:
    step(f"Streaming Write ({batches} micro-batches from the rate source, then stop)")
    df = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", "5")
        .load()
        .selectExpr(
            "format_string('00000000-0000-4000-8000-%012d', value) AS id",
            "concat('streamed user ', CAST(value AS STRING)) AS name",
            "CAST(20 + value % 50 AS INT) AS age",
        )
    )

    query = (
        df.writeStream.format("pycassandra")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .option("checkpointLocation", checkpoint)
        .options(**LOCAL)
        .start()
    )
    done = run_micro_batches(query, batches, timeout)
    streamed = read_users(spark).where("name LIKE 'streamed user %'").orderBy("age", "name").collect()
    print(f"{done} micro-batches wrote {len(streamed)} rows; first ones:")
    for row in streamed[:5]:
        print(f"  {row.id}  {row.name}  {row.age}")
    if not streamed:
        raise RuntimeError("the streaming write wrote nothing")


def write_with_delete_flag(spark: SparkSession) -> None:
    step("Write with Delete Flag (Bob is deleted, Carol is added)")
    df = spark.createDataFrame(
        [(BOB, "Bob", 25, "true"), (CAROL, "Carol", 41, "false")],
        ["id", "name", "age", "is_deleted"],
    )
    (
        df.write.format("pycassandra")
        .mode("append")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .option("delete_flag_column", "is_deleted")
        .option("delete_flag_value", "true")
        .options(**LOCAL)
        .save()
    )
    names = sorted(row.name for row in read_users(spark).where("name NOT LIKE 'streamed%'").collect())
    print(f"users not from the stream: {names}")
    if names != ["Alice", "Carol"]:
        raise RuntimeError(f"expected Alice and Carol after the delete-flag write, found {names}")


def batch_read(spark: SparkSession) -> None:
    step("Batch Read")
    df = (
        spark.read.format("pycassandra")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**LOCAL)
        .load()
    )

    df.show(5, truncate=False)
    df.printSchema()
    print(f"{df.count()} rows in myks.users")


def read_with_filter(spark: SparkSession) -> None:
    step("Read with a Filter (CQL WHERE conditions, ALLOW FILTERING)")
    df = (
        spark.read.format("pycassandra")
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .option("filter", "age > 28")
        .option("allow_filtering", "true")
        .options(**LOCAL)
        .load()
    )
    rows = df.orderBy("age", "name").collect()
    shown = [(row.name, row.age) for row in rows[:5]]
    print(f"{len(rows)} users older than 28, the first ones: {shown}")
    if any(row.age <= 28 for row in rows) or "Alice" not in {row.name for row in rows}:
        raise RuntimeError("the filter returned the wrong rows")


def read_with_schema(spark: SparkSession) -> None:
    step("Read with Schema (Column Projection: id and name only)")
    schema = StructType([StructField("id", StringType()), StructField("name", StringType())])

    df = (
        spark.read.format("pycassandra")
        .schema(schema)
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**LOCAL)
        .load()
    )
    df.where("name NOT LIKE 'streamed%'").orderBy("name").show(truncate=False)
    if df.columns != ["id", "name"]:
        raise RuntimeError(f"expected columns id and name, found {df.columns}")


def read_over_tls(spark: SparkSession) -> None:
    step("SSL/TLS (ssl_enabled, ssl_ca_cert)")
    schema = StructType([StructField("name", StringType()), StructField("age", IntegerType())])
    df = (
        spark.read.format("pycassandra")
        .schema(schema)
        .option("host", HOST)
        .option("keyspace", "myks")
        .option("table", "users")
        .option("ssl_enabled", "true")
        .option("ssl_ca_cert", CA_CERT)
        .options(**LOCAL)
        .load()
    )
    print(f"read {df.count()} rows over TLS, verified against {CA_CERT}")


def main() -> int:
    print(f"Cassandra at {HOST}:{LOCAL['port']}")
    spark = local_session("pycassandra")

    def examples() -> None:
        create_keyspace_and_table()
        batch_write(spark)
        with tempfile.TemporaryDirectory(prefix="cassandra-quickstart-") as checkpoint:
            streaming_write(spark, checkpoint)
        write_with_delete_flag(spark)
        batch_read(spark)
        read_with_filter(spark)
        read_with_schema(spark)
        if CA_CERT:
            read_over_tls(spark)

    return run_examples(spark, examples)


if __name__ == "__main__":
    sys.exit(main())
