"""spark-conduit: Spark data sources served by one TypeScript gRPC service.

The shim maps each PySpark data source hook to one RPC of the service and moves data as
Arrow IPC. Formats: ``dynamodb`` (:mod:`pyspark_conduit_dynamodb`).
"""

from spark_conduit.errors import SparkConduitError

__all__ = ["SparkConduitError", "__version__"]
__version__ = "0.1.0"
