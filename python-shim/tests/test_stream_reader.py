"""The streaming read hooks against the fake service: what each Spark call sends.

Spark's own runner functions (pyspark.sql.streaming.python_streaming_source_runner) drive
the reader where they can, so the tests see the reader as Spark 4.3 does: which features it
claims by its signature, how a read limit reaches latestOffset, and what the default limit is.
"""

from __future__ import annotations

import io
import json
import pickle

import pytest
from pyspark.serializers import read_int, write_with_length
from pyspark.sql.streaming import python_streaming_source_runner as runner
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows
from pyspark.sql.types import LongType, StringType, StructField, StructType

from dynamodb_data_source import DynamoDbDataSource
from spark_conduit import SparkConduitError, arrow_ipc
from spark_conduit.partition import ConduitInputPartition
from spark_conduit.stream_reader import ConduitStreamReader, max_records_of

SCHEMA = StructType([StructField("id", StringType()), StructField("n", LongType())])
ARROW_SCHEMA = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(SCHEMA))
OPTIONS = {"table_name": "users", "aws_region": "us-east-1", "starting_position": "trim_horizon"}
# An offset with what the shim must not touch: nesting, big sequence numbers as text, unicode.
OFFSET = {
    "streamArn": "arn:aws:dynamodb:ddblocal:000000000000:table/users/stream/2026-11-25T00:00:00.000",
    "shards": {"shardId-1": {"seq": "123456789012345678901234567890123456789", "done": False}, "ß": [1, None]},
}


def stream_reader(**options: str) -> ConduitStreamReader:
    return ConduitStreamReader("dynamodb", {**OPTIONS, **options}, ARROW_SCHEMA)


def latest_calls(fake) -> list[tuple[str, int, str, bool]]:
    """(start, max_records, end_bound, catch_up) of each LatestOffset call."""
    return [(r.start_offset, r.max_records, r.end_bound, r.catch_up) for r in fake.calls_named("LatestOffset")]


def text(offset: dict) -> str:
    return json.dumps(offset, separators=(",", ":"))


def spark_limit(limit: object) -> dict:
    """What Spark's runner returns for getDefaultReadLimit (dataclass fields + _type)."""
    out = io.BytesIO()
    runner.get_default_read_limit_func(LimitReader(limit), out)
    out.seek(0)
    length = read_int(out)
    return json.loads(out.read(length))


class LimitReader:
    """A stand-in reader for Spark's runner: only its default read limit."""

    def __init__(self, limit: object) -> None:
        self.limit = limit

    def getDefaultReadLimit(self):
        return self.limit


def test_spark_sees_admission_control_and_available_now():
    """Spark 4.2+ decides by latestOffset's parameter count and the mixin."""
    out = io.BytesIO()
    runner.check_support_func(stream_reader(), out)
    out.seek(0)
    flags = read_int(out)
    assert flags & runner.SUPPORTS_ADMISSION_CONTROL
    assert flags & runner.SUPPORTS_TRIGGER_AVAILABLE_NOW


def test_initial_offset_is_the_service_offset_unchanged(fake_service):
    fake_service.initial_offset = json.dumps(OFFSET)
    assert stream_reader().initialOffset() == OFFSET
    [request] = fake_service.calls_named("InitialOffset")
    assert request.format == "dynamodb"
    assert request.arrow_schema == ARROW_SCHEMA
    assert dict(request.options) == OPTIONS
    assert request.start_offset == ""


def test_latest_offset_with_read_max_rows_asks_for_at_most_that_many(fake_service):
    fake_service.latest_offsets = [json.dumps(OFFSET)]
    end = stream_reader().latestOffset({"start": 1}, ReadMaxRows(5))
    assert end == OFFSET
    assert latest_calls(fake_service) == [('{"start":1}', 5, "", False)]


def test_latest_offset_with_read_all_available_has_no_limit(fake_service):
    stream_reader().latestOffset(OFFSET, ReadAllAvailable())
    assert latest_calls(fake_service) == [(text(OFFSET), 0, "", False)]
    assert json.loads(fake_service.calls_named("LatestOffset")[0].start_offset) == OFFSET


def test_spark_runner_passes_the_limit_to_latest_offset(fake_service):
    """Spark's own admission-control call: start offset and limit as JSON, as the JVM sends them."""
    infile = io.BytesIO()
    write_with_length(json.dumps(OFFSET).encode(), infile)
    write_with_length(json.dumps({"_type": "ReadMaxRows", "max_rows": 9}).encode(), infile)
    infile.seek(0)
    out = io.BytesIO()
    runner.latest_offset_admission_control_func(stream_reader(), infile, out)
    out.seek(0)
    assert json.loads(out.read(read_int(out))) == {"latest": 1}
    [(start, max_records, bound, catch_up)] = latest_calls(fake_service)
    assert json.loads(start) == OFFSET
    assert (max_records, bound, catch_up) == (9, "", False)


def test_limits_that_are_not_a_row_count_mean_no_limit():
    assert max_records_of(ReadMaxRows(3)) == 3
    assert max_records_of(ReadMaxRows(0)) == 1  # Spark never asks for nothing; read one at least
    assert max_records_of(ReadAllAvailable()) == 0
    assert max_records_of(None) == 0


def test_default_read_limit_comes_from_max_rows_per_trigger_for_pycassandra():
    assert stream_reader(max_rows_per_trigger="40").getDefaultReadLimit() == ReadMaxRows(40)


def test_default_read_limit_comes_from_max_records_per_trigger():
    assert stream_reader(max_records_per_trigger="250").getDefaultReadLimit() == ReadMaxRows(250)
    assert spark_limit(stream_reader(max_records_per_trigger="250").getDefaultReadLimit()) == {
        "_type": "ReadMaxRows",
        "max_rows": 250,
    }
    assert isinstance(stream_reader().getDefaultReadLimit(), ReadAllAvailable)
    # The service rejects a bad value with the option's name on its first call; not here.
    assert isinstance(stream_reader(max_records_per_trigger="many").getDefaultReadLimit(), ReadAllAvailable)


def test_available_now_fixes_its_target_once_and_bounds_every_batch(fake_service):
    target = {"target": True}
    fake_service.latest_offsets = [text(target), '{"batch":1}', '{"batch":2}']
    reader = stream_reader()
    reader.prepareForTriggerAvailableNow()
    assert reader.latestOffset({"start": 0}, ReadMaxRows(10)) == {"batch": 1}
    assert reader.latestOffset({"batch": 1}, ReadMaxRows(10)) == {"batch": 2}
    assert latest_calls(fake_service) == [
        ('{"start":0}', 0, "", True),  # the target: every shard generation up to now
        ('{"start":0}', 10, text(target), False),
        ('{"batch":1}', 10, text(target), False),  # the same target: new writes do not move it
    ]


def test_a_new_available_now_run_fixes_a_new_target(fake_service):
    fake_service.latest_offsets = ['{"t":1}', '{"b":1}', '{"t":2}', '{"b":2}']
    reader = stream_reader()
    reader.prepareForTriggerAvailableNow()
    reader.latestOffset({"s": 0}, ReadAllAvailable())
    reader.prepareForTriggerAvailableNow()
    reader.latestOffset({"b": 1}, ReadAllAvailable())
    assert latest_calls(fake_service) == [
        ('{"s":0}', 0, "", True),
        ('{"s":0}', 0, '{"t":1}', False),
        ('{"b":1}', 0, "", True),
        ('{"b":1}', 0, '{"t":2}', False),
    ]


def test_spark_40_path_starts_from_the_initial_offset_then_continues_from_the_last_end(fake_service):
    """latestOffset() without arguments (Spark 4.0/4.1): the reader is not told the start."""
    fake_service.initial_offset = text(OFFSET)
    fake_service.latest_offsets = ['{"end":1}', '{"end":2}', '{"end":3}']
    reader = stream_reader()
    assert reader.latestOffset() == {"end": 1}
    assert reader.latestOffset() == {"end": 2}
    assert reader.latestOffset() == {"end": 3}
    assert len(fake_service.calls_named("InitialOffset")) == 1
    assert latest_calls(fake_service) == [
        (text(OFFSET), 0, "", True),  # at or past any checkpoint: catch up across generations
        ('{"end":1}', 0, "", False),
        ('{"end":2}', 0, "", False),
    ]


def test_partitions_plan_between_the_two_offsets_unchanged(fake_service):
    fake_service.partitions = [b"shard-a", b"shard-b", b"shard-c"]
    end = {**OFFSET, "shards": {"shardId-1": {"seq": "9" * 40, "done": True}}}
    reader = pickle.loads(pickle.dumps(stream_reader()))
    partitions = reader.partitions(OFFSET, end)
    assert partitions == [
        ConduitInputPartition(0, b"shard-a"),
        ConduitInputPartition(1, b"shard-b"),
        ConduitInputPartition(2, b"shard-c"),
    ]
    [request] = fake_service.calls_named("PlanStreamRead")
    assert json.loads(request.start_offset) == OFFSET
    assert json.loads(request.end_offset) == end
    assert request.arrow_schema == ARROW_SCHEMA
    assert pickle.loads(pickle.dumps(partitions[1])) == partitions[1]


def test_a_service_error_reaches_spark_as_the_shims_exception(fake_service):
    from fake_service import rich_status
    from grpc import StatusCode

    fake_service.fail["LatestOffset"] = rich_status(
        StatusCode.FAILED_PRECONDITION,
        "DynamoDB table 'users' has no stream enabled.",
        "STREAM_NOT_ENABLED",
        {"table": "users"},
    )
    with pytest.raises(SparkConduitError) as excinfo:
        stream_reader().latestOffset(OFFSET, ReadAllAvailable())
    assert "[STREAM_NOT_ENABLED]" in str(excinfo.value)
    assert "'users'" in str(excinfo.value)


def test_the_data_source_builds_the_stream_reader_with_its_options_and_schema(fake_service):
    source = DynamoDbDataSource({"TABLE_NAME": "users", "aws_region": "us-east-1", "Starting_Position": "latest"})
    reader = source.streamReader(SCHEMA)
    assert isinstance(reader, ConduitStreamReader)
    reader.initialOffset()
    [request] = fake_service.calls_named("InitialOffset")
    assert dict(request.options) == {"table_name": "users", "aws_region": "us-east-1", "starting_position": "latest"}
    assert arrow_ipc.decode_schema(request.arrow_schema) == arrow_ipc.to_arrow_schema(SCHEMA)
    # commit and stop hold nothing: they call nobody.
    reader.commit(OFFSET)
    reader.stop()
    assert [name for name, _ in fake_service.calls] == ["InitialOffset"]
