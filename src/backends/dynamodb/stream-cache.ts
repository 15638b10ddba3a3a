/**
 * Records that `latestOffset` read ahead on the driver, kept for the task that reads the
 * same partition next, so a micro-batch costs one pass over the stream instead of two.
 *
 * Only a shortcut: a task that finds nothing here (another service process, an expired or
 * evicted entry, a replayed micro-batch) reads the records from DynamoDB Streams, which
 * gives the same records. Stream records never change, so a cached run is never stale.
 * Memory is bounded by `maxBytes` (DynamoDB's own SizeBytes of each record) and entries
 * expire after `ttlMillis`; a run is taken (removed) by the read that uses it.
 */
import type { _Record } from "@aws-sdk/client-dynamodb-streams";
import { systemClock, type Clock } from "../../core/clock.js";

export const DEFAULT_CACHE_BYTES = 128 * 1024 * 1024;
export const DEFAULT_CACHE_TTL_MS = 5 * 60_000;

interface Entry {
  records: _Record[];
  bytes: number;
  expires: number;
}

/** Where a run starts: after a sequence number, or at the shard's oldest record. */
export function runKey(streamArn: string, shardId: string, after: string | null): string {
  return `${streamArn}\u0000${shardId}\u0000${after ?? "TRIM_HORIZON"}`;
}

export function recordBytes(record: _Record): number {
  // SizeBytes is the record's own size in DynamoDB; the objects it becomes take a few times more.
  return 4 * (record.dynamodb?.SizeBytes ?? 1024) + 256;
}

export class StreamRecordCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<void>>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = DEFAULT_CACHE_BYTES,
    private readonly ttlMillis = DEFAULT_CACHE_TTL_MS,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The largest run worth collecting: half the cache, so one run never empties it. */
  get maxRunBytes(): number {
    return this.maxBytes / 2;
  }

  /** Keeps a run of consecutive records (oldest first) that follows `after` in a shard; a run larger than the cache is not kept. */
  put(key: string, records: _Record[]): void {
    if (records.length === 0 || this.maxBytes <= 0) return;
    const bytes = records.reduce((sum, r) => sum + recordBytes(r), 0);
    if (bytes > this.maxRunBytes) return;
    this.remove(key);
    this.evict(bytes);
    this.entries.set(key, { records, bytes, expires: this.clock.now() + this.ttlMillis });
    this.bytes += bytes;
  }

  /** The run that starts at `key`, left in place (a read-ahead that extends it puts it back longer). */
  peek(key: string): _Record[] | undefined {
    const entry = this.entries.get(key);
    return entry && entry.expires > this.clock.now() ? entry.records : undefined;
  }

  /** Marks a background read that will put the run at `key`, so a read-ahead from there waits for it instead of reading the same records. */
  track(key: string, work: Promise<void>): void {
    const settled = work.catch(() => undefined).finally(() => {
      if (this.inflight.get(key) === settled) this.inflight.delete(key);
    });
    this.inflight.set(key, settled);
  }

  /** Waits for a background read of the run at `key`, if one is in flight. */
  async settled(key: string): Promise<void> {
    await this.inflight.get(key);
  }

  isTracked(key: string): boolean {
    return this.inflight.has(key);
  }

  /** Removes and returns the run that starts at `key`, if there is a fresh one. */
  take(key: string): _Record[] | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.remove(key);
    return entry.expires > this.clock.now() ? entry.records : undefined;
  }

  get size(): { runs: number; bytes: number } {
    return { runs: this.entries.size, bytes: this.bytes };
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  /** Drops expired runs, then the oldest ones, until `incoming` more bytes fit. */
  private evict(incoming: number): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) if (entry.expires <= now) this.remove(key);
    for (const key of this.entries.keys()) {
      if (this.bytes + incoming <= this.maxBytes) break;
      this.remove(key);
    }
  }
}
