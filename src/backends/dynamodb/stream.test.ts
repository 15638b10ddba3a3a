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
  readPartition,
  serializeStreamOffset,
  type ChangeRecord,
  type StreamContext,
  type StreamOffset,
} from "./stream.js";
import { FakeStreams, fakeSeq as seq, fakeStreamArn, sdkError } from "./test-fakes.js";

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
    expect(planPartitions(second, fourth).map((p) => [p.shardId, p.start, p.endSequenceNumber])).toEqual([
      ["s2", { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: seq(3) }, seq(4)],
      ["s3", { type: "TRIM_HORIZON" }, seq(5)],
    ]);
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
    const error = await rejection(latestOffset(context(new FakeStreams(), { dynamodb: tableApi(undefined) }), empty));
    expect(error.errorClass).toBe("STREAM_NOT_ENABLED");
    expect(error.message).toContain("StreamViewType=NEW_AND_OLD_IMAGES");
  });
});
