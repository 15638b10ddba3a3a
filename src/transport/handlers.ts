/**
 * gRPC handlers for the Conduit service: decode the request, call the connector, encode
 * the answer. No backend logic lives here.
 */
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { RecordBatch } from "apache-arrow";
import { decodeBatches, decodeSchema, encodeBatch, encodeSchema } from "../arrow/ipc.js";
import type { Connector, StreamSource, WriteResult } from "../core/connector.js";
import { closestMatch } from "../core/did-you-mean.js";
import { clip, ConduitError, invalidArgument } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type {
  DescribeRequest,
  FinishWriteRequest,
  PlanReadRequest,
  PlanStreamReadRequest,
  PlanWriteRequest,
  ReadRequest,
  StreamOffsetRequest,
  WriteRequest,
  WriteResponse,
} from "./proto.js";
import { toServiceError } from "./status.js";

export interface HandlerContext {
  connectors: ReadonlyMap<string, Connector>;
  logger: Logger;
  /** Counts calls in flight, for idle shutdown and graceful drain. */
  tracker: CallTracker;
  /** The server's largest message (`--max-message-bytes`); read batches are cut to stay well below it. */
  maxMessageBytes?: number;
}

/** As the server's default; handlers cannot import it from server.ts (which imports them). */
const FALLBACK_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const MESSAGE_FRAMING_BYTES = 64;
/** A read message's target size: small enough to leave the limit far away, large enough to amortize framing. */
const READ_MESSAGE_BUDGET_BYTES = 32 * 1024 * 1024;

/** The byte budget of one read message under a message limit. */
export function readMessageBudget(maxMessageBytes: number): number {
  return Math.max(1, Math.min(READ_MESSAGE_BUDGET_BYTES, Math.floor(maxMessageBytes / 4)));
}

/**
 * Encodes a batch as one or more IPC messages of at most about `budget` bytes each, cutting
 * it into contiguous row ranges (zero-copy slices) in order. A database page of large
 * values can exceed the gRPC message limit as one message; a single row that does not fit
 * under `maxMessageBytes` on its own cannot be sent at all and fails naming the limit.
 * `firstRow` is the partition's row index of the batch's row 0 (for the error).
 */
export function* encodeReadMessages(batch: RecordBatch, budget: number, maxMessageBytes: number, firstRow = 0): Generator<Uint8Array> {
  // The Arrow payload shares the message with a few bytes of protobuf framing.
  const limit = maxMessageBytes - MESSAGE_FRAMING_BYTES;
  // The buffers' size is a cheap upper bound for a batch fresh from a reader: split a page
  // known to be too big before encoding all of it.
  let pieces = batch.numRows > 1 && batch.data.byteLength > budget ? Math.ceil(batch.data.byteLength / budget) : 1;
  if (pieces === 1) {
    const encoded = encodeBatch(batch);
    if (encoded.length <= budget || (batch.numRows <= 1 && encoded.length <= limit)) {
      yield encoded;
      return;
    }
    if (batch.numRows <= 1) throw rowTooLarge(encoded.length, maxMessageBytes, firstRow);
    pieces = Math.ceil(encoded.length / budget);
  }
  pieces = Math.max(2, Math.min(pieces, batch.numRows));
  const rowsPerPiece = Math.ceil(batch.numRows / pieces);
  for (let offset = 0; offset < batch.numRows; offset += rowsPerPiece) {
    yield* encodeReadMessages(batch.slice(offset, Math.min(batch.numRows, offset + rowsPerPiece)), budget, maxMessageBytes, firstRow + offset);
  }
}

function rowTooLarge(bytes: number, limit: number, row: number): ConduitError {
  return new ConduitError({
    code: "RESOURCE_EXHAUSTED",
    errorClass: "READ_ROW_TOO_LARGE",
    message:
      `Row ${row} of this read partition is ${bytes} bytes as Arrow IPC, more than the service's message limit of ${limit} bytes, so it cannot be sent. ` +
      `Raise the limit with the service's --max-message-bytes (the Python shim accepts messages up to 256 MiB), or leave the large column out of the read schema.`,
    parameters: { row: String(row), bytes: String(bytes), limit: String(limit) },
  });
}

export class CallTracker {
  private active = 0;
  private lastActivity = Date.now();

  begin(): () => void {
    this.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      this.lastActivity = Date.now();
    };
  }

  get inFlight(): number {
    return this.active;
  }

  idleMillis(): number {
    return this.active > 0 ? 0 : Date.now() - this.lastActivity;
  }
}

function connectorFor(ctx: HandlerContext, format: string): Connector {
  const connector = ctx.connectors.get(format.toLowerCase());
  if (connector) return connector;
  const suggestion = closestMatch(format, ctx.connectors.keys());
  throw invalidArgument(
    "FORMAT_UNKNOWN",
    `This service has no connector for format '${clip(format)}'.${suggestion ? ` Did you mean '${suggestion}'?` : ""} Available: ${[...ctx.connectors.keys()].join(", ")}.`,
    { format: clip(format) },
  );
}

function streamSourceFor(ctx: HandlerContext, format: string): StreamSource {
  const connector = connectorFor(ctx, format);
  if (connector.stream) return connector.stream;
  const streaming = [...ctx.connectors.values()].filter((c) => c.stream).map((c) => c.format);
  throw new ConduitError({
    code: "UNIMPLEMENTED",
    errorClass: "STREAM_READ_UNSUPPORTED",
    message: `Format '${connector.format}' has no streaming reads (spark.readStream) yet; read it with spark.read. Formats with streaming reads: ${streaming.join(", ") || "none"}.`,
    parameters: { format: connector.format },
  });
}

function requireSchema(bytes: Buffer, what: string) {
  const schema = decodeSchema(bytes);
  if (!schema) throw invalidArgument("SCHEMA_MISSING", `The ${what} request carries no Arrow schema.`);
  return schema;
}

/** Aborts when the client cancels or the deadline passes. */
function callSignal(call: { on(event: "cancelled", listener: () => void): unknown }): AbortController {
  const controller = new AbortController();
  call.on("cancelled", () => controller.abort());
  return controller;
}

function unary<Req, Res>(ctx: HandlerContext, operation: string, run: (request: Req, signal: AbortSignal) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const done = ctx.tracker.begin();
    const controller = callSignal(call);
    run(call.request, controller.signal).then(
      (response) => {
        done();
        callback(null, response);
      },
      (error: unknown) => {
        done();
        callback(toServiceError(error, operation, ctx.logger, (call.request as { options?: Record<string, string> }).options));
      },
    );
  };
}

function toWireResult(result: WriteResult): WriteResponse {
  return { rowsWritten: result.rowsWritten, rowsDeleted: result.rowsDeleted, requests: result.requests, retries: result.retries };
}

export function createConduitHandlers(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const maxMessageBytes = ctx.maxMessageBytes ?? FALLBACK_MAX_MESSAGE_BYTES;
  const budget = readMessageBudget(maxMessageBytes);
  const describe = unary<DescribeRequest, { arrowSchema: Uint8Array; warnings: string[] }>(ctx, "Describe", async (request, signal) => {
    const connector = connectorFor(ctx, request.format);
    const result = await connector.describe({ options: request.options, userSchema: decodeSchema(request.arrowSchema), signal });
    return { arrowSchema: encodeSchema(result.schema), warnings: result.warnings };
  });

  const planRead = unary<PlanReadRequest, { partitions: Uint8Array[] }>(ctx, "PlanRead", async (request, signal) => {
    const connector = connectorFor(ctx, request.format);
    const partitions = await connector.planRead({ options: request.options, schema: requireSchema(request.arrowSchema, "PlanRead"), signal });
    return { partitions };
  });

  const read: grpc.handleServerStreamingCall<ReadRequest, { arrowBatch: Uint8Array }> = (call) => {
    const done = ctx.tracker.begin();
    const controller = callSignal(call);
    const run = async () => {
      const request = call.request;
      const connector = connectorFor(ctx, request.format);
      const batches = connector.read({
        options: request.options,
        schema: requireSchema(request.arrowSchema, "Read"),
        partition: request.partition,
        signal: controller.signal,
      });
      let rows = 0;
      for await (const batch of batches) {
        for (const message of encodeReadMessages(batch, budget, maxMessageBytes, rows)) {
          if (controller.signal.aborted) return;
          if (!call.write({ arrowBatch: message })) {
            // Backpressure: wait until the client has taken what is buffered.
            await Promise.race([once(call, "drain"), once(controller.signal, "abort")]);
          }
        }
        rows += batch.numRows;
      }
    };
    run().then(
      () => {
        done();
        if (!controller.signal.aborted) call.end();
      },
      (error: unknown) => {
        done();
        if (!controller.signal.aborted) call.emit("error", toServiceError(error, "Read", ctx.logger, call.request.options));
      },
    );
  };

  const write: grpc.handleClientStreamingCall<WriteRequest, WriteResponse> = (call, callback) => {
    const done = ctx.tracker.begin();
    const controller = callSignal(call);
    // For redacting the request's secrets from an error (status.ts).
    let writeOptions: Record<string, string> | undefined;
    const run = async (): Promise<WriteResponse> => {
      const messages = call[Symbol.asyncIterator]() as AsyncIterator<WriteRequest>;
      const first = await messages.next();
      const header = first.done ? undefined : first.value.header;
      if (!header) throw invalidArgument("WRITE_HEADER_MISSING", "A Write stream must start with a header message.");
      writeOptions = header.options;
      const connector = connectorFor(ctx, header.format);
      const schema = requireSchema(header.arrowSchema, "Write");
      async function* batches(): AsyncGenerator<RecordBatch> {
        for (;;) {
          const next = await messages.next();
          if (next.done) return;
          if (next.value.header) throw invalidArgument("WRITE_HEADER_REPEATED", "A Write stream carries exactly one header, as its first message.");
          for (const batch of decodeBatches(next.value.arrowBatch ?? Buffer.alloc(0), schema)) yield batch;
        }
      }
      const result = await connector.write({
        options: header.options,
        schema,
        writePlan: header.writePlan,
        task: { partitionId: header.partitionId, taskAttemptId: header.taskAttemptId, batchId: header.batchId },
        batches: batches(),
        signal: controller.signal,
      });
      return toWireResult(result);
    };
    run().then(
      (response) => {
        done();
        callback(null, response);
      },
      (error: unknown) => {
        done();
        if (error instanceof ConduitError || !controller.signal.aborted) callback(toServiceError(error, "Write", ctx.logger, writeOptions));
      },
    );
  };

  const finishInput = (request: FinishWriteRequest, signal: AbortSignal) => ({
    options: request.options,
    writePlan: request.writePlan,
    taskResults: request.taskResults.map((r) => ({ rowsWritten: r.rowsWritten, rowsDeleted: r.rowsDeleted, requests: r.requests, retries: r.retries })),
    batchId: request.batchId,
    signal,
  });

  const planWrite = unary<PlanWriteRequest, { writePlan: Uint8Array }>(ctx, "PlanWrite", async (request, signal) => {
    const connector = connectorFor(ctx, request.format);
    const writePlan = await connector.planWrite({
      options: request.options,
      schema: requireSchema(request.arrowSchema, "PlanWrite"),
      overwrite: request.overwrite,
      streaming: request.streaming,
      signal,
    });
    return { writePlan };
  });

  const commitWrite = unary<FinishWriteRequest, object>(ctx, "CommitWrite", async (request, signal) => {
    await connectorFor(ctx, request.format).commitWrite(finishInput(request, signal));
    return {};
  });

  const abortWrite = unary<FinishWriteRequest, { detail: string }>(ctx, "AbortWrite", async (request, signal) => {
    const detail = await connectorFor(ctx, request.format).abortWrite(finishInput(request, signal));
    return { detail };
  });

  const streamInput = (request: StreamOffsetRequest | PlanStreamReadRequest, operation: string, signal: AbortSignal) => ({
    options: request.options,
    schema: requireSchema(request.arrowSchema, operation),
    signal,
  });

  const initialOffset = unary<StreamOffsetRequest, { offset: string }>(ctx, "InitialOffset", async (request, signal) => {
    const offset = await streamSourceFor(ctx, request.format).initialOffset(streamInput(request, "InitialOffset", signal));
    return { offset };
  });

  const latestOffset = unary<StreamOffsetRequest, { offset: string }>(ctx, "LatestOffset", async (request, signal) => {
    const source = streamSourceFor(ctx, request.format);
    if (request.maxRecords < 0) throw invalidArgument("REQUEST_MALFORMED", `LatestOffset's max_records must be 0 (no limit) or more, not ${request.maxRecords}.`);
    const offset = await source.latestOffset({
      ...streamInput(request, "LatestOffset", signal),
      start: request.startOffset,
      maxRecords: request.maxRecords > 0 ? request.maxRecords : undefined,
      endBound: request.endBound !== "" ? request.endBound : undefined,
      catchUp: request.catchUp,
    });
    return { offset };
  });

  const planStreamRead = unary<PlanStreamReadRequest, { partitions: Uint8Array[] }>(ctx, "PlanStreamRead", async (request, signal) => {
    const partitions = await streamSourceFor(ctx, request.format).planStreamRead({
      ...streamInput(request, "PlanStreamRead", signal),
      start: request.startOffset,
      end: request.endOffset,
    });
    return { partitions };
  });

  return {
    InitialOffset: initialOffset,
    LatestOffset: latestOffset,
    PlanStreamRead: planStreamRead,
    Describe: describe,
    PlanRead: planRead,
    Read: read,
    PlanWrite: planWrite,
    Write: write,
    CommitWrite: commitWrite,
    AbortWrite: abortWrite,
  } as grpc.UntypedServiceImplementation;
}
