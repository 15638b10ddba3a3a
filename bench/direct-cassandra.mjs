#!/usr/bin/env node
// The direct ceiling for Cassandra: the benchmark's rows written with prepared INSERTs and
// read back by token range by a plain Node cassandra-driver client, same concurrency as the
// Spark path, no Spark, no service. Prints one JSON line:
// {"write_rows_per_s":..., "read_rows_per_s":...}.
//
//   node bench/direct-cassandra.mjs --rows N --concurrency C --splits S --read-concurrency R [--keyspace K --table T]
//
// Connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD, CASSANDRA_LOCAL_DC (datacenter1).
// Same concurrency as the Spark path: C INSERTs in flight (Spark tasks x `concurrency`; every
// row is its own partition, so the service sends one statement per row too), and the token
// ring cut into S ranges (the Spark read's `read_partitions`) read R at a time (Spark's task
// slots), `--page-size` rows per page (the service's `read_page_size` default), each range
// fetching its next page while the current one is processed.
import { parseArgs } from "node:util";
import cassandra from "cassandra-driver";
import { benchRow, measureDirect } from "./rows.mjs";

const { types } = cassandra;
const { values } = parseArgs({
  options: {
    keyspace: { type: "string", default: "bench" },
    table: { type: "string", default: "bench_direct" },
    rows: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "200" },
    splits: { type: "string", default: "8" },
    "read-concurrency": { type: "string", default: "2" },
    "page-size": { type: "string", default: "5000" },
  },
});
const rows = Number(values.rows);
const concurrency = Number(values.concurrency);
const splits = Number(values.splits);
const readConcurrency = Number(values["read-concurrency"]);
const pageSize = Number(values["page-size"]);
const table = `${values.keyspace}.${values.table}`;
const env = process.env;

const client = new cassandra.Client({
  contactPoints: [env.CASSANDRA_HOST || "127.0.0.1"],
  protocolOptions: { port: Number(env.CASSANDRA_PORT || 9042) },
  localDataCenter: env.CASSANDRA_LOCAL_DC || "datacenter1",
  ...(env.CASSANDRA_USERNAME ? { authProvider: new cassandra.auth.PlainTextAuthProvider(env.CASSANDRA_USERNAME, env.CASSANDRA_PASSWORD ?? "") } : {}),
  socketOptions: { connectTimeout: 10_000, readTimeout: 60_000 },
  queryOptions: { captureStackTrace: false },
});

const insert = `INSERT INTO ${table} (id, name, age, score, balance, attrs) VALUES (?, ?, ?, ?, ?, ?)`;
const writeOptions = { prepare: true, consistency: types.consistencies.localQuorum, isIdempotent: true };

async function writeAll() {
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= rows) return;
      const row = benchRow(i);
      const params = [row.id, row.name, row.age, row.score, types.BigDecimal.fromString(row.balance), row.attrs];
      await client.execute(insert, params, writeOptions);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** The Murmur3 ring (-2^63, 2^63 - 1] cut into `splits` ranges (start exclusive, end inclusive). */
function tokenRanges() {
  const min = -(2n ** 63n);
  const max = 2n ** 63n - 1n;
  const span = max - min;
  return Array.from({ length: splits }, (_, i) => [min + (span * BigInt(i)) / BigInt(splits), i === splits - 1 ? max : min + (span * BigInt(i + 1)) / BigInt(splits)]);
}

async function readAll() {
  const query = `SELECT id, name, age, score, balance, attrs FROM ${table} WHERE token(id) > ? AND token(id) <= ?`;
  const ranges = tokenRanges();
  let count = 0;
  let nextRange = 0;
  async function worker() {
    while (nextRange < ranges.length) {
      const [start, end] = ranges[nextRange++];
      const params = [types.Long.fromString(String(start)), types.Long.fromString(String(end))];
      const fetch = (pageState) =>
        client.execute(query, params, { prepare: true, consistency: types.consistencies.localOne, fetchSize: pageSize, autoPage: false, pageState });
      let page = fetch(undefined);
      while (page) {
        const result = await page;
        page = result.pageState ? fetch(result.pageState) : undefined;
        for (const row of result.rows) if (row.id) count++;
      }
    }
  }
  await Promise.all(Array.from({ length: readConcurrency }, worker));
  return count;
}

try {
  await client.connect();
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${values.keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await client.execute(`DROP TABLE IF EXISTS ${table}`);
  await client.execute(`CREATE TABLE ${table} (id text PRIMARY KEY, name text, age int, score double, balance decimal, attrs map<text, text>)`);

  const figures = await measureDirect(rows, writeAll, readAll);
  await client.execute(`DROP TABLE IF EXISTS ${table}`);
  console.log(JSON.stringify(figures));
} finally {
  await client.shutdown();
}
