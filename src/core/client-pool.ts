/**
 * Database clients are expensive (sockets, TLS, topology discovery), and every request
 * carries its own options, so connectors keep one client per distinct connection config.
 *
 * A long-running service sees new configs forever (every rotated session token is one),
 * so the pool is bounded: a client unused for `idleMillis` is closed, and past `maxSize`
 * clients the least recently used idle ones are closed. A client is handed out as a
 * lease, and a leased client is never closed by eviction (a call in flight keeps using
 * it); the pool may then hold more than `maxSize` until leases end.
 */
import type { Clock } from "./clock.js";

export interface ClientPoolLimits {
  /** Clients kept at most while none of the extra ones is leased. */
  maxSize?: number;
  /** An unleased client unused this long is closed. */
  idleMillis?: number;
  /** Time source (a fake in tests). */
  clock?: Pick<Clock, "now">;
  /** How often idle clients are looked for without any call arriving; 0 disables the timer. */
  sweepMillis?: number;
}

export const DEFAULT_MAX_CLIENTS = 32;
export const DEFAULT_IDLE_MILLIS = 10 * 60_000;

/** A client lent to one call; `release()` once the call no longer uses it (repeat calls are harmless). */
export interface Lease<Api> {
  readonly api: Api;
  release(): void;
}

interface Entry<Api> {
  api: Api;
  leases: number;
  lastUsed: number;
}

export class ClientPool<Config, Api> {
  /** In least- to most-recently-used order (a Map keeps insertion order; use re-inserts). */
  private readonly entries = new Map<string, Entry<Api>>();
  private readonly closing = new Set<Promise<void>>();
  private readonly maxSize: number;
  private readonly idleMillis: number;
  private readonly clock: Pick<Clock, "now">;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly create: (config: Config) => Api,
    /** Same key, same client: must cover everything that changes the connection (and a credentials hash). */
    private readonly keyOf: (config: Config) => string,
    private readonly close: (api: Api) => void | Promise<void>,
    limits: ClientPoolLimits = {},
  ) {
    this.maxSize = Math.max(1, limits.maxSize ?? DEFAULT_MAX_CLIENTS);
    this.idleMillis = limits.idleMillis ?? DEFAULT_IDLE_MILLIS;
    this.clock = limits.clock ?? { now: () => Date.now() };
    const sweepMillis = limits.sweepMillis ?? Math.min(60_000, Math.max(1_000, this.idleMillis / 2));
    if (sweepMillis > 0) {
      // A service that stops getting calls for a config would otherwise keep its client until the next call.
      this.timer = setInterval(() => this.sweep(), sweepMillis);
      this.timer.unref();
    }
  }

  /** Lends the client for `config`, creating it if needed; release the lease when the call ends. */
  acquire(config: Config): Lease<Api> {
    const key = this.keyOf(config);
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    else entry = { api: this.create(config), leases: 0, lastUsed: this.clock.now() };
    entry.leases++;
    entry.lastUsed = this.clock.now();
    this.entries.set(key, entry);
    this.sweep();
    const held = entry;
    let released = false;
    return {
      api: held.api,
      release: () => {
        if (released) return;
        released = true;
        held.leases--;
        held.lastUsed = this.clock.now();
        this.sweep();
      },
    };
  }

  /** Runs `fn` with a leased client, released when the promise settles. */
  async use<T>(config: Config, fn: (api: Api) => Promise<T>): Promise<T> {
    const lease = this.acquire(config);
    try {
      return await fn(lease.api);
    } finally {
      lease.release();
    }
  }

  /**
   * Streams what `make` yields with a leased client, released when iteration ends
   * (finished, failed or returned early). The lease is taken at the first `next()`.
   */
  async *stream<T>(config: Config, make: (api: Api) => AsyncIterable<T>): AsyncGenerator<T> {
    const lease = this.acquire(config);
    try {
      yield* make(lease.api);
    } finally {
      lease.release();
    }
  }

  /** Closes unleased clients idle for `idleMillis`, then least recently used unleased ones beyond `maxSize`. */
  sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) {
      if (entry.leases === 0 && now - entry.lastUsed >= this.idleMillis) this.evict(key, entry);
    }
    if (this.entries.size <= this.maxSize) return;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxSize) break;
      if (entry.leases === 0) this.evict(key, entry);
    }
  }

  private evict(key: string, entry: Entry<Api>): void {
    this.entries.delete(key);
    const closing: Promise<void> = (async () => this.close(entry.api))()
      .catch(() => undefined)
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Leases currently held, over all clients. */
  get leased(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.leases;
    return total;
  }

  async closeAll(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const [key, entry] of [...this.entries]) this.evict(key, entry);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }
}
