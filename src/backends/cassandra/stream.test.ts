import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import { encodeDescriptor } from "../../core/descriptor.js";
import { silentLogger } from "../../core/logger.js";
import { thrown, rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import type { CassandraApi, IndexDef, RingInfo, TableDef } from "./client.js";
import { parseCassandraOptions, type CassandraOptions } from "./options.js";
import { MURMUR3_BOUNDS, RANDOM_BOUNDS } from "./planner.js";
import {
  checkOffsetTarget,
  clockMark,
  decodeStreamPartition,
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  readWindow,
  resolveStreamSpec,
  serializeStreamOffset,
  STREAM_KIND,
  STREAM_ROWS_PER_PARTITION,
  WindowCounter,
  type StreamContext,
  type StreamOffset,
  type StreamSpec,
} from "./stream.js";
import { FakeCassandra } from "./test-fakes.js";
import { seededRandom } from "../../../tests/support/seeded-random.js";
import { scalar, type CqlType } from "./types.js";

/** The fake "now" of the service: 2026-03-01T00:00:00Z. */
const T0 = Date.UTC(2026, 2, 1);
const LAG = 5_000;
const MIN_BIGINT = -(1n << 63n);
const MAX_BIGINT = (1n << 63n) - 1n;
const MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner";
const micros = (ms: number) => BigInt(ms) * 1000n;

const base = { host: "127.0.0.1", keyspace: "ks", table: "events" };

/** Streaming read options as the connector parses them (starting_position makes the read a stream). */
function streamOptions(extra: Record<string, string> = {}): CassandraOptions {
  return parseCassandraOptions({ ...base, starting_position: "earliest", stream_lag_ms: String(LAG), ...extra }, "read");
}

const sai = (target: string, className = "org.apache.cassandra.index.sai.StorageAttachedIndex"): IndexDef => ({ name: `${target}_idx`, target, className });

function tableDef(columns: Array<[string, CqlType]>, partitionKeys: string[], clusteringKeys: string[] = [], indexes?: IndexDef[]): TableDef {
  return {
    keyspace: "ks",
    name: "events",
    partitionKeys,
    clusteringKeys,
    columns: columns.map(([name, type]) => ({ name, type })),
    virtual: false,
    ...(indexes ? { indexes } : {}),
  };
}

function streamContext(api: CassandraApi, clock: FakeClock): StreamContext {
  return { api, config: { contactPoints: [{ host: "127.0.0.1", port: 9042 }], tls: undefined }, username: undefined, logger: silentLogger, signal: new AbortController().signal, clock };
}

/**
 * A fake ks.events (id int PRIMARY KEY, ts timestamp, n bigint, at timeuuid, v text) with
 * SAI indexes on ts, n and at, and the stream of `extra`'s options over it.
 */
function eventsStream(extra: Record<string, string>, indexes: IndexDef[] = [sai("ts"), sai("n"), sai("at")]) {
  const api = new FakeCassandra();
  const table = api.addTable(
    "ks",
    "events",
    [
      ["id", scalar("int")],
      ["ts", scalar("timestamp")],
      ["n", scalar("bigint")],
      ["at", scalar("timeuuid")],
      ["v", scalar("text")],
    ],
    ["id"],
  );
  table.def.indexes = indexes;
  const clock = new FakeClock();
  clock.time = T0;
  const options = streamOptions(extra);
  const spec = resolveStreamSpec(table.def, options);
  return { api, clock, ctx: streamContext(api, clock), options, spec };
}

function offsetOf(spec: StreamSpec, mark: bigint | null, rows = 0): StreamOffset {
  return { table: spec.table, mode: spec.mode, ...(spec.column !== undefined ? { column: spec.column } : {}), type: spec.type, mark, rows };
}

const noLimits = { maxRows: undefined, bound: undefined };
const timeuuidAt = (ms: number, ticks = 0) => cassandra.types.TimeUuid.fromDate(new Date(ms), ticks, "node01", "cl");

// ---------------------------------------------------------------------------------------

describe("WindowCounter", () => {
  const counted = (limit: number | undefined, marks: bigint[]) => {
    const counter = new WindowCounter(limit);
    for (const m of marks) counter.add(m);
    return counter;
  };

  it("counts every mark and keeps the largest, with or without a limit", () => {
    for (const limit of [undefined, 2, 1000]) {
      const counter = counted(limit, [5n, 9n, 1n, 9n, 3n]);
      expect(counter.rows).toBe(5);
      expect(counter.max).toBe(9n);
    }
    const none = new WindowCounter(3);
    expect(none.rows).toBe(0);
    expect(none.max).toBeNull();
    expect(none.cut()).toBeUndefined();
  });

  it("cuts nothing without a limit, or at or under it", () => {
    expect(counted(undefined, [1n, 2n, 3n, 4n, 5n]).cut()).toBeUndefined();
    expect(counted(10, [1n, 2n, 3n]).cut()).toBeUndefined();
    expect(counted(5, [5n, 4n, 3n, 2n, 1n]).cut()).toBeUndefined();
  });

  it("over the limit, moves the mark to just below the first mark that does not fit", () => {
    // Marks in any order: the smallest `limit` (1, 2, 3) fit; the mark is one less than the 4th smallest.
    expect(counted(3, [9n, 1n, 7n, 3n, 2n, 8n]).cut()).toEqual({ mark: 6n, rows: 3 });
    expect(counted(1, [10n, 20n]).cut()).toEqual({ mark: 19n, rows: 1 });
    // A gap: the cut mark need not be a value that occurs.
    expect(counted(2, [100n, 1n, 50n]).cut()).toEqual({ mark: 99n, rows: 2 });
  });

  it("never splits the rows that share a mark", () => {
    const marks = [1n, 2n, 3n, 3n, 3n, 4n];
    expect(counted(2, marks).cut()).toEqual({ mark: 2n, rows: 2 });
    // The 3s would pass 3 or 4 rows: they all wait for the next micro-batch.
    expect(counted(3, marks).cut()).toEqual({ mark: 2n, rows: 2 });
    expect(counted(4, marks).cut()).toEqual({ mark: 2n, rows: 2 });
    expect(counted(5, marks).cut()).toEqual({ mark: 3n, rows: 5 });
    expect(counted(6, marks).cut()).toBeUndefined();
  });

  it("makes progress when the first mark alone is over the limit", () => {
    expect(counted(2, [7n, 9n, 7n, 7n, 7n, 7n]).cut()?.mark).toBe(7n);
    expect(counted(1, [-3n, -3n]).cut()?.mark).toBe(-3n);
  });

  it("counts every row of a first mark that alone is over the limit", () => {
    // The micro-batch (start, 7] holds the five rows of mark 7: the offset's count must say so.
    expect(counted(2, [7n, 9n, 7n, 7n, 7n, 7n]).cut()).toEqual({ mark: 7n, rows: 5 });
  });

  it("keeps the mark just past the limit through a compaction", () => {
    // limit 3 keeps 8 values; the 9th add compacts to the smallest 4.
    const counter = counted(3, [1n, 2n, 3n, 4n, 100n, 100n, 100n, 100n, 100n]);
    expect(counter.cut()).toEqual({ mark: 3n, rows: 3 });
    // Compactions again and again with marks arriving largest first.
    expect(counted(3, Array.from({ length: 50 }, (_, i) => BigInt(50 - i))).cut()).toEqual({ mark: 3n, rows: 3 });
  });

  it("handles negative bigint marks", () => {
    const counter = counted(2, [-5n, -10n, 3n, -10n, MIN_BIGINT + 1n]);
    expect(counter.max).toBe(3n);
    expect(counter.cut()).toEqual({ mark: -11n, rows: 1 });
    expect(counted(2, [-5n, -10n, 3n, -10n]).cut()).toEqual({ mark: -6n, rows: 2 });
  });

  it("keeps the smallest limit + 1 marks when it grows and compacts past 65,536 kept values", () => {
    const limit = 70_000;
    const counter = new WindowCounter(limit);
    // Descending, so every compaction has to drop the larger marks it kept before.
    const total = 300_000;
    for (let i = total; i >= 1; i--) counter.add(BigInt(i) * 10n);
    expect(counter.rows).toBe(total);
    expect(counter.max).toBe(BigInt(total) * 10n);
    // Marks 10, 20, ..., 700000 fit; 700010 is the first that does not.
    expect(counter.cut()).toEqual({ mark: 700_009n, rows: limit });
  });

  it("cuts right past 65,536 kept values with shuffled marks and ties", () => {
    const limit = 100_000;
    const counter = new WindowCounter(limit);
    // 400,000 rows, 4 per mark value 0..99,999 (shuffled deterministically); negative offset.
    const values: bigint[] = [];
    for (let v = 0; v < 100_000; v++) for (let k = 0; k < 4; k++) values.push(BigInt(v) - 50_000n);
    const random = seededRandom(7);
    for (let i = values.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [values[i], values[j]] = [values[j]!, values[i]!];
    }
    for (const v of values) counter.add(v);
    expect(counter.rows).toBe(400_000);
    expect(counter.max).toBe(49_999n);
    // 100,000 rows = 25,000 whole marks: -50000 .. -25001 fit exactly, so the mark is -25001.
    expect(counter.cut()).toEqual({ mark: -25_001n, rows: 100_000 });
  });
});

// ---------------------------------------------------------------------------------------

describe("stream offsets", () => {
  it("serialize as the documented JSON and parse back", () => {
    const column: StreamOffset = { table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: 1764979200000n, rows: 120 };
    const text = serializeStreamOffset(column);
    expect(text).toBe('{"table":"ks.events","mode":"column","column":"ts","type":"timestamp","mark":"1764979200000","rows":120}');
    expect(parseStreamOffset(text, "start")).toEqual(column);
    const writetime: StreamOffset = { table: "ks.users", mode: "writetime", type: "writetime", mark: 1764979200000000n, rows: 7 };
    expect(serializeStreamOffset(writetime)).toBe('{"table":"ks.users","mode":"writetime","type":"writetime","mark":"1764979200000000","rows":7}');
    expect(parseStreamOffset(serializeStreamOffset(writetime), "start")).toEqual(writetime);
    for (const offset of [
      { ...column, mark: null, rows: 0 },
      { ...column, type: "bigint" as const, mark: MIN_BIGINT },
      { ...column, type: "bigint" as const, mark: MAX_BIGINT },
      { ...column, type: "timeuuid" as const, mark: -1n },
    ]) {
      const parsed = parseStreamOffset(serializeStreamOffset(offset), "end");
      expect(parsed).toEqual(offset);
      expect(serializeStreamOffset(parsed)).toBe(serializeStreamOffset(offset));
    }
    expect(parseStreamOffset('{"table":"ks.events","mode":"column","column":"ts","type":"timestamp","mark":null,"rows":0}', "start").mark).toBeNull();
  });

  const valid = { table: "ks.events", mode: "column", column: "ts", type: "timestamp", mark: "100", rows: 1 };
  it.each([
    ["empty", "", "is empty"],
    ["blank", "  \n", "is empty"],
    ["not JSON", "{table:", "is not JSON"],
    ["JSON null", "null", "is not a Cassandra stream offset"],
    ["a JSON array", "[]", "is not a Cassandra stream offset"],
    ["a JSON number", "42", "is not a Cassandra stream offset"],
    ["without table", JSON.stringify({ ...valid, table: undefined }), "is not a Cassandra stream offset"],
    ["a numeric table", JSON.stringify({ ...valid, table: 5 }), "is not a Cassandra stream offset"],
    ["an unknown mode", JSON.stringify({ ...valid, mode: "cdc" }), "is not a Cassandra stream offset"],
    ["an unknown type", JSON.stringify({ ...valid, type: "date" }), "is not a Cassandra stream offset"],
    ["column mode without column", JSON.stringify({ ...valid, column: undefined }), "is not a Cassandra stream offset"],
    ["a numeric column", JSON.stringify({ ...valid, column: 3 }), "is not a Cassandra stream offset"],
    ["writetime mode with a column", JSON.stringify({ ...valid, mode: "writetime", type: "writetime" }), "is not a Cassandra stream offset"],
    ["writetime mode with a column type", JSON.stringify({ ...valid, mode: "writetime", column: undefined, type: "timestamp" }), "is not a Cassandra stream offset"],
    ["column mode with type writetime", JSON.stringify({ ...valid, type: "writetime" }), "is not a Cassandra stream offset"],
    ["a numeric mark", JSON.stringify({ ...valid, mark: 100 }), "is not a Cassandra stream offset"],
    ["a fractional mark", JSON.stringify({ ...valid, mark: "1.5" }), "is not a Cassandra stream offset"],
    ["a mark with a plus sign", JSON.stringify({ ...valid, mark: "+5" }), "is not a Cassandra stream offset"],
    ["an empty mark", JSON.stringify({ ...valid, mark: "" }), "is not a Cassandra stream offset"],
    ["no mark", JSON.stringify({ ...valid, mark: undefined }), "is not a Cassandra stream offset"],
    ["negative rows", JSON.stringify({ ...valid, rows: -1 }), "is not a Cassandra stream offset"],
    ["fractional rows", JSON.stringify({ ...valid, rows: 1.5 }), "is not a Cassandra stream offset"],
    ["rows as text", JSON.stringify({ ...valid, rows: "1" }), "is not a Cassandra stream offset"],
    ["unsafe rows", JSON.stringify({ ...valid, rows: 2 ** 53 }), "is not a Cassandra stream offset"],
    ["no rows", JSON.stringify({ ...valid, rows: undefined }), "is not a Cassandra stream offset"],
  ])("refuses %s with STREAM_OFFSET_INVALID", (_what, text, fragment) => {
    const error = thrown(() => parseStreamOffset(text, "end bound"));
    expect(error.errorClass).toBe("STREAM_OFFSET_INVALID");
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.parameters).toEqual({ offset: "end bound" });
    expect(error.message).toContain(`The end bound offset ${fragment}`);
  });

  it("belong to one stream: another table, column, type or mode is STREAM_OFFSET_OTHER_TABLE", () => {
    const table = tableDef(
      [
        ["id", scalar("int")],
        ["ts", scalar("timestamp")],
        ["at", scalar("timeuuid")],
        ["v", scalar("text")],
      ],
      ["id"],
      [],
      [sai("ts"), sai("at")],
    );
    const spec = resolveStreamSpec(table, streamOptions({ stream_column: "ts" }));
    const ours = offsetOf(spec, 5n, 1);
    expect(() => checkOffsetTarget(ours, spec)).not.toThrow();
    expect(() => checkOffsetTarget({ ...ours, mark: null, rows: 0 }, spec)).not.toThrow();
    const others: StreamOffset[] = [
      { ...ours, table: "ks.orders" },
      { ...ours, table: "other.events" },
      { ...ours, column: "at" },
      { ...ours, type: "bigint" },
      { table: "ks.events", mode: "writetime", type: "writetime", mark: 5n, rows: 1 },
    ];
    for (const offset of others) {
      const error = thrown(() => checkOffsetTarget(offset, spec));
      expect(error.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
      expect(error.parameters).toEqual({ offset_table: offset.table, table: "ks.events" });
      expect(error.message).toContain("this query streams ks.events by column ts (timestamp)");
      expect(error.message).toContain("checkpointLocation");
    }
    const writetime = resolveStreamSpec(table, streamOptions({ stream_mode: "writetime" }));
    const error = thrown(() => checkOffsetTarget(ours, writetime));
    expect(error.message).toContain("belongs to a stream of ks.events by column ts (timestamp), but this query streams ks.events by write time");
  });
});

// ---------------------------------------------------------------------------------------

describe("resolveStreamSpec", () => {
  const columns: Array<[string, CqlType]> = [
    ["id", scalar("int")],
    ["day", scalar("text")],
    ["at", scalar("timeuuid")],
    ["seq", scalar("bigint")],
    ["ts", scalar("timestamp")],
    ["MixedCase", scalar("timestamp")],
    ["legacy", scalar("timestamp")],
    ["label", scalar("text")],
    ["d", scalar("date")],
  ];
  /** PRIMARY KEY ((id, day), at, seq). */
  const table = (indexes?: IndexDef[]) => tableDef(columns, ["id", "day"], ["at", "seq"], indexes);

  it("takes the first clustering column, which is read as a filtered slice", () => {
    const spec = resolveStreamSpec(table(), streamOptions({ stream_column: "at" }));
    expect(spec).toEqual({
      keyspace: "ks",
      tableName: "events",
      table: "ks.events",
      partitionKey: ["id", "day"],
      mode: "column",
      column: "at",
      type: "timeuuid",
      allowFiltering: true,
      writetimeColumns: [],
    });
  });

  it.each([
    ["sai", "ts", "ts"],
    ["SAI", "ts", "ts"],
    ["org.apache.cassandra.index.sai.StorageAttachedIndex", "ts", "ts"],
    ["StorageAttachedIndex", "ts", "ts"],
    ["sai", '"MixedCase"', "MixedCase"],
    ["org.apache.cassandra.index.sai.StorageAttachedIndex", '"MixedCase"', "MixedCase"],
  ])("takes a column with an SAI index (class %s, target %s) without ALLOW FILTERING", (className, target, column) => {
    const spec = resolveStreamSpec(table([sai(target, className)]), streamOptions({ stream_column: column }));
    expect(spec).toMatchObject({ mode: "column", column, type: "timestamp", allowFiltering: false });
  });

  it("prefers the SAI index of a first clustering column over filtering", () => {
    expect(resolveStreamSpec(table([sai("at", "sai")]), streamOptions({ stream_column: "at" })).allowFiltering).toBe(false);
  });

  it.each([
    ["a legacy secondary index", { name: "legacy_idx", target: "legacy", className: undefined }],
    ["a SASI index", { name: "legacy_idx", target: "legacy", className: "org.apache.cassandra.index.sasi.SASIIndex" }],
    ["an SAI index on another column", sai("ts")],
    ["an SAI index on a collection's values", sai("values(legacy)", "sai")],
    ["an SAI index whose class only contains the name", sai("legacy", "com.example.NotStorageAttachedIndexAtAll")],
  ])("does not count %s", (_what, index: IndexDef) => {
    const error = thrown(() => resolveStreamSpec(table([index]), streamOptions({ stream_column: "legacy" })));
    expect(error.errorClass).toBe("STREAM_COLUMN_NOT_INDEXED");
  });

  it("refuses a regular column without an SAI index, and says how to fix it", () => {
    const error = thrown(() => resolveStreamSpec(table(), streamOptions({ stream_column: "MixedCase" })));
    expect(error.errorClass).toBe("STREAM_COLUMN_NOT_INDEXED");
    expect(error.parameters).toEqual({ option: "stream_column", column: "MixedCase", keyspace: "ks", table: "events" });
    expect(error.message).toContain("'MixedCase', a regular column of table ks.events");
    expect(error.message).toContain(`CREATE INDEX ON "ks"."events" ("MixedCase") USING 'sai'`);
    expect(error.message).toContain('.option("allow_filtering", "true")');
  });

  it("names a partition-key column and a clustering column after the first, and accepts each with allow_filtering", () => {
    const key = tableDef(
      [
        ["k", scalar("bigint")],
        ["c1", scalar("int")],
        ["c2", scalar("timestamp")],
      ],
      ["k"],
      ["c1", "c2"],
    );
    expect(thrown(() => resolveStreamSpec(key, streamOptions({ stream_column: "k" }))).message).toContain("'k', a partition-key column of table ks.events");
    expect(thrown(() => resolveStreamSpec(key, streamOptions({ stream_column: "c2" }))).message).toContain("'c2', a clustering column after the first of table ks.events");
    expect(resolveStreamSpec(key, streamOptions({ stream_column: "k", allow_filtering: "true" }))).toMatchObject({ column: "k", type: "bigint", allowFiltering: true });
    expect(resolveStreamSpec(key, streamOptions({ stream_column: "c2", allow_filtering: "true" }))).toMatchObject({ column: "c2", type: "timestamp", allowFiltering: true });
    expect(resolveStreamSpec(table(), streamOptions({ stream_column: "legacy", allow_filtering: "true" }))).toMatchObject({ column: "legacy", allowFiltering: true });
  });

  it.each([
    ["label", "text"],
    ["d", "date"],
    ["day", "text"],
  ])("refuses column %s of type %s (STREAM_COLUMN_TYPE), even with allow_filtering", (column, type) => {
    const error = thrown(() => resolveStreamSpec(table(), streamOptions({ stream_column: column, allow_filtering: "true" })));
    expect(error.errorClass).toBe("STREAM_COLUMN_TYPE");
    expect(error.parameters).toEqual({ option: "stream_column", column, type });
  });

  it("refuses collection and counter columns by type", () => {
    const odd = tableDef(
      [
        ["id", scalar("int")],
        ["hits", scalar("counter")],
        ["times", { kind: "list", element: scalar("timestamp"), frozen: true }],
      ],
      ["id"],
    );
    expect(thrown(() => resolveStreamSpec(odd, streamOptions({ stream_column: "hits", allow_filtering: "true" }))).parameters.type).toBe("counter");
    expect(thrown(() => resolveStreamSpec(odd, streamOptions({ stream_column: "times", allow_filtering: "true" }))).errorClass).toBe("STREAM_COLUMN_TYPE");
  });

  it("refuses an unknown column with a suggestion (names are case-sensitive)", () => {
    const error = thrown(() => resolveStreamSpec(table(), streamOptions({ stream_column: "TS" })));
    expect(error.errorClass).toBe("COLUMN_UNKNOWN");
    expect(error.parameters).toEqual({ option: "stream_column", column: "TS", keyspace: "ks", table: "events", suggestion: "ts" });
    expect(error.message).toContain("Did you mean 'ts'?");
    const far = thrown(() => resolveStreamSpec(table(), streamOptions({ stream_column: "completely_else" })));
    expect(far.parameters.suggestion).toBe("");
    expect(far.message).not.toContain("Did you mean");
    expect(far.message).toContain("Its columns: id, day, at, seq,");
  });

  it("needs stream_column in column mode (STREAM_COLUMN_REQUIRED)", () => {
    const error = thrown(() => resolveStreamSpec(table(), streamOptions()));
    expect(error.errorClass).toBe("STREAM_COLUMN_REQUIRED");
    expect(error.parameters).toEqual({ option: "stream_column", keyspace: "ks", table: "events" });
    expect(error.message).toContain('.option("stream_mode", "writetime")');
  });

  it("refuses stream_column with stream_mode writetime (OPTION_CONFLICT)", () => {
    const error = thrown(() => resolveStreamSpec(table(), streamOptions({ stream_mode: "writetime", stream_column: "ts" })));
    expect(error.errorClass).toBe("OPTION_CONFLICT");
    expect(error.parameters).toEqual({ option: "stream_column" });
  });

  it("follows the write times of the regular columns that have a single write time", () => {
    const udtType = (frozen: boolean): CqlType => ({ kind: "udt", keyspace: "ks", name: "addr", fields: [{ name: "city", type: scalar("text") }], frozen });
    const wide = tableDef(
      [
        ["z_text", scalar("text")],
        ["id", scalar("int")],
        ["c", scalar("timestamp")],
        ["tags", { kind: "set", element: scalar("text"), frozen: false }],
        ["frozen_tags", { kind: "set", element: scalar("text"), frozen: true }],
        ["items", { kind: "list", element: scalar("int"), frozen: false }],
        ["frozen_items", { kind: "list", element: scalar("int"), frozen: true }],
        ["attrs", { kind: "map", key: scalar("text"), value: scalar("int"), frozen: false }],
        ["frozen_attrs", { kind: "map", key: scalar("text"), value: scalar("int"), frozen: true }],
        ["address", udtType(false)],
        ["frozen_address", udtType(true)],
        ["pair", { kind: "tuple", elements: [scalar("int"), scalar("text")] }],
        ["hits", scalar("counter")],
        ["odd", { kind: "unsupported", name: "org.example.Custom" }],
        ["a_int", scalar("int")],
      ],
      ["id"],
      ["c"],
    );
    const spec = resolveStreamSpec(wide, streamOptions({ stream_mode: "writetime" }));
    expect(spec).toEqual({
      keyspace: "ks",
      tableName: "events",
      table: "ks.events",
      partitionKey: ["id"],
      mode: "writetime",
      type: "writetime",
      allowFiltering: false,
      writetimeColumns: ["a_int", "frozen_address", "frozen_attrs", "frozen_items", "frozen_tags", "pair", "z_text"],
    });
    expect(spec.column).toBeUndefined();
  });

  it("refuses writetime mode for a table without such a column (STREAM_WRITETIME_NO_COLUMNS)", () => {
    const keysOnly = tableDef(
      [
        ["id", scalar("int")],
        ["c", scalar("timestamp")],
        ["hits", scalar("counter")],
        ["tags", { kind: "list", element: scalar("text"), frozen: false }],
      ],
      ["id"],
      ["c"],
    );
    const error = thrown(() => resolveStreamSpec(keysOnly, streamOptions({ stream_mode: "writetime" })));
    expect(error.errorClass).toBe("STREAM_WRITETIME_NO_COLUMNS");
    expect(error.parameters).toEqual({ keyspace: "ks", table: "events", option: "stream_mode" });
  });
});

// ---------------------------------------------------------------------------------------

describe("readWindow", () => {
  const shape = (type: "timestamp" | "timeuuid" | "bigint", column = "ts", allowFiltering = false) => ({ mode: "column" as const, column, type, allowFiltering, writetimeColumns: [] });

  it("bounds a timestamp column by Dates: after exclusive, upTo inclusive", () => {
    const window = readWindow(shape("timestamp", "ts", true), 1_000n, 2_500n);
    expect(window.conditions).toEqual(['"ts" > ?', '"ts" <= ?']);
    expect(window.params).toEqual([new Date(1_000), new Date(2_500)]);
    expect(window.columns).toEqual([]);
    expect(window.allowFiltering).toBe(true);
    expect(window.keep).toBeUndefined();
  });

  it("bounds a timeuuid column with maxTimeuuid of the millisecond", () => {
    const window = readWindow(shape("timeuuid", "at"), BigInt(T0 - 1), BigInt(T0));
    expect(window.conditions).toEqual(['"at" > maxTimeuuid(?)', '"at" <= maxTimeuuid(?)']);
    expect(window.params).toEqual([new Date(T0 - 1), new Date(T0)]);
    expect(window.allowFiltering).toBe(false);
  });

  it("bounds a bigint column by the values themselves, negative ones too", () => {
    const window = readWindow(shape("bigint", "seq"), -20n, MAX_BIGINT);
    expect(window.conditions).toEqual(['"seq" > ?', '"seq" <= ?']);
    expect(window.params).toEqual([-20n, MAX_BIGINT]);
  });

  it("leaves out a missing bound, and quotes the column", () => {
    expect(readWindow(shape("timestamp", "MixedCase"), null, 7n)).toMatchObject({ conditions: ['"MixedCase" <= ?'], params: [new Date(7)] });
    expect(readWindow(shape("bigint", 'we"ird'), 7n, null)).toMatchObject({ conditions: ['"we""ird" > ?'], params: [7n] });
    expect(readWindow(shape("bigint"), null, null)).toMatchObject({ conditions: [], params: [] });
  });

  it("selects the write times in writetime mode and keeps the rows whose newest one is in the window", () => {
    const window = readWindow({ mode: "writetime", type: "writetime", allowFiltering: true, writetimeColumns: ["name", "Score"] }, 100n, 200n);
    expect(window.conditions).toEqual([]);
    expect(window.params).toEqual([]);
    expect(window.columns).toEqual(['WRITETIME("name")', 'WRITETIME("Score")']);
    expect(window.allowFiltering).toBe(false);
    // Columns: two schema columns, then the write times (extraStart 2).
    const name = [50n, null, 150n, 200n, 201n, null, 100n, 99n];
    const score = [150n, 180n, null, 30n, 30n, null, 100n, 101n];
    const values = [Array<unknown>(8).fill("k"), Array<unknown>(8).fill(1), name, score];
    const kept = Array.from({ length: 8 }, (_, r) => window.keep!(values, 2, r));
    // Row newest: 150, 180, 150, 200 (upTo, in), 201 (out), none (out), 100 (= after, out), 101.
    expect(kept).toEqual([true, true, true, true, false, false, false, true]);
    // Undefined is a missing value too; numbers and driver Longs are write times as well.
    expect(window.keep!([[undefined], [150]], 0, 0)).toBe(true);
    expect(window.keep!([[undefined], [undefined]], 0, 0)).toBe(false);
    expect(window.keep!([[cassandra.types.Long.fromString("250")], [null]], 0, 0)).toBe(false);
    expect(window.keep!([[cassandra.types.Long.fromString("120")], [null]], 0, 0)).toBe(true);
  });

  it("keeps every row with a write time when a writetime bound is missing", () => {
    const open = readWindow({ mode: "writetime", type: "writetime", allowFiltering: false, writetimeColumns: ["a"] }, null, null);
    expect([MIN_BIGINT, 0n, MAX_BIGINT, null].map((t) => open.keep!([[t]], 0, 0))).toEqual([true, true, true, false]);
    const upper = readWindow({ mode: "writetime", type: "writetime", allowFiltering: false, writetimeColumns: ["a"] }, null, 10n);
    expect([-5n, 10n, 11n].map((t) => upper.keep!([[t]], 0, 0))).toEqual([true, true, false]);
  });
});

// ---------------------------------------------------------------------------------------

describe("clockMark", () => {
  it("is the clock less the lag: milliseconds for timestamp and timeuuid, microseconds for write time, none for bigint", () => {
    expect(clockMark({ type: "timestamp" }, T0, LAG)).toBe(BigInt(T0 - LAG));
    expect(clockMark({ type: "timeuuid" }, T0, 0)).toBe(BigInt(T0));
    expect(clockMark({ type: "writetime" }, T0, LAG)).toBe(micros(T0 - LAG));
    expect(clockMark({ type: "bigint" }, T0, LAG)).toBeUndefined();
    expect(clockMark({ type: "timestamp" }, T0 + 0.7, 0)).toBe(BigInt(T0));
  });
});

// ---------------------------------------------------------------------------------------

describe("initialOffset", () => {
  const start = async (extra: Record<string, string>, setup?: (api: FakeCassandra) => void) => {
    const s = eventsStream(extra);
    setup?.(s.api);
    return { offset: await initialOffset(s.ctx, s.options, s.spec), api: s.api };
  };

  it("starts before every row for earliest (any case), without a query", async () => {
    for (const [stream_column, type] of [
      ["ts", "timestamp"],
      ["at", "timeuuid"],
      ["n", "bigint"],
    ]) {
      const { offset, api } = await start({ stream_column: stream_column!, starting_position: " EARLIEST " });
      expect(offset).toEqual({ table: "ks.events", mode: "column", column: stream_column, type, mark: null, rows: 0 });
      expect(api.executes).toHaveLength(0);
    }
    const { offset } = await start({ stream_mode: "writetime", starting_position: "earliest" });
    expect(offset).toEqual({ table: "ks.events", mode: "writetime", type: "writetime", mark: null, rows: 0 });
  });

  it("starts at the clock less the lag for latest time marks", async () => {
    expect((await start({ stream_column: "ts", starting_position: "latest" })).offset.mark).toBe(BigInt(T0 - LAG));
    expect((await start({ stream_column: "at", starting_position: "Latest", stream_lag_ms: "0" })).offset.mark).toBe(BigInt(T0));
    const writetime = await start({ stream_mode: "writetime", starting_position: "latest", stream_lag_ms: "1500" });
    expect(writetime.offset.mark).toBe(micros(T0 - 1500));
    expect(writetime.api.executes).toHaveLength(0);
  });

  it("starts at the largest value present for latest on a bigint column (before every row when there is none)", async () => {
    const { offset, api } = await start({ stream_column: "n", starting_position: "latest" }, (fake) => {
      for (const [id, n] of [
        [1, 5n],
        [2, 900n],
        [3, -4n],
        [4, null],
      ] as const)
        fake.put("ks", "events", { id, n, v: "x" });
    });
    expect(offset).toMatchObject({ mark: 900n, rows: 0 });
    // One probe per token range, without bounds on the column.
    expect(api.executes).toHaveLength(4);
    expect(api.executes[0]!.query).toBe('SELECT "id", "n" FROM "ks"."events" WHERE token("id") > ? AND token("id") <= ?');
    expect(api.executes[0]!.params).toEqual([MIN_BIGINT, -6148914691236517206n]);
    expect((await start({ stream_column: "n", starting_position: "latest" })).offset.mark).toBeNull();
  });

  it.each([
    ["2026-03-01T00:00:00Z", T0],
    ["2026-03-01T00:00:00.001Z", T0 + 1],
    ["2026-03-01", T0],
    ["2026-03-01 00:00:05", T0 + 5000],
    ["2026-03-01T01:00:00+01:00", T0],
  ])("starts at an ISO timestamp %s inclusive: the mark is one before it", async (text, ms) => {
    expect((await start({ stream_column: "ts", starting_position: text })).offset.mark).toBe(BigInt(ms) - 1n);
    expect((await start({ stream_column: "at", starting_position: text })).offset.mark).toBe(BigInt(ms) - 1n);
    expect((await start({ stream_mode: "writetime", starting_position: text })).offset.mark).toBe(micros(ms) - 1n);
  });

  it("starts at a timeuuid's millisecond inclusive", async () => {
    const uuid = timeuuidAt(T0 + 123, 4567).toString();
    expect((await start({ stream_column: "at", starting_position: uuid })).offset.mark).toBe(BigInt(T0 + 122));
    expect((await start({ stream_column: "at", starting_position: uuid.toUpperCase() })).offset.mark).toBe(BigInt(T0 + 122));
  });

  it.each([
    ["42", 41n],
    ["-7", -8n],
    ["+5", 4n],
    [" 0 ", -1n],
    ["9223372036854775807", MAX_BIGINT - 1n],
  ])("starts a bigint column at value %s inclusive", async (text, mark) => {
    expect((await start({ stream_column: "n", starting_position: text })).offset.mark).toBe(mark);
  });

  it("starts a bigint column at its smallest value with a mark Cassandra can compare with, and reads those rows", async () => {
    const s = eventsStream({ stream_column: "n", starting_position: MIN_BIGINT.toString() });
    s.api.put("ks", "events", { id: 1, n: MIN_BIGINT });
    s.api.put("ks", "events", { id: 2, n: 0n });
    s.api.put("ks", "events", { id: 3, n: 5n });
    const offset = await initialOffset(s.ctx, s.options, s.spec);
    // The mark is bound as a CQL bigint (`"n" > ?`): below -2^63 the driver wraps it to 2^63 - 1.
    expect.soft(offset.mark === null || offset.mark >= MIN_BIGINT, `mark ${offset.mark} fits a bigint`).toBe(true);
    const latest = await latestOffset(s.ctx, s.options, s.spec, offset, noLimits);
    expect.soft(latest, "every row is at or after the starting value").toMatchObject({ mark: 5n, rows: 3 });
  });

  it.each([
    ["ts", "yesterday", "ISO-8601"],
    ["ts", "1764979200000", "ISO-8601"],
    ["ts", "2026-02-30", "ISO-8601"],
    ["ts", timeuuidAt(T0).toString(), "ISO-8601"],
    ["at", "yesterday", "or a timeuuid"],
    ["at", "123e4567-e89b-42d3-a456-426614174000", "or a timeuuid"],
    ["at", "1764979200000", "or a timeuuid"],
    ["n", "1.5", "a bigint value"],
    ["n", "2026-03-01", "a bigint value"],
    ["n", "9223372036854775808", "a bigint value"],
    ["n", "-9223372036854775809", "a bigint value"],
    ["n", "0x10", "a bigint value"],
  ])("refuses stream_column %s starting at %s (OPTION_INVALID_VALUE)", async (stream_column, text, expected) => {
    const s = eventsStream({ stream_column, starting_position: text });
    const error = await rejection(initialOffset(s.ctx, s.options, s.spec));
    expect(error.errorClass).toBe("OPTION_INVALID_VALUE");
    expect(error.parameters).toEqual({ option: "starting_position", value: text });
    expect(error.message).toContain(`Option 'starting_position' has the invalid value '${text}'`);
    expect(error.message).toContain(expected);
    expect(s.api.executes).toHaveLength(0);
  });

  it("refuses a number or a timeuuid as the start of a writetime stream", async () => {
    for (const text of ["1764979200000000", timeuuidAt(T0).toString()]) {
      const s = eventsStream({ stream_mode: "writetime", starting_position: text });
      const error = await rejection(initialOffset(s.ctx, s.options, s.spec));
      expect(error).toMatchObject({ errorClass: "OPTION_INVALID_VALUE", parameters: { option: "starting_position" } });
      expect(error.message).toContain("by write time");
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("latestOffset", () => {
  /** ids 0..count-1 with ts = T0 - 60 s + msOf(id). */
  const withTimestamps = (api: FakeCassandra, count: number, msOf: (id: number) => number) => {
    for (let id = 0; id < count; id++) api.put("ks", "events", { id, ts: new Date(T0 - 60_000 + msOf(id)), v: `v${id}` });
  };

  it("moves a timestamp mark to the clock less the lag, counting the rows of the window", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 40, (id) => 20_000 + id * 1000); // T0 - 40 s .. T0 - 1 s
    const start = await initialOffset(s.ctx, s.options, s.spec);
    const end = await latestOffset(s.ctx, s.options, s.spec, start, noLimits);
    // ids 0..35 are at or before T0 - 5 s.
    expect(end).toEqual({ ...start, mark: BigInt(T0 - LAG), rows: 36 });
    expect(s.api.executes).toHaveLength(4);
    expect(new Set(s.api.executes.map((e) => e.query))).toEqual(new Set(['SELECT "id", "ts" FROM "ks"."events" WHERE token("id") > ? AND token("id") <= ? AND "ts" <= ?']));
    expect(s.api.executes.map((e) => e.params[2])).toEqual(Array(4).fill(new Date(T0 - LAG)));
    // Streaming reads read at the writes' default consistency, paged by read_page_size.
    expect(s.api.executes.every((e) => e.options.consistency === "LOCAL_QUORUM" && e.options.fetchSize === 5000 && e.options.idempotent === true)).toBe(true);
    // The token ranges of the probes cover the ring once.
    const ranges = s.api.executes.map((e) => [e.params[0], e.params[1]] as [bigint, bigint]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(ranges[0]![0]).toBe(MURMUR3_BOUNDS.min);
    expect(ranges.at(-1)![1]).toBe(MURMUR3_BOUNDS.max);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);

    // The next window (T0 - 5 s, T0 - 1 s] holds ids 36..39.
    s.clock.time = T0 + 4_000;
    s.api.executes.length = 0;
    const next = await latestOffset(s.ctx, s.options, s.spec, end, noLimits);
    expect(next).toEqual({ ...end, mark: BigInt(T0 - 1000), rows: 4 });
    expect(s.api.executes[0]!.query).toContain('AND "ts" > ? AND "ts" <= ?');
    expect(s.api.executes[0]!.params.slice(2)).toEqual([new Date(T0 - LAG), new Date(T0 - 1000)]);
  });

  it("returns the start itself when the window is empty", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 5, (id) => id * 1000);
    const start = offsetOf(s.spec, BigInt(T0 - 30_000), 5);
    expect(await latestOffset(s.ctx, s.options, s.spec, start, noLimits)).toBe(start);
    expect(s.api.executes.length).toBeGreaterThan(0);
    // An empty table from earliest, too.
    const empty = eventsStream({ stream_column: "ts" });
    const earliest = offsetOf(empty.spec, null);
    expect(await latestOffset(empty.ctx, empty.options, empty.spec, earliest, noLimits)).toBe(earliest);
  });

  it("returns the start without a query while the clock has not moved past its mark", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 60, (id) => id * 1000);
    const start = offsetOf(s.spec, BigInt(T0 - LAG), 3);
    expect(await latestOffset(s.ctx, s.options, s.spec, start, noLimits)).toBe(start);
    s.clock.time = T0 - 2_000; // the clock went back
    expect(await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: 1, bound: undefined })).toBe(start);
    expect(s.api.executes).toHaveLength(0);
    // One millisecond later the window (mark, mark + 1] is read.
    s.api.put("ks", "events", { id: 1000, ts: new Date(T0 - LAG + 1) });
    s.clock.time = T0 + 1;
    expect(await latestOffset(s.ctx, s.options, s.spec, start, noLimits)).toEqual({ ...start, mark: BigInt(T0 - LAG + 1), rows: 1 });
  });

  it("cuts at max_rows without splitting a mark's rows, and the cuts add up to the whole window", async () => {
    const s = eventsStream({ stream_column: "ts" });
    // 30 rows, three per second: T0 - 60 s, T0 - 59 s, ... T0 - 51 s.
    withTimestamps(s.api, 30, (id) => Math.floor(id / 3) * 1000);
    const second = (k: number) => BigInt(T0 - 60_000 + k * 1000);
    let offset = offsetOf(s.spec, null);
    const seen: Array<[bigint | null, number]> = [];
    for (;;) {
      const next = await latestOffset(s.ctx, s.options, s.spec, offset, { maxRows: 10, bound: undefined });
      if (next === offset) break;
      seen.push([next.mark, next.rows]);
      offset = next;
    }
    expect(seen).toEqual([
      [second(3) - 1n, 9],
      [second(6) - 1n, 9],
      [second(9) - 1n, 9],
      [BigInt(T0 - LAG), 3],
    ]);
  });

  it("makes progress when one mark alone holds more rows than max_rows", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 6, (id) => (id < 5 ? 0 : 1000));
    const end = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, null), { maxRows: 2, bound: undefined });
    expect(end.mark).toBe(BigInt(T0 - 60_000));
    const next = await latestOffset(s.ctx, s.options, s.spec, end, { maxRows: 2, bound: undefined });
    expect(next).toMatchObject({ mark: BigInt(T0 - LAG), rows: 1 });
  });

  it("counts in the offset every row of a mark that alone holds more rows than max_rows", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 6, (id) => (id < 5 ? 0 : 1000));
    const end = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, null), { maxRows: 2, bound: undefined });
    // The micro-batch (null, T0 - 60 s] reads the five rows of that millisecond; `rows` sizes its partitions.
    expect(end).toMatchObject({ mark: BigInt(T0 - 60_000), rows: 5 });
  });

  it("never passes an AvailableNow bound", async () => {
    const s = eventsStream({ stream_column: "ts" });
    withTimestamps(s.api, 20, (id) => id * 1000); // T0 - 60 s .. T0 - 41 s
    const start = offsetOf(s.spec, null);
    const target = await latestOffset(s.ctx, s.options, s.spec, start, noLimits);
    expect(target).toMatchObject({ mark: BigInt(T0 - LAG), rows: 20 });
    // Rows arrive and the clock moves on: the run still ends at its target.
    s.api.put("ks", "events", { id: 100, ts: new Date(T0 - 4_000), v: "late" });
    s.clock.time = T0 + 60_000;
    s.api.executes.length = 0;
    const bounded = await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: undefined, bound: target });
    expect(bounded).toEqual({ ...start, mark: BigInt(T0 - LAG), rows: 20 });
    // Without a limit the target itself is the answer: it was counted from this start (no second count).
    expect(bounded).toBe(target);
    expect(s.api.executes).toHaveLength(0);
    expect(await latestOffset(s.ctx, s.options, s.spec, bounded, { maxRows: 5, bound: target })).toBe(bounded);
    expect(s.api.executes).toHaveLength(0);
    // A bound before any row (null mark) stops at once; a bound before the clock mark wins over the clock.
    expect(await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: undefined, bound: offsetOf(s.spec, null) })).toBe(start);
    expect(s.api.executes).toHaveLength(0);
    const early = await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: undefined, bound: offsetOf(s.spec, BigInt(T0 - 50_500)) });
    expect(early).toMatchObject({ mark: BigInt(T0 - 50_500), rows: 10 });
    // With max_rows under the bound, the cut comes first.
    const cut = await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: 4, bound: target });
    expect(cut).toMatchObject({ mark: BigInt(T0 - 56_001), rows: 4 });
  });

  it("moves a bigint mark to the largest value present, bounded by an AvailableNow target", async () => {
    const s = eventsStream({ stream_column: "n" });
    s.clock.time = 0; // a bigint stream does not follow the clock
    for (let id = 0; id < 11; id++) s.api.put("ks", "events", { id, n: BigInt(id - 5) * 100n });
    const start = offsetOf(s.spec, null);
    const end = await latestOffset(s.ctx, s.options, s.spec, start, noLimits);
    expect(end).toEqual({ ...start, mark: 500n, rows: 11 });
    expect(s.api.executes[0]!.query).toBe('SELECT "id", "n" FROM "ks"."events" WHERE token("id") > ? AND token("id") <= ?');
    s.api.executes.length = 0;
    const from = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, -150n), noLimits);
    expect(from).toMatchObject({ mark: 500n, rows: 7 });
    expect(s.api.executes[0]!.query).toMatch(/ AND "n" > \?$/);
    expect(s.api.executes[0]!.params[2]).toBe(-150n);
    expect(await latestOffset(s.ctx, s.options, s.spec, end, noLimits)).toBe(end);
    s.api.put("ks", "events", { id: 50, n: 7_000n });
    expect(await latestOffset(s.ctx, s.options, s.spec, end, noLimits)).toMatchObject({ mark: 7_000n, rows: 1 });
    const bound = offsetOf(s.spec, 0n);
    expect(await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: undefined, bound })).toMatchObject({ mark: 0n, rows: 6 });
    expect(s.api.executes.at(-1)!.params.slice(2)).toEqual([0n]);
    expect(await latestOffset(s.ctx, s.options, s.spec, start, { maxRows: 3, bound: undefined })).toMatchObject({ mark: -201n, rows: 3 });
  });

  it("follows timeuuids by millisecond: every timeuuid of the mark's millisecond is in its window", async () => {
    const s = eventsStream({ stream_column: "at" });
    const put = (id: number, ms: number, ticks: number) => s.api.put("ks", "events", { id, at: timeuuidAt(ms, ticks) });
    put(1, T0 - 10_000, 0);
    put(2, T0 - LAG, 0);
    put(3, T0 - LAG, 9999);
    put(4, T0 - LAG + 1, 0);
    const end = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, BigInt(T0 - 10_000)), noLimits);
    expect(end).toMatchObject({ mark: BigInt(T0 - LAG), rows: 2 });
    expect(s.api.executes[0]!.query).toContain('AND "at" > maxTimeuuid(?) AND "at" <= maxTimeuuid(?)');
    expect(s.api.executes[0]!.params.slice(2)).toEqual([new Date(T0 - 10_000), new Date(T0 - LAG)]);
    // With a limit of 2 the two timeuuids of one millisecond stay together (and wait).
    const cut = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, null), { maxRows: 2, bound: undefined });
    expect(cut).toMatchObject({ mark: BigInt(T0 - LAG - 1), rows: 1 });
  });

  it("pages through every range's page states", async () => {
    const s = eventsStream({ stream_column: "ts", read_page_size: "3" });
    withTimestamps(s.api, 40, (id) => id * 100);
    const end = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, null), noLimits);
    expect(end.rows).toBe(40);
    expect(s.api.executes.every((e) => e.options.fetchSize === 3)).toBe(true);
    const followUps = s.api.executes.filter((e) => e.options.pageState !== undefined);
    // 40 rows in pages of 3 over 4 ranges: at least 14 pages, most of them follow-ups.
    expect(s.api.executes.length).toBeGreaterThanOrEqual(14);
    expect(followUps.length).toBe(s.api.executes.length - 4);
    expect(followUps.every((e) => Number(e.options.pageState) % 3 === 0)).toBe(true);
  });

  it("queries the first clustering column and an unindexed column with ALLOW FILTERING, and adds the filter", async () => {
    const api = new FakeCassandra();
    const table = api.addTable(
      "ks",
      "readings",
      [
        ["sensor", scalar("text")],
        ["at", scalar("timestamp")],
        ["seen", scalar("timestamp")],
        ["value", scalar("int")],
      ],
      ["sensor"],
      ["at"],
    );
    for (const sensor of ["a", "b", "c"]) for (let k = 0; k < 4; k++) api.put("ks", "readings", { sensor, at: new Date(T0 - 20_000 + k * 1000), seen: new Date(T0 - 30_000 + k), value: k });
    const clock = new FakeClock();
    clock.time = T0;
    const ctx = streamContext(api, clock);
    const options = parseCassandraOptions({ ...base, table: "readings", starting_position: "earliest", stream_column: "at", filter: "value >= 0" }, "read");
    const spec = resolveStreamSpec(table.def, options);
    expect(await latestOffset(ctx, options, spec, offsetOf(spec, null), noLimits)).toMatchObject({ rows: 12 });
    expect(api.executes[0]!.query).toBe('SELECT "sensor", "at" FROM "ks"."readings" WHERE token("sensor") > ? AND token("sensor") <= ? AND "at" <= ? AND value >= 0 ALLOW FILTERING');
    api.executes.length = 0;
    const filtered = parseCassandraOptions({ ...base, table: "readings", starting_position: "earliest", stream_column: "seen", allow_filtering: "true" }, "read");
    const seen = resolveStreamSpec(table.def, filtered);
    expect(await latestOffset(ctx, filtered, seen, offsetOf(seen, BigInt(T0 - 30_000 + 1)), noLimits)).toMatchObject({ rows: 6 });
    expect(api.executes[0]!.query).toMatch(/AND "seen" > \? AND "seen" <= \? ALLOW FILTERING$/);
  });

  it("counts rows by their newest write time in writetime mode", async () => {
    const api = new FakeCassandra();
    const table = api.addTable(
      "ks",
      "users",
      [
        ["id", scalar("int")],
        ["name", scalar("text")],
        ["score", scalar("int")],
        ["tags", { kind: "set", element: scalar("text"), frozen: false }],
      ],
      ["id"],
    );
    for (let id = 0; id < 5; id++) api.put("ks", "users", { id, name: `u${id}`, score: id }, micros(T0 - 20_000 + id));
    const clock = new FakeClock();
    clock.time = T0;
    const ctx = streamContext(api, clock);
    const options = parseCassandraOptions({ ...base, table: "users", starting_position: "earliest", stream_mode: "writetime", stream_lag_ms: String(LAG) }, "read");
    const spec = resolveStreamSpec(table.def, options);
    const start = await initialOffset(ctx, options, spec);
    const first = await latestOffset(ctx, options, spec, start, noLimits);
    expect(first).toEqual({ table: "ks.users", mode: "writetime", type: "writetime", mark: micros(T0 - LAG), rows: 5 });
    expect(api.executes[0]!.query).toBe('SELECT "id", WRITETIME("name"), WRITETIME("score") FROM "ks"."users" WHERE token("id") > ? AND token("id") <= ?');
    expect(api.executes[0]!.params).toHaveLength(2);

    // One column newer makes the row newer; the set is not followed; a row with only its key has no write time.
    api.put("ks", "users", { id: 3, score: 42 }, micros(T0 - 1_000));
    api.put("ks", "users", { id: 4, tags: new Set(["x"]) }, micros(T0 - 1_000));
    api.put("ks", "users", { id: 9 }, micros(T0 - 1_000));
    // Exactly at the previous mark: already read.
    api.put("ks", "users", { id: 10, name: "edge" }, micros(T0 - LAG));
    clock.time = T0 + 4_000;
    expect(await latestOffset(ctx, options, spec, first, noLimits)).toEqual({ ...first, mark: micros(T0 - 1_000), rows: 1 });
    // max_rows over write times.
    expect(await latestOffset(ctx, options, spec, start, { maxRows: 2, bound: undefined })).toMatchObject({ mark: micros(T0 - 20_000 + 2) - 1n, rows: 2 });
  });

  it("reads the whole table at once for a partitioner without numeric tokens", async () => {
    const s = eventsStream({ stream_column: "ts" });
    s.api.partitioner = "org.apache.cassandra.dht.ByteOrderedPartitioner";
    withTimestamps(s.api, 10, (id) => id);
    const end = await latestOffset(s.ctx, s.options, s.spec, offsetOf(s.spec, BigInt(T0 - 60_000 + 4)), noLimits);
    expect(end).toMatchObject({ rows: 5 });
    expect(s.api.executes).toHaveLength(1);
    expect(s.api.executes[0]!.query).toBe('SELECT "id", "ts" FROM "ks"."events" WHERE "ts" > ? AND "ts" <= ?');
    expect(s.api.executes[0]!.params).toEqual([new Date(T0 - 60_000 + 4), new Date(T0 - LAG)]);
  });
});

// ---------------------------------------------------------------------------------------

describe("planPartitions", () => {
  const ring = (partitioner = MURMUR3, tokens = ["-6148914691236517206", "0", "6148914691236517205"]): RingInfo => ({ partitioner, tokens, nodes: tokens.length });
  const setup = (extra: Record<string, string> = {}) => eventsStream({ stream_column: "ts", ...extra });
  const decoded = (parts: Uint8Array[]) => parts.map(decodeStreamPartition);

  it("encodes the window and the token ranges, covering the ring once", () => {
    const { spec, options } = setup();
    const parts = planPartitions(options, spec, ring(), offsetOf(spec, 1_000n), offsetOf(spec, 2_000n, 10));
    expect(parts).toHaveLength(1);
    const [only] = decoded(parts);
    expect(only).toEqual({
      partitionKey: ["id"],
      ranges: [
        [MURMUR3_BOUNDS.min.toString(), "-6148914691236517206"],
        ["-6148914691236517206", "0"],
        ["0", "6148914691236517205"],
        ["6148914691236517205", MURMUR3_BOUNDS.max.toString()],
      ],
      window: { mode: "column", column: "ts", type: "timestamp", after: "1000", upTo: "2000", allowFiltering: false, writetimeColumns: [] },
    });
    const raw = JSON.parse(Buffer.from(parts[0]!).toString()) as Record<string, unknown>;
    expect(raw).toMatchObject({ kind: STREAM_KIND, v: 1 });
    const fromEarliest = decoded(planPartitions(options, spec, ring(), offsetOf(spec, null), offsetOf(spec, 2_000n, 10)));
    expect(fromEarliest[0]!.window.after).toBeNull();
  });

  it("splits a write-time micro-batch, which scans the whole table, by the table's size as a batch read is", () => {
    const { spec, options } = eventsStream({ stream_mode: "writetime" });
    const count = (rows: number, bytes: bigint, opts = options) => planPartitions(opts, spec, ring(), offsetOf(spec, 0n), offsetOf(spec, 1n, rows), bytes).length;
    const MB = 1024n * 1024n;
    // No estimates yet: 1 + 2 x nodes (3 nodes here), whatever the window's row count.
    expect(count(1, 0n)).toBe(7);
    expect(count(10 * STREAM_ROWS_PER_PARTITION, 0n)).toBe(7);
    // 20 splits of split_size_mb (64 MB) of table data.
    expect(count(1, 20n * 64n * MB)).toBe(20);
    expect(count(1, 20n * 64n * MB, parseCassandraOptions({ ...base, starting_position: "earliest", stream_mode: "writetime", read_partitions: "4" }, "read"))).toBe(4);
  });

  it("sizes the partitions from the end offset's row count, or takes read_partitions", () => {
    const { spec, options } = setup();
    const count = (rows: number, opts = options) => planPartitions(opts, spec, ring(), offsetOf(spec, 0n), offsetOf(spec, 1n, rows)).length;
    expect(count(0)).toBe(1);
    expect(count(1)).toBe(1);
    expect(count(STREAM_ROWS_PER_PARTITION)).toBe(1);
    expect(count(STREAM_ROWS_PER_PARTITION + 1)).toBe(2);
    expect(count(7 * STREAM_ROWS_PER_PARTITION - 1)).toBe(7);
    const fixed = setup({ read_partitions: "5" }).options;
    expect(count(0, fixed)).toBe(5);
    expect(count(100 * STREAM_ROWS_PER_PARTITION, fixed)).toBe(5);
    // The partitions together cover the ring once.
    const ranges = decoded(planPartitions(fixed, spec, ring(), offsetOf(spec, 0n), offsetOf(spec, 1n, 3)))
      .flatMap((p) => p.ranges)
      .map(([a, b]) => [BigInt(a), BigInt(b)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1));
    expect(ranges[0]![0]).toBe(MURMUR3_BOUNDS.min);
    expect(ranges.at(-1)![1]).toBe(MURMUR3_BOUNDS.max);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
  });

  it("plans the same partitions for the same offsets", () => {
    const { spec, options } = setup();
    const start = offsetOf(spec, BigInt(T0 - 60_000));
    const end = offsetOf(spec, BigInt(T0), 3 * STREAM_ROWS_PER_PARTITION);
    const text = (parts: Uint8Array[]) => parts.map((p) => Buffer.from(p).toString());
    const first = text(planPartitions(options, spec, ring(), start, end));
    expect(first).toHaveLength(3);
    const replay = text(planPartitions(options, spec, ring(), parseStreamOffset(serializeStreamOffset(start), "start"), parseStreamOffset(serializeStreamOffset(end), "end")));
    expect(replay).toEqual(first);
    // The ring's token order does not matter.
    expect(text(planPartitions(options, spec, ring(MURMUR3, ["6148914691236517205", "-6148914691236517206", "0"]), start, end))).toEqual(first);
  });

  it("plans nothing for an empty micro-batch", () => {
    const { spec, options } = setup();
    expect(planPartitions(options, spec, ring(), offsetOf(spec, null), offsetOf(spec, null))).toEqual([]);
    expect(planPartitions(options, spec, ring(), offsetOf(spec, 5n, 3), offsetOf(spec, 5n, 3))).toEqual([]);
    expect(planPartitions(options, spec, ring(), offsetOf(spec, 6n), offsetOf(spec, 5n, 3))).toEqual([]);
    expect(planPartitions(options, spec, ring(), offsetOf(spec, 5n), offsetOf(spec, null))).toEqual([]);
  });

  it("plans one whole-table partition for a partitioner without numeric tokens", () => {
    const { spec, options } = setup({ read_partitions: "8" });
    const parts = planPartitions(options, spec, ring("org.apache.cassandra.dht.ByteOrderedPartitioner", ["6b6579"]), offsetOf(spec, null), offsetOf(spec, 9n, 1_000_000));
    expect(decoded(parts)).toEqual([{ partitionKey: ["id"], ranges: [], whole: true, window: expect.objectContaining({ after: null, upTo: "9" }) as unknown }]);
  });

  it("uses RandomPartitioner's token range", () => {
    const { spec, options } = setup({ read_partitions: "2" });
    const ranges = decoded(planPartitions(options, spec, ring("org.apache.cassandra.dht.RandomPartitioner", ["1000"]), offsetOf(spec, null), offsetOf(spec, 9n, 1))).flatMap((p) => p.ranges);
    expect(ranges[0]![0]).toBe(RANDOM_BOUNDS.min.toString());
    expect(ranges.at(-1)![1]).toBe(RANDOM_BOUNDS.max.toString());
  });

  it("carries a writetime stream's columns and a filtering column stream's ALLOW FILTERING", () => {
    const table = tableDef(
      [
        ["id", scalar("int")],
        ["b", scalar("text")],
        ["a", scalar("int")],
        ["ts", scalar("timestamp")],
      ],
      ["id"],
    );
    const writetimeOptions = streamOptions({ stream_mode: "writetime" });
    const writetime = resolveStreamSpec(table, writetimeOptions);
    const [part] = decoded(planPartitions(writetimeOptions, writetime, ring(), offsetOf(writetime, micros(T0)), offsetOf(writetime, micros(T0) + 5n, 2)));
    expect(part!.window).toEqual({ mode: "writetime", type: "writetime", after: micros(T0).toString(), upTo: (micros(T0) + 5n).toString(), allowFiltering: false, writetimeColumns: ["a", "b", "ts"] });
    const filteringOptions = streamOptions({ stream_column: "ts", allow_filtering: "true" });
    const filtering = resolveStreamSpec(table, filteringOptions);
    expect(decoded(planPartitions(filteringOptions, filtering, ring(), offsetOf(filtering, null), offsetOf(filtering, 1n, 1)))[0]!.window.allowFiltering).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------

describe("decodeStreamPartition", () => {
  const window = { mode: "column", column: "ts", type: "timestamp", after: "100", upTo: "200", allowFiltering: false, writetimeColumns: [] };
  const body = { partitionKey: ["id"], ranges: [["-10", "10"]], window };
  const encode = (doc: object) => encodeDescriptor(STREAM_KIND, doc);
  const with_ = (patch: Record<string, unknown>) => encode({ ...body, ...patch });
  const withWindow = (patch: Record<string, unknown>) => encode({ ...body, window: { ...window, ...patch } });

  it("accepts what planPartitions encodes", () => {
    expect(decodeStreamPartition(encode(body))).toEqual(body);
    const whole = { partitionKey: ["a", "b"], ranges: [], whole: true, window: { ...window, after: null } };
    expect(decodeStreamPartition(encode(whole))).toEqual(whole);
    const writetime = { partitionKey: ["id"], ranges: [["-5", "-1"]], window: { mode: "writetime", type: "writetime", after: "-3", upTo: "7", allowFiltering: false, writetimeColumns: ["x"] } };
    expect(decodeStreamPartition(encode(writetime))).toEqual(writetime);
    // Extra fields are dropped.
    expect(decodeStreamPartition(with_({ extra: 1 }))).not.toHaveProperty("extra");
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{")],
    ["another kind", encodeDescriptor("cassandra-token-ranges", body)],
    ["another version", new TextEncoder().encode(JSON.stringify({ kind: STREAM_KIND, v: 2, ...body }))],
    ["no window", with_({ window: undefined })],
    ["a null window", with_({ window: null })],
    ["a text window", with_({ window: "ts" })],
    ["an unknown mode", withWindow({ mode: "cdc" })],
    ["an unknown type", withWindow({ type: "date" })],
    ["column mode without column", withWindow({ column: undefined })],
    ["column mode with type writetime", withWindow({ type: "writetime" })],
    ["writetime mode without columns", withWindow({ mode: "writetime", column: undefined, type: "writetime" })],
    ["writetime mode with a column type", withWindow({ mode: "writetime", column: undefined, type: "timestamp", writetimeColumns: ["v"] })],
    ["no after", withWindow({ after: undefined })],
    ["a numeric after", withWindow({ after: 100 })],
    ["a fractional after", withWindow({ after: "1.5" })],
    ["a null upTo", withWindow({ upTo: null })],
    ["an upTo that is not a number", withWindow({ upTo: "soon" })],
    ["allowFiltering as text", withWindow({ allowFiltering: "false" })],
    ["writetime columns that are not a list", withWindow({ writetimeColumns: "a" })],
    ["a writetime column that is not a name", withWindow({ mode: "writetime", column: undefined, type: "writetime", writetimeColumns: [1] })],
    ["no ranges and not whole", with_({ ranges: [] })],
    ["no ranges list", with_({ ranges: undefined })],
    ["an empty range", with_({ ranges: [["5", "5"]] })],
    ["a reversed range", with_({ ranges: [["10", "-10"]] })],
    ["a range of one token", with_({ ranges: [["5"]] })],
    ["a range of three tokens", with_({ ranges: [["1", "2", "3"]] })],
    ["numeric tokens", with_({ ranges: [[1, 2]] })],
    ["a token that is not a number", with_({ ranges: [["a", "2"]] })],
    ["no partition key", with_({ partitionKey: [] })],
    ["a partition key that is not a name", with_({ partitionKey: [1] })],
    ["a partition key as text", with_({ partitionKey: "id" })],
  ])("refuses %s with DESCRIPTOR_INVALID", (_what, bytes) => {
    const error = thrown(() => decodeStreamPartition(bytes));
    expect(error.errorClass).toBe("DESCRIPTOR_INVALID");
    expect(error.parameters).toEqual({ kind: STREAM_KIND });
  });
});
