/**
 * `format("dynamodb")`: wires options, pooled clients, planning, reads and writes into the
 * Connector contract. Holds no state between calls except the client pool.
 */
import type { RecordBatch } from "apache-arrow";
import { ClientPool } from "../../core/client-pool.js";
import { systemClock, type Clock } from "../../core/clock.js";
import { sumWriteResults, type Connector, type FinishWriteInput } from "../../core/connector.js";
import type { Logger } from "../../core/logger.js";
import { descriptorKind } from "../../core/descriptor.js";
import { clientConfigFromOptions, clientKey, createSdkApi, createSdkStreamsApi, type ClientConfig, type DynamoDbApi, type StreamsApi } from "./client.js";
import { dynamoDbOptions, parseDynamoDbOptions, type DynamoDbOptions } from "./options.js";
import {
  decodeReadPartition,
  decodeWritePlan,
  describeSource,
  errorContext,
  planReadPartitions,
  planWriteTarget,
  type PlanContext,
} from "./planner.js";
import { scanSegment } from "./reader.js";
import { prefetchRun, type StreamContext } from "./stream.js";
import { runKey, StreamRecordCache } from "./stream-cache.js";
import {
  decodeStreamPartition,
  describeChangeStream,
  isStreamRead,
  planStreamPartitions,
  readStreamPartition,
  refuseStreamOptionInBatchRead,
  STREAM_KIND,
  streamInitialOffset,
  streamLatestOffset,
} from "./stream-source.js";
import { writeRows } from "./writer.js";

/** Test seams: a fake DynamoDB (and Streams) and a fake clock. */
export interface DynamoDbConnectorDeps {
  createApi?: (config: ClientConfig) => DynamoDbApi;
  createStreamsApi?: (config: ClientConfig) => StreamsApi;
  clock?: Clock;
  /** Bytes of read-ahead stream records kept for the tasks that read them (0: none). */
  streamCacheBytes?: number;
  /** False: no background read of the next micro-batch's records (tests that count Streams calls). */
  streamPrefetch?: boolean;
}

export function createDynamoDbConnector(logger: Logger, deps: DynamoDbConnectorDeps = {}): Connector {
  const pool = new ClientPool<ClientConfig, DynamoDbApi>(deps.createApi ?? createSdkApi, clientKey, (api) => api.destroy());
  const streamsPool = new ClientPool<ClientConfig, StreamsApi>(deps.createStreamsApi ?? createSdkStreamsApi, clientKey, (api) => api.destroy());
  const clock = deps.clock ?? systemClock;
  const log = logger.child({ format: "dynamodb" });
  const streamCache = new StreamRecordCache(deps.streamCacheBytes, undefined, clock);
  const shardFilterIgnoredBy = new Set<string>();

  const contextOf = (api: DynamoDbApi, config: ClientConfig, signal: AbortSignal): PlanContext => ({ api, config, clock, logger: log, signal });
  /** Runs a call with a pooled client leased for its duration (eviction never closes it meanwhile). */
  const withContext = <T>(options: DynamoDbOptions, signal: AbortSignal, fn: (ctx: PlanContext) => Promise<T>): Promise<T> => {
    const config = clientConfigFromOptions(options);
    return pool.use(config, (api) => fn(contextOf(api, config, signal)));
  };

  // Ends background prefetches when the service shuts down.
  const closing = new AbortController();
  const streamContextOf = (dynamodb: DynamoDbApi, streams: StreamsApi, config: ClientConfig, options: DynamoDbOptions, signal: AbortSignal): StreamContext => {
    const ctx: StreamContext = {
      dynamodb,
      streams,
      table: options.table_name,
      region: config.region,
      endpoint: config.endpoint,
      failOnDataLoss: options.fail_on_data_loss,
      signal,
      logger: log,
      clock,
      cache: streamCache,
      shardFilterIgnoredBy,
    };
    if (deps.streamPrefetch !== false) {
      ctx.prefetch = (streamArn, shardId, after, maxRecords) => {
        const key = runKey(streamArn, shardId, after);
        if (closing.signal.aborted || streamCache.isTracked(key) || streamCache.peek(key)) return;
        // Its own client leases and signal: it outlives the call that started it.
        const work = pool.use(config, (api) =>
          streamsPool.use(config, (streamsApi) => prefetchRun({ ...ctx, dynamodb: api, streams: streamsApi, signal: closing.signal, prefetch: undefined }, streamArn, shardId, after, maxRecords)),
        );
        work.catch((error: unknown) => log.debug("DynamoDB stream prefetch failed; the next micro-batch reads the stream itself", { shard: shardId, error: String(error) }));
        streamCache.track(key, work);
      };
    }
    return ctx;
  };
  /** Runs a streaming call with both clients leased. */
  const withStreams = <T>(options: DynamoDbOptions, signal: AbortSignal, fn: (ctx: StreamContext) => Promise<T>): Promise<T> => {
    const config = clientConfigFromOptions(options);
    return pool.use(config, (dynamodb) => streamsPool.use(config, (streams) => fn(streamContextOf(dynamodb, streams, config, options, signal))));
  };

  return {
    format: "dynamodb",
    options: dynamoDbOptions,

    async describe(input) {
      const options = parseDynamoDbOptions(input.options, "read");
      if (isStreamRead(options)) return withContext(options, input.signal, (ctx) => describeChangeStream(ctx, options, input.userSchema));
      return withContext(options, input.signal, (ctx) => describeSource(ctx, options, input.userSchema));
    },

    async planRead(input) {
      const options = parseDynamoDbOptions(input.options, "read");
      refuseStreamOptionInBatchRead(options);
      return withContext(options, input.signal, (ctx) => planReadPartitions(ctx, options, input.schema));
    },

    stream: {
      async initialOffset(input) {
        const options = parseDynamoDbOptions(input.options, "read");
        return withStreams(options, input.signal, (ctx) => streamInitialOffset(ctx, options, input.schema));
      },
      async latestOffset(input) {
        const options = parseDynamoDbOptions(input.options, "read");
        return withStreams(options, input.signal, (ctx) => streamLatestOffset(ctx, options, input.schema, input));
      },
      async planStreamRead(input) {
        const options = parseDynamoDbOptions(input.options, "read");
        return planStreamPartitions(options, input.schema, input.start, input.end);
      },
    },

    read(input): AsyncIterable<RecordBatch> {
      const options = parseDynamoDbOptions(input.options, "read");
      const config = clientConfigFromOptions(options);
      if (descriptorKind(input.partition) === STREAM_KIND) {
        const partition = decodeStreamPartition(input.partition);
        return pool.stream(config, (dynamodb) =>
          streamsPool.stream(config, (streams) => readStreamPartition(streamContextOf(dynamodb, streams, config, options, input.signal), options, input.schema, partition)),
        );
      }
      const partition = decodeReadPartition(input.partition);
      return pool.stream(config, (api) =>
        scanSegment({
          api,
          table: options.table_name,
          schema: input.schema,
          segment: partition.segment,
          totalSegments: partition.totalSegments,
          consistentRead: options.consistent_read,
          pageSize: options.read_page_size,
          signal: input.signal,
          errorContext: errorContext(contextOf(api, config, input.signal), options.table_name, "Scan"),
          logger: log,
        }),
      );
    },

    async planWrite(input) {
      const options = parseDynamoDbOptions(input.options, "write");
      return withContext(options, input.signal, (ctx) => planWriteTarget(ctx, options, input.schema, input.overwrite, input.streaming));
    },

    async write(input) {
      const options = parseDynamoDbOptions(input.options, "write");
      const plan = decodeWritePlan(input.writePlan);
      const started = clock.now();
      const result = await withContext(options, input.signal, (ctx) =>
        writeRows({
          api: ctx.api,
          plan,
          batches: input.batches,
          concurrency: options.write_concurrency,
          maxRetrySeconds: options.max_retry_seconds,
          clock,
          signal: input.signal,
          errorContext: errorContext(ctx, plan.table, "BatchWriteItem", true),
          logger: log,
          partitionId: input.task.partitionId,
        }),
      );
      log.debug("wrote DynamoDB task", { table: plan.table, partition: input.task.partitionId, batch: input.task.batchId, ms: clock.now() - started, ...result });
      return result;
    },

    async commitWrite(input: FinishWriteInput) {
      const plan = decodeWritePlan(input.writePlan);
      const total = sumWriteResults(input.taskResults);
      log.debug("DynamoDB write committed", { table: plan.table, batch: input.batchId, tasks: input.taskResults.length, ...total });
    },

    async abortWrite(input: FinishWriteInput) {
      const plan = decodeWritePlan(input.writePlan);
      const total = sumWriteResults(input.taskResults);
      log.warn("DynamoDB write aborted", { table: plan.table, batch: input.batchId, tasks: input.taskResults.length, ...total });
      const finished = `the ${input.taskResults.length} task(s) that finished wrote ${total.rowsWritten} and deleted ${total.rowsDeleted} items, and failed tasks may have written part of their rows`;
      if (plan.overwrite) {
        return (
          `Table '${plan.table}' was TRUNCATED for mode("overwrite") at ${plan.overwrite.truncatedAt} (${plan.overwrite.itemsDeleted} items deleted) before this write failed, ` +
          `so its previous contents are gone and it now holds only what this write's tasks wrote: ${finished}. ` +
          `DynamoDB has no transaction spanning a Spark job, so nothing was rolled back. Re-run the overwrite to give the table its intended contents.`
        );
      }
      return (
        `DynamoDB has no transaction spanning a Spark job, so nothing was rolled back in table '${plan.table}': ` +
        `${finished}; all of those stay. ` +
        `Writes are upserts by key, so re-running the same write converges to the intended contents.`
      );
    },

    async close() {
      closing.abort();
      streamCache.clear();
      await Promise.all([pool.closeAll(), streamsPool.closeAll()]);
    },
  };
}
