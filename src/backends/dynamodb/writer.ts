/**
 * Writes one Spark task's rows with BatchWriteItem.
 *
 * - Rows become PutRequests. A null column is omitted rather than written as a NULL
 *   attribute (a put replaces the whole item, so the attribute is simply absent). A row
 *   whose delete-flag value equals `delete_flag_value` becomes a DeleteRequest for its
 *   key. The delete-flag column itself is never written as an attribute, in either case.
 * - 25 items a request, up to `write_concurrency` requests in flight. The next Arrow batch
 *   is not pulled while that many requests are queued, so memory stays bounded by
 *   concurrency x 25 items plus one Arrow batch.
 * - Two rows with the same key in one task: the later row wins. A request never holds a
 *   key twice (DynamoDB rejects that), and a row whose key is in a request still in flight
 *   waits for that request (including its retries) before it is queued, so the order of
 *   the task's rows is the order DynamoDB applies them in.
 * - UnprocessedItems and throttling are retried with exponential backoff and full jitter
 *   until written or `max_retry_seconds` has passed (then WRITE_RETRIES_EXHAUSTED).
 *
 * `rowsWritten`/`rowsDeleted` count items DynamoDB acknowledged; a row superseded by a later
 * row with the same key in the same task is counted in neither.
 */
import { setMaxListeners } from "node:events";
import type { WriteRequest } from "@aws-sdk/client-dynamodb";
import { Type, type RecordBatch, type Vector } from "apache-arrow";
import type { WriteResult } from "../../core/connector.js";
import { ConduitError, invalidArgument } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { readColumn } from "../../arrow/column-reader.js";
import { type PlainValue } from "../../arrow/values.js";
import type { Clock } from "../../core/clock.js";
import type { DynamoDbApi } from "./client.js";
import { cancelled, isAbort, isRetryable, translateDynamoDbError, type ErrorContext } from "./errors.js";
import type { KeyDef, WritePlan } from "./planner.js";
import { checkItemSize, plainToAttribute, type Item } from "./types.js";
import { isDeleteValue } from "../../core/delete-flag.js";

/** DynamoDB's limit of items per BatchWriteItem request. */
export const MAX_BATCH_ITEMS = 25;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 5_000;

export interface BatchWriterConfig {
  api: DynamoDbApi;
  table: string;
  concurrency: number;
  maxRetrySeconds: number;
  clock: Clock;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
}

interface Entry {
  key: string;
  request: WriteRequest;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export interface WriterStats {
  written: number;
  deleted: number;
  requests: number;
  retries: number;
  superseded: number;
}

/**
 * Queues put and delete requests by key and sends them in batches of 25 with bounded
 * concurrency. Safe for several concurrent producers (the truncate scan uses that).
 */
export class BatchWriter {
  readonly stats: WriterStats = { written: 0, deleted: 0, requests: 0, retries: 0, superseded: 0 };
  private readonly pending = new Map<string, Entry>();
  /** Keys of requests taken from `pending` and not yet finished, with their completion. */
  private readonly busyKeys = new Map<string, Promise<void>>();
  private readonly active = new Set<Promise<void>>();
  private readonly controller = new AbortController();
  private failure: unknown;
  private readonly onOuterAbort = () => this.controller.abort(this.config.signal.reason);

  constructor(private readonly config: BatchWriterConfig) {
    // Every request in flight listens on this signal; concurrency is bounded by design.
    setMaxListeners(config.concurrency + 16, this.controller.signal);
    if (config.signal.aborted) this.controller.abort(config.signal.reason);
    else config.signal.addEventListener("abort", this.onOuterAbort, { once: true });
  }

  /** Queues a put; resolves once the row is queued (may wait for capacity or for its key). */
  put(key: string, item: Item): Promise<void> {
    return this.add({ key, request: { PutRequest: { Item: item } } });
  }

  /** Queues a delete of the item with this key. */
  delete(key: string, keyItem: Item): Promise<void> {
    return this.add({ key, request: { DeleteRequest: { Key: keyItem } } });
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.config.signal.aborted) throw cancelled(`Writing to DynamoDB table '${this.config.table}'`, this.config.signal.reason);
  }

  private async add(entry: Entry): Promise<void> {
    this.throwIfFailed();
    for (let busy = this.busyKeys.get(entry.key); busy; busy = this.busyKeys.get(entry.key)) {
      await busy;
      this.throwIfFailed();
    }
    if (this.pending.has(entry.key)) this.stats.superseded++;
    this.pending.set(entry.key, entry);
    if (this.pending.size >= MAX_BATCH_ITEMS) await this.dispatch(this.take());
  }

  private take(): Entry[] {
    const chunk: Entry[] = [];
    for (const [key, entry] of this.pending) {
      chunk.push(entry);
      this.pending.delete(key);
      if (chunk.length === MAX_BATCH_ITEMS) break;
    }
    return chunk;
  }

  /** Reserves the chunk's keys, waits for a free slot, then starts the request. */
  private async dispatch(chunk: Entry[]): Promise<void> {
    const done = deferred();
    const release = () => {
      for (const entry of chunk) if (this.busyKeys.get(entry.key) === done.promise) this.busyKeys.delete(entry.key);
      done.resolve();
    };
    for (const entry of chunk) this.busyKeys.set(entry.key, done.promise);
    try {
      while (this.active.size >= this.config.concurrency) {
        await Promise.race(this.active);
        this.throwIfFailed();
      }
      this.throwIfFailed();
    } catch (error) {
      release();
      throw error;
    }
    const request: Promise<void> = this.send(chunk.map((e) => e.request))
      .catch((error: unknown) => {
        if (this.failure === undefined) this.failure = error;
        this.controller.abort();
      })
      .finally(() => {
        release();
        this.active.delete(request);
      });
    this.active.add(request);
  }

  /** Sends everything still queued and waits for every request; throws the first failure. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await this.dispatch(this.take());
    while (this.active.size > 0) await Promise.race(this.active);
    this.config.signal.removeEventListener("abort", this.onOuterAbort);
    this.throwIfFailed();
  }

  /** Stops in-flight requests after a failure elsewhere and waits for them to settle. */
  async abort(): Promise<void> {
    this.pending.clear();
    this.controller.abort();
    while (this.active.size > 0) await Promise.race(this.active);
    this.config.signal.removeEventListener("abort", this.onOuterAbort);
  }

  private async send(requests: WriteRequest[]): Promise<void> {
    const { api, table, clock, maxRetrySeconds } = this.config;
    const started = clock.now();
    const deadline = started + maxRetrySeconds * 1000;
    let remaining = requests;
    let attempt = 0;
    let lastError: unknown;
    for (;;) {
      this.stats.requests++;
      let unprocessed: WriteRequest[];
      try {
        const response = await api.batchWriteItem({ RequestItems: { [table]: remaining } }, this.controller.signal);
        // Every unprocessed item, whatever its key: with an ARN as table_name the answer may
        // key them by the table's name, and an item missed here would count as written.
        unprocessed = allUnprocessed(response.UnprocessedItems);
        lastError = undefined;
      } catch (error) {
        if (this.controller.signal.aborted || isAbort(error)) throw this.failure ?? cancelled(`Writing to DynamoDB table '${table}'`, error);
        if (!isRetryable(error)) throw translateDynamoDbError(error, this.config.errorContext);
        unprocessed = remaining;
        lastError = error;
      }
      this.count(remaining, unprocessed);
      if (unprocessed.length === 0) return;
      const now = clock.now();
      if (now >= deadline) throw this.exhausted(unprocessed.length, requests.length, attempt + 1, (now - started) / 1000, lastError);
      attempt++;
      this.stats.retries++;
      const delay = Math.min(clock.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt), deadline - now);
      this.config.logger.debug("retrying unprocessed DynamoDB items", { table, items: unprocessed.length, attempt, delayMs: Math.round(delay) });
      try {
        await clock.sleep(delay, this.controller.signal);
      } catch (error) {
        throw this.failure ?? cancelled(`Writing to DynamoDB table '${table}'`, error);
      }
      remaining = unprocessed;
    }
  }

  private count(sent: WriteRequest[], unprocessed: WriteRequest[]): void {
    let puts = 0;
    let deletes = 0;
    for (const r of sent) if (r.PutRequest) puts++;
    else deletes++;
    for (const r of unprocessed) if (r.PutRequest) puts--;
    else deletes--;
    this.stats.written += puts;
    this.stats.deleted += deletes;
  }

  private exhausted(left: number, total: number, attempts: number, seconds: number, lastError: unknown): ConduitError {
    const { table, maxRetrySeconds } = this.config;
    const why = lastError === undefined ? "DynamoDB kept returning them as UnprocessedItems" : `DynamoDB kept failing with ${(lastError as Error).name ?? "an error"}`;
    return new ConduitError({
      code: "RESOURCE_EXHAUSTED",
      errorClass: "WRITE_RETRIES_EXHAUSTED",
      message: `${left} of ${total} items of a BatchWriteItem request to table '${table}' were still not written after ${attempts} attempts over ${seconds.toFixed(1)} s (max_retry_seconds=${maxRetrySeconds}): ${why}, so the table's throughput is exhausted. This task had written ${this.stats.written} and deleted ${this.stats.deleted} items; they stay written. Raise max_retry_seconds or the table's write capacity, or lower write_concurrency or the number of Spark partitions.`,
      parameters: {
        table,
        unprocessed: String(left),
        attempts: String(attempts),
        maxRetrySeconds: String(maxRetrySeconds),
        written: String(this.stats.written),
        deleted: String(this.stats.deleted),
      },
      cause: lastError,
    });
  }
}

// ---------------------------------------------------------------------------------------
// Rows -> requests
// ---------------------------------------------------------------------------------------

/** The requests of every table in an UnprocessedItems answer (a request names one table). */
export function allUnprocessed(unprocessed: Record<string, WriteRequest[]> | undefined): WriteRequest[] {
  if (!unprocessed) return [];
  const lists = Object.values(unprocessed);
  return lists.length === 1 ? (lists[0] ?? []) : lists.flat();
}

/**
 * Canonical text of a key attribute value, for duplicate detection: type tag and length
 * before the value, so concatenated parts of a composite key can never be read two ways
 * (joining with a separator let "a\0b"+"c" and "a"+"b\0c" collide, and one row was dropped).
 */
function keyPart(av: { S?: string; N?: string; B?: Uint8Array }): string {
  if (av.S !== undefined) return `S${av.S.length}:${av.S}`;
  if (av.N !== undefined) return `N${av.N.length}:${av.N}`;
  const text = Buffer.from(av.B!).toString("base64");
  return `B${text.length}:${text}`;
}

/** The dedup key of an item's key attributes (hash, then range), as the writer compares them. */
export function keyTextOf(item: Item, keys: readonly KeyDef[]): string {
  let text = "";
  for (const key of keys) text += keyPart(item[key.name] as { S?: string; N?: string; B?: Uint8Array });
  return text;
}

export interface WriteTaskInput {
  api: DynamoDbApi;
  plan: WritePlan;
  batches: AsyncIterable<RecordBatch>;
  concurrency: number;
  maxRetrySeconds: number;
  clock: Clock;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
  /** For error messages. */
  partitionId: number;
}

/** A column the plan relies on; PlanWrite checked it, so missing means the rows do not match the plan. */
function column(batch: RecordBatch, name: string, plan: WritePlan, partitionId: number, errorClass: string): Vector {
  const vector = batch.getChild(name);
  if (!vector) {
    throw invalidArgument(
      errorClass,
      `Column '${name}' of the write plan for table '${plan.table}' is missing from the rows sent by task ${partitionId}; columns present: ${batch.schema.fields.map((f) => f.name).join(", ")}.`,
      { column: name, table: plan.table },
    );
  }
  return vector;
}

function isMissingKey(value: PlainValue): boolean {
  return value === null || (typeof value === "string" && value === "") || (value instanceof Uint8Array && value.length === 0);
}

function missingKey(name: string, value: PlainValue, plan: WritePlan, partitionId: number, rowIndex: number): ConduitError {
  return invalidArgument(
    "KEY_VALUE_NULL",
    `Key column '${name}' of table '${plan.table}' is ${value === null ? "null" : "empty"} in row ${rowIndex} of task ${partitionId}. DynamoDB keys can never be null or empty: filter these rows out or fill the key before writing.`,
    { column: name, table: plan.table, row: String(rowIndex), partition: String(partitionId) },
  );
}

/** Throws for the first null or empty key of a batch; `firstRow` is the task's row index of row 0. */
function checkKeyColumn(vector: Vector, values: readonly PlainValue[], name: string, plan: WritePlan, partitionId: number, firstRow: number): void {
  const mayBeEmpty = vector.type.typeId === Type.Utf8 || vector.type.typeId === Type.LargeUtf8 || vector.type.typeId === Type.Binary;
  if (vector.nullCount === 0 && !mayBeEmpty) return;
  for (let r = 0; r < values.length; r++) {
    const value = values[r]!;
    if (isMissingKey(value)) throw missingKey(name, value, plan, partitionId, firstRow + r);
  }
}

/** Writes every row of a task; returns the counts DynamoDB acknowledged. */
export async function writeRows(input: WriteTaskInput): Promise<WriteResult> {
  const { plan, partitionId } = input;
  const writer = new BatchWriter({
    api: input.api,
    table: plan.table,
    concurrency: input.concurrency,
    maxRetrySeconds: input.maxRetrySeconds,
    clock: input.clock,
    signal: input.signal,
    errorContext: input.errorContext,
    logger: input.logger,
  });
  const keys = plan.rangeKey ? [plan.hashKey, plan.rangeKey] : [plan.hashKey];
  const keyNames = keys.map((k) => k.name);
  const flagColumn = plan.deleteFlag?.column;
  const flagValue = plan.deleteFlag?.value;
  let rowIndex = 0;
  try {
    for await (const batch of input.batches) {
      const keyVectors = keys.map((k) => column(batch, k.name, plan, partitionId, "KEY_COLUMN_MISSING"));
      // Checked for the whole batch before any of its rows is queued, so a bad key in a
      // batch writes none of that batch's rows.
      // Read column by column, straight from the Arrow buffers.
      const keyColumns = keyVectors.map(readColumn);
      keys.forEach((keyDef, k) => checkKeyColumn(keyVectors[k]!, keyColumns[k]!, keyDef.name, plan, partitionId, rowIndex));
      const flagVector = flagColumn === undefined ? undefined : column(batch, flagColumn, plan, partitionId, "DELETE_FLAG_COLUMN_MISSING");
      const flags = flagVector === undefined ? undefined : readColumn(flagVector);
      const valueFields = batch.schema.fields.map((field, index) => ({ field, index })).filter(({ field }) => field.name !== flagColumn);
      const vectors = valueFields.map(({ index }) => batch.getChildAt(index)!);
      const columns = vectors.map(readColumn);
      // Every row of the batch is converted and size-checked before any is queued, so a bad
      // value or an item over 400 KB writes none of its batch's rows (as a bad key does).
      const operations: Array<{ keyText: string; item: Item; remove: boolean }> = [];
      for (let r = 0; r < batch.numRows; r++, rowIndex++) {
        const keyItem: Item = {};
        let keyText = "";
        for (let k = 0; k < keys.length; k++) {
          const keyDef = keys[k]!;
          const vector = keyVectors[k]!;
          const value = keyColumns[k]![r]!;
          if (isMissingKey(value)) throw missingKey(keyDef.name, value, plan, partitionId, rowIndex);
          const av = plainToAttribute(value, vector.type, keyDef.name);
          keyItem[keyDef.name] = av;
          keyText += keyPart(av as { S?: string; N?: string; B?: Uint8Array });
        }
        if (flags !== undefined) {
          const matches = isDeleteValue(flags[r]!, flagValue!, flagVector!.type);
          if (matches) {
            operations.push({ keyText, item: keyItem, remove: true });
            continue;
          }
        }
        const item: Item = {};
        for (let c = 0; c < valueFields.length; c++) {
          const value = columns[c]![r]!;
          if (value === null) continue;
          const name = valueFields[c]!.field.name;
          item[name] = keyItem[name] ?? plainToAttribute(value, vectors[c]!.type, name);
        }
        checkItemSize(item, keyNames, plan.table, rowIndex);
        operations.push({ keyText, item, remove: false });
      }
      for (const { keyText, item, remove } of operations) await (remove ? writer.delete(keyText, item) : writer.put(keyText, item));
    }
    await writer.flush();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return { rowsWritten: writer.stats.written, rowsDeleted: writer.stats.deleted, requests: writer.stats.requests, retries: writer.stats.retries };
}
