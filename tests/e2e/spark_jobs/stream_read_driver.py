"""The ``stream_read`` job of fault_driver.py: a streaming READ of any format with a stream
(``format``, with its readStream ``options``: starting position and read limit included), run
in its own process so the kill tests (tests/e2e/stream_kill.py) can SIGKILL the driver
mid-micro-batch and start it again on the same checkpoints.

Two queries read the same stream, each with its own checkpoint under ``checkpoint``:

- ``files``: the rows into a parquet file sink (``sink``). Spark's sink log
  (``_spark_metadata``) says which files are committed, so what ``spark.read.parquet``
  returns is what the query committed, however often the driver died.
- ``apply``: a foreachBatch that writes each micro-batch into another table, the idempotent
  replica a user would build; ``apply`` names how (apply_function).

Both pass a progress stage (fault_driver.progress_stage: one line per Arrow batch, then a
sleep; one file per query, ``progress_files``) so the test sees which micro-batch is in
flight, and when its rows last moved, and a kill lands inside a task.
``available_now`` runs both to the end of the stream and writes a result file; otherwise
they run on a processing-time trigger until killed, or stop by themselves after
``timeout_seconds``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fault_driver import progress_stage, write_result
from fault_driver import session as fault_session
from pyspark.sql import SparkSession

# The foreachBatch functions of the streaming tests: one definition of "apply a micro-batch".
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUERIES = ("files", "apply")


def session(spec: dict) -> SparkSession:
    # One attempt per task (local[2]): a failed read fails the query instead of hiding in a
    # retry; Spark's default Arrow batch size.
    return fault_session({**spec, "master": "local[2]", "arrow_batch_rows": 10_000})


def apply_function(apply: dict):
    """The ``apply`` query's foreachBatch function, as the spec's ``apply`` names it:

    - ``{"kind": "dynamodb_changes", "options": ...}``: DynamoDB change events, the last
      event per key upserted into the options' table, REMOVE deleting
      (test_dynamodb_streaming.applier);
    - ``{"kind": "cassandra_append", "options": ...}``: the rows appended (upserted) into the
      options' Cassandra table (test_cassandra_streaming.cassandra_appender).
    """
    kind = apply["kind"]
    if kind == "dynamodb_changes":
        from test_dynamodb_streaming import applier

        return applier(apply["options"])
    if kind == "cassandra_append":
        from test_cassandra_streaming import cassandra_appender

        return cassandra_appender(apply["options"])
    raise ValueError(f"unknown apply kind {kind!r}")


def rows(spark: SparkSession, spec: dict, phase: str):
    df = spark.readStream.format(spec["format"]).options(**spec["options"]).load()
    return df.mapInArrow(progress_stage(spec["progress_files"][phase], phase, spec["throttle_seconds"]), df.schema)


def start(spark: SparkSession, spec: dict, name: str):
    df = rows(spark, spec, name)
    writer = (
        df.writeStream.format("parquet").option("path", spec["sink"])
        if name == "files"
        else df.writeStream.foreachBatch(apply_function(spec["apply"]))
    )
    writer = writer.queryName(name).option("checkpointLocation", os.path.join(spec["checkpoint"], name))
    if spec["available_now"]:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=spec["trigger_interval"])
    return writer.start()


def run(spec: dict) -> None:
    spark = session(spec)
    queries = {name: start(spark, spec, name) for name in QUERIES}
    deadline = time.monotonic() + spec["timeout_seconds"]
    for query in queries.values():
        query.awaitTermination(max(1.0, deadline - time.monotonic()))
    result: dict = {"driver_pid": os.getpid(), "queries": {}}
    for name, query in queries.items():
        error = query.exception()
        active = query.isActive
        if active:
            query.stop()
        result["queries"][name] = {
            "batches": [{"batchId": p.batchId, "rows": p.numInputRows} for p in query.recentProgress],
            "exception": str(error) if error else None,
            "timed_out": active,
        }
    write_result(spec, result)
    spark.stop()
