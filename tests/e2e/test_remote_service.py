"""A remote service behind TLS and a bearer token, used from real PySpark through the shim.

The service runs as its own process (``node spark-conduit.cjs serve --tls-cert --tls-key``,
token from ``SPARK_CONDUIT_TOKEN``) with a CA and server certificate made here by openssl
for 127.0.0.1. Spark reaches it with ``service_endpoint=https://...``, ``service_ca_cert``
and ``service_token``: a batch write and read of DynamoDB Local succeed and return the whole
table; a wrong token is refused on Describe/PlanRead/PlanWrite and on the streaming Read and
Write; a client that trusts another CA fails clearly; the service's log never holds the
token or the request's secret key.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyarrow as pa
import pytest
from e2e_support import ROOT, assert_error, failure, missing, stop_process

REGION = {"aws_region": "us-east-1"}
START_TIMEOUT_SECONDS = 60


@dataclass
class RemoteService:
    endpoint: str
    ca_cert: str
    other_ca_cert: str
    token: str
    log: Path

    def options(self, token: str | None = None, ca_cert: str | None = None) -> dict[str, str]:
        return {
            "service_endpoint": self.endpoint,
            "service_ca_cert": ca_cert or self.ca_cert,
            "service_token": token or self.token,
        }


def _openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate it signs for 127.0.0.1/localhost, and an unrelated CA."""
    for name in ("ca", "other-ca"):
        _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=spark-conduit e2e {name}")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost")  # fmt: skip
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    for key in directory.glob("*.key"):
        key.chmod(0o600)


def _first_line(stream, timeout: float) -> str | None:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


@pytest.fixture(scope="module")
def remote_service(infrastructure, tmp_path_factory) -> Iterator[RemoteService]:
    if shutil.which("openssl") is None:
        missing("openssl is not installed (the TLS test makes its certificates with it)")
    from spark_conduit import service

    directory = tmp_path_factory.mktemp("remote-service")
    make_certificates(directory)
    token = secrets.token_urlsafe(24)
    log = directory / "service.log"
    # Only what the service needs: no token on the command line (visible in ps), and a
    # bounded life of its own should this test die before stopping it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_CONDUIT_", "AWS_"))}
    env.update({"SPARK_CONDUIT_TOKEN": token, "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"})
    command = [
        service.node_executable(),
        str(service.bundle_path()),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        str(directory / "server.pem"),
        "--tls-key",
        str(directory / "server.key"),
        "--idle-exit-seconds",
        "300",
        "--grace-seconds",
        "5",
        "--log-level",
        "debug",
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        line = _first_line(process.stdout, START_TIMEOUT_SECONDS)
        if not line or "listening on" not in line:
            process.kill()
            pytest.fail(f"the TLS service did not start: {line!r}; log: {log.read_text()[-3000:]}")
        address = line.strip().rsplit(" ", 1)[-1]
        yield RemoteService(
            endpoint=f"https://{address}",
            ca_cert=str(directory / "ca.pem"),
            other_ca_cert=str(directory / "other-ca.pem"),
            token=token,
            log=log,
        )
    finally:
        stop_process(process)


@pytest.fixture
def secret_key() -> str:
    """A DynamoDB Local secret key (any value works there) unique to this test, to look for in logs."""
    return f"e2eSecret{uuid.uuid4().hex}"


@pytest.fixture
def ddb_options(dynamodb, secret_key) -> dict[str, str]:
    return {"endpoint_url": dynamodb.endpoint, "aws_access_key_id": "dummy", "aws_secret_access_key": secret_key}


@pytest.fixture
def empty_table(dynamodb, table_name):
    dynamodb.create_table(table_name, ("id", "S"))
    yield table_name
    dynamodb.drop_table(table_name)


ROWS = [(f"id-{i:04d}", f"name {i}", i) for i in range(500)]


def assert_log_clean(remote: RemoteService, *secret_values: str) -> None:
    text = remote.log.read_text()
    assert "listening" in text, text[-2000:]
    for value in (remote.token, *secret_values):
        assert value not in text, "a secret appears in the service log"


def test_write_and_read_over_tls_with_a_token(spark, remote_service, dynamodb, empty_table, ddb_options, secret_key):
    options = {"table_name": empty_table, **REGION, **ddb_options, **remote_service.options()}
    source = spark.createDataFrame(ROWS, ["id", "name", "age"]).repartition(2)
    source.write.format("dynamodb").mode("append").options(**options).save()

    read = spark.read.format("dynamodb").options(**options).load()
    assert sorted((r["id"], r["name"], int(r["age"])) for r in read.collect()) == ROWS
    # The whole table, seen without the connector.
    assert [(i["id"], i["name"], int(i["age"])) for i in dynamodb.items(empty_table)] == ROWS

    # A failure through the remote service names the table and never echoes the secrets.
    missing_table = {**options, "table_name": f"{empty_table}_absent"}
    text = failure(lambda: spark.read.format("dynamodb").options(**missing_table).load().collect())
    assert_error(text, "TABLE_NOT_FOUND", f"{empty_table}_absent", secrets=(secret_key, remote_service.token))
    assert_log_clean(remote_service, secret_key)


def test_a_wrong_token_is_refused_before_anything_is_written(
    spark, remote_service, dynamodb, empty_table, ddb_options, secret_key
):
    options = {"table_name": empty_table, **REGION, **ddb_options, **remote_service.options(token="not-the-token")}
    text = failure(lambda: spark.read.format("dynamodb").options(**options).load().collect())
    assert_error(text, "SERVICE_TOKEN_INVALID", "service_token", secrets=(secret_key, remote_service.token))
    df = spark.createDataFrame(ROWS[:10], ["id", "name", "age"])
    text = failure(lambda: df.write.format("dynamodb").mode("append").options(**options).save())
    assert_error(text, "SERVICE_TOKEN_INVALID", "service_token", secrets=(secret_key, remote_service.token))
    assert dynamodb.items(empty_table) == []
    assert_log_clean(remote_service, secret_key)


def _schema() -> pa.Schema:
    return pa.schema(
        [pa.field("id", pa.string(), nullable=False), pa.field("name", pa.string()), pa.field("age", pa.int64())]
    )


def test_a_wrong_token_is_refused_on_the_streaming_read_and_write(remote_service, dynamodb, empty_table, ddb_options):
    """Read and Write are reached with a valid plan made with the good token, then sent with a bad one."""
    from spark_conduit import arrow_ipc
    from spark_conduit.client import ConduitClient
    from spark_conduit.errors import SparkConduitError

    dynamodb.put_items(empty_table, [{"id": "id-0001", "name": "Ann", "age": 1}])
    options = {"table_name": empty_table, **REGION, **ddb_options}
    schema_bytes = arrow_ipc.encode_schema(_schema())
    batch = pa.RecordBatch.from_pylist([{"id": "id-0002", "name": "Bo", "age": 2}], schema=_schema())

    with ConduitClient({**options, **remote_service.options()}) as good:
        described = good.describe("dynamodb")
        assert arrow_ipc.decode_schema(described.arrow_schema).names == ["age", "id", "name"]
        partitions = good.plan_read("dynamodb", schema_bytes)
        write_plan = good.plan_write("dynamodb", schema_bytes, overwrite=False, streaming=False)
        # The good token reads the row back over the stream.
        rows = [r for p in partitions for b in good.read("dynamodb", schema_bytes, p) for r in b.to_pylist()]
        assert rows == [{"id": "id-0001", "name": "Ann", "age": 1}]

    for bad_token in ("not-the-token", remote_service.token + "x"):
        with ConduitClient({**options, **remote_service.options(token=bad_token)}) as bad:
            for call in (
                lambda: bad.describe("dynamodb"),
                lambda: bad.plan_read("dynamodb", schema_bytes),
                lambda: list(bad.read("dynamodb", schema_bytes, partitions[0])),
                lambda: bad.write("dynamodb", schema_bytes, write_plan, [batch]),
            ):
                with pytest.raises(SparkConduitError) as excinfo:
                    call()
                assert excinfo.value.error_class == "SERVICE_TOKEN_INVALID"
                assert excinfo.value.code == grpc.StatusCode.UNAUTHENTICATED
                assert "service_token" in str(excinfo.value)
                assert remote_service.token not in str(excinfo.value)
    # The refused write wrote nothing.
    assert dynamodb.items(empty_table) == [{"id": "id-0001", "name": "Ann", "age": 1}]


def test_a_client_that_trusts_another_ca_fails_clearly(spark, remote_service, empty_table, ddb_options):
    from spark_conduit.client import ConduitClient
    from spark_conduit.errors import SparkConduitError

    options = {"table_name": empty_table, **REGION, **ddb_options}
    wrong_ca = remote_service.options(ca_cert=remote_service.other_ca_cert)
    with ConduitClient({**options, **wrong_ca}) as client, pytest.raises(SparkConduitError) as excinfo:
        client.describe("dynamodb")
    error = excinfo.value
    assert error.error_class == "SERVICE_UNAVAILABLE"
    assert remote_service.endpoint in str(error)
    # What went wrong (the handshake) and what to fix (the CA option), not "is it running?".
    assert "TLS handshake" in str(error) and "CERTIFICATE_VERIFY_FAILED" in str(error), str(error)
    assert "service_ca_cert" in str(error), str(error)

    text = failure(lambda: spark.read.format("dynamodb").options(**options, **wrong_ca).load().collect())
    assert_error(
        text, "SERVICE_UNAVAILABLE", remote_service.endpoint, "TLS handshake", "service_ca_cert",
        secrets=(remote_service.token,),
    )  # fmt: skip


def test_plaintext_to_the_tls_port_is_refused(remote_service, empty_table, ddb_options):
    """The same port without TLS: the shim's plaintext client cannot talk to it."""
    from spark_conduit.client import ConduitClient
    from spark_conduit.errors import SparkConduitError

    plaintext = remote_service.endpoint.replace("https://", "")
    options = {"table_name": empty_table, **REGION, **ddb_options, "service_endpoint": plaintext}
    with contextlib.ExitStack() as stack, pytest.raises(SparkConduitError) as excinfo:
        stack.enter_context(ConduitClient(options)).describe("dynamodb")
    assert excinfo.value.error_class == "SERVICE_UNAVAILABLE"
