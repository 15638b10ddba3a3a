"""The ``pycassandra`` format.

Spark 4 registers it automatically: its worker imports every top-level module named
``pyspark_*`` that exports ``DefaultSource``, so ``spark.read.format("pycassandra")`` works
once this package is installed, without ``spark.dataSource.register``.
"""

from spark_conduit.datasource import ConduitDataSource


class CassandraDataSource(ConduitDataSource):
    """Batch and streaming reads and writes of Apache Cassandra tables (``format("pycassandra")``).

    Options (``host``, ``keyspace``, ``table``, ``consistency``, ``filter``, ...) are
    validated by the spark-conduit service; see the project README for the full reference.
    """

    format_name = "pycassandra"


DefaultSource = CassandraDataSource

__all__ = ["CassandraDataSource", "DefaultSource"]
