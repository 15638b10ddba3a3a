"""Import path of the original PyCassandra data source, kept so existing code works.

Usage, as in that project's README: ``from cassandra_data_source import CassandraDataSource``
then ``spark.dataSource.register(CassandraDataSource)``. With this package installed the
``pycassandra`` format is also registered automatically (see :mod:`pyspark_conduit_cassandra`).
"""

from pyspark_conduit_cassandra import CassandraDataSource

__all__ = ["CassandraDataSource"]
