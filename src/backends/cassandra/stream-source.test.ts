import { describe, expect, it } from "vitest";
import { Field, Int32, Schema, Utf8, type RecordBatch } from "apache-arrow";
import type { LatestOffsetInput } from "../../core/connector.js";
import { silentLogger } from "../../core/logger.js";
import { readValue } from "../../arrow/values.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { createCassandraConnector } from "./connector.js";
import { decodeStreamPartition, parseStreamOffset, serializeStreamOffset } from "./stream.js";
import { FakeCassandra } from "./test-fakes.js";
import { scalar } from "./types.js";

/** The fake "now" of the service: 2026-03-01T00:00:00Z. */
const T0 = Date.UTC(2026, 2, 1);
const LAG = 5_000;
const micros = (ms: number) => BigInt(ms) * 1000n;
const base = { host: "127.0.0.1", keyspace: "ks", stream_lag_ms: String(LAG) };
const events = { ...base, table: "events", starting_position: "earliest", stream_column: "ts" };
const users = { ...base, table: "users", starting_position: "earliest", stream_mode: "writetime" };

/**
 * A connector over one fake Cassandra with ks.events (id int PRIMARY KEY, ts timestamp with
 * an SAI index, seen timestamp without one, v text) and ks.users (id int PRIMARY KEY, name text, score int), and a clock at T0.
 */
function setup() {
  const api = new FakeCassandra();
  const eventsTable = api.addTable(
    "ks",
    "events",
    [
      ["id", scalar("int")],
      ["ts", scalar("timestamp")],
      ["seen", scalar("timestamp")],
      ["v", scalar("text")],
    ],
    ["id"],
  );
  eventsTable.def.indexes = [{ name: "events_ts_idx", target: "ts", className: "sai" }];
  api.addTable(
    "ks",
    "users",
    [
      ["id", scalar("int")],
      ["name", scalar("text")],
      ["score", scalar("int")],
    ],
    ["id"],
  );
  const clock = new FakeClock();
  clock.time = T0;
  const connector = createCassandraConnector(silentLogger, { createApi: () => api, clock });
  return { api, clock, connector, signal: new AbortController().signal };
}

type Setup = ReturnType<typeof setup>;

function latestInput(options: Record<string, string>, schema: Schema, start: string, extra: Partial<Pick<LatestOffsetInput, "maxRecords" | "endBound" | "catchUp">> = {}): LatestOffsetInput {
  return { options, schema, start, maxRecords: undefined, endBound: undefined, catchUp: false, signal: new AbortController().signal, ...extra };
}

/** Reads (start, end] as a micro-batch's tasks do: every planned partition through Read. */
async function readBatch(ctx: Setup, options: Record<string, string>, schema: Schema, start: string, end: string): Promise<{ batches: RecordBatch[]; partitions: Uint8Array[] }> {
  const partitions = await ctx.connector.stream!.planStreamRead({ options, schema, start, end, signal: ctx.signal });
  const batches: RecordBatch[] = [];
  for (const partition of partitions) for await (const batch of ctx.connector.read({ options, schema, partition, signal: ctx.signal })) batches.push(batch);
  return { batches, partitions };
}

const idsOf = (batches: RecordBatch[]) => batches.flatMap((b) => Array.from({ length: b.numRows }, (_, r) => readValue(b.getChild("id")!, r) as number)).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("Cassandra stream through the connector (fake Cassandra)", () => {
  it("reads in each micro-batch exactly the rows latestOffset counted, across partitions", async () => {
    const ctx = setup();
    // 60 rows, two per second from T0 - 40 s to T0 - 11 s: all before the clock mark T0 - 5 s.
    for (let id = 0; id < 60; id++) ctx.api.put("ks", "events", { id, ts: new Date(T0 - 40_000 + Math.floor(id / 2) * 1000), v: `v${id}` });
    const options = { ...events, read_partitions: "3" };
    const schema = (await ctx.connector.describe({ options, userSchema: undefined, signal: ctx.signal })).schema;
    expect(schema.fields.map((f) => f.name)).toEqual(["id", "seen", "ts", "v"]);
    let offset = await ctx.connector.stream!.initialOffset({ options, schema, signal: ctx.signal });
    const read: number[][] = [];
    for (;;) {
      const end = await ctx.connector.stream!.latestOffset(latestInput(options, schema, offset, { maxRecords: 15 }));
      if (end === offset) break;
      const { batches, partitions } = await readBatch(ctx, options, schema, offset, end);
      expect(partitions).toHaveLength(3);
      const ids = idsOf(batches);
      expect(ids.length).toBe(parseStreamOffset(end, "end").rows);
      read.push(ids);
      offset = end;
    }
    // A limit of 15 takes 7 pairs of rows that share a second; the rest comes in the last batch.
    expect(read.map((ids) => ids.length)).toEqual([14, 14, 14, 14, 4]);
    expect(read.flat().sort((a, b) => a - b)).toEqual(range(0, 60));
    // A replay of a micro-batch (the same offsets) reads the same rows.
    const first = serializeStreamOffset({ ...parseStreamOffset(offset, "x"), mark: null, rows: 0 });
    expect(idsOf((await readBatch(ctx, options, schema, first, offset)).batches)).toEqual(range(0, 60));
  });

  it("reads only the window's rows of a writetime stream, without the write-time columns", async () => {
    const ctx = setup();
    for (let id = 0; id < 10; id++) ctx.api.put("ks", "users", { id, name: `u${id}`, score: id }, micros(T0 - 20_000 + id * 1000));
    const schema = (await ctx.connector.describe({ options: users, userSchema: undefined, signal: ctx.signal })).schema;
    expect(schema.fields.map((f) => f.name)).toEqual(["id", "name", "score"]);
    const start = serializeStreamOffset({ table: "ks.users", mode: "writetime", type: "writetime", mark: micros(T0 - 17_000), rows: 0 });
    const end = await ctx.connector.stream!.latestOffset(latestInput(users, schema, start, { maxRecords: 4 }));
    // (T0 - 17 s, T0 - 5 s] holds ids 4..9 (id 3 is at the start mark); four of them fit: up to id 8's write time, less one.
    expect(parseStreamOffset(end, "end")).toMatchObject({ mark: micros(T0 - 12_000) - 1n, rows: 4 });
    const { batches } = await readBatch(ctx, users, schema, start, end);
    expect(idsOf(batches)).toEqual([4, 5, 6, 7]);
    expect(batches.every((b) => b.numCols === 3)).toBe(true);
    const row = batches.flatMap((b) => Array.from({ length: b.numRows }, (_, r) => ({ id: readValue(b.getChild("id")!, r), name: readValue(b.getChild("name")!, r), score: readValue(b.getChild("score")!, r) })));
    expect(row.find((r) => r.id === 5)).toEqual({ id: 5, name: "u5", score: 5 });
    // A narrower schema, and none at all (count()): the same rows.
    const narrow = new Schema([new Field("name", new Utf8())]);
    const named = (await readBatch(ctx, users, narrow, start, end)).batches.flatMap((b) => Array.from({ length: b.numRows }, (_, r) => readValue(b.getChild("name")!, r)));
    expect(named.sort()).toEqual(["u4", "u5", "u6", "u7"]);
    const counted = (await readBatch(ctx, users, new Schema([]), start, end)).batches.reduce((n, b) => n + b.numRows, 0);
    expect(counted).toBe(4);
  });

  it("reads a partitioner without numeric tokens as one whole-table partition", async () => {
    const ctx = setup();
    ctx.api.partitioner = "org.apache.cassandra.dht.ByteOrderedPartitioner";
    for (let id = 0; id < 8; id++) ctx.api.put("ks", "events", { id, ts: new Date(T0 - 10_000 + id * 1000) });
    const schema = new Schema([new Field("id", new Int32())]);
    const start = await ctx.connector.stream!.initialOffset({ options: events, schema, signal: ctx.signal });
    const end = await ctx.connector.stream!.latestOffset(latestInput(events, schema, start));
    const { batches, partitions } = await readBatch(ctx, events, schema, start, end);
    expect(partitions.map(decodeStreamPartition)).toEqual([expect.objectContaining({ ranges: [], whole: true })]);
    expect(idsOf(batches)).toEqual(range(0, 6));
  });

  it("needs starting_position for every streaming call, before any request", async () => {
    const ctx = setup();
    const schema = new Schema([new Field("id", new Int32())]);
    const options = { ...base, table: "events", stream_column: "ts" };
    const start = serializeStreamOffset({ table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: null, rows: 0 });
    const stream = ctx.connector.stream!;
    for (const call of [
      stream.initialOffset({ options, schema, signal: ctx.signal }),
      stream.latestOffset(latestInput(options, schema, start)),
      stream.planStreamRead({ options, schema, start, end: start, signal: ctx.signal }),
    ]) {
      const error = await rejection(call);
      expect(error.errorClass).toBe("STREAM_STARTING_POSITION_REQUIRED");
      expect(error.parameters).toMatchObject({ option: "starting_position", format: "pycassandra" });
    }
    expect(ctx.api.executes).toHaveLength(0);
  });

  it("checks the stream options and the schema when the stream is described", async () => {
    const ctx = setup();
    const describeWith = (options: Record<string, string>, userSchema?: Schema) => ctx.connector.describe({ options, userSchema, signal: ctx.signal });
    expect(await rejection(describeWith({ ...events, stream_column: "v" }))).toMatchObject({ errorClass: "STREAM_COLUMN_TYPE" });
    expect(await rejection(describeWith({ ...events, stream_column: "id" }))).toMatchObject({ errorClass: "STREAM_COLUMN_TYPE" });
    expect(await rejection(describeWith({ ...events, stream_column: "seen" }))).toMatchObject({ errorClass: "STREAM_COLUMN_NOT_INDEXED" });
    expect(await rejection(describeWith({ ...events, stream_column: "ts" }, new Schema([new Field("nope", new Int32())])))).toMatchObject({ errorClass: "COLUMN_UNKNOWN" });
    const narrow = new Schema([new Field("v", new Utf8())]);
    expect((await describeWith(events, narrow)).schema).toBe(narrow);
    // Every driver call checks the schema it is given against the table.
    const wrong = new Schema([new Field("nope", new Int32())]);
    const start = serializeStreamOffset({ table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: null, rows: 0 });
    for (const call of [
      ctx.connector.stream!.initialOffset({ options: events, schema: wrong, signal: ctx.signal }),
      ctx.connector.stream!.latestOffset(latestInput(events, wrong, start)),
      ctx.connector.stream!.planStreamRead({ options: events, schema: wrong, start, end: start, signal: ctx.signal }),
    ]) {
      expect(await rejection(call)).toMatchObject({ errorClass: "COLUMN_UNKNOWN", parameters: { column: "nope" } });
    }
    expect(ctx.api.executes).toHaveLength(0);
  });

  it("takes an empty end bound as none, and lets a catch-up ignore the limit and the bound", async () => {
    const ctx = setup();
    for (let id = 0; id < 10; id++) ctx.api.put("ks", "events", { id, ts: new Date(T0 - 30_000 + id * 1000) });
    const schema = new Schema([new Field("id", new Int32())]);
    const start = await ctx.connector.stream!.initialOffset({ options: events, schema, signal: ctx.signal });
    const latest = (extra: Partial<Pick<LatestOffsetInput, "maxRecords" | "endBound" | "catchUp">>) =>
      ctx.connector.stream!.latestOffset(latestInput(events, schema, start, extra)).then((text) => parseStreamOffset(text, "end"));
    expect(await latest({ endBound: "" })).toMatchObject({ mark: BigInt(T0 - LAG), rows: 10 });
    const bound = serializeStreamOffset({ table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: BigInt(T0 - 28_000), rows: 3 });
    expect(await latest({ endBound: bound })).toMatchObject({ mark: BigInt(T0 - 28_000), rows: 3 });
    expect(await latest({ endBound: bound, maxRecords: 2 })).toMatchObject({ mark: BigInt(T0 - 28_001), rows: 2 });
    expect(await latest({ endBound: bound, maxRecords: 2, catchUp: true })).toMatchObject({ mark: BigInt(T0 - LAG), rows: 10 });
  });

  it("refuses malformed offsets naming which one, and offsets of another stream", async () => {
    const ctx = setup();
    const schema = new Schema([new Field("id", new Int32())]);
    const ours = serializeStreamOffset({ table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: null, rows: 0 });
    const theirs = serializeStreamOffset({ table: "ks.users", mode: "writetime", type: "writetime", mark: 5n, rows: 1 });
    const stream = ctx.connector.stream!;
    const cases: Array<[Promise<unknown>, string, string]> = [
      [stream.latestOffset(latestInput(events, schema, "{")), "STREAM_OFFSET_INVALID", "start"],
      [stream.latestOffset(latestInput(events, schema, ours, { endBound: "{}" })), "STREAM_OFFSET_INVALID", "end bound"],
      [stream.planStreamRead({ options: events, schema, start: ours, end: " ", signal: ctx.signal }), "STREAM_OFFSET_INVALID", "end"],
      [stream.planStreamRead({ options: events, schema, start: "[]", end: ours, signal: ctx.signal }), "STREAM_OFFSET_INVALID", "start"],
    ];
    for (const [call, errorClass, offset] of cases) {
      const error = await rejection(call);
      expect(error.errorClass).toBe(errorClass);
      expect(error.parameters.offset).toBe(offset);
    }
    for (const call of [
      stream.latestOffset(latestInput(events, schema, theirs)),
      stream.latestOffset(latestInput(events, schema, ours, { endBound: theirs })),
      stream.planStreamRead({ options: events, schema, start: ours, end: theirs, signal: ctx.signal }),
      stream.planStreamRead({ options: events, schema, start: theirs, end: ours, signal: ctx.signal }),
    ]) {
      expect(await rejection(call)).toMatchObject({ errorClass: "STREAM_OFFSET_OTHER_TABLE", parameters: { offset_table: "ks.users", table: "ks.events" } });
    }
    expect(ctx.api.executes).toHaveLength(0);
  });
});
