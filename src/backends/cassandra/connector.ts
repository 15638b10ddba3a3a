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

  const context = (options: CassandraOptions, signal: AbortSignal): PlanContext => {
    const config = clientConfigFromOptions(options);
    return { api: pool.get(config), config, username: options.username, logger: log, signal };
  };

  return {
    format: "pycassandra",
    options: cassandraOptions,

    async describe(input) {
      const options = parseCassandraOptions(input.options, "read");
      return describeSource(context(options, input.signal), options, input.userSchema);
    },

    async planRead(input) {
      const options = parseCassandraOptions(input.options, "read");
      return planReadPartitions(context(options, input.signal), options, input.schema);
    },

    read(input): AsyncIterable<RecordBatch> {
      const options = parseCassandraOptions(input.options, "read");
      const partition = decodeReadPartition(input.partition);
      const ctx = context(options, input.signal);
      return scanTokenRanges({
        api: ctx.api,
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
        signal: input.signal,
        errorContext: errorContext(ctx, options, "read", options.filter),
        logger: log,
      });
    },

    async planWrite(input) {
      const options = parseCassandraOptions(input.options, "write");
      return planWriteTarget(context(options, input.signal), options, input.schema, input.overwrite, input.streaming);
    },

    async write(input) {
      const options = parseCassandraOptions(input.options, "write");
      const plan = decodeWritePlan(input.writePlan);
      const ctx = context(options, input.signal);
      const started = clock.now();
      const result = await writeRows({
        api: ctx.api,
        plan,
        batches: input.batches,
        concurrency: options.concurrency,
        rowsPerBatch: options.rows_per_batch,
        maxRetries: options.max_retries,
        consistency: options.consistency,
        writeNulls: options.write_nulls,
        clock,
        signal: input.signal,
        errorContext: errorContext(ctx, { keyspace: plan.keyspace, table: plan.table }, "write"),
        logger: log,
        partitionId: input.task.partitionId,
      });
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
      return (
        `Cassandra has no transaction spanning a Spark job, so nothing was rolled back in ${plan.keyspace}.${plan.table}: ` +
        `the ${input.taskResults.length} task(s) that finished wrote ${total.rowsWritten} and deleted ${total.rowsDeleted} rows, and failed tasks may have written part of their rows; all of those stay. ` +
        `Writes are upserts by primary key, so re-running the same write converges to the intended contents.`
      );
    },

    async close() {
      await pool.closeAll();
    },
  };
}
