"""The streaming read hooks (``spark.readStream``): each forwards to one service call.

Offsets are the service's JSON: the shim hands them to Spark's checkpoint as dicts and back
as text, without looking inside. Partitions are read with the same Read call as batch ones.

One class serves Spark 4.0 to 4.3. Spark 4.2+ calls ``latestOffset(start, limit)`` with a
read limit (admission control: ``max_records_per_trigger`` or ``max_rows_per_trigger``) and supports
``Trigger.AvailableNow`` through ``prepareForTriggerAvailableNow``; Spark 4.0 and 4.1 call
``latestOffset()`` without arguments (Spark looks at the parameter count, and both
parameters here have defaults).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql.datasource import DataSourceStreamReader, InputPartition

from spark_conduit.client import ConduitClient
from spark_conduit.partition import ConduitInputPartition, read_partition

try:  # Spark 4.2+
    from pyspark.sql.streaming.datasource import (
        ReadAllAvailable,
        ReadLimit,
        ReadMaxRows,
        SupportsTriggerAvailableNow,
    )

    HAS_ADMISSION_CONTROL = True
except ImportError:  # Spark 4.0 / 4.1: no read limits, availableNow fixes the latest offset once itself.
    HAS_ADMISSION_CONTROL = False

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        """Stand-in so the class below has the same bases on every Spark version."""


def _text(offset: dict) -> str:
    return json.dumps(offset, separators=(",", ":"))


def _dict(text: str) -> dict:
    return json.loads(text)


# The option that sets a format's default read limit: records of a change stream, rows of a table.
READ_LIMIT_OPTIONS = ("max_records_per_trigger", "max_rows_per_trigger")


def max_records_of(limit: object) -> int:
    """The record limit a Spark read limit asks for; 0 when none (ReadAllAvailable, or one that is not a row count)."""
    if HAS_ADMISSION_CONTROL and isinstance(limit, ReadMaxRows):
        return max(1, int(limit.max_rows))
    return 0


class ConduitStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, fmt: str, options: dict[str, str], arrow_schema: bytes) -> None:
        self.format = fmt
        self.options = options
        self.arrow_schema = arrow_schema
        # Set by prepareForTriggerAvailableNow; the target is fixed at the first latestOffset after it.
        self._available_now = False
        self._target: str | None = None
        # Spark 4.0/4.1: where the previous latestOffset() ended (it is not told the start).
        self._last_end: str | None = None

    def _client(self) -> ConduitClient:
        return ConduitClient(self.options)

    def initialOffset(self) -> dict:
        with self._client() as client:
            return _dict(client.initial_offset(self.format, self.arrow_schema))

    def getDefaultReadLimit(self):
        """``ReadMaxRows`` from ``max_records_per_trigger`` (dynamodb) or ``max_rows_per_trigger``
        (pycassandra); the service validates the value on every call."""
        if not HAS_ADMISSION_CONTROL:
            return None
        text = next((self.options[name] for name in READ_LIMIT_OPTIONS if name in self.options), None)
        try:
            return ReadMaxRows(int(text)) if text is not None else ReadAllAvailable()
        except ValueError:
            return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._available_now = True
        self._target = None

    def latestOffset(self, start: dict | None = None, limit: ReadLimit | None = None) -> dict:
        with self._client() as client:
            if start is None:
                # Spark 4.0/4.1: the first call after a (re)start cannot know the checkpoint, so
                # it reads every shard to the present, which is at or past any checkpoint.
                base = self._last_end
                if base is None:
                    base = client.initial_offset(self.format, self.arrow_schema)
                end = client.latest_offset(self.format, self.arrow_schema, base, catch_up=self._last_end is None)
                self._last_end = end
                return _dict(end)
            start_text = _text(start)
            if self._available_now and self._target is None:
                self._target = client.latest_offset(self.format, self.arrow_schema, start_text, catch_up=True)
            end = client.latest_offset(
                self.format,
                self.arrow_schema,
                start_text,
                max_records=max_records_of(limit),
                end_bound=self._target or "",
            )
            return _dict(end)

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        with self._client() as client:
            descriptors = client.plan_stream_read(self.format, self.arrow_schema, _text(start), _text(end))
        return [ConduitInputPartition(i, d) for i, d in enumerate(descriptors)]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        return read_partition(self.format, self.options, self.arrow_schema, partition)

    def commit(self, end: dict) -> None:
        """Nothing to release: the service keeps no state between calls."""

    def stop(self) -> None:
        """Nothing to release: channels are opened per call."""
