import { describe, expect, it } from "vitest";
import { Field, Int64, Schema, Struct, Type, Utf8, type RecordBatch } from "apache-arrow";
import { readValue } from "../../arrow/values.js";
import { encodeDescriptor } from "../../core/descriptor.js";
import type { LatestOffsetInput } from "../../core/connector.js";
import { ConduitError } from "../../core/errors.js";
import { silentLogger } from "../../core/logger.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { createDynamoDbConnector } from "./connector.js";
import { parseStreamOffset, serializeStreamOffset } from "./stream.js";
import { STREAM_KIND } from "./stream-source.js";
import { defaultFakeRecord, FakeDynamoDb, FakeStreams, fakeSeq, fakeStreamArn } from "./test-fakes.js";

const ARN = fakeStreamArn("users");
const base = { table_name: "users", aws_region: "us-east-1", endpoint_url: "http://127.0.0.1:8000", aws_access_key_id: "dummy", aws_secret_access_key: "dummy" };
const streamOptions = { ...base, starting_position: "trim_horizon" };

/** A connector over a fake table `users` (pk S, sk N) with a stream, and its fake Streams. */
function setup(options: { streamCacheBytes?: number } = {}) {
  const dynamodb = new FakeDynamoDb();
  const table = dynamodb.addTable("users", { name: "pk", type: "S" }, { name: "sk", type: "N" });
  table.streamArn = ARN;
  dynamodb.put("users", { pk: { S: "a" }, sk: { N: "1" }, age: { N: "30" }, name: { S: "Ann" } });
  const streams = new FakeStreams(ARN);
  // Record n changes item (k<n mod 7>, n): an INSERT with a typed image.
  streams.makeRecord = (shard, n) => {
    const record = defaultFakeRecord(shard, n);
    const keys = { pk: { S: `k${n % 7}` }, sk: { N: String(n) } };
    return { ...record, dynamodb: { ...record.dynamodb, Keys: keys, NewImage: { ...keys, age: { N: String(n) }, name: { S: `n${n}` } } } };
  };
  const connector = createDynamoDbConnector(silentLogger, {
    createApi: () => dynamodb,
    createStreamsApi: () => streams,
    clock: new FakeClock(),
    ...(options.streamCacheBytes !== undefined ? { streamCacheBytes: options.streamCacheBytes } : {}),
  });
  return { connector, dynamodb, streams, signal: new AbortController().signal };
}

async function eventSchema(ctx: ReturnType<typeof setup>): Promise<Schema> {
  return (await ctx.connector.describe({ options: streamOptions, userSchema: undefined, signal: ctx.signal })).schema;
}

/** A LatestOffset call: no limit, no bound, no catch-up unless `extra` says so. */
function latestInput(input: { options: Record<string, string>; schema: Schema; signal: AbortSignal; start: string } & Partial<Pick<LatestOffsetInput, "maxRecords" | "endBound" | "catchUp">>): LatestOffsetInput {
  return { maxRecords: undefined, endBound: undefined, catchUp: false, ...input };
}

/** Errors thrown when read() is called or while it is iterated. */
async function readError(run: () => AsyncIterable<RecordBatch>): Promise<ConduitError> {
  return rejection(
    (async () => {
      for await (const _batch of run()) {
        // drain
      }
    })(),
  );
}

describe("DynamoDB change stream through the connector", () => {
  it("describes the change event schema, keys typed from the table and images from the sampled items", async () => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    expect(schema.fields.map((f) => f.name)).toEqual(["event_name", "event_id", "shard_id", "sequence_number", "approximate_creation_time", "keys", "new_image", "old_image"]);
    const children = (name: string) => (schema.fields.find((f) => f.name === name)!.type as Struct).children.map((f) => [f.name, f.type.typeId]);
    expect(children("keys")).toEqual([
      ["pk", Type.Utf8],
      ["sk", Type.Int],
    ]);
    expect(children("new_image")).toEqual([
      ["age", Type.Int],
      ["name", Type.Utf8],
      ["pk", Type.Utf8],
      ["sk", Type.Int],
    ]);
    expect(children("old_image")).toEqual(children("new_image"));
  });

  it("takes a user's event schema as it is, and refuses an item's schema", async () => {
    const ctx = setup();
    const user = new Schema([new Field("event_name", new Utf8(), false), new Field("keys", new Struct([new Field("pk", new Utf8(), false)]), false)]);
    expect((await ctx.connector.describe({ options: streamOptions, userSchema: user, signal: ctx.signal })).schema).toBe(user);
    const item = new Schema([new Field("pk", new Utf8()), new Field("sk", new Int64())]);
    const error = await rejection(ctx.connector.describe({ options: streamOptions, userSchema: item, signal: ctx.signal }));
    expect(error.errorClass).toBe("STREAM_SCHEMA_INVALID");
  });

  it("refuses starting_position in a batch read", async () => {
    const ctx = setup();
    const error = await rejection(ctx.connector.planRead({ options: streamOptions, schema: new Schema([]), signal: ctx.signal }));
    expect(error.errorClass).toBe("STREAM_OPTION_IN_BATCH_READ");
    expect(error.parameters).toMatchObject({ option: "starting_position", table: "users" });
    expect(error.message).toContain("spark.readStream");
  });

  it("needs starting_position for every streaming call", async () => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    const stream = ctx.connector.stream!;
    const start = serializeStreamOffset({ streamArn: ARN, shards: {} });
    const calls = [
      stream.initialOffset({ options: base, schema, signal: ctx.signal }),
      stream.latestOffset(latestInput({ options: base, schema, signal: ctx.signal, start })),
      stream.planStreamRead({ options: base, schema, signal: ctx.signal, start, end: start }),
    ];
    for (const call of calls) {
      const error = await rejection(call);
      expect(error.errorClass).toBe("STREAM_STARTING_POSITION_REQUIRED");
      expect(error.parameters.option).toBe("starting_position");
    }
  });

  it("refuses an unknown starting_position before any request", async () => {
    const ctx = setup();
    const error = await rejection(ctx.connector.describe({ options: { ...base, starting_position: "yesterday" }, userSchema: undefined, signal: ctx.signal }));
    expect(error.errorClass).toBe("OPTION_INVALID_VALUE");
    expect(error.parameters.option).toBe("starting_position");
    expect(ctx.dynamodb.scans).toHaveLength(0);
  });

  it.each([
    ["an empty start", { start: "" }, "start"],
    ["a start that is not JSON", { start: "{not json" }, "not JSON"],
    ["a start without shards", { start: JSON.stringify({ streamArn: ARN }) }, "'shards'"],
    ["an empty end bound", { endBound: " " }, "end bound"],
  ])("refuses %s with STREAM_OFFSET_INVALID", async (_what, request, fragment) => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    const start = serializeStreamOffset({ streamArn: ARN, shards: {} });
    const error = await rejection(ctx.connector.stream!.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start, ...request })));
    expect(error.errorClass).toBe("STREAM_OFFSET_INVALID");
    expect(error.message).toContain(fragment);
  });

  it("refuses an offset of another table's stream", async () => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    const ours = serializeStreamOffset({ streamArn: ARN, shards: {} });
    const theirs = serializeStreamOffset({ streamArn: fakeStreamArn("orders"), shards: { s: { sequenceNumber: fakeSeq(1), finished: false, parent: null } } });
    const planned = await rejection(ctx.connector.stream!.planStreamRead({ options: streamOptions, schema, signal: ctx.signal, start: ours, end: theirs }));
    expect(planned.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
    expect(planned.parameters).toMatchObject({ table: "users", offsetTable: "orders" });
    expect(planned.message).toContain("new checkpoint location");
    const latest = await rejection(ctx.connector.stream!.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start: theirs })));
    expect(latest.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
    const bound = await rejection(ctx.connector.stream!.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start: ours, endBound: theirs })));
    expect(bound.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
  });

  it.each([
    ["no end", { streamArn: ARN, shardId: "s", start: { type: "TRIM_HORIZON" } }],
    ["an end that is not a sequence number", { streamArn: ARN, shardId: "s", start: { type: "TRIM_HORIZON" }, endSequenceNumber: "x1" }],
    ["an unknown start", { streamArn: ARN, shardId: "s", start: { type: "LATEST" }, endSequenceNumber: "5" }],
    ["a start after no sequence number", { streamArn: ARN, shardId: "s", start: { type: "AFTER_SEQUENCE_NUMBER" }, endSequenceNumber: "5" }],
    ["no shard", { streamArn: ARN, start: { type: "TRIM_HORIZON" }, endSequenceNumber: "5" }],
    ["no stream", { shardId: "s", start: { type: "TRIM_HORIZON" }, endSequenceNumber: "5" }],
  ])("refuses a stream descriptor with %s (DESCRIPTOR_INVALID)", async (_what, body) => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    const error = await readError(() => ctx.connector.read({ options: streamOptions, schema, partition: encodeDescriptor(STREAM_KIND, body), signal: ctx.signal }));
    expect(error.errorClass).toBe("DESCRIPTOR_INVALID");
    expect(ctx.streams.getRecordsCalls).toBe(0);
  });

  it("refuses a stream descriptor of another table's stream before reading", async () => {
    const ctx = setup();
    const schema = await eventSchema(ctx);
    const partition = encodeDescriptor(STREAM_KIND, { streamArn: fakeStreamArn("orders"), shardId: "s", start: { type: "TRIM_HORIZON" }, endSequenceNumber: fakeSeq(3) });
    const error = await readError(() => ctx.connector.read({ options: streamOptions, schema, partition, signal: ctx.signal }));
    expect(error.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
    expect(ctx.streams.getRecordsCalls).toBe(0);
  });

  it.each([
    ["warm (records read ahead by latestOffset)", undefined],
    ["cold (no read-ahead cache)", 0],
  ])("reads the planned partitions as Arrow batches of at most 1000 rows in shard order: %s", async (_what, streamCacheBytes) => {
    const ctx = setup({ streamCacheBytes });
    ctx.streams.shards = [
      { id: "s1", records: Array.from({ length: 2500 }, (_, i) => i + 1), closed: true },
      { id: "s2", parent: "s1", records: [3000, 3001], closed: false },
    ];
    const schema = await eventSchema(ctx);
    const stream = ctx.connector.stream!;
    const initial = await stream.initialOffset({ options: streamOptions, schema, signal: ctx.signal });
    expect(parseStreamOffset(initial).shards.s1).toEqual({ sequenceNumber: null, finished: false, parent: null });
    const end = await stream.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start: initial }));
    const partitions = await stream.planStreamRead({ options: streamOptions, schema, signal: ctx.signal, start: initial, end });
    expect(partitions).toHaveLength(1);
    // Planning is a function of the two offsets: a replay gets the same descriptors.
    expect(await stream.planStreamRead({ options: streamOptions, schema, signal: ctx.signal, start: initial, end })).toEqual(partitions);
    const callsBefore = ctx.streams.getRecordsCalls;

    const sizes: number[] = [];
    const sequence: string[] = [];
    let first: Record<string, unknown> | undefined;
    for await (const batch of ctx.connector.read({ options: streamOptions, schema, partition: partitions[0]!, signal: ctx.signal })) {
      sizes.push(batch.numRows);
      for (let r = 0; r < batch.numRows; r++) sequence.push(readValue(batch.getChild("sequence_number")!, r) as string);
      first ??= Object.fromEntries(schema.fields.map((f) => [f.name, readValue(batch.getChild(f.name)!, 0)]));
    }
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(sequence).toEqual(Array.from({ length: 2500 }, (_, i) => fakeSeq(i + 1)));
    expect(first).toMatchObject({
      event_name: "INSERT",
      event_id: "e1",
      shard_id: "s1",
      keys: { pk: "k1", sk: 1n },
      new_image: { age: 1n, name: "n1", pk: "k1", sk: 1n },
      old_image: null,
      approximate_creation_time: 0n,
    });
    expect(ctx.streams.getRecordsCalls > callsBefore).toBe(streamCacheBytes === 0);

    // The child shard comes in the next micro-batch.
    const next = await stream.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start: end }));
    const [child] = await stream.planStreamRead({ options: streamOptions, schema, signal: ctx.signal, start: end, end: next });
    const childRows: string[] = [];
    for await (const batch of ctx.connector.read({ options: streamOptions, schema, partition: child!, signal: ctx.signal })) {
      for (let r = 0; r < batch.numRows; r++) childRows.push(`${String(readValue(batch.getChild("shard_id")!, r))}:${Number(readValue(batch.getChild("sequence_number")!, r))}`);
    }
    expect(childRows).toEqual(["s2:3000", "s2:3001"]);
    await ctx.connector.close();
  });

  it("catches up every generation with catchUp, and stops at an AvailableNow end bound", async () => {
    const ctx = setup();
    ctx.streams.shards = [
      { id: "s1", records: [1, 2], closed: true },
      { id: "s2", parent: "s1", records: [3, 4], closed: false },
    ];
    const schema = await eventSchema(ctx);
    const stream = ctx.connector.stream!;
    const initial = await stream.initialOffset({ options: streamOptions, schema, signal: ctx.signal });
    const target = await stream.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start: initial, catchUp: true }));
    expect(parseStreamOffset(target).shards.s2!.sequenceNumber).toBe(fakeSeq(4));
    ctx.streams.shards[1]!.records.push(5);
    let start = initial;
    let batches = 0;
    for (; batches < 10; batches++) {
      const end = await stream.latestOffset(latestInput({ options: streamOptions, schema, signal: ctx.signal, start, endBound: target, maxRecords: 1 }));
      if (end === start) break;
      start = end;
    }
    // One record per micro-batch, four of them, then start == end: the query ends at the target.
    expect(batches).toBe(4);
    expect(parseStreamOffset(start).shards.s2!.sequenceNumber).toBe(fakeSeq(4));
  });
});
