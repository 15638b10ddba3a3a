"""The calls of the Conduit gRPC service, one method per RPC.

A client owns one channel; open it where it is used (a driver call, a read or write
task) with ``with ConduitClient(options) as client:``. Every ``grpc.RpcError`` leaves
this module as a :class:`~spark_conduit.errors.SparkConduitError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import grpc
import pyarrow as pa

from spark_conduit import arrow_ipc
from spark_conduit.endpoint import Endpoint, connect_endpoint, service_options
from spark_conduit.errors import SERVICE_UNAVAILABLE, SparkConduitError, from_rpc_error
from spark_conduit.v1 import conduit_pb2 as pb

_SERVICE = "/spark_conduit.v1.Conduit/"

# attribute -> (RPC name, channel method, request type, response type)
_METHODS = {
    "_describe": ("Describe", "unary_unary", pb.DescribeRequest, pb.DescribeResponse),
    "_plan_read": ("PlanRead", "unary_unary", pb.PlanReadRequest, pb.PlanReadResponse),
    "_read": ("Read", "unary_stream", pb.ReadRequest, pb.ReadResponse),
    "_plan_write": ("PlanWrite", "unary_unary", pb.PlanWriteRequest, pb.PlanWriteResponse),
    "_write": ("Write", "stream_unary", pb.WriteRequest, pb.WriteResponse),
    "_commit_write": ("CommitWrite", "unary_unary", pb.CommitWriteRequest, pb.CommitWriteResponse),
    "_abort_write": ("AbortWrite", "unary_unary", pb.AbortWriteRequest, pb.AbortWriteResponse),
    "_initial_offset": ("InitialOffset", "unary_unary", pb.StreamOffsetRequest, pb.StreamOffsetResponse),
    "_latest_offset": ("LatestOffset", "unary_unary", pb.StreamOffsetRequest, pb.StreamOffsetResponse),
    "_plan_stream_read": ("PlanStreamRead", "unary_unary", pb.PlanStreamReadRequest, pb.PlanReadResponse),
}

# Driver-side calls plan and validate; they may wait on the database (e.g. creating a
# table), but never forever.
DRIVER_CALL_TIMEOUT_SECONDS = 600.0
# Except planning an overwrite: it truncates the table first (a DynamoDB truncate scans and
# deletes every item), which takes as long as the table is large. A deadline there would
# stop it half way, leaving a half-emptied table and nothing written.
OVERWRITE_PLAN_TIMEOUT_SECONDS: float | None = None
# Nor finding a stream's offsets: the service reads the stream ahead to where it ends (or to
# the read limit), which takes as long as the backlog is large (a new query at trim_horizon
# over a day of changes); every request inside is bounded by the service's own timeouts.
STREAM_OFFSET_TIMEOUT_SECONDS: float | None = None


class ConduitClient:
    def __init__(self, options: Mapping[str, str], endpoint: Endpoint | None = None) -> None:
        self.options = service_options(options)
        self.endpoint = endpoint if endpoint is not None else connect_endpoint(options)
        self._metadata = self.endpoint.metadata()
        self._bind()

    def _bind(self) -> None:
        self._channel = self.endpoint.channel()
        for attribute, (method, kind, request, response) in _METHODS.items():
            stub = getattr(self._channel, kind)(
                _SERVICE + method,
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )
            setattr(self, attribute, stub)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ConduitClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _error(self, error: grpc.RpcError) -> SparkConduitError:
        if self.endpoint.embedded and error.code() == grpc.StatusCode.UNAVAILABLE:
            from spark_conduit.service import forget_health

            forget_health()
        return from_rpc_error(error, self.endpoint.display)

    def _unary(self, name: str, request, timeout: float | None = DRIVER_CALL_TIMEOUT_SECONDS):
        try:
            return getattr(self, name)(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as error:
            translated = self._error(error)
            if not (self.endpoint.embedded and translated.error_class == SERVICE_UNAVAILABLE):
                raise translated from error
        # The embedded service went away (e.g. it exited after being idle): start it
        # again and retry once on a fresh channel.
        from spark_conduit.service import ensure_service

        ensure_service()
        self.close()
        self._bind()
        try:
            # gRPC shares subchannels between channels to one target, so the new channel may
            # start in the old one's reconnect backoff: wait for it to connect, not fail fast.
            return getattr(self, name)(request, metadata=self._metadata, timeout=timeout, wait_for_ready=True)
        except grpc.RpcError as error:
            raise self._error(error) from error

    # ---- driver calls ------------------------------------------------------------

    def describe(self, fmt: str, arrow_schema: bytes = b"") -> pb.DescribeResponse:
        return self._unary("_describe", pb.DescribeRequest(format=fmt, options=self.options, arrow_schema=arrow_schema))

    def plan_read(self, fmt: str, arrow_schema: bytes) -> list[bytes]:
        response = self._unary(
            "_plan_read", pb.PlanReadRequest(format=fmt, options=self.options, arrow_schema=arrow_schema)
        )
        return list(response.partitions)

    def plan_write(self, fmt: str, arrow_schema: bytes, overwrite: bool, streaming: bool) -> bytes:
        response = self._unary(
            "_plan_write",
            pb.PlanWriteRequest(
                format=fmt,
                options=self.options,
                arrow_schema=arrow_schema,
                overwrite=overwrite,
                streaming=streaming,
            ),
            timeout=OVERWRITE_PLAN_TIMEOUT_SECONDS if overwrite else DRIVER_CALL_TIMEOUT_SECONDS,
        )
        return response.write_plan

    def commit_write(
        self, fmt: str, write_plan: bytes, task_results: Iterable[pb.WriteResponse], batch_id: int = 0
    ) -> None:
        self._unary(
            "_commit_write",
            pb.CommitWriteRequest(
                format=fmt,
                options=self.options,
                write_plan=write_plan,
                task_results=list(task_results),
                batch_id=batch_id,
            ),
        )

    def abort_write(
        self, fmt: str, write_plan: bytes, task_results: Iterable[pb.WriteResponse], batch_id: int = 0
    ) -> str:
        response = self._unary(
            "_abort_write",
            pb.AbortWriteRequest(
                format=fmt,
                options=self.options,
                write_plan=write_plan,
                task_results=list(task_results),
                batch_id=batch_id,
            ),
        )
        return response.detail

    # ---- streaming reads (driver) ------------------------------------------------

    def initial_offset(self, fmt: str, arrow_schema: bytes) -> str:
        request = pb.StreamOffsetRequest(format=fmt, options=self.options, arrow_schema=arrow_schema)
        return self._unary("_initial_offset", request, timeout=STREAM_OFFSET_TIMEOUT_SECONDS).offset

    def latest_offset(
        self,
        fmt: str,
        arrow_schema: bytes,
        start_offset: str,
        *,
        max_records: int = 0,
        end_bound: str = "",
        catch_up: bool = False,
    ) -> str:
        request = pb.StreamOffsetRequest(
            format=fmt,
            options=self.options,
            arrow_schema=arrow_schema,
            start_offset=start_offset,
            max_records=max_records,
            end_bound=end_bound,
            catch_up=catch_up,
        )
        return self._unary("_latest_offset", request, timeout=STREAM_OFFSET_TIMEOUT_SECONDS).offset

    def plan_stream_read(self, fmt: str, arrow_schema: bytes, start_offset: str, end_offset: str) -> list[bytes]:
        request = pb.PlanStreamReadRequest(
            format=fmt,
            options=self.options,
            arrow_schema=arrow_schema,
            start_offset=start_offset,
            end_offset=end_offset,
        )
        return list(self._unary("_plan_stream_read", request).partitions)

    # ---- task calls --------------------------------------------------------------

    def read(self, fmt: str, arrow_schema: bytes, partition: bytes) -> Iterator[pa.RecordBatch]:
        """Streams one partition: one RecordBatch per message, decoded zero-copy.

        Closing the generator early (e.g. a LIMIT) cancels the call.
        """
        call = self._read(
            pb.ReadRequest(format=fmt, options=self.options, arrow_schema=arrow_schema, partition=partition),
            metadata=self._metadata,
        )
        try:
            for response in call:
                yield from arrow_ipc.decode_batches(response.arrow_batch)
        except grpc.RpcError as error:
            raise self._error(error) from error
        finally:
            call.cancel()

    def write(
        self,
        fmt: str,
        arrow_schema: bytes,
        write_plan: bytes,
        batches: Iterable[pa.RecordBatch],
        *,
        partition_id: int = 0,
        task_attempt_id: int = 0,
        batch_id: int = 0,
    ) -> pb.WriteResponse:
        """Streams one task's batches (header first); returns the service's counts.

        Batches are encoded lazily as gRPC asks for them (flow control bounds memory). A
        failure while producing batches (e.g. in Spark's input) is raised as itself, not
        as the cancelled call it causes.
        """
        header = pb.WriteHeader(
            format=fmt,
            options=self.options,
            arrow_schema=arrow_schema,
            write_plan=write_plan,
            partition_id=partition_id,
            task_attempt_id=task_attempt_id,
            batch_id=batch_id,
        )
        producer_error: list[BaseException] = []

        def requests() -> Iterator[pb.WriteRequest]:
            try:
                yield pb.WriteRequest(header=header)
                for batch in batches:
                    for chunk in arrow_ipc.encode_batch_chunks(batch):
                        yield pb.WriteRequest(arrow_batch=chunk)
            except BaseException as error:
                producer_error.append(error)
                raise

        try:
            return self._write(requests(), metadata=self._metadata)
        except grpc.RpcError as error:
            if producer_error:
                raise producer_error[0] from None
            raise self._error(error) from error
