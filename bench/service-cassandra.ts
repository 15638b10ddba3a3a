/**
 * The service's own share of a Cassandra write and read, without Spark or gRPC: the
 * benchmark's rows as Arrow IPC (as the Python shim sends them, 10,000 rows a message)
 * decoded and written by the connector with `--tasks` tasks at once, then read back by
 * token range and encoded to IPC as the Read handler does. Prints rows/s and the
 * process's CPU time per row for each direction, so a change to the conversions can be
 * measured in seconds instead of through Spark. `--profile PREFIX` writes a CPU profile of
 * each direction (PREFIX-write.cpuprofile, PREFIX-read.cpuprofile; open them in Chrome's
 * DevTools), without the set-up.
 *
 *   npm run bench:service -- --rows 200000 [--tasks 2 --concurrency 100 --read-partitions 8 --profile PREFIX]
 *
 * Connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD (scripts/bench.sh sets them).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { parseArgs } from "node:util";
import { Decimal, Field, Float64, Int32, makeBuilder, Map_, RecordBatch, Schema, Struct, Utf8, vectorFromArray, makeData } from "apache-arrow";
import { decodeBatches, encodeBatch } from "../src/arrow/ipc.js";
import { bigIntToWords } from "../src/arrow/values.js";
import { silentLogger } from "../src/core/logger.js";
import { createCassandraConnector } from "../src/backends/cassandra/connector.js";
import { createDriverApi, clientConfigFromOptions } from "../src/backends/cassandra/client.js";
import { parseCassandraOptions } from "../src/backends/cassandra/options.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "200000" },
    tasks: { type: "string", default: "2" },
    concurrency: { type: "string", default: "100" },
    "read-partitions": { type: "string", default: "8" },
    keyspace: { type: "string", default: "bench" },
    table: { type: "string", default: "bench_service" },
    profile: { type: "string" },
  },
});
const rows = Number(values.rows);
const tasks = Number(values.tasks);
const env = process.env;
const options: Record<string, string> = {
  host: env.CASSANDRA_HOST ?? "127.0.0.1",
  port: env.CASSANDRA_PORT ?? "9042",
  keyspace: values.keyspace!,
  table: values.table!,
  ...(env.CASSANDRA_USERNAME ? { username: env.CASSANDRA_USERNAME, password: env.CASSANDRA_PASSWORD ?? "" } : {}),
};
const BATCH_ROWS = 10_000;

const mapType = new Map_<Utf8, Utf8>(new Field("entries", new Struct<{ key: Utf8; value: Utf8 }>([new Field("key", new Utf8(), false), new Field("value", new Utf8(), true)]), false));
const schema = new Schema([
  new Field("id", new Utf8(), true),
  new Field("name", new Utf8(), true),
  new Field("age", new Int32(), true),
  new Field("score", new Float64(), true),
  new Field("balance", new Decimal(2, 18, 128), true),
  new Field("attrs", mapType, true),
]);

/** Rows [start, end) of bench/rows.mjs as one IPC message. */
function ipcBatch(start: number, end: number): Uint8Array {
  const n = end - start;
  const ids: string[] = [];
  const names: string[] = [];
  const ages = new Int32Array(n);
  const scores = new Float64Array(n);
  const balance = makeBuilder({ type: schema.fields[4]!.type });
  const attrs = makeBuilder({ type: mapType });
  for (let i = start; i < end; i++) {
    ids.push(`id-${String(i).padStart(9, "0")}`);
    names.push(`name-${i}`);
    ages[i - start] = i % 100;
    scores[i - start] = i * 0.5;
    balance.append(bigIntToWords(BigInt(i), 4));
    attrs.append(new Map([["city", `c${i % 10}`], ["zip", String(i % 99999)]]));
  }
  const children = [vectorFromArray(ids, new Utf8()), vectorFromArray(names, new Utf8()), vectorFromArray(ages), vectorFromArray(scores), balance.finish().toVector(), attrs.finish().toVector()].map((v) => v.data[0]!);
  const data = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
  return encodeBatch(new RecordBatch(schema, data));
}

/** Runs `body` under the V8 CPU profiler when --profile is given. */
async function profiled<T>(name: string, body: () => Promise<T>): Promise<T> {
  if (values.profile === undefined) return body();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  try {
    return await body();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(`${values.profile}-${name}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  }
}

async function main(): Promise<void> {
  const admin = createDriverApi(clientConfigFromOptions(parseCassandraOptions(options, "read")));
  await admin.execute(`CREATE KEYSPACE IF NOT EXISTS ${options.keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`, [], { consistency: "ONE" });
  await admin.execute(`DROP TABLE IF EXISTS ${options.keyspace}.${options.table}`, [], { consistency: "ONE" });
  await admin.execute(`CREATE TABLE ${options.keyspace}.${options.table} (id text PRIMARY KEY, name text, age int, score double, balance decimal, attrs map<text, text>)`, [], { consistency: "ONE" });

  const perTask = Math.ceil(rows / tasks);
  const messages: Uint8Array[][] = [];
  for (let t = 0; t < tasks; t++) {
    const list: Uint8Array[] = [];
    for (let s = t * perTask; s < Math.min(rows, (t + 1) * perTask); s += BATCH_ROWS) list.push(ipcBatch(s, Math.min(s + BATCH_ROWS, (t + 1) * perTask, rows)));
    messages.push(list);
  }

  const connector = createCassandraConnector(silentLogger);
  const signal = new AbortController().signal;
  const writeOptions = { ...options, concurrency: values.concurrency! };
  const plan = await connector.planWrite({ options: writeOptions, schema, overwrite: false, streaming: false, signal });

  let cpu = process.cpuUsage();
  let t0 = performance.now();
  const results = await profiled("write", () => Promise.all(
    messages.map((list, partitionId) =>
      connector.write({
        options: writeOptions,
        schema,
        writePlan: plan,
        task: { partitionId, taskAttemptId: partitionId, batchId: 0 },
        batches: (async function* () {
          for (const bytes of list) yield* decodeBatches(bytes);
        })(),
        signal,
      }),
    ),
  ));
  const writeSeconds = (performance.now() - t0) / 1000;
  const writeCpu = process.cpuUsage(cpu);
  const written = results.reduce((n, r) => n + r.rowsWritten, 0);
  if (written !== rows) throw new Error(`wrote ${written} rows, expected ${rows}`);

  const readOptions = { ...options, read_partitions: values["read-partitions"]! };
  cpu = process.cpuUsage();
  t0 = performance.now();
  const partitions = await connector.planRead({ options: readOptions, schema, signal });
  let next = 0;
  let read = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < partitions.length) {
      const partition = partitions[next++]!;
      for await (const batch of connector.read({ options: readOptions, schema, partition, signal })) {
        read += batch.numRows;
        bytes += encodeBatch(batch).byteLength;
      }
    }
  };
  await profiled("read", () => Promise.all(Array.from({ length: tasks }, worker)));
  const readSeconds = (performance.now() - t0) / 1000;
  const readCpu = process.cpuUsage(cpu);
  if (read !== rows) throw new Error(`read ${read} rows, expected ${rows}`);

  await admin.execute(`DROP TABLE IF EXISTS ${options.keyspace}.${options.table}`, [], { consistency: "ONE" });
  await connector.close();
  await admin.shutdown();
  const usPerRow = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / rows;
  console.log(
    JSON.stringify({
      rows,
      write_rows_per_s: Math.round(rows / writeSeconds),
      write_cpu_us_per_row: Number(usPerRow(writeCpu).toFixed(1)),
      read_rows_per_s: Math.round(rows / readSeconds),
      read_cpu_us_per_row: Number(usPerRow(readCpu).toFixed(1)),
      read_ipc_mib: Math.round(bytes / 2 ** 20),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
