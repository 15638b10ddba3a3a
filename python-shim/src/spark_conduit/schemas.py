"""Schemas users build for the change streams of ``spark.readStream``."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql.types import StringType, StructField, StructType, TimestampType


def dynamodb_change_schema(item_schema: StructType | str, key_columns: Sequence[str]) -> StructType:
    """The change event schema of ``spark.readStream.format("dynamodb")`` for items of ``item_schema``.

    Pass it to ``.schema(...)`` to type the images yourself instead of letting the service
    infer the item schema by sampling the table. ``key_columns`` are the table's key
    attributes (partition key first), which must be columns of ``item_schema``. A DDL string
    (``"id string, age bigint"``) is parsed by Spark, so it needs an active session; a
    ``StructType`` does not.
    """
    if isinstance(item_schema, str):
        item_schema = StructType.fromDDL(item_schema)
    by_name = {field.name: field for field in item_schema.fields}
    missing = [name for name in key_columns if name not in by_name]
    if not key_columns or missing:
        raise ValueError(
            f"key_columns must name the table's key attributes among the item schema's columns "
            f"({', '.join(by_name) or 'none'}); missing: {', '.join(missing) or 'no key column given'}"
        )
    keys = StructType([StructField(name, by_name[name].dataType, False) for name in key_columns])
    image = StructType([StructField(f.name, f.dataType, True) for f in item_schema.fields])
    return StructType(
        [
            StructField("event_name", StringType(), False),
            StructField("event_id", StringType(), False),
            StructField("shard_id", StringType(), False),
            StructField("sequence_number", StringType(), False),
            StructField("approximate_creation_time", TimestampType(), True),
            StructField("keys", keys, False),
            StructField("new_image", image, True),
            StructField("old_image", image, True),
        ]
    )
