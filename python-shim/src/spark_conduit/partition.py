"""The read partition both batch and streaming reads hand to Spark, and the task that reads it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql.datasource import InputPartition

from spark_conduit import arrow_ipc
from spark_conduit.client import ConduitClient


@dataclass
class ConduitInputPartition(InputPartition):
    """One Spark read partition: the service's opaque descriptor."""

    index: int
    descriptor: bytes

    def __repr__(self) -> str:
        return f"ConduitInputPartition(index={self.index}, descriptor={len(self.descriptor)} bytes)"


def read_partition(
    fmt: str, options: dict[str, str], arrow_schema: bytes, partition: InputPartition
) -> Iterator[pa.RecordBatch]:
    """Streams one partition's batches in exactly the schema Spark expects."""
    if not isinstance(partition, ConduitInputPartition):
        return  # Spark's placeholder when the plan had no partitions: nothing to read.
    schema = arrow_ipc.decode_schema(arrow_schema)
    with ConduitClient(options) as client:
        for batch in client.read(fmt, arrow_schema, partition.descriptor):
            yield arrow_ipc.conform_batch(batch, schema)
