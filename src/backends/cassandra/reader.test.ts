import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import { Field, Int32, Int64, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { silentLogger } from "../../core/logger.js";
import { readValue } from "../../arrow/values.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { MURMUR3_BOUNDS, splitRing } from "./planner.js";
import { readQuery, scanTokenRanges, type ScanRangesInput } from "./reader.js";
import { abortableSleepClock, FakeCassandra, fakeToken, noHostAvailable, responseError } from "./test-fakes.js";
import { scalar } from "./types.js";

const codes = cassandra.types.responseErrorCodes;
const schema = new Schema([new Field("id", new Utf8()), new Field("select", new Int32()), new Field("Count", new Int64())]);

function setup(rows = 25) {
  const api = new FakeCassandra();
  api.addTable(
    "ks",
    "t",
    [
      ["id", scalar("text")],
      ["select", scalar("int")],
      ["Count", scalar("bigint")],
    ],
    ["id"],
  );
  for (let i = 0; i < rows; i++) api.put("ks", "t", { id: `k${i}`, select: i, Count: BigInt(i) * 10n });
  const clock = new FakeClock(0.5);
  const input = (extra: Partial<ScanRangesInput> = {}): ScanRangesInput => ({
    api,
    keyspace: "ks",
    table: "t",
    partitionKey: ["id"],
    schema,
    ranges: [[MURMUR3_BOUNDS.min.toString(), MURMUR3_BOUNDS.max.toString()]],
    whole: false,
    filter: undefined,
    allowFiltering: false,
    pageSize: 10,
    consistency: "LOCAL_ONE",
    retry: { maxRetries: 5, maxRetrySeconds: 60 },
    clock,
    signal: new AbortController().signal,
    errorContext: { target: "127.0.0.1:9042", tls: false, keyspace: "ks", table: "t", operation: "read", username: undefined },
    logger: silentLogger,
    ...extra,
  });
  return { api, input, clock };
}

async function collect(batches: AsyncIterable<RecordBatch>): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

const ids = (batches: RecordBatch[]) => batches.flatMap((b) => Array.from({ length: b.numRows }, (_, i) => readValue(b.getChild("id")!, i) as string));

describe("readQuery", () => {
  it("quotes every identifier and adds the filter with AND", () => {
    expect(readQuery("Ks", "My Table", ["a", "B"], schema, "x > 1 AND y = 'z'", true, true)).toBe(
      'SELECT "id", "select", "Count" FROM "Ks"."My Table" WHERE token("a", "B") > ? AND token("a", "B") <= ? AND x > 1 AND y = \'z\' ALLOW FILTERING',
    );
    expect(readQuery("ks", "t", ["id"], new Schema([]), undefined, false, false)).toBe('SELECT "id" FROM "ks"."t"');
    expect(readQuery("ks", "t", ["id"], new Schema([]), "n = 1", false, false)).toBe('SELECT "id" FROM "ks"."t" WHERE n = 1');
  });
});

describe("scanTokenRanges", () => {
  it("reads every row of its ranges once, one batch per page", async () => {
    const { input, api } = setup(25);
    const batches = await collect(scanTokenRanges(input()));
    expect(batches.map((b) => b.numRows)).toEqual([10, 10, 5]);
    expect(ids(batches).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `k${i}`).sort());
    const first = batches[0]!;
    const row = ids([first])[0]!;
    const n = Number(row.slice(1));
    expect(readValue(first.getChild("select")!, 0)).toBe(n);
    expect(readValue(first.getChild("Count")!, 0)).toBe(BigInt(n) * 10n);
    expect(api.executes.every((e) => e.options.consistency === "LOCAL_ONE" && e.options.fetchSize === 10)).toBe(true);
    expect(api.executes[1]!.options.pageState).toBe("10");
  });

  it("reads only the tokens of its ranges, each range with its own query", async () => {
    const { input, api } = setup(40);
    const groups = splitRing([-5n, 100n, 1n << 40n], MURMUR3_BOUNDS, 3);
    const seen: string[] = [];
    for (const group of groups) {
      const ranges = group.map(([s, e]): [string, string] => [s.toString(), e.toString()]);
      const got = ids(await collect(scanTokenRanges(input({ ranges, pageSize: 1000 }))));
      for (const id of got) {
        const token = fakeToken([id]);
        expect(group.some(([s, e]) => token > s && token <= e)).toBe(true);
      }
      seen.push(...got);
    }
    expect(seen.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`).sort());
    expect(api.executes).toHaveLength(groups.flat().length);
    expect(api.executes[0]!.params).toEqual([groups[0]![0]![0], groups[0]![0]![1]]);
  });

  it("requests at most one page ahead of the consumer, across ranges", async () => {
    const { input, api } = setup(30);
    const ranges: Array<[string, string]> = [
      [MURMUR3_BOUNDS.min.toString(), "0"],
      ["0", MURMUR3_BOUNDS.max.toString()],
    ];
    const iterator = scanTokenRanges(input({ ranges, pageSize: 5 }))[Symbol.asyncIterator]();
    await iterator.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(api.executes).toHaveLength(2);
    await iterator.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(api.executes).toHaveLength(3);
    let rows = 10;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rows += r.value.numRows;
    expect(rows).toBe(30);
    const firstRange = Array.from({ length: 30 }, (_, i) => fakeToken([`k${i}`])).filter((t) => t <= 0n).length;
    const pages = (n: number) => Math.max(1, Math.ceil(n / 5));
    expect(api.executes).toHaveLength(pages(firstRange) + pages(30 - firstRange));
  });

  it("yields batches with only a row count for a zero-column read", async () => {
    const { input, api } = setup(12);
    const batches = await collect(scanTokenRanges(input({ schema: new Schema([]) })));
    expect(batches.reduce((n, b) => n + b.numRows, 0)).toBe(12);
    expect(batches[0]!.schema.fields).toHaveLength(0);
    expect(api.executes[0]!.query).toBe('SELECT "id" FROM "ks"."t" WHERE token("id") > ? AND token("id") <= ?');
  });

  it("yields nothing for an empty table", async () => {
    const { input } = setup(0);
    expect(await collect(scanTokenRanges(input()))).toEqual([]);
  });

  it("stops promptly when the signal aborts while a page is outstanding", async () => {
    const { input, api } = setup(20);
    let release!: () => void;
    api.gate = (_q, call) => (call === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve());
    const controller = new AbortController();
    const iterator = scanTokenRanges(input({ signal: controller.signal }))[Symbol.asyncIterator]();
    await iterator.next();
    const second = iterator.next();
    controller.abort();
    const error = await rejection(second);
    expect(error.code).toBe("CANCELLED");
    release();
  });

  it("translates driver errors", async () => {
    const { input, api } = setup(5);
    api.fail = () => {
      throw responseError(codes.readTimeout, "Operation timed out - received only 0 responses.");
    };
    const error = await rejection(collect(scanTokenRanges(input())));
    expect(error.code).toBe("DEADLINE_EXCEEDED");
    expect(error.errorClass).toBe("CASSANDRA_TIMEOUT");
    expect(error.message).toContain("ks.t");
  });

  it("retries a failed page at the same page state: every row exactly once", async () => {
    const { input, api } = setup(25);
    api.fail = (_q, call) => {
      if (call === 1) throw noHostAvailable({ "127.0.0.1:9042": responseError(codes.overloaded, "Overloaded") });
      if (call === 2) throw noHostAvailable({ "127.0.0.1:9042": Object.assign(new Error("Socket was closed"), { isSocketError: true }) });
      if (call === 4) throw responseError(codes.readTimeout, "Operation timed out - received only 0 responses.");
    };
    const got = ids(await collect(scanTokenRanges(input())));
    expect(got).toHaveLength(25);
    expect(new Set(got).size).toBe(25);
    const states = api.executes.map((e) => e.options.pageState);
    expect(states[1]).toBe(states[2]);
    expect(states[2]).toBe(states[3]);
    expect(api.hostWaits).toHaveLength(1);
  });

  it("fails after max_retries naming the table and the retries", async () => {
    const { input, api } = setup(5);
    api.fail = () => {
      throw noHostAvailable({ "127.0.0.1:9042": responseError(codes.overloaded, "Overloaded") });
    };
    const error = await rejection(collect(scanTokenRanges(input({ retry: { maxRetries: 3, maxRetrySeconds: 60 } }))));
    expect(error.errorClass).toBe("CASSANDRA_OVERLOADED");
    expect(error.message).toContain("ks.t");
    expect(error.message).toContain("after 3 retries");
    expect(api.executes).toHaveLength(4);
  });

  it("ends a retry wait at once when the signal aborts", async () => {
    const { input, api } = setup(5);
    api.fail = () => {
      throw responseError(codes.overloaded, "Overloaded");
    };
    const controller = new AbortController();
    const { clock, sleeping } = abortableSleepClock(5_000);
    const done = collect(scanTokenRanges(input({ signal: controller.signal, clock })));
    await sleeping;
    const started = Date.now();
    controller.abort();
    const error = await rejection(done);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error.code).toBe("CANCELLED");
    expect(api.executes).toHaveLength(1);
  });

  it("fails with VALUE_OUT_OF_RANGE when a value does not fit the schema", async () => {
    const { input, api } = setup(0);
    api.put("ks", "t", { id: "big", select: 1, Count: 1n << 40n });
    const narrow = new Schema([new Field("Count", new Int32())]);
    const error = await rejection(collect(scanTokenRanges(input({ schema: narrow }))));
    expect(error.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(error.parameters).toMatchObject({ column: "Count", value: String(1n << 40n) });
  });
});
