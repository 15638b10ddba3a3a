/**
 * `format("pycassandra")`: wires options, pooled clients, planning, reads and writes into
 * the Connector contract. Holds no state between calls except the client pool.
 */
import type { RecordBatch } from "apache-arrow";
import { ClientPool } from "../../core/client-pool.js";
import { systemClock, type Clock } from "../../core/clock.js";
import { sumWriteResults, type Connector, type FinishWriteInput } from "../../core/connector.js";
import type { Logger } from "../../core/logger.js";
import { clientConfigFromOptions, clientKey, createDriverApi, type CassandraApi, type ClientConfig } from "./client.js";
import { cassandraOptions, parseCassandraOptions, type CassandraOptions } from "./options.js";
import { decodeReadPartition, decodeWritePlan, describeSource, errorContext, planReadPartitions, planWriteTarget, type PlanContext } from "./planner.js";
import { scanTokenRanges } from "./reader.js";
import { decodeStreamPartition, STREAM_KIND } from "./stream.js";
import { describeStream, isStreamRead, planStreamPartitions, refuseStreamOptionInBatchRead, streamInitialOffset, streamLatestOffset, streamReadWindow } from "./stream-source.js";
import { descriptorKind } from "../../core/descriptor.js";
import { writeRows } from "./writer.js";

/** Test seams: a fake Cassandra and a fake clock. */
export interface CassandraConnectorDeps {
  createApi?: (config: ClientConfig) => CassandraApi;
  clock?: Clock;
}

export function createCassandraConnector(logger: Logger, deps: CassandraConnectorDeps = {}): Connector {
  const pool = new ClientPool<ClientConfig, CassandraApi>(deps.createApi ?? createDriverApi, clientKey, (api) => api.shutdown());
  const clock = deps.clock ?? systemClock;
  const log = logger.child({ format: "pycassandra" });

  const contextOf = (api: CassandraApi, config: ClientConfig, options: CassandraOptions, signal: AbortSignal): PlanContext => ({
    api,
    config,
    username: options.username,
    logger: log,
    signal,
  });
  /** Runs a call with a pooled client leased for its duration (eviction never closes it meanwhile). */
  const withContext = <T>(options: CassandraOptions, signal: AbortSignal, fn: (ctx: PlanContext) => Promise<T>): Promise<T> => {
    const config = clientConfigFromOptions(options);
    return pool.use(config, (api) => fn(contextOf(api, config, options, signal)));
  };

  return {
    format: "pycassandra",
    options: cassandraOptions,

    async describe(input) {
      const options = parseCassandraOptions(input.options, "read");
      return withContext(options, input.signal, (ctx) => (isStreamRead(options) ? describeStream : describeSource)(ctx, options, input.userSchema));
    },

    async planRead(input) {
      const options = parseCassandraOptions(input.options, "read");
      refuseStreamOptionInBatchRead(options);
      return withContext(options, input.signal, (ctx) => planReadPartitions(ctx, options, input.schema));
    },

    stream: {
      async initialOffset(input) {
        const options = parseCassandraOptions(input.options, "read");
        return withContext(options, input.signal, (ctx) => streamInitialOffset({ ...ctx, clock }, options, input.schema));
      },
      async latestOffset(input) {
        const options = parseCassandraOptions(input.options, "read");
        return withContext(options, input.signal, (ctx) => streamLatestOffset({ ...ctx, clock }, options, input.schema, input));
      },
      async planStreamRead(input) {
        const options = parseCassandraOptions(input.options, "read");
        return withContext(options, input.signal, (ctx) => planStreamPartitions(ctx, options, input.schema, input.start, input.end));
      },
    },

    read(input): AsyncIterable<RecordBatch> {
      const options = parseCassandraOptions(input.options, "read");
      // A micro-batch's partition is a batch read's token ranges plus its window.
      const stream = descriptorKind(input.partition) === STREAM_KIND ? decodeStreamPartition(input.partition) : undefined;
      const partition = stream ?? decodeReadPartition(input.partition);
      const config = clientConfigFromOptions(options);
      return pool.stream(config, (api) => {
        const ctx = contextOf(api, config, options, input.signal);
        return scanTokenRanges({
          api,
          keyspace: options.keyspace,
          table: options.table,
          partitionKey: partition.partitionKey,
          schema: input.schema,
          ranges: partition.ranges,
          whole: partition.whole === true,
          filter: options.filter,
          allowFiltering: options.allow_filtering,
          pageSize: options.read_page_size,
          consistency: options.consistency,
          retry: { maxRetries: options.max_retries, maxRetrySeconds: options.max_retry_seconds },
          clock,
          signal: input.signal,
          errorContext: errorContext(ctx, options, stream ? "stream" : "read", options.filter),
          logger: log,
          ...(stream ? { window: streamReadWindow(stream.window) } : {}),
        });
      });
    },

    async planWrite(input) {
      const options = parseCassandraOptions(input.options, "write");
      return withContext(options, input.signal, (ctx) => planWriteTarget(ctx, options, input.schema, input.overwrite, input.streaming));
    },

    async write(input) {
      const options = parseCassandraOptions(input.options, "write");
      const plan = decodeWritePlan(input.writePlan);
      const started = clock.now();
      const result = await withContext(options, input.signal, (ctx) =>
        writeRows({
          api: ctx.api,
          plan,
          batches: input.batches,
          concurrency: options.concurrency,
          rowsPerBatch: options.rows_per_batch,
          maxRetries: options.max_retries,
          maxRetrySeconds: options.max_retry_seconds,
          consistency: options.consistency,
          writeNulls: options.write_nulls,
          clock,
          signal: input.signal,
          errorContext: errorContext(ctx, { keyspace: plan.keyspace, table: plan.table }, "write"),
          logger: log,
          partitionId: input.task.partitionId,
        }),
      );
      log.debug("wrote Cassandra task", { keyspace: plan.keyspace, table: plan.table, partition: input.task.partitionId, batch: input.task.batchId, ms: clock.now() - started, ...result });
      return result;
    },

    async commitWrite(input: FinishWriteInput) {
      const plan = decodeWritePlan(input.writePlan);
      const total = sumWriteResults(input.taskResults);
      log.debug("Cassandra write committed", { keyspace: plan.keyspace, table: plan.table, batch: input.batchId, tasks: input.taskResults.length, ...total });
    },

    async abortWrite(input: FinishWriteInput) {
      const plan = decodeWritePlan(input.writePlan);
      const total = sumWriteResults(input.taskResults);
      log.warn("Cassandra write aborted", { keyspace: plan.keyspace, table: plan.table, batch: input.batchId, tasks: input.taskResults.length, ...total });
      const finished = `the ${input.taskResults.length} task(s) that finished wrote ${total.rowsWritten} and deleted ${total.rowsDeleted} rows, and failed tasks may have written part of their rows`;
      if (plan.overwrite) {
        return (
          `Table ${plan.keyspace}.${plan.table} was TRUNCATED for mode("overwrite") at ${plan.overwrite.truncatedAt} before this write failed, ` +
          `so its previous rows are gone and it now holds only what this write's tasks wrote: ${finished}. ` +
          `Cassandra has no transaction spanning a Spark job, so nothing was rolled back. Re-run the overwrite to give the table its intended contents.`
        );
      }
      return (
        `Cassandra has no transaction spanning a Spark job, so nothing was rolled back in ${plan.keyspace}.${plan.table}: ` +
        `${finished}; all of those stay. ` +
        `Writes are upserts by primary key, so re-running the same write converges to the intended contents.`
      );
    },

    async close() {
      await pool.closeAll();
    },
  };
}
