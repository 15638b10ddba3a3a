/**
 * The CQL fault plug-in between the real cassandra-driver and the real local Cassandra 5:
 * the driver must decode every injected error as the error a node sends (code, consistency,
 * received/blockfor, write type), the applied/not-applied variants must differ in the table,
 * and every connection must go through the relay (the driver discovers the node's own
 * address from system.local: the test checks that it never bypasses the proxy).
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import cassandra from "cassandra-driver";
import { startFaultRelay, type FaultRelay } from "../support/fault-proxy/relay.js";
import { cqlFaults, type CqlFaults } from "../support/fault-proxy/cql-faults.js";
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
