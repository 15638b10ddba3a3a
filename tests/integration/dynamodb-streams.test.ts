/**
 * DynamoDB Streams reads against a real DynamoDB Local with Streams (started by the global
 * setup): the core (src/backends/dynamodb/stream.ts) and the connector's streaming calls
 * (describe, stream.initialOffset/latestOffset/planStreamRead, read; Arrow batches out).
 * Each test has its own table, deleted at the end; offsets go through their JSON text as
 * Spark's checkpoint keeps them. Faults through the proxy: dynamodb-streams-faults.test.ts.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CreateTableCommand, DeleteItemCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand, UpdateTableCommand } from "@aws-sdk/client-dynamodb";
import { Binary, Bool, Field, Float64, Int64, List, Map_, Schema, Struct, Utf8, type RecordBatch } from "apache-arrow";
import { createLogger, silentLogger, type Logger } from "../../src/core/logger.js";
import type { Connector } from "../../src/core/connector.js";
import { decodeBatches, encodeBatch } from "../../src/arrow/ipc.js";
import { readValue, type PlainValue } from "../../src/arrow/values.js";
import { createDynamoDbConnector } from "../../src/backends/dynamodb/connector.js";
import { CHANGE_COLUMNS, changeEventSchema } from "../../src/backends/dynamodb/stream-schema.js";
import { createSdkApi, createSdkStreamsApi, type ClientConfig, type DynamoDbApi, type StreamsApi } from "../../src/backends/dynamodb/client.js";
import {
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
  type StreamPartition,
} from "../../src/backends/dynamodb/stream.js";
import "../support/provided-context.js";
import { rejection } from "../support/conduit-error.js";

const endpoint = inject("dynamodbEndpoint");
const region = "us-east-1";
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const run = Date.now().toString(36);
let tableCounter = 0;
const uniqueTable = (label: string) => `it-stream-${label}-${run}-${tableCounter++}`;

let raw: DynamoDBClient;
let dynamodb: DynamoDbApi;
let streams: StreamsApi;

beforeAll(() => {
  const config: ClientConfig = { region, endpoint, credentials, maxSockets: 8 };
  raw = new DynamoDBClient({ region, endpoint, credentials });
  dynamodb = createSdkApi(config);
  streams = createSdkStreamsApi(config);
});

const created: string[] = [];

afterAll(async () => {
  for (const table of created) await raw.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
  raw.destroy();
  dynamodb.destroy();
  streams.destroy();
});

function ctx(table: string, failOnDataLoss = true): StreamContext {
  return { dynamodb, streams, table, region, endpoint, failOnDataLoss, signal: new AbortController().signal, logger: silentLogger };
}

async function createTable(table: string, stream = true): Promise<void> {
  created.push(table);
  await raw.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } } : {}),
    }),
  );
}

const put = (table: string, pk: string, v: number) => raw.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, v: { N: String(v) } } }));

/** Through the checkpoint's text, as a restarted query sees it. */
const roundTrip = (offset: StreamOffset) => parseStreamOffset(serializeStreamOffset(offset));

async function readBetween(context: StreamContext, start: StreamOffset, end: StreamOffset): Promise<ChangeRecord[]> {
  const records: ChangeRecord[] = [];
  for (const partition of planPartitions(start, end)) {
    // Descriptors travel as JSON to the executors.
    for await (const record of readPartition(context, JSON.parse(JSON.stringify(partition)))) records.push(record);
  }
  return records;
}

const summary = (records: ChangeRecord[]) => records.map((r) => `${r.eventName} ${r.keys.pk!.S} ${r.oldImage?.v?.N ?? "-"}->${r.newImage?.v?.N ?? "-"}`);

describe("DynamoDB Streams on DynamoDB Local", () => {
  it("reads INSERT, MODIFY and REMOVE with keys and both images, in order per key", async () => {
    const table = uniqueTable("events");
    await createTable(table);
    const context = ctx(table);
    const start = await initialOffset(context, { type: "trim_horizon" });
    await put(table, "a", 1);
    await put(table, "b", 10);
    await raw.send(new UpdateItemCommand({ TableName: table, Key: { pk: { S: "a" } }, UpdateExpression: "SET v = :v", ExpressionAttributeValues: { ":v": { N: "2" } } }));
    await raw.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: "b" } } }));
    await put(table, "a", 3);

    const end = await latestOffset(context, roundTrip(start));
    const records = await readBetween(context, start, end);
    expect(summary(records)).toEqual(["INSERT a -->1", "INSERT b -->10", "MODIFY a 1->2", "REMOVE b 10->-", "MODIFY a 2->3"]);
    expect(records[0]).toMatchObject({ keys: { pk: { S: "a" } }, newImage: { pk: { S: "a" }, v: { N: "1" } }, oldImage: null });
    for (const r of records) {
      expect(r.eventId).toMatch(/\S/);
      expect(r.approximateCreationTime).toBeInstanceOf(Date);
      expect(r.shardId).toBe(Object.keys(end.shards)[0]);
    }
    expect(records.map((r) => r.sequenceNumber)).toEqual([...records.map((r) => r.sequenceNumber)].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)));
    // Caught up: nothing new until the next write.
    expect(planPartitions(end, await latestOffset(context, end))).toEqual([]);
  });

  it("re-reads exactly the same records between two checkpointed offsets, and the next range starts after them", async () => {
    const table = uniqueTable("replay");
    await createTable(table);
    const context = ctx(table);
    for (let i = 0; i < 5; i++) await put(table, `k${i}`, i);
    const first = roundTrip(await latestOffset(context, await initialOffset(context, { type: "trim_horizon" })));
    for (let i = 5; i < 12; i++) await put(table, `k${i}`, i);
    const second = roundTrip(await latestOffset(context, first));

    const once = await readBetween(context, first, second);
    const again = await readBetween(context, roundTrip(first), roundTrip(second));
    expect(summary(once)).toEqual(Array.from({ length: 7 }, (_, j) => `INSERT k${j + 5} -->${j + 5}`));
    expect(again).toEqual(once);
    expect(summary(await readBetween(context, { streamArn: first.streamArn, shards: {} }, first))).toEqual(Array.from({ length: 5 }, (_, j) => `INSERT k${j} -->${j}`));
  });

  it("bounds latestOffset by max records, and the bounded ranges add up to the whole stream in order", async () => {
    const table = uniqueTable("limit");
    await createTable(table);
    const context = ctx(table);
    for (let i = 0; i < 10; i++) await put(table, `k${i}`, i);
    let offset = await initialOffset(context, { type: "trim_horizon" });
    const all: ChangeRecord[] = [];
    const sizes: number[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const next = roundTrip(await latestOffset(context, offset, { maxRecords: 3 }));
      const records = await readBetween(context, offset, next);
      sizes.push(records.length);
      all.push(...records);
      offset = next;
    }
    expect(sizes).toEqual([3, 3, 3, 1, 0, 0]);
    expect(summary(all)).toEqual(Array.from({ length: 10 }, (_, i) => `INSERT k${i} -->${i}`));
  });

  it("finishes a shard closed by disabling the stream, then reports the new stream as data loss unless fail_on_data_loss is false", async () => {
    const table = uniqueTable("reenable");
    await createTable(table);
    const context = ctx(table);
    await put(table, "a", 1);
    const first = roundTrip(await latestOffset(context, await initialOffset(context, { type: "trim_horizon" })));
    await put(table, "b", 2);
    await raw.send(new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: false } }));
    await raw.send(new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }));
    await put(table, "c", 3);

    // The old stream's last record first, with its shard finished.
    const second = roundTrip(await latestOffset(context, first));
    expect(second.streamArn).toBe(first.streamArn);
    expect(Object.values(second.shards)).toEqual([expect.objectContaining({ finished: true })]);
    expect(summary(await readBetween(context, first, second))).toEqual(["INSERT b -->2"]);

    const refused = await rejection(latestOffset(context, second));
    expect(refused.errorClass).toBe("STREAM_DATA_LOSS");
    expect(refused.message).toContain("disabled and enabled again");
    expect(refused.message).toContain("fail_on_data_loss");

    const lenient = ctx(table, false);
    const third = roundTrip(await latestOffset(lenient, second));
    expect(third.streamArn).not.toBe(first.streamArn);
    expect(summary(await readBetween(lenient, second, third))).toEqual(["INSERT c -->3"]);
  });

  it("refuses a checkpoint from another table's stream", async () => {
    const table = uniqueTable("mine");
    const other = uniqueTable("other");
    await createTable(table);
    await createTable(other);
    const foreign = await initialOffset(ctx(other), { type: "trim_horizon" });
    const error = await rejection(latestOffset(ctx(table), foreign));
    expect(error.errorClass).toBe("STREAM_OFFSET_OTHER_TABLE");
    expect(error.message).toContain(other);
    expect(error.message).toContain(table);
  });

  it("says how to enable a stream on a table without one", async () => {
    const table = uniqueTable("nostream");
    await createTable(table, false);
    const error = await rejection(initialOffset(ctx(table), { type: "trim_horizon" }));
    expect(error.errorClass).toBe("STREAM_NOT_ENABLED");
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.message).toContain(`aws dynamodb update-table --table-name ${table} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES`);
  });
});

// ---------------------------------------------------------------------------------------
// Through the connector: the calls the gRPC handlers make, Arrow IPC out.

type Row = Record<string, PlainValue>;
type ViewType = "NEW_AND_OLD_IMAGES" | "NEW_IMAGE" | "OLD_IMAGE" | "KEYS_ONLY";

/** A fresh signal per call, as the transport gives every RPC its own. */
const fresh = () => new AbortController().signal;

function opts(table: string, extra: Record<string, string> = {}): Record<string, string> {
  return { table_name: table, aws_region: region, endpoint_url: endpoint, aws_access_key_id: "local", aws_secret_access_key: "local", starting_position: "trim_horizon", ...extra };
}

async function createStreamTable(table: string, view: ViewType, range = false): Promise<void> {
  created.push(table);
  await raw.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, ...(range ? [{ AttributeName: "sk", AttributeType: "N" as const }] : [])],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, ...(range ? [{ AttributeName: "sk", KeyType: "RANGE" as const }] : [])],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: view },
    }),
  );
}

/** Rows of a batch after the IPC round trip the Read RPC makes. */
function rowsOf(batch: RecordBatch, schema: Schema): Row[] {
  const rows: Row[] = [];
  for (const decoded of decodeBatches(encodeBatch(batch), schema)) {
    const columns = schema.fields.map((f, i) => [f.name, decoded.getChildAt(i)!] as const);
    for (let r = 0; r < decoded.numRows; r++) rows.push(Object.fromEntries(columns.map(([name, vector]) => [name, readValue(vector, r)])));
  }
  return rows;
}

/** PlanStreamRead then one Read per partition, as a micro-batch's tasks do. */
async function readRange(connector: Connector, options: Record<string, string>, schema: Schema, start: string, end: string): Promise<Row[]> {
  const partitions = await connector.stream!.planStreamRead({ options, schema, start, end, signal: fresh() });
  const rows: Row[] = [];
  for (const partition of partitions) {
    for await (const batch of connector.read({ options, schema, partition, signal: fresh() })) rows.push(...rowsOf(batch, schema));
  }
  return rows;
}

const latest = (connector: Connector, options: Record<string, string>, schema: Schema, start: string, maxRecords?: number) =>
  connector.stream!.latestOffset({ options, schema, start, maxRecords, endBound: undefined, catchUp: false, signal: fresh() });
const initial = (connector: Connector, options: Record<string, string>, schema: Schema) => connector.stream!.initialOffset({ options, schema, signal: fresh() });

/** A logger that keeps warnings (the fail_on_data_loss=false path must say what it skipped). */
function warningLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: createLogger("warn", {}, (line) => warnings.push(line)), warnings };
}

const bySeq = (a: Row, b: Row) => compareSequenceNumbers(a.sequence_number as string, b.sequence_number as string);
const eventSummary = (rows: Row[]) => rows.map((r) => `${String(r.event_name)} ${String((r.keys as Row).pk)} ${String((r.old_image as Row | null)?.v ?? "-")}->${String((r.new_image as Row | null)?.v ?? "-")}`);
const update = (table: string, pk: string, v: number) =>
  raw.send(new UpdateItemCommand({ TableName: table, Key: { pk: { S: pk } }, UpdateExpression: "SET v = :v", ExpressionAttributeValues: { ":v": { N: String(v) } } }));
const remove = (table: string, pk: string) => raw.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk } } }));

const SIMPLE_SCHEMA = changeEventSchema(new Schema([new Field("pk", new Utf8(), false), new Field("v", new Int64(), true)]), ["pk"]);

describe("DynamoDB streaming reads through the connector", () => {
  let connector: Connector;
  beforeAll(() => {
    connector = createDynamoDbConnector(silentLogger);
  });
  afterAll(async () => {
    await connector.close();
  });

  it("gives every event kind with typed keys and images (numbers, strings, bools, binary, lists, sets, maps, nested maps, nulls)", async () => {
    const table = uniqueTable("typed");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES", true);
    const address = new Struct([new Field("city", new Utf8(), true), new Field("zip", new Int64(), true)] as Field[]);
    const itemSchema = new Schema([
      new Field("pk", new Utf8(), false),
      new Field("sk", new Int64(), false),
      new Field("count", new Int64(), true),
      new Field("price", new Float64(), true),
      new Field("label", new Utf8(), true),
      new Field("active", new Bool(), true),
      new Field("blob", new Binary(), true),
      new Field("tags", new List(new Field("element", new Utf8(), true)), true),
      new Field("ranks", new List(new Field("element", new Int64(), true)), true),
      new Field("history", new List(new Field("element", new Utf8(), true)), true),
      new Field("attrs", new Map_(new Field("entries", new Struct<{ key: Utf8; value: Int64 }>([new Field("key", new Utf8(), false), new Field("value", new Int64(), true)]), false)), true),
      new Field("profile", new Struct([new Field("name", new Utf8(), true), new Field("address", address, true)] as Field[]), true),
      new Field("note", new Utf8(), true),
    ]);
    const schema = changeEventSchema(itemSchema, ["pk", "sk"]);
    const options = opts(table);
    expect((await connector.describe({ options, userSchema: schema, signal: fresh() })).schema).toBe(schema);
    const start = await initial(connector, options, schema);
    const before = Date.now();

    const key = { pk: { S: "item#1" }, sk: { N: "7" } };
    await raw.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          ...key,
          count: { N: "-42" },
          price: { N: "3.25" },
          label: { S: "first ünïcode" },
          active: { BOOL: true },
          blob: { B: new Uint8Array([0, 1, 254, 255]) },
          tags: { SS: ["red", "blue"] },
          ranks: { NS: ["3", "1", "2"] },
          history: { L: [{ S: "created" }, { S: "checked" }] },
          attrs: { M: { a: { N: "1" }, b: { N: "2" } } },
          profile: { M: { name: { S: "Ada" }, address: { M: { city: { S: "London" }, zip: { N: "12345" } } } } },
          note: { NULL: true },
        },
      }),
    );
    await raw.send(
      new UpdateItemCommand({
        TableName: table,
        Key: key,
        UpdateExpression: "SET #c = :c, label = :null, profile.address.city = :city REMOVE active, #b",
        ExpressionAttributeNames: { "#c": "count", "#b": "blob" },
        ExpressionAttributeValues: { ":c": { N: "9007199254740993" }, ":null": { NULL: true }, ":city": { S: "Paris" } },
      }),
    );
    await raw.send(new DeleteItemCommand({ TableName: table, Key: key }));
    const after = Date.now();

    const end = await latest(connector, options, schema, start);
    const rows = await readRange(connector, options, schema, start, end);
    expect(rows.map((r) => r.event_name)).toEqual(["INSERT", "MODIFY", "REMOVE"]);
    const keys = { pk: "item#1", sk: 7n };
    const sorted = (image: Row) => ({ ...image, tags: [...(image.tags as string[])].sort(), ranks: [...(image.ranks as bigint[])].sort(), attrs: [...(image.attrs as [string, bigint][])].sort() });
    const inserted = {
      ...keys,
      count: -42n,
      price: 3.25,
      label: "first ünïcode",
      active: true,
      blob: new Uint8Array([0, 1, 254, 255]),
      tags: ["blue", "red"],
      ranks: [1n, 2n, 3n],
      history: ["created", "checked"],
      attrs: [
        ["a", 1n],
        ["b", 2n],
      ],
      profile: { name: "Ada", address: { city: "London", zip: 12345n } },
      note: null,
    };
    const modified = { ...inserted, count: 9007199254740993n, label: null, active: null, blob: null, profile: { name: "Ada", address: { city: "Paris", zip: 12345n } } };
    const [insert, modify, removal] = rows as [Row, Row, Row];
    expect(insert.old_image).toBeNull();
    expect(sorted(insert.new_image as Row)).toEqual(inserted);
    expect(sorted(modify.old_image as Row)).toEqual(inserted);
    expect(sorted(modify.new_image as Row)).toEqual(modified);
    expect(removal.new_image).toBeNull();
    expect(sorted(removal.old_image as Row)).toEqual(modified);
    for (const row of rows) {
      expect(row.keys).toEqual(keys);
      expect(row.shard_id).toBe(Object.keys(parseStreamOffset(end).shards)[0]);
      // DynamoDB Local rounds creation times to the minute: only the minute is certain.
      const micros = Number(row.approximate_creation_time as bigint);
      expect(micros).toBeGreaterThanOrEqual(Math.floor(before / 60_000) * 60_000_000);
      expect(micros).toBeLessThanOrEqual((Math.floor(after / 60_000) + 1) * 60_000_000);
    }
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(3);
    expect([...rows].sort(bySeq)).toEqual(rows);
  });

  it("infers the images' types the way a batch read of the same table does", async () => {
    const table = uniqueTable("inferred");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES", true);
    await raw.send(new PutItemCommand({ TableName: table, Item: { pk: { S: "a" }, sk: { N: "1" }, name: { S: "x" }, score: { N: "2.5" }, tags: { SS: ["t"] }, on: { BOOL: false } } }));
    const stream = await connector.describe({ options: opts(table), userSchema: undefined, signal: fresh() });
    const { starting_position: _unused, ...batchOptions } = opts(table);
    const batch = await connector.describe({ options: batchOptions, userSchema: undefined, signal: fresh() });
    expect(stream.schema.fields.map((f) => f.name)).toEqual([...CHANGE_COLUMNS]);
    const struct = (name: string) => (stream.schema.fields.find((f) => f.name === name)!.type as Struct).children.map((c) => `${c.name}:${String(c.type)}`);
    const batchColumns = batch.schema.fields.map((f) => `${f.name}:${String(f.type)}`);
    expect(struct("new_image")).toEqual(batchColumns);
    expect(struct("old_image")).toEqual(batchColumns);
    expect(struct("keys")).toEqual(batchColumns.filter((c) => c.startsWith("pk:") || c.startsWith("sk:")));

    const start = await initial(connector, opts(table), stream.schema);
    const rows = await readRange(connector, opts(table), stream.schema, start, await latest(connector, opts(table), stream.schema, start));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.new_image).toMatchObject({ pk: "a", name: "x", score: 2.5, tags: ["t"], on: false });
  });

  it.each([
    // [view type, per event (INSERT, MODIFY, REMOVE): has new image, has old image]
    ["KEYS_ONLY", [false, false], [false, false], [false, false]],
    ["NEW_IMAGE", [true, false], [true, false], [false, false]],
    ["OLD_IMAGE", [false, false], [false, true], [false, true]],
  ] as const)("leaves images null as the %s view type has none", async (view, ...expected) => {
    const table = uniqueTable(view.toLowerCase().replace("_", ""));
    await createStreamTable(table, view);
    const options = opts(table);
    const start = await initial(connector, options, SIMPLE_SCHEMA);
    await put(table, "k", 1);
    await update(table, "k", 2);
    await remove(table, "k");
    const rows = await readRange(connector, options, SIMPLE_SCHEMA, start, await latest(connector, options, SIMPLE_SCHEMA, start));
    expect(rows.map((r) => r.event_name)).toEqual(["INSERT", "MODIFY", "REMOVE"]);
    const images = [
      [{ pk: "k", v: 1n }, null],
      [{ pk: "k", v: 2n }, { pk: "k", v: 1n }],
      [null, { pk: "k", v: 2n }],
    ];
    rows.forEach((row, i) => {
      expect(row.keys).toEqual({ pk: "k" });
      expect(row.new_image).toEqual(expected[i]![0] ? images[i]![0] : null);
      expect(row.old_image).toEqual(expected[i]![1] ? images[i]![1] : null);
    });
  });

  it("replays exactly: the same range read twice, warm or cold cache, and bounded micro-batches add up to the whole stream", async () => {
    const table = uniqueTable("exactly");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    const options = opts(table);
    const expected: string[] = [];
    for (let i = 0; i < 12; i++) {
      await put(table, `k${i % 5}`, i);
      expected.push(i < 5 ? `INSERT k${i} -->${i}` : `MODIFY k${i % 5} ${i - 5}->${i}`);
    }
    await remove(table, "k1");
    await remove(table, "k3");
    expected.push("REMOVE k1 11->-", "REMOVE k3 8->-");
    let offset = await initial(connector, options, SIMPLE_SCHEMA);
    const first = offset;
    const cold = createDynamoDbConnector(silentLogger);
    const all: Row[] = [];
    const sizes: number[] = [];
    try {
      for (let batch = 0; batch < 6; batch++) {
        const next = await latest(connector, options, SIMPLE_SCHEMA, offset, 4);
        const warm = await readRange(connector, options, SIMPLE_SCHEMA, offset, next);
        expect(await readRange(connector, options, SIMPLE_SCHEMA, offset, next)).toEqual(warm);
        expect(await readRange(cold, options, SIMPLE_SCHEMA, offset, next)).toEqual(warm);
        // Planning is deterministic: a restarted query plans the same descriptors.
        const plan = await connector.stream!.planStreamRead({ options, schema: SIMPLE_SCHEMA, start: offset, end: next, signal: fresh() });
        expect(await cold.stream!.planStreamRead({ options, schema: SIMPLE_SCHEMA, start: offset, end: next, signal: fresh() })).toEqual(plan);
        sizes.push(warm.length);
        all.push(...warm);
        offset = next;
      }
      expect(sizes).toEqual([4, 4, 4, 2, 0, 0]);
      expect(eventSummary(all)).toEqual(expected);
      expect(new Set(all.map((r) => r.sequence_number)).size).toBe(all.length);
      // One unbounded range from a connector that never saw the table gives the same rows.
      expect(await readRange(cold, options, SIMPLE_SCHEMA, first, offset)).toEqual(all);
    } finally {
      await cold.close();
    }
  });

  it("starts where starting_position says: latest, a far past timestamp (everything), a far future one (nothing yet)", async () => {
    const table = uniqueTable("position");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    for (let i = 0; i < 3; i++) await put(table, `old${i}`, i);
    const positions = { latest: "latest", past: "2000-01-01T00:00:00Z", future: "2999-12-31T23:59:59Z", horizon: "trim_horizon", earliest: "earliest" };
    const starts = Object.fromEntries(
      await Promise.all(Object.entries(positions).map(async ([name, position]) => [name, await initial(connector, opts(table, { starting_position: position }), SIMPLE_SCHEMA)] as const)),
    );
    await put(table, "new", 100);
    const read = async (name: keyof typeof positions) => {
      const options = opts(table, { starting_position: positions[name] });
      return eventSummary(await readRange(connector, options, SIMPLE_SCHEMA, starts[name]!, await latest(connector, options, SIMPLE_SCHEMA, starts[name]!)));
    };
    const everything = ["INSERT old0 -->0", "INSERT old1 -->1", "INSERT old2 -->2", "INSERT new -->100"];
    expect(await read("latest")).toEqual(["INSERT new -->100"]);
    expect(await read("future")).toEqual(["INSERT new -->100"]);
    expect(await read("past")).toEqual(everything);
    expect(await read("horizon")).toEqual(everything);
    expect(await read("earliest")).toEqual(everything);

    const error = await rejection(initial(connector, opts(table, { starting_position: "yesterday" }), SIMPLE_SCHEMA));
    expect(error.errorClass).toBe("OPTION_INVALID_VALUE");
    expect(error.message).toContain("starting_position");
  });

  it("a timestamp a minute back starts at that minute's changes and not before (creation times are rounded to the minute)", async () => {
    const table = uniqueTable("minute");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    await put(table, "a", 1);
    const start = await initial(connector, opts(table), SIMPLE_SCHEMA);
    const end = await latest(connector, opts(table), SIMPLE_SCHEMA, start);
    const [row] = await readRange(connector, opts(table), SIMPLE_SCHEMA, start, end);
    const created = new Date(Number((row!.approximate_creation_time as bigint) / 1000n));
    await put(table, "b", 2);
    const at = (ms: number) => opts(table, { starting_position: new Date(ms).toISOString() });
    const fromCreation = await initial(connector, at(created.getTime()), SIMPLE_SCHEMA);
    const afterCreation = await initial(connector, at(created.getTime() + 61_000), SIMPLE_SCHEMA);
    const both = await readRange(connector, opts(table), SIMPLE_SCHEMA, fromCreation, await latest(connector, opts(table), SIMPLE_SCHEMA, fromCreation));
    expect(eventSummary(both).slice(0, 1)).toEqual(["INSERT a -->1"]);
    const later = await readRange(connector, opts(table), SIMPLE_SCHEMA, afterCreation, await latest(connector, opts(table), SIMPLE_SCHEMA, afterCreation));
    expect(eventSummary(later)).not.toContain("INSERT a -->1");
  });
});

describe("DynamoDB streaming reads when the stream changes under the query", () => {
  it("finishes the shard a disabled stream closed, with its last records, before anything else", async () => {
    const table = uniqueTable("disabled");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    const connector = createDynamoDbConnector(silentLogger);
    const options = opts(table);
    try {
      await put(table, "a", 1);
      const first = await latest(connector, options, SIMPLE_SCHEMA, await initial(connector, options, SIMPLE_SCHEMA));
      expect(Object.values(parseStreamOffset(first).shards)).toEqual([expect.objectContaining({ finished: false })]);
      await put(table, "b", 2);
      await update(table, "a", 3);
      await raw.send(new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: false } }));
      // The stream is off now, but its closed shard still holds the two changes made before.
      const second = await latest(connector, options, SIMPLE_SCHEMA, first);
      expect(Object.values(parseStreamOffset(second).shards)).toEqual([expect.objectContaining({ finished: true })]);
      expect(eventSummary(await readRange(connector, options, SIMPLE_SCHEMA, first, second))).toEqual(["INSERT b -->2", "MODIFY a 1->3"]);
      // Nothing after a finished shard of a stream that is still off.
      expect(await latest(connector, options, SIMPLE_SCHEMA, second)).toBe(second);
    } finally {
      await connector.close();
    }
  });

  it("a re-enabled stream is STREAM_DATA_LOSS by default; with fail_on_data_loss=false a warning, then the new stream's records", async () => {
    const table = uniqueTable("switch");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    const { logger, warnings } = warningLogger();
    const connector = createDynamoDbConnector(logger);
    try {
      await put(table, "a", 1);
      const strict = opts(table);
      const lenient = opts(table, { fail_on_data_loss: "false" });
      const first = await latest(connector, strict, SIMPLE_SCHEMA, await initial(connector, strict, SIMPLE_SCHEMA));
      await put(table, "b", 2);
      await raw.send(new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: false } }));
      await put(table, "lost", 0);
      await raw.send(new UpdateTableCommand({ TableName: table, StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }));
      await put(table, "c", 3);

      const second = await latest(connector, strict, SIMPLE_SCHEMA, first);
      expect(parseStreamOffset(second).streamArn).toBe(parseStreamOffset(first).streamArn);
      expect(Object.values(parseStreamOffset(second).shards).every((s) => s.finished)).toBe(true);
      expect(eventSummary(await readRange(connector, strict, SIMPLE_SCHEMA, first, second))).toEqual(["INSERT b -->2"]);

      const refused = await rejection(latest(connector, strict, SIMPLE_SCHEMA, second));
      expect(refused.errorClass).toBe("STREAM_DATA_LOSS");
      expect(refused.code).toBe("FAILED_PRECONDITION");
      expect(refused.message).toContain("disabled and enabled again");
      expect(refused.message).toContain(table);
      expect(warnings).toEqual([]);

      const third = await latest(connector, lenient, SIMPLE_SCHEMA, second);
      expect(parseStreamOffset(third).streamArn).not.toBe(parseStreamOffset(first).streamArn);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("disabled and enabled again");
      expect(warnings[0]).toContain("fail_on_data_loss is false");
      const rows = await readRange(connector, lenient, SIMPLE_SCHEMA, second, third);
      expect(eventSummary(rows)).toEqual(["INSERT c -->3"]);
      // The change made while the stream was off is in no stream: it is the loss reported.
      expect(rows.map((r) => (r.keys as Row).pk)).not.toContain("lost");
    } finally {
      await connector.close();
    }
  });

  // DynamoDB Local never trims (records outlive the 24 hours only in a long-running Local),
  // so the checkpoints here name what Local really rejects: a shard that is not in the
  // stream, and a sequence number from before the shard's first record. TrimmedDataAccessException
  // itself is injected through the fault proxy (dynamodb-streams-faults.test.ts).
  it("a checkpoint naming a shard the stream no longer has is STREAM_DATA_LOSS, or a warning and the rest is read with fail_on_data_loss=false", async () => {
    const table = uniqueTable("vanished");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    const { logger, warnings } = warningLogger();
    const connector = createDynamoDbConnector(logger);
    try {
      await put(table, "a", 1);
      const strict = opts(table);
      const lenient = opts(table, { fail_on_data_loss: "false" });
      const real = parseStreamOffset(await latest(connector, strict, SIMPLE_SCHEMA, await initial(connector, strict, SIMPLE_SCHEMA)));
      await put(table, "b", 2);
      const gone = "shardId-00000000000000000001-00000000";
      const checkpoint = serializeStreamOffset({ ...real, shards: { ...real.shards, [gone]: { sequenceNumber: null, finished: false, parent: null } } });

      const refused = await rejection(latest(connector, strict, SIMPLE_SCHEMA, checkpoint));
      expect(refused.errorClass).toBe("STREAM_DATA_LOSS");
      expect(refused.message).toContain(gone);
      expect(refused.parameters.shard).toBe(gone);

      const next = await latest(connector, lenient, SIMPLE_SCHEMA, checkpoint);
      expect(Object.keys(parseStreamOffset(next).shards)).toEqual(Object.keys(real.shards));
      expect(warnings.some((w) => w.includes(gone))).toBe(true);
      expect(eventSummary(await readRange(connector, lenient, SIMPLE_SCHEMA, checkpoint, next))).toEqual(["INSERT b -->2"]);

      // A task given a partition of that shard: the same choice, in the task.
      const partition: StreamPartition = { streamArn: real.streamArn, shardId: gone, start: { type: "TRIM_HORIZON" }, endSequenceNumber: "000000000000000000001" };
      const strictRead = await rejection(collect(readPartition(ctx(table), partition)));
      expect(strictRead.errorClass).toBe("STREAM_DATA_LOSS");
      const lenientWarnings = warningLogger();
      expect(await collect(readPartition({ ...ctx(table, false), logger: lenientWarnings.logger }, partition))).toEqual([]);
      expect(lenientWarnings.warnings.some((w) => w.includes(gone))).toBe(true);
    } finally {
      await connector.close();
    }
  });

  it("a checkpoint sequence number before the shard's first record fails clearly (Local: ValidationException), never silently", async () => {
    const table = uniqueTable("before");
    await createStreamTable(table, "NEW_AND_OLD_IMAGES");
    const connector = createDynamoDbConnector(silentLogger);
    try {
      await put(table, "a", 1);
      const real = parseStreamOffset(await latest(connector, opts(table), SIMPLE_SCHEMA, await initial(connector, opts(table), SIMPLE_SCHEMA)));
      const [shardId, state] = Object.entries(real.shards)[0]!;
      const earlier = (BigInt(state.sequenceNumber!) - 1n).toString().padStart(state.sequenceNumber!.length, "0");
      const checkpoint = serializeStreamOffset({ ...real, shards: { [shardId]: { ...state, sequenceNumber: earlier } } });
      for (const failOnDataLoss of ["true", "false"]) {
        const error = await rejection(latest(connector, opts(table, { fail_on_data_loss: failOnDataLoss }), SIMPLE_SCHEMA, checkpoint));
        expect(error.errorClass).toBe("DYNAMODB_VALIDATION");
        expect(error.message).toContain("GetShardIterator");
        expect(error.message).toContain("Invalid SequenceNumber");
      }
    } finally {
      await connector.close();
    }
  });
});

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
