import { describe, expect, it } from "vitest";
import { FakeClock } from "../../tests/support/fake-clock.js";
import { ClientPool, type ClientPoolLimits } from "./client-pool.js";

interface FakeClient {
  key: string;
  closed: boolean;
}

function setup(limits: ClientPoolLimits = {}) {
  const clock = new FakeClock();
  const created: FakeClient[] = [];
  const closed: string[] = [];
  const pool = new ClientPool<string, FakeClient>(
    (key) => {
      const client = { key, closed: false };
      created.push(client);
      return client;
    },
    (key) => key,
    (client) => {
      client.closed = true;
      closed.push(client.key);
    },
    { clock, sweepMillis: 0, ...limits },
  );
  return { clock, created, closed, pool };
}

/** Lets eviction's close calls (started without waiting) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("ClientPool", () => {
  it("lends the same client for the same config and a new one for another", () => {
    const { pool, created } = setup();
    const a1 = pool.acquire("a");
    const a2 = pool.acquire("a");
    const b = pool.acquire("b");
    expect(a1.api).toBe(a2.api);
    expect(b.api).not.toBe(a1.api);
    expect(created.map((c) => c.key)).toEqual(["a", "b"]);
    expect(pool.leased).toBe(3);
    a1.release();
    a1.release(); // a second release of one lease changes nothing
    expect(pool.leased).toBe(2);
  });

  it("closes a client left unused for the idle timeout", async () => {
    const { pool, clock, closed } = setup({ idleMillis: 60_000 });
    pool.acquire("old-token").release();
    clock.time += 59_999;
    pool.acquire("new-token").release();
    await settle();
    expect(closed).toEqual([]);
    clock.time += 1;
    pool.sweep();
    await settle();
    expect(closed).toEqual(["old-token"]);
    expect(pool.size).toBe(1);
  });

  it("never closes a client a call in flight holds, however long the call takes", async () => {
    const { pool, clock, closed, created } = setup({ idleMillis: 1_000, maxSize: 1 });
    const longRead = pool.acquire("a");
    clock.time += 10 * 60_000;
    // Other configs come and go; the pool is over its size, but "a" is leased.
    for (const key of ["b", "c", "d"]) pool.acquire(key).release();
    await settle();
    expect(created[0]!.closed).toBe(false);
    expect(closed).toEqual(["b", "c", "d"]);
    expect(pool.size).toBe(1);
    // Still usable, and the same client is lent again while the first lease is held.
    expect(pool.acquire("a").api).toBe(longRead.api);
    longRead.release();
    clock.time += 1_000;
    pool.sweep();
    await settle();
    // One lease of "a" is still held (the second acquire above), so it stays.
    expect(created[0]!.closed).toBe(false);
  });

  it("closes the least recently used idle clients beyond maxSize", async () => {
    const { pool, closed } = setup({ maxSize: 2 });
    pool.acquire("a").release();
    pool.acquire("b").release();
    pool.acquire("a").release(); // "a" is now the most recently used
    pool.acquire("c").release();
    await settle();
    expect(closed).toEqual(["b"]);
    expect(pool.size).toBe(2);
    pool.acquire("d").release();
    await settle();
    expect(closed).toEqual(["b", "a"]);
  });

  it("creates a fresh client for a config whose client was evicted", async () => {
    const { pool, clock, created } = setup({ idleMillis: 1_000 });
    const first = pool.acquire("a");
    first.release();
    clock.time += 1_000;
    pool.sweep();
    await settle();
    const second = pool.acquire("a");
    expect(second.api).not.toBe(first.api);
    expect(first.api.closed).toBe(true);
    expect(second.api.closed).toBe(false);
    expect(created).toHaveLength(2);
  });

  it("releases the lease when use() settles and when a stream ends early or fails", async () => {
    const { pool } = setup();
    await pool.use("a", async () => "done");
    await expect(
      pool.use("a", async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(pool.leased).toBe(0);

    async function* rows() {
      yield 1;
      yield 2;
      yield 3;
    }
    const seen: number[] = [];
    for await (const row of pool.stream("a", rows)) {
      expect(pool.leased).toBe(1);
      seen.push(row);
      if (row === 2) break;
    }
    expect(seen).toEqual([1, 2]);
    expect(pool.leased).toBe(0);

    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error("page failed");
    }
    await expect(
      (async () => {
        for await (const row of pool.stream("a", failing)) void row;
      })(),
    ).rejects.toThrow("page failed");
    expect(pool.leased).toBe(0);
  });

  it("sweeps idle clients on a timer when no call arrives", async () => {
    const closed: string[] = [];
    const pool = new ClientPool<string, string>(
      (key) => key,
      (key) => key,
      (key) => void closed.push(key),
      { idleMillis: 20, sweepMillis: 10 },
    );
    pool.acquire("a").release();
    const deadline = Date.now() + 5_000;
    while (closed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toEqual(["a"]);
    await pool.closeAll();
  });

  it("closes every client on closeAll, waiting for slow closes", async () => {
    let finished = 0;
    const pool = new ClientPool<string, string>(
      (key) => key,
      (key) => key,
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        finished++;
      },
      { sweepMillis: 0 },
    );
    pool.acquire("a");
    pool.acquire("b").release();
    await pool.closeAll();
    expect(finished).toBe(2);
    expect(pool.size).toBe(0);
  });
});
