import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import { Bool, Field, Int32, Int64, List, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { silentLogger } from "../../core/logger.js";
import { type PlainValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import type { WritePlan } from "./planner.js";
import { abortableSleepClock, FakeCassandra, noHostAvailable, responseError } from "./test-fakes.js";
import { scalar } from "./types.js";
import { deleteQuery, insertQuery, MAX_BATCH_STATEMENTS, nextTimestamp, TIMESTAMP_SLOTS, writeRows, writesList, type WriteTaskInput } from "./writer.js";

const codes = cassandra.types.responseErrorCodes;
const { types } = cassandra;

// Table events(user text, seq int, note text, score bigint, id uuid): PRIMARY KEY ((user), seq)
const schema = new Schema([new Field("user", new Utf8()), new Field("seq", new Int64()), new Field("note", new Utf8()), new Field("deleted", new Bool())]);
const plan: WritePlan = {
  keyspace: "ks",
  table: "events",
  partitionKey: ["user"],
  clusteringKey: ["seq"],
  columns: [
    { name: "user", type: scalar("text") },
    { name: "seq", type: scalar("int") },
    { name: "note", type: scalar("text") },
  ],
};

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

/** `count` rows of `users` distinct users (round robin), seq = row index. */
function rows(count: number, users = count, start = 0): PlainValue[][] {
  return Array.from({ length: count }, (_, i) => [`u${(start + i) % users}`, BigInt(start + i), `note${start + i}`, false]);
}

function setup(overrides: Partial<WriteTaskInput> = {}) {
  const api = new FakeCassandra();
  api.addTable(
    "ks",
    "events",
    [
      ["user", scalar("text")],
      ["seq", scalar("int")],
      ["note", scalar("text")],
      ["score", scalar("bigint")],
      ["id", scalar("uuid")],
    ],
    ["user"],
    ["seq"],
  );
  const clock = new FakeClock(0.5);
  const input = (list: RecordBatch[], extra: Partial<WriteTaskInput> = {}): WriteTaskInput => ({
    api,
    plan,
    batches: batches(list),
    concurrency: 4,
    rowsPerBatch: 1000,
    maxRetries: 5,
    maxRetrySeconds: 60,
    consistency: "LOCAL_QUORUM",
    writeNulls: false,
    clock,
    signal: new AbortController().signal,
    errorContext: { target: "127.0.0.1:9042", tls: false, keyspace: "ks", table: "events", operation: "write", username: undefined },
    logger: silentLogger,
    partitionId: 3,
    ...overrides,
    ...extra,
  });
  const stored = () => api.rowsOf("ks", "events");
  return { api, clock, input, stored };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("statements", () => {
  it("insert the DataFrame's columns and delete by full primary key, binding the timestamp for batches", () => {
    expect(insertQuery(plan)).toBe('INSERT INTO "ks"."events" ("user", "seq", "note") VALUES (?, ?, ?)');
    expect(deleteQuery(plan)).toBe('DELETE FROM "ks"."events" WHERE "user" = ? AND "seq" = ?');
    expect(insertQuery(plan, true)).toBe('INSERT INTO "ks"."events" ("user", "seq", "note") VALUES (?, ?, ?) USING TIMESTAMP ?');
    expect(deleteQuery(plan, true)).toBe('DELETE FROM "ks"."events" USING TIMESTAMP ? WHERE "user" = ? AND "seq" = ?');
  });

  it("take timestamps that never go backwards", () => {
    const clock = { now: () => 1000 };
    const a = nextTimestamp(clock);
    const b = nextTimestamp(clock);
    expect(b).toBe(a + 1);
    expect(nextTimestamp({ now: () => 5_000_000_000_000 })).toBe(5_000_000_000_000_000);
  });
});

describe("writeRows", () => {
  it("writes every row, converting values, at the write consistency", async () => {
    const { api, input, stored } = setup();
    const result = await writeRows(input([batch(rows(30)), batch(rows(20, 50, 30))]));
    expect(result).toEqual({ rowsWritten: 50, rowsDeleted: 0, requests: 50, retries: 0 });
    expect(stored()).toHaveLength(50);
    expect(stored().find((r) => r.note === "note7")).toEqual({ user: "u7", seq: 7, note: "note7" });
    expect(api.executes.every((e) => e.options.consistency === "LOCAL_QUORUM" && e.options.idempotent)).toBe(true);
    // One statement per request: the write timestamp (microseconds) goes with the request.
    expect(api.executes.every((e) => e.params.length === 3 && typeof e.options.timestamp === "number")).toBe(true);
  });

  it("leaves null non-key values unset by default, so existing values stay", async () => {
    const { api, input, stored } = setup();
    api.put("ks", "events", { user: "a", seq: 1, note: "kept" });
    await writeRows(input([batch([["a", 1n, null, false]])]));
    expect(api.executes[0]!.params[2]).toBe(types.unset);
    expect(stored()).toEqual([{ user: "a", seq: 1, note: "kept" }]);
  });

  it("writes nulls as nulls with write_nulls", async () => {
    const { api, input, stored } = setup({ writeNulls: true });
    api.put("ks", "events", { user: "a", seq: 1, note: "old" });
    await writeRows(input([batch([["a", 1n, null, false]])]));
    expect(api.executes[0]!.params[2]).toBeNull();
    expect(stored()).toEqual([{ user: "a", seq: 1 }]);
  });

  it("deletes flagged rows by primary key and never writes the flag column", async () => {
    const { api, input, stored } = setup({ plan: { ...plan, deleteFlag: { column: "deleted", value: "TRUE" } } });
    api.put("ks", "events", { user: "gone", seq: 2, note: "old" });
    const result = await writeRows(
      input([
        batch([
          ["keep", 1n, "k", false],
          ["gone", 2n, "g", true],
          ["nullflag", 3n, "n", null],
        ]),
      ]),
    );
    expect(result).toMatchObject({ rowsWritten: 2, rowsDeleted: 1 });
    expect(stored().map((r) => r.user).sort()).toEqual(["keep", "nullflag"]);
    const deletes = api.executes.filter((e) => e.query.startsWith("DELETE"));
    expect(deletes).toHaveLength(1);
    // The text key goes as its UTF-8 bytes (serialized from the Arrow buffer); the int64 seq is converted to an int.
    expect(deletes[0]!.params).toEqual([Buffer.from("gone"), 2]);
    expect(api.executes.every((e) => !e.query.includes("deleted"))).toBe(true);
  });

  it("matches a string delete flag exactly", async () => {
    const s = new Schema([new Field("user", new Utf8()), new Field("seq", new Int32()), new Field("op", new Utf8())]);
    const p: WritePlan = { ...plan, columns: plan.columns.slice(0, 2), deleteFlag: { column: "op", value: "D" } };
    const { api, input, stored } = setup({ plan: p });
    api.put("ks", "events", { user: "a", seq: 1 });
    api.put("ks", "events", { user: "b", seq: 1 });
    await writeRows(
      input([
        batch(
          [
            ["a", 1, "D"],
            ["b", 1, "d"],
          ],
          s,
        ),
      ]),
    );
    expect(stored().map((r) => r.user)).toEqual(["b"]);
  });

  it("checks a whole batch's keys before sending any of its rows", async () => {
    const { input, stored } = setup({ rowsPerBatch: 5 });
    const error = await rejection(writeRows(input([batch(rows(5)), batch([...rows(3, 3, 5), ["x", null, "no seq", false], ...rows(2, 2, 9)])])));
    expect(error.errorClass).toBe("KEY_VALUE_NULL");
    expect(error.parameters).toMatchObject({ column: "seq", row: "8", partition: "3" });
    expect(error.message).toContain("row 8 of task 3");
    // The first batch was written, nothing of the second.
    expect(stored().map((r) => r.seq).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("rejects an empty single-column partition key", async () => {
    const { input } = setup();
    const error = await rejection(writeRows(input([batch([["", 1n, "x", false]])])));
    expect(error.errorClass).toBe("KEY_VALUE_NULL");
    expect(error.parameters).toMatchObject({ column: "user", value: "empty" });
  });

  it("converts a whole batch before sending it: an invalid UUID writes none of its rows", async () => {
    const s = new Schema([new Field("user", new Utf8()), new Field("seq", new Int32()), new Field("id", new Utf8())]);
    const p: WritePlan = { ...plan, columns: [...plan.columns.slice(0, 2), { name: "id", type: scalar("uuid") }] };
    const { input, stored, api } = setup({ plan: p });
    const error = await rejection(
      writeRows(
        input([
          batch(
            [
              ["a", 1, "550e8400-e29b-41d4-a716-446655440000"],
              ["b", 2, "550e8400-nope"],
            ],
            s,
          ),
        ]),
      ),
    );
    expect(error.errorClass).toBe("INVALID_UUID");
    expect(error.parameters).toMatchObject({ column: "id", value: "'550e8400-nope'", row: "1", partition: "3" });
    expect(api.executes).toHaveLength(0);
    expect(stored()).toHaveLength(0);
  });

  it("checks only the key columns of a row it deletes", async () => {
    const s = new Schema([new Field("user", new Utf8()), new Field("seq", new Int32()), new Field("id", new Utf8()), new Field("deleted", new Bool())]);
    const p: WritePlan = { ...plan, columns: [...plan.columns.slice(0, 2), { name: "id", type: scalar("uuid") }], deleteFlag: { column: "deleted", value: "TRUE" } };
    const { input, stored, api } = setup({ plan: p });
    api.put("ks", "events", { user: "gone", seq: 1 });
    const result = await writeRows(
      input([
        batch(
          [
            ["gone", 1, "not a uuid, and never written", true],
            ["kept", 2, "550e8400-e29b-41d4-a716-446655440000", false],
          ],
          s,
        ),
      ]),
    );
    expect(result).toMatchObject({ rowsWritten: 1, rowsDeleted: 1 });
    expect(stored().map((r) => r.user)).toEqual(["kept"]);
  });

  it("range-checks narrowing conversions, naming column, value and row", async () => {
    const { input } = setup();
    const error = await rejection(writeRows(input([batch([["a", 1n << 33n, "x", false]])])));
    expect(error.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(error.parameters).toMatchObject({ column: "seq", value: String(1n << 33n), row: "0", cqlType: "int" });
  });

  it("keeps at most `concurrency` requests in flight and does not pull batches meanwhile", async () => {
    const { api, input } = setup();
    const gate = deferred();
    api.gate = () => gate.promise;
    const pulled = { count: 0 };
    const list = [batch(rows(3)), batch(rows(3, 3, 3)), batch(rows(3, 3, 6))];
    const done = writeRows({ ...input([]), rowsPerBatch: 1, concurrency: 2, batches: batches(list, pulled) });
    await new Promise((r) => setTimeout(r, 20));
    expect(api.inFlight).toBe(2);
    expect(pulled.count).toBe(1);
    gate.resolve();
    const result = await done;
    expect(result.rowsWritten).toBe(9);
    expect(api.maxInFlight).toBe(2);
    expect(pulled.count).toBe(3);
  });

  it("sends rows of one buffer that share a partition key as unlogged batches", async () => {
    const { api, input, stored } = setup();
    // 250 rows of 2 users (125 each) plus 3 rows of distinct users, in one buffer.
    const list = [batch([...rows(250, 2), ["solo1", 1n, "a", false], ["solo2", 1n, "b", false], ["solo3", 1n, "c", false]])];
    const result = await writeRows(input(list));
    expect(result.rowsWritten).toBe(253);
    expect(stored()).toHaveLength(253);
    expect(api.batches.map((b) => b.statements.length)).toEqual([MAX_BATCH_STATEMENTS, 25, MAX_BATCH_STATEMENTS, 25]);
    for (const b of api.batches) expect(new Set(b.statements.map((s) => String(s.params[0]))).size).toBe(1);
    // A batch's statements bind their own timestamps, increasing in row order.
    for (const b of api.batches) {
      expect(b.statements.every((s) => s.query.endsWith("USING TIMESTAMP ?"))).toBe(true);
      const stamps = b.statements.map((s) => s.params[3] as bigint);
      expect(stamps).toEqual([...stamps].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
      expect(new Set(stamps).size).toBe(stamps.length);
    }
    expect(api.executes).toHaveLength(3);
    expect(result.requests).toBe(7);
  });

  it("sends one statement per request without grouping", async () => {
    const { api, input } = setup({ groupByPartition: false });
    await writeRows(input([batch(rows(20, 2))]));
    expect(api.batches).toHaveLength(0);
    expect(api.executes).toHaveLength(20);
  });

  it("buffers rows_per_batch rows before sending", async () => {
    const { api, input } = setup({ rowsPerBatch: 10 });
    const gate = deferred();
    api.gate = () => gate.promise;
    const done = writeRows(input([batch(rows(15, 15))]));
    await new Promise((r) => setTimeout(r, 20));
    expect(api.executes).toHaveLength(4); // the first buffer of 10, four requests in flight
    gate.resolve();
    await done;
    expect(api.executes).toHaveLength(15);
  });

  it("lets the later row win when a task holds a primary key twice, whatever order requests complete in", async () => {
    const { api, input, stored } = setup({ rowsPerBatch: 1 });
    const first = deferred();
    api.gate = (_q, call) => (call === 0 ? first.promise : Promise.resolve());
    const done = writeRows(
      input([
        batch([
          ["a", 1n, "old", false],
          ["a", 1n, "new", false],
        ]),
      ]),
    );
    await new Promise((r) => setTimeout(r, 20));
    first.resolve();
    await done;
    expect(stored()).toEqual([{ user: "a", seq: 1, note: "new" }]);
  });

  it("retries timeouts and unavailable replicas with backoff", async () => {
    const { api, input, clock, stored } = setup();
    api.fail = (_q, call) => {
      if (call === 0) throw responseError(codes.writeTimeout, "Operation timed out - received only 0 responses.");
      if (call === 1) throw responseError(codes.unavailableException, "Cannot achieve consistency level LOCAL_QUORUM");
    };
    const result = await writeRows(input([batch(rows(1))]));
    expect(result).toEqual({ rowsWritten: 1, rowsDeleted: 0, requests: 3, retries: 2 });
    expect(clock.sleeps).toEqual([50, 100]);
    expect(stored()).toHaveLength(1);
  });

  it("fails after max_retries, saying what stays written", async () => {
    const { api, input } = setup({ maxRetries: 2, concurrency: 1, rowsPerBatch: 1 });
    api.fail = (_q, call) => {
      if (call >= 2) throw responseError(codes.writeTimeout, "Operation timed out");
    };
    const error = await rejection(writeRows(input([batch(rows(5))])));
    expect(error.code).toBe("DEADLINE_EXCEEDED");
    expect(error.errorClass).toBe("CASSANDRA_TIMEOUT");
    expect(error.parameters).toMatchObject({ retries: "2", written: "2" });
    expect(error.message).toContain("stay written");
  });

  it("does not retry errors that a retry cannot fix", async () => {
    const { api, input } = setup();
    api.fail = () => {
      throw responseError(codes.invalid, "Invalid null value in condition for column user");
    };
    const error = await rejection(writeRows(input([batch(rows(1))])));
    expect(error.errorClass).toBe("CASSANDRA_INVALID_QUERY");
    expect(api.executes).toHaveLength(1);
  });

  it("stops retrying at once when the task is cancelled during a backoff, with no further attempt", async () => {
    const controller = new AbortController();
    // A real wait: the backoff sleep only ends early if the writer links it to the call's signal.
    const { clock, sleeping } = abortableSleepClock(1_500);
    const { api, input } = setup({ signal: controller.signal, clock, maxRetries: 1 });
    api.fail = () => {
      throw responseError(codes.writeTimeout, "Operation timed out - received only 0 responses.");
    };
    const done = writeRows(input([batch(rows(1))]));
    await sleeping;
    expect(api.executes).toHaveLength(1);
    const started = Date.now();
    controller.abort();
    const error = await rejection(done);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error.code).toBe("CANCELLED");
    expect(api.executes).toHaveLength(1);
  });

  it("waits for a node through lost connections without counting them against max_retries", async () => {
    const { api, input, stored } = setup({ maxRetries: 0 });
    api.fail = (_q, call) => {
      if (call < 3) throw noHostAvailable({ "127.0.0.1:9042": "Host considered as DOWN" as unknown as Error });
    };
    const result = await writeRows(input([batch(rows(1))]));
    expect(result).toMatchObject({ rowsWritten: 1, requests: 4, retries: 3 });
    expect(api.hostWaits).toHaveLength(3);
    expect(stored()).toHaveLength(1);
  });

  it("gives up on an unreachable cluster once max_retry_seconds have passed, saying so", async () => {
    const { api, input, clock } = setup({ maxRetrySeconds: 20 });
    api.hostUp = false;
    api.fail = () => {
      throw noHostAvailable({ "127.0.0.1:9042": Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9042"), { code: "ECONNREFUSED" }) });
    };
    const started = clock.now();
    const error = await rejection(writeRows(input([batch(rows(1))])));
    expect(clock.now() - started).toBeLessThanOrEqual(20_000);
    expect(error.errorClass).toBe("CASSANDRA_UNAVAILABLE");
    expect(error.message).toContain("ks.events");
    expect(error.message).toContain("max_retry_seconds=20");
    expect(error.parameters).toMatchObject({ maxRetrySeconds: "20" });
    expect(api.executes.length).toBeGreaterThan(3);
  });

  it("fails at the first error with max_retry_seconds 0", async () => {
    const { api, input } = setup({ maxRetrySeconds: 0 });
    api.fail = () => {
      throw responseError(codes.overloaded, "Overloaded");
    };
    const error = await rejection(writeRows(input([batch(rows(1))])));
    expect(error.errorClass).toBe("CASSANDRA_OVERLOADED");
    expect(api.executes).toHaveLength(1);
  });

  it("stops with CANCELLED when the signal aborts", async () => {
    const controller = new AbortController();
    const { api, input } = setup({ signal: controller.signal, rowsPerBatch: 1, concurrency: 1 });
    const gate = deferred();
    api.gate = () => gate.promise;
    const done = writeRows(input([batch(rows(5))]));
    await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    gate.resolve();
    const error = await rejection(done);
    expect(error.code).toBe("CANCELLED");
    expect(api.executes.length).toBeLessThan(5);
  });
});

describe("a plan that sets a non-frozen list (not idempotent)", () => {
  const listPlan: WritePlan = {
    keyspace: "ks",
    table: "lists",
    partitionKey: ["user"],
    clusteringKey: [],
    columns: [
      { name: "user", type: scalar("text") },
      { name: "l", type: { kind: "list", element: scalar("int"), frozen: false } },
    ],
  };
  const listSchema = new Schema([new Field("user", new Utf8()), new Field("l", new List(new Field("item", new Int32(), true)))]);

  function listSetup(overrides: Partial<WriteTaskInput> = {}) {
    const { api, input } = setup({ plan: listPlan, ...overrides });
    api.addTable("ks", "lists", [["user", scalar("text")], ["l", { kind: "list", element: scalar("int"), frozen: false }]], ["user"]);
    return { api, input };
  }

  it("is recognized by its non-frozen list column only", () => {
    expect(writesList(listPlan)).toBe(true);
    expect(writesList({ columns: [{ name: "l", type: { kind: "list", element: scalar("int"), frozen: true } }] })).toBe(false);
    expect(writesList({ columns: [{ name: "s", type: { kind: "set", element: scalar("int"), frozen: false } }] })).toBe(false);
    expect(writesList({ columns: [{ name: "m", type: { kind: "map", key: scalar("int"), value: scalar("int"), frozen: false } }] })).toBe(false);
    expect(writesList(plan)).toBe(false);
  });

  it("goes to the driver as not idempotent, each row reserving its timestamp slots", async () => {
    const { api, input } = listSetup();
    await writeRows(input([batch([["a", [1, 2]], ["b", [3]]], listSchema)]));
    expect(api.executes.map((e) => e.options.idempotent)).toEqual([false, false]);
    const [first, second] = api.executes.map((e) => e.options.timestamp!);
    expect(second! - first!).toBeGreaterThanOrEqual(TIMESTAMP_SLOTS);
  });

  it("retries after a possibly applied attempt with the next timestamp, after a refused one with the same", async () => {
    const { api, input } = listSetup({ concurrency: 1, rowsPerBatch: 1 });
    api.fail = (_q, call) => {
      if (call === 0) throw responseError(codes.writeTimeout, "Operation timed out - received only 0 responses.");
      if (call === 1) throw responseError(codes.overloaded, "Overloaded");
      if (call === 2) throw noHostAvailable({ "127.0.0.1:9042": Object.assign(new Error("Socket was closed"), { isSocketError: true }) });
    };
    const result = await writeRows(input([batch([["a", [1, 2]]], listSchema)]));
    expect(result).toMatchObject({ rowsWritten: 1, retries: 3 });
    const stamps = api.executes.map((e) => e.options.timestamp!);
    expect(stamps.map((t) => t - stamps[0]!)).toEqual([0, 1, 1, 2]);
  });

  it("batches of one partition shift every statement's USING TIMESTAMP on a retry", async () => {
    const { api, input } = listSetup({ concurrency: 1 });
    api.fail = (_q, call) => {
      if (call === 0) throw responseError(codes.writeTimeout, "Operation timed out - received only 0 responses.");
    };
    await writeRows(input([batch([["a", [1]], ["a", [2]]], listSchema)]));
    expect(api.batches).toHaveLength(2);
    const stamps = api.batches.map((b) => b.statements.map((st) => st.params.at(-1) as bigint));
    expect(stamps[1]!.map((t, i) => t - stamps[0]![i]!)).toEqual([1n, 1n]);
    expect(api.batches.every((b) => b.options.idempotent === false)).toBe(true);
  });

  it("stops before a replay could reuse a timestamp: at most TIMESTAMP_SLOTS - 1 retries after possibly applied attempts", async () => {
    const { api, input } = listSetup({ maxRetries: 100, concurrency: 1, rowsPerBatch: 1 });
    api.fail = () => {
      throw responseError(codes.writeTimeout, "Operation timed out - received only 0 responses.");
    };
    const error = await rejection(writeRows(input([batch([["a", [1]]], listSchema)])));
    expect(api.executes).toHaveLength(TIMESTAMP_SLOTS);
    expect(error.errorClass).toBe("CASSANDRA_TIMEOUT");
    expect(error.message).toContain("list column");
  });
});
