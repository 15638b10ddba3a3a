/**
 * The Cassandra connector against a real Cassandra 5 (single node, 16 vnodes, password
 * authentication, client TLS optional on the native port), started by the global setup.
 * This file uses its own keyspace. Writes go through the same calls Spark's tasks make
 * (PlanWrite once, Write per partition, concurrently), reads through Describe, PlanRead
 * and one Read per token-range partition.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createServer, type Server } from "node:net";
import cassandra from "cassandra-driver";
import { Bool, DataType, DateDay, Field, Int32, Int64, Schema, TimestampMicrosecond, Utf8, type RecordBatch } from "apache-arrow";
import type { Connector, WriteResult } from "../../src/core/connector.js";
import { silentLogger } from "../../src/core/logger.js";
import { DecimalValue, readValue, type PlainValue } from "../../src/arrow/values.js";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import { createCassandraConnector } from "../../src/backends/cassandra/connector.js";
import { decodeReadPartition, MURMUR3_BOUNDS } from "../../src/backends/cassandra/planner.js";
import "../support/provided-context.js";
import { connectWithKeyspace, dropKeyspace } from "../support/cassandra-keyspace.js";
import { rejection } from "../support/conduit-error.js";

const info = inject("cassandra");
const KS = `it_cassandra_${Date.now().toString(36)}`;

let connector: Connector;
let raw: cassandra.Client;

/** A fresh signal per call, as the transport gives every RPC its own. */
const fresh = () => new AbortController().signal;

function opts(table: string, extra: Record<string, string> = {}): Record<string, string> {
  return { host: info.host, port: String(info.port), keyspace: KS, table, username: info.username, password: info.password, ...extra };
}

async function cql(query: string, params: unknown[] = []): Promise<cassandra.types.ResultSet> {
  return raw.execute(query, params, { prepare: params.length > 0 });
}

beforeAll(async () => {
  connector = createCassandraConnector(silentLogger);
  raw = await connectWithKeyspace(info, KS);
});

afterAll(async () => {
  await connector?.close();
  await dropKeyspace(raw, KS);
});

function toBatch(schema: Schema, rows: PlainValue[][]): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (const row of rows) builder.appendRow(row);
  return builder.flush();
}

async function* fromBatches(batches: Iterable<RecordBatch>): AsyncGenerator<RecordBatch> {
  yield* batches;
}

/** Runs a write like Spark: PlanWrite, then every partition's Write concurrently. */
async function writeDataFrame(options: Record<string, string>, schema: Schema, partitions: Array<Iterable<RecordBatch>>, overwrite = false): Promise<WriteResult[]> {
  const writePlan = await connector.planWrite({ options, schema, overwrite, streaming: false, signal: fresh() });
  const results = await Promise.all(
    partitions.map((batches, partitionId) =>
      connector.write({ options, schema, writePlan, task: { partitionId, taskAttemptId: partitionId, batchId: 0 }, batches: fromBatches(batches), signal: fresh() }),
    ),
  );
  await connector.commitWrite({ options, writePlan, taskResults: results, batchId: 0, signal: fresh() });
  return results;
}

/** Runs a read like Spark: Describe (unless a schema is given), PlanRead, a Read per partition concurrently. */
async function readDataFrame(
  options: Record<string, string>,
  userSchema?: Schema,
): Promise<{ schema: Schema; rows: Record<string, PlainValue>[]; partitions: Uint8Array[]; batches: number }> {
  const described = await connector.describe({ options, userSchema, signal: fresh() });
  const schema = described.schema;
  const partitions = await connector.planRead({ options, schema, signal: fresh() });
  let batches = 0;
  const perPartition = await Promise.all(
    partitions.map(async (partition) => {
      const rows: Record<string, PlainValue>[] = [];
      for await (const batch of connector.read({ options, schema, partition, signal: fresh() })) {
        batches++;
        const columns = schema.fields.map((f, i) => [f.name, batch.getChildAt(i)!] as const);
        for (let r = 0; r < batch.numRows; r++) rows.push(Object.fromEntries(columns.map(([name, vector]) => [name, readValue(vector, r)])));
      }
      return rows;
    }),
  );
  return { schema, rows: perPartition.flat(), partitions, batches };
}

const schemaOf = (...fields: Array<[string, DataType]>) => new Schema(fields.map(([n, t]) => new Field(n, t, true)));
const byKey = (key: string) => (a: Record<string, PlainValue>, b: Record<string, PlainValue>) => (a[key]! < b[key]! ? -1 : a[key]! > b[key]! ? 1 : 0);

describe("Cassandra connector against Cassandra 5", () => {
  it("round-trips every CQL type, nulls, empty collections, nested UDTs, tuples, frozen collections and vectors", async () => {
    await cql(`CREATE TYPE ${KS}.address (street text, zip int, tags frozen<set<text>>)`);
    await cql(`CREATE TYPE ${KS}.person (name text, home frozen<address>)`);
    await cql(`CREATE TABLE ${KS}.all_types (
      id int PRIMARY KEY, t text, a ascii, vc varchar, ti tinyint, si smallint, i int, bi bigint, vi varint,
      f float, d double, dec decimal, b boolean, ts timestamp, dt date, tm time, bl blob, u uuid, tu timeuuid,
      ip inet, du duration, l list<int>, s set<text>, m map<text, bigint>, fl frozen<list<int>>,
      fm frozen<map<int, text>>, nested list<frozen<map<text, int>>>, p frozen<person>, pu person,
      tup tuple<int, text, frozen<list<double>>>, vec vector<float, 3>)`);
    const table = "all_types";
    const described = await connector.describe({ options: opts(table), userSchema: undefined, signal: fresh() });
    const schema = described.schema;
    expect(schema.fields.map((f) => f.name)).toEqual([
      "id", "a", "b", "bi", "bl", "d", "dec", "dt", "du", "f", "fl", "fm", "i", "ip", "l", "m", "nested", "p", "pu", "s", "si", "t", "ti", "tm", "ts", "tu", "tup", "u", "vc", "vec", "vi",
    ]);
    const types = Object.fromEntries(schema.fields.map((f) => [f.name, String(f.type)]));
    expect(types).toMatchObject({ id: "Int32", ti: "Int8", si: "Int16", bi: "Int64", vi: "Decimal[38e0]", dec: "Decimal[38e+18]", tm: "Int64", ts: "Timestamp<MICROSECOND, UTC>", dt: "Date32<DAY>" });

    const full: Record<string, PlainValue> = {
      id: 1,
      t: "héllo ✓",
      a: "plain ascii",
      vc: "varchar",
      ti: -128,
      si: 32767,
      i: -2147483648,
      bi: 9007199254740993n,
      vi: new DecimalValue(123456789012345678901234567890n, 0),
      f: Math.fround(1.5),
      d: 0.1,
      dec: DecimalValue.parse("-12345678901234567890.123456789012345678"),
      b: true,
      ts: 1704067200123000n,
      dt: 19724,
      tm: 49_500_000_000_123n,
      bl: new Uint8Array([0, 1, 255]),
      u: "550e8400-e29b-41d4-a716-446655440000",
      tu: "d2177dd0-eaa2-11de-a572-001b779c76e3",
      ip: "2001:db8::1",
      du: "1y2mo3d4h5m6s7ms8us9ns",
      l: [3, 1, 3],
      s: ["a", "b"],
      m: [
        ["k1", 1n],
        ["k2", -2n],
      ],
      fl: [],
      fm: [[1, "one"]],
      nested: [[["x", 1]], []],
      p: { name: "Ann", home: { street: "Main St", zip: 12345, tags: ["home"] } },
      pu: { name: "Bob", home: null },
      tup: { _1: 7, _2: null, _3: [0.5, 1.5] },
      vec: [0.5, -1, 2.25],
    };
    const empty: Record<string, PlainValue> = Object.fromEntries(schema.fields.map((f) => [f.name, null]));
    empty.id = 2;
    const emptyCollections: Record<string, PlainValue> = { ...empty, id: 3, l: [], s: [], m: [], fl: [], fm: [], nested: [], t: "" };
    const rows = [full, empty, emptyCollections].map((r) => schema.fields.map((f) => r[f.name]!));
    await writeDataFrame(opts(table), schema, [[toBatch(schema, rows)]]);

    const read = await readDataFrame(opts(table));
    const got = read.rows.sort(byKey("id"));
    expect(got[0]).toEqual({ ...full, bl: got[0]!.bl });
    expect(Array.from(got[0]!.bl as Uint8Array)).toEqual([0, 1, 255]);
    expect(got[1]).toEqual(empty);
    // Cassandra keeps no empty non-frozen collection (it reads as null); a frozen empty one is a value.
    expect(got[2]).toEqual({ ...empty, id: 3, fl: [], fm: [], t: "" });

    // What Cassandra stored: real uuid/inet/duration values, milliseconds, a set without duplicates.
    const stored = (await cql(`SELECT u, ip, du, ts, s, l, tup FROM ${KS}.all_types WHERE id = 1`)).first();
    expect(stored.get("u")).toBeInstanceOf(cassandra.types.Uuid);
    expect(stored.get("ip")).toBeInstanceOf(cassandra.types.InetAddress);
    expect((stored.get("ts") as Date).getTime()).toBe(1704067200123);
    expect([...(stored.get("s") as Set<string>)]).toEqual(["a", "b"]);
    expect(stored.get("l")).toEqual([3, 1, 3]);

    // A user schema can read types differently: strings, wider or narrower numbers.
    const user = schemaOf(["id", new Int64()], ["u", new Utf8()], ["dec", new Utf8()], ["bi", new Utf8()], ["tm", new Utf8()], ["ts", new Utf8()], ["l", new Utf8()]);
    const asText = await readDataFrame(opts(table), user);
    expect(asText.rows.sort(byKey("id"))[0]).toEqual({
      id: 1n,
      u: "550e8400-e29b-41d4-a716-446655440000",
      dec: "-12345678901234567890.123456789012345678",
      bi: "9007199254740993",
      tm: "13:45:00.000000123",
      ts: "2024-01-01T00:00:00.123Z",
      l: "[3, 1, 3]",
    });
  });

  it("truncates sub-millisecond timestamps, widens integers and validates strings into uuid and inet", async () => {
    await cql(`CREATE TABLE ${KS}.conversions (id uuid PRIMARY KEY, big bigint, small int, ip inet, at timestamp)`);
    const schema = schemaOf(["id", new Utf8()], ["big", new Int32()], ["small", new Int64()], ["ip", new Utf8()], ["at", new TimestampMicrosecond("UTC")]);
    await writeDataFrame(opts("conversions"), schema, [[toBatch(schema, [["550E8400-E29B-41D4-A716-446655440000", 7, 42n, "10.0.0.1", 1704067200123456n]])]]);
    const row = (await cql(`SELECT * FROM ${KS}.conversions`)).first();
    expect(String(row.get("id"))).toBe("550e8400-e29b-41d4-a716-446655440000");
    expect(row.get("big")).toBe(7n);
    expect(row.get("small")).toBe(42);
    expect(String(row.get("ip"))).toBe("10.0.0.1");
    expect((row.get("at") as Date).getTime()).toBe(1704067200123);

    const badUuid = await rejection(writeDataFrame(opts("conversions"), schema, [[toBatch(schema, [["550e8400-e29b-41d4-a716-446655440001", 1, 1n, "10.0.0.1", 0n], ["not-a-uuid", 1, 1n, "10.0.0.1", 0n]])]]));
    expect(badUuid.code).toBe("INVALID_ARGUMENT");
    expect(badUuid.errorClass).toBe("INVALID_UUID");
    expect(badUuid.parameters).toMatchObject({ column: "id", value: "'not-a-uuid'", row: "1" });
    const badInet = await rejection(writeDataFrame(opts("conversions"), schema, [[toBatch(schema, [["550e8400-e29b-41d4-a716-446655440002", 1, 1n, "10.0.0.256", 0n]])]]));
    expect(badInet.errorClass).toBe("INVALID_INET");
    const tooBig = await rejection(writeDataFrame(opts("conversions"), schema, [[toBatch(schema, [["550e8400-e29b-41d4-a716-446655440003", 1, 1n << 31n, "10.0.0.1", 0n]])]]));
    expect(tooBig.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(tooBig.parameters).toMatchObject({ column: "small", value: String(1n << 31n), row: "0", cqlType: "int" });
    expect(tooBig.message).toContain("'small'");
    // None of the failed batches' rows were written.
    expect((await cql(`SELECT id FROM ${KS}.conversions`)).rowLength).toBe(1);
  });

  it("reads 100,000 rows exactly once across every token range, including the wrap-around", async () => {
    await cql(`CREATE TABLE ${KS}.big (id bigint PRIMARY KEY, payload text)`);
    const schema = schemaOf(["id", new Int64()], ["payload", new Utf8()]);
    const total = 100_000;
    const partitions: RecordBatch[][] = [[], []];
    for (let start = 0; start < total; start += 5000) {
      const rows: PlainValue[][] = [];
      for (let i = start; i < start + 5000; i++) rows.push([BigInt(i), `row ${i}`]);
      partitions[(start / 5000) % 2]!.push(toBatch(schema, rows));
    }
    const results = await writeDataFrame(opts("big"), schema, partitions);
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(total);

    const variants: Array<Record<string, string>> = [{}, { read_partitions: "7", read_page_size: "2000" }];
    for (const extra of variants) {
      const read = await readDataFrame(opts("big", extra));
      expect(read.rows).toHaveLength(total);
      const seen = new Set(read.rows.map((r) => r.id as bigint));
      expect(seen.size).toBe(total);
      const ranges = read.partitions.flatMap((p) => decodeReadPartition(p).ranges.map(([s, e]) => [BigInt(s), BigInt(e)] as const));
      // 16 vnodes: at least 17 ranges (the wrap-around one read as two), starting at the minimum token, ending at the maximum.
      expect(ranges.length).toBeGreaterThanOrEqual(17);
      expect(ranges.some(([s]) => s === MURMUR3_BOUNDS.min)).toBe(true);
      expect(ranges.some(([, e]) => e === MURMUR3_BOUNDS.max)).toBe(true);
      if ("read_partitions" in extra) expect(read.partitions).toHaveLength(7);
      else expect(read.partitions.length).toBeGreaterThanOrEqual(3);
    }
    // Rows whose token lies in the wrap-around range are among them.
    const lowest = (await cql(`SELECT id, token(id) AS t FROM ${KS}.big LIMIT 1`)).first();
    const highest = await cql(`SELECT id FROM ${KS}.big WHERE token(id) > ? LIMIT 1`, [MURMUR3_BOUNDS.max - (1n << 55n)]);
    expect(lowest.get("t") as bigint).toBeLessThan(0n);
    expect(highest.rowLength).toBe(1);
  });

  it("filters with a CQL condition, asking for allow_filtering when Cassandra needs it", async () => {
    await cql(`CREATE TABLE ${KS}.scores (player text, game int, score int, PRIMARY KEY (player, game))`);
    const schema = schemaOf(["player", new Utf8()], ["game", new Int32()], ["score", new Int32()]);
    const rows: PlainValue[][] = [];
    for (let p = 0; p < 20; p++) for (let g = 0; g < 10; g++) rows.push([`p${p}`, g, p * 10 + g]);
    await writeDataFrame(opts("scores"), schema, [[toBatch(schema, rows)]]);

    const needsAllow = await rejection(readDataFrame(opts("scores", { filter: "score >= 150" })));
    expect(needsAllow.code).toBe("INVALID_ARGUMENT");
    expect(needsAllow.errorClass).toBe("FILTER_NEEDS_ALLOW_FILTERING");
    expect(needsAllow.parameters.option).toBe("allow_filtering");

    const filtered = await readDataFrame(opts("scores", { filter: "score >= 150", allow_filtering: "true" }));
    expect(filtered.rows.map((r) => r.score as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => 150 + i));

    const clustering = await readDataFrame(opts("scores", { filter: "game = 3", allow_filtering: "true" }));
    expect(clustering.rows).toHaveLength(20);

    const invalid = await rejection(readDataFrame(opts("scores", { filter: "scor > 1", allow_filtering: "true" })));
    expect(invalid.errorClass).toBe("FILTER_INVALID");
    expect(invalid.parameters.option).toBe("filter");
    expect(invalid.message).toContain("scor");
  });

  it("connects with TLS and the CA certificate", async () => {
    await cql(`CREATE TABLE ${KS}.secure (id text PRIMARY KEY, v int)`);
    const tls = { ssl_enabled: "true", ssl_ca_cert: info.caCertFile, port: String(info.tlsPort) };
    const schema = schemaOf(["id", new Utf8()], ["v", new Int32()]);
    await writeDataFrame(opts("secure", tls), schema, [[toBatch(schema, [["a", 1], ["b", 2]])]]);
    const read = await readDataFrame(opts("secure", tls));
    expect(read.rows.sort(byKey("id"))).toEqual([
      { id: "a", v: 1 },
      { id: "b", v: 2 },
    ]);
    // localhost works too: the certificate names both.
    expect((await readDataFrame(opts("secure", { ...tls, host: "localhost" }))).rows).toHaveLength(2);
    // Without the CA, the node's certificate is not trusted.
    const untrusted = await rejection(connector.describe({ options: opts("secure", { ssl_enabled: "true", port: String(info.tlsPort) }), userSchema: undefined, signal: fresh() }));
    expect(untrusted.errorClass).toBe("TLS_CERTIFICATE_REJECTED");
  });

  it("reports a TLS handshake against a port that does not speak TLS", async () => {
    let server: Server | undefined;
    try {
      // Answers a TLS ClientHello as a node without client encryption does: a CQL protocol
      // error frame ("Invalid or unsupported protocol version (22)"), then it closes.
      const message = Buffer.from("Invalid or unsupported protocol version (22); supported versions are (3/v3, 4/v4, 5/v5)");
      const body = Buffer.concat([Buffer.from([0, 0, 0, 0x0a, message.length >> 8, message.length & 0xff]), message]);
      const header = Buffer.from([0x84, 0, 0, 0, 0, 0, 0, 0, 0]);
      header.writeInt32BE(body.length, 5);
      server = createServer((socket) => {
        socket.on("error", () => undefined);
        socket.once("data", () => socket.end(Buffer.concat([header, body])));
      });
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as { port: number }).port;
      const error = await rejection(
        connector.describe({ options: opts("secure", { ssl_enabled: "true", ssl_ca_cert: info.caCertFile, port: String(port), connect_timeout_ms: "3000" }), userSchema: undefined, signal: fresh() }),
      );
      expect(error.code).toBe("UNAVAILABLE");
      expect(error.errorClass).toBe("TLS_HANDSHAKE_FAILED");
      expect(error.message).toContain("'ssl_enabled'");
      expect(error.message).toContain(`127.0.0.1:${port}`);
    } finally {
      server?.close();
    }
  });

  it("reports wrong and missing credentials, naming the user but never the password", async () => {
    const wrong = await rejection(connector.describe({ options: opts("secure", { password: "not-the-password" }), userSchema: undefined, signal: fresh() }));
    expect(wrong.code).toBe("UNAUTHENTICATED");
    expect(wrong.errorClass).toBe("AUTHENTICATION_FAILED");
    expect(wrong.message).toContain(`'${info.username}'`);
    expect(wrong.message).not.toContain("not-the-password");
    const options = opts("secure");
    delete options.username;
    delete options.password;
    const missing = await rejection(connector.describe({ options, userSchema: undefined, signal: fresh() }));
    expect(missing.errorClass).toBe("AUTHENTICATION_REQUIRED");
  });

  it("names a missing keyspace or table with a did-you-mean", async () => {
    const keyspace = await rejection(connector.describe({ options: { ...opts("scores"), keyspace: KS.slice(0, -1) }, userSchema: undefined, signal: fresh() }));
    expect(keyspace.errorClass).toBe("KEYSPACE_NOT_FOUND");
    expect(keyspace.parameters.suggestion).toBe(KS);
    const table = await rejection(connector.describe({ options: opts("score"), userSchema: undefined, signal: fresh() }));
    expect(table.code).toBe("NOT_FOUND");
    expect(table.errorClass).toBe("TABLE_NOT_FOUND");
    expect(table.parameters.suggestion).toBe("scores");
  });

  it("deletes flagged rows and leaves nulls unset (or writes them with write_nulls)", async () => {
    await cql(`CREATE TABLE ${KS}.users (id text PRIMARY KEY, name text, age int)`);
    const schema = schemaOf(["id", new Utf8()], ["name", new Utf8()], ["age", new Int32()]);
    await writeDataFrame(opts("users"), schema, [[toBatch(schema, [["id-001", "Alice", 30], ["id-002", "Bob", 25], ["id-003", "Carol", 41]])]]);

    const flagged = schemaOf(["id", new Utf8()], ["name", new Utf8()], ["age", new Int32()], ["is_deleted", new Bool()]);
    const [result] = await writeDataFrame(opts("users", { delete_flag_column: "is_deleted", delete_flag_value: "true" }), flagged, [
      [toBatch(flagged, [["id-001", "Alice", null, false], ["id-002", null, null, true]])],
    ]);
    expect(result).toMatchObject({ rowsWritten: 1, rowsDeleted: 1 });
    let read = await readDataFrame(opts("users"));
    expect(read.schema.fields.map((f) => f.name)).toEqual(["id", "age", "name"]);
    // Alice's null age was left unset: her age stays 30.
    expect(read.rows.sort(byKey("id"))).toEqual([
      { id: "id-001", age: 30, name: "Alice" },
      { id: "id-003", age: 41, name: "Carol" },
    ]);

    await writeDataFrame(opts("users", { write_nulls: "true" }), schema, [[toBatch(schema, [["id-001", "Alice", null]])]]);
    read = await readDataFrame(opts("users"));
    expect(read.rows.sort(byKey("id"))[0]).toEqual({ id: "id-001", age: null, name: "Alice" });
  });

  it("refuses an unconfirmed overwrite and truncates before writing a confirmed one", async () => {
    await cql(`CREATE TABLE ${KS}.snapshot (id int PRIMARY KEY, v text)`);
    const schema = schemaOf(["id", new Int32()], ["v", new Utf8()]);
    await writeDataFrame(opts("snapshot"), schema, [[toBatch(schema, [[1, "old"], [2, "old"]])]]);
    const refused = await rejection(writeDataFrame(opts("snapshot"), schema, [[toBatch(schema, [[3, "new"]])]], true));
    expect(refused.code).toBe("FAILED_PRECONDITION");
    expect(refused.errorClass).toBe("OVERWRITE_NOT_CONFIRMED");
    expect((await cql(`SELECT id FROM ${KS}.snapshot`)).rowLength).toBe(2);

    await writeDataFrame(opts("snapshot", { confirm_truncate: "true" }), schema, [[toBatch(schema, [[3, "new"]])], [toBatch(schema, [[4, "new"]])]], true);
    const read = await readDataFrame(opts("snapshot"));
    expect(read.rows.sort(byKey("id"))).toEqual([
      { id: 3, v: "new" },
      { id: 4, v: "new" },
    ]);
  });

  it("records a TRUNCATE in the plan, and an aborted overwrite says the table was truncated", async () => {
    await cql(`CREATE TABLE ${KS}.overwrite_abort (id int PRIMARY KEY, v text)`);
    const schema = schemaOf(["id", new Int32()], ["v", new Utf8()]);
    await writeDataFrame(opts("overwrite_abort"), schema, [[toBatch(schema, Array.from({ length: 50 }, (_, i): PlainValue[] => [i, "old"]))]]);

    const options = opts("overwrite_abort", { confirm_truncate: "true" });
    const writePlan = await connector.planWrite({ options, schema, overwrite: true, streaming: false, signal: fresh() });
    const plan = JSON.parse(new TextDecoder().decode(writePlan)) as { overwrite?: { truncatedAt: string } };
    expect(Date.parse(plan.overwrite!.truncatedAt)).toBeLessThanOrEqual(Date.now());
    const good: PlainValue[][] = Array.from({ length: 20 }, (_, i) => [100 + i, "new"]);
    const ok = await connector.write({ options, schema, writePlan, task: { partitionId: 0, taskAttemptId: 0, batchId: 0 }, batches: fromBatches([toBatch(schema, good)]), signal: fresh() });
    const failed = await rejection(
      connector.write({ options, schema, writePlan, task: { partitionId: 1, taskAttemptId: 1, batchId: 0 }, batches: fromBatches([toBatch(schema, [[null, "bad"]])]), signal: fresh() }),
    );
    expect(failed.errorClass).toBe("KEY_VALUE_NULL");
    const detail = await connector.abortWrite({ options, writePlan, taskResults: [ok], batchId: 0, signal: fresh() });
    expect(detail).toContain(`Table ${KS}.overwrite_abort was TRUNCATED for mode("overwrite") at ${plan.overwrite!.truncatedAt} before this write failed`);
    expect(detail).toContain("wrote 20 and deleted 0");
    const read = await readDataFrame(opts("overwrite_abort"));
    expect(read.rows.sort(byKey("id"))).toEqual(good.map(([id, v]) => ({ id, v })));
  });

  it("refuses a DataFrame without every primary-key column before writing anything", async () => {
    await cql(`CREATE TABLE ${KS}.events (user text, day date, seq int, what text, PRIMARY KEY ((user, day), seq))`);
    const schema = schemaOf(["user", new Utf8()], ["seq", new Int32()], ["what", new Utf8()]);
    const error = await rejection(writeDataFrame(opts("events"), schema, [[toBatch(schema, [["u", 1, "x"]])]]));
    expect(error.errorClass).toBe("KEY_COLUMN_MISSING");
    expect(error.parameters).toMatchObject({ columns: "day", present: "user, seq, what" });
    const unknown = await rejection(writeDataFrame(opts("events"), schemaOf(["user", new Utf8()], ["day", new DateDay()], ["seq", new Int32()], ["wat", new Utf8()]), [[]]));
    expect(unknown.errorClass).toBe("COLUMN_UNKNOWN");
    expect(unknown.parameters.suggestion).toBe("what");
    const withDay = schemaOf(["user", new Utf8()], ["day", new DateDay()], ["seq", new Int32()]);
    const nullKey = await rejection(writeDataFrame(opts("events"), withDay, [[toBatch(withDay, [["u", 19000, 1], ["u", 19000, null]])]]));
    expect(nullKey.errorClass).toBe("KEY_VALUE_NULL");
    expect(nullKey.parameters.column).toBe("seq");
    expect((await cql(`SELECT * FROM ${KS}.events`)).rowLength).toBe(0);
  });

  it("writes many rows of one partition (unlogged batches) and case-sensitive, reserved column names", async () => {
    await cql(`CREATE TABLE ${KS}."Timeline" ("userName" text, "select" int, "Value" text, PRIMARY KEY ("userName", "select"))`);
    const schema = schemaOf(["userName", new Utf8()], ["select", new Int32()], ["Value", new Utf8()]);
    const rows: PlainValue[][] = [];
    for (let i = 0; i < 3000; i++) rows.push([`user${i % 3}`, i, `v${i}`]);
    const [result] = await writeDataFrame(opts("Timeline"), schema, [[toBatch(schema, rows)]]);
    expect(result!.rowsWritten).toBe(3000);
    expect(result!.requests).toBeLessThan(100);
    const read = await readDataFrame(opts("Timeline"));
    expect(read.rows).toHaveLength(3000);
    expect(read.schema.fields.map((f) => f.name)).toEqual(["userName", "select", "Value"]);
    expect(read.rows.find((r) => r.select === 2999)).toEqual({ userName: "user2", select: 2999, Value: "v2999" });
  });
});
