/**
 * Reads one parallel-scan segment as Arrow batches, one batch per Scan page.
 *
 * - Only the requested columns are fetched: a ProjectionExpression with an expression
 *   attribute name for every column, so reserved words (`name`, `size`, ...) and names
 *   with dots or spaces work.
 * - The next page is requested while the current batch is being consumed, never more than
 *   one page ahead, so a slow consumer holds at most two pages in memory.
 * - Pages without items are skipped: an empty table or segment yields no batch at all.
 * - A zero-column read (e.g. `count()`) uses `Select: COUNT` and yields batches that carry
 *   only a row count.
 * - Stops when the signal aborts or the consumer returns; the in-flight request is aborted.
 */
import type { ScanCommandInput, ScanCommandOutput } from "@aws-sdk/client-dynamodb";
import type { RecordBatch, Schema } from "apache-arrow";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import type { Logger } from "../../core/logger.js";
import type { DynamoDbApi } from "./client.js";
import { cancelled, translateDynamoDbError, type ErrorContext } from "./errors.js";
import { itemToRow, type Item } from "./types.js";

export interface ScanSegmentInput {
  api: DynamoDbApi;
  table: string;
  schema: Schema;
  segment: number;
  totalSegments: number;
  consistentRead: boolean;
  pageSize: number | undefined;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
}

/** The Scan request for a page, projecting exactly the schema's columns. */
export function scanRequest(input: Omit<ScanSegmentInput, "api" | "signal" | "errorContext" | "logger">, startKey: Item | undefined): ScanCommandInput {
  const request: ScanCommandInput = {
    TableName: input.table,
    ConsistentRead: input.consistentRead,
    ...(input.totalSegments > 1 ? { Segment: input.segment, TotalSegments: input.totalSegments } : {}),
    ...(input.pageSize !== undefined ? { Limit: input.pageSize } : {}),
    ...(startKey !== undefined ? { ExclusiveStartKey: startKey } : {}),
  };
  const fields = input.schema.fields;
  if (fields.length === 0) {
    request.Select = "COUNT";
  } else {
    const names: Record<string, string> = {};
    fields.forEach((field, i) => (names[`#c${i}`] = field.name));
    request.ProjectionExpression = Object.keys(names).join(", ");
    request.ExpressionAttributeNames = names;
  }
  return request;
}

export async function* scanSegment(input: ScanSegmentInput): AsyncGenerator<RecordBatch> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(input.signal.reason);
  if (input.signal.aborted) throw cancelled(`Reading DynamoDB table '${input.table}'`, input.signal.reason);
  input.signal.addEventListener("abort", onAbort, { once: true });

  const fetchPage = (startKey: Item | undefined): Promise<ScanCommandOutput> => {
    const page = input.api.scan(scanRequest(input, startKey), controller.signal).catch((error: unknown) => {
      if (input.signal.aborted) throw cancelled(`Reading DynamoDB table '${input.table}'`, error);
      throw translateDynamoDbError(error, input.errorContext);
    });
    // A prefetched page may fail after the consumer stopped; that is not an unhandled rejection.
    page.catch(() => undefined);
    return page;
  };

  const fields = input.schema.fields;
  let pages = 0;
  let rows = 0;
  let next: Promise<ScanCommandOutput> | undefined = fetchPage(undefined);
  try {
    while (next) {
      const page: ScanCommandOutput = await next;
      pages++;
      next = page.LastEvaluatedKey ? fetchPage(page.LastEvaluatedKey) : undefined;
      const builder = new BatchBuilder(input.schema);
      if (fields.length === 0) {
        for (let i = 0; i < (page.Count ?? 0); i++) builder.appendRow([]);
      } else {
        for (const item of page.Items ?? []) builder.appendRow(itemToRow(item, fields));
      }
      if (builder.length === 0) continue;
      rows += builder.length;
      yield builder.flush();
      if (input.signal.aborted) throw cancelled(`Reading DynamoDB table '${input.table}'`, input.signal.reason);
    }
    input.logger.debug("scanned DynamoDB segment", { table: input.table, segment: input.segment, totalSegments: input.totalSegments, pages, rows });
  } finally {
    input.signal.removeEventListener("abort", onAbort);
    if (next) controller.abort();
  }
}
