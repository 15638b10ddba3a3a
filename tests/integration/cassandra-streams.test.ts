/**
 * Streaming reads of Cassandra tables (`spark.readStream.format("pycassandra")`) through
 * the connector's stream calls, against the real Cassandra 5 of the global setup: the
 * same InitialOffset / LatestOffset / PlanStreamRead / Read sequence Spark's micro-batches
 * make. The service's clock is a fake one set near the rows' values, so the lag is exact.
 * The truth is what the test wrote, read back with the driver, never through the connector.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import cassandra from "cassandra-driver";
import type { Schema } from "apache-arrow";
import type { Connector } from "../../src/core/connector.js";
import { silentLogger } from "../../src/core/logger.js";
import { readValue, type PlainValue } from "../../src/arrow/values.js";
import { createCassandraConnector } from "../../src/backends/cassandra/connector.js";
import { decodeStreamPartition } from "../../src/backends/cassandra/stream.js";
import { MURMUR3_BOUNDS } from "../../src/backends/cassandra/planner.js";
import { FakeClock } from "../support/fake-clock.js";
import "../support/provided-context.js";
import { connectWithKeyspace, dropKeyspace } from "../support/cassandra-keyspace.js";
import { rejection } from "../support/conduit-error.js";

const info = inject("cassandra");
const KS = `it_cstream_${Date.now().toString(36)}`;
/** The fake "now" of the service: 2026-03-01T00:00:00Z. */
const T0 = Date.UTC(2026, 2, 1);
const LAG = 5_000;

let connector: Connector;
let raw: cassandra.Client;
const clock = new FakeClock();
const fresh = () => new AbortController().signal;

function opts(table: string, extra: Record<string, string> = {}): Record<string, string> {
  return { host: info.host, port: String(info.port), keyspace: KS, table, username: info.username, password: info.password, stream_lag_ms: String(LAG), ...extra };
}

async function cql(query: string, params: unknown[] = []): Promise<cassandra.types.ResultSet> {
  return raw.execute(query, params, { prepare: params.length > 0 });
}

beforeAll(async () => {
  connector = createCassandraConnector(silentLogger, { clock });
  raw = await connectWithKeyspace(info, KS);
});

afterAll(async () => {
  await connector?.close();
  await dropKeyspace(raw, KS);
});

type Row = Record<string, PlainValue>;

/** A streaming query as Spark runs it: Describe once, then per trigger LatestOffset, PlanStreamRead and a Read per partition. */
class StreamQuery {
  schema!: Schema;
  offset!: string;
  readonly batches: Row[][] = [];
  partitionsPerBatch: number[] = [];

  constructor(readonly options: Record<string, string>) {}

  async start(): Promise<this> {
    this.schema = (await connector.describe({ options: this.options, userSchema: undefined, signal: fresh() })).schema;
    this.offset = await connector.stream!.initialOffset({ options: this.options, schema: this.schema, signal: fresh() });
    return this;
  }

  async latest(extra: { maxRecords?: number; endBound?: string; catchUp?: boolean } = {}): Promise<string> {
    return connector.stream!.latestOffset({
      options: this.options,
      schema: this.schema,
      start: this.offset,
      maxRecords: extra.maxRecords,
      endBound: extra.endBound,
      catchUp: extra.catchUp ?? false,
      signal: fresh(),
    });
  }

  /** Reads (start, end] like a micro-batch's tasks, concurrently. */
  async read(start: string, end: string): Promise<{ rows: Row[]; partitions: Uint8Array[] }> {
    const partitions = await connector.stream!.planStreamRead({ options: this.options, schema: this.schema, start, end, signal: fresh() });
    const perPartition = await Promise.all(
      partitions.map(async (partition) => {
        const rows: Row[] = [];
        for await (const batch of connector.read({ options: this.options, schema: this.schema, partition, signal: fresh() })) {
          const columns = this.schema.fields.map((f, i) => [f.name, batch.getChildAt(i)!] as const);
          for (let r = 0; r < batch.numRows; r++) rows.push(Object.fromEntries(columns.map(([name, vector]) => [name, readValue(vector, r)])));
        }
        return rows;
      }),
    );
    return { rows: perPartition.flat(), partitions };
  }

  /** One trigger: a micro-batch when there is something new (returns its rows), else undefined. */
  async trigger(extra: { maxRecords?: number; endBound?: string } = {}): Promise<Row[] | undefined> {
    const end = await this.latest(extra);
    if (end === this.offset) return undefined;
    const { rows, partitions } = await this.read(this.offset, end);
    this.batches.push(rows);
    this.partitionsPerBatch.push(partitions.length);
    this.offset = end;
    return rows;
  }

  all(): Row[] {
    return this.batches.flat();
  }
}

const ids = (rows: Row[]) => rows.map((r) => Number(r.id)).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const micros = (ms: number) => BigInt(ms) * 1000n;

describe("Cassandra streaming reads: column mode", () => {
  it("streams an SAI-indexed timestamp column: every row once, late rows within the lag, nothing on an idle trigger", async () => {
    await cql(`CREATE TABLE ${KS}.events (id int PRIMARY KEY, ts timestamp, payload text)`);
    await cql(`CREATE INDEX ON ${KS}.events (ts) USING 'sai'`);
    const insert = (id: number, ms: number) => cql(`INSERT INTO ${KS}.events (id, ts, payload) VALUES (?, ?, ?)`, [id, new Date(ms), `p${id}`]);
    for (const id of range(0, 40)) await insert(id, T0 - 40_000 + id * 1000);
    clock.time = T0;
    const query = await new StreamQuery(opts("events", { starting_position: "earliest", stream_column: "ts" })).start();
    expect(JSON.parse(query.offset)).toEqual({ table: `${KS}.events`, mode: "column", column: "ts", type: "timestamp", mark: null, rows: 0 });

    // Rows up to now - lag: ids 0..35 (ts = T0 - 40 s + id s <= T0 - 5 s).
    const first = await query.trigger();
    expect(ids(first!)).toEqual(range(0, 36));
    expect(first!.find((r) => r.id === 3)).toEqual({ id: 3, payload: "p3", ts: micros(T0 - 37_000) });
    expect(JSON.parse(query.offset)).toMatchObject({ mark: String(T0 - LAG), rows: 36 });

    // Nothing new past the mark: the offset stays, so Spark runs no micro-batch.
    clock.time = T0 + 500;
    expect(await query.latest()).toBe(query.offset);

    // A late row (its value 2 s old when written, within the 5 s lag) and a new one.
    await insert(100, T0 - 2_000);
    clock.time = T0 + 4_000;
    expect(ids((await query.trigger())!)).toEqual([36, 37, 38, 39, 100]);
    // A row older than the lag when written is behind the mark: this mode cannot see it (documented).
    await insert(101, T0 - 10_000);
    await insert(102, T0 + 3_000);
    clock.time = T0 + 9_000;
    expect(ids((await query.trigger())!)).toEqual([102]);
    expect(ids(query.all())).toEqual([...range(0, 40), 100, 102]);
  });

  it("streams the first clustering column (a timeuuid): a slice of every partition per micro-batch", async () => {
    await cql(`CREATE TABLE ${KS}.readings (sensor text, at timeuuid, value double, PRIMARY KEY (sensor, at))`);
    const uuidAt = (ms: number, n: number) => cassandra.types.TimeUuid.fromDate(new Date(ms), n, "node01", "cl");
    const insert = (sensor: string, ms: number, n: number, value: number) => cql(`INSERT INTO ${KS}.readings (sensor, at, value) VALUES (?, ?, ?)`, [sensor, uuidAt(ms, n), value]);
    let value = 0;
    for (const sensor of ["a", "b", "c", "d"]) for (const s of range(0, 10)) await insert(sensor, T0 - 30_000 + s * 1000, 0, value++);
    clock.time = T0 - 10_000;
    const query = await new StreamQuery(opts("readings", { starting_position: new Date(T0 - 25_000).toISOString(), stream_column: "at" })).start();
    const start = query.offset;
    // From T0 - 25 s (inclusive) to T0 - 15 s: seconds 5..15 exist up to 9 → 5 rows per sensor.
    const first = await query.trigger();
    expect(first!.length).toBe(20);
    const end = query.offset;
    expect(first!.every((r) => typeof r.at === "string" && /^[0-9a-f-]{36}$/.test(r.at))).toBe(true);
    // Two timeuuids in the very millisecond of the mark (ticks 0 and 9999) both belong to it.
    await insert("e", T0 - 15_000, 0, 100);
    await insert("e", T0 - 15_000, 9999, 101);
    await insert("e", T0 - 14_999, 0, 102);
    expect(await query.latest()).toBe(query.offset);
    clock.time = T0 - 9_000;
    const second = await query.trigger();
    expect(second!.map((r) => r.value).sort()).toEqual([102]);
    expect(query.all().filter((r) => r.sensor === "e").map((r) => r.value)).toEqual([102]);
    // They were written after the first micro-batch passed their millisecond (older than the lag): a
    // replay of that batch reads them, so the window's upper millisecond holds every timeuuid in it.
    const replay = await query.read(start, end);
    expect(replay.rows.filter((r) => r.sensor === "e").map((r) => r.value).sort()).toEqual([100, 101]);
  });

  it("covers every token range exactly once per micro-batch, and a replay reads exactly the same rows", async () => {
    await cql(`CREATE TABLE ${KS}.many (id int PRIMARY KEY, ts timestamp, v text)`);
    await cql(`CREATE INDEX ON ${KS}.many (ts) USING 'sai'`);
    const insert = raw.execute.bind(raw);
    await Promise.all(range(0, 2000).map((id) => insert(`INSERT INTO ${KS}.many (id, ts, v) VALUES (?, ?, ?)`, [id, new Date(T0 - 100_000 + (id % 50)), `v${id}`], { prepare: true })));
    clock.time = T0;
    const query = await new StreamQuery(opts("many", { starting_position: "earliest", stream_column: "ts", read_partitions: "7" })).start();
    const start = query.offset;
    const end = await query.latest();
    const { rows, partitions } = await query.read(start, end);
    expect(partitions.length).toBe(7);
    const ranges = partitions.flatMap((p) => decodeStreamPartition(p).ranges.map(([s, e]) => [BigInt(s), BigInt(e)] as const)).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(ranges[0]![0]).toBe(MURMUR3_BOUNDS.min);
    expect(ranges.at(-1)![1]).toBe(MURMUR3_BOUNDS.max);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
    expect(rows.length).toBe(2000);
    expect(new Set(rows.map((r) => r.id)).size).toBe(2000);
    // The same offsets (a restart replaying the batch) give the same partitions and rows.
    const again = await query.read(start, end);
    expect(again.partitions.map((p) => Buffer.from(p).toString())).toEqual(partitions.map((p) => Buffer.from(p).toString()));
    expect(ids(again.rows)).toEqual(ids(rows));
  });

  it("bounds micro-batches with max_rows_per_trigger and never passes an AvailableNow target", async () => {
    await cql(`CREATE TABLE ${KS}.bounded (id int PRIMARY KEY, n bigint, v text)`);
    await cql(`CREATE INDEX ON ${KS}.bounded (n) USING 'sai'`);
    for (const id of range(0, 100)) await cql(`INSERT INTO ${KS}.bounded (id, n, v) VALUES (?, ?, ?)`, [id, BigInt(1000 + Math.floor(id / 2)), `v${id}`]);
    const query = await new StreamQuery(opts("bounded", { starting_position: "earliest", stream_column: "n" })).start();
    const target = await query.latest({ catchUp: true });
    expect(JSON.parse(target)).toMatchObject({ mark: "1049", rows: 100 });
    // Rows written after the target are not part of this AvailableNow run.
    await cql(`INSERT INTO ${KS}.bounded (id, n, v) VALUES (?, ?, ?)`, [500, 5000n, "late"]);
    while ((await query.trigger({ maxRecords: 15, endBound: target })) !== undefined);
    // Pairs of rows share a value, so each batch takes 7 pairs: 14 rows.
    expect(query.batches.map((b) => b.length)).toEqual([14, 14, 14, 14, 14, 14, 14, 2]);
    expect(ids(query.all())).toEqual(range(0, 100));
    expect(JSON.parse(query.offset).mark).toBe("1049");
    // Then the stream goes on past it.
    expect(ids((await query.trigger())!)).toEqual([500]);
  });

  it("starts at the latest bigint value, or at a given value inclusive", async () => {
    await cql(`CREATE TABLE ${KS}.seq (p int, n bigint, v text, PRIMARY KEY (p, n))`);
    for (const n of range(1, 11)) await cql(`INSERT INTO ${KS}.seq (p, n, v) VALUES (?, ?, ?)`, [n % 3, BigInt(n), `v${n}`]);
    const latest = await new StreamQuery(opts("seq", { starting_position: "latest", stream_column: "n" })).start();
    expect(JSON.parse(latest.offset).mark).toBe("10");
    const fromSeven = await new StreamQuery(opts("seq", { starting_position: "7", stream_column: "n" })).start();
    expect((await fromSeven.trigger())!.map((r) => Number(r.n)).sort((a, b) => a - b)).toEqual([7, 8, 9, 10]);
    await cql(`INSERT INTO ${KS}.seq (p, n, v) VALUES (?, ?, ?)`, [0, 11n, "v11"]);
    expect((await latest.trigger())!.map((r) => r.n)).toEqual([11n]);
  });
});

describe("Cassandra streaming reads: with a filter and a narrower schema", () => {
  it("adds the user's filter to the window and reads only the schema's columns", async () => {
    await cql(`CREATE TABLE ${KS}.filtered (id int PRIMARY KEY, ts timestamp, kind text, payload text)`);
    await cql(`CREATE INDEX ON ${KS}.filtered (ts) USING 'sai'`);
    for (const id of range(0, 20)) {
      await cql(`INSERT INTO ${KS}.filtered (id, ts, kind, payload) VALUES (?, ?, ?, ?)`, [id, new Date(T0 - 30_000 + id * 1000), id % 2 === 0 ? "even" : "odd", `p${id}`]);
    }
    clock.time = T0;
    const options = opts("filtered", { starting_position: "earliest", stream_column: "ts", filter: "kind = 'even'", allow_filtering: "true" });
    const schema = (await connector.describe({ options, userSchema: undefined, signal: fresh() })).schema;
    const narrow = schema.select(["id", "ts"]);
    const query = new StreamQuery(options);
    query.schema = narrow;
    query.offset = await connector.stream!.initialOffset({ options, schema: narrow, signal: fresh() });
    const rows = (await query.trigger())!;
    // The window holds ids 0..19 (up to T0 - 11 s); the filter keeps the even ones, counted as such.
    expect(ids(rows)).toEqual(range(0, 20).filter((id) => id % 2 === 0));
    expect(Object.keys(rows[0]!).sort()).toEqual(["id", "ts"]);
    expect(JSON.parse(query.offset)).toMatchObject({ rows: 10 });
  });
});

describe("Cassandra streaming reads: write-time mode", () => {
  it("sees inserts and updates by each row's newest write time", async () => {
    await cql(`CREATE TABLE ${KS}.users (id int PRIMARY KEY, name text, score int, tags set<text>)`);
    const at = (ms: number) => ms * 1000;
    for (const id of range(0, 5)) await raw.execute(`INSERT INTO ${KS}.users (id, name, score) VALUES (?, ?, ?)`, [id, `u${id}`, id], { prepare: true, timestamp: at(T0 - 20_000 + id) });
    clock.time = T0;
    const query = await new StreamQuery(opts("users", { starting_position: "earliest", stream_mode: "writetime" })).start();
    expect(ids((await query.trigger())!)).toEqual(range(0, 5));
    expect(JSON.parse(query.offset)).toMatchObject({ mode: "writetime", type: "writetime", mark: String(micros(T0 - LAG)) });
    // An update of one column makes the row's write time new; a write to the non-frozen set alone does not count.
    await raw.execute(`UPDATE ${KS}.users SET score = 42 WHERE id = 3`, [], { prepare: true, timestamp: at(T0 - 1_000) });
    await raw.execute(`UPDATE ${KS}.users SET tags = {'x'} WHERE id = 4`, [], { prepare: true, timestamp: at(T0 - 1_000) });
    clock.time = T0 + 2_000;
    expect(await query.latest()).toBe(query.offset);
    clock.time = T0 + 4_000;
    const updated = await query.trigger();
    expect(updated).toEqual([{ id: 3, name: "u3", score: 42, tags: null }]);
  });
});

describe("Cassandra streaming reads: errors before any row is read", () => {
  it("refuses a column that is neither the first clustering column nor SAI-indexed, unless allow_filtering", async () => {
    await cql(`CREATE TABLE ${KS}.plain (id int, c1 int, at timestamp, note text, PRIMARY KEY (id, c1))`);
    const error = await rejection(connector.describe({ options: opts("plain", { starting_position: "earliest", stream_column: "at" }), userSchema: undefined, signal: fresh() }));
    expect(error.errorClass).toBe("STREAM_COLUMN_NOT_INDEXED");
    expect(error.message).toContain(`CREATE INDEX ON "${KS}"."plain" ("at") USING 'sai'`);
    expect(error.message).toContain("allow_filtering");
    await cql(`INSERT INTO ${KS}.plain (id, c1, at, note) VALUES (1, 1, ?, 'x')`, [new Date(T0 - 10_000)]);
    clock.time = T0;
    const query = await new StreamQuery(opts("plain", { starting_position: "earliest", stream_column: "at", allow_filtering: "true" })).start();
    expect(ids((await query.trigger())!)).toEqual([1]);
  });

  it("names the option, column and type at fault", async () => {
    await cql(`CREATE TABLE ${KS}.typed (id int PRIMARY KEY, label text, at timestamp)`);
    const describeWith = (extra: Record<string, string>) => rejection(connector.describe({ options: opts("typed", extra), userSchema: undefined, signal: fresh() }));
    expect(await describeWith({ starting_position: "earliest", stream_column: "label" })).toMatchObject({ errorClass: "STREAM_COLUMN_TYPE", parameters: { column: "label", type: "text" } });
    expect(await describeWith({ starting_position: "earliest", stream_column: "At" })).toMatchObject({ errorClass: "COLUMN_UNKNOWN", parameters: { suggestion: "at" } });
    expect(await describeWith({ starting_position: "earliest" })).toMatchObject({ errorClass: "STREAM_COLUMN_REQUIRED" });
    expect(await describeWith({ starting_position: "yesterday", stream_column: "id", allow_filtering: "true" })).toMatchObject({ errorClass: "STREAM_COLUMN_TYPE" });
    const schema = (await connector.describe({ options: opts("typed"), userSchema: undefined, signal: fresh() })).schema;
    const badStart = await rejection(connector.stream!.initialOffset({ options: opts("typed", { starting_position: "yesterday", stream_column: "at", allow_filtering: "true" }), schema, signal: fresh() }));
    expect(badStart).toMatchObject({ errorClass: "OPTION_INVALID_VALUE", parameters: { option: "starting_position" } });
    const inBatch = await rejection(connector.planRead({ options: opts("typed", { starting_position: "earliest", stream_column: "at" }), schema, signal: fresh() }));
    expect(inBatch.errorClass).toBe("STREAM_OPTION_IN_BATCH_READ");
    const other = await new StreamQuery(opts("typed", { starting_position: "earliest", stream_column: "at", allow_filtering: "true" })).start();
    const foreign = JSON.stringify({ table: `${KS}.events`, mode: "column", column: "ts", type: "timestamp", mark: null, rows: 0 });
    other.offset = foreign;
    expect(await rejection(other.latest())).toMatchObject({ errorClass: "STREAM_OFFSET_OTHER_TABLE" });
  });
});
