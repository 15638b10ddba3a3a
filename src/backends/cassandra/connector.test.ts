import { describe, expect, it } from "vitest";
import { Field, Int32, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { createLogger } from "../../core/logger.js";
import { readValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { clientKey, type ClientConfig } from "./client.js";
import { createCassandraConnector } from "./connector.js";
import { FakeCassandra } from "./test-fakes.js";
import { scalar } from "./types.js";

const options = { host: "127.0.0.1", port: "9042", keyspace: "ks", table: "users", username: "alice", password: "very-secret-value" };

function setup() {
  const lines: string[] = [];
  const fakes: FakeCassandra[] = [];
  const configs: ClientConfig[] = [];
  const connector = createCassandraConnector(createLogger("debug", {}, (line) => lines.push(line)), {
    createApi: (config) => {
      configs.push(config);
      const api = new FakeCassandra();
      api.addTable(
        "ks",
        "users",
        [
          ["id", scalar("text")],
          ["n", scalar("int")],
        ],
        ["id"],
      );
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

describe("createCassandraConnector", () => {
  it("writes, reads back and reports through the Connector contract", async () => {
    const { connector, lines, fakes, signal } = setup();
    expect(connector.format).toBe("pycassandra");
    const schema = new Schema([new Field("id", new Utf8()), new Field("n", new Int32())]);
    const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal });
    const builder = new BatchBuilder(schema);
    for (let i = 0; i < 50; i++) builder.appendRow([`k${i}`, i]);
    const result = await connector.write({ options, schema, writePlan, task: { partitionId: 0, taskAttemptId: 1, batchId: 0 }, batches: one(builder.flush()), signal });
    expect(result).toEqual({ rowsWritten: 50, rowsDeleted: 0, requests: 50, retries: 0 });
    await connector.commitWrite({ options, writePlan, taskResults: [result, result], batchId: 0, signal });
    expect(lines.some((l) => l.includes("Cassandra write committed") && l.includes('"rowsWritten":100'))).toBe(true);

    const described = await connector.describe({ options, userSchema: undefined, signal });
    expect(described.schema.fields.map((f) => f.name)).toEqual(["id", "n"]);
    const partitions = await connector.planRead({ options: { ...options, read_partitions: "4" }, schema: described.schema, signal });
    expect(partitions).toHaveLength(4);
    const ids: string[] = [];
    for (const partition of partitions) {
      for await (const batch of connector.read({ options: { ...options, read_page_size: "7" }, schema: described.schema, partition, signal })) {
        for (let i = 0; i < batch.numRows; i++) ids.push(readValue(batch.getChild("id")!, i) as string);
      }
    }
    expect(ids.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`).sort());
    // One client for all of that: the pool is keyed by hosts, port, credentials and TLS.
    expect(fakes).toHaveLength(1);
    await connector.close();
    expect(fakes[0]!.shutdownCalls).toBe(1);
    expect(lines.join("\n")).not.toContain("very-secret-value");
  });

  it("pools clients per contact points, credentials and TLS, hashing the password", async () => {
    const { connector, fakes, configs, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    await connector.describe({ options, userSchema: schema, signal });
    await connector.describe({ options: { ...options, password: "other" }, userSchema: schema, signal });
    await connector.describe({ options: { ...options, host: "127.0.0.1:9043" }, userSchema: schema, signal });
    await connector.describe({ options: { ...options, ssl_enabled: "true" }, userSchema: schema, signal });
    await connector.describe({ options: { ...options, host: " 127.0.0.1 " }, userSchema: schema, signal });
    expect(fakes).toHaveLength(4);
    expect(configs[0]!.credentials).toEqual({ username: "alice", password: "very-secret-value" });
    expect(clientKey(configs[0]!)).not.toContain("very-secret-value");
    await connector.close();
    expect(fakes.every((f) => f.shutdownCalls === 1)).toBe(true);
  });

  it("sizes connections per host for the write concurrency", async () => {
    const { connector, configs, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal });
    await connector.planWrite({ options: { ...options, concurrency: "2000" }, schema, overwrite: false, streaming: false, signal });
    expect(configs.map((c) => c.connectionsPerHost)).toEqual([1, 4]);
  });

  it("reports an unreadable CA file naming the option and path", async () => {
    const { connector, signal } = setup();
    const error = await rejection(connector.describe({ options: { ...options, ssl_enabled: "true", ssl_ca_cert: "/nonexistent/ca.pem" }, userSchema: undefined, signal }));
    expect(error.errorClass).toBe("SSL_CA_CERT_UNREADABLE");
    expect(error.parameters).toMatchObject({ option: "ssl_ca_cert", path: "/nonexistent/ca.pem" });
  });

  it("says honestly what an aborted write leaves behind", async () => {
    const { connector, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal });
    const detail = await connector.abortWrite({ options, writePlan, taskResults: [{ rowsWritten: 10, rowsDeleted: 1, requests: 11, retries: 0 }], batchId: 0, signal });
    expect(detail).toContain("no transaction");
    expect(detail).toContain("wrote 10 and deleted 1");
    expect(detail).toContain("stay");
    expect(detail).not.toContain("TRUNCATED");
  });

  it("records a TRUNCATE in the plan and says plainly after an aborted overwrite that the old rows are gone", async () => {
    const { connector, fakes, signal } = setup();
    const schema = new Schema([new Field("id", new Utf8())]);
    const writePlan = await connector.planWrite({ options: { ...options, confirm_truncate: "true" }, schema, overwrite: true, streaming: false, signal });
    expect(fakes[0]!.executes.some((e) => e.query.startsWith("TRUNCATE"))).toBe(true);
    const plan = JSON.parse(new TextDecoder().decode(writePlan)) as { overwrite?: { truncatedAt: string } };
    expect(Number.isNaN(Date.parse(plan.overwrite!.truncatedAt))).toBe(false);
    const detail = await connector.abortWrite({ options, writePlan, taskResults: [{ rowsWritten: 4, rowsDeleted: 0, requests: 4, retries: 0 }], batchId: 0, signal });
    expect(detail).toContain(`Table ks.users was TRUNCATED for mode("overwrite") at ${plan.overwrite!.truncatedAt} before this write failed`);
    expect(detail).toContain("previous rows are gone");
    expect(detail).toContain("wrote 4 and deleted 0");
    expect(detail).not.toContain("converges");
  });
});
