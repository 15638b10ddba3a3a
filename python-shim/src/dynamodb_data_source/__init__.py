"""Import path of the original pure-Python DynamoDB data source, kept so existing code works.

Usage, as in that project's README: ``from dynamodb_data_source import DynamoDbDataSource``
then ``spark.dataSource.register(DynamoDbDataSource)``. With this package installed the
``dynamodb`` format is also registered automatically (see :mod:`pyspark_conduit_dynamodb`).
"""

from pyspark_conduit_dynamodb import DynamoDbDataSource

__all__ = ["DynamoDbDataSource"]
