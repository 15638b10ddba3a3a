"""Every example of the seed README (dynamodb-data-source), as written, through real
PySpark (classic and Spark Connect), the shim, the service and DynamoDB Local.

The only additions to each example are the options that point it at DynamoDB Local with
dummy credentials (``.options(**options)``: endpoint_url, aws_access_key_id,
aws_secret_access_key), and a temporary checkpoint directory instead of /tmp/checkpoint.
"""

from __future__ import annotations

from decimal import Decimal

from e2e_support import assert_nothing_lost, committed_rows, is_connect, rate_source, wait_for_batches

SEED_USERS = [
    {"id": "id-001", "name": "Alice", "age": 30},
    {"id": "id-002", "name": "Bob", "age": 25},
]


# fmt: off
def test_batch_write(spark, users, options, dynamodb):
    from dynamodb_data_source import DynamoDbDataSource

    spark.dataSource.register(DynamoDbDataSource)

    df = spark.createDataFrame([
        ("id-001", "Alice", 30),
        ("id-002", "Bob", 25)
    ], ["id", "name", "age"])

    df.write.format("dynamodb") \
        .mode("append") \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .options(**options) \
        .save()

    assert dynamodb.items("users") == SEED_USERS
    # Spark longs are stored as DynamoDB numbers, strings as strings.
    raw = {item["id"]["S"]: item for item in dynamodb.raw_items("users")}
    assert raw["id-001"] == {"id": {"S": "id-001"}, "name": {"S": "Alice"}, "age": {"N": "30"}}


def test_write_with_delete_flag(spark, users, options, dynamodb):
    dynamodb.put_items("users", [*SEED_USERS, {"id": "id-003", "name": "Carol", "age": 41}])
    df = spark.createDataFrame([
        ("id-001", "Alice", 31, False),
        ("id-002", "Bob", 25, True),
        ("id-004", "Dan", 52, False),
    ], ["id", "name", "age", "is_deleted"])

    df.write.format("dynamodb") \
        .mode("append") \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .option("delete_flag_column", "is_deleted") \
        .option("delete_flag_value", "true") \
        .options(**options) \
        .save()

    assert dynamodb.items("users") == [
        {"id": "id-001", "name": "Alice", "age": 31},  # updated, flag column not stored
        {"id": "id-003", "name": "Carol", "age": 41},  # untouched
        {"id": "id-004", "name": "Dan", "age": 52},
    ]


def test_batch_read(spark, users, options, dynamodb, capsys):
    from pyspark.sql import SparkSession

    from dynamodb_data_source import DynamoDbDataSource

    dynamodb.put_items("users", SEED_USERS)

    spark = SparkSession.builder.appName("dynamodb").getOrCreate()
    spark.dataSource.register(DynamoDbDataSource)

    # Read entire table
    df = spark.read.format("dynamodb") \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .options(**options) \
        .load()

    df.show()

    shown = capsys.readouterr().out
    assert "Alice" in shown and "Bob" in shown
    # Inferred columns come in alphabetical order, as in the seed.
    assert df.columns == ["age", "id", "name"]
    assert dict(df.dtypes) == {"age": "bigint", "id": "string", "name": "string"}
    rows = sorted((row.asDict() for row in df.collect()), key=lambda row: row["id"])
    assert rows == SEED_USERS


def test_read_with_parallel_scan(spark, users, options, dynamodb):
    dynamodb.put_items("users", [{"id": f"id-{i:03d}", "name": f"user {i}", "age": i} for i in range(200)])

    # Use 4 parallel scan segments for faster reads
    df = spark.read.format("dynamodb") \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .option("total_segments", "4") \
        .options(**options) \
        .load()

    ids = sorted(row.id for row in df.select("id").collect())
    assert ids == [f"id-{i:03d}" for i in range(200)]
    if not is_connect(spark):
        assert df.rdd.getNumPartitions() == 4


def test_read_with_schema(spark, users, options, dynamodb):
    dynamodb.put_items("users", [{**u, "email": f"{u['name'].lower()}@example.com"} for u in SEED_USERS])

    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    schema = StructType([
        StructField("id", StringType()),
        StructField("name", StringType()),
        StructField("age", IntegerType())
    ])

    df = spark.read.format("dynamodb") \
        .schema(schema) \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .options(**options) \
        .load()

    assert df.schema == schema
    rows = sorted((r.id, r.name, r.age) for r in df.collect())
    assert rows == [("id-001", "Alice", 30), ("id-002", "Bob", 25)]
    assert all(isinstance(r[2], int) for r in rows)


def test_streaming_write(spark, users, options, dynamodb, tmp_path):
    df = rate_users(spark)

    query = df.writeStream.format("dynamodb") \
        .option("table_name", "users") \
        .option("aws_region", "us-east-1") \
        .option("checkpointLocation", str(tmp_path / "checkpoint")) \
        .options(**options) \
        .start()

    try:
        last_batch = wait_for_batches(query, 2)
    finally:
        query.stop()
    assert query.exception() is None
    assert_users_written(dynamodb.items("users"), committed_rows(query))
    assert last_batch >= 1
# fmt: on


def test_auto_registration_without_register(spark, users, options, dynamodb):
    """Installing the package is enough: Spark finds pyspark_conduit_dynamodb.DefaultSource."""
    dynamodb.put_items("users", SEED_USERS)
    fresh = spark.newSession()  # a session in which nobody called spark.dataSource.register
    df = (
        fresh.read.format("dynamodb")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .options(**options)
        .load()
    )
    assert sorted(r.id for r in df.collect()) == ["id-001", "id-002"]


def test_streaming_write_restarts_from_its_checkpoint(spark, users, options, dynamodb, tmp_path):
    """Stop a streaming write and start it again on the same checkpoint: it continues
    where it stopped (later batch ids) and no row of the source is missing."""
    checkpoint = str(tmp_path / "checkpoint")

    def start():
        return (
            rate_users(spark)
            .writeStream.format("dynamodb")
            .option("table_name", "users")
            .option("aws_region", "us-east-1")
            .option("checkpointLocation", checkpoint)
            .options(**options)
            .start()
        )

    first = start()
    try:
        first_last = wait_for_batches(first, 2)
    finally:
        first.stop()
    before = dynamodb.items("users")
    assert_users_written(before, committed_rows(first))

    second = start()
    try:
        second_first = wait_for_batches(second, 1, first_batch=True)
        wait_for_batches(second, 2)
    finally:
        second.stop()
    assert second_first > first_last - 1  # continued from the checkpoint, not from batch 0
    after = dynamodb.items("users")
    assert len(after) > len(before)
    # Includes any rows of a micro-batch the first stop cut short: the restart wrote it again.
    assert_users_written(after, committed_rows(second))


def rate_users(spark):
    return rate_source(spark).selectExpr(
        "format_string('id-%06d', value) AS id",
        "concat('user ', CAST(value AS STRING)) AS name",
        "CAST(value % 90 AS INT) AS age",
    )


def assert_users_written(items: list[dict], committed: int) -> None:
    """Every row of the committed micro-batches, each with the name and age it was given."""
    assert_nothing_lost((int(item["id"].removeprefix("id-")) for item in items), committed)
    for item in items:
        value = int(item["id"].removeprefix("id-"))
        assert item["name"] == f"user {value}"
        assert item["age"] == value % 90
        assert not isinstance(item["age"], Decimal)
