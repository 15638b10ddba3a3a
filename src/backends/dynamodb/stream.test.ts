import { describe, expect, it } from "vitest";
import { createLogger, silentLogger } from "../../core/logger.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import type { DynamoDbApi } from "./client.js";
import {
  checkOffsetTable,
  compareSequenceNumbers,
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  prefetchRun,
  readPartition,
  serializeStreamOffset,
  type ChangeRecord,
  type StreamContext,
  type StreamOffset,
} from "./stream.js";
import { runKey, StreamRecordCache } from "./stream-cache.js";
import { defaultFakeRecord, FakeStreams, fakeSeq as seq, fakeStreamArn, sdkError } from "./test-fakes.js";

const ARN = fakeStreamArn("users");

function tableApi(streamArn: string | undefined): DynamoDbApi {
  const unused = () => Promise.reject(new Error("not used by stream reads"));
  return {
    describeTable: async () => ({
      $metadata: {},
      Table: { TableName: "users", ...(streamArn ? { LatestStreamArn: streamArn, StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } } : {}) },
    }),
    createTable: unused,
    scan: unused,
    batchWriteItem: unused,
    destroy: () => {},
  };
}

function context(streams: FakeStreams, extra: Partial<StreamContext> = {}): StreamContext {
  return {
    dynamodb: tableApi(ARN),
    streams,
    table: "users",
    region: "us-east-1",
    endpoint: undefined,
    failOnDataLoss: true,
    signal: new AbortController().signal,
    logger: silentLogger,
    clock: new FakeClock(),
    ...extra,
  };
}

const empty: StreamOffset = { streamArn: ARN, shards: {} };

async function readAll(ctx: StreamContext, start: StreamOffset, end: StreamOffset): Promise<ChangeRecord[]> {
  const out: ChangeRecord[] = [];
  for (const p of planPartitions(start, end)) for await (const r of readPartition(ctx, p)) out.push(r);
  return out;
}

const numbers = (records: ChangeRecord[]) => records.map((r) => Number(r.sequenceNumber));

describe("stream offsets", () => {
  it("round-trip through stable JSON", () => {
    const offset: StreamOffset = { streamArn: ARN, shards: { b: { sequenceNumber: seq(5), finished: false, parent: "a" }, a: { sequenceNumber: null, finished: true, parent: null } } };
    const text = serializeStreamOffset(offset);
    expect(text).toBe(`{"streamArn":"${ARN}","shards":{"a":{"sequenceNumber":null,"finished":true,"parent":null},"b":{"sequenceNumber":"${seq(5)}","finished":false,"parent":"a"}}}`);
    expect(parseStreamOffset(text)).toEqual(offset);
  });

  it.each([
    ["not json", "not JSON"],
    ["[]", "expected an object"],
    ['{"streamArn":"users","shards":{}}', "stream ARN"],
    [`{"streamArn":"${ARN}","shards":[]}`, "'shards' must be an object"],
    [`{"streamArn":"${ARN}","shards":{"s":{"sequenceNumber":"12x","finished":false,"parent":null}}}`, "string of digits"],
    [`{"streamArn":"${ARN}","shards":{"s":{"sequenceNumber":null,"finished":"no","parent":null}}}`, "'finished'"],
    [`{"streamArn":"${ARN}","shards":{"s":{"sequenceNumber":null,"finished":false,"parent":3}}}`, "'parent'"],
  ])("refuses %s", (text, fragment) => {
    let caught: unknown;
    try {
      parseStreamOffset(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ errorClass: "STREAM_OFFSET_INVALID" });
    expect((caught as Error).message).toContain(fragment);
  });

  it("belong to one table (also when table_name is a table ARN)", () => {
    expect(() => checkOffsetTable(empty, "users")).not.toThrow();
    expect(() => checkOffsetTable(empty, "arn:aws:dynamodb:us-east-1:000000000000:table/users")).not.toThrow();
    expect(() => checkOffsetTable(empty, "orders")).toThrow(expect.objectContaining({ errorClass: "STREAM_OFFSET_OTHER_TABLE" }));
  });

  it("compare sequence numbers as numbers, not text", () => {
    expect(compareSequenceNumbers("900", "1000")).toBe(-1);
    expect(compareSequenceNumbers(seq(7), "7")).toBe(0);
  });
});

describe("latestOffset and partitions", () => {
  it("reads a child only in a micro-batch after the one that finished its parent, and pages DescribeStream", async () => {
    const streams = new FakeStreams();
    streams.shards = [
      { id: "s1", records: [1, 2], closed: true },
      { id: "s2", parent: "s1", records: [3, 4], closed: true },
      { id: "s3", parent: "s2", records: [5], closed: false },
    ];
    const ctx = context(streams);
    const first = await latestOffset(ctx, empty, { maxRecords: 3 });
    // s1 is finished after 2 records; its child s2 waits for the next micro-batch although budget is left.
    expect(first.shards).toEqual({
      s1: { sequenceNumber: seq(2), finished: true, parent: null },
      s2: { sequenceNumber: null, finished: false, parent: "s1" },
      s3: { sequenceNumber: null, finished: false, parent: "s2" },
    });
    expect(streams.describeCalls.map((c) => c.ExclusiveStartShardId)).toEqual([undefined, "s2"]);
    const second = await latestOffset(ctx, first, { maxRecords: 1 });
    expect(second.shards.s2).toEqual({ sequenceNumber: seq(3), finished: false, parent: "s1" });
    const third = await latestOffset(ctx, second);
    expect(third.shards.s2).toEqual({ sequenceNumber: seq(4), finished: true, parent: "s1" });
    expect(third.shards.s3).toEqual({ sequenceNumber: null, finished: false, parent: "s2" });
    const fourth = await latestOffset(ctx, third);
    expect(fourth.shards.s3).toEqual({ sequenceNumber: seq(5), finished: false, parent: "s2" });
    expect(numbers(await readAll(ctx, empty, first))).toEqual([1, 2]);
    expect(numbers(await readAll(ctx, first, second))).toEqual([3]);
    expect(numbers(await readAll(ctx, second, third))).toEqual([4]);
    expect(numbers(await readAll(ctx, third, fourth))).toEqual([5]);
    expect(planPartitions(second, third).map((p) => [p.shardId, p.start, p.endSequenceNumber])).toEqual([["s2", { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: seq(3) }, seq(4)]]);
    // s2 is finished and its child known: it leaves the offset.
    expect(Object.keys(fourth.shards)).toEqual(["s3"]);
    expect(planPartitions(third, fourth).map((p) => [p.shardId, p.start, p.endSequenceNumber])).toEqual([["s3", { type: "TRIM_HORIZON" }, seq(5)]]);
  });

  it("discovers children with ShardFilter CHILD_SHARDS where the endpoint honours it, and falls back to full listings where it does not", async () => {
    const layout = () => [
      { id: "s1", records: [1], closed: true },
      { id: "s2", parent: "s1", records: [2], closed: false },
      { id: "x", records: [3], closed: false },
    ];
    const aws = new FakeStreams();
    aws.honoursShardFilter = true;
    aws.shards = [{ id: "s1", records: [1], closed: false }, { id: "x", records: [3], closed: false }];
    const ctx = context(aws, { shardFilterIgnoredBy: new Set() });
    const first = await latestOffset(ctx, empty);
    aws.shards = layout();
    aws.describeCalls = [];
    const second = await latestOffset(ctx, first);
    expect(second.shards.s1!.finished).toBe(true);
    // Known shards need no listing: s1 is still open in `first`, so nothing is asked.
    expect(aws.describeCalls).toEqual([]);
    const third = await latestOffset(ctx, second);
    expect(aws.describeCalls.map((c) => c.ShardFilter)).toEqual([{ Type: "CHILD_SHARDS", ShardId: "s1" }]);
    expect(third.shards.s2).toEqual({ sequenceNumber: seq(2), finished: false, parent: "s1" });
    aws.describeCalls = [];
    const fourth = await latestOffset(ctx, third);
    expect(Object.keys(fourth.shards).sort()).toEqual(["s2", "x"]);
    expect(aws.describeCalls).toEqual([]);

    const local = new FakeStreams();
    local.shards = [{ id: "s1", records: [1], closed: false }, { id: "x", records: [3], closed: false }];
    const ignoredBy = new Set<string>();
    const localCtx = context(local, { shardFilterIgnoredBy: ignoredBy });
    const start = await latestOffset(localCtx, empty);
    local.shards = layout();
    const finished = await latestOffset(localCtx, start);
    const withChild = await latestOffset(localCtx, finished);
    expect(withChild.shards.s2).toEqual({ sequenceNumber: seq(2), finished: false, parent: "s1" });
    expect(ignoredBy.size).toBe(1);
    local.describeCalls = [];
    await latestOffset(localCtx, finished);
    expect(local.describeCalls.map((c) => c.ShardFilter)).toEqual([undefined, undefined]);
  });

  it("starts from 'latest' caught up with every generation of shards", async () => {
    const streams = new FakeStreams();
    streams.shards = [
      { id: "s1", records: [1, 2], closed: true },
      { id: "s2", parent: "s1", records: [3], closed: false },
    ];
    const start = await initialOffset(context(streams), { type: "latest" });
    expect(start.shards.s1).toEqual({ sequenceNumber: seq(2), finished: true, parent: null });
    expect(start.shards.s2).toEqual({ sequenceNumber: seq(3), finished: false, parent: "s1" });
  });

  it("treats a parent gone from the stream as aged out: its child is eligible, and an unfinished parent is data loss", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "child", parent: "old", records: [7], closed: false }];
    const orphan = await latestOffset(context(streams), empty);
    expect(orphan.shards.child!.sequenceNumber).toBe(seq(7));

    const start: StreamOffset = { streamArn: ARN, shards: { old: { sequenceNumber: seq(3), finished: false, parent: null } } };
    expect((await rejection(latestOffset(context(streams), start))).errorClass).toBe("STREAM_DATA_LOSS");
    const lines: string[] = [];
    const end = await latestOffset(context(streams, { failOnDataLoss: false, logger: createLogger("warn", {}, (l) => lines.push(l)) }), start);
    expect(Object.keys(end.shards)).toEqual(["child"]);
    expect(lines.join("\n")).toContain("aged out");
  });

  it("reads more than one GetRecords page per shard and stops at the partition's end exactly", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: Array.from({ length: 2500 }, (_, i) => i + 1), closed: false }];
    const ctx = context(streams);
    const mid = await latestOffset(ctx, empty, { maxRecords: 1200 });
    expect(mid.shards.s!.sequenceNumber).toBe(seq(1200));
    const end = await latestOffset(ctx, mid);
    expect(end.shards.s!.sequenceNumber).toBe(seq(2500));
    const records = await readAll(ctx, mid, end);
    expect(numbers(records)).toEqual(Array.from({ length: 1300 }, (_, i) => i + 1201));
    expect(records[0]).toEqual({
      eventName: "INSERT",
      eventId: "e1201",
      shardId: "s",
      sequenceNumber: seq(1201),
      approximateCreationTime: new Date(0),
      keys: { pk: { S: "k1201" } },
      newImage: { pk: { S: "k1201" } },
      oldImage: null,
    });
  });
});

describe("readPartition faults", () => {
  it("backs off on throttling and goes on", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3], closed: false }];
    streams.beforeGetRecords = (call) => {
      if (call < 3) throw sdkError("LimitExceededException");
      if (call === 3) throw sdkError("ProvisionedThroughputExceededException");
    };
    const clock = new FakeClock(1);
    const ctx = context(streams, { clock });
    const records = await readAll(ctx, empty, { streamArn: ARN, shards: { s: { sequenceNumber: seq(3), finished: false, parent: null } } });
    expect(numbers(records)).toEqual([1, 2, 3]);
    expect(clock.sleeps).toEqual([50, 100, 200, 400]);
  });

  it("gives up on throttling after the retry time with DYNAMODB_THROTTLED", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1], closed: false }];
    streams.beforeGetRecords = () => {
      throw sdkError("LimitExceededException");
    };
    const error = await rejection(latestOffset(context(streams, { maxRetryMillis: 10_000, clock: new FakeClock(1) }), empty));
    expect(error.errorClass).toBe("DYNAMODB_THROTTLED");
  });

  it("re-creates an expired iterator after the last record read", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: Array.from({ length: 1500 }, (_, i) => i + 1), closed: false }];
    const ctx = context(streams);
    const end: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(1500), finished: false, parent: null } } };
    const out: number[] = [];
    for await (const r of readPartition(ctx, planPartitions(empty, end)[0]!)) {
      out.push(Number(r.sequenceNumber));
      if (out.length === 1000) streams.expireIterators();
    }
    expect(out).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(streams.iteratorCalls.at(-1)).toMatchObject({ ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: seq(1000) });
  });

  it("fails on trimmed records by default, and with failOnDataLoss false warns and reads from the oldest record left", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [6, 7, 8], closed: false, trimmedThrough: 5 }];
    const start: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(2), finished: false, parent: null } } };
    const end: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(7), finished: false, parent: null } } };
    const error = await rejection(readAll(context(streams), start, end));
    expect(error.errorClass).toBe("STREAM_DATA_LOSS");
    expect(error.message).toContain("fail_on_data_loss");
    expect((await rejection(latestOffset(context(streams), start))).errorClass).toBe("STREAM_DATA_LOSS");

    const lines: string[] = [];
    const lenient = context(streams, { failOnDataLoss: false, logger: createLogger("warn", {}, (l) => lines.push(l)) });
    expect(numbers(await readAll(lenient, start, end))).toEqual([6, 7]);
    expect((await latestOffset(lenient, start)).shards.s!.sequenceNumber).toBe(seq(8));
    expect(lines.some((l) => l.includes('"level":"warn"') && l.includes("trimmed"))).toBe(true);
  });

  it("fails when a closed shard ends before the partition's end", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2], closed: true }];
    const end: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(9), finished: false, parent: null } } };
    expect((await rejection(readAll(context(streams), empty, end))).errorClass).toBe("STREAM_RECORDS_MISSING");
  });

  it("stops when the signal aborts", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3], closed: false }];
    const controller = new AbortController();
    const ctx = context(streams, { signal: controller.signal });
    streams.beforeGetRecords = () => controller.abort();
    const end: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(3), finished: false, parent: null } } };
    const error = await rejection(readAll(ctx, empty, end));
    expect(error.errorClass).toBe("CANCELLED");
  });

  it("says how to enable a stream when the table has none", async () => {
    const error = await rejection(initialOffset(context(new FakeStreams(), { dynamodb: tableApi(undefined) }), { type: "trim_horizon" }));
    expect(error.errorClass).toBe("STREAM_NOT_ENABLED");
    expect(error.message).toContain("StreamViewType=NEW_AND_OLD_IMAGES");
  });

  it("reads a disabled stream's closed shard to its end, then waits", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3], closed: true }];
    const ctx = context(streams, { dynamodb: tableApi(undefined) });
    const start: StreamOffset = { streamArn: ARN, shards: { s: { sequenceNumber: seq(1), finished: false, parent: null } } };
    const end = await latestOffset(ctx, start);
    expect(end.shards.s).toEqual({ sequenceNumber: seq(3), finished: true, parent: null });
    expect(numbers(await readAll(ctx, start, end))).toEqual([2, 3]);
    expect(serializeStreamOffset(await latestOffset(ctx, end))).toBe(serializeStreamOffset(end));
  });
});

const shardOffset = (sequenceNumber: number | null, finished = false, parent: string | null = null) => ({ sequenceNumber: sequenceNumber === null ? null : seq(sequenceNumber), finished, parent });
const text = (offset: StreamOffset) => serializeStreamOffset(offset);

describe("read-ahead cache", () => {
  function cached(streams: FakeStreams, cacheBytes = 1024 * 1024) {
    const cache = new StreamRecordCache(cacheBytes, 60_000, new FakeClock());
    return { cache, ctx: context(streams, { cache }) };
  }

  it("never yields a record at or before the partition's start, even from a cached run that begins earlier (a trim fallback)", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s1", records: [3, 4, 5, 6, 7], closed: false }];
    const { cache, ctx } = cached(streams);
    cache.put(runKey(ARN, "s1", seq(5)), [3, 4, 5, 6, 7].map((n) => defaultFakeRecord("s1", n)));
    const records = [];
    for await (const r of readPartition(ctx, { streamArn: ARN, shardId: "s1", start: { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: seq(5) }, endSequenceNumber: seq(7) })) records.push(r);
    expect(numbers(records)).toEqual([6, 7]);
    expect(streams.getRecordsCalls).toBe(0);
  });

  it("serves a partition read right after latestOffset without a single Streams call, and a replay from the stream with the same records", async () => {
    const streams = new FakeStreams();
    streams.shards = [
      { id: "s1", records: [1, 2, 3], closed: false },
      { id: "s2", records: [10, 11], closed: false },
    ];
    const { cache, ctx } = cached(streams);
    const end = await latestOffset(ctx, empty);
    expect(cache.size.runs).toBe(2);
    const calls = { records: streams.getRecordsCalls, iterators: streams.iteratorCalls.length };
    const first = await readAll(ctx, empty, end);
    expect(numbers(first)).toEqual([1, 2, 3, 10, 11]);
    expect({ records: streams.getRecordsCalls, iterators: streams.iteratorCalls.length }).toEqual(calls);
    expect(cache.size.runs).toBe(0);

    // The micro-batch replayed (a task retried, or the query restarted): the stream gives the same records.
    const replay = await readAll(ctx, empty, end);
    expect(replay).toEqual(first);
    expect(streams.getRecordsCalls).toBeGreaterThan(calls.records);
    expect(streams.getRecordsShards.slice(-2)).toEqual(["s1", "s2"]);
  });

  it("caches the run after the previous offset, and the next micro-batch reads it from the cache", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4, 5], closed: false }];
    const { ctx } = cached(streams);
    const first = await latestOffset(ctx, empty, { maxRecords: 2 });
    await readAll(ctx, empty, first);
    const second = await latestOffset(ctx, first, { maxRecords: 2 });
    const before = streams.getRecordsCalls;
    expect(numbers(await readAll(ctx, first, second))).toEqual([3, 4]);
    expect(streams.getRecordsCalls).toBe(before);
  });

  it("continues a cached run shorter than the partition from the stream, after its last record", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4, 5], closed: false }];
    const { cache, ctx } = cached(streams);
    cache.put(runKey(ARN, "s", null), [1, 2].map((n) => defaultFakeRecord("s", n)));
    const records = await readAll(ctx, empty, { streamArn: ARN, shards: { s: shardOffset(4) } });
    expect(numbers(records)).toEqual([1, 2, 3, 4]);
    expect(streams.iteratorCalls).toEqual([expect.objectContaining({ ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: seq(2) })]);
  });

  it("stops a cached run longer than the partition at the partition's end", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4, 5], closed: false }];
    const { cache, ctx } = cached(streams);
    cache.put(runKey(ARN, "s", seq(1)), [2, 3, 4, 5].map((n) => defaultFakeRecord("s", n)));
    const records = await readAll(ctx, { streamArn: ARN, shards: { s: shardOffset(1) } }, { streamArn: ARN, shards: { s: shardOffset(3) } });
    expect(numbers(records)).toEqual([2, 3]);
    expect(streams.getRecordsCalls).toBe(0);
  });

  it("reads an AvailableNow micro-batch from the records its target's catch-up read, not from the stream again", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4], closed: false }];
    const { ctx } = cached(streams);
    const bound = await latestOffset(ctx, empty, { lineage: "same-call" });
    const calls = streams.getRecordsCalls;
    const end = await latestOffset(ctx, empty, { bound });
    expect(end.shards.s).toEqual(shardOffset(4));
    expect(streams.getRecordsCalls).toBe(calls);
    expect(numbers(await readAll(ctx, empty, end))).toEqual([1, 2, 3, 4]);
    expect(streams.getRecordsCalls).toBe(calls);
  });

  it("keeps the first records of a micro-batch larger than the cache's run limit; the task reads the rest from the stream", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: Array.from({ length: 50 }, (_, i) => i + 1), closed: false }];
    // Each fake record counts 4 * 1024 + 256 bytes: a 40 KiB cache keeps runs of up to 20 KiB, about 5 records.
    const { cache, ctx } = cached(streams, 40 * 1024);
    const end = await latestOffset(ctx, empty);
    const run = cache.peek(runKey(ARN, "s", null))!;
    expect(run.length).toBeGreaterThan(0);
    expect(run.length).toBeLessThan(50);
    const calls = streams.getRecordsCalls;
    expect(numbers(await readAll(ctx, empty, end))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(streams.getRecordsCalls).toBeGreaterThan(calls);
  });

  it("prefetches the next micro-batch while this one is read, and the next latestOffset and read use it", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4, 5, 6], closed: false }];
    const { cache, ctx: base } = cached(streams);
    const started: Promise<void>[] = [];
    const ctx: StreamContext = {
      ...base,
      // The first prefetch only, so the calls counted below are the micro-batches' own.
      prefetch: (arn, shard, after, max) => {
        if (started.length > 0) return;
        const work = prefetchRun(base, arn, shard, after, max);
        cache.track(runKey(arn, shard, after), work);
        started.push(work);
      },
    };
    const first = await latestOffset(ctx, empty, { maxRecords: 3 });
    expect(first.shards.s).toEqual(shardOffset(3));
    expect(started).toHaveLength(1);
    await Promise.all(started);
    expect(cache.peek(runKey(ARN, "s", seq(3)))!.map((r) => Number(r.dynamodb!.SequenceNumber))).toEqual([4, 5, 6]);
    expect(numbers(await readAll(ctx, empty, first))).toEqual([1, 2, 3]);
    const calls = streams.getRecordsCalls;
    const second = await latestOffset(ctx, first, { maxRecords: 3 });
    expect(second.shards.s).toEqual(shardOffset(6));
    expect(streams.getRecordsCalls).toBe(calls);
    expect(numbers(await readAll(ctx, first, second))).toEqual([4, 5, 6]);
    expect(streams.getRecordsCalls).toBe(calls);
  });

  it("is not filled by a 'latest' initial offset (those records are never read)", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2], closed: false }];
    const { cache, ctx } = cached(streams);
    expect((await initialOffset(ctx, { type: "latest" })).shards.s).toEqual(shardOffset(2));
    expect(cache.size.runs).toBe(0);
  });
});

describe("Trigger.AvailableNow bound", () => {
  it("never goes past the bound, even with records after it", async () => {
    const streams = new FakeStreams();
    streams.shards = [{ id: "s", records: [1, 2, 3, 4, 5], closed: false }];
    const ctx = context(streams);
    const bound: StreamOffset = { streamArn: ARN, shards: { s: shardOffset(3) } };
    const first = await latestOffset(ctx, empty, { bound });
    expect(first.shards.s).toEqual(shardOffset(3));
    expect(numbers(await readAll(ctx, empty, first))).toEqual([1, 2, 3]);
    // At the bound: the offset stays put, so the query sees no new data and ends.
    expect(text(await latestOffset(ctx, first, { bound }))).toBe(text(first));
  });

  it("does not read shards the bound does not hold", async () => {
    const streams = new FakeStreams();
    streams.shards = [
      { id: "s1", records: [1, 2], closed: false },
      { id: "s2", records: [10, 11], closed: false },
    ];
    const ctx = context(streams);
    const end = await latestOffset(ctx, empty, { bound: { streamArn: ARN, shards: { s1: shardOffset(2) } } });
    expect(end.shards).toEqual({ s1: shardOffset(2), s2: shardOffset(null) });
    expect(new Set(streams.getRecordsShards)).toEqual(new Set(["s1"]));
  });

  it("marks a shard finished in the bound finished when it reaches it, so its children are read next", async () => {
    const streams = new FakeStreams();
    // DynamoDB may return a closed shard's last records with a next iterator (the end comes on an empty page).
    streams.endsWithEmptyPage = true;
    streams.shards = [
      { id: "s1", records: [1, 2], closed: true },
      { id: "s2", parent: "s1", records: [3, 4], closed: false },
    ];
    const ctx = context(streams);
    const bound = await latestOffset(ctx, empty, { lineage: "same-call" });
    expect(bound.shards).toEqual({ s1: shardOffset(2, true), s2: shardOffset(4, false, "s1") });
    // With maxRecords 2 the budget ends exactly at s1's last record: only the bound can tell it is finished.
    const first = await latestOffset(ctx, empty, { bound, maxRecords: 2 });
    expect(first.shards.s1).toEqual(shardOffset(2, true));
    const unbounded = await latestOffset(ctx, empty, { maxRecords: 2 });
    expect(unbounded.shards.s1).toEqual(shardOffset(2, false));
    const second = await latestOffset(ctx, first, { bound, maxRecords: 2 });
    expect(second.shards.s2).toEqual(shardOffset(4, false, "s1"));
  });

  it("converges to start == end at the bound, each record read once, none after the bound", async () => {
    const streams = new FakeStreams();
    streams.endsWithEmptyPage = true;
    streams.shards = [
      { id: "a1", records: [1, 2, 3], closed: true },
      { id: "a2", parent: "a1", records: [4, 5, 6], closed: false },
      { id: "b1", records: [10, 11], closed: false },
    ];
    const ctx = context(streams);
    const bound = await latestOffset(ctx, empty, { lineage: "same-call" });
    // Changes made after Trigger.AvailableNow fixed its target.
    streams.shards[1]!.records.push(7, 8);
    streams.shards[2]!.records.push(12);
    streams.shards.push({ id: "b2", records: [20], closed: false });

    const read: number[] = [];
    let start = empty;
    for (let batch = 0; ; batch++) {
      expect(batch).toBeLessThan(20);
      const end = await latestOffset(ctx, start, { bound, maxRecords: 2 });
      if (text(end) === text(start)) break;
      for (const [id, state] of Object.entries(end.shards)) {
        const cap = bound.shards[id]?.sequenceNumber ?? null;
        if (state.sequenceNumber !== null) expect(cap !== null && compareSequenceNumbers(state.sequenceNumber, cap) <= 0).toBe(true);
      }
      read.push(...numbers(await readAll(ctx, start, end)));
      start = end;
    }
    expect(read.filter((n) => n < 10)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(read.filter((n) => n >= 10)).toEqual([10, 11]);
    // Where the bound stops; a1 is finished and its child known, so it has left the offset.
    const { a1, ...rest } = bound.shards;
    expect(a1).toEqual(shardOffset(3, true));
    expect(start.shards).toEqual({ ...rest, b2: shardOffset(null) });
  });

  it("marks a shard finished at the bound without reading it when the listing cannot say it is closed", async () => {
    const streams = new FakeStreams();
    streams.honoursShardFilter = true;
    streams.shards = [{ id: "s1", records: [1, 2], closed: true }];
    const ctx = context(streams, { shardFilterIgnoredBy: new Set() });
    const bound = await latestOffset(ctx, empty, { lineage: "same-call" });
    expect(bound.shards.s1).toEqual(shardOffset(2, true));
    // A micro-batch that stopped exactly at s1's last record, not knowing it was the last.
    const start: StreamOffset = { streamArn: ARN, shards: { s1: shardOffset(2) } };
    const calls = streams.getRecordsCalls;
    const end = await latestOffset(ctx, start, { bound });
    expect(end.shards.s1).toEqual(shardOffset(2, true));
    expect(streams.getRecordsCalls).toBe(calls);
  });
});

describe("catch-up (same-call lineage)", () => {
  it("reads every generation of shards in one offset, and the partitions hold them all in shard order", async () => {
    const streams = new FakeStreams();
    streams.shards = [
      { id: "s1", records: [1, 2], closed: true },
      { id: "s2", parent: "s1", records: [3, 4], closed: true },
      { id: "s3", parent: "s2", records: [5, 6], closed: false },
    ];
    const ctx = context(streams);
    const end = await latestOffset(ctx, empty, { lineage: "same-call" });
    expect(end.shards).toEqual({ s1: shardOffset(2, true), s2: shardOffset(4, true, "s1"), s3: shardOffset(6, false, "s2") });
    expect(planPartitions(empty, end).map((p) => p.shardId)).toEqual(["s1", "s2", "s3"]);
    expect(numbers(await readAll(ctx, empty, end))).toEqual([1, 2, 3, 4, 5, 6]);
    // The default lineage needs three micro-batches for the same records.
    expect(Object.values((await latestOffset(ctx, empty)).shards).map((s) => s.sequenceNumber)).toEqual([seq(2), null, null]);
  });
});

describe("initialOffset at a timestamp", () => {
  /** Record n was created at second n * 10 after the epoch. */
  function timedStreams(): FakeStreams {
    const streams = new FakeStreams();
    streams.makeRecord = (shard, n) => {
      const record = defaultFakeRecord(shard, n);
      return { ...record, dynamodb: { ...record.dynamodb, ApproximateCreationDateTime: new Date(n * 10_000) } };
    };
    streams.shards = [
      { id: "s1", records: [1, 2, 3], closed: true },
      { id: "s2", parent: "s1", records: [4, 5, 6, 7], closed: false },
      { id: "t1", records: [8, 9], closed: false },
    ];
    return streams;
  }

  it("skips records before the second of the timestamp and keeps those in it; a closed shard wholly before it is finished", async () => {
    const streams = timedStreams();
    const ctx = context(streams);
    // 50.7 s: record 5 (created at 50 s, in that second) is kept, record 4 (40 s) skipped.
    const start = await initialOffset(ctx, { type: "timestamp", at: new Date(50_700) });
    expect(start.shards).toEqual({ s1: shardOffset(3, true), s2: shardOffset(4, false, "s1"), t1: shardOffset(null) });
    const end = await latestOffset(ctx, start, { lineage: "same-call" });
    expect(numbers(await readAll(ctx, start, end))).toEqual([5, 6, 7, 8, 9]);
  });

  it("starts every shard at its oldest record when the timestamp is before all of them, and past all when after", async () => {
    const streams = timedStreams();
    const ctx = context(streams);
    const early = await initialOffset(ctx, { type: "timestamp", at: new Date(0) });
    expect(early.shards).toEqual({ s1: shardOffset(null), s2: shardOffset(null, false, "s1"), t1: shardOffset(null) });
    const late = await initialOffset(ctx, { type: "timestamp", at: new Date(1_000_000) });
    expect(late.shards).toEqual({ s1: shardOffset(3, true), s2: shardOffset(7, false, "s1"), t1: shardOffset(9) });
  });
});
