/**
 * The DynamoDB Streams core (src/backends/dynamodb/stream.ts) against a real DynamoDB Local
 * with Streams (started by the global setup). Each test has its own table with a
 * NEW_AND_OLD_IMAGES stream; offsets go through their JSON text as Spark's checkpoint keeps them.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CreateTableCommand, DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand, UpdateTableCommand } from "@aws-sdk/client-dynamodb";
import { silentLogger } from "../../src/core/logger.js";
import { createSdkApi, createSdkStreamsApi, type ClientConfig, type DynamoDbApi, type StreamsApi } from "../../src/backends/dynamodb/client.js";
import {
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  readPartition,
  serializeStreamOffset,
  type ChangeRecord,
  type StreamContext,
  type StreamOffset,
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

afterAll(() => {
  raw.destroy();
  dynamodb.destroy();
  streams.destroy();
});

function ctx(table: string, failOnDataLoss = true): StreamContext {
  return { dynamodb, streams, table, region, endpoint, failOnDataLoss, signal: new AbortController().signal, logger: silentLogger };
}

async function createTable(table: string, stream = true): Promise<void> {
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
