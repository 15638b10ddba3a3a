/** Cassandra streaming reads, the driver's calls on the fake Cassandra: starting positions, latestOffset, partition planning, descriptors. */
import { describe, expect, it } from "vitest";
import { encodeDescriptor } from "../../core/descriptor.js";
import { thrown, rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import type { RingInfo } from "./client.js";
import { parseCassandraOptions } from "./options.js";
import { MURMUR3_BOUNDS, RANDOM_BOUNDS } from "./planner.js";
import {
  decodeStreamPartition,
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  resolveStreamSpec,
  serializeStreamOffset,
  STREAM_KIND,
  STREAM_ROWS_PER_PARTITION,
} from "./stream.js";
import { FakeCassandra } from "./test-fakes.js";
import { scalar } from "./types.js";
import { base, T0, LAG, MIN_BIGINT, MAX_BIGINT, MURMUR3, micros, streamOptions, tableDef, streamContext, eventsStream, offsetOf, noLimits, timeuuidAt } from "./stream-test-fixtures.js";

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
