"""dynamodb_change_schema: the change event schema users pass to readStream's .schema()."""

from __future__ import annotations

import pytest
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from spark_conduit import dynamodb_change_schema

ITEM = StructType(
    [
        StructField("id", StringType(), True),
        StructField("ts", LongType(), True),
        StructField("price", DecimalType(20, 4), True),
        StructField("tags", ArrayType(StringType()), True),
    ]
)


def test_events_carry_typed_keys_and_images():
    schema = dynamodb_change_schema(ITEM, ["id", "ts"])
    assert schema.fieldNames() == [
        "event_name",
        "event_id",
        "shard_id",
        "sequence_number",
        "approximate_creation_time",
        "keys",
        "new_image",
        "old_image",
    ]
    assert schema["approximate_creation_time"].dataType == TimestampType()
    assert schema["approximate_creation_time"].nullable
    for name in ("event_name", "event_id", "shard_id", "sequence_number"):
        assert schema[name].dataType == StringType() and not schema[name].nullable
    # Keys in the order given (partition key first), typed as in the item, never null.
    assert schema["keys"].dataType == StructType(
        [StructField("id", StringType(), False), StructField("ts", LongType(), False)]
    )
    assert not schema["keys"].nullable
    # Images: every item column, nullable (an INSERT has no old image, a REMOVE no new one).
    for image in ("new_image", "old_image"):
        assert schema[image].nullable
        assert schema[image].dataType == ITEM


def test_image_columns_become_nullable():
    item = StructType([StructField("id", StringType(), False), StructField("n", IntegerType(), False)])
    image = dynamodb_change_schema(item, ["id"])["new_image"].dataType
    assert [f.nullable for f in image.fields] == [True, True]
    assert [f.dataType for f in image.fields] == [StringType(), IntegerType()]


def test_a_key_that_is_not_a_column_is_named():
    with pytest.raises(ValueError) as excinfo:
        dynamodb_change_schema(ITEM, ["id", "sk"])
    assert "missing: sk" in str(excinfo.value)
    assert "id, ts, price, tags" in str(excinfo.value)


def test_no_key_columns_is_refused():
    with pytest.raises(ValueError, match="no key column given"):
        dynamodb_change_schema(ITEM, [])
