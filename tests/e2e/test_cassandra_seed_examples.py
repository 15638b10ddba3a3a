"""Every example of the seed README (PyCassandra), as written, through real PySpark
(classic and Spark Connect), the shim, the service and a local Cassandra 5; then what
the seed lists as features or later phases: batch reads, `filter`, an explicit schema,
auto-registration, a streaming write restarted from its checkpoint, collections, UDTs and
tuples, TLS.

The only additions to each example are what the local server needs (``.options(
**cassandra_options)``: its port, and username/password since it runs PasswordAuthenticator),
a temporary checkpoint directory instead of /tmp/checkpoint, and ``.mode("append")`` on the
two batch writes: Spark 4 refuses to save to any Python data source without an explicit
save mode (its default, ErrorIfExists, is not supported by Python data sources), so the seed's
batch writes fail as written in Spark itself, before any code of a data source runs --
``test_seed_batch_write_without_a_save_mode`` pins what a user sees then. ``host`` is the
seed's 127.0.0.1. The keyspace ``myks`` and table ``users (id uuid PRIMARY KEY, name text, age int)``
are made by the fixtures (the connector runs no DDL).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from e2e_support import assert_nothing_lost, committed_rows, failure, is_connect, rate_source, wait_for_batches

ALICE = "550e8400-e29b-41d4-a716-446655440000"
BOB = "550e8400-e29b-41d4-a716-446655440001"
CAROL = "550e8400-e29b-41d4-a716-446655440002"
DAN = "550e8400-e29b-41d4-a716-446655440003"
SEED_USERS = [{"id": ALICE, "name": "Alice", "age": 30}, {"id": BOB, "name": "Bob", "age": 25}]


def insert_users(cassandra, users: list[dict]) -> None:
    cassandra.cql(
        *(f"INSERT INTO myks.users (id, name, age) VALUES ({u['id']}, '{u['name']}', {u['age']})" for u in users)
    )


# fmt: off
def test_batch_write(spark, cassandra_users, cassandra_options, cassandra):
    from cassandra_data_source import CassandraDataSource

    spark.dataSource.register(CassandraDataSource)

    df = spark.createDataFrame([
        ("550e8400-e29b-41d4-a716-446655440000", "Alice", 30),
        ("550e8400-e29b-41d4-a716-446655440001", "Bob", 25)
    ], ["id", "name", "age"])

    df.write.format("pycassandra") \
        .mode("append") \
        .option("host", "127.0.0.1") \
        .option("keyspace", "myks") \
        .option("table", "users") \
        .options(**cassandra_options) \
        .save()

    # Strings became uuids, Spark longs CQL ints (narrowed, range-checked).
    assert cassandra.rows("myks", "users") == SEED_USERS


def test_streaming_write(spark, cassandra_users, cassandra_options, cassandra, tmp_path):
    df = rate_users(spark)

    query = df.writeStream.format("pycassandra") \
        .option("host", "127.0.0.1") \
        .option("keyspace", "myks") \
        .option("table", "users") \
        .option("checkpointLocation", str(tmp_path / "checkpoint")) \
        .options(**cassandra_options) \
        .start()

    try:
        last_batch = wait_for_batches(query, 2)
    finally:
        query.stop()
    assert query.exception() is None
    assert_users_written(cassandra.rows("myks", "users"), committed_rows(query))
    assert last_batch >= 1


def test_write_with_delete_flag(spark, cassandra_users, cassandra_options, cassandra):
    insert_users(cassandra, [*SEED_USERS, {"id": CAROL, "name": "Carol", "age": 41}])
    df = spark.createDataFrame([
        (ALICE, "Alice", 31, False),
        (BOB, "Bob", 25, True),
        (DAN, "Dan", 52, False),
    ], ["id", "name", "age", "is_deleted"])

    df.write.format("pycassandra") \
        .mode("append") \
        .option("host", "127.0.0.1") \
        .option("keyspace", "myks") \
        .option("table", "users") \
        .option("delete_flag_column", "is_deleted") \
        .option("delete_flag_value", "true") \
        .options(**cassandra_options) \
        .save()

    assert cassandra.rows("myks", "users") == [
        {"id": ALICE, "name": "Alice", "age": 31},  # updated; the flag column is not written
        {"id": CAROL, "name": "Carol", "age": 41},  # untouched
        {"id": DAN, "name": "Dan", "age": 52},
    ]
# fmt: on


def test_seed_batch_write_without_a_save_mode(spark, cassandra_users, cassandra_options, cassandra):
    """The seed's batch write exactly as written (no ``mode``): Spark 4 itself refuses it
    for every Python data source, naming the mode; nothing is written."""
    df = spark.createDataFrame([(ALICE, "Alice", 30), (BOB, "Bob", 25)], ["id", "name", "age"])
    writer = (
        df.write.format("pycassandra")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**cassandra_options)
    )
    text = failure(writer.save)
    assert "UNSUPPORTED_DATA_SOURCE_SAVE_MODE" in text and "ErrorIfExists" in text, text[:2000]
    assert cassandra.count("myks", "users") == 0


def read_users(spark, cassandra_options):
    return (
        spark.read.format("pycassandra")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**cassandra_options)
    )


def test_batch_read(spark, cassandra_users, cassandra_options, cassandra, capsys):
    insert_users(cassandra, SEED_USERS)
    df = read_users(spark, cassandra_options).load()

    df.show()

    shown = capsys.readouterr().out
    assert "Alice" in shown and "Bob" in shown
    assert dict(df.dtypes) == {"id": "string", "name": "string", "age": "int"}
    assert df.columns[0] == "id"  # the primary key first
    rows = sorted((row.asDict() for row in df.collect()), key=lambda row: row["id"])
    assert rows == SEED_USERS


def test_read_with_filter(spark, cassandra_users, cassandra_options, cassandra):
    insert_users(cassandra, [*SEED_USERS, {"id": CAROL, "name": "Carol", "age": 41}])
    df = read_users(spark, cassandra_options).option("filter", "age > 26").option("allow_filtering", "true").load()
    assert sorted(row.name for row in df.collect()) == ["Alice", "Carol"]


def test_read_many_rows_in_several_partitions(spark, cassandra_users, cassandra_options, cassandra):
    """A table spread over the token ring comes back whole, split into several tasks."""
    df = spark.range(0, 2000, numPartitions=2).selectExpr(
        "format_string('00000000-0000-4000-8000-%012d', id) AS id",
        "concat('user ', CAST(id AS STRING)) AS name",
        "CAST(id % 90 AS INT) AS age",
    )
    (
        df.write.format("pycassandra")
        .mode("append")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**cassandra_options)
        .save()
    )
    assert cassandra.count("myks", "users") == 2000

    read = read_users(spark, cassandra_options).option("read_partitions", "5").load()
    values = [int(row.id[-12:]) for row in read.select("id").collect()]
    assert sorted(values) == list(range(2000))
    if not is_connect(spark):
        assert read.rdd.getNumPartitions() == 5


def test_read_with_schema(spark, cassandra_users, cassandra_options, cassandra):
    """An explicit schema projects columns (``name`` is not read) and may ask for a wider type."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    insert_users(cassandra, SEED_USERS)
    schema = StructType([StructField("id", StringType()), StructField("age", LongType())])

    df = read_users(spark, cassandra_options).schema(schema).load()

    assert df.schema == schema
    rows = sorted((r.id, r.age) for r in df.collect())
    assert rows == [(ALICE, 30), (BOB, 25)]


def test_auto_registration_without_register(spark, cassandra_users, cassandra_options, cassandra):
    """Installing the package is enough: Spark finds pyspark_conduit_cassandra.DefaultSource."""
    insert_users(cassandra, SEED_USERS)
    fresh = spark.newSession()  # a session in which nobody called spark.dataSource.register
    df = (
        fresh.read.format("pycassandra")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "users")
        .options(**cassandra_options)
        .load()
    )
    assert sorted(r.name for r in df.collect()) == ["Alice", "Bob"]


def test_streaming_write_restarts_from_its_checkpoint(spark, cassandra_users, cassandra_options, cassandra, tmp_path):
    """Stop a streaming write and start it again on the same checkpoint: it continues
    where it stopped (later batch ids) and no row of the source is missing."""
    checkpoint = str(tmp_path / "checkpoint")

    def start():
        return (
            rate_users(spark)
            .writeStream.format("pycassandra")
            .option("host", "127.0.0.1")
            .option("keyspace", "myks")
            .option("table", "users")
            .option("checkpointLocation", checkpoint)
            .options(**cassandra_options)
            .start()
        )

    first = start()
    try:
        first_last = wait_for_batches(first, 2)
    finally:
        first.stop()
    before = cassandra.rows("myks", "users")
    assert_users_written(before, committed_rows(first))

    second = start()
    try:
        second_first = wait_for_batches(second, 1, first_batch=True)
        wait_for_batches(second, 2)
    finally:
        second.stop()
    assert second_first > first_last - 1  # continued from the checkpoint, not from batch 0
    after = cassandra.rows("myks", "users")
    assert len(after) > len(before)
    # Includes any rows of a micro-batch the first stop cut short: the restart wrote it again.
    assert_users_written(after, committed_rows(second))


@pytest.fixture
def profiles(cassandra, myks) -> str:
    """A table with collections, a nested collection, UDTs (frozen and not), a tuple and
    scalar types that need care (decimal, timestamp, date, blob, bigint)."""
    cassandra.cql(
        "CREATE TYPE IF NOT EXISTS myks.address (street text, city text, zip int)",
        "DROP TABLE IF EXISTS myks.profiles",
        """CREATE TABLE myks.profiles (
            id int PRIMARY KEY,
            tags list<text>,
            emails set<text>,
            scores map<text, int>,
            history map<text, frozen<list<int>>>,
            home frozen<address>,
            work address,
            location tuple<double, double>,
            balance decimal,
            joined timestamp,
            birthday date,
            avatar blob,
            visits bigint
        )""",
    )
    yield "profiles"
    cassandra.cql("DROP TABLE IF EXISTS myks.profiles")


PROFILE_SCHEMA = """
    id INT,
    tags ARRAY<STRING>,
    emails ARRAY<STRING>,
    scores MAP<STRING, INT>,
    history MAP<STRING, ARRAY<INT>>,
    home STRUCT<street: STRING, city: STRING, zip: INT>,
    work STRUCT<street: STRING, city: STRING, zip: INT>,
    location STRUCT<_1: DOUBLE, _2: DOUBLE>,
    balance DECIMAL(20, 4),
    joined TIMESTAMP,
    birthday DATE,
    avatar BINARY,
    visits BIGINT
"""
JOINED = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


def test_collections_udts_and_tuples_round_trip(spark, profiles, cassandra_options, cassandra):
    """Spark arrays, maps and structs are written as CQL lists, sets, maps, UDTs and tuples,
    and come back as typed Spark arrays, maps and structs (not JSON strings)."""
    full = (
        1,
        ["b", "a", "b"],
        ["y@example.com", "x@example.com"],
        {"math": 90, "art": 75},
        {"2023": [1, 2], "2024": [3]},
        ("1 Main St", "Oslo", 150),
        {"street": "2 Side St", "city": "Bergen", "zip": 5003},
        (59.91, 10.75),
        Decimal("12345.6789"),
        JOINED,
        dt.date(1990, 5, 17),
        bytearray(b"\x00\xffspark"),
        9_007_199_254_740_993,  # above 2^53: must stay exact
    )
    empty = (2, None, None, None, None, None, None, None, None, None, None, None, None)
    df = spark.createDataFrame([full, empty], PROFILE_SCHEMA)
    (
        df.write.format("pycassandra")
        .mode("append")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "profiles")
        .options(**cassandra_options)
        .save()
    )

    stored = cassandra.rows("myks", "profiles")
    assert stored[0] == {
        "id": 1,
        "tags": ["b", "a", "b"],
        "emails": ["x@example.com", "y@example.com"],  # a set: sorted, no duplicates
        "scores": {"art": 75, "math": 90},
        "history": {"2023": [1, 2], "2024": [3]},
        "home": {"street": "1 Main St", "city": "Oslo", "zip": 150},
        "work": {"street": "2 Side St", "city": "Bergen", "zip": 5003},
        "location": [Decimal("59.91"), Decimal("10.75")],
        "balance": Decimal("12345.6789"),
        "joined": "2024-01-02 03:04:05.678Z",
        "birthday": "1990-05-17",
        "avatar": "0x00ff737061726b",
        "visits": 9_007_199_254_740_993,
    }
    assert stored[1]["id"] == 2 and all(v is None for k, v in stored[1].items() if k != "id")

    read = (
        spark.read.format("pycassandra")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "profiles")
        .options(**cassandra_options)
        .load()
    )
    types = dict(read.dtypes)
    assert types == {
        "id": "int",
        "tags": "array<string>",
        "emails": "array<string>",
        "scores": "map<string,int>",
        "history": "map<string,array<int>>",
        "home": "struct<street:string,city:string,zip:int>",
        "work": "struct<street:string,city:string,zip:int>",
        "location": "struct<_1:double,_2:double>",
        "balance": "decimal(38,18)",
        "joined": "timestamp",
        "birthday": "date",
        "avatar": "binary",
        "visits": "bigint",
    }
    rows = {row.id: row for row in read.collect()}
    one = rows[1]
    assert one.tags == ["b", "a", "b"]
    assert one.emails == ["x@example.com", "y@example.com"]
    assert one.scores == {"math": 90, "art": 75}
    assert one.history == {"2023": [1, 2], "2024": [3]}
    assert one.home.asDict() == {"street": "1 Main St", "city": "Oslo", "zip": 150}
    assert one.work.city == "Bergen"
    assert (one.location._1, one.location._2) == (59.91, 10.75)
    assert one.balance == Decimal("12345.6789")
    assert one.joined == JOINED.astimezone().replace(tzinfo=None)  # Spark returns local time
    assert one.birthday == dt.date(1990, 5, 17)
    assert bytes(one.avatar) == b"\x00\xffspark"
    assert one.visits == 9_007_199_254_740_993
    assert rows[2].tags is None and rows[2].home is None and rows[2].location is None

    # Filtering inside a read collection works on the typed values.
    oslo = read.where("home.city = 'Oslo' AND array_contains(tags, 'a')").select("id").collect()
    assert [r.id for r in oslo] == [1]


def test_tls_with_ca_certificate(spark, cassandra_users, cassandra_options, cassandra):
    """ssl_enabled + ssl_ca_cert: the node's certificate is verified against the CA."""
    if not cassandra.ca_cert_file:
        pytest.fail("the local Cassandra reported no CA certificate (caCertFile)")
    tls = {**cassandra_options, "port": str(cassandra.tls_port)}
    df = spark.createDataFrame([(ALICE, "Alice", 30), (BOB, "Bob", 25)], ["id", "name", "age"])
    (
        df.write.format("pycassandra")
        .mode("append")
        .option("host", "127.0.0.1")
        .option("keyspace", "myks")
        .option("table", "users")
        .option("ssl_enabled", "true")
        .option("ssl_ca_cert", cassandra.ca_cert_file)
        .options(**tls)
        .save()
    )
    assert cassandra.rows("myks", "users") == SEED_USERS

    read = read_users(spark, tls).option("ssl_enabled", "true").option("ssl_ca_cert", cassandra.ca_cert_file).load()
    assert sorted(r.name for r in read.collect()) == ["Alice", "Bob"]


def rate_users(spark):
    return rate_source(spark).selectExpr(
        "format_string('00000000-0000-4000-8000-%012d', value) AS id",
        "concat('user ', CAST(value AS STRING)) AS name",
        "CAST(value % 90 AS INT) AS age",
    )


def assert_users_written(rows: list[dict], committed: int) -> None:
    """Every row of the committed micro-batches, each with the name and age it was given."""
    assert_nothing_lost((int(row["id"][-12:]) for row in rows), committed)
    for row in rows:
        value = int(row["id"][-12:])
        assert row["name"] == f"user {value}"
        assert row["age"] == value % 90
