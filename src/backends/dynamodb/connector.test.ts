import { describe, expect, it } from "vitest";
import { Field, Int64, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { createLogger } from "../../core/logger.js";
import { readValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { clientKey, type ClientConfig } from "./client.js";
import { createDynamoDbConnector } from "./connector.js";
import { FakeDynamoDb } from "./test-fakes.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";

const options = {
  table_name: "users",
  aws_region: "us-east-1",
  endpoint_url: "http://127.0.0.1:8000",
  aws_access_key_id: "AKIDEXAMPLE",
  aws_secret_access_key: "very-secret-value",
};

function setup() {
  const lines: string[] = [];
  const fakes: FakeDynamoDb[] = [];
  const configs: ClientConfig[] = [];
  const connector = createDynamoDbConnector(createLogger("debug", {}, (line) => lines.push(line)), {
    createApi: (config) => {
      configs.push(config);
      const api = new FakeDynamoDb();
      api.addTable("users", { name: "id", type: "S" });
      fakes.push(api);
      return api;
    },
    clock: new FakeClock(),
  });
  return { connector, lines, fakes, configs, signal: new AbortController().signal };
}

async function* one(batch: RecordBatch): AsyncGenerator<RecordBatch> {
  yield batch;
}

describe("createDynamoDbConnector", () => {
  it("writes, reads back and reports through the Connector contract", async () => {
    const { connector, lines, fakes, signal } = setup();
    expect(connector.format).toBe("dynamodb");
    const schema = new Schema([new Field("id", new Utf8()), new Field("n", new Int64())]);
    const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal });
    const builder = new BatchBuilder(schema);
    builder.appendRow(["a", 1n]);
    builder.appendRow(["b", 2n]);
    const result = await connector.write({ options, schema, writePlan, task: { partitionId: 0, taskAttemptId: 1, batchId: 0 }, batches: one(builder.flush()), signal });
    expect(result).toEqual({ rowsWritten: 2, rowsDeleted: 0, requests: 1, retries: 0 });
    await connector.commitWrite({ options, writePlan, taskResults: [result, result], batchId: 0, signal });
    expect(lines.some((l) => l.includes("DynamoDB write committed") && l.includes('"rowsWritten":4'))).toBe(true);

    const described = await connector.describe({ options, userSchema: undefined, signal });
    expect(described.schema.fields.map((f) => f.name)).toEqual(["id", "n"]);
    const partitions = await connector.planRead({ options: { ...options, total_segments: "2" }, schema: described.schema, signal });
    expect(partitions).toHaveLength(2);
    const ids: string[] = [];
    for (const partition of partitions) {
      for await (const batch of connector.read({ options, schema: described.schema, partition, signal })) {
        for (let i = 0; i < batch.numRows; i++) ids.push(readValue(batch.getChild("id")!, i) as string);
      }
    }
    expect(ids.sort()).toEqual(["a", "b"]);
    // One client for all of that: the pool is keyed by region, endpoint and credentials.
    expect(fakes).toHaveLength(1);
    await connector.close();
    expect(fakes[0]!.destroyed).toBe(true);
    expect(lines.join("\n")).not.toContain("very-secret-value");
  });

  it("pools clients per region, endpoint and credentials, hashing the secrets", async () => {
    const { connector, fakes, configs, signal } = setup();
    await connector.planRead({ options, schema: new Schema([]), signal });
    await connector.planRead({ options: { ...options, aws_secret_access_key: "other" }, schema: new Schema([]), signal });
    await connector.planRead({ options: { ...options, endpoint_url: "http://127.0.0.1:9000" }, schema: new Schema([]), signal });
    await connector.planRead({ options, schema: new Schema([]), signal });
    expect(fakes).toHaveLength(3);
    expect(configs[0]!.credentials).toEqual({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "very-secret-value" });
    expect(configs[0]!.maxSockets).toBeGreaterThanOrEqual(16);
    expect(clientKey(configs[0]!)).not.toContain("very-secret-value");
    await connector.close();
    expect(fakes.every((f) => f.destroyed)).toBe(true);
  });

  it("sizes the socket pool for write_concurrency", async () => {
    const { connector, configs, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    await connector.planWrite({ options: { ...options, write_concurrency: "200" }, schema, overwrite: false, streaming: false, signal });
    expect(configs[0]!.maxSockets).toBe(200);
  });

  it("says honestly what an aborted write leaves behind", async () => {
    const { connector, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal });
    const detail = await connector.abortWrite({
      options,
      writePlan,
      taskResults: [{ rowsWritten: 10, rowsDeleted: 1, requests: 1, retries: 0 }],
      batchId: 0,
      signal,
    });
    expect(detail).toContain("no transaction");
    expect(detail).toContain("wrote 10 and deleted 1");
    expect(detail).toContain("stay");
    expect(detail).not.toContain("TRUNCATED");
  });

  it("says plainly that an aborted overwrite had already truncated the table", async () => {
    const { connector, fakes, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    await connector.describe({ options, userSchema: schema, signal });
    for (let i = 0; i < 7; i++) fakes[0]!.put("users", { id: { S: `old${i}` } });
    const writePlan = await connector.planWrite({ options: { ...options, confirm_truncate: "true" }, schema, overwrite: true, streaming: false, signal });
    expect(fakes[0]!.tables.get("users")!.items.size).toBe(0);
    const detail = await connector.abortWrite({
      options,
      writePlan,
      taskResults: [{ rowsWritten: 3, rowsDeleted: 0, requests: 1, retries: 0 }],
      batchId: 0,
      signal,
    });
    expect(detail).toContain(`Table 'users' was TRUNCATED for mode("overwrite") at `);
    expect(detail).toContain("(7 items deleted) before this write failed");
    expect(detail).toContain("previous contents are gone");
    expect(detail).toContain("holds only what this write's tasks wrote");
    expect(detail).toContain("wrote 3 and deleted 0");
    expect(detail).not.toContain("converges");
  });
});
