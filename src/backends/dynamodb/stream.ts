/**
 * DynamoDB Streams reads: the service-side core of `spark.readStream.format("dynamodb")`.
 * Stateless like the rest of the service: every call gets the offsets or the partition
 * descriptor it works on, and no shard iterator is kept between calls (they expire after
 * 15 minutes, and the next call may reach another replica).
 *
 * Offsets are plain JSON, so Spark's checkpoint is readable and a restart replays exactly
 * the same micro-batch:
 *
 * ```json
 * { "streamArn": "arn:aws:dynamodb:...:table/users/stream/2026-01-01T00:00:00.000",
 *   "shards": { "shardId-0001": { "sequenceNumber": "000000000000000000042" | null,
 *                                 "finished": false, "parent": "shardId-0000" | null } } }
 * ```
 *
 * - `sequenceNumber` is the LAST record read from the shard (null: none yet, the shard is
 *   read from TRIM_HORIZON); `finished` means the shard is closed and was read to its end;
 *   `parent` is the shard's parent (children are read only once the parent is finished or
 *   gone from the stream, so changes to one key stay in order).
 * - Shards that age out of the stream are dropped from the offset; one that was not
 *   finished had records nobody read, which is data loss (see `failOnDataLoss`).
 * - A stream replaced by a new one (the table's stream disabled and enabled again): the
 *   old stream is read to its end first; then, because changes made while the stream was
 *   off are in no stream, the switch to the new stream's oldest record is data loss too:
 *   STREAM_DATA_LOSS by default, a warning with `failOnDataLoss: false`.
 */
import type { _Record, Shard, StreamRecord } from "@aws-sdk/client-dynamodb-streams";
import { ConduitError, clip, failedPrecondition, invalidArgument } from "../../core/errors.js";
import { systemClock, type Clock } from "../../core/clock.js";
import type { Logger } from "../../core/logger.js";
import type { DynamoDbApi, StreamsApi } from "./client.js";
import { THROTTLING_ERRORS, cancelled, translateDynamoDbError, type ErrorContext } from "./errors.js";
import type { StartingPosition } from "./options.js";
import { recordBytes, runKey, type StreamRecordCache } from "./stream-cache.js";
import type { Item } from "./types.js";

export interface ShardOffset {
  /** The last sequence number read; null when nothing was read from the shard yet. */
  sequenceNumber: string | null;
  /** Closed (EndingSequenceNumber) and read to its end. */
  finished: boolean;
  parent: string | null;
}

export interface StreamOffset {
  streamArn: string;
  shards: Record<string, ShardOffset>;
}

/** Where a partition starts: after a record already read, or the shard's oldest record. */
export type PartitionStart = { type: "AFTER_SEQUENCE_NUMBER"; sequenceNumber: string } | { type: "TRIM_HORIZON" };

/** One Spark partition: the records of one shard in (start, endSequenceNumber]. Plain JSON. */
export interface StreamPartition {
  streamArn: string;
  shardId: string;
  start: PartitionStart;
  /** Inclusive: the last record of the partition. */
  endSequenceNumber: string;
}

/** One change event; images stay DynamoDB JSON (the shim's schema decides their Spark types). */
export interface ChangeRecord {
  eventName: "INSERT" | "MODIFY" | "REMOVE";
  eventId: string;
  shardId: string;
  sequenceNumber: string;
  approximateCreationTime: Date | null;
  keys: Item;
  newImage: Item | null;
  oldImage: Item | null;
}

export interface StreamContext {
  dynamodb: DynamoDbApi;
  streams: StreamsApi;
  /** The `table_name` option (a name or a table ARN). */
  table: string;
  region: string;
  endpoint: string | undefined;
  /** False: trimmed or vanished records are a warning and reading goes on from the oldest record left. */
  failOnDataLoss: boolean;
  signal: AbortSignal;
  logger: Logger;
  clock?: Clock;
  /** How long throttled Streams calls are retried (after the SDK's own attempts). */
  maxRetryMillis?: number;
  /** Records read ahead by latestOffset for the reads that follow (an optimization only). */
  cache?: StreamRecordCache;
  /** Endpoints seen to ignore ShardFilter (DynamoDB Local), so they get full listings without asking again. */
  shardFilterIgnoredBy?: Set<string>;
  /** Starts reading a shard after `after` in the background for the next micro-batch (see prefetchRun). */
  prefetch?: (streamArn: string, shardId: string, after: string, maxRecords: number) => void;
}

/** GetRecords returns at most this many records per call. */
export const GET_RECORDS_LIMIT = 1000;
/** Consecutive empty pages after which an open shard counts as caught up (DynamoDB may return empty pages mid-shard). */
const EMPTY_PAGES_AT_TIP = 3;
/** Consecutive empty pages after which a partition's records are taken to be gone (they were there when it was planned). */
const EMPTY_PAGES_IN_PARTITION = 100;
/** A fresh iterator that expires again and again is not age (iterators last 15 minutes): stop rather than re-open forever. */
const EXPIRED_IN_A_ROW = 5;
const DEFAULT_MAX_RETRY_MILLIS = 60_000;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 5_000;

// ---------------------------------------------------------------------------------------
// Offsets

function offsetError(message: string, parameters: Record<string, string> = {}): ConduitError {
  return invalidArgument("STREAM_OFFSET_INVALID", `Invalid DynamoDB stream offset: ${message}`, parameters);
}

/** Parses and validates an offset from a checkpoint (JSON text). */
export function parseStreamOffset(text: string): StreamOffset {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw offsetError(`not JSON: ${clip(text)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw offsetError("expected an object with 'streamArn' and 'shards'.");
  const { streamArn, shards } = value as Record<string, unknown>;
  if (typeof streamArn !== "string" || streamTableName(streamArn) === undefined) {
    throw offsetError(`'streamArn' must be a DynamoDB stream ARN (arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>), got ${clip(JSON.stringify(streamArn) ?? "nothing")}.`);
  }
  if (typeof shards !== "object" || shards === null || Array.isArray(shards)) throw offsetError("'shards' must be an object keyed by shard id.");
  const parsed: Record<string, ShardOffset> = {};
  for (const [shardId, state] of Object.entries(shards as Record<string, unknown>)) {
    if (typeof state !== "object" || state === null) throw offsetError(`shard '${clip(shardId)}' must be an object.`, { shard: clip(shardId) });
    const { sequenceNumber, finished, parent } = state as Record<string, unknown>;
    if (sequenceNumber !== null && (typeof sequenceNumber !== "string" || !/^[0-9]+$/.test(sequenceNumber))) {
      throw offsetError(`shard '${clip(shardId)}': 'sequenceNumber' must be a string of digits or null.`, { shard: clip(shardId) });
    }
    if (typeof finished !== "boolean") throw offsetError(`shard '${clip(shardId)}': 'finished' must be true or false.`, { shard: clip(shardId) });
    if (parent !== null && typeof parent !== "string") throw offsetError(`shard '${clip(shardId)}': 'parent' must be a shard id or null.`, { shard: clip(shardId) });
    parsed[shardId] = { sequenceNumber, finished, parent };
  }
  return { streamArn, shards: parsed };
}

/** Stable JSON (shards sorted), so equal offsets are equal text in Spark's checkpoint. */
export function serializeStreamOffset(offset: StreamOffset): string {
  const shards: Record<string, ShardOffset> = {};
  for (const id of Object.keys(offset.shards).sort()) {
    const s = offset.shards[id]!;
    shards[id] = { sequenceNumber: s.sequenceNumber, finished: s.finished, parent: s.parent };
  }
  return JSON.stringify({ streamArn: offset.streamArn, shards });
}

/** The table name inside a stream ARN, or undefined when the text is not one. */
export function streamTableName(streamArn: string): string | undefined {
  const match = /^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/([^/]+)\/stream\/.+$/.exec(streamArn);
  return match?.[1];
}

/** The plain table name of `table_name` (which may be a table ARN). */
function plainTableName(table: string): string {
  const at = table.indexOf(":table/");
  return table.startsWith("arn:") && at >= 0 ? table.slice(at + 7).split("/")[0]! : table;
}

/** Refuses a checkpoint written for another table's stream. */
export function checkOffsetTable(offset: StreamOffset, table: string): void {
  const owner = streamTableName(offset.streamArn);
  if (owner !== plainTableName(table)) {
    throw invalidArgument(
      "STREAM_OFFSET_OTHER_TABLE",
      `The checkpoint's offset belongs to the stream of DynamoDB table '${owner ?? "?"}' (${clip(offset.streamArn, 200)}), not of table '${plainTableName(table)}'. Use a new checkpoint location for this query.`,
      { table: plainTableName(table), offsetTable: owner ?? "", streamArn: clip(offset.streamArn, 200) },
    );
  }
}

/** Sequence numbers are decimal strings of varying length: compare them as numbers. */
export function compareSequenceNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------------------------------
// Calls with the shared error handling

function errorContext(ctx: StreamContext, operation: string): ErrorContext {
  return { table: ctx.table, region: ctx.region, endpoint: ctx.endpoint, operation };
}

function errorName(error: unknown): string {
  return typeof error === "object" && error !== null && typeof (error as { name?: unknown }).name === "string" ? (error as { name: string }).name : "";
}

/** Runs a Streams call, retrying throttling with capped exponential backoff and full jitter. */
async function call<T>(ctx: StreamContext, operation: string, run: () => Promise<T>): Promise<T> {
  const clock = ctx.clock ?? systemClock;
  const deadline = clock.now() + (ctx.maxRetryMillis ?? DEFAULT_MAX_RETRY_MILLIS);
  for (let attempt = 0; ; attempt++) {
    if (ctx.signal.aborted) throw cancelled(`DynamoDB Streams ${operation} on table '${ctx.table}'`, ctx.signal.reason);
    try {
      return await run();
    } catch (error) {
      if (ctx.signal.aborted) throw cancelled(`DynamoDB Streams ${operation} on table '${ctx.table}'`, error);
      if (!THROTTLING_ERRORS.has(errorName(error)) || clock.now() >= deadline) throw error;
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16)) * clock.random();
      ctx.logger.debug("DynamoDB Streams call throttled, backing off", { operation, table: ctx.table, attempt, delayMs: Math.round(delay) });
      try {
        await clock.sleep(delay, ctx.signal);
      } catch (reason) {
        throw cancelled(`DynamoDB Streams ${operation} on table '${ctx.table}'`, reason);
      }
    }
  }
}

function translate(ctx: StreamContext, operation: string, error: unknown): ConduitError {
  return translateDynamoDbError(error, errorContext(ctx, operation));
}

/** The table's current stream; a clear error when it has none. */
export async function currentStreamArn(ctx: StreamContext): Promise<string> {
  let description;
  try {
    description = await call(ctx, "DescribeTable", () => ctx.dynamodb.describeTable(ctx.table, ctx.signal));
  } catch (error) {
    throw translate(ctx, "DescribeTable", error);
  }
  const table = description.Table;
  const arn = table?.LatestStreamArn;
  if (!arn || table?.StreamSpecification?.StreamEnabled !== true) {
    const name = plainTableName(ctx.table);
    throw failedPrecondition(
      "STREAM_NOT_ENABLED",
      `DynamoDB table '${name}' has no stream enabled, so there are no changes to read. Enable a stream with the view type NEW_AND_OLD_IMAGES (needed for both the new and the old image), e.g. \`aws dynamodb update-table --table-name ${name} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES\`, or StreamSpecification in CreateTable/UpdateTable.`,
      { table: name },
    );
  }
  return arn;
}

/** Every shard of a stream (or, with `childrenOf`, the children of one shard): DescribeStream paged to the end. */
export async function listShards(ctx: StreamContext, streamArn: string, childrenOf?: string): Promise<Shard[] | undefined> {
  const shards: Shard[] = [];
  const filter = childrenOf !== undefined ? { ShardFilter: { Type: "CHILD_SHARDS" as const, ShardId: childrenOf } } : {};
  let startAfter: string | undefined;
  do {
    let page;
    try {
      page = await call(ctx, "DescribeStream", () =>
        ctx.streams.describeStream({ StreamArn: streamArn, ...filter, ...(startAfter ? { ExclusiveStartShardId: startAfter } : {}) }, ctx.signal),
      );
    } catch (error) {
      if (errorName(error) === "ResourceNotFoundException") return undefined;
      throw translate(ctx, "DescribeStream", error);
    }
    shards.push(...(page.StreamDescription?.Shards ?? []));
    startAfter = page.StreamDescription?.LastEvaluatedShardId;
  } while (startAfter);
  return shards;
}

/**
 * The shards to consider after `start` without listing the whole stream: the known ones
 * and, asked with ShardFilter CHILD_SHARDS, the children of those finished before this
 * call (a finished shard whose children are known leaves the offset). Undefined when a
 * full listing is needed: nothing known yet, or an endpoint that ignores the filter
 * (DynamoDB Local answers with every shard; that is how it is recognized).
 */
async function shardsAfter(ctx: StreamContext, start: StreamOffset): Promise<Shard[] | undefined> {
  const endpointKey = ctx.endpoint ?? `aws:${ctx.region}`;
  const known = Object.entries(start.shards);
  if (known.length === 0 || ctx.shardFilterIgnoredBy?.has(endpointKey)) return undefined;
  const withChildren = new Set(known.map(([, s]) => s.parent).filter((p): p is string => p !== null));
  const shards: Shard[] = [];
  for (const [id, state] of known) {
    if (state.finished && withChildren.has(id)) continue;
    // No SequenceNumberRange: whether it is closed shows when its reads reach the end.
    shards.push({ ShardId: id, ...(state.parent !== null ? { ParentShardId: state.parent } : {}) });
  }
  for (const [id, state] of known) {
    if (!state.finished || withChildren.has(id)) continue;
    const children = await listShards(ctx, start.streamArn, id);
    if (children === undefined) return undefined;
    if (children.some((c) => c.ParentShardId !== id)) {
      ctx.shardFilterIgnoredBy?.add(endpointKey);
      return undefined;
    }
    shards.push(...children.filter((c) => start.shards[c.ShardId!] === undefined));
  }
  return shards;
}

function dataLoss(ctx: StreamContext, message: string, parameters: Record<string, string>): void {
  if (ctx.failOnDataLoss) {
    throw failedPrecondition("STREAM_DATA_LOSS", `${message} Start the query from a new checkpoint, or set fail_on_data_loss to false to continue from the oldest record left.`, {
      table: plainTableName(ctx.table),
      ...parameters,
    });
  }
  ctx.logger.warn(`${message} Continuing from the oldest record left (fail_on_data_loss is false).`, { table: plainTableName(ctx.table), ...parameters });
}

/** Opens an iterator; undefined when the shard is gone or its position trimmed and the caller should fall back (data loss already reported). */
async function openIterator(ctx: StreamContext, streamArn: string, shardId: string, start: PartitionStart): Promise<{ iterator: string | undefined; start: PartitionStart } | "gone"> {
  try {
    const out = await call(ctx, "GetShardIterator", () =>
      ctx.streams.getShardIterator(
        { StreamArn: streamArn, ShardId: shardId, ShardIteratorType: start.type, ...(start.type === "AFTER_SEQUENCE_NUMBER" ? { SequenceNumber: start.sequenceNumber } : {}) },
        ctx.signal,
      ),
    );
    return { iterator: out.ShardIterator, start };
  } catch (error) {
    const name = errorName(error);
    if (name === "TrimmedDataAccessException" && start.type === "AFTER_SEQUENCE_NUMBER") {
      dataLoss(ctx, `Records of shard '${shardId}' after sequence number ${start.sequenceNumber} were trimmed from the stream (older than 24 hours) before they were read.`, { shard: shardId, sequenceNumber: start.sequenceNumber });
      return openIterator(ctx, streamArn, shardId, { type: "TRIM_HORIZON" });
    }
    if (name === "ResourceNotFoundException" || name === "TrimmedDataAccessException") {
      dataLoss(ctx, `Shard '${shardId}' of stream ${streamArn} is gone from the stream (aged out) before it was read to its end.`, { shard: shardId, streamArn });
      return "gone";
    }
    throw translate(ctx, "GetShardIterator", error);
  }
}

function toChangeRecord(record: _Record, shardId: string): ChangeRecord {
  const data: StreamRecord = record.dynamodb ?? {};
  return {
    eventName: record.eventName as ChangeRecord["eventName"],
    eventId: record.eventID ?? "",
    shardId,
    sequenceNumber: data.SequenceNumber!,
    approximateCreationTime: data.ApproximateCreationDateTime ?? null,
    keys: (data.Keys ?? {}) as Item,
    newImage: (data.NewImage as Item | undefined) ?? null,
    oldImage: (data.OldImage as Item | undefined) ?? null,
  };
}

interface ShardPage {
  records: _Record[];
  /** Undefined: the shard is closed and this page reached its end. */
  next: string | undefined;
}

/**
 * Reads pages of one shard from `start`, re-opening the iterator after the last record seen
 * when it expires. Yields "gone" once when the shard vanished (data loss already reported).
 */
async function* shardPages(ctx: StreamContext, streamArn: string, shardId: string, start: PartitionStart, limit: () => number): AsyncGenerator<ShardPage | "gone"> {
  let position = start;
  const opened = await openIterator(ctx, streamArn, shardId, position);
  if (opened === "gone") return yield "gone";
  position = opened.start;
  let iterator = opened.iterator;
  let expiredInARow = 0;
  while (iterator) {
    let page;
    try {
      const current = iterator;
      page = await call(ctx, "GetRecords", () => ctx.streams.getRecords(current, limit(), ctx.signal));
    } catch (error) {
      const name = errorName(error);
      if (name === "ExpiredIteratorException") {
        if (++expiredInARow >= EXPIRED_IN_A_ROW) {
          throw failedPrecondition(
            "STREAM_ITERATOR_EXPIRED",
            `DynamoDB Streams said the shard iterator of shard '${shardId}' (table '${plainTableName(ctx.table)}') expired ${expiredInARow} times in a row, each time right after it was opened; iterators last 15 minutes, so check the clock of the machine running the service and the endpoint.`,
            { table: plainTableName(ctx.table), shard: shardId },
          );
        }
        const reopened = await openIterator(ctx, streamArn, shardId, position);
        if (reopened === "gone") return yield "gone";
        position = reopened.start;
        iterator = reopened.iterator;
        continue;
      }
      if (name === "TrimmedDataAccessException" || name === "ResourceNotFoundException") {
        const reopened = await openIterator(ctx, streamArn, shardId, position);
        if (reopened === "gone") return yield "gone";
        position = reopened.start;
        iterator = reopened.iterator;
        continue;
      }
      throw translate(ctx, "GetRecords", error);
    }
    expiredInARow = 0;
    const records = page.Records ?? [];
    const last = records.at(-1)?.dynamodb?.SequenceNumber;
    if (last) position = { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: last };
    iterator = page.NextShardIterator;
    yield { records, next: iterator };
  }
}

// ---------------------------------------------------------------------------------------
// Offsets over time

/** Where a new query starts: every shard unread (TRIM_HORIZON), caught up with the stream now, or at a point in time. */
export async function initialOffset(ctx: StreamContext, position: StartingPosition): Promise<StreamOffset> {
  const streamArn = await currentStreamArn(ctx);
  const empty: StreamOffset = { streamArn, shards: {} };
  if (position.type === "latest") return latestOffset(ctx, empty, { lineage: "same-call", cache: false });
  const shards = (await listShards(ctx, streamArn)) ?? [];
  const offset = discover(ctx, empty, streamArn, shards);
  if (position.type === "timestamp") {
    // Creation times are whole seconds: start at the second of `at`, so no change at or after it is skipped.
    const from = Math.floor(position.at.getTime() / 1000) * 1000;
    await readAhead(ctx, offset, shards, {
      budget: Infinity,
      lineage: "same-call",
      cache: false,
      gone: [],
      stopBefore: (record) => (record.dynamodb?.ApproximateCreationDateTime?.getTime() ?? Infinity) >= from,
    });
  }
  return offset;
}

/** Adds shards new in the listing and drops those gone from it (reporting unread ones as data loss). */
function discover(ctx: StreamContext, start: StreamOffset, streamArn: string, shards: Shard[]): StreamOffset {
  const known = start.streamArn === streamArn ? start.shards : {};
  const listed = new Set(shards.map((s) => s.ShardId!));
  for (const [id, state] of Object.entries(known)) {
    if (!listed.has(id) && !state.finished) {
      dataLoss(ctx, `Shard '${id}' aged out of stream ${streamArn} before it was read to its end.`, { shard: id, streamArn });
    }
  }
  const next: Record<string, ShardOffset> = {};
  for (const shard of shards) {
    const id = shard.ShardId!;
    next[id] = known[id] ? { ...known[id] } : { sequenceNumber: null, finished: false, parent: shard.ParentShardId ?? null };
  }
  return { streamArn, shards: next };
}

export interface LatestOffsetLimits {
  /** At most this many records past `start` (admission control, Spark 4.2+). */
  maxRecords?: number;
  /** Never past this offset: the target Trigger.AvailableNow fixed when the query started. */
  bound?: StreamOffset;
}

/**
 * The newest position available after `start`, reading each eligible shard ahead. A child
 * shard is eligible once its parent was finished in `start` (or is gone from the stream),
 * so a micro-batch never holds records of both a shard and its child: applying micro-batches
 * in order, and each partition's rows in order, applies every key's changes in order.
 */
export async function latestOffset(ctx: StreamContext, start: StreamOffset, limits: LatestOffsetLimits & { lineage?: Lineage; cache?: boolean } = {}): Promise<StreamOffset> {
  checkOffsetTable(start, ctx.table);
  if (limits.bound) checkOffsetTable(limits.bound, ctx.table);
  // A disabled stream's closed shards still hold changes to read to their end; with no stream
  // now, the query then waits (a stream enabled later is the switch below).
  const current = await currentStreamArn(ctx).catch((error: unknown) => {
    if (error instanceof ConduitError && error.errorClass === "STREAM_NOT_ENABLED") return undefined;
    throw error;
  });
  let streamArn = start.streamArn;
  const filtered = streamArn === current ? await shardsAfter(ctx, start) : undefined;
  let shards = filtered ?? (await listShards(ctx, streamArn));
  if (shards === undefined && streamArn !== current) {
    // The checkpoint's stream was replaced and has aged out entirely.
    const unfinished = Object.values(start.shards).some((s) => !s.finished);
    if (unfinished) dataLoss(ctx, `The stream ${streamArn} the checkpoint was reading is gone.`, { streamArn });
    shards = [];
  } else if (shards === undefined) {
    throw failedPrecondition("STREAM_NOT_FOUND", `The stream ${streamArn} of DynamoDB table '${plainTableName(ctx.table)}' was not found.`, { streamArn });
  }
  const plan: ReadAheadPlan = { budget: limits.maxRecords ?? Infinity, lineage: limits.lineage ?? "next-call", cache: limits.cache ?? true, gone: [] };
  const boundFor = (arn: string) => (limits.bound && limits.bound.streamArn === arn ? limits.bound : undefined);
  let offset = discover(ctx, start, streamArn, shards);
  await readAhead(ctx, offset, shards, { ...plan, bound: boundFor(streamArn) });
  if (filtered && plan.gone.length > 0) {
    // A shard vanished (aged out): only a full listing shows children whose parent is gone.
    const listed = (await listShards(ctx, streamArn)) ?? [];
    const finishedBefore = new Set(Object.entries(start.shards).filter(([, s]) => s.finished).map(([id]) => id));
    offset = discover(ctx, offset, streamArn, listed);
    await readAhead(ctx, offset, listed, { ...plan, bound: boundFor(streamArn), finishedBefore });
  }

  // The replaced stream's last records make a micro-batch of their own; the switch (and
  // its data-loss report) comes on the next call, once they are in the checkpoint. An
  // AvailableNow target on the old stream ends the query there.
  const progressed = serializeStreamOffset(offset) !== serializeStreamOffset(start);
  const boundHere = boundFor(streamArn) !== undefined;
  if (current !== undefined && streamArn !== current && !progressed && !boundHere && Object.values(offset.shards).every((s) => s.finished)) {
    dataLoss(ctx, `The stream of DynamoDB table '${plainTableName(ctx.table)}' was disabled and enabled again: changes made while it was off are in no stream. The checkpoint's stream ${streamArn} is read to its end; the new stream is ${current}.`, {
      streamArn,
      newStreamArn: current,
    });
    streamArn = current;
    const newShards = (await listShards(ctx, streamArn)) ?? [];
    offset = discover(ctx, { streamArn, shards: {} }, streamArn, newShards);
    await readAhead(ctx, offset, newShards, { ...plan, bound: boundFor(streamArn) });
  }
  if (plan.lineage === "next-call" && plan.cache && !limits.bound && ctx.prefetch) {
    for (const [id, state] of Object.entries(offset.shards)) {
      if (!state.finished && state.sequenceNumber !== null) ctx.prefetch(offset.streamArn, id, state.sequenceNumber, limits.maxRecords ?? PREFETCH_RECORDS);
    }
  }
  return offset;
}

/** "next-call": a child waits for a parent finished before this call; "same-call": as soon as the parent is (offsets only, no records emitted). */
type Lineage = "next-call" | "same-call";

interface ReadAheadPlan {
  /** Records still allowed; decremented as shards are read. */
  budget: number;
  lineage: Lineage;
  /** Keep the records read for the tasks that read them next (see stream-cache.ts). */
  cache: boolean;
  bound?: StreamOffset;
  /** Stop a shard before the first record this accepts (a starting timestamp). */
  stopBefore?: (record: _Record) => boolean;
  /** Shards found gone from the stream while reading ahead. */
  gone: string[];
  /** The shards finished before this call ("next-call" lineage); default: those finished in the offset read ahead. */
  finishedBefore?: Set<string>;
}

/** Reads eligible shards of `offset` ahead in place. */
async function readAhead(ctx: StreamContext, offset: StreamOffset, shards: Shard[], plan: ReadAheadPlan): Promise<void> {
  const byId = new Map(shards.map((s) => [s.ShardId!, s]));
  const finishedBefore = plan.finishedBefore ?? new Set(Object.entries(offset.shards).filter(([, s]) => s.finished).map(([id]) => id));
  const done = new Set<string>();
  const parentDone = (parent: string | null) =>
    parent === null || offset.shards[parent] === undefined || (plan.lineage === "same-call" ? offset.shards[parent]!.finished : finishedBefore.has(parent));
  // Parents first: with "same-call", a pass can finish a parent and make its children eligible in the next one.
  for (let progressed = true; progressed && plan.budget > 0; ) {
    progressed = false;
    for (const [id, state] of Object.entries(offset.shards)) {
      if (done.has(id) || state.finished || plan.budget <= 0 || !parentDone(state.parent)) continue;
      done.add(id);
      progressed = true;
      await readShardAhead(ctx, offset.streamArn, id, state, byId.get(id)!, plan);
    }
  }
}

/** Where reading a shard ahead must stop for an AvailableNow target; "skip" when the target has nothing of it. */
function shardCap(plan: ReadAheadPlan, shardId: string, state: ShardOffset): ShardOffset | "skip" | undefined {
  if (!plan.bound) return undefined;
  const cap = plan.bound.shards[shardId];
  if (!cap) return "skip";
  if (cap.sequenceNumber === null || (state.sequenceNumber !== null && compareSequenceNumbers(state.sequenceNumber, cap.sequenceNumber) >= 0)) {
    if (cap.finished) state.finished = true;
    return "skip";
  }
  return cap;
}

/**
 * A shard's pages after `after`: first the records this process already read from there
 * (an AvailableNow target's catch-up, or a prefetch, waited for if still running), then the
 * stream after the last of them.
 */
async function* cachedThenStreamPages(ctx: StreamContext, streamArn: string, shardId: string, after: string | null, limit: () => number): AsyncGenerator<ShardPage | "gone"> {
  const key = runKey(streamArn, shardId, after);
  await ctx.cache?.settled(key);
  const cached = (ctx.cache?.peek(key) ?? []).filter((r) => after === null || compareSequenceNumbers(r.dynamodb?.SequenceNumber ?? "0", after) > 0);
  const last = cached.at(-1)?.dynamodb?.SequenceNumber ?? after;
  if (cached.length > 0) yield { records: cached, next: "cached" };
  const start: PartitionStart = last === null ? { type: "TRIM_HORIZON" } : { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: last };
  yield* shardPages(ctx, streamArn, shardId, start, limit);
}

/** Records a prefetch reads at most (a micro-batch's worth when a read limit says how much that is). */
export const PREFETCH_RECORDS = 10_000;

/**
 * Reads a shard ahead of the next micro-batch while this one's tasks run, into the cache at
 * `after` (where the next latestOffset starts), so reading and converting overlap. Stops at
 * the shard's tip, after `maxRecords`, or at the cache's run limit.
 */
export async function prefetchRun(ctx: StreamContext, streamArn: string, shardId: string, after: string, maxRecords: number): Promise<void> {
  const cache = ctx.cache;
  if (!cache) return;
  const records: _Record[] = [];
  let bytes = 0;
  let empty = 0;
  for await (const page of shardPages(ctx, streamArn, shardId, { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: after }, () => Math.min(GET_RECORDS_LIMIT, maxRecords - records.length))) {
    if (page === "gone") break;
    for (const record of page.records) {
      records.push(record);
      bytes += recordBytes(record);
    }
    empty = page.records.length === 0 ? empty + 1 : 0;
    if (page.next === undefined || empty >= EMPTY_PAGES_AT_TIP || records.length >= maxRecords || bytes >= cache.maxRunBytes) break;
  }
  cache.put(runKey(streamArn, shardId, after), records);
  ctx.logger.debug("prefetched DynamoDB stream records", { table: ctx.table, shard: shardId, records: records.length });
}

async function readShardAhead(ctx: StreamContext, streamArn: string, shardId: string, state: ShardOffset, shard: Shard, plan: ReadAheadPlan): Promise<void> {
  const ending = shard.SequenceNumberRange?.EndingSequenceNumber;
  const closed = ending !== undefined;
  if (closed && state.sequenceNumber !== null && compareSequenceNumbers(state.sequenceNumber, ending) >= 0) {
    state.finished = true;
    return;
  }
  const cap = shardCap(plan, shardId, state);
  if (cap === "skip") return;
  const startedAfter = state.sequenceNumber;
  const key = runKey(streamArn, shardId, startedAfter);
  const cacheLimit = ctx.cache && plan.cache ? ctx.cache.maxRunBytes : 0;
  // The run a task takes: the first records of the micro-batch, up to the cache's run limit (the task reads the rest from the stream).
  const collected: _Record[] | undefined = cacheLimit > 0 ? [] : undefined;
  let collectedBytes = 0;
  let empty = 0;
  const finish = () => {
    if (collected && collected.length > 0) ctx.cache!.put(key, collected);
  };
  for await (const page of cachedThenStreamPages(ctx, streamArn, shardId, startedAfter, () => Math.max(1, Math.min(GET_RECORDS_LIMIT, plan.budget)))) {
    if (page === "gone") {
      state.finished = true;
      plan.gone.push(shardId);
      return;
    }
    let taken = 0;
    let stopped = false;
    for (const record of page.records) {
      const seq = record.dynamodb?.SequenceNumber;
      if (plan.budget <= 0 || seq === undefined || (cap && compareSequenceNumbers(seq, cap.sequenceNumber!) > 0) || plan.stopBefore?.(record)) {
        stopped = true;
        break;
      }
      state.sequenceNumber = seq;
      plan.budget--;
      taken++;
      if (collected && collectedBytes + recordBytes(record) <= cacheLimit) {
        collected.push(record);
        collectedBytes += recordBytes(record);
      }
    }
    const atCap = cap !== undefined && state.sequenceNumber !== null && compareSequenceNumbers(state.sequenceNumber, cap.sequenceNumber!) >= 0;
    if ((page.next === undefined && !stopped && taken === page.records.length) || (atCap && cap.finished)) {
      state.finished = true;
      return finish();
    }
    if (stopped || atCap || plan.budget <= 0) return finish();
    empty = page.records.length === 0 ? empty + 1 : 0;
    if (!closed && empty >= EMPTY_PAGES_AT_TIP) return finish();
  }
  finish();
}

// ---------------------------------------------------------------------------------------
// Partitions

/** One descriptor per shard with records in (start, end]; the same pair always gives the same descriptors. */
export function planPartitions(start: StreamOffset, end: StreamOffset): StreamPartition[] {
  const known = start.streamArn === end.streamArn ? start.shards : {};
  const partitions: StreamPartition[] = [];
  for (const id of Object.keys(end.shards).sort()) {
    const last = end.shards[id]!.sequenceNumber;
    if (last === null) continue;
    const from = known[id]?.sequenceNumber ?? null;
    if (from !== null && compareSequenceNumbers(from, last) >= 0) continue;
    partitions.push({
      streamArn: end.streamArn,
      shardId: id,
      start: from === null ? { type: "TRIM_HORIZON" } : { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: from },
      endSequenceNumber: last,
    });
  }
  return partitions;
}

/**
 * The change records of one partition in shard order, ending exactly at its end sequence
 * number (re-reading a descriptor gives the same records while they are in the stream).
 */
export async function* readPartition(ctx: StreamContext, partition: StreamPartition): AsyncGenerator<ChangeRecord> {
  const end = partition.endSequenceNumber;
  const aborted = () => cancelled(`Reading the stream of DynamoDB table '${ctx.table}'`, ctx.signal.reason);
  const startedAfter = partition.start.type === "AFTER_SEQUENCE_NUMBER" ? partition.start.sequenceNumber : null;
  // Nothing at or before the start is ever yielded, whatever a fallback to the oldest record returns.
  let lastYielded: string | undefined = startedAfter ?? undefined;
  // Records latestOffset read ahead in this process, if it still has them; the rest (or all) from the stream.
  for (const record of ctx.cache?.take(runKey(partition.streamArn, partition.shardId, startedAfter)) ?? []) {
    if (ctx.signal.aborted) throw aborted();
    const seq = record.dynamodb?.SequenceNumber;
    if (seq === undefined || (lastYielded !== undefined && compareSequenceNumbers(seq, lastYielded) <= 0)) continue;
    if (compareSequenceNumbers(seq, end) > 0) return;
    yield toChangeRecord(record, partition.shardId);
    lastYielded = seq;
    if (compareSequenceNumbers(seq, end) === 0) return;
  }
  const start: PartitionStart = lastYielded === undefined ? partition.start : { type: "AFTER_SEQUENCE_NUMBER", sequenceNumber: lastYielded };
  let empty = 0;
  for await (const page of shardPages(ctx, partition.streamArn, partition.shardId, start, () => GET_RECORDS_LIMIT)) {
    if (page === "gone") return;
    for (const record of page.records) {
      if (ctx.signal.aborted) throw aborted();
      const seq = record.dynamodb?.SequenceNumber;
      if (seq === undefined) continue;
      if (lastYielded !== undefined && compareSequenceNumbers(seq, lastYielded) <= 0) continue;
      if (compareSequenceNumbers(seq, end) > 0) return;
      yield toChangeRecord(record, partition.shardId);
      lastYielded = seq;
      if (compareSequenceNumbers(seq, end) === 0) return;
    }
    if (page.next === undefined) break;
    empty = page.records.length === 0 ? empty + 1 : 0;
    if (empty >= EMPTY_PAGES_IN_PARTITION) break;
  }
  if (ctx.signal.aborted) throw aborted();
  throw failedPrecondition(
    "STREAM_RECORDS_MISSING",
    `Shard '${partition.shardId}' of stream ${partition.streamArn} ended before sequence number ${end}, the end of this micro-batch: its records are no longer in the stream.`,
    { shard: partition.shardId, streamArn: partition.streamArn, sequenceNumber: end },
  );
}
