/**
 * `format("dynamodb")`: wires options, pooled clients, planning, reads and writes into the
 * Connector contract. Holds no state between calls except the client pool.
 */
import type { RecordBatch } from "apache-arrow";
import { ClientPool } from "../../core/client-pool.js";
import { systemClock, type Clock } from "../../core/clock.js";
import { sumWriteResults, type Connector, type FinishWriteInput } from "../../core/connector.js";
import type { Logger } from "../../core/logger.js";
import { clientConfigFromOptions, clientKey, createSdkApi, type ClientConfig, type DynamoDbApi } from "./client.js";
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
import { writeRows } from "./writer.js";

/** Test seams: a fake DynamoDB and a fake clock. */
export interface DynamoDbConnectorDeps {
  createApi?: (config: ClientConfig) => DynamoDbApi;
  clock?: Clock;
}

export function createDynamoDbConnector(logger: Logger, deps: DynamoDbConnectorDeps = {}): Connector {
  const pool = new ClientPool<ClientConfig, DynamoDbApi>(deps.createApi ?? createSdkApi, clientKey, (api) => api.destroy());
  const clock = deps.clock ?? systemClock;
  const log = logger.child({ format: "dynamodb" });

  const context = (options: DynamoDbOptions, signal: AbortSignal): PlanContext => {
    const config = clientConfigFromOptions(options);
    return { api: pool.get(config), config, clock, logger: log, signal };
  };

  return {
    format: "dynamodb",
    options: dynamoDbOptions,

    async describe(input) {
      const options = parseDynamoDbOptions(input.options, "read");
      return describeSource(context(options, input.signal), options, input.userSchema);
    },

    async planRead(input) {
      const options = parseDynamoDbOptions(input.options, "read");
      return planReadPartitions(context(options, input.signal), options, input.schema);
    },

    read(input): AsyncIterable<RecordBatch> {
      const options = parseDynamoDbOptions(input.options, "read");
      const partition = decodeReadPartition(input.partition);
      const ctx = context(options, input.signal);
      return scanSegment({
        api: ctx.api,
        table: options.table_name,
        schema: input.schema,
        segment: partition.segment,
        totalSegments: partition.totalSegments,
        consistentRead: options.consistent_read,
        pageSize: options.read_page_size,
        signal: input.signal,
        errorContext: errorContext(ctx, options.table_name, "Scan"),
        logger: log,
      });
    },

    async planWrite(input) {
      const options = parseDynamoDbOptions(input.options, "write");
      return planWriteTarget(context(options, input.signal), options, input.schema, input.overwrite, input.streaming);
    },

    async write(input) {
      const options = parseDynamoDbOptions(input.options, "write");
      const plan = decodeWritePlan(input.writePlan);
      const ctx = context(options, input.signal);
      const started = clock.now();
      const result = await writeRows({
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
      });
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
      return (
        `DynamoDB has no transaction spanning a Spark job, so nothing was rolled back in table '${plan.table}': ` +
        `the ${input.taskResults.length} task(s) that finished wrote ${total.rowsWritten} and deleted ${total.rowsDeleted} items, and failed tasks may have written part of their rows; all of those stay. ` +
        `Writes are upserts by key, so re-running the same write converges to the intended contents.`
      );
    },

    async close() {
      await pool.closeAll();
    },
  };
}
