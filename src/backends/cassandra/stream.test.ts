/** Cassandra streaming reads, the parts without a database: the window counter, offsets, stream specs, windows, the clock mark. */
import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import { thrown } from "../../../tests/support/conduit-error.js";
import type { IndexDef } from "./client.js";
import {
  checkOffsetTarget,
  clockMark,
  parseStreamOffset,
  readWindow,
  resolveStreamSpec,
  serializeStreamOffset,
  WindowCounter,
  type StreamOffset,
} from "./stream.js";
import { seededRandom } from "../../../tests/support/seeded-random.js";
import { scalar, type CqlType } from "./types.js";
import { T0, LAG, MIN_BIGINT, MAX_BIGINT, micros, streamOptions, sai, tableDef, offsetOf } from "./stream-test-fixtures.js";

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
