"""Streaming reads of DynamoDB Streams (``spark.readStream.format("dynamodb")``) through real
PySpark (classic and Spark Connect), the shim, the service and DynamoDB Local.

The truth every test compares with comes from outside the connector: the source table
scanned with the AWS SDK and the stream's records read with GetRecords
(tests/e2e/dynamodb_helper.mjs). Every write a test makes changes the item, so each one is
exactly one stream record.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    BackgroundRounds,
    assert_error,
    failure,
    input_rows,
    marshal,
    memory_query,
    run_to_end,
    stop_and_restart_while_writing,
    wait_for_rows,
)

CLASSIC = pytest.mark.parametrize("spark", ["classic"], indirect=True)
ITEM_SCHEMA = "id STRING, name STRING, n BIGINT"
# Generous for two shared cores; every query here ends long before.
QUERY_TIMEOUT = 180


class StreamTable:
    """A DynamoDB Local table with a stream, written and read back with the AWS SDK
    (never through the connector)."""

    def __init__(self, dynamodb, name: str, view: str | None = "NEW_AND_OLD_IMAGES") -> None:
        self.dynamodb = dynamodb
        self.name = name
        dynamodb.drop_table(name)
        dynamodb._call("create", {"table": name, "hash": ["id", "S"], "range": None, "stream": view})

    def put(self, items: list[dict]) -> None:
        self.dynamodb.put_items(self.name, items)

    def update(self, changes: dict[str, dict]) -> None:
        """``{id: {attribute: value}}``: one UpdateItem per id."""
        updates = [{"key": marshal({"id": k}), "set": marshal(v)} for k, v in changes.items()]
        self.dynamodb._call("update", {"table": self.name, "updates": updates})

    def delete(self, ids: list[str]) -> None:
        self.dynamodb._call("delete", {"table": self.name, "keys": [marshal({"id": i}) for i in ids]})

    def records(self) -> list[dict]:
        """Every record of the table's streams, from GetRecords."""
        return json.loads(self.dynamodb._call("records", {"table": self.name}))

    def items(self) -> list[dict]:
        return self.dynamodb.items(self.name)

    def drop(self) -> None:
        self.dynamodb.drop_table(self.name)


@contextlib.contextmanager
def stream_table(dynamodb, view: str | None = "NEW_AND_OLD_IMAGES") -> Iterator[StreamTable]:
    table = StreamTable(dynamodb, f"st_{uuid.uuid4().hex[:10]}", view)
    try:
        yield table
    finally:
        table.drop()


@contextlib.contextmanager
def target_table(dynamodb) -> Iterator[str]:
    """An empty table (no stream) the tests replicate into."""
    name = f"tgt_{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(name, ("id", "S"))
    try:
        yield name
    finally:
        dynamodb.drop_table(name)


def item(i: int, r: int = 0) -> dict:
    return {"id": f"k{i:03d}", "name": f"name {i} round {r}", "n": i * 1000 + r}


def change_round(table: StreamTable, r: int, size: int = 6) -> None:
    """Round ``r`` of changes on ids k000..: inserts ``size`` new items, updates some of
    the previous round's, deletes others and re-inserts a deleted one (so a key can see
    INSERT, MODIFY, REMOVE and INSERT again). Every write changes its item."""
    base = r * size
    table.put([item(i, r) for i in range(base, base + size)])
    if r == 0:
        return
    previous = range(base - size, base)
    table.update({f"k{i:03d}": {"name": f"name {i} updated {r}", "n": i * 1000 + r} for i in previous[:3]})
    table.delete([f"k{i:03d}" for i in previous[2:5]])
    table.put([item(previous[3], r)])  # deleted just above: back again


def reader(spark, table: str, options: dict, **extra: str):
    reader = (
        spark.readStream.format("dynamodb")
        .option("table_name", table)
        .option("aws_region", "us-east-1")
        .options(**options)
    )
    return reader.options(**extra)


def applier(target_options: dict):
    """A foreachBatch function that applies a micro-batch of change events to a table:
    the last event per key (by sequence number) wins, REMOVE deletes through the delete flag.

    Self-contained (Spark Connect pickles it by value and runs it in the server's worker)."""

    def apply(batch, batch_id):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        # Sequence numbers are decimal strings of varying length: order by length, then text.
        order = Window.partitionBy(F.col("keys.id")).orderBy(
            F.length("sequence_number").desc(), F.col("sequence_number").desc()
        )
        (
            batch.withColumn("_rank", F.row_number().over(order))
            .where("_rank = 1")
            .select(
                F.col("keys.id").alias("id"),
                F.col("new_image.name").alias("name"),
                F.col("new_image.n").alias("n"),
                "event_name",
            )
            .write.format("dynamodb")
            .mode("append")
            .options(**target_options)
            .option("delete_flag_column", "event_name")
            .option("delete_flag_value", "REMOVE")
            .save()
        )

    return apply


# --- Replication: inserts, updates and deletes applied to a sink table --------------------


def test_changes_replicated_through_foreach_batch_equal_the_table(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb) as source, target_table(dynamodb) as target:
        change_round(source, 0)
        target_options = {"table_name": target, "aws_region": "us-east-1", **options}
        query = (
            reader(spark, source.name, options, starting_position="trim_horizon")
            .load()
            .writeStream.foreachBatch(applier(target_options))
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            wait_for_rows(query, len(source.records()))
            change_round(source, 1)
            change_round(source, 2)
            events = source.records()
            wait_for_rows(query, len(events))
        finally:
            query.stop()
        assert query.exception() is None
        assert Counter(e["eventName"] for e in events) == {"INSERT": 20, "MODIFY": 6, "REMOVE": 6}
        assert sum(input_rows(query)) == len(events)
        assert len(input_rows(query)) >= 2, "every change arrived in one micro-batch: nothing streamed"
        assert dynamodb.items(target) == source.items()
        assert len(source.items()) == 14


# --- Restart from the checkpoint: every event exactly once ----------------------------------


class ChangeWriter(BackgroundRounds):
    """Change rounds ``first`` .. ``last`` in a background thread, a pause between them, so
    changes keep coming while queries stop and start."""

    def __init__(self, table: StreamTable, first: int, last: int, pause: float = 0.5) -> None:
        super().__init__(lambda r: change_round(table, r), range(first, last + 1), pause, QUERY_TIMEOUT)
        self.table = table


def file_sink_query(spark, source: StreamTable, options: dict, sink: Path, checkpoint: Path, available_now: bool):
    writer = (
        reader(spark, source.name, options, starting_position="trim_horizon")
        .load()
        .writeStream.format("parquet")
        .option("path", str(sink))
        .option("checkpointLocation", str(checkpoint))
    )
    return writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime="1 second")


def assert_exactly_once(spark, source: StreamTable, sink: Path, options: dict, dynamodb) -> dict:
    """The file sink's committed events (Spark reads only files its sink log committed) are
    the stream's records, each once; applied in order to a fresh table, they give the source."""
    events = spark.read.parquet(str(sink))
    ids = Counter(row.event_id for row in events.select("event_id").collect())
    records = source.records()
    expected = {r["eventID"] for r in records}
    duplicated = {i: n for i, n in ids.items() if n > 1}
    assert not duplicated, f"events written more than once: {list(duplicated.items())[:10]}"
    assert set(ids) - expected == set(), "events that are not in the stream"
    assert expected - set(ids) == set(), f"{len(expected - set(ids))} of {len(expected)} events lost"
    with target_table(dynamodb) as target:
        applier({"table_name": target, "aws_region": "us-east-1", **options})(events, -1)
        assert dynamodb.items(target) == source.items()
    return {"events": len(records), "kinds": dict(Counter(r["eventName"] for r in records))}


def test_stopped_query_restarts_from_its_checkpoint_while_changes_keep_coming(spark, dynamodb, options, tmp_path):
    sink, checkpoint = tmp_path / "events", tmp_path / "checkpoint"
    with stream_table(dynamodb) as source:
        change_round(source, 0)
        # Rounds keep coming (one a second, 13 events each) until both queries have stopped.
        writer = ChangeWriter(source, 1, 90, pause=1.0).start()
        # Round 0 and at least one round written while the first query ran, then a round after its stop.
        first, second = stop_and_restart_while_writing(
            lambda: file_sink_query(spark, source, options, sink, checkpoint, available_now=False).start(),
            writer,
            6 + 13,
            13,
        )
        # The writer is done: a third start drains the rest and ends by itself.
        third = file_sink_query(spark, source, options, sink, checkpoint, available_now=True).start()
        assert third.awaitTermination(QUERY_TIMEOUT), "availableNow did not end"
        assert third.exception() is None
        batches = [p.batchId for q in (first, second, third) for p in q.recentProgress]
        assert batches == sorted(batches), f"a restart did not continue from the checkpoint: {batches}"
        figures = assert_exactly_once(spark, source, sink, options, dynamodb)
        assert figures["events"] == 6 + 13 * writer.done_rounds
        print(f"\nstreaming read restart figures: {figures}, batches {batches}")


# --- Trigger.AvailableNow, admission control, explicit schema -------------------------------


def test_available_now_reads_everything_and_ends_while_writes_go_on(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb) as source:
        for r in range(3):
            change_round(source, r)
        before = {r["eventID"] for r in source.records()}
        # Enough rounds to outlast the query many times over; stopped when it ends.
        writer = ChangeWriter(source, 3, 200, pause=1.0).start()
        try:
            name = f"avail_{uuid.uuid4().hex[:8]}"
            df = reader(spark, source.name, options, starting_position="trim_horizon").load()
            query = memory_query(spark, df, name, tmp_path / "checkpoint")
            ended = query.awaitTermination(QUERY_TIMEOUT)
            still_writing = writer.thread.is_alive()
        finally:
            writer.join(stop=True)
        assert ended, "trigger(availableNow=True) did not end"
        assert query.exception() is None
        assert still_writing, "the writer finished before the query: the test shows nothing"
        got = Counter(row.event_id for row in spark.table(name).select("event_id").collect())
        assert before <= set(got), f"{len(before - set(got))} events written before the start are missing"
        assert max(got.values()) == 1
        assert set(got) <= {r["eventID"] for r in source.records()}
        assert writer.done_rounds > 0


def test_max_records_per_trigger_bounds_every_micro_batch(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb) as source:
        for r in range(3):
            change_round(source, r)
        expected = {r["eventID"] for r in source.records()}
        name = f"maxrec_{uuid.uuid4().hex[:8]}"
        df = reader(spark, source.name, options, starting_position="trim_horizon", max_records_per_trigger="7").load()
        query = memory_query(spark, df, name, tmp_path / "checkpoint")
        assert query.awaitTermination(QUERY_TIMEOUT)
        assert query.exception() is None
        rows = input_rows(query)
        assert len(expected) == 32
        assert all(n <= 7 for n in rows), rows
        assert sum(rows) == len(expected), rows
        assert len(rows) >= 5, rows
        got = [row.event_id for row in spark.table(name).select("event_id").collect()]
        assert sorted(got) == sorted(expected)


@CLASSIC
def test_explicit_schema_types_the_images(spark, dynamodb, options, tmp_path):
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    from spark_conduit import dynamodb_change_schema

    schema = dynamodb_change_schema("id STRING, n INT", ["id"])  # the DDL form parses in the session
    with stream_table(dynamodb) as source:
        source.put([{"id": "a", "name": "x", "n": 1}])
        source.update({"a": {"n": 2}})
        source.delete(["a"])
        name = f"schema_{uuid.uuid4().hex[:8]}"
        df = reader(spark, source.name, options, starting_position="trim_horizon").schema(schema).load()
        assert df.schema == schema
        query = memory_query(spark, df, name, tmp_path / "checkpoint")
        assert query.awaitTermination(QUERY_TIMEOUT)
        assert query.exception() is None
        table = spark.table(name)
        assert table.schema["new_image"].dataType == StructType(
            [StructField("id", StringType()), StructField("n", IntegerType())]
        )
        rows = sorted(table.collect(), key=lambda row: row.sequence_number)
        assert [(r.event_name, r.keys.id) for r in rows] == [("INSERT", "a"), ("MODIFY", "a"), ("REMOVE", "a")]
        images = [(r.old_image and r.old_image.asDict(), r.new_image and r.new_image.asDict()) for r in rows]
        assert images == [
            (None, {"id": "a", "n": 1}),
            ({"id": "a", "n": 1}, {"id": "a", "n": 2}),
            ({"id": "a", "n": 2}, None),
        ]
        assert all(isinstance(r.new_image.n, int) for r in rows[:2])
        assert len({r.event_id for r in rows}) == 3
        assert all(r.approximate_creation_time is not None for r in rows)


# --- What a user sees when something is wrong --------------------------------------------


def test_table_without_a_stream_says_how_to_enable_one(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb, view=None) as source:
        source.put([item(1)])
        text = failure(
            lambda: run_to_end(
                spark, reader(spark, source.name, options, starting_position="trim_horizon").load(), tmp_path
            )
        )
    assert_error(text, "STREAM_NOT_ENABLED", source.name, "NEW_AND_OLD_IMAGES", "StreamSpecification")


def test_unknown_starting_position_names_the_option(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb) as source:
        source.put([item(1)])
        text = failure(
            lambda: run_to_end(
                spark, reader(spark, source.name, options, starting_position="beginning").load(), tmp_path
            )
        )
    assert_error(text, "OPTION_INVALID_VALUE", "starting_position", "beginning", "trim_horizon")


def test_read_stream_without_starting_position_says_which_to_set(spark, dynamodb, options, tmp_path):
    with stream_table(dynamodb) as source:
        source.put([item(1)])
        text = failure(lambda: run_to_end(spark, reader(spark, source.name, options).load(), tmp_path))
    assert_error(text, "STREAM_STARTING_POSITION_REQUIRED", "starting_position", "trim_horizon", "latest")


def test_batch_read_with_starting_position_says_to_use_read_stream(spark, dynamodb, options):
    with stream_table(dynamodb) as source:
        source.put([item(1)])
        text = failure(
            lambda: (
                spark.read.format("dynamodb")
                .option("table_name", source.name)
                .option("aws_region", "us-east-1")
                .option("starting_position", "trim_horizon")
                .options(**options)
                .load()
                .collect()
            )
        )
    assert_error(text, "STREAM_OPTION_IN_BATCH_READ", "starting_position", "readStream", source.name)


@CLASSIC
def test_checkpoint_of_another_table_is_refused(spark, dynamodb, options, tmp_path):
    sink, checkpoint = tmp_path / "events", tmp_path / "checkpoint"
    with stream_table(dynamodb) as first, stream_table(dynamodb) as second:
        first.put([item(1)])
        second.put([item(2)])
        query = file_sink_query(spark, first, options, sink, checkpoint, available_now=True).start()
        assert query.awaitTermination(QUERY_TIMEOUT) and query.exception() is None
        assert spark.read.parquet(str(sink)).count() == 1

        def restart_on_the_other_table():
            query = file_sink_query(spark, second, options, sink, checkpoint, available_now=True).start()
            assert query.awaitTermination(QUERY_TIMEOUT)
            if query.exception() is not None:
                raise RuntimeError(str(query.exception()))

        text = failure(restart_on_the_other_table)
        assert spark.read.parquet(str(sink)).count() == 1
    assert_error(text, "STREAM_OFFSET_OTHER_TABLE", first.name, second.name, "checkpoint")
