"""The ``dynamodb`` format.

Spark 4 registers it automatically: its worker imports every top-level module named
``pyspark_*`` that exports ``DefaultSource``, so ``spark.read.format("dynamodb")`` works
once this package is installed, without ``spark.dataSource.register``.
"""

from spark_conduit.datasource import ConduitDataSource


class DynamoDbDataSource(ConduitDataSource):
    """Batch and streaming reads and writes of Amazon DynamoDB tables (``format("dynamodb")``).

    Options (``table_name``, ``aws_region``, ``endpoint_url``, ``total_segments``, ...) are
    validated by the spark-conduit service; see the project README for the full reference.
    """

    format_name = "dynamodb"


DefaultSource = DynamoDbDataSource

__all__ = ["DefaultSource", "DynamoDbDataSource"]
