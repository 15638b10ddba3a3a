/**
 * The CQL fault plug-in between the real cassandra-driver and the real local Cassandra 5:
 * the driver must decode every injected error as the error a node sends (code, consistency,
 * received/blockfor, write type), the applied/not-applied variants must differ in the table,
 * and every connection must go through the relay (the driver discovers the node's own
 * address from system.local: the test checks that it never bypasses the proxy).
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import cassandra from "cassandra-driver";
import { Field, Int32, Int64, List, Schema, type RecordBatch } from "apache-arrow";
import { startFaultRelay, type FaultRelay } from "../support/fault-proxy/relay.js";
import { cqlFaults, type CqlFaults } from "../support/fault-proxy/cql-faults.js";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import { readValue, type PlainValue } from "../../src/arrow/values.js";
import type { Connector, WriteResult } from "../../src/core/connector.js";
import { createLogger, silentLogger } from "../../src/core/logger.js";
import { createCassandraConnector } from "../../src/backends/cassandra/connector.js";
import { rejection as conduitRejection } from "../support/conduit-error.js";
import "../support/provided-context.js";

const info = inject("cassandra");
const KS = `it_cqlfaults_${Date.now().toString(36)}`;
const { responseErrorCodes: codes, consistencies } = cassandra.types;

let direct: cassandra.Client;
let relay: FaultRelay;
let faults: CqlFaults;
let viaProxy: cassandra.Client;

function client(port: number, extra: Partial<cassandra.ClientOptions> = {}): cassandra.Client {
  return new cassandra.Client({
    contactPoints: [`127.0.0.1:${port}`],
    localDataCenter: info.localDataCenter,
    credentials: { username: info.username, password: info.password },
    // No driver retries to a "next host" and no reconnection delay in the way of what is measured.
    policies: { retry: new cassandra.policies.retry.FallthroughRetryPolicy() },
    ...extra,
  });
}

async function count(table: string): Promise<number> {
  const result = await direct.execute(`SELECT count(*) FROM ${KS}.${table}`);
  return Number(result.first().get(0));
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error("expected the request to fail");
}

beforeAll(async () => {
  direct = client(info.port);
  await direct.connect();
  await direct.execute(`CREATE KEYSPACE ${KS} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await direct.execute(`CREATE TABLE ${KS}.kv (k int PRIMARY KEY, v text)`);
  await direct.execute(`CREATE TABLE ${KS}.lists (k int PRIMARY KEY, l list<int>)`);
  faults = cqlFaults();
  relay = await startFaultRelay({ target: { host: info.host, port: info.port }, faults, maxSeconds: 300 });
  viaProxy = client(relay.port);
  await viaProxy.connect();
});

afterAll(async () => {
  await viaProxy?.shutdown();
  await relay?.close();
  await direct?.execute(`DROP KEYSPACE IF EXISTS ${KS}`).catch(() => undefined);
  await direct?.shutdown();
});

afterEach(() => faults.configure({ rules: [] }));

describe("CQL faults through the relay", () => {
  it("carries every connection of the driver, speaking protocol v4 uncompressed", async () => {
    const before = faults.stats();
    await viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [0, "zero"], { prepare: true });
    const stats = faults.stats();
    // The driver offers DSE v2 first; Cassandra refuses it and every connection settles on v4.
    expect(stats.negotiated_v4).toBeGreaterThanOrEqual(1);
    expect(Object.keys(stats).filter((k) => k.startsWith("negotiated_"))).toEqual(["negotiated_v4"]);
    expect(stats.unparsed_connections ?? 0).toBe(0);
    expect(stats.requests_EXECUTE! - (before.requests_EXECUTE ?? 0)).toBe(1);
    // The node's own address (127.0.0.1 at the real port) must not replace the contact point.
    const hosts = viaProxy.hosts.values().map((h) => h.address);
    expect(hosts).toEqual([`127.0.0.1:${relay.port}`]);
    expect(relay.connectionStats().open).toBe(stats.open_connections);
  });

  it("write_timeout: the driver sees a WriteTimeout with the request's consistency, and the row WAS written", async () => {
    faults.configure({ rules: [{ fault: "write_timeout", match: `${KS}.kv`, max: 1 }] });
    const error = await rejectionOf(
      viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [1, "one"], { prepare: true, consistency: consistencies.localQuorum }),
    );
    expect(error.name).toBe("ResponseError");
    expect(error.code).toBe(codes.writeTimeout);
    expect(error.consistencies).toBe(consistencies.localQuorum);
    expect(error.received).toBe(0);
    expect(error.blockFor).toBe(1);
    expect(error.writeType).toBe("SIMPLE");
    expect(faults.stats().write_timeout).toBe(1);
    expect((await direct.execute(`SELECT v FROM ${KS}.kv WHERE k = 1`)).first()?.get("v")).toBe("one");
  });

  it("write_timeout_not_applied: the same error, and the row was NOT written", async () => {
    faults.configure({ rules: [{ fault: "write_timeout_not_applied", match: `${KS}.kv`, max: 1 }] });
    const error = await rejectionOf(viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [2, "two"], { prepare: true }));
    expect(error.code).toBe(codes.writeTimeout);
    expect(error.writeType).toBe("SIMPLE");
    expect((await direct.execute(`SELECT v FROM ${KS}.kv WHERE k = 2`)).rowLength).toBe(0);
  });

  it("an UNLOGGED batch gets the write type UNLOGGED_BATCH", async () => {
    faults.configure({ rules: [{ fault: "write_timeout_not_applied", match: `${KS}.kv`, max: 1 }] });
    const q = `INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`;
    const error = await rejectionOf(viaProxy.batch([{ query: q, params: [3, "a"] }, { query: q, params: [3, "b"] }], { prepare: true, logged: false }));
    expect(error.code).toBe(codes.writeTimeout);
    expect(error.writeType).toBe("UNLOGGED_BATCH");
  });

  it("unavailable, overloaded and read_timeout decode as the node's errors and write nothing", async () => {
    faults.configure({
      rules: [
        { fault: "unavailable", match: `${KS}.kv`, max: 1 },
        { fault: "overloaded", match: `${KS}.kv`, max: 1 },
        { fault: "read_timeout", match: `${KS}.kv`, max: 1 },
      ],
    });
    const insert = (k: number) => viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [k, "x"], { prepare: true, consistency: consistencies.quorum });
    const unavailable = await rejectionOf(insert(10));
    expect(unavailable.code).toBe(codes.unavailableException);
    expect(unavailable.consistencies).toBe(consistencies.quorum);
    expect(unavailable.required).toBe(1);
    expect(unavailable.alive).toBe(0);
    const overloaded = await rejectionOf(insert(11));
    expect(overloaded.code).toBe(codes.overloaded);
    const readTimeout = await rejectionOf(insert(12));
    expect(readTimeout.code).toBe(codes.readTimeout);
    expect(readTimeout.isDataPresent).toBe(0);
    const stats = faults.stats();
    expect([stats.unavailable, stats.overloaded, stats.read_timeout]).toEqual([1, 1, 1]);
    const rows = await direct.execute(`SELECT k FROM ${KS}.kv WHERE k IN (10, 11, 12)`);
    expect(rows.rowLength).toBe(0);
  });

  it("every/after/max pick exactly the requests they name", async () => {
    faults.configure({ rules: [{ fault: "overloaded", match: `${KS}.kv`, every: 3, after: 2, max: 2 }] });
    const outcomes: string[] = [];
    for (let k = 100; k < 112; k++) {
      outcomes.push(
        await viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [k, "x"], { prepare: true }).then(
          () => "ok",
          () => "err",
        ),
      );
    }
    // Matches 1-2 skipped, then every third (5th, 8th), at most twice.
    expect(outcomes.map((o, i) => (o === "err" ? i + 1 : 0)).filter((n) => n > 0)).toEqual([5, 8]);
    expect(await count("kv")).toBeGreaterThanOrEqual(10);
  });

  it("drop_unsent and drop_before_answer: both lose the answer; only the second applied the write", async () => {
    const probe = client(relay.port, { pooling: { heartBeatInterval: 0 } });
    await probe.connect();
    try {
      const insert = (k: number) => probe.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [k, "dropped"], { prepare: true });
      await insert(200); // prepares outside the faults
      faults.configure({ rules: [{ fault: "drop_unsent", match: `${KS}.kv`, max: 1 }] });
      const unsent = await rejectionOf(insert(201));
      expect(unsent.message).toMatch(/closed|socket|ECONNRESET|not available|All host/i);
      faults.configure({ rules: [] });
      // The pool reconnects after the first drop; wait until a request passes again.
      for (let i = 0; i < 50 && (await insert(200).then(() => false, () => true)); i++) await new Promise((r) => setTimeout(r, 200));
      faults.configure({ rules: [{ fault: "drop_before_answer", match: `${KS}.kv`, max: 1 }] });
      await rejectionOf(insert(202));
      const stats = faults.stats();
      expect(stats.drop_unsent).toBe(1);
      expect(stats.drop_before_answer).toBe(1);
      expect((await direct.execute(`SELECT k FROM ${KS}.kv WHERE k = 201`)).rowLength).toBe(0);
      expect((await direct.execute(`SELECT k FROM ${KS}.kv WHERE k = 202`)).rowLength).toBe(1);
    } finally {
      await probe.shutdown();
    }
  });

  it("pause holds every frame for its time, then lets them through in order", async () => {
    faults.configure({ rules: [{ fault: "pause", match: `${KS}.kv`, ms: 1500, max: 1 }] });
    const started = Date.now();
    await viaProxy.execute(`INSERT INTO ${KS}.kv (k, v) VALUES (?, ?)`, [300, "paused"], { prepare: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(faults.paused).toBe(false);
    expect(faults.stats().pause).toBe(1);
  });

  it("replaying an applied list INSERT with the same write timestamp appends the elements again", async () => {
    // Why a writer may not retry every statement blindly: list cells are keyed by time UUIDs
    // the coordinator makes, so the replay's tombstone (timestamp - 1) misses the first copy.
    faults.configure({ rules: [{ fault: "write_timeout", match: `${KS}.lists`, max: 1 }] });
    const insert = () => viaProxy.execute(`INSERT INTO ${KS}.lists (k, l) VALUES (?, ?)`, [1, [1, 2, 3]], { prepare: true, timestamp: 1_700_000_000_000_000 });
    await rejectionOf(insert());
    await insert();
    const list = (await direct.execute(`SELECT l FROM ${KS}.lists WHERE k = 1`)).first()?.get("l") as number[];
    expect(list).toEqual([1, 2, 3, 1, 2, 3]);
  });
});

// ---------------------------------------------------------------------------------------
// The product's connector through the relay: what the writer and reader make of the faults
// ---------------------------------------------------------------------------------------

describe("the Cassandra connector through the relay", () => {
  let connector: Connector;
  const fresh = () => new AbortController().signal;
  const opts = (table: string, extra: Record<string, string> = {}): Record<string, string> => ({
    host: "127.0.0.1",
    port: String(relay.port),
    keyspace: KS,
    table,
    username: info.username,
    password: info.password,
    ...extra,
  });

  beforeAll(async () => {
    connector = createCassandraConnector(process.env.DEBUG_CONNECTOR ? createLogger("debug", {}, (l) => process.stderr.write(`${Date.now() % 100000} ${l}\n`)) : silentLogger);
    await direct.execute(`CREATE TABLE ${KS}.coll (k bigint PRIMARY KEY, l list<int>, s set<int>, fl frozen<list<int>>)`);
    await direct.execute(`CREATE TABLE ${KS}.rows (p int, id bigint, v int, PRIMARY KEY (p, id))`);
  });
  afterAll(async () => {
    await connector?.close();
  });

  /** Faults injected since `before` (the relay's counts run over the whole file). */
  const since = (before: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(faults.stats()).map(([k, v]) => [k, v - (before[k] ?? 0)]));

  function toBatch(schema: Schema, rows: PlainValue[][]): RecordBatch {
    const builder = new BatchBuilder(schema);
    for (const row of rows) builder.appendRow(row);
    return builder.flush();
  }

  /** PlanWrite, then one Write per partition concurrently, as Spark does. */
  async function write(options: Record<string, string>, schema: Schema, partitions: PlainValue[][][]): Promise<WriteResult[]> {
    const writePlan = await connector.planWrite({ options, schema, overwrite: false, streaming: false, signal: fresh() });
    return Promise.all(
      partitions.map((rows, partitionId) =>
        connector.write({
          options,
          schema,
          writePlan,
          task: { partitionId, taskAttemptId: partitionId, batchId: 0 },
          batches: (async function* () {
            for (let i = 0; i < rows.length; i += 500) yield toBatch(schema, rows.slice(i, i + 500));
          })(),
          signal: fresh(),
        }),
      ),
    );
  }

  const collSchema = new Schema([
    new Field("k", new Int64(), false),
    new Field("l", new List(new Field("item", new Int32(), true)), true),
    new Field("s", new List(new Field("item", new Int32(), true)), true),
    new Field("fl", new List(new Field("item", new Int32(), true)), true),
  ]);

  it("a later write timestamp replaces a list's elements written by an earlier attempt", async () => {
    // What the writer's retry of a list statement relies on: the retry's overwrite tombstone (its timestamp - 1) covers the first attempt.
    const ts = 1_700_000_000_000_000;
    await direct.execute(`INSERT INTO ${KS}.lists (k, l) VALUES (?, ?)`, [2, [1, 2, 3]], { prepare: true, timestamp: ts });
    await direct.execute(`INSERT INTO ${KS}.lists (k, l) VALUES (?, ?)`, [2, [1, 2, 3]], { prepare: true, timestamp: ts + 1 });
    expect((await direct.execute(`SELECT l FROM ${KS}.lists WHERE k = 2`)).first()?.get("l")).toEqual([1, 2, 3]);
  });

  it("lists, sets and frozen lists written through applied write timeouts and dropped answers hold each element once", async () => {
    const before = faults.stats();
    faults.configure({
      seed: 5,
      rules: [
        // Random, not every Nth: a fixed rhythm can meet the same statement's retries again and again.
        // At 10% a row meets 8 timeouts in a row (its timestamp slots run out) about once in 10^5 runs;
        // at 20% with max_retries 5 one of 600 rows ran out of retries in about one run in 25.
        { fault: "write_timeout", match: `"${KS}"."coll"`, probability: 0.1 },
        { fault: "drop_after_answer", match: `"${KS}"."coll"`, after: 50, every: 150, max: 2 },
      ],
    });
    const rows = 600;
    const data = Array.from({ length: rows }, (_, i): PlainValue[] => [BigInt(i), [i, 7], [i, -1], [i, 9]]);
    const results = await write(opts("coll", { max_retries: "10" }), collSchema, [data.slice(0, rows / 2), data.slice(rows / 2)]);
    const stats = since(before);
    expect(stats.write_timeout).toBeGreaterThan(25);
    expect(stats.drop_after_answer).toBe(2);
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(rows);
    expect(results.reduce((n, r) => n + r.retries, 0)).toBeGreaterThan(25);
    const stored = await direct.execute(`SELECT k, l, s, fl FROM ${KS}.coll`, [], { fetchSize: 10_000 });
    const got = stored.rows.map((r) => [Number(r.get("k")), r.get("l"), [...(r.get("s") as number[])].sort((a, b) => a - b), r.get("fl")]).sort((a, b) => (a[0] as number) - (b[0] as number));
    expect(got).toEqual(Array.from({ length: rows }, (_, i) => [i, [i, 7], [-1, i], [i, 9]]));
  });

  const rowSchema = new Schema([new Field("p", new Int32(), false), new Field("id", new Int64(), false), new Field("v", new Int32(), true)]);

  it("connections dropped before and after Cassandra answered, and unsent, fail no task at concurrency 100", async () => {
    const before = faults.stats();
    faults.configure({
      rules: [
        { fault: "drop_unsent", match: `"${KS}"."rows"`, after: 100, every: 600, max: 2 },
        { fault: "drop_before_answer", match: `"${KS}"."rows"`, after: 300, every: 600, max: 2 },
        { fault: "drop_after_answer", match: `"${KS}"."rows"`, after: 500, every: 600, max: 2 },
      ],
    });
    const rows = 6_000;
    const data = Array.from({ length: rows }, (_, i): PlainValue[] => [Math.floor(i / 3), BigInt(i), i]);
    const results = await write(opts("rows"), rowSchema, [data.slice(0, rows / 2), data.slice(rows / 2)]);
    const stats = since(before);
    expect([stats.drop_unsent, stats.drop_before_answer, stats.drop_after_answer]).toEqual([2, 2, 2]);
    expect(results.reduce((n, r) => n + r.rowsWritten, 0)).toBe(rows);
    expect(await count("rows")).toBe(rows);
  });

  it("a node stalled past the request timeout: the write waits for it and completes", async () => {
    await direct.execute(`TRUNCATE ${KS}.rows`);
    const before = faults.stats();
    faults.configure({ rules: [{ fault: "pause", match: `"${KS}"."rows"`, after: 300, ms: 3_500, max: 1 }] });
    const rows = 3_000;
    const data = Array.from({ length: rows }, (_, i): PlainValue[] => [Math.floor(i / 3), BigInt(i), i]);
    const started = Date.now();
    const results = await write(opts("rows", { request_timeout_ms: "1000" }), rowSchema, [data]);
    expect(since(before).pause).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(results[0]!.rowsWritten).toBe(rows);
    expect(await count("rows")).toBe(rows);
  });

  it("Overloaded on every write fails in bounded time as CASSANDRA_OVERLOADED, naming the table and 'concurrency'", async () => {
    faults.configure({ rules: [{ fault: "overloaded", match: `"${KS}"."rows"` }] });
    const started = Date.now();
    const error = await conduitRejection(write(opts("rows", { max_retries: "2" }), rowSchema, [[[1, 1n, 1]]]));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error.errorClass).toBe("CASSANDRA_OVERLOADED");
    expect(error.message).toContain(`${KS}.rows`);
    expect(error.message).toContain("'concurrency'");
    expect(error.message).toContain("after 2 retries");
    expect(error.message).not.toContain("'host' and 'port'");
  });

  it("a read through Overloaded pages and a dropped connection returns every row exactly once", async () => {
    await direct.execute(`TRUNCATE ${KS}.rows`);
    faults.configure({ rules: [] });
    const rows = 4_000;
    const data = Array.from({ length: rows }, (_, i): PlainValue[] => [Math.floor(i / 3), BigInt(i), i]);
    await write(opts("rows"), rowSchema, [data]);
    const before = faults.stats();
    faults.configure({
      rules: [
        { fault: "overloaded", match: `FROM "${KS}"."rows"`, every: 3 },
        { fault: "drop_before_answer", match: `FROM "${KS}"."rows"`, after: 4, every: 7, max: 2 },
      ],
    });
    const options = opts("rows", { read_page_size: "500", read_partitions: "3" });
    const schema = rowSchema;
    const partitions = await connector.planRead({ options, schema, signal: fresh() });
    const ids: bigint[] = [];
    for (const partition of partitions) {
      for await (const batch of connector.read({ options, schema, partition, signal: fresh() })) {
        for (let i = 0; i < batch.numRows; i++) ids.push(readValue(batch.getChild("id")!, i) as bigint);
      }
    }
    const stats = since(before);
    expect(stats.overloaded).toBeGreaterThan(0);
    expect(stats.drop_before_answer).toBe(2);
    expect(ids).toHaveLength(rows);
    expect(new Set(ids).size).toBe(rows);
  });

  it("a streaming read through Overloaded and dropped answers has the same offsets and rows as a clean run", async () => {
    await direct.execute(`TRUNCATE ${KS}.rows`);
    faults.configure({ rules: [] });
    const rows = 3_000;
    await write(opts("rows"), rowSchema, [Array.from({ length: rows }, (_, i): PlainValue[] => [i % 7, BigInt(i), i])]);
    const options = opts("rows", { starting_position: "earliest", stream_column: "id", max_rows_per_trigger: "700", read_page_size: "400" });
    const schema = rowSchema;
    /** Micro-batches as Spark runs them, until no row is new: each batch's end offset and ids. */
    const run = async () => {
      const ends: string[] = [];
      const ids: bigint[] = [];
      let start = await connector.stream!.initialOffset({ options, schema, signal: fresh() });
      for (;;) {
        const end = await connector.stream!.latestOffset({ options, schema, start, maxRecords: 700, endBound: undefined, catchUp: false, signal: fresh() });
        if (end === start) return { ends, ids };
        for (const partition of await connector.stream!.planStreamRead({ options, schema, start, end, signal: fresh() })) {
          for await (const batch of connector.read({ options, schema, partition, signal: fresh() })) {
            for (let i = 0; i < batch.numRows; i++) ids.push(readValue(batch.getChild("id")!, i) as bigint);
          }
        }
        ends.push(end);
        start = end;
      }
    };
    const clean = await run();
    const before = faults.stats();
    faults.configure({
      rules: [
        { fault: "overloaded", match: `FROM "${KS}"."rows"`, every: 3 },
        { fault: "drop_before_answer", match: `FROM "${KS}"."rows"`, after: 5, every: 11, max: 2 },
      ],
    });
    const faulty = await run();
    const stats = since(before);
    expect(stats.overloaded).toBeGreaterThan(5);
    expect(stats.drop_before_answer).toBe(2);
    expect(clean.ends.length).toBe(5);
    expect(faulty.ends).toEqual(clean.ends);
    expect(faulty.ids).toHaveLength(rows);
    expect([...faulty.ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: rows }, (_, i) => BigInt(i)));
  });
});
