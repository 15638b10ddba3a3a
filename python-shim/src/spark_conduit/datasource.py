"""Generic PySpark data source classes that forward every hook to the Conduit service.

A format is one subclass that names it::

    class DynamoDbDataSource(ConduitDataSource):
        format_name = "dynamodb"

The shim holds no backend logic: options go to the service as they are (str -> str) and
the service validates them; partitions and write plans are opaque bytes; data is Arrow.
Instances are pickled to Spark's Python workers, so they hold only plain data (format,
options, IPC bytes); gRPC channels are opened inside each call.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamWriter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from spark_conduit import arrow_ipc
from spark_conduit.client import ConduitClient
from spark_conduit.partition import ConduitInputPartition, read_partition
from spark_conduit.stream_reader import ConduitStreamReader
from spark_conduit.v1 import conduit_pb2 as pb

try:  # Spark 4.1+
    from pyspark.sql.datasource import DataSourceStreamArrowWriter as _StreamWriterBase

    HAS_STREAM_ARROW_WRITER = True
except ImportError:  # Spark 4.0: rows arrive as pyspark Rows and are converted to Arrow here.
    _StreamWriterBase = DataSourceStreamWriter  # type: ignore[assignment,misc]
    HAS_STREAM_ARROW_WRITER = False

# Rows per Arrow batch when a Spark 4.0 stream writer has to build batches from Rows.
ROWS_PER_BATCH_FALLBACK = 10_000


@dataclass
class ConduitCommitMessage(WriterCommitMessage):
    """What one write task reports to the driver (the counts of its WriteResponse)."""

    rows_written: int = 0
    rows_deleted: int = 0
    requests: int = 0
    retries: int = 0
    partition_id: int = 0

    @classmethod
    def from_response(cls, response: pb.WriteResponse, partition_id: int) -> ConduitCommitMessage:
        return cls(
            rows_written=response.rows_written,
            rows_deleted=response.rows_deleted,
            requests=response.requests,
            retries=response.retries,
            partition_id=partition_id,
        )

    def to_response(self) -> pb.WriteResponse:
        return pb.WriteResponse(
            rows_written=self.rows_written,
            rows_deleted=self.rows_deleted,
            requests=self.requests,
            retries=self.retries,
        )


def _task_results(messages: Sequence[WriterCommitMessage | None]) -> list[pb.WriteResponse]:
    return [m.to_response() for m in messages if isinstance(m, ConduitCommitMessage)]


def _task_identity() -> tuple[int, int, int | None]:
    """(partition id, task attempt id, streaming batch id) of the running Spark task."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
    except ImportError:  # pragma: no cover
        context = None
    if context is None:
        return 0, 0, None
    batch_id = None
    try:
        value = context.getLocalProperty("streaming.sql.batchId")
        batch_id = int(value) if value is not None else None
    except (TypeError, ValueError):
        batch_id = None
    return context.partitionId(), context.taskAttemptId(), batch_id


def _options(options) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in options.items() if v is not None}


class ConduitDataSource(DataSource):
    """A Spark data source served by the spark-conduit service. Subclasses set ``format_name``."""

    format_name: ClassVar[str] = ""

    @classmethod
    def name(cls) -> str:
        return cls.format_name or cls.__name__

    def schema(self) -> StructType:
        with ConduitClient(self.options) as client:
            response = client.describe(self.name())
        for message in response.warnings:
            warnings.warn(f"{self.name()}: {message}", stacklevel=2)
        return arrow_ipc.from_arrow_schema(arrow_ipc.decode_schema(response.arrow_schema))

    def reader(self, schema: StructType) -> DataSourceReader:
        arrow_schema = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(schema))
        return ConduitReader(self.name(), _options(self.options), arrow_schema)

    def writer(self, schema: StructType, overwrite: bool) -> ConduitWriter:
        options = _options(self.options)
        arrow_schema = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(schema))
        # Planned here, on the driver: a write that cannot succeed fails before any task runs.
        with ConduitClient(options) as client:
            plan = client.plan_write(self.name(), arrow_schema, overwrite=overwrite, streaming=False)
        return ConduitWriter(self.name(), options, arrow_schema, plan)

    def streamReader(self, schema: StructType) -> ConduitStreamReader:
        """A change stream of the source (formats without one fail with STREAM_READ_UNSUPPORTED on the first call)."""
        arrow_schema = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(schema))
        return ConduitStreamReader(self.name(), _options(self.options), arrow_schema)

    def streamWriter(self, schema: StructType, overwrite: bool) -> ConduitStreamWriter:
        options = _options(self.options)
        arrow_schema = arrow_ipc.encode_schema(arrow_ipc.to_arrow_schema(schema))
        # Spark calls this again for every micro-batch commit. Streaming plans only validate
        # (the service refuses a streaming overwrite and create_table is idempotent), so
        # planning each time is safe and keeps the writer plain data.
        with ConduitClient(options) as client:
            plan = client.plan_write(self.name(), arrow_schema, overwrite=overwrite, streaming=True)
        return ConduitStreamWriter(self.name(), options, arrow_schema, plan)


class ConduitReader(DataSourceReader):
    def __init__(self, fmt: str, options: dict[str, str], arrow_schema: bytes) -> None:
        self.format = fmt
        self.options = options
        self.arrow_schema = arrow_schema

    def partitions(self) -> list[InputPartition]:
        with ConduitClient(self.options) as client:
            descriptors = client.plan_read(self.format, self.arrow_schema)
        return [ConduitInputPartition(i, d) for i, d in enumerate(descriptors)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(self.format, self.options, self.arrow_schema, partition)


class ConduitWriter(DataSourceArrowWriter):
    def __init__(self, fmt: str, options: dict[str, str], arrow_schema: bytes, plan: bytes) -> None:
        self.format = fmt
        self.options = options
        self.arrow_schema = arrow_schema
        self.plan = plan

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ConduitCommitMessage:
        partition_id, attempt_id, _ = _task_identity()
        with ConduitClient(self.options) as client:
            response = client.write(
                self.format,
                self.arrow_schema,
                self.plan,
                iterator,
                partition_id=partition_id,
                task_attempt_id=attempt_id,
            )
        return ConduitCommitMessage.from_response(response, partition_id)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        with ConduitClient(self.options) as client:
            client.commit_write(self.format, self.plan, _task_results(messages))

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        with ConduitClient(self.options) as client:
            detail = client.abort_write(self.format, self.plan, _task_results(messages))
        if detail:
            warnings.warn(f"{self.format}: write aborted: {detail}", stacklevel=2)


class ConduitStreamWriter(_StreamWriterBase):  # type: ignore[misc,valid-type]
    """Micro-batch sink. On Spark 4.1+ an Arrow writer; on 4.0 it receives Rows and
    converts them to Arrow batches of ``ROWS_PER_BATCH_FALLBACK`` rows (documented fallback)."""

    def __init__(self, fmt: str, options: dict[str, str], arrow_schema: bytes, plan: bytes) -> None:
        self.format = fmt
        self.options = options
        self.arrow_schema = arrow_schema
        self.plan = plan

    def _batches(self, iterator: Iterator) -> Iterator[pa.RecordBatch]:
        if HAS_STREAM_ARROW_WRITER:
            return iterator
        return _rows_to_batches(iterator, arrow_ipc.decode_schema(self.arrow_schema))

    def write(self, iterator: Iterator) -> ConduitCommitMessage:
        partition_id, attempt_id, batch_id = _task_identity()
        with ConduitClient(self.options) as client:
            response = client.write(
                self.format,
                self.arrow_schema,
                self.plan,
                self._batches(iterator),
                partition_id=partition_id,
                task_attempt_id=attempt_id,
                batch_id=batch_id or 0,
            )
        return ConduitCommitMessage.from_response(response, partition_id)

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        with ConduitClient(self.options) as client:
            client.commit_write(self.format, self.plan, _task_results(messages), batch_id=batchId)

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        with ConduitClient(self.options) as client:
            detail = client.abort_write(self.format, self.plan, _task_results(messages), batch_id=batchId)
        if detail:
            warnings.warn(f"{self.format}: micro-batch {batchId} aborted: {detail}", stacklevel=2)


def _rows_to_batches(rows: Iterator, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Spark 4.0 fallback: pyspark Rows -> Arrow batches (the only per-row Python work)."""
    names = schema.names
    chunk: list[dict] = []
    for row in rows:
        chunk.append(dict(zip(names, (_plain(v) for v in row), strict=True)))
        if len(chunk) >= ROWS_PER_BATCH_FALLBACK:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=schema)


def _plain(value):
    """Nested pyspark Rows become dicts, so pyarrow can build struct values from them."""
    if hasattr(value, "asDict"):
        return value.asDict(recursive=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
