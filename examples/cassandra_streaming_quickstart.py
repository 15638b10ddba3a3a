"""Cassandra -> Spark -> Cassandra with a streaming read of a Cassandra table.

    CASSANDRA_PORT=9042 CASSANDRA_USERNAME=cassandra CASSANDRA_PASSWORD=cassandra \\
        python examples/cassandra_streaming_quickstart.py

(``npm run quickstart`` starts the local Cassandra and runs this after the other examples.)
It creates ``myks.readings`` (one partition per sensor, clustered by the reading's time) and
``myks.readings_archive``, starts ``spark.readStream.format("pycassandra")`` that follows
the ``at`` column from the oldest row, writes every micro-batch to the archive with
``writeStream.format("pycassandra")``, inserts readings while the query runs, and checks
that the archive ends equal to the source. Then a second query streams ``myks.sensors``,
which has no time column, by write time: it sees an update. Exits non-zero on any difference.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from cassandra_quickstart import HOST, LOCAL, cql
from pyspark.sql import SparkSession
from quickstart_support import local_session, run_examples, step, stop_between_batches

SOURCE = {"host": HOST, "keyspace": "myks", "table": "readings", **LOCAL}
ARCHIVE = {"host": HOST, "keyspace": "myks", "table": "readings_archive", **LOCAL}
SENSORS = {"host": HOST, "keyspace": "myks", "table": "sensors", **LOCAL}
READING_COLUMNS = "sensor text, at timestamp, celsius double, PRIMARY KEY (sensor, at)"
# A reading becomes visible to the stream once it is this old (the default is 5 s).
LAG_MS = "1000"


def insert_readings(first: int, count: int) -> None:
    now = datetime.now(timezone.utc)
    cql(
        *(
            f"INSERT INTO myks.readings (sensor, at, celsius) VALUES ('s{i % 3}', "
            f"'{(now - timedelta(milliseconds=10 * (count - k))).isoformat(timespec='milliseconds')}', {20 + i / 10})"
            for k, i in enumerate(range(first, first + count))
        )
    )


def rows(spark: SparkSession, options: dict[str, str]) -> list[tuple]:
    return sorted(tuple(r) for r in spark.read.format("pycassandra").options(**options).load().collect())


def wait_until_equal(spark: SparkSession, query, timeout: float = 120.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        if query.exception() is not None:
            raise RuntimeError(f"the streaming query failed: {query.exception()}")
        source, archive = rows(spark, SOURCE), rows(spark, ARCHIVE)
        if source == archive:
            return archive
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the archive has {len(archive)} of the source's {len(source)} rows after {timeout:.0f} s"
            )
        time.sleep(1)


def follow_a_time_column(spark: SparkSession, checkpoint: str) -> None:
    step("Streaming read: a Cassandra table followed by its clustering column -> another table")
    cql(
        "CREATE KEYSPACE IF NOT EXISTS myks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        *(f"CREATE TABLE IF NOT EXISTS myks.{table} ({READING_COLUMNS})" for table in ("readings", "readings_archive")),
        "TRUNCATE myks.readings",
        "TRUNCATE myks.readings_archive",
    )
    insert_readings(0, 30)  # before the query: "earliest" reads them too
    readings = (
        spark.readStream.format("pycassandra")
        .options(**SOURCE)
        .option("stream_column", "at")
        .option("starting_position", "earliest")
        .option("stream_lag_ms", LAG_MS)
        .load()
    )
    query = (
        readings.writeStream.format("pycassandra")
        .options(**ARCHIVE)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second")
        .start()
    )
    try:
        for first in (30, 60, 90):  # readings keep coming while the query runs
            time.sleep(1.5)
            insert_readings(first, 30)
            print(f"  inserted readings {first}..{first + 29}")
        archive = wait_until_equal(spark, query)
    finally:
        stop_between_batches(query)
    batches = [p.numInputRows for p in query.recentProgress if p.numInputRows]
    print(f"myks.readings_archive equals myks.readings: {len(archive)} rows in {len(batches)} micro-batches {batches}")
    if len(archive) != 120:
        raise RuntimeError(f"expected 120 readings, found {len(archive)}")


def follow_write_time(spark: SparkSession) -> None:
    step("Streaming read by write time: a table without a time column")
    cql(
        "CREATE TABLE IF NOT EXISTS myks.sensors (sensor text PRIMARY KEY, room text, threshold double)",
        "TRUNCATE myks.sensors",
        "INSERT INTO myks.sensors (sensor, room, threshold) VALUES ('s0', 'lab', 25)",
        "INSERT INTO myks.sensors (sensor, room, threshold) VALUES ('s1', 'hall', 22)",
    )
    changed = (
        spark.readStream.format("pycassandra")
        .options(**SENSORS)
        .option("stream_mode", "writetime")
        .option("starting_position", "earliest")
        .option("stream_lag_ms", LAG_MS)
        .load()
    )
    query = changed.writeStream.format("memory").queryName("sensor_changes").trigger(processingTime="1 second").start()
    try:
        deadline = time.monotonic() + 120
        while spark.table("sensor_changes").count() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        cql("UPDATE myks.sensors SET threshold = 27.5 WHERE sensor = 's0'")
        while spark.table("sensor_changes").where("threshold = 27.5").count() == 0 and time.monotonic() < deadline:
            if query.exception() is not None:
                raise RuntimeError(f"the streaming query failed: {query.exception()}")
            time.sleep(0.5)
    finally:
        stop_between_batches(query)
    seen = sorted(tuple(r) for r in spark.table("sensor_changes").collect())
    print("rows seen, the update of s0 as a second version:")
    for row in seen:
        print(f"  {row}")
    if seen != [("s0", "lab", 25.0), ("s0", "lab", 27.5), ("s1", "hall", 22.0)]:
        raise RuntimeError(f"unexpected rows: {seen}")


def main() -> int:
    spark = local_session("cassandra-streaming")

    def examples() -> None:
        with tempfile.TemporaryDirectory(prefix="cassandra-streaming-quickstart-") as checkpoint:
            follow_a_time_column(spark, checkpoint)
        follow_write_time(spark)

    return run_examples(spark, examples)


if __name__ == "__main__":
    sys.exit(main())
