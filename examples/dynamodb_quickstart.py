"""The seed README's DynamoDB examples, in order, against a local DynamoDB.

    DYNAMODB_ENDPOINT=http://127.0.0.1:8000 python examples/dynamodb_quickstart.py

(``npm run quickstart`` starts DynamoDB Local and runs this.) Each example is the seed's
code with the options that point it at the local endpoint with dummy credentials added.
The spark-conduit service is started by the shim itself on first use. Prints what each
step reads back; exits non-zero if any step fails.
"""

from __future__ import annotations

import os
import sys
import tempfile

from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType
from quickstart_support import local_session, run_examples, run_micro_batches, step

from dynamodb_data_source import DynamoDbDataSource

ENDPOINT = os.environ.get("DYNAMODB_ENDPOINT", "").strip()
LOCAL = {
    "endpoint_url": ENDPOINT,
    "aws_access_key_id": "dummy",
    "aws_secret_access_key": "dummy",
}


def read_users(spark: SparkSession):
    return (
        spark.read.format("dynamodb")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .options(**LOCAL)
        .load()
    )


def create_users_table(spark: SparkSession) -> None:
    step("Create the users table (connector option create_table; emptied if it exists)")
    schema = StructType(
        [StructField("id", StringType()), StructField("name", StringType()), StructField("age", LongType())]
    )
    (
        spark.createDataFrame([], schema)
        .write.format("dynamodb")
        .mode("overwrite")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .option("create_table", "true")
        .option("hash_key", "id")
        .option("confirm_truncate", "true")
        .options(**LOCAL)
        .save()
    )
    print("users table is ready and empty")


def batch_write(spark: SparkSession):
    step("Batch Write")
    spark.dataSource.register(DynamoDbDataSource)

    df = spark.createDataFrame([("id-001", "Alice", 30), ("id-002", "Bob", 25)], ["id", "name", "age"])

    (
        df.write.format("dynamodb")
        .mode("append")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .options(**LOCAL)
        .save()
    )
    read_users(spark).orderBy("id").show()
    return df


def write_with_delete_flag(spark: SparkSession) -> None:
    step("Write with Delete Flag (Bob is deleted, Carol is added)")
    df = spark.createDataFrame(
        [("id-002", "Bob", 25, "true"), ("id-003", "Carol", 41, "false")],
        ["id", "name", "age", "is_deleted"],
    )
    (
        df.write.format("dynamodb")
        .mode("append")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .option("delete_flag_column", "is_deleted")
        .option("delete_flag_value", "true")
        .options(**LOCAL)
        .save()
    )
    ids = sorted(row.id for row in read_users(spark).collect())
    print(f"ids now in users: {ids}")
    if ids != ["id-001", "id-003"]:
        raise RuntimeError(f"expected id-001 and id-003 after the delete-flag write, found {ids}")


def batch_read(spark: SparkSession) -> None:
    step("Batch Read")
    spark.dataSource.register(DynamoDbDataSource)

    # Read entire table
    df = (
        spark.read.format("dynamodb")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .options(**LOCAL)
        .load()
    )

    df.show()
    df.printSchema()


def parallel_scan(spark: SparkSession) -> None:
    step("Read with Parallel Scan (4 segments)")
    # Use 4 parallel scan segments for faster reads
    df = (
        spark.read.format("dynamodb")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .option("total_segments", "4")
        .options(**LOCAL)
        .load()
    )
    rows = df.orderBy("id").collect()
    print(f"read {len(rows)} rows with 4 scan segments: {[row.id for row in rows]}")


def read_with_schema(spark: SparkSession) -> None:
    step("Read with Schema (Column Projection)")
    schema = StructType(
        [
            StructField("id", StringType()),
            StructField("name", StringType()),
            StructField("age", IntegerType()),
        ]
    )

    df = (
        spark.read.format("dynamodb")
        .schema(schema)
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .options(**LOCAL)
        .load()
    )
    df.orderBy("id").show()


def streaming_write(spark: SparkSession, checkpoint: str, batches: int = 3, timeout: float = 120.0) -> None:
    step(f"Streaming Write ({batches} micro-batches from the rate source, then stop)")
    df = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", "5")
        .load()
        .selectExpr(
            "format_string('stream-%04d', value) AS id",
            "concat('streamed user ', CAST(value AS STRING)) AS name",
            "CAST(20 + value % 50 AS INT) AS age",
        )
    )

    query = (
        df.writeStream.format("dynamodb")
        .option("table_name", "users")
        .option("aws_region", "us-east-1")
        .option("checkpointLocation", checkpoint)
        .options(**LOCAL)
        .start()
    )
    done = run_micro_batches(query, batches, timeout)
    streamed = read_users(spark).where("id LIKE 'stream-%'").orderBy("id").collect()
    print(f"{done} micro-batches wrote {len(streamed)} rows; first ones:")
    for row in streamed[:5]:
        print(f"  {row.id}  {row.name}  {row.age}")
    if not streamed:
        raise RuntimeError("the streaming write wrote nothing")


def main() -> int:
    if not ENDPOINT:
        print("Set DYNAMODB_ENDPOINT to a DynamoDB endpoint, e.g. http://127.0.0.1:8000.", file=sys.stderr)
        return 2
    print(f"DynamoDB endpoint: {ENDPOINT}")
    spark = local_session("dynamodb")

    def examples() -> None:
        spark.dataSource.register(DynamoDbDataSource)
        create_users_table(spark)
        batch_write(spark)
        write_with_delete_flag(spark)
        batch_read(spark)
        parallel_scan(spark)
        read_with_schema(spark)
        with tempfile.TemporaryDirectory(prefix="dynamodb-quickstart-") as checkpoint:
            streaming_write(spark, checkpoint)

    return run_examples(spark, examples)


if __name__ == "__main__":
    sys.exit(main())
