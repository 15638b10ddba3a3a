/**
 * Driver-side planning: schema resolution, read partitioning by token range, and write
 * validation and preparation. Everything that can reject a job happens here, before any
 * task runs.
 *
 * Read partition descriptor (kind "cassandra-token-ranges", v 1), one per Spark partition:
 *   { "kind": "cassandra-token-ranges", "v": 1, "partitionKey": ["id"],
 *     "ranges": [["-9223372036854775808", "-8070450532247928833"], ["-8070450532247928833", "-7905747460161236407"]] }
 * Each pair [start, end] is the token range (start, end]: the task reads it with
 * `token(<partition key>) > start AND token(<partition key>) <= end`, one query per pair.
 * The pairs of all partitions together cover the whole ring exactly once, from the
 * partitioner's minimum token (which no key hashes to) to its maximum, so every row is
 * read exactly once, including the range that wraps around the ring: it is read as
 * (last node token, maximum] and (minimum, first node token]. With a partitioner that has
 * no numeric tokens (ByteOrderedPartitioner) there is one partition, `"ranges": [], "whole": true`,
 * which reads the table without a token restriction.
 *
 * How the ring is split: the ring is cut at every node token (vnodes give many ranges),
 * so no query spans two nodes' ranges, and then into P partitions of equal token width
 * (Murmur3 spreads keys uniformly over the tokens, so equal width is equal data).
 * P is `read_partitions` when given, else the table's size from `system.size_estimates`
 * (sum of partitions_count x mean_partition_size over every node's primary ranges) divided
 * by `split_size_mb`, and at least 1 + 2 x the number of nodes (so a small or freshly
 * written table, whose estimates Cassandra has not computed yet, still reads in parallel).
 *
 * Write plan (kind "cassandra-write", v 1), the validated target every write task uses
 * without reading the schema again:
 *   { "kind": "cassandra-write", "v": 1, "keyspace": "myks", "table": "users",
 *     "partitionKey": ["id"], "clusteringKey": ["ts"],
 *     "columns": [{ "name": "id", "type": { "kind": "scalar", "name": "uuid" } }, ...],   // the DataFrame's columns that are written, in its order
 *     "deleteFlag": { "column": "is_deleted", "value": "true" },                         // absent without delete flag
 *     "overwrite": { "truncatedAt": "2026-01-02T03:04:05.000Z" } }                      // mode("overwrite") only
 */
import { Field, Schema, Type } from "apache-arrow";
import type { DescribeResult } from "../../core/connector.js";
import { decodeDescriptor, encodeDescriptor } from "../../core/descriptor.js";
import { closestMatch } from "../../core/did-you-mean.js";
import { ConduitError, failedPrecondition, invalidArgument } from "../../core/errors.js";
import { checkDeleteFlagColumn } from "../../core/delete-flag.js";
import { checkDistinctColumnNames } from "../../arrow/schema-checks.js";
import type { Logger } from "../../core/logger.js";
import { describeType } from "../../arrow/values.js";
import type { CassandraApi, ClientConfig, ColumnDef, TableDef } from "./client.js";
import { describeTarget } from "./client.js";
import { keyspaceNotFound, tableNotFound, translateCassandraError, type ErrorContext } from "./errors.js";
import type { CassandraOptions } from "./options.js";
import { readQuery, tokenParam } from "./reader.js";
import { arrowTypeOf, cqlTypeText, quoteIdentifier, readConverter, writeConverter, type CqlType } from "./types.js";

export const READ_KIND = "cassandra-token-ranges";
export const WRITE_KIND = "cassandra-write";

export interface ReadPartition {
  /** The table's partition-key columns, the arguments of `token(...)`. */
  partitionKey: string[];
  /** Token ranges (start, end], as decimal text. */
  ranges: Array<[string, string]>;
  /** Read the whole table without a token restriction (partitioners without numeric tokens). */
  whole?: boolean;
}

export interface WriteColumn {
  name: string;
  type: CqlType;
}

export interface WritePlan {
  keyspace: string;
  table: string;
  partitionKey: string[];
  clusteringKey: string[];
  columns: WriteColumn[];
  deleteFlag?: { column: string; value: string };
  /** Set when planning truncated the table for mode("overwrite"): an abort must say the old rows are gone. */
  overwrite?: { truncatedAt: string };
}

/** What planning calls need: a client, where it points (for messages), logs, cancellation. */
export interface PlanContext {
  api: CassandraApi;
  config: Pick<ClientConfig, "contactPoints" | "tls">;
  username: string | undefined;
  logger: Logger;
  signal: AbortSignal;
}

export function errorContext(ctx: PlanContext, options: Pick<CassandraOptions, "keyspace" | "table">, operation: string, filter?: string): ErrorContext {
  return {
    target: describeTarget(ctx.config),
    tls: ctx.config.tls !== undefined,
    keyspace: options.keyspace,
    table: options.table,
    operation,
    username: ctx.username,
    ...(filter !== undefined ? { filter } : {}),
  };
}

async function call<T>(ctx: PlanContext, options: Pick<CassandraOptions, "keyspace" | "table">, operation: string, fn: () => Promise<T>, filter?: string): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw translateCassandraError(error, errorContext(ctx, options, operation, filter));
  }
}

/** The table's definition; NOT_FOUND with a did-you-mean for a missing keyspace or table. */
export async function loadTable(ctx: PlanContext, options: Pick<CassandraOptions, "keyspace" | "table">, operation: string): Promise<TableDef> {
  const table = await call(ctx, options, operation, () => ctx.api.getTable(options.keyspace, options.table));
  if (table) return table;
  const target = describeTarget(ctx.config);
  const keyspaces = await call(ctx, options, operation, () => ctx.api.keyspaceNames());
  if (!keyspaces.includes(options.keyspace)) throw keyspaceNotFound(options.keyspace, keyspaces, target);
  const tables = await call(ctx, options, operation, () => ctx.api.tableNames(options.keyspace));
  throw tableNotFound(options.keyspace, options.table, tables, target);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Columns in `SELECT *` order: partition key, clustering key, static columns, regular columns (each by name). */
export function columnsInSelectOrder(table: TableDef): ColumnDef[] {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const keys = new Set([...table.partitionKeys, ...table.clusteringKeys]);
  const rest = table.columns.filter((c) => !keys.has(c.name));
  return [
    ...[...table.partitionKeys, ...table.clusteringKeys].map((name) => byName.get(name)!).filter((c) => c !== undefined),
    ...rest.filter((c) => c.isStatic).sort((a, b) => compareNames(a.name, b.name)),
    ...rest.filter((c) => !c.isStatic).sort((a, b) => compareNames(a.name, b.name)),
  ];
}

function unknownColumn(name: string, table: TableDef, errorClass: string, what: string): ConduitError {
  const names = columnsInSelectOrder(table).map((c) => c.name);
  const suggestion = closestMatch(name, names);
  return invalidArgument(
    errorClass,
    `${what} '${name}' is not a column of table ${table.keyspace}.${table.name}.${suggestion ? ` Did you mean '${suggestion}'? (names are case-sensitive)` : ""} Its columns: ${names.join(", ")}.`,
    { column: name, keyspace: table.keyspace, table: table.name, suggestion: suggestion ?? "" },
  );
}

/** Checks a read schema against the table: every field is a column whose values convert to the field's type. */
export function checkReadSchema(schema: Schema, table: TableDef): void {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  for (const field of schema.fields) {
    const column = byName.get(field.name);
    if (!column) throw unknownColumn(field.name, table, "COLUMN_UNKNOWN", "Schema column");
    readConverter(column.type, field.type, field.name);
  }
}

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

/** The user's schema (checked against the table) or the table's columns in `SELECT *` order. */
export async function describeSource(ctx: PlanContext, options: CassandraOptions, userSchema: Schema | undefined): Promise<DescribeResult> {
  const table = await loadTable(ctx, options, "describe");
  if (userSchema) {
    checkReadSchema(userSchema, table);
    return { schema: userSchema, warnings: [] };
  }
  const warnings: string[] = [];
  const fields: Field[] = [];
  for (const column of columnsInSelectOrder(table)) {
    try {
      fields.push(new Field(column.name, arrowTypeOf(column.type, column.name), true));
    } catch (error) {
      if (!(error instanceof ConduitError) || error.errorClass !== "UNSUPPORTED_COLUMN_TYPE") throw error;
      warnings.push(`Column '${column.name}' of ${table.keyspace}.${table.name} has the unsupported CQL type ${cqlTypeText(column.type)} and is left out of the schema.`);
    }
  }
  return { schema: new Schema(fields), warnings };
}

/** Token bounds of a partitioner: `min` is exclusive (no key hashes to it), `max` inclusive. */
export interface TokenBounds {
  min: bigint;
  max: bigint;
}

export const MURMUR3_BOUNDS: TokenBounds = { min: -(1n << 63n), max: (1n << 63n) - 1n };
export const RANDOM_BOUNDS: TokenBounds = { min: -1n, max: 1n << 127n };

export function tokenBounds(partitioner: string): TokenBounds | undefined {
  if (/Murmur3Partitioner$/.test(partitioner)) return MURMUR3_BOUNDS;
  if (/RandomPartitioner$/.test(partitioner)) return RANDOM_BOUNDS;
  return undefined;
}

/**
 * Splits the ring into `partitions` groups of token ranges (start, end] of equal total
 * width, never letting a range cross a node token. Together the groups cover (min, max]
 * exactly once; a group is empty only when there are more partitions than tokens.
 */
export function splitRing(nodeTokens: readonly bigint[], bounds: TokenBounds, partitions: number): Array<Array<[bigint, bigint]>> {
  const count = Math.max(1, Math.floor(partitions));
  const width = bounds.max - bounds.min;
  const cuts: bigint[] = [];
  for (let k = 1; k < count; k++) cuts.push(bounds.min + (width * BigInt(k)) / BigInt(count));
  const inside = (t: bigint) => t > bounds.min && t < bounds.max;
  const points = [...new Set([bounds.min, bounds.max, ...nodeTokens.filter(inside), ...cuts.filter(inside)])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const groups: Array<Array<[bigint, bigint]>> = Array.from({ length: count }, () => []);
  let k = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    while (k < cuts.length && cuts[k]! <= start) k++;
    groups[k]!.push([start, points[i + 1]!]);
  }
  return groups;
}

const MB = 1024n * 1024n;

/** Table size in bytes from size estimates (0 when Cassandra has not computed any yet). */
export function estimatedBytes(estimates: ReadonlyArray<{ partitionsCount: bigint; meanPartitionSize: bigint }>): bigint {
  return estimates.reduce((total, e) => total + (e.partitionsCount > 0n && e.meanPartitionSize > 0n ? e.partitionsCount * e.meanPartitionSize : 0n), 0n);
}

/** Number of Spark partitions: `read_partitions`, else size / split size, at least 1 + 2 x nodes. */
export function partitionCount(options: Pick<CassandraOptions, "read_partitions" | "split_size_mb">, bytes: bigint, nodes: number): number {
  if (options.read_partitions !== undefined) return options.read_partitions;
  const split = BigInt(options.split_size_mb) * MB;
  const bySize = Number((bytes + split - 1n) / split);
  return Math.min(100_000, Math.max(bySize, 1 + 2 * Math.max(1, nodes)));
}

/** Checks the table, the schema and the filter (by running the read query on an empty range), then splits the ring. */
export async function planReadPartitions(ctx: PlanContext, options: CassandraOptions, schema: Schema): Promise<Uint8Array[]> {
  const table = await loadTable(ctx, options, "read");
  checkReadSchema(schema, table);
  const ring = await call(ctx, options, "read", () => ctx.api.ring());
  const bounds = tokenBounds(ring.partitioner);
  const query = readQuery(table.keyspace, table.name, table.partitionKeys, schema, options.filter, options.allow_filtering, bounds !== undefined);
  // The empty range (0, 0] makes Cassandra prepare and check the query without reading data.
  await call(
    ctx,
    options,
    "read",
    () => ctx.api.execute(query, bounds ? [tokenParam("0"), tokenParam("0")] : [], { consistency: options.consistency, fetchSize: 1 }),
    options.filter,
  );
  if (!bounds) {
    ctx.logger.info("Cassandra partitioner has no numeric tokens; reading in one partition", { partitioner: ring.partitioner });
    return [encodeDescriptor(READ_KIND, { partitionKey: table.partitionKeys, ranges: [], whole: true } satisfies ReadPartition)];
  }
  const estimates = options.read_partitions === undefined ? await call(ctx, options, "read", () => ctx.api.sizeEstimates(options.keyspace, options.table)) : [];
  const bytes = estimatedBytes(estimates);
  const count = partitionCount(options, bytes, ring.nodes);
  const groups = splitRing(
    ring.tokens.map((t) => BigInt(t)),
    bounds,
    count,
  ).filter((g) => g.length > 0);
  ctx.logger.debug("planned Cassandra read", { keyspace: options.keyspace, table: options.table, partitions: groups.length, estimatedBytes: bytes.toString(), nodeTokens: ring.tokens.length });
  return groups.map((ranges) => encodeDescriptor(READ_KIND, { partitionKey: table.partitionKeys, ranges: ranges.map(([s, e]) => [s.toString(), e.toString()]) } satisfies ReadPartition));
}

export function decodeReadPartition(bytes: Uint8Array): ReadPartition {
  const partition = decodeDescriptor<ReadPartition>(READ_KIND, bytes);
  const valid =
    Array.isArray(partition.partitionKey) &&
    partition.partitionKey.length > 0 &&
    partition.partitionKey.every((k) => typeof k === "string") &&
    Array.isArray(partition.ranges) &&
    partition.ranges.every((r) => Array.isArray(r) && r.length === 2 && r.every((t) => typeof t === "string" && /^-?\d+$/.test(t)) && BigInt(r[0]) < BigInt(r[1]));
  if (!valid || (partition.ranges.length === 0 && partition.whole !== true)) {
    throw invalidArgument("DESCRIPTOR_INVALID", "The Cassandra token-range descriptor is malformed; it must come from this service's PlanRead call.", { kind: READ_KIND });
  }
  return { partitionKey: partition.partitionKey, ranges: partition.ranges, ...(partition.whole ? { whole: true } : {}) };
}

// ---------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------

export function decodeWritePlan(bytes: Uint8Array): WritePlan {
  const plan = decodeDescriptor<WritePlan>(WRITE_KIND, bytes);
  if (typeof plan.keyspace !== "string" || typeof plan.table !== "string" || !Array.isArray(plan.partitionKey) || plan.partitionKey.length === 0 || !Array.isArray(plan.columns)) {
    throw invalidArgument("DESCRIPTOR_INVALID", "The Cassandra write plan has no table or key; it must come from this service's PlanWrite call.", { kind: WRITE_KIND });
  }
  return plan;
}

function columnList(schema: Schema): string {
  return schema.fields.length === 0 ? "(none)" : schema.fields.map((f) => f.name).join(", ");
}

/**
 * Validates a write: the table exists and has no counters, every primary-key column is in
 * the DataFrame, every DataFrame column is in the table (except the delete flag), every
 * type converts; a confirmed overwrite truncates the table.
 */
export async function planWriteTarget(ctx: PlanContext, options: CassandraOptions, schema: Schema, overwrite: boolean, streaming: boolean): Promise<Uint8Array> {
  const where = `${options.keyspace}.${options.table}`;
  checkDistinctColumnNames(schema, where);
  if (overwrite && streaming) {
    throw failedPrecondition(
      "STREAMING_OVERWRITE_UNSUPPORTED",
      `A streaming write to Cassandra table ${where} cannot replace the table's contents (outputMode "complete"). Use outputMode "append" or "update": each micro-batch then upserts its rows.`,
      { keyspace: options.keyspace, table: options.table },
    );
  }
  if (overwrite && !options.confirm_truncate) {
    throw failedPrecondition(
      "OVERWRITE_NOT_CONFIRMED",
      `mode("overwrite") replaces the contents of Cassandra table ${where}: the table is truncated (every row removed) before the rows are written. To confirm, set .option("confirm_truncate", "true"). To insert or update rows without removing the others, use mode("append").`,
      { keyspace: options.keyspace, table: options.table, option: "confirm_truncate" },
    );
  }
  const table = await loadTable(ctx, options, "write");
  const counters = table.columns.filter((c) => c.type.kind === "scalar" && c.type.name === "counter");
  if (counters.length > 0) {
    throw failedPrecondition(
      "COUNTER_TABLE_UNSUPPORTED",
      `Table ${where} has counter columns (${counters.map((c) => c.name).join(", ")}), which can only be incremented with UPDATE; format 'pycassandra' writes rows with INSERT. Read the table, or write to a table without counters.`,
      { keyspace: options.keyspace, table: options.table },
    );
  }
  const keyColumns = [...table.partitionKeys, ...table.clusteringKeys];
  const present = new Set(schema.fields.map((f) => f.name));
  const flagColumn = options.delete_flag_column;
  if (flagColumn !== undefined) {
    if (!present.has(flagColumn)) {
      const suggestion = closestMatch(flagColumn, [...present]);
      throw invalidArgument(
        "DELETE_FLAG_COLUMN_MISSING",
        `The DataFrame has no column '${flagColumn}', named by option 'delete_flag_column' for writes to ${where}.${suggestion ? ` Did you mean '${suggestion}'?` : ""} Columns present: ${columnList(schema)}.`,
        { option: "delete_flag_column", column: flagColumn, columns: columnList(schema), suggestion: suggestion ?? "" },
      );
    }
    checkDeleteFlagColumn(flagColumn, schema.fields.find((f) => f.name === flagColumn)!.type, options.delete_flag_value, where);
    if (keyColumns.includes(flagColumn)) {
      throw invalidArgument(
        "DELETE_FLAG_COLUMN_IS_KEY",
        `Option 'delete_flag_column' names '${flagColumn}', a primary-key column of ${where}. The delete flag must be a separate column (it is never written).`,
        { option: "delete_flag_column", column: flagColumn, keyspace: options.keyspace, table: options.table },
      );
    }
  }
  const missing = keyColumns.filter((k) => !present.has(k));
  if (missing.length > 0) {
    const hints = missing
      .map((m) => [m, closestMatch(m, [...present])] as const)
      .filter(([, s]) => s !== undefined)
      .map(([m, s]) => `'${s}' for '${m}'?`);
    throw invalidArgument(
      "KEY_COLUMN_MISSING",
      `The DataFrame lacks the primary-key column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")} of ${where} (primary key: ${table.partitionKeys.join(", ")}${table.clusteringKeys.length ? ` | clustering: ${table.clusteringKeys.join(", ")}` : ""}). Every row needs its full primary key.${hints.length ? ` Did you mean ${hints.join(" ")}` : ""} Columns present: ${columnList(schema)}.`,
      { columns: missing.join(", "), present: columnList(schema), keyspace: options.keyspace, table: options.table },
    );
  }
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const columns: WriteColumn[] = [];
  for (const field of schema.fields) {
    if (field.name === flagColumn) continue;
    const column = byName.get(field.name);
    if (!column) throw unknownColumn(field.name, table, "COLUMN_UNKNOWN", "DataFrame column");
    writeConverter(field.type, column.type, field.name);
    if (keyColumns.includes(field.name) && field.type.typeId === Type.Null) {
      throw invalidArgument("KEY_VALUE_NULL", `Primary-key column '${field.name}' of ${where} is all null (${describeType(field.type)}); keys can never be null.`, { column: field.name });
    }
    columns.push({ name: field.name, type: column.type });
  }

  let truncatedAt: string | undefined;
  if (overwrite) {
    await call(ctx, options, "TRUNCATE", () => ctx.api.execute(`TRUNCATE ${quoteIdentifier(options.keyspace)}.${quoteIdentifier(options.table)}`, [], { consistency: "ALL" }));
    ctx.logger.info("truncated Cassandra table for overwrite", { keyspace: options.keyspace, table: options.table });
    truncatedAt = new Date().toISOString();
  }

  const plan: WritePlan = {
    keyspace: table.keyspace,
    table: table.name,
    partitionKey: table.partitionKeys,
    clusteringKey: table.clusteringKeys,
    columns,
    ...(flagColumn !== undefined ? { deleteFlag: { column: flagColumn, value: options.delete_flag_value! } } : {}),
    ...(truncatedAt !== undefined ? { overwrite: { truncatedAt } } : {}),
  };
  return encodeDescriptor(WRITE_KIND, plan);
}
