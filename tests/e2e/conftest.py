"""End-to-end fixtures: real PySpark (classic local and Spark Connect), the real service
started by the shim itself, DynamoDB Local and a local Cassandra.

- DynamoDB Local comes from SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT, else this run starts one
  with ``node scripts/local-dynamodb.mjs`` and stops it at the end.
- Cassandra comes from SPARK_CONDUIT_TEST_CASSANDRA (the JSON that
  ``node scripts/local-cassandra.mjs start`` prints), else this run starts one with that
  script and stops it at the end. Each database starts only when a test needs it.
- The embedded service runs in a private SPARK_CONDUIT_RUNTIME_DIR and is stopped at the end.
- Tables are created and read back with tests/e2e/dynamodb_helper.mjs (AWS SDK for
  JavaScript) and scripts/cql.mjs (npm cassandra-driver), never through the connector under
  test unless that is what a test checks.
- With CI=true, missing Java, Node, a database or the service bundle FAILS the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import CREDENTIALS, ROOT, Cassandra, DynamoDb, missing, run


@pytest.fixture(scope="session")
def infrastructure():
    """Checks Java, Node and the service bundle; provides the service's runtime dir."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing("Java 17 is not installed (Spark needs it)")
    if shutil.which("node") is None:
        missing("Node.js is not on PATH (the service and the local database launchers need it)")

    from spark_conduit import service

    if not service.bundle_path().is_file():
        missing(f"the service bundle {service.bundle_path()} is missing: run `npm run build`")

    # Unix socket paths are limited to 108 bytes: keep the runtime dir short.
    runtime = tempfile.mkdtemp(prefix="scx-e2e-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("SPARK_CONDUIT_RUNTIME_DIR", "PYSPARK_PYTHON", "SPARK_CONDUIT_ENDPOINT")}
    os.environ["SPARK_CONDUIT_RUNTIME_DIR"] = runtime
    os.environ.pop("SPARK_CONDUIT_ENDPOINT", None)
    # Spark's Python workers must run the interpreter that has this package installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        yield runtime
    finally:
        with contextlib.suppress(Exception):
            service.stop_service()
        shutil.rmtree(runtime, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def local_database(name: str, launcher: str, state_dir: Path, timeout: float) -> Iterator[str]:
    """Starts a database with one of the project's launchers (``node scripts/<launcher>
    start --state-dir DIR``), yields the last line it printed, and stops it at the end."""
    if not (ROOT / "scripts" / launcher).is_file():
        missing(f"scripts/{launcher} is missing: cannot start {name}")
    result = run(["node", f"scripts/{launcher}", "start", "--state-dir", str(state_dir)], timeout)
    if result.returncode != 0:
        run(["node", f"scripts/{launcher}", "stop", "--state-dir", str(state_dir)])
        missing(f"{name} did not start: {result.stderr.strip() or result.stdout.strip()}")
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        run(["node", f"scripts/{launcher}", "stop", "--state-dir", str(state_dir)])


@pytest.fixture(scope="session")
def dynamodb(infrastructure, tmp_path_factory) -> Iterator[DynamoDb]:
    endpoint = os.environ.get("SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT", "").strip()
    if endpoint:
        yield DynamoDb(endpoint)
        return
    with local_database(
        "DynamoDB Local", "local-dynamodb.mjs", tmp_path_factory.mktemp("dynamodb-local"), 180
    ) as endpoint:
        yield DynamoDb(endpoint)


@pytest.fixture(scope="session")
def cassandra(infrastructure, tmp_path_factory) -> Iterator[Cassandra]:
    given = os.environ.get("SPARK_CONDUIT_TEST_CASSANDRA", "").strip()
    if given:
        try:
            local = Cassandra(json.loads(given))
        except (ValueError, KeyError) as error:
            pytest.fail(f"SPARK_CONDUIT_TEST_CASSANDRA is not the JSON local-cassandra.mjs prints: {error}")
        yield local
        return
    # Cassandra takes 20-40 s to start on two cores.
    with local_database("Cassandra", "local-cassandra.mjs", tmp_path_factory.mktemp("cassandra"), 300) as info:
        yield Cassandra(json.loads(info))


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


@pytest.fixture
def cassandra_options(cassandra) -> dict[str, str]:
    """What each PyCassandra seed example adds for the local Cassandra: port, username and
    password (host stays the seed's 127.0.0.1)."""
    return cassandra.options


@pytest.fixture(scope="session")
def myks(cassandra) -> str:
    """The seed README's keyspace."""
    cassandra.create_keyspace("myks")
    return "myks"


@pytest.fixture(scope="session")
def faults_keyspace(cassandra) -> str:
    """The keyspace of the fault tests' tables (each test makes its own table)."""
    cassandra.create_keyspace("faults")
    return "faults"


@pytest.fixture
def cassandra_users(cassandra, myks) -> str:
    """The seed README's table ``myks.users (id uuid PRIMARY KEY, name text, age int)``, empty."""
    cassandra.cql(
        "CREATE TABLE IF NOT EXISTS myks.users (id uuid PRIMARY KEY, name text, age int)",
        "TRUNCATE myks.users",
    )
    return "users"
