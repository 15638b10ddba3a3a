/**
 * `spark.readStream.format("dynamodb")` behind the Connector contract: the driver's
 * offset and planning calls, and the task's read of one shard's records as Arrow batches.
 * A read is a change stream exactly when the `starting_position` option is set (Spark's
 * `schema()` cannot tell a streaming read from a batch one, so the options say it).
 */
import type { RecordBatch, Schema } from "apache-arrow";
import type { DescribeResult, LatestOffsetInput } from "../../core/connector.js";
import { decodeDescriptor, encodeDescriptor } from "../../core/descriptor.js";
import { clip, invalidArgument } from "../../core/errors.js";
import { refuseStartingPositionInBatchRead, requireStartingPosition } from "../../core/stream-read.js";
import type { DynamoDbOptions } from "./options.js";
import { parseStartingPosition } from "./options.js";
import { describeSource, describeTable, type PlanContext } from "./planner.js";
import {
  checkOffsetTable,
  initialOffset,
  latestOffset,
  parseStreamOffset,
  planPartitions,
  readPartition,
  serializeStreamOffset,
  type StreamContext,
  type StreamPartition,
} from "./stream.js";
import { ChangeBatchBuilder, changeEventSchema, checkChangeEventSchema } from "./stream-schema.js";

export const STREAM_KIND = "dynamodb-stream";
/** Change records per Arrow batch (one GetRecords page at most). */
const RECORDS_PER_BATCH = 1000;

export function isStreamRead(options: DynamoDbOptions): boolean {
  return options.starting_position !== undefined;
}

export function requireStreamRead(options: DynamoDbOptions): void {
  requireStartingPosition(
    "dynamodb",
    isStreamRead(options),
    "trim_horizon (the oldest change still in the table's stream), latest (changes from now on) or an ISO-8601 timestamp",
  );
}

export function refuseStreamOptionInBatchRead(options: DynamoDbOptions): void {
  refuseStartingPositionInBatchRead("dynamodb", isStreamRead(options), `table '${options.table_name}'`, { table: options.table_name });
}

/** The change event schema: the user's (checked), or built around the item schema inferred by sampling. */
export async function describeChangeStream(ctx: PlanContext, options: DynamoDbOptions, userSchema: Schema | undefined): Promise<DescribeResult> {
  if (userSchema) {
    checkChangeEventSchema(userSchema);
    await describeTable(ctx, options.table_name);
    return { schema: userSchema, warnings: [] };
  }
  const info = await describeTable(ctx, options.table_name);
  const item = await describeSource(ctx, options, undefined);
  const keys = [info.hashKey.name, ...(info.rangeKey ? [info.rangeKey.name] : [])];
  return { schema: changeEventSchema(item.schema, keys), warnings: item.warnings };
}

function offsetText(text: string, what: string) {
  if (text.trim() === "") throw invalidArgument("STREAM_OFFSET_INVALID", `The ${what} offset is empty.`, { offset: what });
  return parseStreamOffset(text);
}

export async function streamInitialOffset(ctx: StreamContext, options: DynamoDbOptions, schema: Schema): Promise<string> {
  requireStreamRead(options);
  checkChangeEventSchema(schema);
  return serializeStreamOffset(await initialOffset(ctx, parseStartingPosition(options.starting_position!)));
}

export async function streamLatestOffset(
  ctx: StreamContext,
  options: DynamoDbOptions,
  schema: Schema,
  request: Pick<LatestOffsetInput, "start" | "maxRecords" | "endBound" | "catchUp">,
): Promise<string> {
  requireStreamRead(options);
  checkChangeEventSchema(schema);
  const bound = request.endBound !== undefined ? offsetText(request.endBound, "end bound") : undefined;
  const start = offsetText(request.start, "start");
  const limits = request.catchUp ? { lineage: "same-call" as const } : { maxRecords: request.maxRecords, bound };
  return serializeStreamOffset(await latestOffset(ctx, start, limits));
}

export function planStreamPartitions(options: DynamoDbOptions, schema: Schema, start: string, end: string): Uint8Array[] {
  requireStreamRead(options);
  checkChangeEventSchema(schema);
  const from = offsetText(start, "start");
  const to = offsetText(end, "end");
  checkOffsetTable(from, options.table_name);
  checkOffsetTable(to, options.table_name);
  return planPartitions(from, to).map((partition) => encodeDescriptor(STREAM_KIND, partition));
}

export function decodeStreamPartition(bytes: Uint8Array): StreamPartition {
  const { streamArn, shardId, start, endSequenceNumber } = decodeDescriptor<StreamPartition>(STREAM_KIND, bytes);
  const digits = (v: unknown) => typeof v === "string" && /^[0-9]+$/.test(v);
  const startOk = start?.type === "TRIM_HORIZON" || (start?.type === "AFTER_SEQUENCE_NUMBER" && digits(start.sequenceNumber));
  if (typeof streamArn !== "string" || typeof shardId !== "string" || !startOk || !digits(endSequenceNumber)) {
    throw invalidArgument("DESCRIPTOR_INVALID", `The DynamoDB stream descriptor for shard '${clip(String(shardId))}' is incomplete; it must come from this service's PlanStreamRead.`, {
      kind: STREAM_KIND,
    });
  }
  return { streamArn, shardId, start, endSequenceNumber };
}

/** One partition's change events as Arrow batches of at most RECORDS_PER_BATCH rows, in shard order. */
export async function* readStreamPartition(ctx: StreamContext, options: DynamoDbOptions, schema: Schema, partition: StreamPartition): AsyncGenerator<RecordBatch> {
  checkChangeEventSchema(schema);
  checkOffsetTable({ streamArn: partition.streamArn, shards: {} }, options.table_name);
  const builder = new ChangeBatchBuilder(schema);
  let rows = 0;
  for await (const record of readPartition(ctx, partition)) {
    builder.append(record);
    if (builder.length >= RECORDS_PER_BATCH) {
      rows += builder.length;
      yield builder.flush();
    }
  }
  if (builder.length > 0) {
    rows += builder.length;
    yield builder.flush();
  }
  ctx.logger.debug("read DynamoDB stream partition", { table: options.table_name, shard: partition.shardId, rows });
}
