"""End-to-end fixtures: real PySpark (classic local and Spark Connect), the real service
started by the shim itself, and DynamoDB Local.

- DynamoDB Local comes from SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT, else this run starts one
  with ``node scripts/local-dynamodb.mjs`` and stops it at the end.
- The embedded service runs in a private SPARK_CONDUIT_RUNTIME_DIR and is stopped at the end.
- Tables are created and read back with tests/e2e/dynamodb_helper.mjs (AWS SDK for
  JavaScript), never through the connector under test unless that is what a test checks.
- With CI=true, missing Java, Node, DynamoDB Local or the service bundle FAILS the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest
from e2e_support import CREDENTIALS, DynamoDb, missing, run


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory):
    """Checks Java, Node and the service bundle; provides DynamoDB Local and a runtime dir."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing("Java 17 is not installed (Spark needs it)")
    if shutil.which("node") is None:
        missing("Node.js is not on PATH (the service and the DynamoDB Local launcher need it)")

    from spark_conduit import service

    if not service.bundle_path().is_file():
        missing(f"the service bundle {service.bundle_path()} is missing: run `npm run build`")

    started_state: Path | None = None
    endpoint = os.environ.get("SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT", "").strip()
    if not endpoint:
        started_state = tmp_path_factory.mktemp("dynamodb-local")
        result = run(["node", "scripts/local-dynamodb.mjs", "start", "--state-dir", str(started_state)], 180)
        if result.returncode != 0:
            missing(f"DynamoDB Local did not start: {result.stderr.strip() or result.stdout.strip()}")
        endpoint = result.stdout.strip().splitlines()[-1]

    # Unix socket paths are limited to 108 bytes: keep the runtime dir short.
    runtime = tempfile.mkdtemp(prefix="scx-e2e-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("SPARK_CONDUIT_RUNTIME_DIR", "PYSPARK_PYTHON", "SPARK_CONDUIT_ENDPOINT")}
    os.environ["SPARK_CONDUIT_RUNTIME_DIR"] = runtime
    os.environ.pop("SPARK_CONDUIT_ENDPOINT", None)
    # Spark's Python workers must run the interpreter that has this package installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        yield DynamoDb(endpoint)
    finally:
        with contextlib.suppress(Exception):
            service.stop_service()
        if started_state is not None:
            run(["node", "scripts/local-dynamodb.mjs", "stop", "--state-dir", str(started_state)])
        shutil.rmtree(runtime, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def dynamodb(infrastructure) -> DynamoDb:
    return infrastructure


def _spark_conf(tmp: Path) -> dict[str, str]:
    return {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.local.dir": str(tmp / "local"),
        "spark.sql.warehouse.dir": str(tmp / "warehouse"),
        "spark.driver.memory": "1g",
        "spark.sql.streaming.stopTimeout": "60s",
        "spark.ui.showConsoleProgress": "false",
    }


@pytest.fixture(scope="session", params=["classic", "connect"])
def spark(request, infrastructure, tmp_path_factory):
    """One Spark session per mode (classic local[2], then Spark Connect remote("local")).

    Only one runs at a time: the machine has two cores.
    """
    from pyspark.sql import SparkSession

    tmp = tmp_path_factory.mktemp(f"spark-{request.param}")
    builder = SparkSession.builder.appName(f"spark-conduit-e2e-{request.param}")
    for key, value in _spark_conf(tmp).items():
        builder = builder.config(key, value)
    if request.param == "classic":
        session = builder.master("local[2]").getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
    else:
        with warnings.catch_warnings():
            # Static settings reach the local Connect server's SparkContext; the client then
            # warns that it cannot set them on the session, which is expected.
            warnings.filterwarnings("ignore", message="Failed to set", category=UserWarning)
            session = builder.remote("local").getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        if request.param == "connect":
            # remote("local") runs the Connect server on a classic session in this process.
            from pyspark.sql import SparkSession as ClassicSession

            classic = ClassicSession._instantiatedSession
            if classic is not None:
                classic.stop()
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
            os.environ.pop("SPARK_REMOTE", None)


@pytest.fixture
def table_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def users(dynamodb):
    """The seed README's `users` table (hash key `id`), empty."""
    dynamodb.create_table("users", ("id", "S"))
    yield "users"
    dynamodb.drop_table("users")


@pytest.fixture
def options(dynamodb) -> dict[str, str]:
    """What each seed example adds to point at DynamoDB Local with dummy credentials."""
    return {"endpoint_url": dynamodb.endpoint, **CREDENTIALS}
