/**
 * The DynamoDB connector against a real DynamoDB Local (started by the global setup).
 * Each test uses its own tables; writes go through the same calls Spark's tasks make
 * (PlanWrite once, Write per partition, concurrently), reads through Describe, PlanRead
 * and one Read per segment.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { Bool, DataType, Decimal, Field, Float64, Int32, Int64, List, Map_, Schema, Struct, Utf8, type RecordBatch } from "apache-arrow";
import type { Connector, WriteResult } from "../../src/core/connector.js";
import { silentLogger } from "../../src/core/logger.js";
import { DecimalValue, readValue, type PlainValue } from "../../src/arrow/values.js";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import { createDynamoDbConnector } from "../../src/backends/dynamodb/connector.js";
import "../support/provided-context.js";
import { rejection } from "../support/conduit-error.js";

const endpoint = inject("dynamodbEndpoint");
const region = "us-east-1";
const credentials = { accessKeyId: "local", secretAccessKey: "local" };
const run = Date.now().toString(36);
let tableCounter = 0;
const uniqueTable = (label: string) => `it-${label}-${run}-${tableCounter++}`;

let connector: Connector;
let raw: DynamoDBClient;

beforeAll(() => {
  connector = createDynamoDbConnector(silentLogger);
  raw = new DynamoDBClient({ region, endpoint, credentials });
});

afterAll(async () => {
  await connector.close();
  raw.destroy();
});

function opts(table: string, extra: Record<string, string> = {}): Record<string, string> {
  return { table_name: table, aws_region: region, endpoint_url: endpoint, aws_access_key_id: "local", aws_secret_access_key: "local", ...extra };
}

/** A fresh signal per call, as the transport gives every RPC its own. */
const fresh = () => new AbortController().signal;

async function createTable(table: string, hash: [string, "S" | "N"], range?: [string, "S" | "N"]): Promise<void> {
  await raw.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: hash[0], AttributeType: hash[1] }, ...(range ? [{ AttributeName: range[0], AttributeType: range[1] }] : [])],
      KeySchema: [{ AttributeName: hash[0], KeyType: "HASH" }, ...(range ? [{ AttributeName: range[0], KeyType: "RANGE" as const }] : [])],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
}

function toBatch(schema: Schema, rows: PlainValue[][]): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (const row of rows) builder.appendRow(row);
  return builder.flush();
}

async function* fromBatches(batches: Iterable<RecordBatch>): AsyncGenerator<RecordBatch> {
  yield* batches;
}

/** Runs a write like Spark: PlanWrite, then every partition's Write concurrently. */
async function writeDataFrame(
  options: Record<string, string>,
  schema: Schema,
  partitions: Array<Iterable<RecordBatch>>,
  overwrite = false,
): Promise<WriteResult[]> {
  const writePlan = await connector.planWrite({ options, schema, overwrite, streaming: false, signal: fresh() });
  const results = await Promise.all(
    partitions.map((batches, partitionId) =>
      connector.write({ options, schema, writePlan, task: { partitionId, taskAttemptId: partitionId, batchId: 0 }, batches: fromBatches(batches), signal: fresh() }),
    ),
  );
  await connector.commitWrite({ options, writePlan, taskResults: results, batchId: 0, signal: fresh() });
  return results;
}

/** Runs a read like Spark: Describe (unless a schema is given), PlanRead, a Read per partition concurrently. */
async function readDataFrame(options: Record<string, string>, userSchema?: Schema): Promise<{ schema: Schema; rows: Record<string, PlainValue>[]; batches: number }> {
  const described = await connector.describe({ options, userSchema, signal: fresh() });
  const schema = described.schema;
  const partitions = await connector.planRead({ options, schema, signal: fresh() });
  let batches = 0;
  const perPartition = await Promise.all(
    partitions.map(async (partition) => {
      const rows: Record<string, PlainValue>[] = [];
      for await (const batch of connector.read({ options, schema, partition, signal: fresh() })) {
        batches++;
        const columns = schema.fields.map((f, i) => [f.name, batch.getChildAt(i)!] as const);
        for (let r = 0; r < batch.numRows; r++) rows.push(Object.fromEntries(columns.map(([name, vector]) => [name, readValue(vector, r)])));
      }
      return rows;
    }),
  );
  return { schema, rows: perPartition.flat(), batches };
}

const byId = (a: Record<string, PlainValue>, b: Record<string, PlainValue>) => String(a.id).localeCompare(String(b.id));

describe("DynamoDB connector against DynamoDB Local", () => {
  it("writes, reads and deletes with a delete flag (the seed's examples)", async () => {
    const table = uniqueTable("users");
    await createTable(table, ["id", "S"]);
    const schema = new Schema([new Field("id", new Utf8()), new Field("name", new Utf8()), new Field("age", new Int64())]);
    const results = await writeDataFrame(opts(table), schema, [
      [
        toBatch(schema, [
          ["id-001", "Alice", 30n],
          ["id-002", "Bob", 25n],
        ]),
      ],
      [toBatch(schema, [["id-003", "Carol", null]])],
    ]);
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(3);

    const read = await readDataFrame(opts(table));
    expect(read.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(["age:Int64", "id:Utf8", "name:Utf8"]);
    expect(read.rows.sort(byId)).toEqual([
      { age: 30n, id: "id-001", name: "Alice" },
      { age: 25n, id: "id-002", name: "Bob" },
      { age: null, id: "id-003", name: "Carol" },
    ]);
    // The null age was not written as an attribute.
    const carol = (await raw.send(new ScanCommand({ TableName: table }))).Items!.find((i) => i.id!.S === "id-003")!;
    expect(carol).toEqual({ id: { S: "id-003" }, name: { S: "Carol" } });

    const flagged = new Schema([...schema.fields, new Field("is_deleted", new Bool())]);
    const deleted = await writeDataFrame(opts(table, { delete_flag_column: "is_deleted", delete_flag_value: "true" }), flagged, [
      [
        toBatch(flagged, [
          ["id-001", "Alice", 31n, false],
          ["id-002", "Bob", 25n, true],
        ]),
      ],
    ]);
    expect(deleted[0]).toMatchObject({ rowsWritten: 1, rowsDeleted: 1 });
    const after = await readDataFrame(opts(table));
    expect(after.schema.fields.map((f) => f.name)).toEqual(["age", "id", "name"]); // is_deleted never written
    expect(after.rows.sort(byId)).toEqual([
      { age: 31n, id: "id-001", name: "Alice" },
      { age: null, id: "id-003", name: "Carol" },
    ]);
  });

  it("returns every item exactly once from a parallel scan of several segments", async () => {
    const table = uniqueTable("segments");
    await createTable(table, ["pk", "S"], ["sk", "N"]);
    const schema = new Schema([new Field("pk", new Utf8()), new Field("sk", new Int64()), new Field("payload", new Utf8())]);
    const rows: PlainValue[][] = [];
    for (let i = 0; i < 1200; i++) rows.push([`p${i % 40}`, BigInt(i), "x".repeat(i % 50)]);
    await writeDataFrame(opts(table), schema, [[toBatch(schema, rows.slice(0, 600))], [toBatch(schema, rows.slice(600))]]);
    const read = await readDataFrame(opts(table, { total_segments: "7", read_page_size: "100" }));
    expect(read.rows).toHaveLength(1200);
    const seen = new Map<bigint, number>();
    for (const row of read.rows) seen.set(row.sk as bigint, (seen.get(row.sk as bigint) ?? 0) + 1);
    expect(seen.size).toBe(1200);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(read.batches).toBeGreaterThanOrEqual(12);
  });

  it("projects a user schema with reserved words and narrows to int32", async () => {
    const table = uniqueTable("reserved");
    await createTable(table, ["id", "S"]);
    await raw.send(new PutItemCommand({ TableName: table, Item: { id: { S: "a" }, name: { S: "Widget" }, size: { N: "42" }, status: { S: "ok" }, hidden: { S: "no" } } }));
    await raw.send(new PutItemCommand({ TableName: table, Item: { id: { S: "b" }, name: { S: "Gadget" }, size: { N: "-7" } } }));
    const user = new Schema([new Field("name", new Utf8()), new Field("size", new Int32()), new Field("status", new Utf8())]);
    const read = await readDataFrame(opts(table), user);
    expect(read.schema).toBe(user);
    expect(read.rows.sort((x, y) => String(x.name).localeCompare(String(y.name)))).toEqual([
      { name: "Gadget", size: -7, status: null },
      { name: "Widget", size: 42, status: "ok" },
    ]);

    await raw.send(new PutItemCommand({ TableName: table, Item: { id: { S: "c" }, name: { S: "Huge" }, size: { N: "3000000000" } } }));
    const error = await rejection(readDataFrame(opts(table), user));
    expect(error.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(error.message).toContain("'size'");
    expect(error.message).toContain("3000000000");
  });

  it("creates a table with hash and range keys, waits until ACTIVE, then writes", async () => {
    const table = uniqueTable("created");
    const schema = new Schema([new Field("user", new Utf8()), new Field("ts", new Int64()), new Field("event", new Utf8())]);
    const rows: PlainValue[][] = [
      ["u1", 1n, "login"],
      ["u1", 2n, "logout"],
      ["u2", 1n, "login"],
    ];
    await writeDataFrame(opts(table, { create_table: "true", hash_key: "user", range_key: "ts" }), schema, [[toBatch(schema, rows)]]);
    const description = (await raw.send(new DescribeTableCommand({ TableName: table }))).Table!;
    expect(description.TableStatus).toBe("ACTIVE");
    expect(description.KeySchema).toEqual([
      { AttributeName: "user", KeyType: "HASH" },
      { AttributeName: "ts", KeyType: "RANGE" },
    ]);
    expect(description.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: "user", AttributeType: "S" },
        { AttributeName: "ts", AttributeType: "N" },
      ]),
    );
    expect(description.BillingModeSummary?.BillingMode ?? "PAY_PER_REQUEST").toBe("PAY_PER_REQUEST");
    const read = await readDataFrame(opts(table));
    expect(read.rows).toHaveLength(3);
    // Writing again with create_table is fine: the table exists with the same keys.
    await writeDataFrame(opts(table, { create_table: "true", hash_key: "user", range_key: "ts" }), schema, [[toBatch(schema, [["u3", 1n, "x"]])]]);
    expect((await readDataFrame(opts(table))).rows).toHaveLength(4);
  });

  it("refuses overwrite without confirm_truncate and truncates with it", async () => {
    const table = uniqueTable("overwrite");
    await createTable(table, ["id", "N"]);
    const schema = new Schema([new Field("id", new Int64()), new Field("v", new Utf8())]);
    const old = Array.from({ length: 300 }, (_, i): PlainValue[] => [BigInt(i), "old"]);
    await writeDataFrame(opts(table), schema, [[toBatch(schema, old)]]);

    const refused = await rejection(writeDataFrame(opts(table), schema, [[toBatch(schema, [[1000n, "new"]])]], true));
    expect(refused.errorClass).toBe("OVERWRITE_NOT_CONFIRMED");
    expect(refused.code).toBe("FAILED_PRECONDITION");
    expect((await readDataFrame(opts(table))).rows).toHaveLength(300);

    await writeDataFrame(opts(table, { confirm_truncate: "true" }), schema, [[toBatch(schema, [[1000n, "new"], [1n, "new"]])]], true);
    const after = await readDataFrame(opts(table, { consistent_read: "true" }));
    expect(after.rows.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
      { id: 1n, v: "new" },
      { id: 1000n, v: "new" },
    ]);
  });

  it("records an overwrite's truncate in the plan, and an aborted overwrite says the table was truncated", async () => {
    const table = uniqueTable("overwrite-abort");
    await createTable(table, ["id", "N"]);
    const schema = new Schema([new Field("id", new Int64()), new Field("v", new Utf8())]);
    await writeDataFrame(opts(table), schema, [[toBatch(schema, Array.from({ length: 120 }, (_, i): PlainValue[] => [BigInt(i), "old"]))]]);

    const options = opts(table, { confirm_truncate: "true" });
    const writePlan = await connector.planWrite({ options, schema, overwrite: true, streaming: false, signal: fresh() });
    const plan = JSON.parse(new TextDecoder().decode(writePlan)) as { overwrite?: { truncatedAt: string; itemsDeleted: number } };
    expect(plan.overwrite?.itemsDeleted).toBe(120);
    expect(Date.parse(plan.overwrite!.truncatedAt)).toBeLessThanOrEqual(Date.now());
    // One task succeeds, the other fails on a null key: Spark aborts the job.
    const good = Array.from({ length: 30 }, (_, i): PlainValue[] => [BigInt(1000 + i), "new"]);
    const ok = await connector.write({ options, schema, writePlan, task: { partitionId: 0, taskAttemptId: 0, batchId: 0 }, batches: fromBatches([toBatch(schema, good)]), signal: fresh() });
    const failed = await rejection(
      connector.write({ options, schema, writePlan, task: { partitionId: 1, taskAttemptId: 1, batchId: 0 }, batches: fromBatches([toBatch(schema, [[null, "bad"]])]), signal: fresh() }),
    );
    expect(failed.errorClass).toBe("KEY_VALUE_NULL");
    const detail = await connector.abortWrite({ options, writePlan, taskResults: [ok], batchId: 0, signal: fresh() });
    expect(detail).toContain(`Table '${table}' was TRUNCATED for mode("overwrite") at ${plan.overwrite!.truncatedAt} (120 items deleted) before this write failed`);
    expect(detail).toContain("wrote 30 and deleted 0");
    // The table holds exactly what the finished task wrote.
    const after = await readDataFrame(opts(table, { consistent_read: "true" }));
    expect(after.rows.sort((a, b) => Number(a.id) - Number(b.id))).toEqual(good.map(([id, v]) => ({ id, v })));
  });

  it("writes every row of composite keys whose parts contain NUL", async () => {
    const table = uniqueTable("nul-keys");
    await createTable(table, ["h", "S"], ["r", "S"]);
    const schema = new Schema([new Field("h", new Utf8()), new Field("r", new Utf8()), new Field("v", new Int64())]);
    const rows: PlainValue[][] = [
      ["a\u0000Sb", "c", 1n],
      ["a", "b\u0000Sc", 2n],
      ["a\u0000b", "c", 3n],
      ["a", "b\u0000c", 4n],
      ["ab", "c", 5n],
      ["a", "bc", 6n],
    ];
    const [result] = await writeDataFrame(opts(table), schema, [[toBatch(schema, rows)]]);
    expect(result!.rowsWritten).toBe(6);
    const items = (await raw.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items!;
    const stored = items.map((item) => [item.h!.S, item.r!.S, BigInt(item.v!.N!)]).sort((a, b) => Number(a[2]) - Number(b[2]));
    expect(stored).toEqual(rows);
  });

  it("writes and reads a table named by its ARN", async () => {
    const table = uniqueTable("arn");
    await createTable(table, ["id", "N"]);
    const arn = (await raw.send(new DescribeTableCommand({ TableName: table }))).Table!.TableArn!;
    expect(arn).toMatch(/^arn:aws:dynamodb:/);
    const schema = new Schema([new Field("id", new Int64()), new Field("v", new Utf8())]);
    const rows = Array.from({ length: 260 }, (_, i): PlainValue[] => [BigInt(i), `v${i}`]);
    const results = await writeDataFrame(opts(arn), schema, [[toBatch(schema, rows.slice(0, 130))], [toBatch(schema, rows.slice(130))]]);
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(260);
    const read = await readDataFrame(opts(arn, { consistent_read: "true" }), schema);
    expect(read.rows.sort((a, b) => Number(a.id) - Number(b.id))).toEqual(rows.map(([id, v]) => ({ id, v })));
  });

  it("rejects a write whose DataFrame lacks a key column, before writing anything", async () => {
    const table = uniqueTable("keys");
    await createTable(table, ["id", "S"], ["ts", "N"]);
    const schema = new Schema([new Field("id", new Utf8()), new Field("name", new Utf8())]);
    const error = await rejection(connector.planWrite({ options: opts(table), schema, overwrite: false, streaming: false, signal: fresh() }));
    expect(error.errorClass).toBe("KEY_COLUMN_MISSING");
    expect(error.message).toContain("'ts'");
    expect(error.message).toContain("id, name");
  });

  it("reports a missing table for reads and writes", async () => {
    const table = uniqueTable("missing");
    const read = await rejection(connector.describe({ options: opts(table), userSchema: undefined, signal: fresh() }));
    expect(read.code).toBe("NOT_FOUND");
    expect(read.errorClass).toBe("TABLE_NOT_FOUND");
    expect(read.message).toContain(table);
    expect(read.message).toContain(endpoint);
    const schema = new Schema([new Field("id", new Utf8())]);
    const write = await rejection(connector.planWrite({ options: opts(table), schema, overwrite: false, streaming: false, signal: fresh() }));
    expect(write.errorClass).toBe("TABLE_NOT_FOUND");
    expect(write.message).toContain("create_table");
  });

  it("reports an unreachable endpoint as UNAVAILABLE", async () => {
    const options = { ...opts("nowhere"), endpoint_url: "http://127.0.0.1:9" };
    const error = await rejection(connector.describe({ options, userSchema: undefined, signal: fresh() }));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toContain("http://127.0.0.1:9");
  });

  it("round-trips 100k rows with six columns exactly", { timeout: 600_000 }, async () => {
    const table = uniqueTable("bulk");
    await createTable(table, ["id", "S"]);
    const entry = new Struct([new Field("count", new Int64(), true), new Field("label", new Utf8(), true)] as Field[]);
    const mapType = new Map_(new Field("entries", new Struct<{ key: Utf8; value: typeof entry }>([new Field("key", new Utf8(), false), new Field("value", entry, true)]), false));
    const schema = new Schema([
      new Field("id", new Utf8()),
      new Field("seq", new Int64()),
      new Field("price", new Decimal(10, 38, 128)),
      new Field("ratio", new Float64()),
      new Field("tags", new List(new Field("element", new Utf8(), true))),
      new Field("attrs", mapType),
    ] as Field<DataType>[]);
    const total = 100_000;
    const partitions = 4;
    const batchRows = 5_000;
    const rowFor = (i: number): PlainValue[] => [
      `row-${String(i).padStart(6, "0")}`,
      BigInt(i) * 1_000_000_007n - 5_000_000_000_000n,
      new DecimalValue(BigInt(i) * 12_345_678_901_234_567n + 1n, 10),
      i % 10 === 0 ? 0.1 : i / 7,
      i % 3 === 0 ? null : [`t${i % 5}`, `u${i % 11}`],
      [
        ["a", { count: BigInt(i), label: i % 2 === 0 ? "even" : null }],
        ["b", null],
      ],
    ];
    function* partition(p: number): Generator<RecordBatch> {
      const start = (total / partitions) * p;
      const end = start + total / partitions;
      for (let from = start; from < end; from += batchRows) {
        const rows: PlainValue[][] = [];
        for (let i = from; i < Math.min(end, from + batchRows); i++) rows.push(rowFor(i));
        yield toBatch(schema, rows);
      }
    }
    const writeStarted = Date.now();
    const results = await writeDataFrame(
      opts(table, { write_concurrency: "8" }),
      schema,
      Array.from({ length: partitions }, (_, p) => partition(p)),
    );
    const writeSeconds = (Date.now() - writeStarted) / 1000;
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(total);

    const readStarted = Date.now();
    const read = await readDataFrame(opts(table, { total_segments: "8" }), schema);
    const readSeconds = (Date.now() - readStarted) / 1000;
    expect(read.rows).toHaveLength(total);
    read.rows.sort(byId);
    let mismatches = 0;
    for (let i = 0; i < total; i++) {
      const row = read.rows[i]!;
      const [id, seq, price, ratio, tags, attrs] = rowFor(i);
      const ok =
        row.id === id &&
        row.seq === seq &&
        (row.price as DecimalValue).toString() === (price as DecimalValue).toString() &&
        row.ratio === ratio &&
        JSON.stringify(row.tags) === JSON.stringify(tags) &&
        JSON.stringify([...(row.attrs as Array<[string, PlainValue]>)].sort(([a], [b]) => a.localeCompare(b)), (_k, v: unknown) =>
          typeof v === "bigint" ? `${v}n` : v,
        ) === JSON.stringify(attrs, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
      if (!ok && mismatches++ < 3) expect(row).toEqual(Object.fromEntries(schema.fields.map((f, c) => [f.name, rowFor(i)[c]])));
    }
    expect(mismatches).toBe(0);
    // The stored form: a double 0.1 is the number 0.1, a decimal keeps every digit.
    const stored = (await raw.send(new GetItemCommand({ TableName: table, Key: { id: { S: "row-000010" } } }))).Item!;
    expect(stored.ratio).toEqual({ N: "0.1" });
    expect(stored.price).toEqual({ N: "12345678.9012345671" });
    expect(stored.attrs).toEqual({ M: { a: { M: { count: { N: "10" }, label: { S: "even" } } }, b: { NULL: true } } });
    expect(stored.tags).toEqual({ L: [{ S: "t0" }, { S: "u10" }] });
    const noTags = (await raw.send(new GetItemCommand({ TableName: table, Key: { id: { S: "row-000030" } } }))).Item!;
    expect(Object.keys(noTags).sort()).toEqual(["attrs", "id", "price", "ratio", "seq"]);
    console.info(`100k rows: write ${writeSeconds.toFixed(1)} s, read ${readSeconds.toFixed(1)} s`);
  });
});
