/**
 * The HTTP fault plug-in between the real AWS SDK and a real DynamoDB Local: each fault must
 * reach the SDK as the error (or answer) DynamoDB itself would give, so the higher-level fault
 * tests (tests/e2e/test_faults_dynamodb.py) really exercise the retry paths they claim to.
 * The SDK's own retries are off here (maxAttempts 1) so each fault is seen raw.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  ScanCommand,
  waitUntilTableExists,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { isThrottlingError, isTransientError } from "@smithy/core/retry";
import type { SdkError } from "@smithy/types";
import { Field, Int64, Schema, Utf8 } from "apache-arrow";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import { createDynamoDbConnector } from "../../src/backends/dynamodb/connector.js";
import { silentLogger } from "../../src/core/logger.js";
import { httpFaults } from "../support/fault-proxy/http-faults.js";
import { startFaultRelay, type FaultRelay, type ProtocolFaults } from "../support/fault-proxy/relay.js";
import "../support/provided-context.js";

const endpoint = new URL(inject("dynamodbEndpoint"));
const region = "us-east-1";
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const table = `fp-http-${Date.now().toString(36)}`;

let direct: DynamoDBClient;
let relay: FaultRelay;
let faults: ProtocolFaults;
let proxied: DynamoDBClient;

beforeAll(async () => {
  direct = new DynamoDBClient({ region, endpoint: endpoint.origin, credentials });
  await direct.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    }),
  );
  await waitUntilTableExists({ client: direct, maxWaitTime: 30 }, { TableName: table });
  faults = httpFaults();
  relay = await startFaultRelay({ target: { host: endpoint.hostname, port: Number(endpoint.port) }, faults, maxSeconds: 300 });
  proxied = new DynamoDBClient({ region, endpoint: `http://${relay.host}:${relay.port}`, credentials, maxAttempts: 1 });
});

afterAll(async () => {
  proxied?.destroy();
  await relay?.close();
  await direct?.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
  direct?.destroy();
});

const puts = (prefix: string, n: number): WriteRequest[] =>
  Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: { id: { S: `${prefix}-${i}` }, v: { N: String(i) } } } }));

async function storedIds(prefix: string): Promise<string[]> {
  const ids: string[] = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await direct.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) if (item.id?.S?.startsWith(`${prefix}-`)) ids.push(item.id.S);
    start = page.LastEvaluatedKey as typeof start;
  } while (start);
  return ids.sort();
}

function write(requests: WriteRequest[]) {
  return proxied.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
}

describe("DynamoDB HTTP faults through the relay", () => {
  it("passes requests through unchanged without a plan", async () => {
    faults.configure({ faults: [] });
    const out = await write(puts("clean", 25));
    expect(out.UnprocessedItems ?? {}).toEqual({});
    expect(await storedIds("clean")).toHaveLength(25);
  });

  it.each([
    ["provisioned_throughput_exceeded", "ProvisionedThroughputExceededException", 400, true],
    ["throttling", "ThrottlingException", 400, true],
    ["internal_server_error", "InternalServerError", 500, false],
    ["service_unavailable", "ServiceUnavailable", 503, false],
  ] as const)("%s answers as DynamoDB does and forwards nothing", async (kind, name, status, throttling) => {
    faults.configure({ faults: [{ kind, every: 1, operation: "BatchWriteItem" }] });
    const before = faults.stats()[kind] ?? 0;
    const error = (await write(puts(kind, 5)).catch((e: unknown) => e)) as SdkError & { $metadata: { httpStatusCode: number } };
    expect(error.name).toBe(name);
    expect(error.$metadata.httpStatusCode).toBe(status);
    // The SDK classifies it as retryable: throttling for the first two, transient for 5xx.
    expect(throttling ? isThrottlingError(error) : isTransientError(error)).toBe(true);
    expect(faults.stats()[kind]).toBe(before + 1);
    expect(await storedIds(kind)).toEqual([]);
  });

  it("unprocessed_items withholds items, which are NOT written and come back as UnprocessedItems", async () => {
    faults.configure({ seed: 3, faults: [{ kind: "unprocessed_items", every: 1, fraction: 0.6 }] });
    const before = faults.stats().unprocessed_items_withheld ?? 0;
    const out = await write(puts("unproc", 25));
    const returned = (out.UnprocessedItems?.[table] ?? []).map((r) => r.PutRequest!.Item!.id!.S!).sort();
    const withheld = (faults.stats().unprocessed_items_withheld ?? 0) - before;
    expect(withheld).toBeGreaterThan(0);
    expect(returned).toHaveLength(withheld);
    const stored = await storedIds("unproc");
    expect(stored).toHaveLength(25 - withheld);
    // Stored and returned are exactly the 25 sent, with nothing in both.
    expect([...stored, ...returned].sort()).toEqual(puts("unproc", 25).map((r) => r.PutRequest!.Item!.id!.S!).sort());
  });

  it("reset_mid_response applies the write but the client sees a transient connection error", async () => {
    faults.configure({ faults: [{ kind: "reset_mid_response", every: 1, operation: "BatchWriteItem" }] });
    const before = faults.stats().reset_mid_response ?? 0;
    const error = await write(puts("reset", 10)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(isTransientError(error as SdkError)).toBe(true);
    expect(faults.stats().reset_mid_response).toBe(before + 1);
    expect(await storedIds("reset")).toHaveLength(10);
  });

  it("slow_response holds the answer back", async () => {
    faults.configure({ faults: [{ kind: "slow_response", every: 1, delayMs: 400 }] });
    const started = Date.now();
    await write(puts("slow", 3));
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(await storedIds("slow")).toHaveLength(3);
  });

  it("max caps a fault and the plan is validated", async () => {
    faults.configure({ faults: [{ kind: "throttling", every: 1, max: 1 }] });
    await expect(write(puts("max", 2))).rejects.toThrow(/injected/);
    await expect(write(puts("max", 2))).resolves.toBeDefined();
    expect(() => faults.configure({ faults: [{ kind: "meteor_strike", every: 1 }] })).toThrow(/unknown fault kind "meteor_strike"/);
    expect(() => faults.configure({ faults: [{ kind: "throttling" }] })).toThrow(/probability and\/or every/);
    expect(() => faults.configure({ faults: [{ kind: "throttling", probability: 2 }] })).toThrow(/out of range/);
  });
});

describe("the DynamoDB connector's counts under faults", () => {
  it("counts each row once although resets made the SDK resend applied writes", async () => {
    // Spark's commit summary (rows written) comes from these counts: a request that was
    // applied, reset, and retried must not count its rows twice, and a withheld item must
    // not count until it is written.
    faults.configure({
      seed: 9,
      faults: [
        { kind: "reset_mid_response", probability: 0.15, operation: "BatchWriteItem" },
        { kind: "unprocessed_items", probability: 0.2 },
        { kind: "throttling", probability: 0.1 },
      ],
    });
    const before = faults.stats();
    const connector = createDynamoDbConnector(silentLogger);
    const rows = 2_000;
    const options = {
      table_name: table,
      aws_region: region,
      endpoint_url: `http://${relay.host}:${relay.port}`,
      aws_access_key_id: "local",
      aws_secret_access_key: "local",
    };
    const schema = new Schema([new Field("id", new Utf8()), new Field("v", new Int64())]);
    const signal = () => new AbortController().signal;
    try {
      const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal: signal() });
      const results = await Promise.all(
        [0, 1].map((partitionId) => {
          const builder = new BatchBuilder(schema);
          for (let i = partitionId; i < rows; i += 2) builder.appendRow([`counted-${i}`, BigInt(i)]);
          const batch = builder.flush();
          return connector.write({
            options,
            schema,
            writePlan,
            task: { partitionId, taskAttemptId: partitionId, batchId: 0 },
            batches: (async function* () {
              yield batch;
            })(),
            signal: signal(),
          });
        }),
      );
      const after = faults.stats();
      for (const kind of ["reset_mid_response", "unprocessed_items", "throttling"]) {
        expect((after[kind] ?? 0) - (before[kind] ?? 0), kind).toBeGreaterThan(0);
      }
      expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(rows);
      expect(await storedIds("counted")).toHaveLength(rows);
    } finally {
      faults.configure({ faults: [] });
      await connector.close();
    }
  });
});
