import { describe, expect, it } from "vitest";
import { Bool, Field, Float64, Int64, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { silentLogger } from "../../core/logger.js";
import { type PlainValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import type { WritePlan } from "./planner.js";
import { FakeDynamoDb, sdkError } from "./test-fakes.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { writeRows, type WriteTaskInput } from "./writer.js";
import { rejection } from "../../../tests/support/conduit-error.js";

const TABLE = "users";
const schema = new Schema([new Field("id", new Utf8()), new Field("name", new Utf8()), new Field("age", new Int64()), new Field("deleted", new Bool())]);
const plan: WritePlan = { table: TABLE, hashKey: { name: "id", type: "S" } };

function batch(rows: PlainValue[][], s = schema): RecordBatch {
  const builder = new BatchBuilder(s);
  for (const row of rows) builder.appendRow(row);
  return builder.flush();
}

async function* batches(list: RecordBatch[], pulled?: { count: number }): AsyncGenerator<RecordBatch> {
  for (const b of list) {
    if (pulled) pulled.count++;
    yield b;
  }
}

function rows(count: number, prefix = "u", start = 0): PlainValue[][] {
  return Array.from({ length: count }, (_, i) => [`${prefix}${start + i}`, `name${start + i}`, BigInt(start + i), false]);
}

function setup(overrides: Partial<WriteTaskInput> = {}) {
  const api = new FakeDynamoDb();
  api.addTable(TABLE, { name: "id", type: "S" });
  const clock = new FakeClock();
  const input = (list: RecordBatch[], extra: Partial<WriteTaskInput> = {}): WriteTaskInput => ({
    api,
    plan,
    batches: batches(list),
    concurrency: 4,
    maxRetrySeconds: 120,
    clock,
    signal: new AbortController().signal,
    errorContext: { table: TABLE, region: "us-east-1", endpoint: undefined, operation: "BatchWriteItem", writing: true },
    logger: silentLogger,
    partitionId: 3,
    ...overrides,
    ...extra,
  });
  return { api, clock, input, items: () => api.tables.get(TABLE)!.items };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("writeRows", () => {
  it("writes every row in requests of at most 25 items, omitting nulls", async () => {
    const { api, input, items } = setup();
    const result = await writeRows(input([batch(rows(30)), batch([...rows(29, "u", 30), ["n1", null, null, null]])]));
    expect(result).toEqual({ rowsWritten: 60, rowsDeleted: 0, requests: 3, retries: 0 });
    expect(api.batchWrites.map((c) => c.requests.length)).toEqual([25, 25, 10]);
    expect(items().size).toBe(60);
    expect(items().get('{"S":"u7"}')).toEqual({ id: { S: "u7" }, name: { S: "name7" }, age: { N: "7" }, deleted: { BOOL: false } });
    expect(items().get('{"S":"n1"}')).toEqual({ id: { S: "n1" } });
  });

  it("deletes flagged rows by key and never writes the flag column", async () => {
    const { api, input, items } = setup({ plan: { ...plan, deleteFlag: { column: "deleted", value: "true" } } });
    api.put(TABLE, { id: { S: "gone" }, name: { S: "old" } });
    const result = await writeRows(
      input([
        batch([
          ["keep", "k", 1n, false],
          ["gone", "g", 2n, true],
          ["nullflag", "n", 3n, null],
        ]),
      ]),
    );
    expect(result.rowsWritten).toBe(2);
    expect(result.rowsDeleted).toBe(1);
    expect(items().has('{"S":"gone"}')).toBe(false);
    expect(items().get('{"S":"keep"}')).toEqual({ id: { S: "keep" }, name: { S: "k" }, age: { N: "1" } });
    const deletes = api.batchWrites.flatMap((c) => c.requests).filter((r) => r.DeleteRequest);
    expect(deletes).toEqual([{ DeleteRequest: { Key: { id: { S: "gone" } } } }]);
  });

  it("matches a string delete flag exactly", async () => {
    const s = new Schema([new Field("id", new Utf8()), new Field("op", new Utf8())]);
    const { input, items, api } = setup({ plan: { ...plan, deleteFlag: { column: "op", value: "D" } } });
    api.put(TABLE, { id: { S: "a" } });
    api.put(TABLE, { id: { S: "b" } });
    await writeRows(
      input([
        batch(
          [
            ["a", "D"],
            ["b", "d"],
          ],
          s,
        ),
      ]),
    );
    expect(items().has('{"S":"a"}')).toBe(false);
    expect(items().get('{"S":"b"}')).toEqual({ id: { S: "b" } });
  });

  it("retries UnprocessedItems with backoff until everything is written", async () => {
    const { api, clock, input, items } = setup();
    // The first three calls leave their last 10 items unprocessed.
    api.unprocessed = (requests, call) => (call < 3 ? requests.slice(-10) : []);
    const result = await writeRows(input([batch(rows(25))]));
    expect(items().size).toBe(25);
    expect(result).toEqual({ rowsWritten: 25, rowsDeleted: 0, requests: 4, retries: 3 });
    expect(api.batchWrites.map((c) => c.requests.length)).toEqual([25, 10, 10, 10]);
    // Full jitter with random() = 0.5: half of 50 ms * 2^attempt.
    expect(clock.sleeps).toEqual([50, 100, 200]);
  });

  it("retries unprocessed items keyed by the table's name when table_name is an ARN", async () => {
    const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${TABLE}`;
    const { api, input, items } = setup({ plan: { ...plan, table: arn } });
    api.unprocessedKeyedByName = true;
    api.unprocessed = (requests, call) => (call < 2 ? requests.slice(-4) : []);
    const result = await writeRows(input([batch(rows(12))]));
    expect(api.batchWrites.map((c) => c.requests.length)).toEqual([12, 4, 4]);
    expect(result).toEqual({ rowsWritten: 12, rowsDeleted: 0, requests: 3, retries: 2 });
    expect(items().size).toBe(12);
  });

  it("never counts an unprocessed item as written, whatever table key the answer uses", async () => {
    const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${TABLE}`;
    const { api, input } = setup({ plan: { ...plan, table: arn }, maxRetrySeconds: 0 });
    api.unprocessedKeyedByName = true;
    api.unprocessed = (requests) => requests.slice(0, 3);
    const error = await rejection(writeRows(input([batch(rows(10))])));
    expect(error.errorClass).toBe("WRITE_RETRIES_EXHAUSTED");
    expect(error.parameters).toMatchObject({ unprocessed: "3", written: "7" });
  });

  it("retries throttling errors like unprocessed items", async () => {
    const { api, input, items } = setup();
    api.failWrite = (call) => {
      if (call < 2) throw sdkError("ProvisionedThroughputExceededException", "slow down");
    };
    const result = await writeRows(input([batch(rows(5))]));
    expect(items().size).toBe(5);
    expect(result.retries).toBe(2);
    expect(result.requests).toBe(3);
  });

  it("fails with WRITE_RETRIES_EXHAUSTED once max_retry_seconds has passed", async () => {
    const { api, clock, input } = setup({ maxRetrySeconds: 2 });
    api.unprocessed = (requests) => requests.slice(0, 3);
    const error = await rejection(writeRows(input([batch(rows(10))])));
    expect(error.code).toBe("RESOURCE_EXHAUSTED");
    expect(error.errorClass).toBe("WRITE_RETRIES_EXHAUSTED");
    expect(error.parameters).toMatchObject({ table: TABLE, unprocessed: "3", maxRetrySeconds: "2", written: "7" });
    expect(error.message).toContain("3 of 10 items");
    expect(error.message).toContain("max_retry_seconds=2");
    const slept = clock.sleeps.reduce((a, b) => a + b, 0);
    expect(slept).toBe(2000);
    expect(api.batchWrites.length).toBeGreaterThan(5);
  });

  it("fails at the first unprocessed response when max_retry_seconds is 0", async () => {
    const { api, input } = setup({ maxRetrySeconds: 0 });
    api.unprocessed = (requests) => requests.slice(0, 1);
    const error = await rejection(writeRows(input([batch(rows(2))])));
    expect(error.errorClass).toBe("WRITE_RETRIES_EXHAUSTED");
    expect(api.batchWrites).toHaveLength(1);
  });

  it("lets the later row win for duplicate keys and never sends a key twice in one request", async () => {
    const { api, input, items } = setup();
    const result = await writeRows(
      input([
        batch([
          ["a", "first", 1n, false],
          ["b", "b", 2n, false],
          ["a", "second", 3n, false],
        ]),
        batch([["a", "third", 4n, false]]),
      ]),
    );
    expect(items().get('{"S":"a"}')).toMatchObject({ name: { S: "third" } });
    expect(result.rowsWritten).toBe(2);
    expect(api.batchWrites).toHaveLength(1);
  });

  it("writes both rows of composite keys that a separator-joined key text would confuse", async () => {
    const composite = new Schema([new Field("h", new Utf8()), new Field("r", new Utf8()), new Field("v", new Int64())]);
    const { api, input } = setup({ plan: { table: "pairs", hashKey: { name: "h", type: "S" }, rangeKey: { name: "r", type: "S" } } });
    const pairs = api.addTable("pairs", { name: "h", type: "S" }, { name: "r", type: "S" });
    const result = await writeRows(
      input([
        batch(
          [
            // Joined with NUL after a type tag, these two were the same key text: "Sa\0Sb\0Sc".
            ["a\u0000Sb", "c", 1n],
            ["a", "b\u0000Sc", 2n],
            ["a\u0000b", "c", 3n],
            ["a", "b\u0000c", 4n],
            // Without a separator or lengths, these two would be.
            ["ab", "c", 5n],
            ["a", "bc", 6n],
          ],
          composite,
        ),
      ]),
    );
    expect(result.rowsWritten).toBe(6);
    expect(pairs.items.size).toBe(6);
    expect([...pairs.items.values()].map((item) => item.v!.N)).toEqual(["1", "2", "3", "4", "5", "6"]);
  });

  it("holds a row whose key is in flight until that request and its retries finish", async () => {
    const { api, input, items } = setup();
    const gate = deferred();
    api.writeGate = (call) => (call === 0 ? gate.promise : Promise.resolve());
    // Call 0 (held open, then a retry for u0) holds u0..u24; the next rows repeat u0.
    api.unprocessed = (requests, call) => (call === 1 ? requests : call === 0 ? requests.filter((r) => r.PutRequest!.Item!.id!.S === "u0") : []);
    const done = writeRows(
      input([
        batch(rows(25)),
        batch([
          ["u0", "newer", 99n, false],
          ["x1", "x", 1n, false],
        ]),
      ]),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(api.batchWrites).toHaveLength(1);
    gate.resolve();
    const result = await done;
    // Call 0 leaves u0 unprocessed, call 1 (its retry) too, call 2 writes it; only then
    // is the newer u0 row sent, in call 3.
    const calls = api.batchWrites;
    expect(calls.map((c) => c.requests.length)).toEqual([25, 1, 1, 2]);
    expect(calls[3]!.startedAt).toBeGreaterThan(calls[2]!.finishedAt!);
    expect(items().get('{"S":"u0"}')).toMatchObject({ name: { S: "newer" }, age: { N: "99" } });
    expect(result.rowsWritten).toBe(27);
  });

  it("keeps at most write_concurrency requests in flight and stops pulling batches meanwhile", async () => {
    const { api, input } = setup({ concurrency: 2 });
    const gates = [deferred(), deferred(), deferred(), deferred()];
    api.writeGate = (call) => gates[call]?.promise ?? Promise.resolve();
    const pulled = { count: 0 };
    const list = [0, 1, 2, 3, 4, 5].map((i) => batch(rows(25, "b", i * 25)));
    const done = writeRows({ ...input([]), batches: batches(list, pulled) });
    await new Promise((r) => setTimeout(r, 20));
    // Two requests in flight, the third batch read and waiting for a slot.
    expect(api.inFlightWrites).toBe(2);
    expect(pulled.count).toBe(3);
    gates[0]!.resolve();
    await new Promise((r) => setTimeout(r, 20));
    expect(pulled.count).toBe(4);
    for (const g of gates) g.resolve();
    const result = await done;
    expect(result.rowsWritten).toBe(150);
    expect(api.maxInFlightWrites).toBe(2);
  });

  it("rejects a null or empty key naming the column and row", async () => {
    const { input } = setup();
    const error = await rejection(writeRows(input([batch(rows(3)), batch([...rows(1, "z"), [null, "x", 1n, false]])])));
    expect(error.errorClass).toBe("KEY_VALUE_NULL");
    expect(error.message).toContain("'id'");
    expect(error.message).toContain("row 4 of task 3");
    expect(error.parameters).toMatchObject({ column: "id", row: "4", partition: "3" });
    const empty = await rejection(writeRows(setup().input([batch([["", "x", 1n, false]])])));
    expect(empty.message).toContain("is empty");
  });

  it("writes none of a batch's rows when a key in it is null, even past the first 25", async () => {
    const { api, input } = setup();
    const error = await rejection(writeRows(input([batch([...rows(60), [null, "x", 1n, false]])])));
    expect(error.errorClass).toBe("KEY_VALUE_NULL");
    expect(error.parameters).toMatchObject({ column: "id", row: "60" });
    expect(api.batchWrites).toEqual([]);
  });

  it("surfaces a non-retryable DynamoDB error from a request", async () => {
    const { api, input } = setup();
    api.failWrite = () => {
      throw sdkError("ValidationException", "Item size has exceeded the maximum allowed size");
    };
    const error = await rejection(writeRows(input([batch(rows(3))])));
    expect(error.errorClass).toBe("DYNAMODB_VALIDATION");
    expect(error.message).toContain("Item size has exceeded");
  });

  it("rejects NaN in a double column naming the column", async () => {
    const s = new Schema([new Field("id", new Utf8()), new Field("score", new Float64())]);
    const { input } = setup();
    const error = await rejection(writeRows(input([batch([["a", NaN]], s)])));
    expect(error.errorClass).toBe("VALUE_NOT_REPRESENTABLE");
    expect(error.parameters.column).toBe("score");
  });

  it("stops with CANCELLED when the task is aborted", async () => {
    const { api, input } = setup();
    const controller = new AbortController();
    const gate = deferred();
    api.writeGate = () => gate.promise;
    const done = writeRows(input([batch(rows(25)), batch(rows(25, "v"))], { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    gate.resolve();
    const error = await rejection(done);
    expect(error.code).toBe("CANCELLED");
  });
});
