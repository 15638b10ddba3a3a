"""DynamoDB -> Spark -> Cassandra replication with a streaming read of a DynamoDB Stream.

    DYNAMODB_ENDPOINT=http://127.0.0.1:8000 CASSANDRA_PORT=9042 CASSANDRA_USERNAME=cassandra \\
        CASSANDRA_PASSWORD=cassandra python examples/streaming_quickstart.py

(``npm run quickstart`` starts both local databases and runs this after the batch examples.)
It creates the DynamoDB table ``users_changes`` with a NEW_AND_OLD_IMAGES stream and the
Cassandra table ``myks.users_changes``, starts ``spark.readStream.format("dynamodb")`` from
the oldest change (``trim_horizon``), applies every micro-batch to Cassandra with
``foreachBatch``, changes items in DynamoDB while the query runs, and checks that the
Cassandra table ends equal to the DynamoDB table. Exits non-zero if it does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cassandra_quickstart import HOST, LOCAL, cql
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from quickstart_support import local_session, run_examples, step, stop_between_batches

from spark_conduit import dynamodb_change_schema

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = os.environ.get("DYNAMODB_ENDPOINT", "").strip()
# The DynamoDB table and its Cassandra replica (myks.<TABLE>) have the same name.
TABLE = os.environ.get("STREAMING_QUICKSTART_TABLE", "users_changes")
DYNAMODB = {
    "table_name": TABLE,
    "aws_region": "us-east-1",
    "endpoint_url": ENDPOINT,
    "aws_access_key_id": "dummy",
    "aws_secret_access_key": "dummy",
}
CASSANDRA = {"host": HOST, "keyspace": "myks", "table": TABLE, **LOCAL}
ITEM = "id string, name string, age bigint, city string"


def dynamodb_write(spark: SparkSession, rows: list[tuple], deleted: bool = False) -> None:
    """Puts (or, with ``deleted``, deletes) items through the connector's batch write."""
    df = spark.createDataFrame([(*row, deleted) for row in rows], f"{ITEM}, deleted boolean")
    (
        df.write.format("dynamodb")
        .mode("append")
        .options(**DYNAMODB)
        .option("delete_flag_column", "deleted")
        .option("delete_flag_value", "true")
        .save()
    )


def apply_changes(batch: DataFrame, batch_id: int) -> None:
    """Applies one micro-batch of change events to Cassandra.

    A micro-batch can hold several changes of one key: only the last one counts (sequence
    numbers are decimal strings of varying length: longer is later, then by text). A
    REMOVE deletes the row (the delete flag); otherwise the new image replaces it, and
    ``write_nulls`` clears the columns of attributes the item no longer has.
    """
    last = Window.partitionBy("keys.id").orderBy(F.length("sequence_number").desc(), F.col("sequence_number").desc())
    changes = (
        batch.withColumn("n", F.row_number().over(last))
        .where("n = 1")
        .select(F.col("keys.id").alias("id"), "new_image.name", "new_image.age", "new_image.city", "event_name")
    )
    (
        changes.write.format("pycassandra")
        .mode("append")
        .options(**CASSANDRA)
        .option("delete_flag_column", "event_name")
        .option("delete_flag_value", "REMOVE")
        .option("write_nulls", "true")
        .save()
    )
    counts = dict(batch.groupBy("event_name").count().collect())
    print(f"  micro-batch {batch_id}: applied {sum(counts.values())} change events {counts}", flush=True)


def snapshot(spark: SparkSession, fmt: str, options: dict[str, str]) -> list[tuple]:
    rows = spark.read.format(fmt).schema(ITEM).options(**options).load().collect()
    return sorted(tuple(row) for row in rows)


def wait_until_replicated(spark: SparkSession, query, timeout: float = 120.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        if query.exception() is not None:
            raise RuntimeError(f"the streaming query failed: {query.exception()}")
        source = snapshot(spark, "dynamodb", DYNAMODB)
        replica = snapshot(spark, "pycassandra", CASSANDRA)
        if source == replica:
            return replica
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Cassandra differs from DynamoDB after {timeout:.0f} s:\n  DynamoDB  {source}\n  Cassandra {replica}"
            )
        time.sleep(1)


def wait_for_first_batch(query, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not any((p.numInputRows or 0) > 0 for p in query.recentProgress):
        if query.exception() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the streaming query read nothing in {timeout:.0f} s: {query.exception()}")
        time.sleep(0.5)


def replicate(spark: SparkSession, checkpoint: str) -> None:
    step("Streaming read: DynamoDB Stream -> Spark -> Cassandra")
    subprocess.run(["node", str(ROOT / "examples" / "create-stream-table.mjs"), ENDPOINT, TABLE, "id"], check=True)
    cql(
        "CREATE KEYSPACE IF NOT EXISTS myks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        f"CREATE TABLE IF NOT EXISTS myks.{TABLE} (id text PRIMARY KEY, name text, age bigint, city text)",
        f"TRUNCATE myks.{TABLE}",
    )
    # Changes made before the query starts: trim_horizon reads them too (Bob's two in one micro-batch).
    dynamodb_write(spark, [("u1", "Alice", 30, "Paris"), ("u2", "Bob", 25, "Oslo"), ("u3", "Carol", 41, "Lima")])
    dynamodb_write(spark, [("u2", "Bob", 26, "Oslo")])

    changes = (
        spark.readStream.format("dynamodb")
        .schema(dynamodb_change_schema(ITEM, ["id"]))
        .options(**DYNAMODB)
        .option("starting_position", "trim_horizon")
        .load()
    )
    query = (
        changes.writeStream.foreachBatch(apply_changes)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second")
        .start()
    )
    try:
        wait_for_first_batch(query)
        print("changing items in DynamoDB while the query runs")
        dynamodb_write(spark, [("u4", "Dave", 35, "Rome"), ("u1", "Alice", 31, "Paris")])
        dynamodb_write(spark, [("u3", "Carol", 41, "Lima")], deleted=True)
        dynamodb_write(spark, [("u4", "Dave", 36, None)])  # Dave's city attribute is removed
        replica = wait_until_replicated(spark, query)
    finally:
        stop_between_batches(query)
    print(f"Cassandra myks.{TABLE} equals DynamoDB {TABLE}:")
    for row in replica:
        print(f"  {row}")
    expected = [("u1", "Alice", 31, "Paris"), ("u2", "Bob", 26, "Oslo"), ("u4", "Dave", 36, None)]
    if replica != expected:
        raise RuntimeError(f"expected {expected}, found {replica}")


def main() -> int:
    if not ENDPOINT:
        print("Set DYNAMODB_ENDPOINT to a DynamoDB endpoint, e.g. http://127.0.0.1:8000.", file=sys.stderr)
        return 2
    spark = local_session("dynamodb-streaming")

    def examples() -> None:
        with tempfile.TemporaryDirectory(prefix="streaming-quickstart-") as checkpoint:
            replicate(spark, checkpoint)

    return run_examples(spark, examples)


if __name__ == "__main__":
    sys.exit(main())
