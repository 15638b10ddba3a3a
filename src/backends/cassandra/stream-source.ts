/**
 * `spark.readStream.format("pycassandra")` behind the Connector contract: the driver's
 * offset and planning calls, and the task's read of one micro-batch partition. A read is a
 * stream exactly when `starting_position` is set, as for every format.
 */
import type { Schema } from "apache-arrow";
import type { DescribeResult, LatestOffsetInput } from "../../core/connector.js";
import { refuseStartingPositionInBatchRead, requireStartingPosition } from "../../core/stream-read.js";
import type { CassandraOptions } from "./options.js";
import { checkReadSchema, describeSource, estimatedBytes, loadTable, type PlanContext } from "./planner.js";
import type { ReadWindow } from "./reader.js";
import {
  checkOffsetTarget,
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  readWindow,
  resolveStreamSpec,
  serializeStreamOffset,
  type StreamContext,
  type StreamWindow,
  type StreamSpec,
} from "./stream.js";

export function isStreamRead(options: CassandraOptions): boolean {
  return options.starting_position !== undefined;
}

export function requireStreamRead(options: CassandraOptions): void {
  requireStartingPosition(
    "pycassandra",
    isStreamRead(options),
    "earliest (every row), latest (rows from now on) or a value of the stream column (an ISO-8601 timestamp, a timeuuid or a bigint), together with 'stream_column' (or stream_mode 'writetime')",
  );
}

export function refuseStreamOptionInBatchRead(options: CassandraOptions): void {
  refuseStartingPositionInBatchRead("pycassandra", isStreamRead(options), `table ${options.keyspace}.${options.table}`, { keyspace: options.keyspace, table: options.table });
}

/** The table, its stream (every stream option checked) and the schema Spark reads. */
async function streamOf(ctx: PlanContext, options: CassandraOptions, schema: Schema | undefined): Promise<StreamSpec> {
  requireStreamRead(options);
  const table = await loadTable(ctx, options, "stream");
  const spec = resolveStreamSpec(table, options);
  if (schema) checkReadSchema(schema, table);
  return spec;
}

/** A stream's rows have the table's columns, as a batch read's; its options are checked here, before the query starts. */
export async function describeStream(ctx: PlanContext, options: CassandraOptions, userSchema: Schema | undefined): Promise<DescribeResult> {
  await streamOf(ctx, options, userSchema);
  return describeSource(ctx, options, userSchema);
}

export async function streamInitialOffset(ctx: StreamContext, options: CassandraOptions, schema: Schema): Promise<string> {
  const spec = await streamOf(ctx, options, schema);
  return serializeStreamOffset(await initialOffset(ctx, options, spec));
}

export async function streamLatestOffset(
  ctx: StreamContext,
  options: CassandraOptions,
  schema: Schema,
  request: Pick<LatestOffsetInput, "start" | "maxRecords" | "endBound" | "catchUp">,
): Promise<string> {
  const spec = await streamOf(ctx, options, schema);
  const start = parseStreamOffset(request.start, "start");
  checkOffsetTarget(start, spec);
  const bound = request.endBound !== undefined && request.endBound !== "" ? parseStreamOffset(request.endBound, "end bound") : undefined;
  if (bound) checkOffsetTarget(bound, spec);
  // A catch-up (AvailableNow's target, Spark 4.0/4.1) goes to the present in one offset.
  const limits = request.catchUp ? { maxRows: undefined, bound: undefined } : { maxRows: request.maxRecords, bound };
  return serializeStreamOffset(await latestOffset(ctx, options, spec, start, limits));
}

export async function planStreamPartitions(ctx: PlanContext, options: CassandraOptions, schema: Schema, startText: string, endText: string): Promise<Uint8Array[]> {
  const spec = await streamOf(ctx, options, schema);
  const start = parseStreamOffset(startText, "start");
  const end = parseStreamOffset(endText, "end");
  checkOffsetTarget(start, spec);
  checkOffsetTarget(end, spec);
  const ring = await ctx.api.ring();
  // A write-time micro-batch scans the whole table: it is split by the table's size, as a batch read is.
  const bytes = spec.mode === "writetime" && options.read_partitions === undefined ? estimatedBytes(await ctx.api.sizeEstimates(options.keyspace, options.table)) : 0n;
  return planPartitions(options, spec, ring, start, end, bytes);
}

/** What a micro-batch partition's read adds to a batch read of its token ranges. */
export function streamReadWindow(window: StreamWindow): ReadWindow {
  return readWindow(window, window.after === null ? null : BigInt(window.after), BigInt(window.upTo));
}
