import { describe, expect, it } from "vitest";
import { Bool, Field, Float64, Int64, Interval, IntervalUnit, List, Schema, Utf8 } from "apache-arrow";
import { decodeDescriptor } from "../../core/descriptor.js";
import { silentLogger } from "../../core/logger.js";
import { parseDynamoDbOptions } from "./options.js";
import { decodeReadPartition, decodeWritePlan, describeSource, planReadPartitions, planWriteTarget, type PlanContext, type WritePlan } from "./planner.js";
import { FakeDynamoDb } from "./test-fakes.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { rejection } from "../../../tests/support/conduit-error.js";

const base = { table_name: "users", aws_region: "us-east-1", endpoint_url: "http://127.0.0.1:8000" };
const dfSchema = new Schema([new Field("id", new Utf8()), new Field("name", new Utf8()), new Field("age", new Int64()), new Field("is_deleted", new Bool())]);

function setup() {
  const api = new FakeDynamoDb();
  const clock = new FakeClock();
  const ctx: PlanContext = { api, config: { region: "us-east-1", endpoint: "http://127.0.0.1:8000" }, clock, logger: silentLogger, signal: new AbortController().signal };
  return { api, clock, ctx };
}

const write = (ctx: PlanContext, options: Record<string, string>, schema = dfSchema, overwrite = false, streaming = false) =>
  planWriteTarget(ctx, parseDynamoDbOptions({ ...base, ...options }, "write"), schema, overwrite, streaming);

describe("describeSource", () => {
  it("infers the schema from schema_sample_size items and keeps the key columns", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" }, { name: "ts", type: "N" });
    for (let i = 0; i < 30; i++) api.put("users", { id: { S: `u${i}` }, ts: { N: String(i) }, ...(i === 29 ? { late: { S: "x" } } : { score: { N: "1.5" } }) });
    api.defaultPageSize = 4;
    const result = await describeSource(ctx, parseDynamoDbOptions({ ...base, schema_sample_size: "10" }, "read"), undefined);
    expect(result.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(["id:Utf8", "score:Float64", "ts:Int64"]);
    expect(result.warnings).toEqual([]);
    // Pages of at most the remaining sample size, stopping at 10 items.
    expect(api.scans.map((s) => s.Limit)).toEqual([10, 6, 2]);
  });

  it("warns when the table is empty", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "N" });
    const result = await describeSource(ctx, parseDynamoDbOptions(base, "read"), undefined);
    expect(result.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(["id:Int64"]);
    expect(result.warnings[0]).toContain("is empty");
  });

  it("returns a user schema unchanged after checking the table and the types", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    const user = new Schema([new Field("name", new Utf8())]);
    expect((await describeSource(ctx, parseDynamoDbOptions(base, "read"), user)).schema).toBe(user);
    expect(api.scans).toHaveLength(0);
    const bad = new Schema([new Field("span", new Interval(IntervalUnit.DAY_TIME))]);
    expect((await rejection(describeSource(ctx, parseDynamoDbOptions(base, "read"), bad))).errorClass).toBe("UNSUPPORTED_COLUMN_TYPE");
  });

  it("fails with TABLE_NOT_FOUND naming table and endpoint", async () => {
    const { ctx } = setup();
    const error = await rejection(describeSource(ctx, parseDynamoDbOptions(base, "read"), undefined));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.errorClass).toBe("TABLE_NOT_FOUND");
    expect(error.message).toContain("'users'");
    expect(error.message).toContain("http://127.0.0.1:8000");
  });
});

describe("planReadPartitions", () => {
  it("returns one descriptor per segment", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    const partitions = await planReadPartitions(ctx, parseDynamoDbOptions({ ...base, total_segments: "3" }, "read"), dfSchema);
    expect(partitions.map(decodeReadPartition)).toEqual([
      { segment: 0, totalSegments: 3 },
      { segment: 1, totalSegments: 3 },
      { segment: 2, totalSegments: 3 },
    ]);
    expect(decodeDescriptor("dynamodb-scan", partitions[1]!)).toEqual({ kind: "dynamodb-scan", v: 1, segment: 1, totalSegments: 3 });
  });

  it("rejects a missing table and a corrupt descriptor", async () => {
    const { ctx } = setup();
    expect((await rejection(planReadPartitions(ctx, parseDynamoDbOptions(base, "read"), dfSchema))).errorClass).toBe("TABLE_NOT_FOUND");
    const bad = new TextEncoder().encode(JSON.stringify({ kind: "dynamodb-scan", v: 1, segment: 4, totalSegments: 4 }));
    expect(() => decodeReadPartition(bad)).toThrow(/not a valid segment/);
  });
});

describe("planWriteTarget", () => {
  it("returns the write plan with keys and delete flag", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    const plan = decodeWritePlan(await write(ctx, { delete_flag_column: "is_deleted", delete_flag_value: "true" }));
    expect(plan).toMatchObject({ table: "users", hashKey: { name: "id", type: "S" }, deleteFlag: { column: "is_deleted", value: "true" } } satisfies WritePlan);
    expect(plan.rangeKey).toBeUndefined();
  });

  it("names the missing key column, the table and the columns present", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "user_id", type: "S" });
    const error = await rejection(write(ctx, {}));
    expect(error.errorClass).toBe("KEY_COLUMN_MISSING");
    expect(error.message).toContain("'user_id'");
    expect(error.message).toContain("'users'");
    expect(error.message).toContain("id, name, age, is_deleted");
    expect(error.parameters).toMatchObject({ column: "user_id", table: "users" });
  });

  it("suggests a column differing only in case", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "ID", type: "S" });
    expect((await rejection(write(ctx, {}))).message).toContain("Did you mean 'id'?");
  });

  it("rejects a key column of an incompatible type", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "N" });
    const error = await rejection(write(ctx, {}));
    expect(error.errorClass).toBe("KEY_COLUMN_TYPE_MISMATCH");
    expect(error.message).toContain("Column 'id' is string");
    expect(error.message).toContain("N (number)");
  });

  it("requires the delete flag column and keeps it off the keys", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    const missing = await rejection(write(ctx, { delete_flag_column: "deleted", delete_flag_value: "true" }));
    expect(missing.errorClass).toBe("DELETE_FLAG_COLUMN_MISSING");
    expect(missing.message).toContain("'deleted'");
    expect((await rejection(write(ctx, { delete_flag_column: "id", delete_flag_value: "x" }))).errorClass).toBe("DELETE_FLAG_COLUMN_IS_KEY");
  });

  it("rejects columns DynamoDB cannot store before touching the table", async () => {
    const { ctx } = setup();
    const schema = new Schema([new Field("id", new Utf8()), new Field("span", new Interval(IntervalUnit.DAY_TIME))]);
    expect((await rejection(write(ctx, {}, schema))).errorClass).toBe("UNSUPPORTED_COLUMN_TYPE");
  });

  it("fails on a missing table unless create_table is set", async () => {
    const { ctx } = setup();
    const error = await rejection(write(ctx, {}));
    expect(error.errorClass).toBe("TABLE_NOT_FOUND");
    expect(error.message).toContain("create_table");
  });

  it("creates a missing table from the DataFrame's key types and waits until ACTIVE", async () => {
    const { api, clock, ctx } = setup();
    const plan = decodeWritePlan(await write(ctx, { create_table: "true", hash_key: "id", range_key: "age" }));
    expect(plan).toMatchObject({ hashKey: { name: "id", type: "S" }, rangeKey: { name: "age", type: "N" } });
    expect(api.created[0]).toEqual({
      TableName: "users",
      AttributeDefinitions: [
        { AttributeName: "id", AttributeType: "S" },
        { AttributeName: "age", AttributeType: "N" },
      ],
      KeySchema: [
        { AttributeName: "id", KeyType: "HASH" },
        { AttributeName: "age", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    });
    // The fake reports CREATING twice before ACTIVE.
    expect(clock.sleeps).toEqual([500, 500]);
  });

  it("creates a PROVISIONED table with its capacities", async () => {
    const { api, ctx } = setup();
    await write(ctx, { create_table: "true", hash_key: "id", billing_mode: "PROVISIONED", read_capacity_units: "3", write_capacity_units: "7" });
    expect(api.created[0]).toMatchObject({ BillingMode: "PROVISIONED", ProvisionedThroughput: { ReadCapacityUnits: 3, WriteCapacityUnits: 7 } });
  });

  it("rejects a hash_key column that cannot be a key", async () => {
    const { ctx } = setup();
    const error = await rejection(write(ctx, { create_table: "true", hash_key: "is_deleted" }));
    expect(error.errorClass).toBe("KEY_COLUMN_TYPE_MISMATCH");
    expect((await rejection(write(ctx, { create_table: "true", hash_key: "nope" }))).errorClass).toBe("KEY_COLUMN_MISSING");
  });

  it("rejects hash_key or range_key that differ from an existing table's keys", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    expect((await rejection(write(ctx, { hash_key: "name" }))).errorClass).toBe("KEY_SCHEMA_MISMATCH");
    const range = await rejection(write(ctx, { hash_key: "id", range_key: "age" }));
    expect(range.message).toContain("without a range key");
  });

  it("refuses overwrite without confirm_truncate, explaining how to confirm", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    api.put("users", { id: { S: "keep" } });
    const error = await rejection(write(ctx, {}, dfSchema, true));
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.errorClass).toBe("OVERWRITE_NOT_CONFIRMED");
    expect(error.message).toContain('mode("overwrite")');
    expect(error.message).toContain("confirm_truncate");
    expect(error.message).toContain('mode("append")');
    expect(api.tables.get("users")!.items.size).toBe(1);
  });

  it("deletes every item on a confirmed overwrite", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" }, { name: "n", type: "N" });
    for (let i = 0; i < 260; i++) api.put("users", { id: { S: `u${i % 7}` }, n: { N: String(i) }, other: { S: "x" } });
    api.defaultPageSize = 30;
    api.unprocessed = (requests, call) => (call === 2 ? requests.slice(0, 5) : []);
    const schema = new Schema([new Field("id", new Utf8()), new Field("n", new Float64()), new Field("tags", new List(new Field("element", new Utf8())))]);
    await write(ctx, { confirm_truncate: "true", write_concurrency: "3" }, schema, true);
    expect(api.tables.get("users")!.items.size).toBe(0);
    expect(api.scans.every((s) => s.ConsistentRead === true && s.ProjectionExpression === "#k0, #k1")).toBe(true);
    expect(new Set(api.scans.map((s) => s.Segment))).toEqual(new Set([0, 1, 2, 3]));
    expect(api.maxInFlightWrites).toBeLessThanOrEqual(3);
  });

  it("records in the plan that an overwrite truncated the table, when and how many items it deleted", async () => {
    const { api, clock, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    for (let i = 0; i < 42; i++) api.put("users", { id: { S: `u${i}` } });
    clock.time = Date.parse("2026-03-04T05:06:07.000Z");
    const plan = decodeWritePlan(await write(ctx, { confirm_truncate: "true" }, dfSchema, true));
    expect(plan.overwrite).toEqual({ truncatedAt: "2026-03-04T05:06:07.000Z", itemsDeleted: 42 });
    const append = decodeWritePlan(await write(ctx, {}));
    expect(append.overwrite).toBeUndefined();
  });

  it("refuses overwrite for a streaming write", async () => {
    const { api, ctx } = setup();
    api.addTable("users", { name: "id", type: "S" });
    expect((await rejection(write(ctx, { confirm_truncate: "true" }, dfSchema, true, true))).errorClass).toBe("STREAMING_OVERWRITE_UNSUPPORTED");
  });
});
