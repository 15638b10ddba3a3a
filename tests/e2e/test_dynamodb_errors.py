"""What a user sees when a DynamoDB read or write cannot work, and that nothing was
written. Each case asserts the error class and the names in the message, through real
PySpark (classic and Spark Connect)."""

from __future__ import annotations

import re

import pytest
from e2e_support import assert_error, failure

BASE = {"aws_region": "us-east-1"}


@pytest.fixture
def creds(dynamodb):
    return {
        "endpoint_url": dynamodb.endpoint,
        "aws_access_key_id": "dummy",
        "aws_secret_access_key": "dummy-secret",
    }


@pytest.fixture
def empty_table(dynamodb, table_name):
    dynamodb.create_table(table_name, ("id", "S"))
    yield table_name
    dynamodb.drop_table(table_name)


def people(spark, rows=None, columns=("id", "name", "age")):
    rows = rows or [("id-001", "Alice", 30), ("id-002", "Bob", 25)]
    return spark.createDataFrame(rows, list(columns))


def test_missing_required_option(spark, creds, empty_table, dynamodb):
    text = failure(lambda: people(spark).write.format("dynamodb").mode("append").options(**BASE, **creds).save())
    assert_error(text, "OPTION_REQUIRED", "table_name")
    assert dynamodb.items(empty_table) == []

    text = failure(
        lambda: spark.read.format("dynamodb").option("table_name", empty_table).options(**creds).load().collect()
    )
    assert_error(text, "OPTION_REQUIRED", "aws_region")


def test_missing_key_column(spark, creds, empty_table, dynamodb):
    df = people(spark, [("id-001", "Alice", 30)], ("user_id", "name", "age"))
    text = failure(
        lambda: (
            df.write.format("dynamodb").mode("append").option("table_name", empty_table).options(**BASE, **creds).save()
        )
    )
    assert_error(text, "KEY_COLUMN_MISSING", "id", empty_table)
    assert dynamodb.items(empty_table) == []


def test_null_key(spark, creds, empty_table, dynamodb):
    # One task, so "nothing written" is a property of the service, not of task order.
    df = people(spark, [("id-001", "Alice", 30), ("id-002", "Bob", 25), (None, "Nobody", 1)]).coalesce(1)
    text = failure(
        lambda: (
            df.write.format("dynamodb").mode("append").option("table_name", empty_table).options(**BASE, **creds).save()
        )
    )
    assert_error(text, "KEY_VALUE_NULL", "id")
    assert dynamodb.items(empty_table) == []


def test_unknown_option_with_suggestion(spark, creds, empty_table, dynamodb):
    text = failure(
        lambda: (
            people(spark)
            .write.format("dynamodb")
            .mode("append")
            .option("table_name", empty_table)
            .option("delete_flag_colum", "is_deleted")
            .options(**BASE, **creds)
            .save()
        )
    )
    assert_error(text, "OPTION_UNKNOWN", "delete_flag_colum", "Did you mean 'delete_flag_column'?")
    assert dynamodb.items(empty_table) == []

    text = failure(
        lambda: (
            spark.read.format("dynamodb")
            .option("table_name", empty_table)
            .option("total_segment", "4")
            .options(**BASE, **creds)
            .load()
            .collect()
        )
    )
    assert_error(text, "OPTION_UNKNOWN", "Did you mean 'total_segments'?")


def test_table_that_does_not_exist(spark, creds, dynamodb, table_name):
    text = failure(
        lambda: (
            people(spark)
            .write.format("dynamodb")
            .mode("append")
            .option("table_name", table_name)
            .options(**BASE, **creds)
            .save()
        )
    )
    assert_error(text, "TABLE_NOT_FOUND", table_name)
    assert table_name not in dynamodb.tables()

    text = failure(
        lambda: spark.read.format("dynamodb").option("table_name", table_name).options(**BASE, **creds).load().collect()
    )
    assert_error(text, "TABLE_NOT_FOUND", table_name)


def test_delete_flag_column_without_value(spark, creds, empty_table, dynamodb):
    df = people(spark, [("id-001", "Alice", 30, True)], ("id", "name", "age", "is_deleted"))
    text = failure(
        lambda: (
            df.write.format("dynamodb")
            .mode("append")
            .option("table_name", empty_table)
            .option("delete_flag_column", "is_deleted")
            .options(**BASE, **creds)
            .save()
        )
    )
    assert_error(text, "OPTION_CONFLICT", "delete_flag_column", "delete_flag_value")
    assert dynamodb.items(empty_table) == []


def test_overwrite_without_confirmation(spark, creds, empty_table, dynamodb):
    dynamodb.put_items(empty_table, [{"id": "keep-me", "name": "Existing", "age": 1}])
    text = failure(
        lambda: (
            people(spark)
            .write.format("dynamodb")
            .mode("overwrite")
            .option("table_name", empty_table)
            .options(**BASE, **creds)
            .save()
        )
    )
    assert_error(text, "OVERWRITE_NOT_CONFIRMED", "confirm_truncate")
    assert dynamodb.items(empty_table) == [{"id": "keep-me", "name": "Existing", "age": 1}]


def test_confirmed_overwrite_replaces_the_table(spark, creds, empty_table, dynamodb):
    dynamodb.put_items(empty_table, [{"id": "old", "name": "Old", "age": 1}])
    (
        people(spark)
        .write.format("dynamodb")
        .mode("overwrite")
        .option("table_name", empty_table)
        .option("confirm_truncate", "true")
        .options(**BASE, **creds)
        .save()
    )
    assert [item["id"] for item in dynamodb.items(empty_table)] == ["id-001", "id-002"]


def test_create_table_option(spark, creds, dynamodb, table_name):
    try:
        (
            people(spark)
            .write.format("dynamodb")
            .mode("append")
            .option("table_name", table_name)
            .option("create_table", "true")
            .option("hash_key", "id")
            .options(**BASE, **creds)
            .save()
        )
        assert [item["name"] for item in dynamodb.items(table_name)] == ["Alice", "Bob"]
    finally:
        dynamodb.drop_table(table_name)


def test_unreachable_service_endpoint(spark, creds, empty_table):
    text = failure(
        lambda: (
            spark.read.format("dynamodb")
            .option("table_name", empty_table)
            .option("service_endpoint", "127.0.0.1:9")
            .options(**BASE, **creds)
            .load()
            .collect()
        )
    )
    assert_error(text, "SERVICE_UNAVAILABLE", "127.0.0.1:9", "service_endpoint")
    assert re.search(r"SPARK_CONDUIT_ENDPOINT", text)
