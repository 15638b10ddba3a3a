"""Arrow IPC framing and Spark <-> Arrow schema conversion.

Every payload on the wire is one complete Arrow IPC *stream* (schema, zero or more
batches, end-of-stream marker), so each message decodes on its own. Nothing here
touches rows one by one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pyarrow as pa

from spark_conduit.errors import ARROW_DECODE_FAILED, SparkConduitError

# A batch whose IPC encoding would exceed this is sent as several row slices, so one
# gRPC message stays well under the 256 MiB channel limit and memory stays bounded.
MAX_IPC_BATCH_BYTES = 32 * 1024 * 1024


def encode_schema(schema: pa.Schema) -> bytes:
    """One IPC stream holding only the schema."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema):
        pass
    return sink.getvalue().to_pybytes()


def decode_schema(data: bytes) -> pa.Schema:
    try:
        return pa.ipc.open_stream(pa.py_buffer(data)).schema
    except (pa.ArrowException, ValueError, OSError) as error:
        raise SparkConduitError(
            ARROW_DECODE_FAILED,
            f"The Arrow schema sent by the spark-conduit service could not be decoded: {error}",
        ) from error


def encode_batch(batch: pa.RecordBatch) -> bytes:
    """One IPC stream holding one batch."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_batches(data: bytes) -> list[pa.RecordBatch]:
    """Every batch of one IPC stream (zero or more), zero-copy over ``data``."""
    try:
        return list(pa.ipc.open_stream(pa.py_buffer(data)))
    except (pa.ArrowException, ValueError, OSError) as error:
        raise SparkConduitError(
            ARROW_DECODE_FAILED,
            f"An Arrow record batch sent by the spark-conduit service could not be decoded: {error}",
        ) from error


def encode_batch_chunks(batch: pa.RecordBatch, max_bytes: int | None = None) -> Iterator[bytes]:
    """Encodes ``batch`` as one or more IPC streams, each at most about ``max_bytes``.

    A batch too large for one message is cut into contiguous row slices (zero-copy views);
    a single row larger than the limit is still sent on its own.
    """
    if max_bytes is None:
        max_bytes = MAX_IPC_BATCH_BYTES
    if batch.num_rows > 1 and batch.nbytes > max_bytes:
        yield from _encode_slices(batch, max_bytes, math.ceil(batch.nbytes / max_bytes))
        return
    encoded = encode_batch(batch)
    if len(encoded) > max_bytes and batch.num_rows > 1:
        yield from _encode_slices(batch, max_bytes, math.ceil(len(encoded) / max_bytes))
        return
    yield encoded


def _encode_slices(batch: pa.RecordBatch, max_bytes: int, pieces: int) -> Iterator[bytes]:
    pieces = max(2, min(pieces, batch.num_rows))
    rows_per_piece = math.ceil(batch.num_rows / pieces)
    for offset in range(0, batch.num_rows, rows_per_piece):
        yield from encode_batch_chunks(batch.slice(offset, rows_per_piece), max_bytes)


def to_arrow_schema(spark_schema) -> pa.Schema:
    """The Arrow schema Spark itself uses for Python data sources (timestamps in UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema as spark_to_arrow

    try:
        return spark_to_arrow(spark_schema, timezone="UTC")
    except TypeError:  # a PySpark without the timezone parameter
        return spark_to_arrow(spark_schema)


def from_arrow_schema(schema: pa.Schema):
    """The Spark StructType for an Arrow schema (tz-naive timestamps become TIMESTAMP_NTZ)."""
    from pyspark.sql.pandas.types import from_arrow_schema as spark_from_arrow

    return spark_from_arrow(schema)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Returns ``batch`` with exactly ``schema``, as Spark requires of a reader's batches.

    Spark compares the batch schema with the expected one strictly (field names of list
    children, nullability, timestamp zones). A batch already equal is returned as is;
    otherwise columns are picked by name and cast with Arrow compute (vectorized).
    """
    if batch.schema.equals(schema):
        return batch
    if batch.schema.names == schema.names:
        columns = batch.columns
    else:
        missing = [name for name in schema.names if batch.schema.get_field_index(name) < 0]
        if missing:
            raise SparkConduitError(
                "READ_SCHEMA_MISMATCH",
                f"The spark-conduit service returned a batch without the column(s) {', '.join(missing)}; "
                f"it returned {', '.join(batch.schema.names) or 'no columns'}.",
                {"columns": ",".join(missing)},
            )
        columns = [batch.column(batch.schema.get_field_index(name)) for name in schema.names]
    conformed = []
    for column, field in zip(columns, schema, strict=True):
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowException, ValueError) as error:
                raise SparkConduitError(
                    "READ_SCHEMA_MISMATCH",
                    f"Column {field.name} arrived as {column.type} and cannot be converted to the "
                    f"Spark type's Arrow form {field.type}: {error}",
                    {"column": field.name},
                ) from error
        conformed.append(column)
    return pa.RecordBatch.from_arrays(conformed, schema=schema)
