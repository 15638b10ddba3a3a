#!/usr/bin/env bash
# The quickstart on embedded local databases: set-up, start DynamoDB Local and Cassandra
# (CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD, _CA_CERT are exported), run the seed
# README's examples through PySpark and the service (which the shim starts by itself),
# print what was read back, replicate a DynamoDB table's changes into Cassandra with a
# streaming read, stream a Cassandra table into another one, then stop everything. Exits non-zero if any example fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The AWS SDK notes once per Node process that its releases after January 2027 need Node 22;
# package-lock.json pins one that supports Node 20, so the notice is only noise here.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
root=$(pwd)
bash scripts/setup.sh

state="$root/.local/quickstart-dynamodb"
cassandra_state="$root/.local/quickstart-cassandra"
runtime=$(mktemp -d /tmp/spark-conduit-quickstart.XXXXXX)
cassandra_pid=
cleanup() {
  # A Cassandra start still under way first finishes (or fails), then it is stopped.
  [ -z "$cassandra_pid" ] || wait "$cassandra_pid" >/dev/null 2>&1 || true
  SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python -m spark_conduit stop >/dev/null 2>&1 || true
  node scripts/local-dynamodb.mjs stop --state-dir "$state" >/dev/null 2>&1 || true
  node scripts/local-cassandra.mjs stop --state-dir "$cassandra_state" >/dev/null 2>&1 || true
  rm -rf "$runtime"
}
trap cleanup EXIT

# Cassandra takes longest to start: it starts in the background while DynamoDB Local does.
node scripts/local-cassandra.mjs start --state-dir "$cassandra_state" >"$runtime/cassandra.json" &
cassandra_pid=$!
endpoint=$(node scripts/local-dynamodb.mjs start --state-dir "$state")
echo "DynamoDB Local is running at $endpoint"
wait "$cassandra_pid" || { echo "Cassandra did not start (see $cassandra_state/system.log)" >&2; exit 1; }
cassandra_field() { node -p "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).$1" "$runtime/cassandra.json"; }
export CASSANDRA_HOST CASSANDRA_PORT CASSANDRA_USERNAME CASSANDRA_PASSWORD CASSANDRA_CA_CERT
CASSANDRA_HOST=$(cassandra_field host)
CASSANDRA_PORT=$(cassandra_field port)
CASSANDRA_USERNAME=$(cassandra_field username)
CASSANDRA_PASSWORD=$(cassandra_field password)
CASSANDRA_CA_CERT=$(cassandra_field caCertFile)
echo "Cassandra is running at $CASSANDRA_HOST:$CASSANDRA_PORT (TLS on the same port, CA certificate $CASSANDRA_CA_CERT)"
SPARK_CONDUIT_RUNTIME_DIR="$runtime" DYNAMODB_ENDPOINT="$endpoint" .venv/bin/python examples/dynamodb_quickstart.py
SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python examples/cassandra_quickstart.py
# Streaming read: changes to a DynamoDB table replicated into Cassandra; fails if the tables differ.
SPARK_CONDUIT_RUNTIME_DIR="$runtime" DYNAMODB_ENDPOINT="$endpoint" .venv/bin/python examples/streaming_quickstart.py
# Streaming read of Cassandra: new rows of a table followed into another table, and an update seen by write time.
SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python examples/cassandra_streaming_quickstart.py
