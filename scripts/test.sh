#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine: set-up, then static checks
# (tsc, eslint, ruff), vitest (unit, transport, integration against DynamoDB Local and
# a local Cassandra) and pytest (shim unit tests, end-to-end through real PySpark,
# classic and Spark Connect).
# Ends with one line: "N passed, N failed, N skipped" summing every suite
# (scripts/summarize-tests.py says what counts as a failure besides a failed test).
set -uo pipefail
cd "$(dirname "$0")/.."
# The AWS SDK notes once per Node process that its releases after January 2027 need Node 22;
# package-lock.json pins one that supports Node 20, so the notice is only noise here.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
root=$(pwd)
results="$root/test-results"
rm -rf "$results"; mkdir -p "$results"

if ! bash scripts/setup.sh; then
  echo "set-up failed: nothing could be tested"
  echo "0 passed, 1 failed"
  exit 1
fi

state="$root/.local/test-dynamodb"
cassandra_state="$root/.local/test-cassandra"
runtime=$(mktemp -d /tmp/spark-conduit-test.XXXXXX)
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

# Cassandra takes longest: start it in the background while DynamoDB Local starts.
node scripts/local-cassandra.mjs start --state-dir "$cassandra_state" >"$results/cassandra-start.json" 2>"$results/cassandra-start.log" &
cassandra_pid=$!
if ! endpoint=$(node scripts/local-dynamodb.mjs start --state-dir "$state"); then
  echo "DynamoDB Local did not start (see $state/dynamodb-local.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! wait "$cassandra_pid"; then
  cat "$results/cassandra-start.log"
  echo "Cassandra did not start (see $cassandra_state/system.log and output.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
export SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT="$endpoint"
SPARK_CONDUIT_TEST_CASSANDRA=$(cat "$results/cassandra-start.json")
export SPARK_CONDUIT_TEST_CASSANDRA
export SPARK_CONDUIT_RUNTIME_DIR="$runtime"
cassandra_at=$(node -p 'const c = JSON.parse(process.argv[1]); `${c.host}:${c.port} (Cassandra ${c.version})`' "$SPARK_CONDUIT_TEST_CASSANDRA")
echo "DynamoDB Local at $endpoint; Cassandra at $cassandra_at; embedded service runtime dir $runtime"

# Static checks count as one test each.
check() {
  local name=$1; shift
  if "$@" >"$results/check-$name.log" 2>&1; then
    echo "pass $name" >>"$results/checks.txt"; echo "check $name: ok"
  else
    echo "fail $name" >>"$results/checks.txt"; echo "check $name: FAILED"; cat "$results/check-$name.log"
  fi
}
check typecheck npx tsc --noEmit -p .
check eslint npx eslint .
check ruff-lint .venv/bin/ruff check .
check ruff-format .venv/bin/ruff format --check .

# Each runner's exit code is recorded: the summary fails on any non-zero one, on a layer
# that ran nothing, and (with CI=true) on anything skipped.
runner() {
  local name=$1; shift
  "$@"
  echo "$name $?" >>"$results/runners.txt"
}
pytest_layer() {
  local name=$1; shift
  runner "$name" .venv/bin/python -m pytest "$@" -p no:cacheprovider --junitxml="$results/$name.xml" -q -rfEs
}
runner vitest npx vitest run --reporter=default --reporter=json --outputFile.json="$results/vitest.json"
pytest_layer pytest-harness tests/harness
pytest_layer pytest-shim python-shim/tests
pytest_layer pytest-e2e tests/e2e

.venv/bin/python scripts/summarize-tests.py "$results" "$root"
