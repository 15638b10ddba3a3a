"""The data source classes against the fake service: what each hook sends, and that
everything Spark pickles to workers pickles."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import LongType, StringType, StructField, StructType

from dynamodb_data_source import DynamoDbDataSource
from pyspark_conduit_dynamodb import DefaultSource
from spark_conduit import arrow_ipc, datasource
from spark_conduit.datasource import ConduitCommitMessage, ConduitInputPartition

SCHEMA = StructType([StructField("id", StringType()), StructField("age", LongType())])
OPTIONS = {"table_name": "users", "aws_region": "us-east-1", "service_token": "tok"}


def source(options=None) -> DynamoDbDataSource:
    return DynamoDbDataSource(dict(OPTIONS if options is None else options))


def test_registration_names():
    assert DefaultSource is DynamoDbDataSource
    assert issubclass(DefaultSource, DataSource)
    assert DefaultSource.name() == "dynamodb"

    from cassandra_data_source import CassandraDataSource
    from pyspark_conduit_cassandra import DefaultSource as CassandraDefault

    assert CassandraDefault is CassandraDataSource
    assert issubclass(CassandraDefault, DataSource)
    assert CassandraDefault.name() == "pycassandra"


def test_spark_finds_both_formats_by_module_name():
    """What Spark 4's lookup_data_sources worker does: pyspark_* modules exporting DefaultSource."""
    import importlib
    import pkgutil

    found = {}
    for info in pkgutil.iter_modules():
        if info.name.startswith("pyspark_conduit_"):
            module = importlib.import_module(info.name)
            found[module.DefaultSource.name()] = module.DefaultSource
    assert {"dynamodb", "pycassandra"} <= set(found)


def test_schema_calls_describe_without_a_schema(fake_service):
    with pytest.warns(UserWarning, match="sampled 2 items"):
        schema = source().schema()
    assert schema == SCHEMA
    [request] = fake_service.calls_named("Describe")
    assert request.format == "dynamodb"
    assert request.arrow_schema == b""
    assert dict(request.options) == {"table_name": "users", "aws_region": "us-east-1"}


def test_the_token_travels_as_metadata_only(fake_service):
    with pytest.warns(UserWarning):
        source().schema()
    assert fake_service.metadata[0]["authorization"] == "Bearer tok"


def test_read_plans_partitions_and_streams_batches(fake_service):
    fake_service.batches = [
        pa.record_batch({"id": ["a", "b"], "age": [1, 2]}),
        pa.record_batch({"id": pa.array([], pa.string()), "age": pa.array([], pa.int64())}),
        pa.record_batch({"age": [3], "id": ["c"]}),  # columns out of order are put right
    ]
    reader = pickle.loads(pickle.dumps(source().reader(SCHEMA)))
    partitions = reader.partitions()
    assert isinstance(partitions, list)
    assert [p.descriptor for p in partitions] == [b"p0", b"p1"]
    assert all(isinstance(p, InputPartition) for p in partitions)
    [plan] = fake_service.calls_named("PlanRead")
    assert arrow_ipc.decode_schema(plan.arrow_schema).equals(arrow_ipc.to_arrow_schema(SCHEMA))

    partition = pickle.loads(pickle.dumps(partitions[1]))
    reader = pickle.loads(pickle.dumps(reader))  # executors get a pickled reader
    batches = list(reader.read(partition))
    expected = arrow_ipc.to_arrow_schema(SCHEMA)
    assert all(b.schema.equals(expected) for b in batches)
    assert [row["id"] for b in batches for row in b.to_pylist()] == ["a", "b", "c"]
    [read] = fake_service.calls_named("Read")
    assert read.partition == b"p1"
    assert read.format == "dynamodb"


def test_read_of_the_placeholder_partition_yields_nothing(fake_service):
    assert list(source().reader(SCHEMA).read(InputPartition(None))) == []
    assert fake_service.calls_named("Read") == []


def test_partition_repr_does_not_dump_bytes():
    assert repr(ConduitInputPartition(3, b"x" * 1000)) == "ConduitInputPartition(index=3, descriptor=1000 bytes)"


def test_batch_write_plans_on_the_driver_then_writes_and_commits(fake_service):
    writer = source().writer(SCHEMA, overwrite=True)
    assert isinstance(writer, DataSourceArrowWriter)
    [plan] = fake_service.calls_named("PlanWrite")
    assert plan.overwrite and not plan.streaming

    writer = pickle.loads(pickle.dumps(writer))
    batch = pa.record_batch({"id": ["a", "b", "c"], "age": [1, 2, 3]})
    message = writer.write(iter([batch, batch.slice(0, 0)]))
    assert isinstance(message, WriterCommitMessage)
    assert message.rows_written == 3
    message = pickle.loads(pickle.dumps(message))
    [header] = fake_service.calls_named("Write")
    assert header.write_plan == b"plan-batch"
    assert header.format == "dynamodb"
    assert "service_token" not in header.options

    writer.commit([message, message])
    [commit] = fake_service.calls_named("CommitWrite")
    assert commit.write_plan == b"plan-batch"
    assert [r.rows_written for r in commit.task_results] == [3, 3]

    with pytest.warns(UserWarning, match="may have been written"):
        writer.abort([message, None])
    [abort] = fake_service.calls_named("AbortWrite")
    assert len(abort.task_results) == 1


def test_empty_task_still_sends_the_header(fake_service):
    message = source().writer(SCHEMA, overwrite=False).write(iter([]))
    assert message.rows_written == 0
    assert len(fake_service.calls_named("Write")) == 1


def test_a_large_batch_is_sent_in_several_messages(fake_service, monkeypatch):
    monkeypatch.setattr(arrow_ipc, "MAX_IPC_BATCH_BYTES", 50_000)
    batch = pa.record_batch({"id": [f"id-{i:06d}" + "x" * 100 for i in range(5000)], "age": list(range(5000))})
    message = source().writer(SCHEMA, overwrite=False).write(iter([batch]))
    assert message.rows_written == 5000
    assert len(fake_service.write_messages) > 5
    assert max(fake_service.write_messages) < 60_000
    assert pa.Table.from_batches(fake_service.written).equals(pa.Table.from_batches([batch]))


def test_stream_writer_plans_streaming_and_commits_each_micro_batch(fake_service):
    writer = source().streamWriter(SCHEMA, overwrite=False)
    assert datasource.HAS_STREAM_ARROW_WRITER
    [plan] = fake_service.calls_named("PlanWrite")
    assert plan.streaming and not plan.overwrite
    message = pickle.loads(pickle.dumps(writer)).write(iter([pa.record_batch({"id": ["a"], "age": [1]})]))
    assert message.rows_written == 1
    [header] = fake_service.calls_named("Write")
    assert header.write_plan == b"plan-streaming"

    writer.commit([message], 7)
    [commit] = fake_service.calls_named("CommitWrite")
    assert commit.batch_id == 7
    assert commit.write_plan == b"plan-streaming"
    assert [r.rows_written for r in commit.task_results] == [1]

    with pytest.warns(UserWarning, match="micro-batch 8 aborted"):
        writer.abort([None], 8)
    [abort] = fake_service.calls_named("AbortWrite")
    assert abort.batch_id == 8 and abort.write_plan == b"plan-streaming"


def test_rows_to_batches_fallback_for_spark_4_0():
    from pyspark.sql import Row

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("address", pa.struct([("city", pa.string())])),
            ("tags", pa.list_(pa.string())),
            ("attrs", pa.map_(pa.string(), pa.int64())),
        ]
    )
    rows = [
        Row(id="a", address=Row(city="Oslo"), tags=["x"], attrs={"k": 1}),
        Row(id="b", address=None, tags=None, attrs=None),
    ]
    [batch] = list(datasource._rows_to_batches(iter(rows), schema))
    assert batch.schema.equals(schema)
    assert batch.to_pylist()[0] == {
        "id": "a",
        "address": {"city": "Oslo"},
        "tags": ["x"],
        "attrs": [("k", 1)],
    }


def test_commit_message_round_trips_the_counts():
    from spark_conduit.v1 import conduit_pb2 as pb

    response = pb.WriteResponse(rows_written=10, rows_deleted=2, requests=3, retries=1)
    message = ConduitCommitMessage.from_response(response, partition_id=4)
    assert message.to_response() == response
    assert message.partition_id == 4


def test_planning_an_overwrite_has_no_deadline_and_other_driver_calls_keep_theirs(fake_service):
    """An overwrite truncates the table while planning; a deadline would cut the truncate half way."""
    from spark_conduit.client import DRIVER_CALL_TIMEOUT_SECONDS

    source().writer(SCHEMA, overwrite=True)
    source().writer(SCHEMA, overwrite=False)
    with pytest.warns(UserWarning):
        source().schema()
    deadlines = fake_service.deadlines
    assert [name for name, _ in deadlines] == ["PlanWrite", "PlanWrite", "Describe"]
    assert deadlines[0][1] is None
    for _, left in deadlines[1:]:
        assert left is not None
        assert DRIVER_CALL_TIMEOUT_SECONDS - 60 < left < DRIVER_CALL_TIMEOUT_SECONDS + 5
