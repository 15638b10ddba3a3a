#!/usr/bin/env node
// Does grouping rows that share a partition key into UNLOGGED batches speed up the
// Cassandra writer? Writes the same rows with the backend's own writer (writeRows) against
// a real Cassandra, once sending one statement per request and once grouping each
// buffer's rows by partition key, with the same concurrency and buffer size, and prints
// rows/s for each. Three data shapes:
//   distinct     every row its own partition (nothing to group)
//   clustered    100 rows per partition, rows of a partition adjacent (e.g. time series per user)
//   shuffled     the clustered rows in random order (a 1000-row buffer rarely holds two rows of one partition)
//
//   node bench/cassandra-batching.mjs [--rows 200000] [--concurrency 100] [--rows-per-batch 1000] [--repeat 2]
//                                     [--info connection.json]   (default: start a Cassandra with scripts/local-cassandra.mjs)
import { build } from "esbuild";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "200000" },
    concurrency: { type: "string", default: "100" },
    "rows-per-batch": { type: "string", default: "1000" },
    repeat: { type: "string", default: "2" },
    info: { type: "string" },
  },
});
const totalRows = Number(values.rows);
const concurrency = Number(values.concurrency);
const rowsPerBatch = Number(values["rows-per-batch"]);
const repeat = Number(values.repeat);

// Bundle the backend's TypeScript with its dependencies into one file outside the work tree
// (so nothing is left for the linter); Arrow's classes come from the same bundle.
const bundle = join(mkdtempSync(join(tmpdir(), "cassandra-batching-")), "backend.mjs");
await build({
  stdin: {
    contents: `
      export { writeRows } from "./src/backends/cassandra/writer.ts";
      export { createDriverApi, clientConfigFromOptions } from "./src/backends/cassandra/client.ts";
      export { parseCassandraOptions } from "./src/backends/cassandra/options.ts";
      export { planWriteTarget, decodeWritePlan, errorContext } from "./src/backends/cassandra/planner.ts";
      export { BatchBuilder } from "./src/arrow/values.ts";
      export { silentLogger } from "./src/core/logger.ts";
      export { systemClock } from "./src/backends/dynamodb/client.ts";
      export { Field, Int32, Int64, Schema, Utf8 } from "apache-arrow";
    `,
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  outfile: bundle,
  logLevel: "warning",
});
const backend = await import(pathToFileURL(bundle).href);
rmSync(dirname(bundle), { recursive: true, force: true });
const { Field, Int32, Int64, Schema, Utf8 } = backend;

let info;
let stop = async () => {};
if (values.info) {
  info = JSON.parse(readFileSync(values.info, "utf8"));
} else {
  const { startCassandra } = await import(pathToFileURL(join(root, "scripts", "local-cassandra.mjs")).href);
  const started = await startCassandra({});
  info = started;
  stop = started.stop;
}

const keyspace = "bench_batching";
const table = "rows";
const options = (extra = {}) =>
  backend.parseCassandraOptions(
    {
      host: info.host,
      port: String(info.port),
      keyspace,
      table,
      username: info.username,
      password: info.password,
      local_datacenter: info.localDataCenter,
      concurrency: String(concurrency),
      rows_per_batch: String(rowsPerBatch),
      ...extra,
    },
    "write",
  );
const writeOptions = options();
const config = backend.clientConfigFromOptions(writeOptions);
const api = backend.createDriverApi(config);
const schema = new Schema([new Field("p", new Int32()), new Field("c", new Int32()), new Field("v", new Utf8()), new Field("n", new Int64())]);

async function ddl(query) {
  await api.execute(query, [], { consistency: "ALL" });
}

/** Row i of a shape as [partition, clustering]. */
function keysFor(shape) {
  const keys = [];
  if (shape === "distinct") for (let i = 0; i < totalRows; i++) keys.push([i, 0]);
  else for (let i = 0; i < totalRows; i++) keys.push([Math.floor(i / 100), i % 100]);
  if (shape === "shuffled") {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [keys[i], keys[j]] = [keys[j], keys[i]];
    }
  }
  return keys;
}

function batchesFor(shape) {
  const keys = keysFor(shape);
  const batches = [];
  for (let start = 0; start < keys.length; start += 10_000) {
    const builder = new backend.BatchBuilder(schema);
    for (let i = start; i < Math.min(start + 10_000, keys.length); i++) builder.appendRow([keys[i][0], keys[i][1], `value-${i}-${"x".repeat(40)}`, BigInt(i)]);
    batches.push(builder.flush());
  }
  return batches;
}

async function* iterate(batches) {
  yield* batches;
}

async function run(shape, batches, group) {
  await ddl(`TRUNCATE ${keyspace}.${table}`);
  const ctx = { api, config, username: writeOptions.username, logger: backend.silentLogger, signal: new AbortController().signal };
  const plan = backend.decodeWritePlan(await backend.planWriteTarget(ctx, writeOptions, schema, false, false));
  const started = performance.now();
  const result = await backend.writeRows({
    api,
    plan,
    batches: iterate(batches),
    concurrency,
    rowsPerBatch,
    maxRetries: 5,
    consistency: writeOptions.consistency,
    writeNulls: false,
    groupByPartition: group,
    clock: backend.systemClock,
    signal: new AbortController().signal,
    errorContext: backend.errorContext(ctx, writeOptions, "write"),
    logger: backend.silentLogger,
    partitionId: 0,
  });
  const seconds = (performance.now() - started) / 1000;
  const expected = batches.reduce((n, b) => n + b.numRows, 0);
  if (result.rowsWritten !== expected) throw new Error(`wrote ${result.rowsWritten} of ${expected} rows`);
  return { rowsPerSecond: Math.round(expected / seconds), seconds: Number(seconds.toFixed(2)), requests: result.requests, retries: result.retries };
}

try {
  await ddl(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await ddl(`DROP TABLE IF EXISTS ${keyspace}.${table}`);
  await ddl(`CREATE TABLE ${keyspace}.${table} (p int, c int, v text, n bigint, PRIMARY KEY (p, c))`);
  const results = [];
  for (const shape of ["distinct", "clustered", "shuffled"]) {
    const batches = batchesFor(shape);
    // Warm-up (JIT, prepared statements, memtables), not measured.
    await run(shape, batches.slice(0, 2), true);
    for (let r = 0; r < repeat; r++) {
      for (const group of [false, true]) {
        const measured = await run(shape, batches, group);
        const line = { shape, mode: group ? "grouped (unlogged batches per partition)" : "single statements", rows: totalRows, concurrency, rowsPerBatch, ...measured };
        results.push(line);
        console.log(JSON.stringify(line));
      }
    }
  }
  console.log("\nbest rows/s:");
  for (const shape of ["distinct", "clustered", "shuffled"]) {
    const best = (group) => Math.max(...results.filter((r) => r.shape === shape && r.mode.startsWith(group ? "grouped" : "single")).map((r) => r.rowsPerSecond));
    console.log(`  ${shape.padEnd(10)} single ${String(best(false)).padStart(7)}   grouped ${String(best(true)).padStart(7)}`);
  }
  await ddl(`DROP KEYSPACE ${keyspace}`);
} finally {
  await api.shutdown();
  await stop();
}
