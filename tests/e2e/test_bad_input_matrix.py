"""The bad-input matrix: options, schemas, values and malformed requests that cannot work,
through real PySpark. Each case asserts what the user sees (the ``[ERROR_CLASS]`` and the
option, column, value or table at fault; no ``undefined``, no secret) AND that nothing was
written: the target table, read straight from the database (not through the connector),
equals its state before the case (pre-seeded rows unchanged, nothing added).

The existing error tests (test_dynamodb_errors.py, test_cassandra_errors.py) cover the
first-order cases (missing table_name, null key, unknown keyspace, invalid uuid, ...);
this matrix covers the rest. Most cases run on the classic session only: Spark Connect
carries the same exception, and a handful of ``CONNECT_CASES`` prove that it survives the
trip. Value errors run in one task (``coalesce(1)``) with good rows before the bad one, so
"nothing written" is a property of the service, not of task order.

The last section sends malformed and oversized requests straight to the service (the
shim's ConduitClient and raw gRPC stubs): each gets a clear error and the service keeps
answering.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e_support import assert_error, failure, stop_process

SECRET = "dummy-secret"
SEED_ID = "550e8400-e29b-41d4-a716-446655440099"
ALICE = "550e8400-e29b-41d4-a716-446655440000"
BOB = "550e8400-e29b-41d4-a716-446655440001"
KS = "badinput"


# --- the targets -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ddb_table(dynamodb):
    """A table with hash key ``id`` (S) holding one pre-seeded item."""
    name = f"badin_{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(name, ("id", "S"))
    dynamodb.put_items(name, [{"id": "keep-1", "name": "Existing", "age": 1}])
    yield name
    dynamodb.drop_table(name)


@pytest.fixture(scope="module")
def cass_table(cassandra):
    """``badinput.<name>`` with one column of each kind the cases need, one pre-seeded row."""
    cassandra.create_keyspace(KS)
    name = f"t_{uuid.uuid4().hex[:10]}"
    cassandra.cql(
        f"CREATE TABLE {KS}.{name} (id uuid PRIMARY KEY, name text, age int, small smallint, ip inet, "
        "score double, data blob, tags list<int>, props map<text, int>, born date)",
        f"INSERT INTO {KS}.{name} (id, name, age, small, ip, score, tags, props, born) VALUES "
        f"({SEED_ID}, 'Existing', 1, 1, '10.0.0.1', 1.5, [1], {{'a': 1}}, '2000-01-01')",
    )
    yield name
    cassandra.cql(f"DROP TABLE IF EXISTS {KS}.{name}")


@dataclass
class Target:
    """One backend's table, how to write and read it, and its state before each case."""

    spark: object
    fmt: str
    options: dict[str, str]
    snapshot: Callable[[], object]
    before: object = None
    extra: dict = field(default_factory=dict)

    def df(self, rows, ddl: str):
        return self.spark.createDataFrame(rows, ddl)

    def merged(self, extra: dict[str, str | None]) -> dict[str, str]:
        options = {**self.options, **{k: v for k, v in extra.items() if v is not None}}
        for key, value in extra.items():
            if value is None:
                options.pop(key, None)
        return options

    def write(self, df, mode: str = "append", **extra: str | None) -> None:
        df.write.format(self.fmt).mode(mode).options(**self.merged(extra)).save()

    def read(self, ddl: str | None = None, **extra: str | None) -> list:
        reader = self.spark.read.format(self.fmt).options(**self.merged(extra))
        if ddl:
            reader = reader.schema(ddl)
        return reader.load().collect()


@pytest.fixture
def ddb(spark, dynamodb, ddb_table):
    target = Target(
        spark,
        "dynamodb",
        {
            "table_name": ddb_table,
            "aws_region": "us-east-1",
            "endpoint_url": dynamodb.endpoint,
            "aws_access_key_id": "dummy",
            "aws_secret_access_key": SECRET,
        },
        lambda: dynamodb.raw_items(ddb_table),
    )
    target.before = target.snapshot()
    return target


@pytest.fixture
def cass(spark, cassandra, cass_table):
    target = Target(
        spark,
        "pycassandra",
        {"host": "127.0.0.1", **cassandra.options, "keyspace": KS, "table": cass_table},
        lambda: cassandra.rows(KS, cass_table),
    )
    target.before = target.snapshot()
    return target


# --- the cases ---------------------------------------------------------------------------

PEOPLE = "id string, name string, age bigint"
GOOD = [("id-001", "Alice", 30), ("id-002", "Bob", 25)]
MANY = [(f"id-{i:03d}", f"name-{i}", i) for i in range(60)]
CASS_PEOPLE = "id string, name string, age int"
CASS_GOOD = [(ALICE, "Alice", 30), (BOB, "Bob", 25)]


def people(t: Target, rows=None, ddl: str = PEOPLE):
    return t.df(rows or GOOD, ddl)


def cass_people(t: Target, rows=None, ddl: str = CASS_PEOPLE):
    return t.df(rows or CASS_GOOD, ddl)


def one_task(df):
    return df.coalesce(1)


@dataclass(frozen=True)
class Case:
    id: str
    backend: str  # "ddb" or "cass"
    action: Callable[[Target], object]
    error_class: str
    names: tuple[str, ...]


def D(id_, action, error_class, *names):
    return Case(id_, "ddb", action, error_class, names)


def C(id_, action, error_class, *names):
    return Case(id_, "cass", action, error_class, names)


BIG = "x" * (420 * 1024)

CASES = [
    # --- DynamoDB: options --------------------------------------------------------------
    D(
        "ddb-unknown-write-option",
        lambda t: t.write(people(t), write_concurency="4"),
        "OPTION_UNKNOWN",
        "write_concurency",
        "Did you mean 'write_concurrency'?",
    ),
    D(
        "ddb-unknown-read-option",
        lambda t: t.read(consistent_reads="true"),
        "OPTION_UNKNOWN",
        "consistent_reads",
        "Did you mean 'consistent_read'?",
    ),
    D(
        "ddb-bad-boolean",
        lambda t: t.write(people(t), create_table="yes", hash_key="id"),
        "OPTION_INVALID_VALUE",
        "create_table",
        "yes",
    ),
    D(
        "ddb-bad-boolean-read",
        lambda t: t.read(consistent_read="1"),
        "OPTION_INVALID_VALUE",
        "consistent_read",
    ),
    D(
        "ddb-bad-integer",
        lambda t: t.write(people(t), write_concurrency="many"),
        "OPTION_INVALID_VALUE",
        "write_concurrency",
        "many",
    ),
    D("ddb-integer-below-minimum", lambda t: t.read(total_segments="0"), "OPTION_INVALID_VALUE", "total_segments", "0"),
    D(
        "ddb-integer-above-maximum",
        lambda t: t.write(people(t), write_concurrency="100000"),
        "OPTION_INVALID_VALUE",
        "write_concurrency",
        "100000",
    ),
    D(
        "ddb-bad-enum",
        lambda t: t.write(people(t), create_table="true", hash_key="id", billing_mode="FREE"),
        "OPTION_INVALID_VALUE",
        "billing_mode",
        "FREE",
    ),
    D("ddb-missing-region-on-write", lambda t: t.write(people(t), aws_region=None), "OPTION_REQUIRED", "aws_region"),
    D("ddb-invalid-table-name", lambda t: t.write(people(t), table_name="a!"), "OPTION_INVALID_VALUE", "table_name"),
    D(
        "ddb-invalid-region",
        lambda t: t.write(people(t), aws_region="Mars Central"),
        "OPTION_INVALID_VALUE",
        "aws_region",
    ),
    D(
        "ddb-malformed-endpoint-url",
        lambda t: t.write(people(t), endpoint_url="not a url"),
        "OPTION_INVALID_VALUE",
        "endpoint_url",
    ),
    D(
        "ddb-unreachable-endpoint",
        lambda t: t.write(people(t), endpoint_url="http://127.0.0.1:9"),
        "DYNAMODB_UNAVAILABLE",
        "http://127.0.0.1:9",
        "endpoint_url",
    ),
    D(
        "ddb-secret-without-key-id",
        lambda t: t.write(people(t), aws_access_key_id=None),
        "OPTION_CONFLICT",
        "aws_secret_access_key",
        "aws_access_key_id",
    ),
    D(
        "ddb-value-without-flag-column",
        lambda t: t.write(people(t), delete_flag_value="true"),
        "OPTION_CONFLICT",
        "delete_flag_value",
        "delete_flag_column",
    ),
    D(
        "ddb-provisioned-without-capacity",
        lambda t: t.write(people(t), create_table="true", hash_key="id", billing_mode="PROVISIONED"),
        "OPTION_REQUIRED",
        "read_capacity_units",
    ),
    D(
        "ddb-hash-key-mismatch",
        lambda t: t.write(people(t), hash_key="user_id"),
        "KEY_SCHEMA_MISMATCH",
        "user_id",
        "id",
    ),
    # --- DynamoDB: schemas and values ----------------------------------------------------
    D(
        "ddb-key-wrong-type",
        lambda t: t.write(people(t, [(1, "Alice", 30)], "id bigint, name string, age bigint")),
        "KEY_COLUMN_TYPE_MISMATCH",
        "id",
    ),
    D(
        "ddb-key-empty-string",
        lambda t: t.write(one_task(people(t, [*GOOD, ("", "Nobody", 1)]))),
        "KEY_VALUE_NULL",
        "'id'",
        "empty",
    ),
    D(
        "ddb-delete-flag-column-missing",
        lambda t: t.write(people(t), delete_flag_column="is_deleted", delete_flag_value="true"),
        "DELETE_FLAG_COLUMN_MISSING",
        "is_deleted",
    ),
    D(
        "ddb-delete-flag-column-is-key",
        lambda t: t.write(people(t), delete_flag_column="id", delete_flag_value="x"),
        "DELETE_FLAG_COLUMN_IS_KEY",
        "id",
    ),
    D(
        "ddb-delete-flag-wrong-type",
        lambda t: t.write(
            t.df([("id-001", "Alice", [True])], "id string, name string, gone array<boolean>"),
            delete_flag_column="gone",
            delete_flag_value="true",
        ),
        "DELETE_FLAG_COLUMN_TYPE",
        "'gone'",
        "array",
    ),
    D(
        "ddb-delete-flag-value-not-boolean",
        lambda t: t.write(
            t.df([("id-001", "Alice", True)], "id string, name string, gone boolean"),
            delete_flag_column="gone",
            delete_flag_value="yes",
        ),
        "OPTION_INVALID_VALUE",
        "delete_flag_value",
        "'yes'",
    ),
    D(
        "ddb-interval-column",
        lambda t: t.write(people(t).selectExpr("*", "INTERVAL '1' DAY AS wait")),
        "UNSUPPORTED_COLUMN_TYPE",
        "wait",
    ),
    D(
        "ddb-map-with-integer-keys",
        lambda t: t.write(t.df([("id-001", {1: "a"})], "id string, codes map<int, string>")),
        "UNSUPPORTED_COLUMN_TYPE",
        "codes",
    ),
    D(
        "ddb-duplicate-column-names",
        lambda t: t.write(people(t).selectExpr("id", "name", "age", "age AS name")),
        "COLUMN_DUPLICATE",
        "'name'",
    ),
    D(
        "ddb-item-over-400-kb",
        # 60 good rows first: more than one BatchWriteItem's worth, all in the same batch.
        lambda t: t.write(one_task(people(t, [*MANY, ("id-big", BIG, 1)]))),
        "ITEM_TOO_LARGE",
        "id=id-big",
        "'name'",
    ),
    D(
        "ddb-nan-number",
        lambda t: t.write(
            one_task(t.df([*[(i, 1.5) for i, _, _ in MANY], ("id-nan", float("nan"))], "id string, score double"))
        ),
        "VALUE_NOT_REPRESENTABLE",
        "score",
    ),
    D(
        "ddb-read-schema-wrong-type",
        lambda t: t.read("id string, name string, age boolean"),
        "TYPE_MISMATCH",
        "'age' is boolean",
    ),
    D(
        "ddb-read-schema-key-wrong-type",
        lambda t: t.read("id int, name string"),
        "TYPE_MISMATCH",
        "'id' is int",
        "keep-1",
    ),
    # --- Cassandra: options ---------------------------------------------------------------
    C(
        "cass-unknown-option",
        lambda t: t.write(cass_people(t), keyspce="x"),
        "OPTION_UNKNOWN",
        "keyspce",
        "Did you mean 'keyspace'?",
    ),
    C(
        "cass-bad-boolean",
        lambda t: t.write(cass_people(t), ssl_enabled="yes"),
        "OPTION_INVALID_VALUE",
        "ssl_enabled",
        "yes",
    ),
    C(
        "cass-bad-integer",
        lambda t: t.write(cass_people(t), concurrency="lots"),
        "OPTION_INVALID_VALUE",
        "concurrency",
        "lots",
    ),
    C(
        "cass-port-out-of-range",
        lambda t: t.write(cass_people(t), port="99999"),
        "OPTION_INVALID_VALUE",
        "port",
        "99999",
    ),
    C(
        "cass-rows-per-batch-zero",
        lambda t: t.write(cass_people(t), rows_per_batch="0"),
        "OPTION_INVALID_VALUE",
        "rows_per_batch",
    ),
    C(
        "cass-bad-consistency",
        lambda t: t.write(cass_people(t), consistency="LOCAL_QUORM"),
        "OPTION_INVALID_VALUE",
        "consistency",
        "LOCAL_QUORM",
    ),
    C(
        "cass-unreachable-host",
        lambda t: t.read(port="9"),
        "CASSANDRA_UNAVAILABLE",
        "127.0.0.1:9",
        "'port'",
    ),
    C("cass-missing-keyspace", lambda t: t.write(cass_people(t), keyspace=None), "OPTION_REQUIRED", "keyspace"),
    C(
        "cass-unreadable-ca-cert",
        lambda t: t.write(cass_people(t), ssl_enabled="true", ssl_ca_cert="/nonexistent/ca.pem"),
        "SSL_CA_CERT_UNREADABLE",
        "/nonexistent/ca.pem",
    ),
    C(
        "cass-allow-filtering-not-boolean",
        lambda t: t.read(allow_filtering="perhaps"),
        "OPTION_INVALID_VALUE",
        "allow_filtering",
    ),
    C(
        "cass-filter-invalid",
        lambda t: t.read(filter="age >>> 3", allow_filtering="true"),
        "FILTER_INVALID",
        "age >>> 3",
    ),
    C(
        "cass-table-typo",
        lambda t: t.write(cass_people(t), table=t.options["table"] + "x"),
        "TABLE_NOT_FOUND",
        "Did you mean",
    ),
    # --- Cassandra: schemas and values ---------------------------------------------------
    C(
        "cass-unknown-column",
        lambda t: t.write(cass_people(t).selectExpr("*", "'x' AS nickname")),
        "COLUMN_UNKNOWN",
        "nickname",
    ),
    C(
        "cass-string-into-int",
        lambda t: t.write(t.df([(ALICE, "thirty")], "id string, age string")),
        "COLUMN_TYPE_MISMATCH",
        "age",
    ),
    C(
        "cass-double-into-int",
        lambda t: t.write(t.df([(ALICE, 1.5)], "id string, age double")),
        "COLUMN_TYPE_MISMATCH",
        "age",
    ),
    C(
        "cass-smallint-out-of-range",
        lambda t: t.write(one_task(t.df([(ALICE, 1), (BOB, 40000)], "id string, small int"))),
        "VALUE_OUT_OF_RANGE",
        "small",
        "40000",
    ),
    C(
        "cass-bad-inet",
        lambda t: t.write(one_task(t.df([(ALICE, "10.0.0.2"), (BOB, "not-an-ip")], "id string, ip string"))),
        "INVALID_INET",
        "ip",
        "not-an-ip",
    ),
    C(
        "cass-key-null",
        lambda t: t.write(one_task(cass_people(t, [*CASS_GOOD, (None, "Nobody", 1)]))),
        "KEY_VALUE_NULL",
        "id",
    ),
    C(
        "cass-key-wrong-type",
        lambda t: t.write(t.df([(1, "Alice")], "id bigint, name string")),
        "COLUMN_TYPE_MISMATCH",
        "'id' is bigint",
        "uuid",
    ),
    C(
        "cass-null-in-list",
        lambda t: t.write(one_task(t.df([(ALICE, [1, 2]), (BOB, [1, None])], "id string, tags array<int>"))),
        "NULL_IN_COLLECTION",
        "tags",
    ),
    C(
        "cass-map-value-type",
        lambda t: t.write(t.df([(ALICE, {"a": "b"})], "id string, props map<string, string>")),
        "COLUMN_TYPE_MISMATCH",
        "props",
    ),
    C(
        "cass-interval-into-date",
        lambda t: t.write(cass_people(t).selectExpr("id", "INTERVAL '1' DAY AS born")),
        "COLUMN_TYPE_MISMATCH",
        "born",
    ),
    C(
        "cass-delete-flag-column-missing",
        lambda t: t.write(cass_people(t), delete_flag_column="is_deleted", delete_flag_value="true"),
        "DELETE_FLAG_COLUMN_MISSING",
        "is_deleted",
    ),
    C(
        "cass-delete-flag-column-is-key",
        lambda t: t.write(cass_people(t), delete_flag_column="id", delete_flag_value="x"),
        "DELETE_FLAG_COLUMN_IS_KEY",
        "id",
    ),
    C(
        "cass-delete-flag-wrong-type",
        lambda t: t.write(
            t.df([(ALICE, "Alice", [True])], "id string, name string, is_deleted array<boolean>"),
            delete_flag_column="is_deleted",
            delete_flag_value="true",
        ),
        "DELETE_FLAG_COLUMN_TYPE",
        "'is_deleted'",
    ),
    C(
        "cass-duplicate-column-names",
        lambda t: t.write(cass_people(t).selectExpr("id", "name", "age", "name AS age")),
        "COLUMN_DUPLICATE",
        "'age'",
    ),
    C(
        "cass-blob-over-mutation-limit",
        lambda t: t.write(
            one_task(t.df([(ALICE, b"ok"), (BOB, b"\x00" * (17 * 1024 * 1024))], "id string, data binary"))
        ),
        "VALUE_TOO_LARGE",
        "'data'",
        "row 1",
    ),
    C(
        "cass-read-schema-wrong-type",
        lambda t: t.read("id string, name string, age boolean"),
        "COLUMN_TYPE_MISMATCH",
        "age",
    ),
    C("cass-read-schema-unknown-column", lambda t: t.read("id string, nickname string"), "COLUMN_UNKNOWN", "nickname"),
]

# The error must survive Spark Connect too: a handful of cases of each kind run there as well.
CONNECT_CASES = {
    "ddb-unknown-write-option",
    "ddb-key-wrong-type",
    "ddb-item-over-400-kb",
    "cass-smallint-out-of-range",
    "cass-bad-inet",
    "cass-read-schema-wrong-type",
}


def check(case: Case, target: Target) -> None:
    text = failure(lambda: case.action(target))
    assert_error(text, case.error_class, *case.names, secrets=[SECRET])
    assert target.snapshot() == target.before, f"{case.id} changed the table"


def _params(cases):
    return [pytest.param(case, id=case.id) for case in cases]


@pytest.mark.parametrize("spark", ["classic"], indirect=True)
@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input(case: Case, request, spark):
    check(case, request.getfixturevalue(case.backend))


@pytest.mark.parametrize("spark", ["connect"], indirect=True)
@pytest.mark.parametrize("case", _params([c for c in CASES if c.id in CONNECT_CASES]))
def test_bad_input_through_spark_connect(case: Case, request, spark):
    check(case, request.getfixturevalue(case.backend))


def test_the_matrix_is_wide_enough():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)
    assert {case.backend for case in CASES if case.id in CONNECT_CASES} == {"ddb", "cass"}


# --- malformed and oversized requests straight to the service ----------------------------


@pytest.fixture
def service(infrastructure, dynamodb, ddb_table):
    """A ConduitClient on the embedded service, with valid DynamoDB options."""
    from spark_conduit.client import ConduitClient

    options = {
        "table_name": ddb_table,
        "aws_region": "us-east-1",
        "endpoint_url": dynamodb.endpoint,
        "aws_access_key_id": "dummy",
        "aws_secret_access_key": SECRET,
    }
    with ConduitClient(options) as client:
        yield client


def _people_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("name", pa.string()), ("age", pa.int64())])


def _people_batch():
    import pyarrow as pa

    return pa.record_batch([["id-001"], ["Alice"], [30]], schema=_people_schema())


def _still_serves(client) -> None:
    """The service answers a health check and a valid call after a malformed one."""
    from spark_conduit import arrow_ipc, service

    assert service.health_check(client.endpoint.target, timeout=5.0)
    schema = arrow_ipc.decode_schema(
        client.describe("dynamodb", arrow_ipc.encode_schema(_people_schema())).arrow_schema
    )
    assert schema.names == ["id", "name", "age"]


def _rpc(client, call):
    import grpc

    try:
        return call()
    except grpc.RpcError as error:
        raise client._error(error) from error


def _raw_write(client, requests):
    return _rpc(client, lambda: client._write(iter(requests), metadata=client._metadata, timeout=60))


def _header(client, schema_bytes: bytes, plan: bytes, fmt: str = "dynamodb"):
    from spark_conduit.v1 import conduit_pb2 as pb

    return pb.WriteRequest(
        header=pb.WriteHeader(format=fmt, options=client.options, arrow_schema=schema_bytes, write_plan=plan)
    )


def _plan(client) -> bytes:
    from spark_conduit import arrow_ipc

    return client.plan_write("dynamodb", arrow_ipc.encode_schema(_people_schema()), overwrite=False, streaming=False)


def test_direct_garbage_partition(service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc

    schema = arrow_ipc.encode_schema(_people_schema())
    text = failure(lambda: list(service.read("dynamodb", schema, b"\x00\xffnot a partition")))
    assert_error(text, "DESCRIPTOR_INVALID", "descriptor", "planning call", secrets=[SECRET])
    _still_serves(service)


def test_direct_garbage_write_plan(service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc

    before = dynamodb.raw_items(ddb_table)
    schema = arrow_ipc.encode_schema(_people_schema())
    text = failure(lambda: service.write("dynamodb", schema, b'{"kind":"something-else","v":1}', [_people_batch()]))
    assert_error(text, "DESCRIPTOR_INVALID", "plan", secrets=[SECRET])
    text = failure(lambda: service.write("dynamodb", schema, os.urandom(64), [_people_batch()]))
    assert_error(text, "DESCRIPTOR_INVALID", secrets=[SECRET])
    assert dynamodb.raw_items(ddb_table) == before
    _still_serves(service)


def test_direct_schema_bytes_that_are_not_arrow(service, dynamodb, ddb_table):
    text = failure(lambda: service.plan_write("dynamodb", b"PAR1 this is not arrow", overwrite=False, streaming=False))
    assert_error(text, "ARROW_DECODE_FAILED", "Arrow schema", secrets=[SECRET])
    text = failure(lambda: service.describe("dynamodb", b"\xff\xff\xff\xff\x00\x00\x00\x7f"))
    assert_error(text, "ARROW_DECODE_FAILED", secrets=[SECRET])
    _still_serves(service)


def test_direct_batch_bytes_that_are_not_arrow(service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc
    from spark_conduit.v1 import conduit_pb2 as pb

    before = dynamodb.raw_items(ddb_table)
    schema = arrow_ipc.encode_schema(_people_schema())
    good = arrow_ipc.encode_batch(_people_batch())
    requests = [_header(service, schema, _plan(service)), pb.WriteRequest(arrow_batch=good[: len(good) // 2])]
    text = failure(lambda: _raw_write(service, requests))
    assert_error(text, "ARROW_DECODE_FAILED", "record batch", secrets=[SECRET])
    assert dynamodb.raw_items(ddb_table) == before
    _still_serves(service)


def test_direct_write_stream_without_header(service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc
    from spark_conduit.v1 import conduit_pb2 as pb

    before = dynamodb.raw_items(ddb_table)
    batch = pb.WriteRequest(arrow_batch=arrow_ipc.encode_batch(_people_batch()))
    text = failure(lambda: _raw_write(service, [batch]))
    assert_error(text, "WRITE_HEADER_MISSING", "header", secrets=[SECRET])
    text = failure(lambda: _raw_write(service, []))
    assert_error(text, "WRITE_HEADER_MISSING", secrets=[SECRET])
    assert dynamodb.raw_items(ddb_table) == before
    _still_serves(service)


def test_direct_write_stream_with_two_headers(service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc
    from spark_conduit.v1 import conduit_pb2 as pb

    before = dynamodb.raw_items(ddb_table)
    schema = arrow_ipc.encode_schema(_people_schema())
    header = _header(service, schema, _plan(service))
    batch = pb.WriteRequest(arrow_batch=arrow_ipc.encode_batch(_people_batch()))
    text = failure(lambda: _raw_write(service, [header, header, batch]))
    assert_error(text, "WRITE_HEADER_REPEATED", "header", secrets=[SECRET])
    assert dynamodb.raw_items(ddb_table) == before
    _still_serves(service)


def test_direct_batch_schema_differs_from_header(service, dynamodb, ddb_table):
    import pyarrow as pa

    from spark_conduit import arrow_ipc
    from spark_conduit.v1 import conduit_pb2 as pb

    before = dynamodb.raw_items(ddb_table)
    schema = arrow_ipc.encode_schema(_people_schema())
    other = pa.record_batch([[1], [b"\x00"]], names=["id", "blob"])
    requests = [_header(service, schema, _plan(service)), pb.WriteRequest(arrow_batch=arrow_ipc.encode_batch(other))]
    text = failure(lambda: _raw_write(service, requests))
    assert_error(text, "BATCH_SCHEMA_MISMATCH", "blob", "id Utf8", secrets=[SECRET])
    assert dynamodb.raw_items(ddb_table) == before
    _still_serves(service)


def test_direct_unknown_format(service):
    from spark_conduit import arrow_ipc

    text = failure(lambda: service.describe("dynamo", arrow_ipc.encode_schema(_people_schema())))
    assert_error(text, "FORMAT_UNKNOWN", "'dynamo'", "Did you mean 'dynamodb'?", secrets=[SECRET])
    _still_serves(service)


@pytest.fixture
def small_limit_service(infrastructure):
    """A second service from the same bundle with a 1 MiB message limit, so an oversized
    message costs a few MiB instead of 256. Bounded: it exits after 60 idle seconds and is
    terminated at the end."""
    from spark_conduit import service as embedded

    directory = Path(tempfile.mkdtemp(prefix="scx-lim-", dir="/tmp"))
    target = f"unix:{directory / 's.sock'}"
    command = [
        embedded.node_executable(),
        str(embedded.bundle_path()),
        "serve",
        "--listen",
        target,
        "--max-message-bytes",
        str(1024 * 1024),
        "--idle-exit-seconds",
        "60",
    ]
    env = {"PATH": os.environ.get("PATH", ""), "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not embedded.health_check(target, timeout=2.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the limited service did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield target
    finally:
        stop_process(process)
        with contextlib.suppress(OSError):
            for child in directory.iterdir():
                child.unlink()
            directory.rmdir()


def test_direct_message_over_the_size_limit(small_limit_service, dynamodb, ddb_table):
    from spark_conduit import arrow_ipc, service
    from spark_conduit.client import ConduitClient
    from spark_conduit.endpoint import Endpoint

    options = {
        "table_name": ddb_table,
        "aws_region": "us-east-1",
        "endpoint_url": dynamodb.endpoint,
        "aws_access_key_id": "dummy",
        "aws_secret_access_key": SECRET,
    }
    before = dynamodb.raw_items(ddb_table)
    with ConduitClient(options, Endpoint(target=small_limit_service, display=small_limit_service)) as client:
        schema = arrow_ipc.encode_schema(_people_schema())
        # A 2 MiB unary request and a 2 MiB message in a write stream.
        huge = {**client.options, "padding_option": "p" * (2 * 1024 * 1024)}
        client.options = huge
        text = failure(lambda: client.describe("dynamodb", schema))
        assert_error(text, "MESSAGE_TOO_LARGE", secrets=[SECRET])
        client.options = {k: v for k, v in huge.items() if k != "padding_option"}
        import pyarrow as pa

        big = pa.record_batch([["id-001"], ["n" * (2 * 1024 * 1024)], [1]], schema=_people_schema())
        plan = client.plan_write("dynamodb", schema, overwrite=False, streaming=False)
        text = failure(lambda: client.write("dynamodb", schema, plan, [big]))
        assert_error(text, "MESSAGE_TOO_LARGE", secrets=[SECRET])
        assert dynamodb.raw_items(ddb_table) == before
        assert service.health_check(small_limit_service, timeout=5.0)
        described = arrow_ipc.decode_schema(client.describe("dynamodb", schema).arrow_schema)
        assert described.names == ["id", "name", "age"]
