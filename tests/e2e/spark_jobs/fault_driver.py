"""A standalone Spark driver for the fault-injection tests (tests/e2e/test_faults_*.py).

The tests run it as a subprocess so that it can use a master that retries failed tasks
(``local[2,4]``: 2 threads, 4 attempts per task; a pytest session's ``local[2]`` never
retries) and so that the whole driver can be killed. It reads one JSON spec::

    python fault_driver.py batch  SPEC.json   # write a generated table, then read it back
    python fault_driver.py stream SPEC.json   # a checkpointed streaming write of parquet files
    python fault_driver.py stream_read SPEC.json  # a streaming read (stream_read_driver.py)

Every Arrow batch that flows into the sink (or out of the read) passes a pass-through
stage that appends ``phase batch partition attempt rows`` to the spec's progress file and
then sleeps ``throttle_seconds``: the test sees where the job is without asking Spark, and
the job is slow enough for a kill to land in the middle of a task. The stage changes no row.
Results (failed task counts, batch ids) go to the spec's result file as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

SCHEMA = StructType(
    [
        StructField("id", LongType(), False),
        StructField("name", StringType(), True),
        StructField("v", LongType(), True),
        StructField("payload", StringType(), True),
    ]
)


def session(spec: dict) -> SparkSession:
    tmp = spec["spark_dir"]
    builder = (
        SparkSession.builder.appName(f"spark-conduit-faults-{spec.get('name', 'job')}")
        # Task retries: local mode gives each task one attempt unless told otherwise.
        .master(spec.get("master", "local[2,4]"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.local.dir", os.path.join(tmp, "local"))
        .config("spark.sql.warehouse.dir", os.path.join(tmp, "warehouse"))
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(spec.get("arrow_batch_rows", 1000)))
        .config("spark.sql.streaming.stopTimeout", "60s")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # Explicit, so the job does not depend on Spark's package scan (tested elsewhere).
    from cassandra_data_source import CassandraDataSource
    from dynamodb_data_source import DynamoDbDataSource

    spark.dataSource.register(DynamoDbDataSource)
    spark.dataSource.register(CassandraDataSource)
    return spark


def progress_stage(progress_file: str, phase: str, throttle_seconds: float):
    """A mapInArrow function: records each batch it passes on, then sleeps."""

    def stage(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        batch_id = context.getLocalProperty("streaming.sql.batchId") or "-"
        where = f"{phase} {batch_id} {context.partitionId()} {context.attemptNumber()}"
        for batch in batches:
            yield batch
            # After the yield: the rows are on their way to the sink when this line appears.
            with open(progress_file, "a") as handle:
                handle.write(f"{where} {batch.num_rows}\n")
            time.sleep(throttle_seconds)

    return stage


def source_rows(spark: SparkSession, rows: int, partitions: int):
    """The generated table: every column a function of ``id`` (fault_jobs.expected_row)."""
    return spark.range(0, rows, numPartitions=partitions).select(
        F.col("id"),
        F.concat(F.lit("name-"), F.col("id").cast("string")).alias("name"),
        ((F.col("id") * 7919) % 1000003).alias("v"),
        F.concat(F.lit("payload-"), F.col("id").cast("string"), F.lit("-" + "x" * 300)).alias("payload"),
    )


def failed_tasks(spark: SparkSession, group: str) -> dict:
    """Tasks of the job group that failed (and were retried), from Spark's status tracker."""
    tracker = spark.sparkContext.statusTracker()
    failed = 0
    tasks = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            stage = tracker.getStageInfo(stage_id)
            if stage:
                failed += stage.numFailedTasks
                tasks += stage.numTasks
    return {"failed_tasks": failed, "tasks": tasks}


def write_result(spec: dict, result: dict) -> None:
    path = spec["result_file"]
    with open(path + ".tmp", "w") as handle:
        json.dump(result, handle)
    os.replace(path + ".tmp", path)


def batch(spec: dict) -> None:
    spark = session(spec)
    sc = spark.sparkContext
    result: dict = {"driver_pid": os.getpid()}
    fmt, options = spec["format"], spec["options"]

    if "write" in spec["phases"]:
        sc.setJobGroup("write", "fault test write")
        df = source_rows(spark, spec["rows"], spec["partitions"]).mapInArrow(
            progress_stage(spec["progress_file"], "write", spec["write_throttle_seconds"]), SCHEMA
        )
        started = time.monotonic()
        df.write.format(fmt).mode("append").options(**options).save()
        result["write"] = {"seconds": time.monotonic() - started, **failed_tasks(spark, "write")}
        write_result(spec, result)

    if "read" in spec["phases"]:
        sc.setJobGroup("read", "fault test read")
        df = (
            spark.read.format(fmt)
            .options(**options)
            .options(**spec.get("read_options", {}))
            .load()
            .select("id", "name", "v", "payload")
            .mapInArrow(progress_stage(spec["progress_file"], "read", spec["read_throttle_seconds"]), SCHEMA)
        )
        started = time.monotonic()
        # Spark commits a task's output only when the task succeeds: a read task killed half
        # way leaves nothing behind, and its retry writes the partition once.
        df.write.mode("overwrite").parquet(spec["read_output"])
        result["read"] = {"seconds": time.monotonic() - started, **failed_tasks(spark, "read")}
        write_result(spec, result)
    spark.stop()


def stream(spec: dict) -> None:
    spark = session(spec)
    fmt, options = spec["format"], spec["options"]
    source = (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", str(spec["files_per_trigger"]))
        .parquet(spec["input_dir"])
        .mapInArrow(progress_stage(spec["progress_file"], "stream", spec["throttle_seconds"]), SCHEMA)
    )
    query = (
        source.writeStream.format(fmt)
        .options(**options)
        .option("checkpointLocation", spec["checkpoint"])
        .trigger(availableNow=True)
        .start()
    )
    started = time.monotonic()
    query.awaitTermination(spec.get("timeout_seconds", 240))
    batches = [{"batchId": p.batchId, "rows": p.numInputRows} for p in query.recentProgress]
    error = query.exception()
    active = query.isActive
    if active:
        query.stop()
    write_result(
        spec,
        {
            "driver_pid": os.getpid(),
            "seconds": time.monotonic() - started,
            "batches": batches,
            "exception": str(error) if error else None,
            "timed_out": active,
        },
    )
    spark.stop()


def stream_read(spec: dict) -> None:
    """A streaming read (DynamoDB Streams, a Cassandra table) into a file sink and a
    foreachBatch replica (stream_read_driver.py, tests/e2e/stream_kill.py)."""
    from stream_read_driver import run

    run(spec)


if __name__ == "__main__":
    mode, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file) as handle:
        job_spec = json.load(handle)
    {"batch": batch, "stream": stream, "stream_read": stream_read}[mode](job_spec)
