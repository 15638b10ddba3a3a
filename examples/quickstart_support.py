"""What the quickstart examples share: the local Spark session, step headers, running a
streaming query for a few micro-batches, and the pass/fail report."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def local_session(app_name: str) -> SparkSession:
    # Spark's Python workers must run an interpreter that has spark-conduit installed: this one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.appName(app_name)
        .master(os.environ.get("SPARK_MASTER", "local[2]"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_micro_batches(query: StreamingQuery, batches: int, timeout: float) -> int:
    """Lets ``query`` run until ``batches`` micro-batches with rows completed, then stops it;
    returns how many completed. Raises if the query failed or was too slow."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            if query.exception() is not None:
                raise RuntimeError(f"the streaming query failed: {query.exception()}")
            done = [p for p in query.recentProgress if (p.numInputRows or 0) > 0]
            if len(done) >= batches:
                return len(done)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(done)} micro-batches completed in {timeout:.0f} s")
            time.sleep(0.5)
    finally:
        stop_between_batches(query)


def stop_between_batches(query: StreamingQuery, timeout: float = 10.0) -> None:
    """Stops the query, preferably between micro-batches (stopping one mid-way aborts it,
    which Spark logs loudly; its rows are written again on a restart from the checkpoint)."""
    deadline = time.monotonic() + timeout
    while query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.05)
    query.stop()


def run_examples(spark: SparkSession, examples: Callable[[], None]) -> int:
    """Runs the examples, stops Spark, and reports: 0 when every example ran, 1 otherwise."""
    try:
        examples()
    except Exception:
        traceback.print_exc()
        print("\nquickstart FAILED", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print("\nquickstart finished: every example ran")
    return 0
