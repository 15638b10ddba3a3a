/**
 * Streaming reads of a Cassandra table without a change log: each micro-batch reads the
 * rows whose mark lies in (previous mark, new mark], split by token range like a batch read.
 *
 * The mark is one of:
 * - `column` mode: the value of `stream_column`, a timestamp or timeuuid (epoch
 *   milliseconds; a timeuuid window is `col > maxTimeuuid(after) AND col <= maxTimeuuid(upTo)`,
 *   which holds every timeuuid of those milliseconds) or a bigint (the value). The column
 *   is the first clustering column (a slice of each partition) or carries an SAI index (an
 *   index range read); anything else scans and filters, and needs `allow_filtering`.
 * - `writetime` mode: the newest `WRITETIME` of a row's regular and static columns (a
 *   static column's change is every row of its partition changing), in epoch microseconds. Cassandra cannot restrict by write time, so every micro-batch scans the
 *   table and keeps the rows in the window.
 *
 * Offset (JSON text; the shim and Spark's checkpoint treat it as opaque):
 *   {"table":"ks.events","mode":"column","column":"ts","type":"timestamp","mark":"1764979200000","rows":120}
 *   {"table":"ks.users","mode":"writetime","type":"writetime","mark":"1764979200000000","rows":7}
 * `mark` is decimal text, or null before the first row (`earliest`). `rows` is how many rows
 * latestOffset counted in the window that ends at this offset: it sizes the micro-batch's
 * partitions, and as part of the checkpointed offset it makes a replay plan the same way.
 *
 * Where the mark goes: time marks trail the service's clock by `stream_lag_ms` (a row whose
 * value is older than that when it becomes readable is missed); a bigint mark is the largest
 * value present. latestOffset first counts the window's rows by reading only the mark
 * (`max_rows_per_trigger` moves the mark back to keep the count under the limit; rows
 * sharing one mark value are never split), and returns the start unchanged when the
 * window is empty, so Spark runs no empty micro-batch.
 *
 * Stream partition descriptor (kind "cassandra-stream", v 1): a batch read's token ranges
 * plus the window, so a task needs no table metadata:
 *   { "kind": "cassandra-stream", "v": 1, "partitionKey": ["id"], "ranges": [["-92..", "-80.."]],
 *     "window": { "mode": "column", "column": "ts", "type": "timestamp", "after": "1764979200000" | null,
 *                 "upTo": "1764979260000", "allowFiltering": true, "writetimeColumns": [] } }
 */
import { Schema } from "apache-arrow";
import cassandra from "cassandra-driver";
import { decodeDescriptor, encodeDescriptor } from "../../core/descriptor.js";
import { closestMatch } from "../../core/did-you-mean.js";
import { clip, invalidArgument } from "../../core/errors.js";
import type { Clock } from "../../core/clock.js";
import { parseStartingTimestamp } from "../../options/starting-position.js";
import type { RingInfo, TableDef } from "./client.js";
import type { CassandraOptions, StreamMode } from "./options.js";
import { columnsInSelectOrder, errorContext, partitionCount, splitRing, tokenBounds, type PlanContext } from "./planner.js";
import { PageFetcher, readQuery, tokenParam, type ReadWindow } from "./reader.js";
import { cqlTypeText, quoteIdentifier } from "./types.js";

export const STREAM_KIND = "cassandra-stream";
/** About this many rows per Spark partition of a micro-batch (from the offset's count). */
export const STREAM_ROWS_PER_PARTITION = 10_000;
/** Token ranges counted at once by latestOffset. */
const PROBE_CONCURRENCY = 4;

export type MarkType = "timestamp" | "timeuuid" | "bigint" | "writetime";
const COLUMN_TYPES = ["timestamp", "timeuuid", "bigint"] as const;

/** What a stream follows; an offset names it, so a checkpoint cannot be resumed on something else. */
export interface StreamTarget {
  /** `keyspace.table`. */
  table: string;
  mode: StreamMode;
  /** `column` mode only. */
  column?: string;
  type: MarkType;
}

export interface StreamOffset extends StreamTarget {
  mark: bigint | null;
  rows: number;
}

/** The resolved stream of one table: what offsets name, plus how to query it. */
export interface StreamSpec extends StreamTarget {
  keyspace: string;
  tableName: string;
  partitionKey: string[];
  /** Queries on the mark need ALLOW FILTERING (a clustering slice over token ranges does). */
  allowFiltering: boolean;
  /** `writetime` mode: the columns whose newest write time is the row's. */
  writetimeColumns: string[];
}

export interface StreamWindow {
  mode: StreamMode;
  column?: string;
  type: MarkType;
  after: string | null;
  upTo: string;
  allowFiltering: boolean;
  writetimeColumns: string[];
}

export interface StreamPartition {
  partitionKey: string[];
  ranges: Array<[string, string]>;
  whole?: boolean;
  window: StreamWindow;
}

/** What the driver-side calls need besides a client: the clock the time marks trail. */
export interface StreamContext extends PlanContext {
  clock: Clock;
}

const SAI_CLASS = /^(sai|(.*\.)?StorageAttachedIndex)$/i;

function unquoted(target: string): string {
  return /^".*"$/.test(target) ? target.slice(1, -1).replace(/""/g, '"') : target;
}

/** An SAI index on exactly this column (not on a collection's keys, values or entries). */
function hasSaiIndex(table: TableDef, column: string): boolean {
  return (table.indexes ?? []).some((index) => index.className !== undefined && SAI_CLASS.test(index.className) && unquoted(index.target) === column);
}

/** Multi-cell (non-frozen) collections and UDTs have a write time per element: they are left out of a row's write time. */
function hasSingleWriteTime(type: TableDef["columns"][number]["type"]): boolean {
  if (type.kind === "list" || type.kind === "set" || type.kind === "map" || type.kind === "udt") return type.frozen;
  return type.kind !== "unsupported" && !(type.kind === "scalar" && type.name === "counter");
}

/** Checks the stream options against the table: everything that can refuse a stream, before any query. */
export function resolveStreamSpec(table: TableDef, options: CassandraOptions): StreamSpec {
  const where = `${table.keyspace}.${table.name}`;
  const base = { keyspace: table.keyspace, tableName: table.name, table: where, partitionKey: table.partitionKeys };
  if (options.stream_mode === "writetime") {
    if (options.stream_column !== undefined) {
      throw invalidArgument(
        "OPTION_CONFLICT",
        `Options 'stream_column' and stream_mode 'writetime' exclude each other: a writetime stream follows each row's write time. Remove 'stream_column', or set stream_mode 'column' to follow that column.`,
        { option: "stream_column" },
      );
    }
    const keys = new Set([...table.partitionKeys, ...table.clusteringKeys]);
    const writetimeColumns = columnsInSelectOrder(table)
      .filter((c) => !keys.has(c.name) && hasSingleWriteTime(c.type))
      .map((c) => c.name);
    if (writetimeColumns.length === 0) {
      throw invalidArgument(
        "STREAM_WRITETIME_NO_COLUMNS",
        `Table ${where} has no regular column with a single write time (only key columns, counters or non-frozen collections), so stream_mode 'writetime' cannot tell when a row was written. Use stream_mode 'column' with a timestamp, timeuuid or bigint column.`,
        { keyspace: table.keyspace, table: table.name, option: "stream_mode" },
      );
    }
    return { ...base, mode: "writetime", type: "writetime", allowFiltering: false, writetimeColumns };
  }
  const name = options.stream_column;
  if (name === undefined) {
    throw invalidArgument(
      "STREAM_COLUMN_REQUIRED",
      `A streaming read of Cassandra table ${where} needs option 'stream_column': a timestamp, timeuuid or bigint column whose value grows with time (the first clustering column, or one with an SAI index). A table without one can be streamed by write time with .option("stream_mode", "writetime").`,
      { option: "stream_column", keyspace: table.keyspace, table: table.name },
    );
  }
  const column = table.columns.find((c) => c.name === name);
  if (!column) {
    const names = columnsInSelectOrder(table).map((c) => c.name);
    const suggestion = closestMatch(name, names);
    throw invalidArgument(
      "COLUMN_UNKNOWN",
      `Option 'stream_column' names '${clip(name)}', which is not a column of table ${where}.${suggestion ? ` Did you mean '${suggestion}'? (names are case-sensitive)` : ""} Its columns: ${names.join(", ")}.`,
      { option: "stream_column", column: clip(name), keyspace: table.keyspace, table: table.name, suggestion: suggestion ?? "" },
    );
  }
  const cqlType = column.type;
  const type = cqlType.kind === "scalar" ? COLUMN_TYPES.find((t) => t === cqlType.name) : undefined;
  if (type === undefined) {
    throw invalidArgument(
      "STREAM_COLUMN_TYPE",
      `Option 'stream_column' names '${name}' of table ${where}, whose type is ${cqlTypeText(column.type)}: a stream column must be a timestamp, timeuuid or bigint whose value grows with time.`,
      { option: "stream_column", column: name, type: cqlTypeText(column.type) },
    );
  }
  const firstClustering = table.clusteringKeys[0] === name;
  const indexed = hasSaiIndex(table, name);
  if (!firstClustering && !indexed && !options.allow_filtering) {
    const role = table.partitionKeys.includes(name) ? "a partition-key column" : table.clusteringKeys.includes(name) ? "a clustering column after the first" : "a regular column";
    throw invalidArgument(
      "STREAM_COLUMN_NOT_INDEXED",
      `Option 'stream_column' names '${name}', ${role} of table ${where} without an SAI index, so every micro-batch would scan and filter the whole table. ` +
        `Create one with CREATE INDEX ON ${quoteIdentifier(table.keyspace)}.${quoteIdentifier(table.name)} (${quoteIdentifier(name)}) USING 'sai', stream a table whose first clustering column it is, or set .option("allow_filtering", "true") to accept the scans.`,
      { option: "stream_column", column: name, keyspace: table.keyspace, table: table.name },
    );
  }
  return { ...base, mode: "column", column: name, type, allowFiltering: !indexed, writetimeColumns: [] };
}

// ---------------------------------------------------------------------------------------
// Offsets
// ---------------------------------------------------------------------------------------

export function serializeStreamOffset(offset: StreamOffset): string {
  return JSON.stringify({
    table: offset.table,
    mode: offset.mode,
    ...(offset.column !== undefined ? { column: offset.column } : {}),
    type: offset.type,
    mark: offset.mark === null ? null : offset.mark.toString(),
    rows: offset.rows,
  });
}

function offsetInvalid(what: string, detail: string): never {
  throw invalidArgument("STREAM_OFFSET_INVALID", `The ${what} offset ${detail}; it must come from this service (a checkpoint of a pycassandra streaming read).`, { offset: what });
}

export function parseStreamOffset(text: string, what: string): StreamOffset {
  if (text.trim() === "") offsetInvalid(what, "is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    offsetInvalid(what, "is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) offsetInvalid(what, "is not a Cassandra stream offset");
  const { table, mode, column, type, mark, rows } = parsed as Record<string, unknown>;
  const valid =
    typeof table === "string" &&
    (mode === "column" || mode === "writetime") &&
    (mode === "writetime") === (type === "writetime") &&
    (column === undefined || typeof column === "string") &&
    (mode === "writetime") === (column === undefined) &&
    (type === "writetime" || (COLUMN_TYPES as readonly unknown[]).includes(type)) &&
    (mark === null || (typeof mark === "string" && /^-?\d+$/.test(mark))) &&
    typeof rows === "number" &&
    Number.isSafeInteger(rows) &&
    rows >= 0;
  if (!valid) offsetInvalid(what, "is not a Cassandra stream offset");
  return { table, mode, ...(column !== undefined ? { column } : {}), type: type as MarkType, mark: mark === null ? null : BigInt(mark), rows };
}

function describeTargetOf(t: StreamTarget): string {
  return t.mode === "writetime" ? `${t.table} by write time` : `${t.table} by column ${t.column} (${t.type})`;
}

/** An offset from a checkpoint of another stream (another table, column or mode) is refused. */
export function checkOffsetTarget(offset: StreamOffset, spec: StreamSpec): void {
  if (offset.table === spec.table && offset.mode === spec.mode && offset.column === spec.column && offset.type === spec.type) return;
  throw invalidArgument(
    "STREAM_OFFSET_OTHER_TABLE",
    `The checkpoint's offset belongs to a stream of ${describeTargetOf(offset)}, but this query streams ${describeTargetOf(spec)}. Use a new checkpointLocation for a query on another table, column or stream_mode.`,
    { offset_table: offset.table, table: spec.table },
  );
}

const compareBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** The mark the present allows: the clock less the lag (undefined for bigint columns, which have no clock). */
export function clockMark(spec: Pick<StreamTarget, "type">, nowMs: number, lagMs: number): bigint | undefined {
  const ms = BigInt(Math.floor(nowMs - lagMs));
  if (spec.type === "writetime") return ms * 1000n;
  return spec.type === "bigint" ? undefined : ms;
}

/** Where a new query starts: the mark just before the first row it reads (null: before every row). */
function startingMark(spec: StreamSpec, text: string): bigint | null | "latest" {
  const value = text.trim();
  const lower = value.toLowerCase();
  if (lower === "earliest") return null;
  if (lower === "latest") return "latest";
  if (spec.type === "bigint") {
    if (/^[+-]?\d+$/.test(value)) {
      const n = BigInt(value);
      // From the smallest bigint on is every row.
      if (n === -(1n << 63n)) return null;
      if (n > -(1n << 63n) && n < 1n << 63n) return n - 1n;
    }
  } else {
    const at = parseStartingTimestamp(value);
    if (at) return clockMark(spec, at.getTime(), 0)! - 1n;
    if (spec.type === "timeuuid" && /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
      return BigInt(cassandra.types.TimeUuid.fromString(value).getDate().getTime()) - 1n;
    }
  }
  const expected =
    spec.type === "bigint"
      ? "earliest, latest or a bigint value of the column (rows from that value on)"
      : `earliest, latest or an ISO-8601 timestamp such as 2026-11-25T10:00:00Z${spec.type === "timeuuid" ? " or a timeuuid" : ""} (rows from that moment on)`;
  throw invalidArgument("OPTION_INVALID_VALUE", `Option 'starting_position' has the invalid value '${clip(text)}' for a stream of ${describeTargetOf(spec)}: expected ${expected}.`, {
    option: "starting_position",
    value: clip(text),
  });
}

// ---------------------------------------------------------------------------------------
// Windows: the conditions of a micro-batch's rows
// ---------------------------------------------------------------------------------------

/** How a stream's rows are selected, without the bounds. */
type WindowShape = Omit<StreamWindow, "after" | "upTo">;

function shapeOf(spec: StreamSpec): WindowShape {
  return {
    mode: spec.mode,
    ...(spec.column !== undefined ? { column: spec.column } : {}),
    type: spec.type,
    allowFiltering: spec.allowFiltering,
    writetimeColumns: spec.writetimeColumns,
  };
}

/** The newest write time among a row's extra columns, or undefined when none is set. */
function rowWriteTime(values: unknown[][], extraStart: number, count: number, row: number): bigint | undefined {
  let newest: bigint | undefined;
  for (let j = 0; j < count; j++) {
    const v = values[extraStart + j]![row];
    if (v === null || v === undefined) continue;
    const t = typeof v === "bigint" ? v : BigInt(String(v));
    if (newest === undefined || t > newest) newest = t;
  }
  return newest;
}

/** The window (after, upTo] as read conditions: on the column (bound values), or write times selected and tested per row. */
export function readWindow(window: WindowShape, after: bigint | null, upTo: bigint | null): ReadWindow {
  if (window.mode === "writetime") {
    const count = window.writetimeColumns.length;
    return {
      conditions: [],
      params: [],
      columns: window.writetimeColumns.map((c) => `WRITETIME(${quoteIdentifier(c)})`),
      allowFiltering: false,
      keep: (values, extraStart, row) => {
        const t = rowWriteTime(values, extraStart, count, row);
        return t !== undefined && (after === null || t > after) && (upTo === null || t <= upTo);
      },
    };
  }
  const column = quoteIdentifier(window.column!);
  const term = window.type === "timeuuid" ? "maxTimeuuid(?)" : "?";
  const bind = (mark: bigint): unknown => (window.type === "bigint" ? mark : new Date(Number(mark)));
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (after !== null) {
    conditions.push(`${column} > ${term}`);
    params.push(bind(after));
  }
  if (upTo !== null) {
    conditions.push(`${column} <= ${term}`);
    params.push(bind(upTo));
  }
  return { conditions, params, columns: [], allowFiltering: window.allowFiltering };
}

/** A row's mark from the value the probe selected (a Date, a TimeUuid or a bigint). */
function markOf(type: MarkType, value: unknown): bigint | undefined {
  if (value === null || value === undefined) return undefined;
  if (type === "bigint") return typeof value === "bigint" ? value : BigInt(String(value));
  if (type === "timestamp") return BigInt((value as Date).getTime());
  return BigInt((value as cassandra.types.TimeUuid).getDate().getTime());
}

/**
 * Counts marks and keeps the smallest `limit + 1` of them, in bounded memory, so the mark
 * can be moved back to keep a micro-batch under the limit.
 */
export class WindowCounter {
  rows = 0;
  max: bigint | null = null;
  private min: bigint | null = null;
  /** Rows at the smallest mark: a cut can never leave them out, however many they are. */
  private atMin = 0;
  private kept: BigInt64Array;
  private size = 0;

  constructor(private readonly limit: number | undefined) {
    this.kept = new BigInt64Array(limit === undefined ? 0 : Math.min(2 * (limit + 1), 65_536));
  }

  add(mark: bigint): void {
    this.rows++;
    if (this.max === null || mark > this.max) this.max = mark;
    if (this.min === null || mark < this.min) {
      this.min = mark;
      this.atMin = 1;
    } else if (mark === this.min) {
      this.atMin++;
    }
    if (this.limit === undefined) return;
    if (this.size === this.kept.length) {
      if (this.kept.length < 2 * (this.limit + 1)) {
        const grown = new BigInt64Array(Math.min(this.kept.length * 2, 2 * (this.limit + 1)));
        grown.set(this.kept);
        this.kept = grown;
      } else {
        this.compact();
      }
    }
    this.kept[this.size++] = mark;
  }

  private compact(): void {
    this.kept.subarray(0, this.size).sort();
    this.size = Math.min(this.size, this.limit! + 1);
  }

  /** Over the limit: the largest mark with at most `limit` rows at or below it (at least the smallest mark), and its row count. */
  cut(): { mark: bigint; rows: number } | undefined {
    if (this.limit === undefined || this.rows <= this.limit) return undefined;
    this.compact();
    const first = this.kept[0]!;
    const mark = this.kept[this.limit]! - 1n;
    // More rows than the limit share the smallest mark: they all go, as one micro-batch.
    if (mark < first) return { mark: first, rows: this.atMin };
    // Every row at or below `mark` is among the kept ones: the (limit + 1)th smallest is above it.
    let rows = 0;
    while (rows < this.size && this.kept[rows]! <= mark) rows++;
    return { mark, rows };
  }
}

/** Every token range of the ring (start, end], or undefined for a partitioner without numeric tokens. */
function ringRanges(ring: RingInfo): Array<[string, string]> | undefined {
  const bounds = tokenBounds(ring.partitioner);
  if (!bounds) return undefined;
  return splitRing(
    ring.tokens.map((t) => BigInt(t)),
    bounds,
    1,
  )[0]!.map(([s, e]) => [s.toString(), e.toString()]);
}

/** Reads only the marks of the rows in (after, upTo] over the whole ring (upTo null: no upper bound). */
export async function probeWindow(ctx: StreamContext, options: CassandraOptions, spec: StreamSpec, after: bigint | null, upTo: bigint | null, limit: number | undefined): Promise<WindowCounter> {
  const window = readWindow(shapeOf(spec), after, upTo);
  const ring = await ctx.api.ring();
  const ranges = ringRanges(ring);
  const probeColumns = spec.mode === "writetime" ? window.columns : [quoteIdentifier(spec.column!)];
  const query = readQuery(spec.keyspace, spec.tableName, spec.partitionKey, new Schema([]), options.filter, window.allowFiltering || options.allow_filtering, ranges !== undefined, {
    conditions: window.conditions,
    columns: probeColumns,
  });
  const fetcher = new PageFetcher(
    {
      api: ctx.api,
      keyspace: spec.keyspace,
      table: spec.tableName,
      query,
      consistency: options.consistency,
      pageSize: options.read_page_size,
      retry: { maxRetries: options.max_retries, maxRetrySeconds: options.max_retry_seconds },
      clock: ctx.clock,
      errorContext: errorContext(ctx, options, "stream", options.filter),
      logger: ctx.logger,
    },
    ctx.signal,
  );
  const counter = new WindowCounter(limit);
  // Column 0 is the key column a zero-field read selects; the marks follow it.
  const count = (page: { rowCount: number; values: unknown[][] }) => {
    for (let r = 0; r < page.rowCount; r++) {
      if (window.keep && !window.keep(page.values, 1, r)) continue;
      const mark = spec.mode === "writetime" ? rowWriteTime(page.values, 1, probeColumns.length, r) : markOf(spec.type, page.values[1]![r]);
      if (mark !== undefined) counter.add(mark);
    }
  };
  const paramsOf = (range: [string, string] | undefined) => [...(range ? range.map(tokenParam) : []), ...window.params];
  const work = ranges ?? [undefined];
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const range = work[next++];
      for await (const page of fetcher.pages(paramsOf(range))) count(page);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, work.length) }, worker));
  ctx.logger.debug("counted Cassandra stream window", { table: spec.table, after: after?.toString(), upTo: upTo?.toString(), rows: counter.rows, retries: fetcher.retried });
  return counter;
}

// ---------------------------------------------------------------------------------------
// The driver's calls
// ---------------------------------------------------------------------------------------

export async function initialOffset(ctx: StreamContext, options: CassandraOptions, spec: StreamSpec): Promise<StreamOffset> {
  const target: StreamTarget = { table: spec.table, mode: spec.mode, ...(spec.column !== undefined ? { column: spec.column } : {}), type: spec.type };
  const start = startingMark(spec, options.starting_position!);
  if (start !== "latest") return { ...target, mark: start, rows: 0 };
  const now = clockMark(spec, ctx.clock.now(), options.stream_lag_ms);
  if (now !== undefined) return { ...target, mark: now, rows: 0 };
  // A bigint column has no clock: "latest" is the largest value present.
  const counter = await probeWindow(ctx, options, spec, null, null, undefined);
  return { ...target, mark: counter.max, rows: 0 };
}

export interface LatestLimits {
  maxRows: number | undefined;
  /** Never past this offset (AvailableNow's target). */
  bound: StreamOffset | undefined;
}

/** The offset the next micro-batch ends at, or `start` itself when no row is past it. */
export async function latestOffset(ctx: StreamContext, options: CassandraOptions, spec: StreamSpec, start: StreamOffset, limits: LatestLimits): Promise<StreamOffset> {
  let upTo = clockMark(spec, ctx.clock.now(), options.stream_lag_ms) ?? null;
  const bound = limits.bound;
  if (bound) {
    if (bound.mark === null) return start;
    // AvailableNow without a limit: its target was counted from this start a moment ago; no second count.
    if (limits.maxRows === undefined && bound.rows > 0 && (start.mark === null || start.mark < bound.mark)) return bound;
    upTo = upTo === null || bound.mark < upTo ? bound.mark : upTo;
  }
  if (upTo !== null && start.mark !== null && upTo <= start.mark) return start;
  const counter = await probeWindow(ctx, options, spec, start.mark, upTo, limits.maxRows);
  if (counter.rows === 0) return start;
  const cut = counter.cut();
  if (cut) return { ...start, mark: cut.mark, rows: cut.rows };
  return { ...start, mark: upTo ?? counter.max, rows: counter.rows };
}

/**
 * Micro-batch (start, end] as token-range partitions; the same offsets always give the same
 * partitions, except in write-time mode, whose micro-batches scan the whole table and so are
 * split like a batch read, by the table's size (`tableBytes`, from size estimates): a replay
 * may split differently and still reads the same rows.
 */
export function planPartitions(options: CassandraOptions, spec: StreamSpec, ring: RingInfo, start: StreamOffset, end: StreamOffset, tableBytes = 0n): Uint8Array[] {
  if (end.mark === null || (start.mark !== null && compareBig(end.mark, start.mark) <= 0)) return [];
  const window: StreamWindow = { ...shapeOf(spec), after: start.mark === null ? null : start.mark.toString(), upTo: end.mark.toString() };
  const bounds = tokenBounds(ring.partitioner);
  if (!bounds) return [encodeDescriptor(STREAM_KIND, { partitionKey: spec.partitionKey, ranges: [], whole: true, window } satisfies StreamPartition)];
  const count =
    spec.mode === "writetime"
      ? partitionCount(options, tableBytes, ring.nodes)
      : (options.read_partitions ?? Math.min(100_000, Math.max(1, Math.ceil(end.rows / STREAM_ROWS_PER_PARTITION))));
  const groups = splitRing(
    ring.tokens.map((t) => BigInt(t)),
    bounds,
    count,
  ).filter((g) => g.length > 0);
  return groups.map((ranges) =>
    encodeDescriptor(STREAM_KIND, { partitionKey: spec.partitionKey, ranges: ranges.map(([s, e]) => [s.toString(), e.toString()]), window } satisfies StreamPartition),
  );
}

export function decodeStreamPartition(bytes: Uint8Array): StreamPartition {
  const partition = decodeDescriptor<StreamPartition>(STREAM_KIND, bytes);
  const w = partition.window as Partial<StreamWindow> | undefined;
  const digits = (v: unknown) => typeof v === "string" && /^-?\d+$/.test(v);
  const validWindow =
    typeof w === "object" &&
    w !== null &&
    (w.mode === "column" || w.mode === "writetime") &&
    (w.mode === "writetime") === (w.type === "writetime") &&
    (w.type === "writetime" || (COLUMN_TYPES as readonly unknown[]).includes(w.type)) &&
    (w.mode === "writetime" || typeof w.column === "string") &&
    (w.after === null || digits(w.after)) &&
    digits(w.upTo) &&
    typeof w.allowFiltering === "boolean" &&
    Array.isArray(w.writetimeColumns) &&
    w.writetimeColumns.every((c) => typeof c === "string") &&
    (w.mode === "column" || w.writetimeColumns.length > 0);
  const validRanges =
    Array.isArray(partition.partitionKey) &&
    partition.partitionKey.length > 0 &&
    partition.partitionKey.every((k) => typeof k === "string") &&
    Array.isArray(partition.ranges) &&
    partition.ranges.every((r) => Array.isArray(r) && r.length === 2 && r.every(digits) && BigInt(r[0]) < BigInt(r[1])) &&
    (partition.ranges.length > 0 || partition.whole === true);
  if (!validWindow || !validRanges) {
    throw invalidArgument("DESCRIPTOR_INVALID", "The Cassandra stream descriptor is malformed; it must come from this service's PlanStreamRead call.", { kind: STREAM_KIND });
  }
  return { partitionKey: partition.partitionKey, ranges: partition.ranges, ...(partition.whole ? { whole: true } : {}), window: w as StreamWindow };
}
