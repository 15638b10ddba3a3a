#!/usr/bin/env bash
# Throughput benchmark against the local databases: N rows (default 1,000,000; six columns
# including a decimal and a nested map) written and read through Spark and the service,
# and the direct ceiling (a plain Node client, same concurrency, no Spark), run before and
# after the Spark path; the faster of the two is the ceiling. Prints rows/s for both paths,
# their ratio, and the service's peak memory, per database.
#
#   bash scripts/bench.sh [ROWS ...]      e.g. bash scripts/bench.sh 100000 1000000
#
# BENCH_DATABASES=dynamodb,cassandra (the default) chooses the databases. BENCH_PARTITIONS
# (2) is the number of Spark tasks (local[N]) and of reads in flight on the direct path.
# DynamoDB: BENCH_WRITE_CONCURRENCY (16) requests per task, BENCH_SEGMENTS (8) scan segments.
# Cassandra: BENCH_CASSANDRA_CONCURRENCY (100, the `concurrency` option's default) requests
# per task, BENCH_CASSANDRA_SPLITS (8) token ranges read (`read_partitions`).
# Both paths are warmed up, unmeasured, into tables of their own: the database with
# BENCH_DATABASE_WARMUP_ROWS (1000000) rows through the direct client (a local Cassandra
# keeps getting faster for about its first million rows written, and a colder database
# would slow whichever path runs first), and the Spark path with BENCH_WARMUP_ROWS (200000)
# rows once per Spark application (its first job pays for Spark's JIT, the Python worker
# daemons and the service's start: start-up, not throughput).
# BENCH_LATENCY_MS=N (default 0: none) puts the fault proxy (dist/fault-proxy.cjs, plain TCP)
# between BOTH paths and the database, adding N ms to every chunk each way, so the figures
# show behaviour closer to a real network (a request then costs at least 2N ms more).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sizes=("${@:-1000000}")
databases=${BENCH_DATABASES:-dynamodb,cassandra}
partitions=${BENCH_PARTITIONS:-2}
write_concurrency=${BENCH_WRITE_CONCURRENCY:-16}
segments=${BENCH_SEGMENTS:-8}
cassandra_concurrency=${BENCH_CASSANDRA_CONCURRENCY:-100}
cassandra_splits=${BENCH_CASSANDRA_SPLITS:-8}
warmup_rows=${BENCH_WARMUP_ROWS:-200000}
database_warmup_rows=${BENCH_DATABASE_WARMUP_ROWS:-1000000}
latency_ms=${BENCH_LATENCY_MS:-0}
[[ "$latency_ms" =~ ^[0-9]+$ ]] || { echo "bench: BENCH_LATENCY_MS must be a whole number of milliseconds, got '$latency_ms'" >&2; exit 2; }

for database in ${databases//,/ }; do
  case "$database" in
    dynamodb | cassandra) ;;
    *) echo "bench: unknown database '$database' in BENCH_DATABASES (expected dynamodb and/or cassandra)" >&2; exit 2 ;;
  esac
done
wants() { [[ ",$databases," == *",$1,"* ]]; }

bash scripts/setup.sh
# Spark's Python workers must run the venv's interpreter (it has the shim).
export PYSPARK_PYTHON="$root/.venv/bin/python"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
dynamodb_state="$root/.local/bench-dynamodb"
cassandra_state="$root/.local/bench-cassandra"
runtime=$(mktemp -d /tmp/spark-conduit-bench.XXXXXX)
proxy_pids=()
cleanup() {
  for pid in "${proxy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python -m spark_conduit stop >/dev/null 2>&1 || true
  if wants dynamodb; then node scripts/local-dynamodb.mjs stop --state-dir "$dynamodb_state" >/dev/null 2>&1 || true; fi
  if wants cassandra; then node scripts/local-cassandra.mjs stop --state-dir "$cassandra_state" >/dev/null 2>&1 || true; fi
  rm -rf "$runtime"
}
trap cleanup EXIT

# Starts a latency proxy to $1 (HOST:PORT) and sets `proxied` to its HOST:PORT. Not run in a
# $(...) subshell, so cleanup knows its pid; it also stops by itself after 4 hours at the latest.
start_latency_proxy() {
  local out="$runtime/proxy-${#proxy_pids[@]}.json"
  node dist/fault-proxy.cjs --protocol tcp --target "$1" --latency-ms "$latency_ms" --max-seconds 14400 >"$out" &
  proxy_pids+=($!)
  for _ in $(seq 100); do [[ -s "$out" ]] && break; sleep 0.1; done
  proxied=$(node -e 'const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${p.host}:${p.port}`)' "$out")
}

# Prints one database's figures: $2 and $4 are the direct runs before and after the Spark
# run $3 (JSON lines). The ceiling in each direction is the faster of the two direct runs, so
# neither the order of the runs nor the database's state after the first one flatters the
# ratio.
report() {
  NAME="$1" BEFORE="$2" SPARK="$3" AFTER="$4" .venv/bin/python - <<'PY'
import json, os
before, s, after = (json.loads(os.environ[k]) for k in ("BEFORE", "SPARK", "AFTER"))
print(f"{os.environ['NAME']}  rows={s['rows']:,}")
for direction in ("write", "read"):
    key = f"{direction}_rows_per_s"
    ceiling = max(before[key], after[key])
    print(
        f"  {direction + ':':<6} spark {s[key]:>10,.0f} rows/s   direct {ceiling:>10,.0f} rows/s   ratio {s[key] / ceiling:.2f}"
        f"   (direct before {before[key]:,.0f}, after {after[key]:,.0f})"
    )
print(f"  service peak RSS: {s['service_peak_rss_mib']:.0f} MiB")
PY
}

if wants dynamodb; then
  endpoint=$(DYNAMODB_LOCAL_HEAP=${DYNAMODB_LOCAL_HEAP:-6g} node scripts/local-dynamodb.mjs start --state-dir "$dynamodb_state")
  echo "DynamoDB Local at $endpoint; $partitions Spark tasks x $write_concurrency requests in flight; $segments scan segments, $partitions at a time"
  node bench/direct-dynamodb.mjs --endpoint "$endpoint" --rows "$database_warmup_rows" --concurrency $((partitions * write_concurrency)) --segments "$segments" --read-concurrency "$partitions" --table bench_warmup >/dev/null
  # The database warms up directly; the measured runs go through the proxy.
  if [[ "$latency_ms" != 0 ]]; then
    start_latency_proxy "${endpoint#http://}"
    endpoint="http://$proxied"
    echo "  both paths through the latency proxy at $endpoint (+${latency_ms} ms each way)"
  fi
  for rows in "${sizes[@]}"; do
    direct() { node bench/direct-dynamodb.mjs --endpoint "$endpoint" --rows "$rows" --concurrency $((partitions * write_concurrency)) --segments "$segments" --read-concurrency "$partitions"; }
    before=$(direct)
    spark=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/dynamodb_bench.py --endpoint "$endpoint" --rows "$rows" \
      --partitions "$partitions" --write-concurrency "$write_concurrency" --segments "$segments" --table "bench_spark_$rows" --warmup-rows "$warmup_rows")
    after=$(direct)
    report DynamoDB "$before" "$spark" "$after"
  done
  node scripts/local-dynamodb.mjs stop --state-dir "$dynamodb_state" >/dev/null 2>&1 || true
fi

if wants cassandra; then
  info=$(CASSANDRA_HEAP=${CASSANDRA_HEAP:-2g} node scripts/local-cassandra.mjs start --state-dir "$cassandra_state")
  field() { node -p "JSON.parse(process.argv[1]).$1" "$info"; }
  export CASSANDRA_HOST CASSANDRA_PORT CASSANDRA_USERNAME CASSANDRA_PASSWORD CASSANDRA_LOCAL_DC
  CASSANDRA_HOST=$(field host)
  CASSANDRA_PORT=$(field port)
  CASSANDRA_USERNAME=$(field username)
  CASSANDRA_PASSWORD=$(field password)
  CASSANDRA_LOCAL_DC=$(field localDataCenter)
  echo "Cassandra $(field version) at $CASSANDRA_HOST:$CASSANDRA_PORT; $partitions Spark tasks x $cassandra_concurrency requests in flight; $cassandra_splits token ranges, $partitions at a time"
  node bench/direct-cassandra.mjs --rows "$database_warmup_rows" --concurrency $((partitions * cassandra_concurrency)) --splits "$cassandra_splits" --read-concurrency "$partitions" --table bench_warmup >/dev/null
  if [[ "$latency_ms" != 0 ]]; then
    start_latency_proxy "$CASSANDRA_HOST:$CASSANDRA_PORT"
    CASSANDRA_HOST=${proxied%:*}
    CASSANDRA_PORT=${proxied##*:}
    echo "  both paths through the latency proxy at $proxied (+${latency_ms} ms each way)"
  fi
  for rows in "${sizes[@]}"; do
    direct() { node bench/direct-cassandra.mjs --rows "$rows" --concurrency $((partitions * cassandra_concurrency)) --splits "$cassandra_splits" --read-concurrency "$partitions"; }
    before=$(direct)
    spark=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/cassandra_bench.py --rows "$rows" \
      --partitions "$partitions" --concurrency "$cassandra_concurrency" --read-partitions "$cassandra_splits" --table "bench_spark_$rows" --warmup-rows "$warmup_rows")
    after=$(direct)
    report Cassandra "$before" "$spark" "$after"
  done
fi
