#!/usr/bin/env node
// A tiny cqlsh for the local Cassandra (scripts/local-cassandra.mjs), with the npm
// cassandra-driver, so nothing needs Python's cassandra-driver or a cqlsh install. The
// quickstart uses it to create its keyspace and table (the connector writes and reads
// rows, it runs no DDL), the end-to-end tests to set up tables and read rows back.
//
//   node scripts/cql.mjs "CREATE KEYSPACE ..." "CREATE TABLE ..." "SELECT JSON * FROM ks.t"
//
// Each argument is one CQL statement, run in order (schema changes wait for schema
// agreement). For each statement one line is printed: a JSON array of the rows it returned
// ([] for statements without rows). Rows of `SELECT JSON` are printed as Cassandra renders
// them (decimals keep every digit); other rows as objects with uuids, inets, decimals, dates
// and times as strings, bigints as numbers when exact, blobs as "0x..." hex.
//
// Connection, from the environment (the names scripts/quickstart.sh exports):
//   CASSANDRA_HOST (127.0.0.1), CASSANDRA_PORT (9042), CASSANDRA_USERNAME, CASSANDRA_PASSWORD,
//   CASSANDRA_CA_CERT (connect with TLS, trusting this CA), CASSANDRA_LOCAL_DC (datacenter1).
import { readFileSync } from "node:fs";
import cassandra from "cassandra-driver";

const { types } = cassandra;
const env = process.env;
const statements = process.argv.slice(2);
if (statements.length === 0 || statements.some((s) => s === "-h" || s === "--help")) {
  process.stderr.write('usage: node scripts/cql.mjs "CQL statement" ...  (connection from CASSANDRA_HOST, _PORT, _USERNAME, _PASSWORD, _CA_CERT)\n');
  process.exit(2);
}

const host = env.CASSANDRA_HOST || "127.0.0.1";
const client = new cassandra.Client({
  contactPoints: [host],
  protocolOptions: { port: Number(env.CASSANDRA_PORT || 9042) },
  localDataCenter: env.CASSANDRA_LOCAL_DC || "datacenter1",
  ...(env.CASSANDRA_USERNAME ? { authProvider: new cassandra.auth.PlainTextAuthProvider(env.CASSANDRA_USERNAME, env.CASSANDRA_PASSWORD ?? "") } : {}),
  ...(env.CASSANDRA_CA_CERT ? { sslOptions: { ca: [readFileSync(env.CASSANDRA_CA_CERT)], rejectUnauthorized: true, servername: "localhost" } } : {}),
  socketOptions: { connectTimeout: 10_000, readTimeout: 60_000 },
  queryOptions: { fetchSize: 5000 },
});

/** Plain JSON for a driver value (see the header for the rendering). */
function plain(value) {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return `0x${value.toString("hex")}`;
  if (value instanceof types.Long) {
    const n = Number(value.toString());
    return Number.isSafeInteger(n) ? n : value.toString();
  }
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof types.Tuple) return value.values().map(plain);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(plain(k)), plain(v)]));
  if (value instanceof Set || Array.isArray(value)) return [...value].map(plain);
  if (
    value instanceof types.Uuid ||
    value instanceof types.InetAddress ||
    value instanceof types.BigDecimal ||
    value instanceof types.Integer ||
    value instanceof types.LocalDate ||
    value instanceof types.LocalTime ||
    value instanceof types.Duration
  ) {
    return value.toString();
  }
  if (typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

/** Every row of the statement (all pages). */
async function allRows(cql) {
  const rows = [];
  let pageState;
  let columns;
  do {
    const result = await client.execute(cql, [], { pageState, autoPage: false });
    columns ??= result.columns ?? [];
    rows.push(...(result.rows ?? []));
    pageState = result.pageState ?? undefined;
  } while (pageState);
  return { rows, columns };
}

async function main() {
  await client.connect();
  for (const cql of statements) {
    const { rows, columns } = await allRows(cql);
    if (columns.length === 1 && columns[0].name === "[json]") {
      // Cassandra's own JSON, untouched (exact decimals and bigints).
      process.stdout.write(`[${rows.map((row) => row["[json]"]).join(",")}]\n`);
    } else {
      process.stdout.write(`${JSON.stringify(rows.map((row) => Object.fromEntries(columns.map((c) => [c.name, plain(row[c.name])]))))}\n`);
    }
  }
}

main()
  .catch((error) => {
    process.stderr.write(`cql: ${error.name}: ${error.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => client.shutdown().catch(() => undefined));
