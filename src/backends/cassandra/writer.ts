/**
 * Writes one Spark task's rows with prepared statements.
 *
 * - Rows become `INSERT INTO "ks"."tbl" (<the DataFrame's columns>) VALUES (...)`.
 *   A row whose delete-flag value equals `delete_flag_value` becomes
 *   `DELETE FROM "ks"."tbl" WHERE <every primary-key column> = ?` instead.
 *   The delete-flag column itself is never written.
 * - Values that reach Cassandra unchanged (text, integers that fit, decimals, dates,
 *   timestamps, and collections of them) are serialized straight from the Arrow buffers
 *   (`cellSerializer`); the others are converted one row at a time as they are sent.
 * - Null values of non-key columns are left unset by default: the column keeps what it held
 *   and no tombstone is created (`write_nulls` writes them as nulls instead). Cassandra
 *   stores an empty non-frozen collection as no value at all, so it reads back as null.
 * - Every statement carries its own write timestamp, taken in row order from a clock that
 *   never goes backwards, so when a task holds the same primary key twice the later row
 *   wins whatever order the requests complete in. A request of one statement sends it as
 *   the protocol's timestamp; a batch's statements bind theirs (`USING TIMESTAMP ?`),
 *   which costs Cassandra about 2 µs more per row.
 * - Primary-key nulls (and an empty value of a single-column partition key, which Cassandra
 *   rejects) fail with KEY_VALUE_NULL, and any value that does not convert fails with an
 *   error naming the column, value and row, for the whole Arrow batch before any of its
 *   rows is sent: a bad row in a batch writes none of that batch's rows.
 * - Up to `rows_per_batch` statements are buffered; a full buffer is sent with at most
 *   `concurrency` requests in flight. Rows of one buffer that share a partition key are
 *   sent as UNLOGGED batches of up to MAX_BATCH_STATEMENTS (a single-partition batch is one
 *   mutation, applied atomically on each replica and not subject to the multi-partition
 *   batch size limits); other rows go one statement per request. The next Arrow batch is
 *   not pulled while `concurrency` requests are in flight, so memory stays bounded by one
 *   buffer, the requests in flight and one Arrow batch.
 *   Measured with bench/cassandra-batching.mjs (200,000 rows, concurrency 100,
 *   rows_per_batch 1000, one local Cassandra 5 node on a busy 2-core machine): with 100
 *   adjacent rows per partition, about 20,000 rows/s one statement per request against
 *   54,000-59,000 rows/s grouped; with every row its own partition, or the same rows
 *   shuffled (a buffer then rarely holds two rows of a partition), no difference beyond
 *   the noise (17,000-25,000 rows/s either way). Grouping never made it slower.
 * - Retries (RequestRetries in errors.ts): a node's timeout, unavailable or overloaded
 *   answer is retried `max_retries` times with exponential backoff and jitter; a lost
 *   connection or a node that stopped answering is waited for until the driver has a node
 *   up again; no retry starts `max_retry_seconds` after a request's first attempt. When
 *   Spark cancels the task (the call's signal aborts), waits end at once and no further
 *   attempt starts: the call ends with CANCELLED.
 * - Most statements are idempotent: a replay with the same write timestamp changes nothing.
 *   Not so a statement that sets a non-frozen list: the node keys each element's cell by a
 *   time UUID it makes, and the list's overwrite tombstone sits at timestamp - 1, so a replay
 *   of an applied write (one answered by a timeout or a lost connection) appends the
 *   elements again. Sets and maps (cells keyed by element), frozen collections, UDTs and
 *   tuples (one cell, or fields keyed by name) are idempotent. For a plan with a list
 *   column the statements go to the driver as not idempotent (it then never replays them
 *   itself), each row reserves TIMESTAMP_SLOTS consecutive write timestamps, and each retry
 *   after an attempt that may have been applied takes the next one: the retry's tombstone
 *   (timestamp - 1) then covers every earlier attempt's elements, while a later row of the
 *   same key, which has a higher timestamp than any slot of an earlier row, still wins.
 *
 * `rowsWritten`/`rowsDeleted` count rows whose request Cassandra acknowledged.
 */
import { setMaxListeners } from "node:events";
import cassandra from "cassandra-driver";
import { Type, type DataType, type RecordBatch, type Vector } from "apache-arrow";
import type { WriteResult } from "../../core/connector.js";
import { ConduitError, invalidArgument } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import { columnReader, firstNullOrEmpty } from "../../arrow/column-reader.js";
import { DecimalValue, type PlainValue } from "../../arrow/values.js";
import type { Clock } from "../../core/clock.js";
import type { CassandraApi, ExecuteOptions, Statement } from "./client.js";
import { cancelled, errorName, RequestRetries, translateCassandraError, type ErrorContext } from "./errors.js";
import type { ConsistencyLevel } from "./options.js";
import type { WritePlan } from "./planner.js";
import { cellSerializer, checkValueSizes, mayReject, quoteIdentifier, writeConverter, type RowPosition, type WriteConverter } from "./types.js";
import { isDeleteValue } from "../../core/delete-flag.js";

/** Statements of one UNLOGGED batch at most. */
export const MAX_BATCH_STATEMENTS = 100;
/**
 * Write timestamps each row of a plan with a non-frozen list reserves: its first attempt
 * takes the first, a retry after an attempt that may have been applied the next. Eight keep
 * the clock from running ahead of real time up to 125 such rows per millisecond per service.
 */
export const TIMESTAMP_SLOTS = 8;

const unset = cassandra.types.unset;

/**
 * The INSERT of the DataFrame's columns. A request of one statement carries its write
 * timestamp as the protocol's default timestamp; statements in a batch carry their own
 * (`timestamped`: `USING TIMESTAMP ?`, bound after the values), as one batch holds rows
 * written at different times.
 */
export function insertQuery(plan: WritePlan, timestamped = false): string {
  const columns = plan.columns.map((c) => quoteIdentifier(c.name));
  return `INSERT INTO ${quoteIdentifier(plan.keyspace)}.${quoteIdentifier(plan.table)} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})${timestamped ? " USING TIMESTAMP ?" : ""}`;
}

/** The DELETE by full primary key; `timestamped` binds the write timestamp first. */
export function deleteQuery(plan: WritePlan, timestamped = false): string {
  const keys = [...plan.partitionKey, ...plan.clusteringKey].map((k) => `${quoteIdentifier(k)} = ?`);
  return `DELETE FROM ${quoteIdentifier(plan.keyspace)}.${quoteIdentifier(plan.table)}${timestamped ? " USING TIMESTAMP ?" : ""} WHERE ${keys.join(" AND ")}`;
}

let lastTimestamp = 0;

/**
 * Write timestamps in microseconds: the clock's time, strictly increasing within this
 * process. Numbers are exact for them until the year 2255. Reserves `slots` consecutive
 * timestamps (the returned one is the first): the next call returns one after them.
 */
export function nextTimestamp(clock: Pick<Clock, "now">, slots = 1): number {
  const now = Math.floor(clock.now()) * 1000;
  const first = now > lastTimestamp ? now : lastTimestamp + 1;
  lastTimestamp = first + slots - 1;
  return first;
}

/** Whether a plan writes a non-frozen list, whose statements are not idempotent (see the top of this file). */
export function writesList(plan: Pick<WritePlan, "columns">): boolean {
  return plan.columns.some((c) => c.type.kind === "list" && !c.type.frozen);
}

/** The four statements of a write plan. */
export interface WriteStatements {
  insert: string;
  remove: string;
  timestampedInsert: string;
  timestampedRemove: string;
}

export function writeStatements(plan: WritePlan): WriteStatements {
  return { insert: insertQuery(plan), remove: deleteQuery(plan), timestampedInsert: insertQuery(plan, true), timestampedRemove: deleteQuery(plan, true) };
}

interface Pending {
  /** The values of the INSERT, or the primary key of the DELETE. */
  params: unknown[];
  /** Microseconds. */
  timestamp: number;
  /** Partition key text, for grouping. */
  partition: string;
  isDelete: boolean;
}

export interface WriterStats {
  written: number;
  deleted: number;
  requests: number;
  batches: number;
  retries: number;
}

export interface StatementWriterConfig {
  api: CassandraApi;
  concurrency: number;
  rowsPerBatch: number;
  maxRetries: number;
  maxRetrySeconds: number;
  consistency: ConsistencyLevel;
  statements: WriteStatements;
  /** False for a plan with a non-frozen list: a retry then takes the row's next timestamp slot. */
  idempotent: boolean;
  /** Send rows of one buffer that share a partition key as UNLOGGED batches (default true). */
  groupByPartition: boolean;
  clock: Clock;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
}

/** Buffers statements and sends them with bounded concurrency; throws the first failure. */
export class StatementWriter {
  readonly stats: WriterStats = { written: 0, deleted: 0, requests: 0, batches: 0, retries: 0 };
  private buffer: Pending[] = [];
  private inFlight = 0;
  /** Woken whenever a request settles (waiting with Promise.race over every request in flight cost O(concurrency) per row). */
  private waiters: Array<() => void> = [];
  private failure: unknown;
  /** Aborted by the first failure or by the call's signal (Spark cancelled the task): stops backoff and retries. */
  private readonly stop = new AbortController();
  private readonly onOuterAbort = () => this.stop.abort(this.config.signal.reason);

  private readonly options: ExecuteOptions;

  constructor(private readonly config: StatementWriterConfig) {
    this.options = { consistency: config.consistency, idempotent: config.idempotent };
    // Every request in flight sleeps on `stop` during its backoff.
    setMaxListeners(config.concurrency + 16, this.stop.signal);
    if (config.signal.aborted) this.stop.abort(config.signal.reason);
    else config.signal.addEventListener("abort", this.onOuterAbort, { once: true });
  }

  private get where(): string {
    return `${this.config.errorContext.keyspace}.${this.config.errorContext.table}`;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.config.signal.aborted) throw cancelled(`Writing to Cassandra table ${this.where}`, this.config.signal.reason);
  }

  /**
   * Queues a statement and sends the buffer when it is full. Returns a promise (to await
   * before the next statement) only then, as sending may wait for free request slots.
   */
  add(item: Pending): Promise<void> | undefined {
    this.throwIfFailed();
    this.buffer.push(item);
    return this.buffer.length >= this.config.rowsPerBatch ? this.sendBuffer() : undefined;
  }

  private async sendBuffer(): Promise<void> {
    const buffer = this.buffer;
    this.buffer = [];
    if (!this.config.groupByPartition) {
      for (const item of buffer) {
        if (this.inFlight >= this.config.concurrency) await this.freeSlot();
        this.start(item);
      }
      return;
    }
    // Most rows are alone in their partition: a group is the row itself until a second one comes.
    const groups = new Map<string, Pending | Pending[]>();
    for (const item of buffer) {
      const group = groups.get(item.partition);
      if (group === undefined) groups.set(item.partition, item);
      else if (Array.isArray(group)) group.push(item);
      else groups.set(item.partition, [group, item]);
    }
    for (const group of groups.values()) {
      const size = Array.isArray(group) ? group.length : 1;
      for (let i = 0; i < size; i += MAX_BATCH_STATEMENTS) {
        if (this.inFlight >= this.config.concurrency) await this.freeSlot();
        this.start(Array.isArray(group) && size > MAX_BATCH_STATEMENTS ? group.slice(i, i + MAX_BATCH_STATEMENTS) : group);
      }
    }
  }

  private settled(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Waits until fewer than `concurrency` requests are in flight; throws the first failure. */
  private async freeSlot(): Promise<void> {
    while (this.inFlight >= this.config.concurrency) {
      await this.settled();
      this.throwIfFailed();
    }
  }

  /** Starts one request: one statement, or one partition's batch. */
  private start(items: Pending | Pending[]): void {
    this.throwIfFailed();
    this.inFlight++;
    this.send(items).then(this.onSettled, this.onFailed);
  }

  private readonly onSettled = (): void => {
    this.inFlight--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  };

  private readonly onFailed = (error: unknown): void => {
    if (this.failure === undefined) this.failure = error;
    this.stop.abort();
    this.onSettled();
  };

  /** A batch's statement, binding its own write timestamp (a bigint: the client maps CQL bigint to it), shifted to the attempt's slot. */
  private timestamped(item: Pending, slot: number): Statement {
    const { statements } = this.config;
    const timestamp = BigInt(item.timestamp + slot);
    return item.isDelete ? { query: statements.timestampedRemove, params: [timestamp, ...item.params] } : { query: statements.timestampedInsert, params: [...item.params, timestamp] };
  }

  private async send(items: Pending | Pending[]): Promise<void> {
    const { api, clock, statements, consistency, idempotent } = this.config;
    const single = Array.isArray(items) ? (items.length === 1 ? items[0]! : undefined) : items;
    const retries = new RequestRetries({ maxRetries: this.config.maxRetries, maxRetrySeconds: this.config.maxRetrySeconds }, clock, (ms, signal) => api.waitForHost(ms, signal));
    for (;;) {
      // No new attempt once the task is cancelled or another request failed.
      if (this.stop.signal.aborted) throw this.failure ?? cancelled(`Writing to Cassandra table ${this.where}`, this.config.signal.reason);
      // An idempotent statement is replayed as it was; one that is not takes the next slot after each attempt that may have been applied.
      const slot = idempotent ? 0 : retries.mayHaveApplied;
      if (slot >= TIMESTAMP_SLOTS) throw this.exhausted(this.lastError, retries, ` A statement that sets a list column may have been applied ${slot} times without an answer and is not retried further (a replay would append the elements again).`);
      this.stats.requests++;
      retries.attempts++;
      try {
        if (single) {
          // One statement: its timestamp goes as the request's.
          await api.execute(single.isDelete ? statements.remove : statements.insert, single.params, { consistency, idempotent, timestamp: single.timestamp + slot });
        } else {
          this.stats.batches++;
          await api.batch(
            (items as Pending[]).map((item) => this.timestamped(item, slot)),
            this.options,
          );
        }
        break;
      } catch (error) {
        if (this.stop.signal.aborted) throw this.failure ?? cancelled(`Writing to Cassandra table ${this.where}`, error);
        this.lastError = error;
        let again: boolean;
        try {
          again = await retries.retryAfter(error, this.stop.signal);
        } catch (waitError) {
          throw this.failure ?? cancelled(`Writing to Cassandra table ${this.where}`, waitError);
        }
        if (!again) throw this.exhausted(error, retries);
        this.stats.retries++;
        this.config.logger.debug("retrying Cassandra write", { keyspace: this.config.errorContext.keyspace, table: this.config.errorContext.table, statements: single ? 1 : (items as Pending[]).length, attempt: retries.attempts + 1, error: errorName(error) });
      }
    }
    if (single) this.count(single);
    else for (const item of items as Pending[]) this.count(item);
  }

  private count(item: Pending): void {
    if (item.isDelete) this.stats.deleted++;
    else this.stats.written++;
  }

  /** The last error of any request, for a message when the timestamp slots ran out. */
  private lastError: unknown;

  private exhausted(error: unknown, retries: RequestRetries, extra = ""): ConduitError {
    const translated = translateCassandraError(error, this.config.errorContext);
    const after = retries.describe();
    if (after === "" && extra === "") return translated;
    return new ConduitError({
      code: translated.code,
      errorClass: translated.errorClass,
      message: `${translated.message} (${after ? `${after}; ` : ""}this task had written ${this.stats.written} and deleted ${this.stats.deleted} rows, which stay written)${extra}`,
      parameters: {
        ...translated.parameters,
        retries: String(Math.max(0, retries.attempts - 1)),
        seconds: retries.seconds.toFixed(1),
        maxRetries: String(this.config.maxRetries),
        maxRetrySeconds: String(this.config.maxRetrySeconds),
        written: String(this.stats.written),
        deleted: String(this.stats.deleted),
      },
      cause: error,
    });
  }

  /** Sends what is buffered and waits for every request; throws the first failure. */
  async flush(): Promise<void> {
    this.throwIfFailed();
    await this.sendBuffer();
    while (this.inFlight > 0) await this.settled();
    this.config.signal.removeEventListener("abort", this.onOuterAbort);
    this.throwIfFailed();
  }

  /** Drops the buffer, stops retries and waits for requests in flight to settle. */
  async abort(): Promise<void> {
    this.buffer = [];
    this.stop.abort();
    while (this.inFlight > 0) await this.settled();
    this.config.signal.removeEventListener("abort", this.onOuterAbort);
  }
}

// ---------------------------------------------------------------------------------------
// Rows -> statements
// ---------------------------------------------------------------------------------------

/** Exact text of a key value, for grouping rows by partition. */
function keyText(value: PlainValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Uint8Array) return `0x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
  if (value instanceof DecimalValue) return `${value.unscaled}e-${value.scale}`;
  if (typeof value === "object" && value !== null) return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v));
  return String(value);
}

/**
 * Text identifying a row's partition: equal exactly when the partition keys are equal.
 * A serialized key value (a Buffer parameter) is identified by its bytes, any other by
 * its plain value; the two forms never coincide ("b" against keyText's forms).
 */
function partitionText(cells: readonly unknown[], values: readonly PlainValue[], partitionIndexes: readonly number[]): string {
  if (partitionIndexes.length === 1) {
    const cell = cells[partitionIndexes[0]!];
    return cell instanceof Buffer ? `b${cell.toString("latin1")}` : keyText(values[partitionIndexes[0]!]!);
  }
  let text = "";
  for (const i of partitionIndexes) {
    const cell = cells[i];
    text += cell instanceof Buffer ? `b${cell.length}:${cell.toString("latin1")}\u0000` : `${keyText(values[i]!)}\u0000`;
  }
  return text;
}

export interface WriteTaskInput {
  api: CassandraApi;
  plan: WritePlan;
  batches: AsyncIterable<RecordBatch>;
  concurrency: number;
  rowsPerBatch: number;
  maxRetries: number;
  /** No retry starts this long after a request's first attempt. */
  maxRetrySeconds: number;
  consistency: ConsistencyLevel;
  /** Write nulls of non-key columns as nulls (tombstones) instead of leaving them unset. */
  writeNulls: boolean;
  /** Send rows sharing a partition key as UNLOGGED batches (default true). */
  groupByPartition?: boolean;
  clock: Clock;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
  /** For error messages. */
  partitionId: number;
}

function missingColumn(batch: RecordBatch, name: string, plan: WritePlan, partitionId: number, errorClass: string): never {
  throw invalidArgument(
    errorClass,
    `Column '${name}' of the write plan for ${plan.keyspace}.${plan.table} is missing from the rows sent by task ${partitionId}; columns present: ${batch.schema.fields.map((f) => f.name).join(", ")}.`,
    { column: name, keyspace: plan.keyspace, table: plan.table },
  );
}

function mayBeEmpty(type: DataType): boolean {
  return type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8 || type.typeId === Type.Binary || type.typeId === Type.LargeBinary;
}

/** Throws KEY_VALUE_NULL for the first null (or, for a single-column partition key, empty) key of a batch. */
function checkKeyColumn(vector: Vector, name: string, rejectEmpty: boolean, plan: WritePlan, partitionId: number, firstRow: number): void {
  const checkEmpty = rejectEmpty && mayBeEmpty(vector.type);
  if (vector.nullCount === 0 && !checkEmpty) return;
  const r = firstNullOrEmpty(vector, checkEmpty);
  if (r < 0) return;
  const isNull = !vector.isValid(r);
  const what = isNull ? "null" : "empty";
  throw invalidArgument(
    "KEY_VALUE_NULL",
    `Primary-key column '${name}' of ${plan.keyspace}.${plan.table} is ${what} in row ${firstRow + r} of task ${partitionId}. ${isNull ? "Cassandra keys can never be null" : "Cassandra rejects an empty partition key"}: filter these rows out or fill the key before writing. No row of this Arrow batch was written.`,
    { column: name, keyspace: plan.keyspace, table: plan.table, row: String(firstRow + r), partition: String(partitionId), value: what },
  );
}

/** Writes every row of a task; returns the counts Cassandra acknowledged. */
export async function writeRows(input: WriteTaskInput): Promise<WriteResult> {
  const { plan, partitionId, clock } = input;
  const groupByPartition = input.groupByPartition ?? true;
  const idempotent = !writesList(plan);
  const slots = idempotent ? 1 : TIMESTAMP_SLOTS;
  const writer = new StatementWriter({
    api: input.api,
    concurrency: input.concurrency,
    rowsPerBatch: input.rowsPerBatch,
    maxRetries: input.maxRetries,
    maxRetrySeconds: input.maxRetrySeconds,
    consistency: input.consistency,
    statements: writeStatements(plan),
    idempotent,
    groupByPartition,
    clock,
    signal: input.signal,
    errorContext: input.errorContext,
    logger: input.logger,
  });
  const keyNames = [...plan.partitionKey, ...plan.clusteringKey];
  const keySet = new Set(keyNames);
  const flagColumn = plan.deleteFlag?.column;
  const flagValue = plan.deleteFlag?.value;
  const nullValue = input.writeNulls ? null : unset;
  const position: RowPosition = { row: 0, partition: partitionId };
  let converters: WriteConverter[] = [];
  let convertersFor: RecordBatch["schema"] | undefined;
  const keyIndexes = keyNames.map((k) => plan.columns.findIndex((c) => c.name === k));
  const partitionIndexes = plan.partitionKey.map((k) => plan.columns.findIndex((c) => c.name === k));
  const width = plan.columns.length;
  /** The current row's plain values (of converted columns) and parameters, by column. */
  const values = new Array<PlainValue>(width);
  const cells = new Array<unknown>(width);
  try {
    for await (const batch of input.batches) {
      const firstRow = position.row;
      const rows = batch.numRows;
      const vectors = plan.columns.map((c) => batch.getChild(c.name) ?? missingColumn(batch, c.name, plan, partitionId, "COLUMN_MISSING"));
      if (convertersFor !== batch.schema) {
        converters = plan.columns.map((c, i) => writeConverter(vectors[i]!.type, c.type, c.name));
        convertersFor = batch.schema;
      }
      // Values that go to Cassandra unchanged are serialized straight from the Arrow
      // buffers (and sent as Buffers, which the driver passes through); the others are
      // read and converted one row at a time as they are sent: holding a whole batch of
      // converted rows (10,000 from Spark) until the last is sent kept them alive through
      // several young-generation collections, which cost more than the conversions.
      const serializers = plan.columns.map((c, i) => (vectors[i]!.data.length === 1 ? cellSerializer(vectors[i]!.data[0]!, c.type) : undefined));
      const readers = vectors.map((vector, i) => (serializers[i] ? undefined : columnReader(vector)));
      /** Converted columns whose converter may reject a value, checked for the whole batch before any row is sent. */
      const rejecting = converters.flatMap((convert, c) => (!serializers[c] && mayReject(convert) ? [c] : []));
      const rejectingKeys = rejecting.filter((c) => keyIndexes.includes(c));
      /** Row r's parameter for column c (its plain value kept in `values` when converted). */
      const param = (c: number, r: number): unknown => {
        const serialize = serializers[c];
        if (serialize) return serialize(r) ?? nullValue;
        const value = readers[c]!(r);
        values[c] = value;
        return value === null ? nullValue : converters[c]!(value, position);
      };
      const flagVector = flagColumn === undefined ? undefined : (batch.getChild(flagColumn) ?? missingColumn(batch, flagColumn, plan, partitionId, "DELETE_FLAG_COLUMN_MISSING"));
      const flag = flagVector === undefined ? undefined : columnReader(flagVector);
      const isDeleteAt = (r: number) => flag !== undefined && isDeleteValue(flag(r), flagValue!, flagVector!.type);

      // The whole batch is checked before any of its rows is queued, so a bad key or value
      // in a batch writes none of that batch's rows. Only converters that may reject a
      // value run here (their results are dropped); the others cannot fail.
      plan.columns.forEach((c, i) => {
        if (keySet.has(c.name)) checkKeyColumn(vectors[i]!, c.name, plan.partitionKey.length === 1 && plan.partitionKey[0] === c.name, plan, partitionId, firstRow);
        checkValueSizes(vectors[i]!, c.name, `${plan.keyspace}.${plan.table}`, partitionId, firstRow);
      });
      if (rejecting.length > 0) {
        for (let r = 0; r < rows; r++) {
          position.row = firstRow + r;
          for (const c of isDeleteAt(r) ? rejectingKeys : rejecting) {
            const value = readers[c]!(r);
            if (value !== null) converters[c]!(value, position);
          }
        }
      }

      for (let r = 0; r < rows; r++) {
        position.row = firstRow + r;
        const timestamp = nextTimestamp(clock, slots);
        const isDelete = isDeleteAt(r);
        let params: unknown[];
        if (isDelete) {
          params = new Array<unknown>(keyIndexes.length);
          for (let k = 0; k < keyIndexes.length; k++) params[k] = cells[keyIndexes[k]!] = param(keyIndexes[k]!, r);
        } else {
          params = new Array<unknown>(width);
          for (let c = 0; c < width; c++) params[c] = cells[c] = param(c, r);
        }
        const partition = groupByPartition ? partitionText(cells, values, partitionIndexes) : "";
        const sending = writer.add({ params, timestamp, partition, isDelete });
        if (sending !== undefined) await sending;
      }
      position.row = firstRow + rows;
    }
    await writer.flush();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  input.logger.debug("wrote Cassandra task", { keyspace: plan.keyspace, table: plan.table, partition: partitionId, ...writer.stats });
  return { rowsWritten: writer.stats.written, rowsDeleted: writer.stats.deleted, requests: writer.stats.requests, retries: writer.stats.retries };
}
