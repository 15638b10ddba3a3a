/**
 * Transport tests of the streaming read RPCs (InitialOffset, LatestOffset, PlanStreamRead,
 * and Read of a stream partition): a real gRPC server on port 0 and a real grpc-js client,
 * with the real DynamoDB connector over in-memory DynamoDB and Streams fakes (the
 * database is not what these tests are about; tests/integration reads DynamoDB Local).
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { Schema } from "apache-arrow";
import { decodeBatches, decodeSchema } from "../../src/arrow/ipc.js";
import { readValue } from "../../src/arrow/values.js";
import { createCassandraConnector } from "../../src/backends/cassandra/connector.js";
import { createDynamoDbConnector } from "../../src/backends/dynamodb/connector.js";
import { defaultFakeRecord, FakeDynamoDb, FakeStreams, fakeSeq, fakeStreamArn } from "../../src/backends/dynamodb/test-fakes.js";
import { silentLogger } from "../../src/core/logger.js";
import { startServer, type RunningServer } from "../../src/transport/server.js";
import { FakeClock } from "../support/fake-clock.js";
import { errorDetails, serviceClients, unaryCall, type Client } from "../support/grpc-client.js";

const ARN = fakeStreamArn("users");
const options = {
  table_name: "users",
  aws_region: "us-east-1",
  endpoint_url: "http://127.0.0.1:8000",
  aws_access_key_id: "dummy",
  aws_secret_access_key: "dummy",
  starting_position: "trim_horizon",
};

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.shutdown(1000);
  server = undefined;
});

async function start() {
  const dynamodb = new FakeDynamoDb();
  dynamodb.addTable("users", { name: "pk", type: "S" }).streamArn = ARN;
  dynamodb.addTable("plain", { name: "pk", type: "S" });
  dynamodb.put("users", { pk: { S: "a" }, n: { N: "1" } });
  const streams = new FakeStreams(ARN);
  streams.makeRecord = (shard, n) => {
    const record = defaultFakeRecord(shard, n);
    return { ...record, dynamodb: { ...record.dynamodb, NewImage: { pk: { S: `k${n}` }, n: { N: String(n) } } } };
  };
  streams.shards = [
    { id: "s1", records: Array.from({ length: 1500 }, (_, i) => i + 1), closed: true },
    { id: "s2", parent: "s1", records: [2000, 2001], closed: false },
  ];
  const connectors = new Map([
    ["dynamodb", createDynamoDbConnector(silentLogger, { createApi: () => dynamodb, createStreamsApi: () => streams, clock: new FakeClock() })],
    // Never connects: the streaming calls are refused before any client is made.
    ["pycassandra", createCassandraConnector(silentLogger)],
    // A format without streaming reads (every real one has them now).
    ["batchonly", { ...createCassandraConnector(silentLogger), format: "batchonly", stream: undefined }],
  ]);
  server = await startServer({ listen: "127.0.0.1:0", connectors, logger: silentLogger });
  const { conduit } = serviceClients(`127.0.0.1:${server.port}`);
  return { conduit, streams };
}

const unary = unaryCall;

async function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

const errorInfo = errorDetails;

async function describeSchema(conduit: Client): Promise<Buffer> {
  const response = await unary<{ arrowSchema: Buffer }>(conduit, "Describe", { format: "dynamodb", options });
  return response.arrowSchema;
}

const latest = (conduit: Client, arrowSchema: Buffer, startOffset: string, extra: object = {}) =>
  unary<{ offset: string }>(conduit, "LatestOffset", { format: "dynamodb", options, arrowSchema, startOffset, ...extra }).then((r) => r.offset);

const plan = (conduit: Client, arrowSchema: Buffer, startOffset: string, endOffset: string) =>
  unary<{ partitions: Buffer[] }>(conduit, "PlanStreamRead", { format: "dynamodb", options, arrowSchema, startOffset, endOffset }).then((r) => r.partitions);

async function readRows(conduit: Client, arrowSchema: Buffer, partition: Buffer): Promise<{ sizes: number[]; rows: string[] }> {
  const schema = decodeSchema(arrowSchema) as Schema;
  const call = conduit.Read({ format: "dynamodb", options, arrowSchema, partition }) as grpc.ClientReadableStream<{ arrowBatch: Buffer }>;
  const sizes: number[] = [];
  const rows: string[] = [];
  for await (const message of call) {
    for (const batch of decodeBatches(message.arrowBatch, schema)) {
      sizes.push(batch.numRows);
      for (let r = 0; r < batch.numRows; r++) {
        const image = readValue(batch.getChild("new_image")!, r) as { pk: string; n: bigint };
        rows.push(`${String(readValue(batch.getChild("shard_id")!, r))}:${Number(readValue(batch.getChild("sequence_number")!, r))}:${image.pk}:${image.n}`);
      }
    }
  }
  return { sizes, rows };
}

describe("streaming read RPCs", () => {
  it("round-trip a change stream: InitialOffset, LatestOffset, PlanStreamRead and Read of each partition", async () => {
    const { conduit } = await start();
    const arrowSchema = await describeSchema(conduit);
    expect(decodeSchema(arrowSchema)!.fields.map((f) => f.name)).toContain("new_image");

    const initial = (await unary<{ offset: string }>(conduit, "InitialOffset", { format: "dynamodb", options, arrowSchema })).offset;
    expect(JSON.parse(initial)).toEqual({
      streamArn: ARN,
      shards: { s1: { sequenceNumber: null, finished: false, parent: null }, s2: { sequenceNumber: null, finished: false, parent: "s1" } },
    });

    // max_records bounds the micro-batch; 0 means no limit.
    const first = await latest(conduit, arrowSchema, initial, { maxRecords: 1200 });
    expect(JSON.parse(first).shards.s1.sequenceNumber).toBe(fakeSeq(1200));
    const second = await latest(conduit, arrowSchema, first, { maxRecords: 0 });
    expect(JSON.parse(second).shards.s1).toEqual({ sequenceNumber: fakeSeq(1500), finished: true, parent: null });

    const rows: string[] = [];
    for (const [from, to] of [
      [initial, first],
      [first, second],
    ] as const) {
      const partitions = await plan(conduit, arrowSchema, from, to);
      expect(partitions).toHaveLength(1);
      for (const partition of partitions) {
        const read = await readRows(conduit, arrowSchema, partition);
        expect(Math.max(...read.sizes)).toBeLessThanOrEqual(1000);
        rows.push(...read.rows);
      }
    }
    expect(rows).toEqual(Array.from({ length: 1500 }, (_, i) => `s1:${i + 1}:k${i + 1}:${i + 1}`));

    // The child shard in the next micro-batch; then nothing new: start == end, no partitions.
    const third = await latest(conduit, arrowSchema, second);
    const [child] = await plan(conduit, arrowSchema, second, third);
    expect((await readRows(conduit, arrowSchema, child!)).rows).toEqual(["s2:2000:k2000:2000", "s2:2001:k2001:2001"]);
    const fourth = await latest(conduit, arrowSchema, third);
    expect(fourth).toBe(third);
    expect(await plan(conduit, arrowSchema, third, fourth)).toEqual([]);
  });

  it("passes catch_up and end_bound through: the AvailableNow target and a query bounded by it", async () => {
    const { conduit, streams } = await start();
    const arrowSchema = await describeSchema(conduit);
    const initial = (await unary<{ offset: string }>(conduit, "InitialOffset", { format: "dynamodb", options, arrowSchema })).offset;
    const target = await latest(conduit, arrowSchema, initial, { catchUp: true });
    expect(JSON.parse(target).shards.s2.sequenceNumber).toBe(fakeSeq(2001));
    streams.shards[1]!.records.push(2002);
    const first = await latest(conduit, arrowSchema, initial, { endBound: target });
    const second = await latest(conduit, arrowSchema, first, { endBound: target });
    expect(JSON.parse(second).shards.s2.sequenceNumber).toBe(fakeSeq(2001));
    expect(await latest(conduit, arrowSchema, second, { endBound: target })).toBe(second);
  });

  it("translates the stream errors into statuses with ErrorInfo", async () => {
    const { conduit } = await start();
    const arrowSchema = await describeSchema(conduit);
    const initial = (await unary<{ offset: string }>(conduit, "InitialOffset", { format: "dynamodb", options, arrowSchema })).offset;

    const noPosition = await failure(unary(conduit, "InitialOffset", { format: "dynamodb", options: { ...options, starting_position: "" }, arrowSchema }));
    expect(noPosition.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorInfo(noPosition)).toMatchObject({ reason: "OPTION_INVALID_VALUE", metadata: { option: "starting_position" } });
    const { starting_position: _omitted, ...batchOptions } = options;
    const required = await failure(unary(conduit, "InitialOffset", { format: "dynamodb", options: batchOptions, arrowSchema }));
    expect(required.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorInfo(required)).toMatchObject({ reason: "STREAM_STARTING_POSITION_REQUIRED", metadata: { option: "starting_position" } });

    const notEnabled = await failure(unary(conduit, "InitialOffset", { format: "dynamodb", options: { ...options, table_name: "plain" }, arrowSchema }));
    expect(notEnabled.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(errorInfo(notEnabled)).toMatchObject({ reason: "STREAM_NOT_ENABLED", metadata: { table: "plain" } });
    expect(notEnabled.details).toContain("NEW_AND_OLD_IMAGES");

    const badOffset = await failure(latest(conduit, arrowSchema, "{"));
    expect(badOffset.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorInfo(badOffset).reason).toBe("STREAM_OFFSET_INVALID");

    const other = initial.replace("table/users/", "table/orders/");
    const otherTable = await failure(plan(conduit, arrowSchema, other, other));
    expect(errorInfo(otherTable)).toMatchObject({ reason: "STREAM_OFFSET_OTHER_TABLE", metadata: { table: "users", offsetTable: "orders" } });

    const negative = await failure(latest(conduit, arrowSchema, initial, { maxRecords: -1 }));
    expect(errorInfo(negative).reason).toBe("REQUEST_MALFORMED");

    const noSchema = await failure(unary(conduit, "InitialOffset", { format: "dynamodb", options }));
    expect(errorInfo(noSchema).reason).toBe("SCHEMA_MISSING");

    const inBatch = await failure(unary(conduit, "PlanRead", { format: "dynamodb", options, arrowSchema }));
    expect(errorInfo(inBatch).reason).toBe("STREAM_OPTION_IN_BATCH_READ");
  });

  it("answers UNIMPLEMENTED / STREAM_READ_UNSUPPORTED for a format without streaming reads", async () => {
    const { conduit } = await start();
    const arrowSchema = await describeSchema(conduit);
    const cassandraOptions = { host: "127.0.0.1", keyspace: "ks", table: "t" };
    for (const [method, request] of [
      ["InitialOffset", {}],
      ["LatestOffset", { startOffset: "{}" }],
      ["PlanStreamRead", { startOffset: "{}", endOffset: "{}" }],
    ] as const) {
      const error = await failure(unary(conduit, method, { format: "batchonly", options: cassandraOptions, arrowSchema, ...request }));
      expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(errorInfo(error)).toMatchObject({ reason: "STREAM_READ_UNSUPPORTED", metadata: { format: "batchonly" } });
      expect(error.details).toContain("Formats with streaming reads: dynamodb, pycassandra");
    }
  });

  it("routes pycassandra's streaming calls to its connector, whose option errors come before any connection", async () => {
    const { conduit } = await start();
    const arrowSchema = await describeSchema(conduit);
    const cassandraOptions = { host: "127.0.0.1", port: "1", keyspace: "ks", table: "t" };
    for (const [method, request] of [
      ["InitialOffset", {}],
      ["LatestOffset", { startOffset: "{}" }],
      ["PlanStreamRead", { startOffset: "{}", endOffset: "{}" }],
    ] as const) {
      const error = await failure(unary(conduit, method, { format: "pycassandra", options: cassandraOptions, arrowSchema, ...request }));
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(errorInfo(error)).toMatchObject({ reason: "STREAM_STARTING_POSITION_REQUIRED", metadata: { option: "starting_position", format: "pycassandra" } });
    }
    const badLimit = await failure(unary(conduit, "InitialOffset", { format: "pycassandra", options: { ...cassandraOptions, starting_position: "earliest", max_rows_per_trigger: "0" }, arrowSchema }));
    expect(errorInfo(badLimit)).toMatchObject({ reason: "OPTION_INVALID_VALUE", metadata: { option: "max_rows_per_trigger" } });
  });
});
