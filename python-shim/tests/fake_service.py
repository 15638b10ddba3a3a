"""A fake Conduit service in Python (real gRPC on 127.0.0.1 or a unix socket), so the
shim's calls, error translation and data source classes can be tested without Node,
Spark sessions or a database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pyarrow as pa
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from spark_conduit import arrow_ipc
from spark_conduit.v1 import conduit_pb2 as pb


def rich_status(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="spark-conduit", metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return rpc_status.to_status(status)


@dataclass
class FakeConduit:
    """Behaviour and a record of calls. Set ``fail`` to make a method abort with a status."""

    schema: pa.Schema = field(default_factory=lambda: pa.schema([("id", pa.string()), ("age", pa.int64())]))
    batches: list[pa.RecordBatch] = field(default_factory=list)
    partitions: list[bytes] = field(default_factory=lambda: [b"p0", b"p1"])
    fail: dict[str, grpc.Status] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    written: list[pa.RecordBatch] = field(default_factory=list)
    write_messages: list[int] = field(default_factory=list)  # IPC sizes received
    metadata: list[dict[str, str]] = field(default_factory=list)
    # (call name, seconds left before the client's deadline, or None without a deadline)
    deadlines: list[tuple[str, float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Streaming reads: the offset InitialOffset answers, and LatestOffset's answers in order
    # (then '{"latest":<call number>}' once they run out).
    initial_offset: str = '{"initial":true}'
    latest_offsets: list[str] = field(default_factory=list)

    def _record(self, name: str, request: object, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls.append((name, request))
            self.metadata.append({k: v for k, v in context.invocation_metadata()})
            left = context.time_remaining()
            # grpcio reports "no deadline" as about 2**63 nanoseconds.
            self.deadlines.append((name, None if left is None or left > 1e9 else left))
        if name in self.fail:
            context.abort_with_status(self.fail[name])

    def Describe(self, request: pb.DescribeRequest, context) -> pb.DescribeResponse:
        self._record("Describe", request, context)
        return pb.DescribeResponse(arrow_schema=arrow_ipc.encode_schema(self.schema), warnings=["sampled 2 items"])

    def PlanRead(self, request, context) -> pb.PlanReadResponse:
        self._record("PlanRead", request, context)
        return pb.PlanReadResponse(partitions=self.partitions)

    def Read(self, request, context) -> Iterator[pb.ReadResponse]:
        self._record("Read", request, context)
        for batch in self.batches:
            yield pb.ReadResponse(arrow_batch=arrow_ipc.encode_batch(batch))
        if "ReadEnd" in self.fail:
            context.abort_with_status(self.fail["ReadEnd"])

    def PlanWrite(self, request, context) -> pb.PlanWriteResponse:
        self._record("PlanWrite", request, context)
        plan = b"plan-streaming" if request.streaming else b"plan-batch"
        return pb.PlanWriteResponse(write_plan=plan)

    def Write(self, requests, context) -> pb.WriteResponse:
        header = None
        rows = 0
        for i, request in enumerate(requests):
            if i == 0:
                assert request.WhichOneof("payload") == "header"
                header = request.header
                self._record("Write", header, context)
                continue
            assert request.WhichOneof("payload") == "arrow_batch"
            with self.lock:
                self.write_messages.append(len(request.arrow_batch))
            for batch in arrow_ipc.decode_batches(request.arrow_batch):
                with self.lock:
                    self.written.append(batch)
                rows += batch.num_rows
        if "WriteEnd" in self.fail:
            context.abort_with_status(self.fail["WriteEnd"])
        assert header is not None
        return pb.WriteResponse(rows_written=rows, requests=max(1, rows // 25), retries=0)

    def CommitWrite(self, request, context) -> pb.CommitWriteResponse:
        self._record("CommitWrite", request, context)
        return pb.CommitWriteResponse()

    def AbortWrite(self, request, context) -> pb.AbortWriteResponse:
        self._record("AbortWrite", request, context)
        return pb.AbortWriteResponse(detail="2 rows may have been written")

    def InitialOffset(self, request: pb.StreamOffsetRequest, context) -> pb.StreamOffsetResponse:
        self._record("InitialOffset", request, context)
        return pb.StreamOffsetResponse(offset=self.initial_offset)

    def LatestOffset(self, request: pb.StreamOffsetRequest, context) -> pb.StreamOffsetResponse:
        self._record("LatestOffset", request, context)
        with self.lock:
            answer = self.latest_offsets.pop(0) if self.latest_offsets else None
            number = len(self.calls_named("LatestOffset"))
        return pb.StreamOffsetResponse(offset=answer if answer is not None else f'{{"latest":{number}}}')

    def PlanStreamRead(self, request: pb.PlanStreamReadRequest, context) -> pb.PlanReadResponse:
        self._record("PlanStreamRead", request, context)
        return pb.PlanReadResponse(partitions=self.partitions)

    def Check(self, request: bytes, context) -> bytes:  # grpc.health.v1.Health/Check
        return b"\x08\x01"

    def calls_named(self, name: str) -> list:
        return [request for n, request in self.calls if n == name]


def _handlers(fake: FakeConduit) -> list[grpc.GenericRpcHandler]:
    def unary(fn: Callable, req, resp) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString
        )

    conduit = grpc.method_handlers_generic_handler(
        "spark_conduit.v1.Conduit",
        {
            "Describe": unary(fake.Describe, pb.DescribeRequest, pb.DescribeResponse),
            "PlanRead": unary(fake.PlanRead, pb.PlanReadRequest, pb.PlanReadResponse),
            "Read": grpc.unary_stream_rpc_method_handler(
                fake.Read,
                request_deserializer=pb.ReadRequest.FromString,
                response_serializer=pb.ReadResponse.SerializeToString,
            ),
            "PlanWrite": unary(fake.PlanWrite, pb.PlanWriteRequest, pb.PlanWriteResponse),
            "Write": grpc.stream_unary_rpc_method_handler(
                fake.Write,
                request_deserializer=pb.WriteRequest.FromString,
                response_serializer=pb.WriteResponse.SerializeToString,
            ),
            "CommitWrite": unary(fake.CommitWrite, pb.CommitWriteRequest, pb.CommitWriteResponse),
            "AbortWrite": unary(fake.AbortWrite, pb.AbortWriteRequest, pb.AbortWriteResponse),
            "InitialOffset": unary(fake.InitialOffset, pb.StreamOffsetRequest, pb.StreamOffsetResponse),
            "LatestOffset": unary(fake.LatestOffset, pb.StreamOffsetRequest, pb.StreamOffsetResponse),
            "PlanStreamRead": unary(fake.PlanStreamRead, pb.PlanStreamReadRequest, pb.PlanReadResponse),
        },
    )
    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(fake.Check)}
    )
    return [conduit, health]


def serve_fake(fake: FakeConduit, address: str) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)],
    )
    for handler in _handlers(fake):
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(address)
    server.start()
    return server, port
