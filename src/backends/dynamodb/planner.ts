/**
 * Driver-side planning: schema resolution, read partitioning, and write validation and
 * preparation. Everything that can reject a job happens here, before any task runs.
 *
 * Read partition descriptor (kind "dynamodb-scan", v 1), one per parallel-scan segment:
 *   { "kind": "dynamodb-scan", "v": 1, "segment": 0, "totalSegments": 4 }
 * The table and read options come with every Read request; the descriptor only says which
 * slice of the parallel scan the task reads.
 *
 * Write plan (kind "dynamodb-write", v 1), the validated target every write task uses
 * without describing the table again:
 *   { "kind": "dynamodb-write", "v": 1, "table": "users",
 *     "hashKey": { "name": "id", "type": "S" },
 *     "rangeKey": { "name": "ts", "type": "N" },          // absent for hash-only tables
 *     "deleteFlag": { "column": "is_deleted", "value": "true" },  // absent without delete flag
 *     "overwrite": { "truncatedAt": "2026-01-02T03:04:05.000Z", "itemsDeleted": 1200 } }  // mode("overwrite") only
 * `overwrite` is what an abort must tell the user: the old contents were deleted at
 * planning time, before any task ran, so a failed overwrite leaves only what tasks wrote.
 */
import { setMaxListeners } from "node:events";
import type { AttributeDefinition, CreateTableCommandInput, KeySchemaElement, TableDescription } from "@aws-sdk/client-dynamodb";
import type { Field, Schema } from "apache-arrow";
import type { DescribeResult } from "../../core/connector.js";
import { decodeDescriptor, encodeDescriptor } from "../../core/descriptor.js";
import { closestMatch } from "../../core/did-you-mean.js";
import { ConduitError, failedPrecondition, invalidArgument } from "../../core/errors.js";
import { checkDeleteFlagColumn } from "../../core/delete-flag.js";
import type { Logger } from "../../core/logger.js";
import { describeType } from "../../arrow/values.js";
import type { Clock } from "../../core/clock.js";
import { describeTarget, type ClientConfig, type DynamoDbApi } from "./client.js";
import { translateDynamoDbError, type ErrorContext } from "./errors.js";
import type { DynamoDbOptions } from "./options.js";
import { checkReadSchema, checkWriteSchema, keyAttributeTypeOf, SchemaInferrer, type Item, type KeyAttributeType } from "./types.js";
import { BatchWriter, keyTextOf } from "./writer.js";

export const READ_KIND = "dynamodb-scan";
export const WRITE_KIND = "dynamodb-write";

export interface ReadPartition {
  segment: number;
  totalSegments: number;
}

export interface KeyDef {
  name: string;
  type: KeyAttributeType;
}

export interface WritePlan {
  table: string;
  hashKey: KeyDef;
  rangeKey?: KeyDef;
  deleteFlag?: { column: string; value: string };
  /** Set when planning truncated the table for mode("overwrite"). */
  overwrite?: OverwriteRecord;
}

export interface OverwriteRecord {
  /** ISO 8601, when the truncate finished. */
  truncatedAt: string;
  itemsDeleted: number;
}

export interface TableInfo {
  name: string;
  status: string;
  hashKey: KeyDef;
  rangeKey: KeyDef | undefined;
}

/** What planning calls need: a client, where it points (for messages), time, logs, cancellation. */
export interface PlanContext {
  api: DynamoDbApi;
  config: Pick<ClientConfig, "region" | "endpoint">;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
}

/** How long a write waits for a new or busy table to become ACTIVE. */
const ACTIVE_TIMEOUT_MS = 10 * 60_000;
const ACTIVE_POLL_MS = 500;
/** Parallel scan segments used to find the keys to delete on a confirmed overwrite. */
const TRUNCATE_SEGMENTS = 4;

const KEY_TYPE_TEXT: Record<KeyAttributeType, string> = { S: "S (string)", N: "N (number)", B: "B (binary)" };
const KEY_COLUMN_HINT: Record<KeyAttributeType, string> = {
  S: "a string column (date and timestamp columns are written as strings too)",
  N: "a numeric column (int, bigint, decimal, double)",
  B: "a binary column",
};

export function errorContext(ctx: PlanContext, table: string, operation: string, writing = false): ErrorContext {
  return { table, region: ctx.config.region, endpoint: ctx.config.endpoint, operation, writing };
}

async function call<T>(ctx: PlanContext, table: string, operation: string, writing: boolean, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw translateDynamoDbError(error, errorContext(ctx, table, operation, writing));
  }
}

function keyDef(table: TableDescription, keyType: "HASH" | "RANGE"): KeyDef | undefined {
  const element = (table.KeySchema ?? []).find((k: KeySchemaElement) => k.KeyType === keyType);
  if (!element?.AttributeName) return undefined;
  const definition = (table.AttributeDefinitions ?? []).find((a: AttributeDefinition) => a.AttributeName === element.AttributeName);
  const type = definition?.AttributeType;
  if (type !== "S" && type !== "N" && type !== "B") return undefined;
  return { name: element.AttributeName, type };
}

export async function describeTable(ctx: PlanContext, table: string, writing = false): Promise<TableInfo> {
  const output = await call(ctx, table, "DescribeTable", writing, () => ctx.api.describeTable(table, ctx.signal));
  const description = output.Table;
  const hashKey = description ? keyDef(description, "HASH") : undefined;
  if (!description || !hashKey) {
    throw new ConduitError({
      code: "INTERNAL",
      errorClass: "TABLE_DESCRIPTION_INCOMPLETE",
      message: `DescribeTable for DynamoDB table '${table}' in ${describeTarget(ctx.config)} returned no key schema.`,
      parameters: { table },
    });
  }
  return { name: table, status: description.TableStatus ?? "ACTIVE", hashKey, rangeKey: keyDef(description, "RANGE") };
}

// ---------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------

/** The user's schema (checked) or one inferred from `schema_sample_size` scanned items. */
export async function describeSource(ctx: PlanContext, options: DynamoDbOptions, userSchema: Schema | undefined): Promise<DescribeResult> {
  const table = options.table_name;
  const info = await describeTable(ctx, table);
  if (userSchema) {
    checkReadSchema(userSchema);
    return { schema: userSchema, warnings: [] };
  }
  const inferrer = new SchemaInferrer();
  inferrer.addKey(info.hashKey.name, info.hashKey.type);
  if (info.rangeKey) inferrer.addKey(info.rangeKey.name, info.rangeKey.type);
  let startKey: Item | undefined;
  do {
    const remaining = options.schema_sample_size - inferrer.sampled;
    const page = await call(ctx, table, "Scan", false, () =>
      ctx.api.scan({ TableName: table, Limit: remaining, ExclusiveStartKey: startKey, ConsistentRead: options.consistent_read }, ctx.signal),
    );
    for (const item of page.Items ?? []) inferrer.addItem(item);
    startKey = page.LastEvaluatedKey;
  } while (startKey && inferrer.sampled < options.schema_sample_size);
  const { schema, warnings } = inferrer.result();
  if (inferrer.sampled === 0) {
    warnings.push(`DynamoDB table '${table}' is empty, so only its key attributes are in the inferred schema. Give an explicit schema to read other attributes.`);
  }
  ctx.logger.debug("inferred DynamoDB schema", { table, sampled: inferrer.sampled, columns: schema.fields.length });
  return { schema, warnings };
}

/** One partition per parallel-scan segment; checks the table exists and the schema is readable. */
export async function planReadPartitions(ctx: PlanContext, options: DynamoDbOptions, schema: Schema): Promise<Uint8Array[]> {
  checkReadSchema(schema);
  await describeTable(ctx, options.table_name);
  const totalSegments = options.total_segments;
  return Array.from({ length: totalSegments }, (_, segment) => encodeDescriptor(READ_KIND, { segment, totalSegments } satisfies ReadPartition));
}

export function decodeReadPartition(bytes: Uint8Array): ReadPartition {
  const partition = decodeDescriptor<ReadPartition>(READ_KIND, bytes);
  const { segment, totalSegments } = partition;
  if (!Number.isInteger(totalSegments) || totalSegments < 1 || !Number.isInteger(segment) || segment < 0 || segment >= totalSegments) {
    throw invalidArgument("DESCRIPTOR_INVALID", `The DynamoDB scan descriptor names segment ${String(segment)} of ${String(totalSegments)}, which is not a valid segment.`, {
      kind: READ_KIND,
    });
  }
  return { segment, totalSegments };
}

// ---------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------

export function decodeWritePlan(bytes: Uint8Array): WritePlan {
  const plan = decodeDescriptor<WritePlan>(WRITE_KIND, bytes);
  if (typeof plan.table !== "string" || typeof plan.hashKey?.name !== "string") {
    throw invalidArgument("DESCRIPTOR_INVALID", "The DynamoDB write plan has no table or hash key; it must come from this service's PlanWrite call.", { kind: WRITE_KIND });
  }
  return plan;
}

function findColumn(schema: Schema, name: string): Field | undefined {
  return schema.fields.find((f) => f.name === name);
}

function columnList(schema: Schema): string {
  return schema.fields.length === 0 ? "(none)" : schema.fields.map((f) => f.name).join(", ");
}

function missingColumn(schema: Schema, name: string, errorClass: string, what: string, table: string): ConduitError {
  const suggestion = closestMatch(name, schema.fields.map((f) => f.name));
  return invalidArgument(
    errorClass,
    `The DataFrame has no column '${name}', ${what} of DynamoDB table '${table}'.${suggestion ? ` Did you mean '${suggestion}'? (names are case-sensitive)` : ""} Columns present: ${columnList(schema)}.`,
    { column: name, table, columns: columnList(schema), suggestion: suggestion ?? "" },
  );
}

function checkKeyColumn(schema: Schema, key: KeyDef, role: string, table: string): void {
  const field = findColumn(schema, key.name);
  if (!field) throw missingColumn(schema, key.name, "KEY_COLUMN_MISSING", `the ${role} of`, table);
  if (keyAttributeTypeOf(field.type) !== key.type) {
    throw invalidArgument(
      "KEY_COLUMN_TYPE_MISMATCH",
      `Column '${key.name}' is ${describeType(field.type)}, but '${key.name}' is the ${role} of DynamoDB table '${table}' with type ${KEY_TYPE_TEXT[key.type]}. Cast it to ${KEY_COLUMN_HINT[key.type]}.`,
      { column: key.name, table, type: describeType(field.type), keyType: key.type },
    );
  }
}

function keyTypeForNewTable(schema: Schema, name: string, role: string, option: string, table: string): KeyDef {
  const field = findColumn(schema, name);
  if (!field) throw missingColumn(schema, name, "KEY_COLUMN_MISSING", `named by option '${option}' as the ${role}`, table);
  const type = keyAttributeTypeOf(field.type);
  if (!type) {
    throw invalidArgument(
      "KEY_COLUMN_TYPE_MISMATCH",
      `Column '${name}' is ${describeType(field.type)}, which cannot be the ${role} of a DynamoDB table: keys are strings, numbers or binary. Choose another column for '${option}' or cast this one.`,
      { column: name, table, type: describeType(field.type) },
    );
  }
  return { name, type };
}

async function waitUntilActive(ctx: PlanContext, table: string): Promise<TableInfo> {
  const deadline = ctx.clock.now() + ACTIVE_TIMEOUT_MS;
  for (;;) {
    const info = await describeTable(ctx, table, true);
    if (info.status === "ACTIVE" || info.status === "UPDATING") return info;
    if (info.status !== "CREATING") {
      throw failedPrecondition("TABLE_NOT_ACTIVE", `DynamoDB table '${table}' in ${describeTarget(ctx.config)} is ${info.status}, so it cannot be written.`, {
        table,
        status: info.status,
      });
    }
    if (ctx.clock.now() >= deadline) {
      throw new ConduitError({
        code: "DEADLINE_EXCEEDED",
        errorClass: "TABLE_NOT_ACTIVE",
        message: `DynamoDB table '${table}' in ${describeTarget(ctx.config)} was still CREATING after ${ACTIVE_TIMEOUT_MS / 60_000} minutes.`,
        parameters: { table, status: info.status },
      });
    }
    await ctx.clock.sleep(ACTIVE_POLL_MS, ctx.signal);
  }
}

async function createTable(ctx: PlanContext, options: DynamoDbOptions, schema: Schema): Promise<TableInfo> {
  const table = options.table_name;
  const hashKey = keyTypeForNewTable(schema, options.hash_key!, "partition (hash) key", "hash_key", table);
  const rangeKey = options.range_key === undefined ? undefined : keyTypeForNewTable(schema, options.range_key, "sort (range) key", "range_key", table);
  const keys = rangeKey ? [hashKey, rangeKey] : [hashKey];
  const input: CreateTableCommandInput = {
    TableName: table,
    AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
    KeySchema: [{ AttributeName: hashKey.name, KeyType: "HASH" }, ...(rangeKey ? [{ AttributeName: rangeKey.name, KeyType: "RANGE" as const }] : [])],
    BillingMode: options.billing_mode,
    ...(options.billing_mode === "PROVISIONED"
      ? { ProvisionedThroughput: { ReadCapacityUnits: options.read_capacity_units!, WriteCapacityUnits: options.write_capacity_units! } }
      : {}),
  };
  try {
    await ctx.api.createTable(input, ctx.signal);
    ctx.logger.info("created DynamoDB table", { table, hashKey: hashKey.name, rangeKey: rangeKey?.name, billingMode: options.billing_mode });
  } catch (error) {
    // Another job created it first: fine, wait for it like for our own.
    if ((error as { name?: string }).name !== "ResourceInUseException") throw translateDynamoDbError(error, errorContext(ctx, table, "CreateTable", true));
  }
  return waitUntilActive(ctx, table);
}

/**
 * Validates a write and prepares the table: creates it when asked, checks the key and
 * delete-flag columns against the DataFrame, truncates on a confirmed overwrite.
 */
export async function planWriteTarget(
  ctx: PlanContext,
  options: DynamoDbOptions,
  schema: Schema,
  overwrite: boolean,
  streaming: boolean,
): Promise<Uint8Array> {
  const table = options.table_name;
  if (overwrite && streaming) {
    throw failedPrecondition(
      "STREAMING_OVERWRITE_UNSUPPORTED",
      `A streaming write to DynamoDB table '${table}' cannot replace the table's contents (outputMode "complete"). Use outputMode "append" or "update": each micro-batch then upserts its rows.`,
      { table },
    );
  }
  if (overwrite && !options.confirm_truncate) {
    throw failedPrecondition(
      "OVERWRITE_NOT_CONFIRMED",
      `mode("overwrite") replaces the contents of DynamoDB table '${table}': every existing item is deleted before the rows are written. To confirm, set .option("confirm_truncate", "true"). To add or update items without deleting the others, use mode("append").`,
      { table, option: "confirm_truncate" },
    );
  }
  const flagColumn = options.delete_flag_column;
  if (flagColumn !== undefined && !findColumn(schema, flagColumn)) {
    throw missingColumn(schema, flagColumn, "DELETE_FLAG_COLUMN_MISSING", "named by option 'delete_flag_column' for writes to", table);
  }
  if (flagColumn !== undefined) checkDeleteFlagColumn(flagColumn, findColumn(schema, flagColumn)!.type, options.delete_flag_value, `DynamoDB table '${table}'`);
  checkWriteSchema(schema, new Set(flagColumn === undefined ? [] : [flagColumn]));

  let info: TableInfo;
  try {
    info = await describeTable(ctx, table, true);
  } catch (error) {
    if (!(error instanceof ConduitError) || error.errorClass !== "TABLE_NOT_FOUND" || !options.create_table) throw error;
    info = await createTable(ctx, options, schema);
  }
  if (info.status === "CREATING" || (info.status !== "ACTIVE" && info.status !== "UPDATING")) info = await waitUntilActive(ctx, table);

  if (options.hash_key !== undefined && options.hash_key !== info.hashKey.name) {
    throw failedPrecondition(
      "KEY_SCHEMA_MISMATCH",
      `Option 'hash_key' is '${options.hash_key}' but DynamoDB table '${table}' already exists with hash key '${info.hashKey.name}'. Remove 'hash_key' or write to another table.`,
      { option: "hash_key", table, expected: info.hashKey.name, value: options.hash_key },
    );
  }
  if (options.range_key !== undefined && options.range_key !== info.rangeKey?.name) {
    throw failedPrecondition(
      "KEY_SCHEMA_MISMATCH",
      `Option 'range_key' is '${options.range_key}' but DynamoDB table '${table}' already exists ${info.rangeKey ? `with range key '${info.rangeKey.name}'` : "without a range key"}. Remove 'range_key' or write to another table.`,
      { option: "range_key", table, expected: info.rangeKey?.name ?? "", value: options.range_key },
    );
  }
  checkKeyColumn(schema, info.hashKey, "hash key", table);
  if (info.rangeKey) checkKeyColumn(schema, info.rangeKey, "range key", table);
  if (flagColumn !== undefined && (flagColumn === info.hashKey.name || flagColumn === info.rangeKey?.name)) {
    throw invalidArgument(
      "DELETE_FLAG_COLUMN_IS_KEY",
      `Option 'delete_flag_column' names '${flagColumn}', a key attribute of DynamoDB table '${table}'. The delete flag must be a separate column (it is not written as an attribute).`,
      { option: "delete_flag_column", column: flagColumn, table },
    );
  }

  let overwriteRecord: OverwriteRecord | undefined;
  if (overwrite) {
    const deleted = await truncateTable(ctx, info, options);
    overwriteRecord = { truncatedAt: new Date(ctx.clock.now()).toISOString(), itemsDeleted: deleted };
    ctx.logger.info("truncated DynamoDB table for overwrite", { table, deleted });
  }

  const plan: WritePlan = {
    table,
    hashKey: info.hashKey,
    ...(info.rangeKey ? { rangeKey: info.rangeKey } : {}),
    ...(flagColumn !== undefined ? { deleteFlag: { column: flagColumn, value: options.delete_flag_value! } } : {}),
    ...(overwriteRecord ? { overwrite: overwriteRecord } : {}),
  };
  return encodeDescriptor(WRITE_KIND, plan);
}

/** Deletes every item: a consistent parallel scan of the keys feeding concurrent batch deletes. */
export async function truncateTable(ctx: PlanContext, info: TableInfo, options: DynamoDbOptions): Promise<number> {
  const table = info.name;
  const keys = info.rangeKey ? [info.hashKey, info.rangeKey] : [info.hashKey];
  const names: Record<string, string> = {};
  keys.forEach((key, i) => (names[`#k${i}`] = key.name));
  // Scans stop as soon as one segment or a delete fails.
  const controller = new AbortController();
  setMaxListeners(options.write_concurrency + TRUNCATE_SEGMENTS + 16, controller.signal);
  const abortScans = () => controller.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", abortScans, { once: true });
  const writer = new BatchWriter({
    api: ctx.api,
    table,
    concurrency: options.write_concurrency,
    maxRetrySeconds: options.max_retry_seconds,
    clock: ctx.clock,
    signal: controller.signal,
    errorContext: errorContext(ctx, table, "BatchWriteItem", true),
    logger: ctx.logger,
  });
  const scanSegment = async (segment: number) => {
    let startKey: Item | undefined;
    do {
      const page = await call(ctx, table, "Scan", true, () =>
        ctx.api.scan(
          {
            TableName: table,
            Segment: segment,
            TotalSegments: TRUNCATE_SEGMENTS,
            ProjectionExpression: Object.keys(names).join(", "),
            ExpressionAttributeNames: names,
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          },
          controller.signal,
        ),
      );
      for (const item of page.Items ?? []) {
        await writer.delete(keyTextOf(item, keys), item);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  };
  try {
    let firstError: unknown;
    await Promise.all(
      Array.from({ length: TRUNCATE_SEGMENTS }, (_, segment) =>
        scanSegment(segment).catch((error: unknown) => {
          firstError ??= error;
          controller.abort();
        }),
      ),
    );
    if (firstError !== undefined) throw firstError;
    await writer.flush();
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    ctx.signal.removeEventListener("abort", abortScans);
  }
  return writer.stats.deleted;
}
