/**
 * The contract every backend implements. The transport decodes a request into these
 * inputs, calls the connector, and encodes what it returns; connectors never see gRPC.
 * Every call carries the raw options and the descriptors it needs, so the service stays
 * stateless between calls and any replica can serve any task.
 */
import type { RecordBatch, Schema } from "apache-arrow";
import type { OptionRegistry, OptionSpecs } from "../options/registry.js";

export interface DescribeInput {
  options: Record<string, string>;
  /** The user's schema (`.schema(...)`), or undefined to infer one. */
  userSchema: Schema | undefined;
  signal: AbortSignal;
}

export interface DescribeResult {
  schema: Schema;
  warnings: string[];
}

export interface PlanReadInput {
  options: Record<string, string>;
  /** The schema Spark will read. */
  schema: Schema;
  signal: AbortSignal;
}

export interface ReadInput {
  options: Record<string, string>;
  schema: Schema;
  /** One of the descriptors PlanRead returned, as opaque bytes. */
  partition: Uint8Array;
  signal: AbortSignal;
}

export interface PlanWriteInput {
  options: Record<string, string>;
  /** The schema of the DataFrame being written. */
  schema: Schema;
  /** mode("overwrite"). */
  overwrite: boolean;
  streaming: boolean;
  signal: AbortSignal;
}

export interface WriteTaskInfo {
  partitionId: number;
  taskAttemptId: number;
  batchId: number;
}

export interface WriteInput {
  options: Record<string, string>;
  schema: Schema;
  /** What PlanWrite returned. */
  writePlan: Uint8Array;
  task: WriteTaskInfo;
  /** The task's rows, pulled batch by batch (backpressure: do not read ahead unboundedly). */
  batches: AsyncIterable<RecordBatch>;
  signal: AbortSignal;
}

export interface WriteResult {
  rowsWritten: number;
  rowsDeleted: number;
  requests: number;
  retries: number;
}

export interface FinishWriteInput {
  options: Record<string, string>;
  writePlan: Uint8Array;
  taskResults: WriteResult[];
  batchId: number;
  signal: AbortSignal;
}

/** A streaming read's driver-side call; offsets are the backend's JSON text, opaque to the shim. */
export interface StreamCallInput {
  options: Record<string, string>;
  /** The schema Spark will read. */
  schema: Schema;
  signal: AbortSignal;
}

export interface LatestOffsetInput extends StreamCallInput {
  /** The offset the next micro-batch starts after. */
  start: string;
  /** At most this many records past `start` (Spark 4.2+ ReadMaxRows); undefined: no limit. */
  maxRecords: number | undefined;
  /** Never past this offset (the target of Trigger.AvailableNow); undefined: no bound. */
  endBound: string | undefined;
  /** Every shard generation up to the present in one offset (AvailableNow's target; Spark 4.0/4.1). */
  catchUp: boolean;
}

export interface PlanStreamReadInput extends StreamCallInput {
  start: string;
  end: string;
}

/**
 * The driver side of `spark.readStream`: offsets and partitions. Tasks read the
 * partitions with `Connector.read`, so one Read RPC serves batch and stream partitions.
 */
export interface StreamSource {
  initialOffset(input: StreamCallInput): Promise<string>;
  latestOffset(input: LatestOffsetInput): Promise<string>;
  /** The same two offsets always give the same partitions (a replayed micro-batch reads the same records). */
  planStreamRead(input: PlanStreamReadInput): Promise<Uint8Array[]>;
}

export interface Connector {
  /** The Spark format name, e.g. "dynamodb". */
  readonly format: string;
  readonly options: OptionRegistry<OptionSpecs>;
  describe(input: DescribeInput): Promise<DescribeResult>;
  planRead(input: PlanReadInput): Promise<Uint8Array[]>;
  /** Streams the partition's rows; stops promptly when `signal` aborts or the consumer returns. */
  read(input: ReadInput): AsyncIterable<RecordBatch>;
  planWrite(input: PlanWriteInput): Promise<Uint8Array>;
  write(input: WriteInput): Promise<WriteResult>;
  commitWrite(input: FinishWriteInput): Promise<void>;
  /** Returns what can be said about the state the target was left in. */
  abortWrite(input: FinishWriteInput): Promise<string>;
  /** Streaming reads; undefined when the format has none. */
  readonly stream?: StreamSource;
  /** Releases pooled clients (called on shutdown). */
  close(): Promise<void>;
}

/** Totals of a write's task results, for the commit/abort summary. */
export function sumWriteResults(results: readonly WriteResult[]): WriteResult {
  return results.reduce(
    (total, r) => ({
      rowsWritten: total.rowsWritten + Number(r.rowsWritten),
      rowsDeleted: total.rowsDeleted + Number(r.rowsDeleted),
      requests: total.requests + Number(r.requests),
      retries: total.retries + Number(r.retries),
    }),
    { rowsWritten: 0, rowsDeleted: 0, requests: 0, retries: 0 },
  );
}
