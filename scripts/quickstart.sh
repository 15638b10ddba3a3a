#!/usr/bin/env bash
# The quickstart on embedded local databases: set-up, start DynamoDB Local, run the seed
# README's examples through PySpark and the service (which the shim starts by itself),
# print what was read back, then stop everything. Exits non-zero if any example fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh

state="$root/.local/quickstart-dynamodb"
runtime=$(mktemp -d /tmp/spark-conduit-quickstart.XXXXXX)
cleanup() {
  SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python -m spark_conduit stop >/dev/null 2>&1 || true
  node scripts/local-dynamodb.mjs stop --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$runtime"
}
trap cleanup EXIT

endpoint=$(node scripts/local-dynamodb.mjs start --state-dir "$state")
echo "DynamoDB Local is running at $endpoint"
SPARK_CONDUIT_RUNTIME_DIR="$runtime" DYNAMODB_ENDPOINT="$endpoint" .venv/bin/python examples/dynamodb_quickstart.py
