#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently:
# npm packages (from package-lock.json), a Python venv with pyspark and the pinned
# dev tools, Apache Cassandra's jars from Maven Central (for the local Cassandra that tests
# and the quickstart run), the service build, and the Python shim installed into the venv.
# Needs: Node 20+, npm, Python 3.10+, Java 17 (for Spark, DynamoDB Local and Cassandra),
# Maven 3 and openssl (for the local Cassandra's jars and its TLS certificates).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not on PATH ($2)" >&2; exit 1; }; }
need node "Node.js 20 or newer"
need npm "npm"
need python3 "Python 3.10 or newer"
need java "Java 17 (Spark 4, DynamoDB Local and Cassandra run on it)"
need mvn "Maven 3, which fetches Apache Cassandra from Maven Central (e.g. apt-get install maven)"
need openssl "openssl, which makes the local Cassandra's TLS certificates"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "setup: Node $node_major found; Node 20 or newer is required" >&2; exit 1; }
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || { echo "setup: Java ${java_major:-?} found; Java 17 or newer is required" >&2; exit 1; }

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.setup-hash ] || [ "$(cat node_modules/.setup-hash)" != "$lock_hash" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.setup-hash
fi

req_hash=$( (cat requirements-dev.txt; python3 --version) | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.setup-hash ] || [ "$(cat .venv/.setup-hash)" != "$req_hash" ]; then
  say "Python venv (.venv) with pyspark and dev tools"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$req_hash" > .venv/.setup-hash
fi

# Apache Cassandra (cassandra-all and its runtime dependencies) for scripts/local-cassandra.mjs.
cassandra_lib="$root/.local/cassandra/lib"
pom_hash=$(sha256sum scripts/cassandra/pom.xml | cut -c1-16)
if [ ! -f "$cassandra_lib/.setup-hash" ] || [ "$(cat "$cassandra_lib/.setup-hash")" != "$pom_hash" ]; then
  say "Apache Cassandra jars from Maven Central (.local/cassandra/lib)"
  rm -rf "$cassandra_lib"
  mvn -q -B -f scripts/cassandra/pom.xml dependency:copy-dependencies -DoutputDirectory="$cassandra_lib"
  echo "$pom_hash" > "$cassandra_lib/.setup-hash"
fi

say "build the service and the Python stubs"
PYTHON="$root/.venv/bin/python" node scripts/build.mjs >/dev/null

say "install the Python shim into .venv"
.venv/bin/python -m pip install --quiet --no-deps --force-reinstall ./python-shim
.venv/bin/python -m pip check >/dev/null || .venv/bin/python -m pip check >&2
say "ready"
