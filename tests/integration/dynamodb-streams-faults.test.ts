/**
 * DynamoDB Streams reads under injected faults: the real SDK talks to a real DynamoDB Local
 * through the fault relay (tests/support/fault-proxy), which answers chosen Streams calls the
 * way DynamoDB Streams does (ExpiredIteratorException, LimitExceededException, throttling,
 * TrimmedDataAccessException). Every run is compared with a clean run of the same calls: the
 * records must be exactly those of each range, in order, none twice, and every injected fault
 * must cost exactly one more request (so retries are bounded by the faults, not by luck).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BatchWriteItemCommand, CreateTableCommand, DeleteItemCommand, DeleteTableCommand, DynamoDBClient, UpdateItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { Field, Int64, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { decodeBatches, encodeBatch } from "../../src/arrow/ipc.js";
import { readValue, type PlainValue } from "../../src/arrow/values.js";
import type { Connector } from "../../src/core/connector.js";
import { createLogger, silentLogger, type Logger } from "../../src/core/logger.js";
import { createSdkApi, streamsApiOf, type DynamoDbApi, type StreamsApi } from "../../src/backends/dynamodb/client.js";
import { createDynamoDbConnector } from "../../src/backends/dynamodb/connector.js";
import { compareSequenceNumbers, parseStreamOffset, planPartitions, readPartition, type StreamContext } from "../../src/backends/dynamodb/stream.js";
import { changeEventSchema } from "../../src/backends/dynamodb/stream-schema.js";
import { httpFaults } from "../support/fault-proxy/http-faults.js";
import { startFaultRelay, type FaultRelay, type ProtocolFaults } from "../support/fault-proxy/relay.js";
import { rejection } from "../support/conduit-error.js";
import "../support/provided-context.js";

/** Faults and request counts belong to the calls under test, not to a background prefetch racing them. */
const NO_PREFETCH = { streamPrefetch: false };
const endpoint = new URL(inject("dynamodbEndpoint"));
const region = "us-east-1";
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const table = `it-stream-faults-${Date.now().toString(36)}`;
const SCHEMA = changeEventSchema(new Schema([new Field("pk", new Utf8(), false), new Field("v", new Int64(), true)]), ["pk"]);
/** 1,025 inserts, 50 updates, 25 deletes: more than one 1,000-record GetRecords page. */
const INSERTS = 1_025;
const UPDATES = 50;
const DELETES = 25;
const EVENTS = INSERTS + UPDATES + DELETES;

type Row = Record<string, PlainValue>;

let raw: DynamoDBClient;
let relay: FaultRelay;
let faults: ProtocolFaults;
/** Every record of the stream, read directly (no proxy) in one range. */
let reference: Row[];

const fresh = () => new AbortController().signal;
const options = (via: "direct" | "proxy", extra: Record<string, string> = {}) => ({
  table_name: table,
  aws_region: region,
  endpoint_url: via === "direct" ? endpoint.origin : `http://${relay.host}:${relay.port}`,
  aws_access_key_id: "local",
  aws_secret_access_key: "local",
  starting_position: "trim_horizon",
  ...extra,
});

function rowsOf(batch: RecordBatch): Row[] {
  const rows: Row[] = [];
  for (const decoded of decodeBatches(encodeBatch(batch), SCHEMA)) {
    const columns = SCHEMA.fields.map((f, i) => [f.name, decoded.getChildAt(i)!] as const);
    for (let r = 0; r < decoded.numRows; r++) rows.push(Object.fromEntries(columns.map(([name, vector]) => [name, readValue(vector, r)])));
  }
  return rows;
}

async function readRange(connector: Connector, opts: Record<string, string>, start: string, end: string): Promise<Row[]> {
  const partitions = await connector.stream!.planStreamRead({ options: opts, schema: SCHEMA, start, end, signal: fresh() });
  const rows: Row[] = [];
  for (const partition of partitions) for await (const batch of connector.read({ options: opts, schema: SCHEMA, partition, signal: fresh() })) rows.push(...rowsOf(batch));
  return rows;
}

const latest = (connector: Connector, opts: Record<string, string>, start: string, maxRecords?: number) =>
  connector.stream!.latestOffset({ options: opts, schema: SCHEMA, start, maxRecords, endBound: undefined, catchUp: false, signal: fresh() });

/**
 * A query's life over the whole stream, as Spark drives it: micro-batches of at most
 * `maxRecords`, each read by its task (warm cache) and replayed by a restarted service
 * (a new connector, cold cache), which must give the same rows.
 */
async function streamThrough(opts: Record<string, string>, maxRecords: number): Promise<{ rows: Row[]; batches: number[] }> {
  const driver = createDynamoDbConnector(silentLogger, NO_PREFETCH);
  const restarted = createDynamoDbConnector(silentLogger, NO_PREFETCH);
  try {
    let offset = await driver.stream!.initialOffset({ options: opts, schema: SCHEMA, signal: fresh() });
    const rows: Row[] = [];
    const batches: number[] = [];
    for (;;) {
      const next = await latest(driver, opts, offset, maxRecords);
      if (next === offset) break;
      const read = await readRange(driver, opts, offset, next);
      expect(await readRange(restarted, opts, offset, next)).toEqual(read);
      rows.push(...read);
      batches.push(read.length);
      offset = next;
      expect(batches.length).toBeLessThan(100);
    }
    return { rows, batches };
  } finally {
    await Promise.all([driver.close(), restarted.close()]);
  }
}

/** Request and fault counts of `run`, from the proxy's statistics. */
async function counted<T>(run: () => Promise<T>): Promise<{ result: T; delta: (key: string) => number }> {
  const before = faults.stats();
  const result = await run();
  const after = faults.stats();
  return { result, delta: (key) => (after[key] ?? 0) - (before[key] ?? 0) };
}

function expectExactly(rows: Row[]): void {
  expect(rows).toHaveLength(EVENTS);
  expect(rows).toEqual(reference);
  expect(new Set(rows.map((r) => r.sequence_number)).size).toBe(EVENTS);
}

beforeAll(async () => {
  raw = new DynamoDBClient({ region, endpoint: endpoint.origin, credentials });
  await raw.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  for (let i = 0; i < INSERTS; i += 25) {
    const requests: WriteRequest[] = Array.from({ length: 25 }, (_, j) => ({ PutRequest: { Item: { pk: { S: `k${i + j}` }, v: { N: String(i + j) } } } }));
    await raw.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
  }
  // A new value each time: DynamoDB writes no stream record for an update that changes nothing.
  for (let i = 0; i < UPDATES; i++) {
    await raw.send(new UpdateItemCommand({ TableName: table, Key: { pk: { S: `k${i}` } }, UpdateExpression: "SET v = :v", ExpressionAttributeValues: { ":v": { N: String(-1 - i) } } }));
  }
  for (let i = 100; i < 100 + DELETES; i++) await raw.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: `k${i}` } } }));

  faults = httpFaults();
  relay = await startFaultRelay({ target: { host: endpoint.hostname, port: Number(endpoint.port) }, faults, maxSeconds: 300 });

  const direct = createDynamoDbConnector(silentLogger, NO_PREFETCH);
  try {
    const opts = options("direct");
    const start = await direct.stream!.initialOffset({ options: opts, schema: SCHEMA, signal: fresh() });
    reference = await readRange(direct, opts, start, await latest(direct, opts, start));
  } finally {
    await direct.close();
  }
  // The reference itself: every change once, in write order.
  expect(reference).toHaveLength(EVENTS);
  expect(reference.slice(0, INSERTS).map((r) => `${String(r.event_name)} ${String((r.keys as Row).pk)}`)).toEqual(Array.from({ length: INSERTS }, (_, i) => `INSERT k${i}`));
  expect(reference.slice(INSERTS, INSERTS + UPDATES).every((r, i) => r.event_name === "MODIFY" && (r.new_image as Row).v === BigInt(-1 - i) && (r.old_image as Row).v === BigInt(i))).toBe(true);
  expect(reference.slice(INSERTS + UPDATES).every((r, i) => r.event_name === "REMOVE" && (r.keys as Row).pk === `k${100 + i}` && r.new_image === null)).toBe(true);
  expect([...reference].sort((a, b) => compareSequenceNumbers(a.sequence_number as string, b.sequence_number as string))).toEqual(reference);
}, 120_000);

afterAll(async () => {
  await relay?.close();
  await raw?.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
  raw?.destroy();
});

describe("DynamoDB Streams reads through the fault proxy", () => {
  let clean: { rows: Row[]; batches: number[]; delta: (key: string) => number };

  beforeAll(async () => {
    faults.configure({ faults: [] });
    const run = await counted(() => streamThrough(options("proxy"), 500));
    clean = { ...run.result, delta: run.delta };
  }, 120_000);

  it("passes a clean run through unchanged", () => {
    expectExactly(clean.rows);
    expect(clean.batches).toEqual([500, 500, 100]);
    // The second of two 1,000-record pages is needed by some reads.
    expect(clean.delta("requests_GetRecords")).toBeGreaterThan(clean.batches.length);
  });

  it("re-opens expired iterators after the last record read: the same records, one more GetShardIterator and GetRecords per expiry", async () => {
    faults.configure({ faults: [{ kind: "expired_iterator", every: 2, operation: "GetRecords" }] });
    const run = await counted(() => streamThrough(options("proxy"), 500));
    faults.configure({ faults: [] });
    expectExactly(run.result.rows);
    expect(run.result.batches).toEqual(clean.batches);
    const expired = run.delta("expired_iterator");
    expect(expired).toBeGreaterThanOrEqual(5);
    expect(run.delta("requests_GetRecords")).toBe(clean.delta("requests_GetRecords") + expired);
    expect(run.delta("requests_GetShardIterator")).toBe(clean.delta("requests_GetShardIterator") + expired);
  }, 120_000);

  it("backs off on LimitExceededException and throttling: the same records, one more request per fault", async () => {
    faults.configure({
      seed: 11,
      faults: [
        { kind: "limit_exceeded", probability: 0.5, operation: "GetRecords" },
        { kind: "throttling", every: 2, operation: "GetShardIterator" },
        { kind: "throttling", every: 3, operation: "DescribeTable" },
        { kind: "throttling", every: 2, operation: "DescribeStream" },
      ],
    });
    const started = Date.now();
    const run = await counted(() => streamThrough(options("proxy"), 500));
    const elapsed = Date.now() - started;
    faults.configure({ faults: [] });
    expectExactly(run.result.rows);
    expect(run.result.batches).toEqual(clean.batches);
    const limited = run.delta("limit_exceeded");
    const throttled = run.delta("throttling");
    expect(limited).toBeGreaterThanOrEqual(3);
    expect(throttled).toBeGreaterThanOrEqual(5);
    expect(run.delta("requests_GetRecords")).toBe(clean.delta("requests_GetRecords") + limited);
    const others = (delta: (key: string) => number) => delta("requests_GetShardIterator") + delta("requests_DescribeTable") + delta("requests_DescribeStream");
    expect(others(run.delta)).toBe(others(clean.delta) + throttled);
    console.log(`[fault report] streams throttling: ${limited} LimitExceededException, ${throttled} ThrottlingException, ${elapsed} ms for ${EVENTS} records`);
  }, 120_000);

  it("TrimmedDataAccessException on a checkpoint's position is STREAM_DATA_LOSS, or a warning and the query goes on with fail_on_data_loss=false", async () => {
    const driver = createDynamoDbConnector(silentLogger, NO_PREFETCH);
    const { logger, warnings } = warningLogger();
    const lenientDriver = createDynamoDbConnector(logger, NO_PREFETCH);
    try {
      const strict = options("proxy");
      const lenient = options("proxy", { fail_on_data_loss: "false" });
      faults.configure({ faults: [] });
      const first = await latest(driver, strict, await driver.stream!.initialOffset({ options: strict, schema: SCHEMA, signal: fresh() }), 300);
      const trimmedOnce = { faults: [{ kind: "trimmed_data_access", every: 1, max: 1, operation: "GetShardIterator", bodyContains: "AFTER_SEQUENCE_NUMBER" }] };

      faults.configure(trimmedOnce);
      const refused = await rejection(latest(driver, strict, first));
      expect(faults.stats().trimmed_data_access).toBe(1);
      expect(refused.errorClass).toBe("STREAM_DATA_LOSS");
      expect(refused.message).toContain("trimmed");
      expect(refused.message).toContain("fail_on_data_loss");
      expect(refused.parameters.sequenceNumber).toBe(Object.values(parseStreamOffset(first).shards)[0]!.sequenceNumber);

      faults.configure(trimmedOnce);
      const end = await latest(lenientDriver, lenient, first);
      expect(faults.stats().trimmed_data_access).toBe(2);
      expect(warnings.filter((w) => w.includes("trimmed"))).toHaveLength(1);
      // Local still has the records the fault called trimmed, so the query reaches the end of the stream.
      expect(Object.values(parseStreamOffset(end).shards)[0]!.sequenceNumber).toBe(reference.at(-1)!.sequence_number);
      faults.configure({ faults: [] });
      // Read by a restarted service: the driver's read-ahead cache holds what the fallback to
      // TRIM_HORIZON read, which on real DynamoDB starts after the trimmed records but on Local
      // (nothing really trimmed) starts at the first record.
      const reader = createDynamoDbConnector(silentLogger, NO_PREFETCH);
      try {
        expect(await readRange(reader, lenient, first, end)).toEqual(reference.slice(300));
      } finally {
        await reader.close();
      }

      // A task whose records are trimmed fails the same way rather than returning fewer rows.
      faults.configure(trimmedOnce);
      const restarted = createDynamoDbConnector(silentLogger, NO_PREFETCH);
      try {
        expect((await rejection(readRange(restarted, strict, first, end))).errorClass).toBe("STREAM_DATA_LOSS");
      } finally {
        await restarted.close();
      }
    } finally {
      faults.configure({ faults: [] });
      await Promise.all([driver.close(), lenientDriver.close()]);
    }
  }, 120_000);
});

describe("DynamoDB Streams retries are bounded", () => {
  /** The Streams calls over an SDK client without its own retries, so the core's loop is seen alone. */
  function rawStreamsApi(maxAttempts: number): StreamsApi {
    return streamsApiOf(new DynamoDBStreamsClient({ region, endpoint: `http://${relay.host}:${relay.port}`, credentials, maxAttempts }));
  }

  let dynamodb: DynamoDbApi;
  let streams: StreamsApi;
  beforeAll(() => {
    dynamodb = createSdkApi({ region, endpoint: endpoint.origin, credentials, maxSockets: 4 });
    streams = rawStreamsApi(1);
  });
  afterAll(() => {
    dynamodb.destroy();
    streams.destroy();
  });

  const context = (signal: AbortSignal, maxRetryMillis: number): StreamContext => ({
    dynamodb,
    streams,
    table,
    region,
    endpoint: endpoint.origin,
    failOnDataLoss: true,
    signal,
    logger: silentLogger,
    maxRetryMillis,
  });

  async function firstPartition() {
    const end = parseStreamOffset(await wholeStreamOffset());
    return planPartitions({ streamArn: end.streamArn, shards: {} }, end)[0]!;
  }

  it("gives up on constant LimitExceededException at max retry time with DYNAMODB_THROTTLED", async () => {
    const partition = await firstPartition();
    faults.configure({ faults: [{ kind: "limit_exceeded", every: 1, operation: "GetRecords" }] });
    try {
      const started = Date.now();
      const run = await counted(() => rejection(collect(readPartition(context(fresh(), 2_000), partition))));
      const elapsed = Date.now() - started;
      expect(run.result.errorClass).toBe("DYNAMODB_THROTTLED");
      expect(run.result.code).toBe("RESOURCE_EXHAUSTED");
      expect(run.result.message).toContain("GetRecords");
      // Retried with backoff, and stopped: 2 s of retries plus at most one capped 5 s backoff.
      expect(run.delta("limit_exceeded")).toBeGreaterThanOrEqual(3);
      expect(run.delta("requests_GetRecords")).toBe(run.delta("limit_exceeded"));
      expect(elapsed).toBeGreaterThanOrEqual(2_000);
      expect(elapsed).toBeLessThan(2_000 + 5_000 + 3_000);
    } finally {
      faults.configure({ faults: [] });
    }
  }, 60_000);

  it("does not re-open iterators forever when every GetRecords says the iterator expired (STREAM_ITERATOR_EXPIRED after 5 in a row)", async () => {
    const partition = await firstPartition();
    faults.configure({ faults: [{ kind: "expired_iterator", every: 1, operation: "GetRecords" }] });
    const abort = new AbortController();
    const guard = setTimeout(() => abort.abort(new Error("test guard: still re-opening after 20 s")), 20_000);
    try {
      const started = Date.now();
      const run = await counted(() => rejection(collect(readPartition(context(abort.signal, 2_000), partition))));
      expect(abort.signal.aborted).toBe(false);
      expect(run.result.errorClass).toBe("STREAM_ITERATOR_EXPIRED");
      expect(run.result.message).toContain(partition.shardId);
      expect(run.result.message).toContain("clock");
      // One open and four re-opens, each answered "expired" once.
      expect(run.delta("requests_GetShardIterator")).toBe(5);
      expect(run.delta("requests_GetRecords")).toBe(5);
      expect(run.delta("expired_iterator")).toBe(5);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      clearTimeout(guard);
      faults.configure({ faults: [] });
    }
  }, 60_000);
});

/** The offset after the whole stream, planned directly (no proxy). */
async function wholeStreamOffset(): Promise<string> {
  const direct = createDynamoDbConnector(silentLogger, NO_PREFETCH);
  try {
    const opts = options("direct");
    return await latest(direct, opts, await direct.stream!.initialOffset({ options: opts, schema: SCHEMA, signal: fresh() }));
  } finally {
    await direct.close();
  }
}

function warningLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: createLogger("warn", {}, (line) => warnings.push(line)), warnings };
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
