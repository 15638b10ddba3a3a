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
#
# dynamodb-streams (in BENCH_DATABASES; not in the default list, as it has its own sizes):
# for each N in BENCH_STREAM_EVENTS (default "20000 100000"), N changes (N/2 inserts, then
# N/2 updates) are made to a table with a NEW_AND_OLD_IMAGES stream, then read from
# trim_horizon through Spark into the noop sink with trigger(availableNow=True), with
# Spark's default trigger, and with the default trigger and max_records_per_trigger
# BENCH_STREAM_MAX_RECORDS (5000: the next micro-batch is prefetched while one runs), against the direct ceiling: a plain Node GetRecords loop over the
# same shards (bench/direct-dynamodb-stream.mjs), run before and after the Spark path. Then
# the latency from a write to its event in a foreachBatch sink at a 1-second trigger, over
# BENCH_STREAM_LATENCY_WRITES (50) writes 200 ms apart (measured first, on a fresh database).
# The Spark path is warmed up first on BENCH_STREAM_WARMUP_EVENTS (10000) changes, unmeasured.
# DynamoDB Local's writes slow down as its streams grow: making 100,000 changes took 26
# minutes on the 2-core machine (20,000: one minute).
#
# cassandra-stream (in BENCH_DATABASES; not in the default list): a fresh local Cassandra
# of its own; for each N in BENCH_STREAM_ROWS (default 200000), N of the benchmark's rows
# with a `ts timestamp` (all older than the stream's lag) are written through the connector
# into two tables, one with an SAI index on ts and one with ts as its first clustering
# column, and each is read from `earliest` through Spark into the noop sink with
# trigger(availableNow=True), with Spark's default trigger, and with the default trigger and
# max_rows_per_trigger BENCH_STREAM_MAX_ROWS (default N/4), against the batch read of the
# same table (spark.read.format("pycassandra"), run before and after the streaming reads;
# the faster counts). First the latency from an insert to its row in a foreachBatch sink at a
# 1-second trigger, with stream_lag_ms 500 and 5000 (the default), over
# BENCH_STREAM_LATENCY_WRITES (50) inserts 200 ms apart, each with ts = the time it was sent.
# The Spark path and Cassandra are warmed up first, unmeasured, on a table of
# BENCH_STREAM_WARMUP_ROWS (20000) rows of each kind (a batch read and three streaming reads:
# a fresh Cassandra's first SAI reads cost it four times the CPU of later ones).
# Prints Markdown tables. BENCH_LATENCY_MS does not apply to the streaming benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sizes=("${@:-1000000}")
databases=${BENCH_DATABASES:-dynamodb,cassandra}
stream_events=(${BENCH_STREAM_EVENTS:-20000 100000})
stream_warmup_events=${BENCH_STREAM_WARMUP_EVENTS:-10000}
stream_latency_writes=${BENCH_STREAM_LATENCY_WRITES:-50}
stream_rows=(${BENCH_STREAM_ROWS:-200000})
stream_warmup_rows=${BENCH_STREAM_WARMUP_ROWS:-20000}
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
    dynamodb | cassandra | dynamodb-streams | cassandra-stream) ;;
    *) echo "bench: unknown database '$database' in BENCH_DATABASES (expected dynamodb, cassandra, dynamodb-streams and/or cassandra-stream)" >&2; exit 2 ;;
  esac
done
wants() { [[ ",$databases," == *",$1,"* ]]; }

bash scripts/setup.sh
# Spark's Python workers must run the venv's interpreter (it has the shim).
export PYSPARK_PYTHON="$root/.venv/bin/python"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
dynamodb_state="$root/.local/bench-dynamodb"
cassandra_state="$root/.local/bench-cassandra"
streams_state="$root/.local/bench-dynamodb-streams"
cassandra_stream_state="$root/.local/bench-cassandra-stream"
runtime=$(mktemp -d /tmp/spark-conduit-bench.XXXXXX)
proxy_pids=()
cleanup() {
  for pid in "${proxy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python -m spark_conduit stop >/dev/null 2>&1 || true
  if wants dynamodb; then node scripts/local-dynamodb.mjs stop --state-dir "$dynamodb_state" >/dev/null 2>&1 || true; fi
  if wants cassandra; then node scripts/local-cassandra.mjs stop --state-dir "$cassandra_state" >/dev/null 2>&1 || true; fi
  if wants dynamodb-streams; then node scripts/local-dynamodb.mjs stop --state-dir "$streams_state" >/dev/null 2>&1 || true; fi
  if wants cassandra-stream; then node scripts/local-cassandra.mjs stop --state-dir "$cassandra_stream_state" >/dev/null 2>&1 || true; fi
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

# Starts a local Cassandra with its state in $1 and exports its connection (CASSANDRA_HOST, _PORT,
# _USERNAME, _PASSWORD, _LOCAL_DC) for the benchmark's clients; sets cassandra_version and
# cassandra_pid.
start_cassandra() {
  local info
  info=$(CASSANDRA_HEAP=${CASSANDRA_HEAP:-2g} node scripts/local-cassandra.mjs start --state-dir "$1")
  field() { node -p "JSON.parse(process.argv[1]).$1" "$info"; }
  export CASSANDRA_HOST CASSANDRA_PORT CASSANDRA_USERNAME CASSANDRA_PASSWORD CASSANDRA_LOCAL_DC
  CASSANDRA_HOST=$(field host)
  CASSANDRA_PORT=$(field port)
  CASSANDRA_USERNAME=$(field username)
  CASSANDRA_PASSWORD=$(field password)
  CASSANDRA_LOCAL_DC=$(field localDataCenter)
  cassandra_version=$(field version)
  cassandra_pid=$(field pid)
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
  start_cassandra "$cassandra_state"
  echo "Cassandra $cassandra_version at $CASSANDRA_HOST:$CASSANDRA_PORT; $partitions Spark tasks x $cassandra_concurrency requests in flight; $cassandra_splits token ranges, $partitions at a time"
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
  node scripts/local-cassandra.mjs stop --state-dir "$cassandra_state" >/dev/null 2>&1 || true
fi

# Prints the streaming figures for one N: $2 and $4 are the direct reads before and after the
# Spark runs $3 (one JSON line per trigger); the ceiling is the faster direct read.
stream_report() {
  EVENTS="$1" BEFORE="$2" SPARK="$3" AFTER="$4" .venv/bin/python - <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from bench_common import trigger_split
before, after = json.loads(os.environ["BEFORE"]), json.loads(os.environ["AFTER"])
ceiling = max(before["events_per_s"], after["events_per_s"])
print(f"DynamoDB Streams  events={int(os.environ['EVENTS']):,}  direct {ceiling:,.0f} events/s (before {before['events_per_s']:,.0f}, after {after['events_per_s']:,.0f}; {before['cpu_us_per_event']} us CPU per event)")
for line in os.environ["SPARK"].splitlines():
    s = json.loads(line)
    # Spark's split of the time: reading ahead (latestOffset), the tasks (addBatch), and the rest (query start, commits, stop).
    totals = trigger_split(s["seconds"], s["triggers"])
    split = f"latestOffset {totals['latestOffset']:.1f} s, addBatch {totals['addBatch']:.1f} s, outside triggers {totals['outside']:.1f} s"
    # Without the query's start and stop (a fixed second or so): the rate of the micro-batches themselves.
    steady = s["events"] / totals["triggerExecution"] if totals["triggerExecution"] else 0
    split += f"; in triggers {steady:,.0f} events/s, ratio {steady / ceiling:.2f}"
    print(
        f"  {s['trigger'] + ':':<14} spark {s['events_per_s']:>8,.0f} events/s   ratio {s['events_per_s'] / ceiling:.2f}   {s['seconds']:.1f} s"
        f" ({len(s['triggers'])} triggers; {split})   service peak RSS {s['service_peak_rss_mib']:.0f} MiB,"
        f" CPU per event: service {s['service_cpu_us_per_event']} us, Spark {s['spark_cpu_us_per_event']} us"
    )
PY
}

if wants dynamodb-streams; then
  endpoint=$(DYNAMODB_LOCAL_HEAP=${DYNAMODB_LOCAL_HEAP:-2g} node scripts/local-dynamodb.mjs start --state-dir "$streams_state")
  echo "DynamoDB Local (streams) at $endpoint; $partitions Spark task slots"
  stream_tool() { node bench/direct-dynamodb-stream.mjs "$@" --endpoint "$endpoint"; }
  # Latency first, while DynamoDB Local is fresh: its writes slow down as its streams grow.
  stream_tool prepare --table bench_stream_latency --events 0 >/dev/null
  latency=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/dynamodb_stream_bench.py latency --endpoint "$endpoint" --table bench_stream_latency \
    --partitions "$partitions" --writes "$stream_latency_writes" --interval-ms 200)
  node -p 'const l = JSON.parse(process.argv[1]); `  latency write -> foreachBatch at a 1 s trigger, ${l.writes} writes: p50 ${Math.round(l.p50_ms)} ms, p95 ${Math.round(l.p95_ms)} ms, max ${Math.round(l.max_ms)} ms (${l.micro_batches} micro-batches, median ${l.batch_median_ms.triggerExecution} ms each: latestOffset ${l.batch_median_ms.latestOffset}, addBatch ${l.batch_median_ms.addBatch})`' "$latency"
  stream_tool prepare --table bench_stream_warmup --events "$stream_warmup_events" >/dev/null
  for events in "${stream_events[@]}"; do
    table="bench_stream_$events"
    written=$(stream_tool prepare --table "$table" --events "$events")
    echo "  $events changes made in $(node -p "JSON.parse(process.argv[1]).write_seconds.toFixed(1)" "$written") s"
    before=$(stream_tool read --table "$table" --events "$events")
    spark=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/dynamodb_stream_bench.py throughput --endpoint "$endpoint" --table "$table" \
      --events "$events" --partitions "$partitions" --triggers available-now,default,limited --max-records "${BENCH_STREAM_MAX_RECORDS:-5000}" --warmup-table bench_stream_warmup --warmup-events "$stream_warmup_events")
    after=$(stream_tool read --table "$table" --events "$events")
    stream_report "$events" "$before" "$spark" "$after"
  done
fi

# Prints the Cassandra streaming figures as Markdown tables: $1 the latency lines (one JSON line
# per stream_lag_ms), $2 the throughput lines (one JSON line per table; the ceiling is the
# faster of the two batch reads).
cassandra_stream_report() {
  LATENCY="$1" THROUGHPUT="$2" WRITES="$stream_latency_writes" .venv/bin/python - <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from bench_common import trigger_split
for line in os.environ["THROUGHPUT"].splitlines():
    t = json.loads(line)
    rows = t["rows"]
    what = {"sai": "ts with an SAI index", "clustering": "ts the first clustering column"}[t["table"]]
    before, after = t["batch"]
    batch = max(before, after, key=lambda b: b["rows_per_s"])
    ceiling = batch["rows_per_s"]
    cpu = lambda r: ", ".join(f"{v:g}" for v in r["cpu_us_per_row"].values())
    print(f"\n| {rows:,} rows, {what} | rows/s | ratio | time | tasks | latestOffset | addBatch | outside triggers | in triggers: rows/s, ratio | CPU us/row: {', '.join(batch['cpu_us_per_row'])} | service peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| batch read | {ceiling:,.0f} ({before['rows_per_s']:,.0f} before, {after['rows_per_s']:,.0f} after) | 1 | {batch['seconds']:.1f} s"
        f" | {batch['tasks']} | | | | | {cpu(batch)} | {batch['service_peak_rss_mib']:.0f} MiB |"
    )
    for s in t["stream"]:
        name = {"available-now": "availableNow", "default": "default trigger"}.get(s["trigger"], s["trigger"])
        if "max_rows_per_trigger" in s:
            name += f" (max_rows_per_trigger {s['max_rows_per_trigger']:,})"
        split = trigger_split(s["seconds"], s["triggers"])
        # Without the query's start and stop: the rate of the micro-batches themselves.
        steady = rows / split["triggerExecution"] if split["triggerExecution"] else 0
        print(
            f"| {name}, {s['micro_batches']} micro-batch{'es' if s['micro_batches'] != 1 else ''} | {s['rows_per_s']:,.0f} | {s['rows_per_s'] / ceiling:.2f} | {s['seconds']:.1f} s"
            f" | {s['tasks']} | {split['latestOffset']:.1f} s | {split['addBatch']:.1f} s | {split['outside']:.1f} s | {steady:,.0f}, {steady / ceiling:.2f}"
            f" | {cpu(s)} | {s['service_peak_rss_mib']:.0f} MiB |"
        )
latency = [json.loads(line) for line in os.environ["LATENCY"].splitlines()]
if latency:
    print(f"\n| insert -> foreachBatch, 1 s trigger, {int(os.environ['WRITES'])} inserts 200 ms apart | p50 | p95 | max | micro-batches | median micro-batch: all, latestOffset, addBatch |")
    print("|---|---|---|---|---|---|")
    for l in latency:
        m = l["batch_median_ms"]
        print(
            f"| stream_lag_ms {l['stream_lag_ms']} | {l['p50_ms']:,.0f} ms | {l['p95_ms']:,.0f} ms | {l['max_ms']:,.0f} ms | {l['micro_batches']}"
            f" | {m['triggerExecution']:,.0f}, {m['latestOffset']:,.0f}, {m['addBatch']:,.0f} ms |"
        )
PY
}

if wants cassandra-stream; then
  start_cassandra "$cassandra_stream_state"
  echo "Cassandra $cassandra_version (streaming reads) at $CASSANDRA_HOST:$CASSANDRA_PORT; $partitions Spark task slots"
  # Latency first, on the fresh database.
  latency=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/cassandra_stream_bench.py latency \
    --partitions "$partitions" --writes "$stream_latency_writes" --interval-ms 200 --lags 500,5000)
  cassandra_stream_report "$latency" ""
  for rows in "${stream_rows[@]}"; do
    spark=$(SPARK_CONDUIT_RUNTIME_DIR="$runtime" .venv/bin/python bench/cassandra_stream_bench.py throughput --rows "$rows" \
      --partitions "$partitions" --warmup-rows "$stream_warmup_rows" --max-rows "${BENCH_STREAM_MAX_ROWS:-0}" --cassandra-pid "$cassandra_pid")
    cassandra_stream_report "" "$spark"
  done
fi
