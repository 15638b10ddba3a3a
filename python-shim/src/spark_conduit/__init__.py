"""spark-conduit: Spark data sources served by one TypeScript gRPC service.

The shim maps each PySpark data source hook to one RPC of the service and moves data as
Arrow IPC. Formats: ``dynamodb`` (:mod:`pyspark_conduit_dynamodb`).
"""

from spark_conduit.errors import SparkConduitError
from spark_conduit.schemas import dynamodb_change_schema

__all__ = ["SparkConduitError", "__version__", "dynamodb_change_schema"]
__version__ = "0.1.0"
