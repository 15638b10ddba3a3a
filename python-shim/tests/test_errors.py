from __future__ import annotations

import pickle
import shutil
import socket
import tempfile
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from fake_service import rich_status

from spark_conduit.client import ConduitClient
from spark_conduit.errors import SparkConduitError, from_rpc_error


def test_error_info_becomes_error_class_and_parameters(fake_service):
    fake_service.fail["Describe"] = rich_status(
        grpc.StatusCode.NOT_FOUND,
        "Table users does not exist in us-east-1 (endpoint http://127.0.0.1:8000).",
        "TABLE_NOT_FOUND",
        {"table_name": "users", "aws_region": "us-east-1"},
    )
    with ConduitClient({}) as client, pytest.raises(SparkConduitError) as excinfo:
        client.describe("dynamodb")
    error = excinfo.value
    assert str(error) == "[TABLE_NOT_FOUND] Table users does not exist in us-east-1 (endpoint http://127.0.0.1:8000)."
    assert error.error_class == "TABLE_NOT_FOUND"
    assert error.getErrorClass() == "TABLE_NOT_FOUND"
    assert error.parameters == {"table_name": "users", "aws_region": "us-east-1"}
    assert error.getMessageParameters() == error.parameters
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert isinstance(error.__cause__, grpc.RpcError)


def test_status_without_error_info_keeps_the_message(fake_service):
    class PlainStatus(grpc.Status):
        code = grpc.StatusCode.FAILED_PRECONDITION
        details = "something odd"
        trailing_metadata = ()

    fake_service.fail["PlanRead"] = PlainStatus()
    with ConduitClient({}) as client, pytest.raises(SparkConduitError) as excinfo:
        client.plan_read("dynamodb", b"")
    assert excinfo.value.error_class == "SERVICE_FAILED_PRECONDITION"
    assert str(excinfo.value) == "[SERVICE_FAILED_PRECONDITION] something odd"


def test_error_in_the_middle_of_a_read_stream(fake_service):
    fake_service.batches = [pa.record_batch({"id": ["a"], "age": [1]})]
    fake_service.fail["ReadEnd"] = rich_status(
        grpc.StatusCode.UNAVAILABLE, "DynamoDB throttled the scan 10 times.", "THROTTLED", {"table_name": "t"}
    )
    received = []
    with ConduitClient({}) as client, pytest.raises(SparkConduitError) as excinfo:
        received.extend(client.read("dynamodb", b"", b"p0"))
    assert [b.num_rows for b in received] == [1]
    assert excinfo.value.error_class == "THROTTLED"
    assert excinfo.value.parameters == {"table_name": "t"}


def test_error_at_the_end_of_a_write_stream(fake_service):
    fake_service.fail["WriteEnd"] = rich_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "Row 2 has a null value in key column id.",
        "NULL_KEY",
        {"column": "id"},
    )
    batch = pa.record_batch({"id": ["a", None]})
    with ConduitClient({}) as client, pytest.raises(SparkConduitError, match=r"^\[NULL_KEY\] Row 2"):
        client.write("dynamodb", b"", b"plan", iter([batch]))


def test_a_failing_input_iterator_is_raised_as_itself(fake_service):
    def batches():
        yield pa.record_batch({"id": ["a"]})
        raise ZeroDivisionError("boom in Spark")

    with ConduitClient({}) as client, pytest.raises(ZeroDivisionError, match="boom in Spark"):
        client.write("dynamodb", b"", b"plan", batches())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unavailable_names_the_endpoint_and_the_fix():
    port = _closed_port()
    with (
        ConduitClient({"service_endpoint": f"127.0.0.1:{port}"}) as client,
        pytest.raises(SparkConduitError) as excinfo,
    ):
        client.describe("dynamodb")
    error = excinfo.value
    assert error.error_class == "SERVICE_UNAVAILABLE"
    assert f"127.0.0.1:{port}" in str(error)
    assert "service_endpoint" in str(error) and "SPARK_CONDUIT_ENDPOINT" in str(error)
    assert error.code == grpc.StatusCode.UNAVAILABLE


def test_unauthenticated_without_error_info_mentions_the_token(fake_service):
    class Unauthenticated(grpc.Status):
        code = grpc.StatusCode.UNAUTHENTICATED
        details = "missing token"
        trailing_metadata = ()

    fake_service.fail["Describe"] = Unauthenticated()
    with ConduitClient({}) as client, pytest.raises(SparkConduitError) as excinfo:
        client.describe("dynamodb")
    assert excinfo.value.error_class == "SERVICE_TOKEN_INVALID"
    assert "service_token" in str(excinfo.value)


def test_error_pickles_with_every_field():
    error = SparkConduitError(
        "UNKNOWN_OPTION",
        "Unknown option tabel_name.",
        {"option": "tabel_name"},
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.error_class == "UNKNOWN_OPTION"
    assert copy.parameters == {"option": "tabel_name"}
    assert copy.code == grpc.StatusCode.INVALID_ARGUMENT


def test_from_rpc_error_tolerates_an_inconsistent_trailer():
    class Broken(grpc.RpcError, grpc.Call):
        def code(self):
            return grpc.StatusCode.INTERNAL

        def details(self):
            return "plain details"

        def trailing_metadata(self):
            return (("grpc-status-details-bin", b"\xff\xffnot a status"),)

        def initial_metadata(self):
            return ()

        def is_active(self):
            return False

        def time_remaining(self):
            return None

        def cancel(self):
            return False

        def add_callback(self, callback):
            return False

    error = from_rpc_error(Broken(), "127.0.0.1:1")
    assert error.error_class == "SERVICE_INTERNAL"
    assert "plain details" in str(error)


def test_embedded_service_that_went_away_is_restarted_and_the_call_retried(monkeypatch):
    from fake_service import FakeConduit, serve_fake

    from spark_conduit import service

    runtime = Path(tempfile.mkdtemp(prefix="scx-retry-", dir="/tmp"))
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(runtime))
    target = f"unix:{runtime}/conduit.sock"
    first, second = FakeConduit(), FakeConduit()
    server, _ = serve_fake(first, target)
    servers = [server]
    try:
        client = ConduitClient({})
        assert client.endpoint.embedded
        client.describe("dynamodb")
        server.stop(None).wait()

        def restart() -> str:
            servers.append(serve_fake(second, target)[0])
            return target

        monkeypatch.setattr(service, "ensure_service", restart)
        client.describe("dynamodb")
        client.close()
        assert len(first.calls_named("Describe")) == 1
        assert len(second.calls_named("Describe")) == 1
    finally:
        for s in servers:
            s.stop(None)
        shutil.rmtree(runtime, ignore_errors=True)


def test_an_embedded_service_that_went_away_says_a_retried_task_starts_it_again():
    class Unavailable(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "Connection reset by peer"

        def trailing_metadata(self):
            return ()

    error = from_rpc_error(Unavailable(), "unix:/tmp/spark-conduit-0-abc/conduit.sock (embedded)")
    assert error.error_class == "SERVICE_UNAVAILABLE"
    assert "embedded spark-conduit service" in str(error) and "local[2,4]" in str(error)
    assert "service_endpoint option" not in str(error)  # the remote-endpoint advice does not apply
