#!/usr/bin/env bash
# Throughput benchmark against DynamoDB Local: N rows (default 1,000,000; six columns
# including a decimal and a nested map) written and read through Spark and the service,
# and the direct ceiling (a plain Node client, same concurrency, no Spark). Prints rows/s
# for both paths, their ratio, and the service's peak memory.
#
#   bash scripts/bench.sh [ROWS ...]      e.g. bash scripts/bench.sh 100000 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sizes=("${@:-1000000}")
partitions=${BENCH_PARTITIONS:-2}
write_concurrency=${BENCH_WRITE_CONCURRENCY:-16}
segments=${BENCH_SEGMENTS:-8}

bash scripts/setup.sh
# Spark's Python workers must run the venv's interpreter (it has the shim).
export PYSPARK_PYTHON="$root/.venv/bin/python"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
state="$root/.local/bench-dynamodb"
runtime=$(mktemp -d /tmp/spark-conduit-bench.XXXXXX)
cleanup() {
  SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python -m spark_conduit stop >/dev/null 2>&1 || true
  node scripts/local-dynamodb.mjs stop --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$runtime"
}
trap cleanup EXIT
endpoint=$(DYNAMODB_LOCAL_HEAP=${DYNAMODB_LOCAL_HEAP:-6g} node scripts/local-dynamodb.mjs start --state-dir "$state")
echo "DynamoDB Local at $endpoint; $partitions Spark tasks x $write_concurrency requests in flight; $segments scan segments, $partitions at a time"

for rows in "${sizes[@]}"; do
  direct=$(node bench/direct-dynamodb.mjs --endpoint "$endpoint" --rows "$rows" --concurrency $((partitions * write_concurrency)) --segments "$segments" --read-concurrency "$partitions")
  spark=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/dynamodb_bench.py --endpoint "$endpoint" --rows "$rows" \
    --partitions "$partitions" --write-concurrency "$write_concurrency" --segments "$segments" --table "bench_spark_$rows")
  DIRECT="$direct" SPARK="$spark" .venv/bin/python - <<'PY'
import json, os
d, s = json.loads(os.environ["DIRECT"]), json.loads(os.environ["SPARK"])
print(f"rows={s['rows']:,}")
print(f"  write: spark {s['write_rows_per_s']:>10,.0f} rows/s   direct {d['write_rows_per_s']:>10,.0f} rows/s   ratio {s['write_rows_per_s'] / d['write_rows_per_s']:.2f}")
print(f"  read:  spark {s['read_rows_per_s']:>10,.0f} rows/s   direct {d['read_rows_per_s']:>10,.0f} rows/s   ratio {s['read_rows_per_s'] / d['read_rows_per_s']:.2f}")
print(f"  service peak RSS: {s['service_peak_rss_mib']:.0f} MiB")
PY
done
