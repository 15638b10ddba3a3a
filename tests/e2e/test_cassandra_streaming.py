"""Streaming reads of Cassandra tables (``spark.readStream.format("pycassandra")``) through
real PySpark (classic and Spark Connect), the shim, the service and the local Cassandra.

Cassandra has no change log the connector reads: a stream follows a column whose value grows
with time (``column`` mode: a timestamp, timeuuid or bigint that is the first clustering
column or carries an SAI index) or each row's newest write time (``writetime`` mode); see
src/backends/cassandra/stream.ts.

The truth every test compares with comes from outside the connector: the tables read back
with scripts/cql.mjs. Writers stamp rows with the coordinator's clock (``toTimestamp(now())``,
``now()``) as they are written, so a row is readable long before the stream's mark (the
clock less ``stream_lag_ms``) passes its value.
"""

from __future__ import annotations

import contextlib
import datetime
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from e2e_support import (
    BackgroundRounds,
    assert_error,
    failure,
    input_rows,
    memory_query,
    run_to_end,
    stop_and_restart_while_writing,
    wait_for_rows,
)

# Generous for two shared cores; every query here ends long before.
QUERY_TIMEOUT = 180
# The mark trails the service's clock by this: rows become visible a second after their value.
LAG_MS = 1000


@pytest.fixture(scope="module")
def ks(cassandra) -> Iterator[str]:
    """This module's own keyspace, dropped at the end."""
    name = f"cstream_{uuid.uuid4().hex[:8]}"
    cassandra.create_keyspace(name)
    try:
        yield name
    finally:
        cassandra.cql(f"DROP KEYSPACE IF EXISTS {name}")


@contextlib.contextmanager
def cql_table(cassandra, ks: str, columns: str, *then: str) -> Iterator[str]:
    """A new table ``ks.<name> (columns)``; ``then`` are statements run after the CREATE,
    with ``{t}`` standing for ``ks.name``. Dropped at the end."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    full = f"{ks}.{name}"
    cassandra.cql(f"CREATE TABLE {full} ({columns})", *[s.format(t=full) for s in then])
    try:
        yield name
    finally:
        cassandra.cql(f"DROP TABLE IF EXISTS {full}")


def connection(cassandra, ks: str, table: str) -> dict[str, str]:
    return {"host": cassandra.host, "keyspace": ks, "table": table, **cassandra.options}


def reader(spark, cassandra, ks: str, table: str, **extra: str):
    return (
        spark.readStream.format("pycassandra")
        .options(**connection(cassandra, ks, table))
        .option("stream_lag_ms", str(LAG_MS))
        .options(**extra)
    )


def past(seconds: float) -> str:
    """A timestamp literal ``seconds`` before now (milliseconds, UTC)."""
    at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds")


class RowWriter(BackgroundRounds):
    """Inserts rounds of rows in a background thread, one cql.mjs call a round and a pause
    between rounds, until stopped. Bounded: at most ``rounds`` rounds. Round ``r`` inserts the
    ids ``first_id + r * per_round`` .. (``statement(id)`` gives one row's INSERT)."""

    def __init__(
        self, cassandra, statement: Callable[[int], str], first_id: int, per_round: int, rounds: int, pause: float = 0.5
    ):
        def insert_round(r: int) -> None:
            base = first_id + r * per_round
            cassandra.cql(*[statement(i) for i in range(base, base + per_round)])

        super().__init__(insert_round, range(rounds), pause, QUERY_TIMEOUT)
        self.per_round = per_round

    @property
    def written(self) -> int:
        return self.done_rounds * self.per_round


def settle() -> None:
    """After the last write: wait until the mark (clock less the lag) has passed every row."""
    time.sleep(LAG_MS / 1000 + 1.0)


# --- Rows inserted while the query runs: all of them arrive ---------------------------------


def cassandra_appender(target: dict[str, str]):
    """A foreachBatch function that appends a micro-batch to a Cassandra table.

    Self-contained (Spark Connect pickles it by value and runs it in the server's worker)."""

    def append(batch, batch_id):
        batch.write.format("pycassandra").mode("append").options(**target).save()

    return append


EVENT_COLUMNS = "id int PRIMARY KEY, ts timestamp, v text"


def test_rows_inserted_while_the_query_runs_all_arrive(spark, cassandra, ks, tmp_path):
    """An SAI-indexed timestamp column, replicated by foreachBatch into a second table."""
    with (
        cql_table(cassandra, ks, EVENT_COLUMNS, "CREATE INDEX ON {t} (ts) USING 'sai'") as source,
        cql_table(cassandra, ks, EVENT_COLUMNS) as target,
    ):
        seed = 10
        cassandra.cql(
            *[f"INSERT INTO {ks}.{source} (id, ts, v) VALUES ({i}, '{past(60 - i)}', 'seed {i}')" for i in range(seed)]
        )
        query = (
            reader(spark, cassandra, ks, source, stream_column="ts", starting_position="earliest")
            .load()
            .writeStream.foreachBatch(cassandra_appender(connection(cassandra, ks, target)))
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            wait_for_rows(query, seed)
            writer = RowWriter(
                cassandra,
                lambda i: f"INSERT INTO {ks}.{source} (id, ts, v) VALUES ({i}, toTimestamp(now()), 'live {i}')",
                first_id=100,
                per_round=4,
                rounds=5,
                pause=0.3,
            ).start()
            writer.join()
            total = cassandra.count(ks, source)
            assert total == seed + writer.written == 30
            wait_for_rows(query, total)
        finally:
            query.stop()
        assert query.exception() is None
        rows = input_rows(query)
        assert sum(rows) == total, f"rows read more than once: {rows}"
        assert len(rows) >= 3, f"the inserted rows did not stream in several micro-batches: {rows}"
        assert cassandra.rows(ks, target) == cassandra.rows(ks, source)


# --- Restart from the checkpoint: every row exactly once ------------------------------------


READING_COLUMNS = "sensor text, at timeuuid, id int, value double, PRIMARY KEY (sensor, at)"


def reading(ks: str, table: str, i: int) -> str:
    return f"INSERT INTO {ks}.{table} (sensor, at, id, value) VALUES ('s{i % 3}', now(), {i}, {i / 4})"


def test_stopped_query_restarts_from_its_checkpoint_while_rows_keep_coming(spark, cassandra, ks, tmp_path):
    """A timeuuid first clustering column (a slice of every partition per micro-batch) into a
    parquet sink: stopped and restarted from its checkpoint while rows keep coming, stopped
    again, then drained by an availableNow run once the writer is done."""
    sink, checkpoint = tmp_path / "rows", tmp_path / "checkpoint"

    def file_sink_query(source: str, available_now: bool):
        writer = (
            reader(spark, cassandra, ks, source, stream_column="at", starting_position="earliest")
            .load()
            .writeStream.format("parquet")
            .option("path", str(sink))
            .option("checkpointLocation", str(checkpoint))
        )
        trigger = {"availableNow": True} if available_now else {"processingTime": "1 second"}
        return writer.trigger(**trigger).start()

    with cql_table(cassandra, ks, READING_COLUMNS) as source:
        seed = 6
        cassandra.cql(*[reading(ks, source, i) for i in range(seed)])
        # Three rows a round, about one round a second, until both queries have stopped.
        writer = RowWriter(cassandra, lambda i: reading(ks, source, i), first_id=seed, per_round=3, rounds=120).start()
        # The seed and at least one round written while the first query ran, then a round after its stop.
        first, second = stop_and_restart_while_writing(
            lambda: file_sink_query(source, available_now=False), writer, seed + 3, 3
        )
        settle()
        # The writer is done: a third start drains the rest and ends by itself.
        third = file_sink_query(source, available_now=True)
        assert third.awaitTermination(QUERY_TIMEOUT), "availableNow did not end"
        assert third.exception() is None
        batches = [p.batchId for q in (first, second, third) for p in q.recentProgress]
        assert batches == sorted(batches), f"a restart did not continue from the checkpoint: {batches}"

        expected = [(r["sensor"], r["at"], r["id"], float(r["value"])) for r in cassandra.rows(ks, source)]
        assert len(expected) == seed + writer.written
        got = [(r.sensor, r.at, r.id, r.value) for r in spark.read.parquet(str(sink)).collect()]
        ids = Counter(row[2] for row in got)
        duplicated = {i: n for i, n in ids.items() if n > 1}
        assert not duplicated, f"rows written more than once: {sorted(duplicated.items())[:10]}"
        missing = set(range(len(expected))) - set(ids)
        assert not missing, f"{len(missing)} of {len(expected)} rows lost: {sorted(missing)[:20]}"
        assert ids == Counter(row[2] for row in expected)
        assert sorted(got) == sorted(expected)
        print(f"\ncassandra streaming restart: {len(expected)} rows, batches {batches}")


# --- Trigger.AvailableNow and max_rows_per_trigger -----------------------------------------


def test_available_now_ends_while_rows_keep_coming_and_respects_max_rows_per_trigger(spark, cassandra, ks, tmp_path):
    """A timestamp first clustering column; the seed rows have distinct values, so no
    micro-batch may pass the limit; the writer's rounds are smaller than the limit."""
    limit = 6
    columns = "bucket int, ts timestamp, id int, PRIMARY KEY (bucket, ts, id)"
    with cql_table(cassandra, ks, columns) as source:
        seed = 30
        insert = f"INSERT INTO {ks}.{source} (bucket, ts, id)"
        cassandra.cql(*[f"{insert} VALUES ({i % 3}, '{past(120 - i)}', {i})" for i in range(seed)])
        # Enough rounds to outlast the query many times over; stopped when it ends.
        writer = RowWriter(
            cassandra,
            lambda i: f"INSERT INTO {ks}.{source} (bucket, ts, id) VALUES ({i % 3}, toTimestamp(now()), {i})",
            first_id=1000,
            per_round=3,
            rounds=300,
        ).start()
        try:
            writer.wait_rounds(1)
            name = f"avail_{uuid.uuid4().hex[:8]}"
            df = reader(
                spark,
                cassandra,
                ks,
                source,
                stream_column="ts",
                starting_position="earliest",
                max_rows_per_trigger=str(limit),
            ).load()
            query = memory_query(spark, df, name, tmp_path / "checkpoint")
            ended = query.awaitTermination(QUERY_TIMEOUT)
            still_writing = writer.thread.is_alive()
        finally:
            writer.join(stop=True)
        assert ended, "trigger(availableNow=True) did not end"
        assert query.exception() is None
        assert still_writing, "the writer finished before the query: the test shows nothing"
        rows = input_rows(query)
        assert all(n <= limit for n in rows), f"a micro-batch passed max_rows_per_trigger={limit}: {rows}"
        assert len(rows) >= -(-seed // limit), rows
        got = Counter(row.id for row in spark.table(name).select("id").collect())
        assert sum(rows) == sum(got.values()), rows
        assert max(got.values()) == 1, "rows read more than once"
        assert set(range(seed)) <= set(got), f"seed rows missing: {sorted(set(range(seed)) - set(got))}"
        assert set(got) <= {r["id"] for r in cassandra.rows(ks, source)}


# --- Write-time mode: inserts and updates ----------------------------------------------------


def test_writetime_mode_sees_an_update(spark, cassandra, ks, tmp_path):
    """A table without any time column: the update of a column arrives as the row with its new value."""
    with cql_table(cassandra, ks, "id int PRIMARY KEY, name text, score int") as source:
        insert = f"INSERT INTO {ks}.{source} (id, name, score)"
        cassandra.cql(*[f"{insert} VALUES ({i}, 'name {i}', {i * 10})" for i in range(4)])
        name = f"wt_{uuid.uuid4().hex[:8]}"
        query = (
            reader(spark, cassandra, ks, source, stream_mode="writetime", starting_position="earliest")
            .load()
            .writeStream.format("memory")
            .queryName(name)
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            wait_for_rows(query, 4)
            cassandra.cql(
                f"UPDATE {ks}.{source} SET name = 'renamed' WHERE id = 2",
                f"INSERT INTO {ks}.{source} (id, name, score) VALUES (9, 'name 9', 90)",
            )
            wait_for_rows(query, 6)
        finally:
            query.stop()
        assert query.exception() is None
        rows = input_rows(query)
        assert sum(rows) == 6 and len(rows) >= 2, rows
        got = sorted((r.id, r.name, r.score) for r in spark.table(name).collect())
        assert got == [
            (0, "name 0", 0),
            (1, "name 1", 10),
            (2, "name 2", 20),
            (2, "renamed", 20),
            (3, "name 3", 30),
            (9, "name 9", 90),
        ]
        # The newest row of each key is the table as Cassandra has it.
        source_rows = {r["id"]: (r["id"], r["name"], r["score"]) for r in cassandra.rows(ks, source)}
        assert source_rows[2] == (2, "renamed", 20)
        assert sorted(source_rows.values()) == sorted({row[0]: row for row in got}.values())


# --- What a user sees when something is wrong ----------------------------------------------


PLAIN_COLUMNS = "id int PRIMARY KEY, created_at timestamp, v text"


def test_column_neither_clustering_nor_indexed_needs_allow_filtering(spark, cassandra, ks, tmp_path):
    with cql_table(cassandra, ks, PLAIN_COLUMNS) as source:
        insert = f"INSERT INTO {ks}.{source} (id, created_at, v)"
        cassandra.cql(*[f"{insert} VALUES ({i}, '{past(30)}', 'x')" for i in range(3)])

        def stream(**extra: str):
            return reader(
                spark, cassandra, ks, source, stream_column="created_at", starting_position="earliest", **extra
            ).load()

        text = failure(lambda: run_to_end(spark, stream(), tmp_path))
        assert_error(text, "STREAM_COLUMN_NOT_INDEXED", "stream_column", "created_at", "allow_filtering", source)
        # With allow_filtering the same stream reads every row by scanning.
        name = run_to_end(spark, stream(allow_filtering="true"), tmp_path)
        assert sorted(r.id for r in spark.table(name).collect()) == [0, 1, 2]


def test_read_stream_without_starting_position_says_which_to_set(spark, cassandra, ks, tmp_path):
    with cql_table(cassandra, ks, EVENT_COLUMNS, "CREATE INDEX ON {t} (ts) USING 'sai'") as source:
        cassandra.cql(f"INSERT INTO {ks}.{source} (id, ts, v) VALUES (1, '{past(30)}', 'x')")
        text = failure(
            lambda: run_to_end(spark, reader(spark, cassandra, ks, source, stream_column="ts").load(), tmp_path)
        )
    assert_error(text, "STREAM_STARTING_POSITION_REQUIRED", "starting_position", "earliest", "latest", "pycassandra")


def test_batch_read_with_starting_position_says_to_use_read_stream(spark, cassandra, ks):
    with cql_table(cassandra, ks, EVENT_COLUMNS, "CREATE INDEX ON {t} (ts) USING 'sai'") as source:
        cassandra.cql(f"INSERT INTO {ks}.{source} (id, ts, v) VALUES (1, '{past(30)}', 'x')")
        text = failure(
            lambda: (
                spark.read.format("pycassandra")
                .options(**connection(cassandra, ks, source))
                .option("stream_column", "ts")
                .option("starting_position", "earliest")
                .load()
                .collect()
            )
        )
    assert_error(text, "STREAM_OPTION_IN_BATCH_READ", "starting_position", "readStream", source)
