/**
 * Reads one Spark partition (a list of token ranges) as Arrow batches, one batch per page.
 *
 * - One prepared query per token range (start, end]:
 *     SELECT "c1", "c2" FROM "ks"."tbl" WHERE token("pk1", "pk2") > ? AND token("pk1", "pk2") <= ? [AND <filter>] [ALLOW FILTERING]
 *   Identifiers are always quoted, so case-sensitive names and reserved words work. The
 *   filter is added with AND as given (CQL has no OR, so it only ever narrows the range).
 * - Paged by hand with the driver's page state, `read_page_size` rows a page, at the
 *   read consistency level. The next page (or the first page of the next range) is
 *   requested while the current batch is being consumed, never more than one page ahead,
 *   so a slow consumer holds at most two pages in memory.
 * - Pages without rows are skipped: an empty range yields no batch.
 * - A zero-column read (e.g. `count()`) selects the first partition-key column and yields
 *   batches that carry only a row count.
 * - A page request that fails with a retryable error (a timeout, too few replicas, an
 *   overloaded node, a lost connection, no node up) is retried as RequestRetries decides
 *   (`max_retries`, `max_retry_seconds`), with the same range and page state: a page is
 *   only turned into rows once it arrived, so every row is returned exactly once.
 * - Stops when the signal aborts or the consumer returns (retry waits end too); a request
 *   already sent to Cassandra is left to finish (the driver cannot cancel it) and its
 *   result is dropped.
 */
import type { RecordBatch, Schema } from "apache-arrow";
import { type PlainValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { ConduitError, invalidArgument } from "../../core/errors.js";
import type { Clock } from "../../core/clock.js";
import type { Logger } from "../../core/logger.js";
import type { CassandraApi, ResultPage } from "./client.js";
import { cancelled, errorName, RequestRetries, translateCassandraError, type ErrorContext, type RetryLimits } from "./errors.js";
import type { ConsistencyLevel } from "./options.js";
import { quoteIdentifier, readConverter, type ReadConverter } from "./types.js";

/** A token as the driver binds it (bigint for Murmur3's bigint tokens and RandomPartitioner's varint ones). */
export function tokenParam(text: string): bigint {
  return BigInt(text);
}

/** The read query of a table for `schema`'s columns (see the top of this file). */
export function readQuery(
  keyspace: string,
  table: string,
  partitionKey: readonly string[],
  schema: Schema,
  filter: string | undefined,
  allowFiltering: boolean,
  tokenRestricted: boolean,
  window?: Pick<ReadWindow, "conditions" | "columns">,
): string {
  const columns = [...(schema.fields.length > 0 ? schema.fields.map((f) => quoteIdentifier(f.name)) : [quoteIdentifier(partitionKey[0]!)]), ...(window?.columns ?? [])];
  const conditions: string[] = [];
  if (tokenRestricted) {
    const token = `token(${partitionKey.map(quoteIdentifier).join(", ")})`;
    conditions.push(`${token} > ?`, `${token} <= ?`);
  }
  conditions.push(...(window?.conditions ?? []));
  if (filter !== undefined && filter.trim() !== "") conditions.push(filter.trim());
  return (
    `SELECT ${columns.join(", ")} FROM ${quoteIdentifier(keyspace)}.${quoteIdentifier(table)}` +
    (conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : "") +
    (allowFiltering ? " ALLOW FILTERING" : "")
  );
}

/**
 * What a streaming micro-batch adds to a read: conditions on the stream column (bound
 * after the token range's two parameters), selected expressions after the schema's
 * columns (write times), and a row test on those extra values.
 */
export interface ReadWindow {
  conditions: string[];
  params: unknown[];
  columns: string[];
  allowFiltering: boolean;
  /** Keep row `row` of a page, given its values by column and where the extra columns start. */
  keep?: (values: unknown[][], extraStart: number, row: number) => boolean;
}

export interface ScanRangesInput {
  api: CassandraApi;
  keyspace: string;
  table: string;
  partitionKey: string[];
  schema: Schema;
  /** Token ranges (start, end]; empty with `whole`. */
  ranges: Array<[string, string]>;
  whole: boolean;
  filter: string | undefined;
  allowFiltering: boolean;
  pageSize: number;
  consistency: ConsistencyLevel;
  retry: RetryLimits;
  clock: Clock;
  signal: AbortSignal;
  errorContext: ErrorContext;
  logger: Logger;
  /** A streaming micro-batch's window; undefined for batch reads. */
  window?: ReadWindow;
}

interface PageRequest {
  range: number;
  pageState: string | undefined;
}

/** Rejects when the signal aborts, so a wait on the driver can be abandoned. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal, context: string): Promise<T> {
  if (signal.aborted) return Promise.reject(cancelled(context, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled(context, signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export interface PageFetchInput {
  api: CassandraApi;
  keyspace: string;
  table: string;
  query: string;
  consistency: ConsistencyLevel;
  pageSize: number;
  retry: RetryLimits;
  clock: Clock;
  errorContext: ErrorContext;
  logger: Logger;
}

/**
 * Fetches pages of one query, each retried as RequestRetries decides with the same
 * parameters and page state (so every row is returned exactly once). `retried` counts the
 * retries of all pages fetched through it.
 */
export class PageFetcher {
  retried = 0;
  private readonly context: string;

  constructor(
    private readonly input: PageFetchInput,
    private readonly stop: AbortSignal,
  ) {
    this.context = `Reading Cassandra table ${input.keyspace}.${input.table}`;
  }

  async fetch(params: unknown[], pageState: string | undefined): Promise<ResultPage> {
    const input = this.input;
    const options = { consistency: input.consistency, fetchSize: input.pageSize, pageState, idempotent: true };
    const retries = new RequestRetries(input.retry, input.clock, (ms, signal) => input.api.waitForHost(ms, signal));
    for (;;) {
      if (this.stop.aborted) throw cancelled(this.context, this.stop.reason);
      retries.attempts++;
      try {
        return await input.api.execute(input.query, params, options);
      } catch (error) {
        let again: boolean;
        try {
          again = await retries.retryAfter(error, this.stop);
        } catch (waitError) {
          throw cancelled(this.context, waitError);
        }
        if (!again) {
          const translated = translateCassandraError(error, input.errorContext);
          const after = retries.describe();
          if (after === "") throw translated;
          throw new ConduitError({
            code: translated.code,
            errorClass: translated.errorClass,
            message: `${translated.message} (a page request ${after})`,
            parameters: { ...translated.parameters, retries: String(retries.attempts - 1), seconds: retries.seconds.toFixed(1) },
            cause: error,
          });
        }
        this.retried++;
        input.logger.debug("retrying Cassandra page", { keyspace: input.keyspace, table: input.table, attempt: retries.attempts + 1, error: errorName(error) });
      }
    }
  }

  /** Every page of the query with `params`, one at a time. */
  async *pages(params: unknown[]): AsyncGenerator<ResultPage> {
    let pageState: string | undefined;
    do {
      const page = await this.fetch(params, pageState);
      pageState = page.pageState;
      yield page;
    } while (pageState);
  }
}

export async function* scanTokenRanges(input: ScanRangesInput): AsyncGenerator<RecordBatch> {
  const context = `Reading Cassandra table ${input.keyspace}.${input.table}`;
  if (input.signal.aborted) throw cancelled(context, input.signal.reason);
  const window = input.window;
  const query = readQuery(input.keyspace, input.table, input.partitionKey, input.schema, input.filter, input.allowFiltering || window?.allowFiltering === true, !input.whole, window);
  const rangeCount = input.whole ? 1 : input.ranges.length;

  // Ends retry waits when the call is cancelled or the consumer stops reading.
  const stop = new AbortController();
  const onAbort = () => stop.abort(input.signal.reason);
  input.signal.addEventListener("abort", onAbort, { once: true });
  const fetcher = new PageFetcher({ ...input, query }, stop.signal);
  const paramsOf = (range: number): unknown[] => [...(input.whole ? [] : input.ranges[range]!.map(tokenParam)), ...(window?.params ?? [])];

  const fetchPage = (request: PageRequest): Promise<ResultPage> => {
    const page = fetcher.fetch(paramsOf(request.range), request.pageState);
    // A prefetched page may fail after the consumer stopped; that is not an unhandled rejection.
    page.catch(() => undefined);
    return page;
  };
  const following = (request: PageRequest, page: ResultPage): PageRequest | undefined => {
    if (page.pageState) return { range: request.range, pageState: page.pageState };
    return request.range + 1 < rangeCount ? { range: request.range + 1, pageState: undefined } : undefined;
  };

  const fields = input.schema.fields;
  const extraColumns = window?.columns.length ?? 0;
  // A zero-column read selects one key column before the extra ones.
  const extraStart = fields.length > 0 ? fields.length : 1;
  let converters: ReadConverter[] | undefined;
  let pages = 0;
  let rows = 0;
  let request: PageRequest | undefined = rangeCount > 0 ? { range: 0, pageState: undefined } : undefined;
  let next: Promise<ResultPage> | undefined = request ? fetchPage(request) : undefined;
  try {
    while (request && next) {
      const page: ResultPage = await abortable(next, input.signal, context);
      pages++;
      const after = following(request, page);
      request = after;
      next = after ? fetchPage(after) : undefined;
      if (page.rowCount === 0) continue;
      const keep = window?.keep ? (r: number) => window.keep!(page.values, extraStart, r) : undefined;
      const builder = new BatchBuilder(input.schema);
      if (fields.length === 0) {
        for (let r = 0; r < page.rowCount; r++) if (!keep || keep(r)) builder.appendRow([]);
      } else {
        converters ??= buildConverters(input, page, extraColumns);
        const values = new Array<PlainValue>(fields.length);
        const columns = page.values;
        for (let r = 0; r < page.rowCount; r++) {
          if (keep && !keep(r)) continue;
          for (let c = 0; c < converters.length; c++) values[c] = converters[c]!(columns[c]![r]);
          builder.appendRow(values);
        }
      }
      if (builder.length === 0) continue;
      rows += builder.length;
      yield builder.flush();
      if (input.signal.aborted) throw cancelled(context, input.signal.reason);
    }
  } finally {
    input.signal.removeEventListener("abort", onAbort);
    stop.abort();
  }
  input.logger.debug("read Cassandra token ranges", { keyspace: input.keyspace, table: input.table, ranges: rangeCount, pages, rows, retries: fetcher.retried });
}

function buildConverters(input: ScanRangesInput, page: ResultPage, extraColumns: number): ReadConverter[] {
  const fields = input.schema.fields;
  if (page.columns.length !== fields.length + extraColumns) {
    throw invalidArgument(
      "SCHEMA_CHANGED",
      `Cassandra returned ${page.columns.length} columns for ${input.keyspace}.${input.table} where ${fields.length + extraColumns} were selected; the table may have changed since the job was planned.`,
      { keyspace: input.keyspace, table: input.table },
    );
  }
  return fields.map((field, i) => readConverter(page.columns[i]!.type, field.type, field.name));
}
