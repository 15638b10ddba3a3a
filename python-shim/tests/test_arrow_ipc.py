from __future__ import annotations

import datetime
import decimal

import pyarrow as pa
import pytest
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from spark_conduit import arrow_ipc
from spark_conduit.errors import SparkConduitError

NESTED = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("n", pa.int64()),
        pa.field("price", pa.decimal128(38, 10)),
        pa.field("raw", pa.binary()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("attrs", pa.map_(pa.string(), pa.float64())),
        pa.field("address", pa.struct([("city", pa.string()), ("zip", pa.int32())])),
        pa.field("events", pa.list_(pa.struct([("at", pa.timestamp("us", tz="UTC")), ("ok", pa.bool_())]))),
    ]
)


def nested_batch() -> pa.RecordBatch:
    at = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)
    return pa.record_batch(
        [
            pa.array(["a", "b"]),
            pa.array([1, None], pa.int64()),
            pa.array(
                [decimal.Decimal("0.1"), decimal.Decimal("12345678901234567890.0123456789")],
                pa.decimal128(38, 10),
            ),
            pa.array([b"\x00\xff", None]),
            pa.array([["x", "y"], []]),
            pa.array([[("k", 1.5)], None], pa.map_(pa.string(), pa.float64())),
            pa.array([{"city": "Oslo", "zip": 150}, None], NESTED.field("address").type),
            pa.array([[{"at": at, "ok": True}], None], NESTED.field("events").type),
        ],
        schema=NESTED,
    )


def test_schema_round_trip_keeps_nullability_and_nested_types():
    assert arrow_ipc.decode_schema(arrow_ipc.encode_schema(NESTED)).equals(NESTED)


def test_batch_round_trip_nested():
    batch = nested_batch()
    [decoded] = arrow_ipc.decode_batches(arrow_ipc.encode_batch(batch))
    assert decoded.equals(batch)
    assert decoded.to_pylist() == batch.to_pylist()


def test_empty_batch_round_trip():
    empty = nested_batch().slice(0, 0)
    [decoded] = arrow_ipc.decode_batches(arrow_ipc.encode_batch(empty))
    assert decoded.num_rows == 0
    assert decoded.schema.equals(NESTED)


def test_schema_only_stream_has_no_batches():
    assert arrow_ipc.decode_batches(arrow_ipc.encode_schema(NESTED)) == []


def test_stream_with_several_batches():
    batch = nested_batch()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
        writer.write_batch(batch)
    assert [b.num_rows for b in arrow_ipc.decode_batches(sink.getvalue().to_pybytes())] == [2, 2]


def test_garbage_is_a_clear_error():
    with pytest.raises(SparkConduitError, match=r"^\[ARROW_DECODE_FAILED\]"):
        arrow_ipc.decode_batches(b"not arrow at all")
    with pytest.raises(SparkConduitError, match=r"^\[ARROW_DECODE_FAILED\]"):
        arrow_ipc.decode_schema(b"\x01\x02")


SPARK = StructType(
    [
        StructField("id", StringType(), nullable=False),
        StructField("age", IntegerType()),
        StructField("n", LongType()),
        StructField("score", DoubleType()),
        StructField("ok", BooleanType()),
        StructField("price", DecimalType(20, 4)),
        StructField("raw", BinaryType()),
        StructField("tags", ArrayType(StringType())),
        StructField("attrs", MapType(StringType(), LongType())),
        StructField("address", StructType([StructField("city", StringType()), StructField("zip", IntegerType())])),
        StructField("at", TimestampType()),
        StructField("local", TimestampNTZType()),
    ]
)


def test_spark_to_arrow_and_back():
    arrow = arrow_ipc.to_arrow_schema(SPARK)
    assert arrow.field("id").type == pa.string() and not arrow.field("id").nullable
    assert arrow.field("age").type == pa.int32()
    assert arrow.field("price").type == pa.decimal128(20, 4)
    assert arrow.field("tags").type == pa.list_(pa.string())
    assert arrow.field("attrs").type == pa.map_(pa.string(), pa.int64())
    assert arrow.field("at").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("local").type == pa.timestamp("us")
    assert arrow_ipc.from_arrow_schema(arrow) == SPARK


def test_spark_schema_survives_the_wire():
    wire = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(SPARK))
    assert arrow_ipc.from_arrow_schema(arrow_ipc.decode_schema(wire)) == SPARK


def test_conform_returns_an_equal_batch_unchanged():
    batch = nested_batch()
    assert arrow_ipc.conform_batch(batch, NESTED) is batch


def test_conform_fixes_order_nullability_list_names_and_zones():
    expected = pa.schema(
        [
            pa.field("b", pa.list_(pa.field("element", pa.int64()))),
            pa.field("a", pa.string()),
            pa.field("t", pa.timestamp("us", tz="UTC")),
        ]
    )
    batch = pa.record_batch(
        [
            pa.array(["x"]),
            pa.array([[1, 2]], pa.list_(pa.int64())),
            pa.array([1_000_000], pa.timestamp("ms", tz="Etc/UTC")),
        ],
        schema=pa.schema(
            [
                pa.field("a", pa.string(), nullable=False),
                ("b", pa.list_(pa.int64())),
                ("t", pa.timestamp("ms", tz="Etc/UTC")),
            ]
        ),
    )
    conformed = arrow_ipc.conform_batch(batch, expected)
    assert conformed.schema.equals(expected)
    assert conformed.to_pylist()[0]["b"] == [1, 2]
    assert conformed.column(2).to_pylist()[0] == datetime.datetime(1970, 1, 1, 0, 16, 40, tzinfo=datetime.timezone.utc)


def test_conform_names_a_missing_column():
    with pytest.raises(SparkConduitError, match="column"):
        arrow_ipc.conform_batch(pa.record_batch({"a": [1]}), pa.schema([("a", pa.int64()), ("zz", pa.string())]))


def test_conform_names_an_impossible_cast():
    batch = pa.record_batch({"a": ["not a number"]})
    with pytest.raises(SparkConduitError, match="Column a"):
        arrow_ipc.conform_batch(batch, pa.schema([("a", pa.int64())]))


def big_batch(rows: int, width: int) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(rows), pa.int64()), "blob": pa.array([b"x" * width] * rows)})


def test_small_batch_is_one_message():
    batch = big_batch(100, 10)
    [chunk] = list(arrow_ipc.encode_batch_chunks(batch, max_bytes=1 << 20))
    assert arrow_ipc.decode_batches(chunk)[0].equals(batch)


def test_large_batch_is_split_into_row_slices_in_order():
    batch = big_batch(1000, 1000)  # ~1 MB
    chunks = list(arrow_ipc.encode_batch_chunks(batch, max_bytes=100_000))
    assert len(chunks) >= 10
    assert all(len(c) <= 110_000 for c in chunks)
    decoded = [b for c in chunks for b in arrow_ipc.decode_batches(c)]
    assert sum(b.num_rows for b in decoded) == 1000
    assert pa.Table.from_batches(decoded).equals(pa.Table.from_batches([batch]))


def test_a_single_huge_row_is_sent_alone():
    batch = big_batch(1, 300_000)
    chunks = list(arrow_ipc.encode_batch_chunks(batch, max_bytes=100_000))
    assert len(chunks) == 1
    assert arrow_ipc.decode_batches(chunks[0])[0].equals(batch)


def test_split_uses_the_real_ipc_size_of_slices():
    # A slice of a big batch must not drag the whole buffers along.
    batch = big_batch(1000, 1000).slice(0, 10)
    [chunk] = list(arrow_ipc.encode_batch_chunks(batch, max_bytes=100_000))
    assert len(chunk) < 20_000


def test_default_limit_is_32_mib():
    assert arrow_ipc.MAX_IPC_BATCH_BYTES == 32 * 1024 * 1024
