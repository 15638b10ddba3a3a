/**
 * Transport tests: a real gRPC server on port 0 with a fake connector, a real grpc-js
 * client. Checks framing, streaming backpressure, error translation, auth and shutdown.
 */
import * as grpc from "@grpc/grpc-js";
import { Binary, Field, Int32, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { afterEach, describe, expect, it } from "vitest";
import { decodeBatches, decodeSchema, encodeBatch, encodeSchema } from "../../src/arrow/ipc.js";
import { readValue } from "../../src/arrow/values.js";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import type { Connector, ReadInput, WriteInput } from "../../src/core/connector.js";
import { ConduitError, invalidArgument } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { OptionRegistry } from "../../src/options/registry.js";
import { errorDetails, serviceClients, unaryCall, type Client } from "../support/grpc-client.js";
import { isLoopbackAddress, startServer, type RunningServer } from "../../src/transport/server.js";

const schema = new Schema([new Field("id", new Int32(), false), new Field("name", new Utf8(), true)]);
const blobSchema = new Schema([new Field("id", new Int32(), false), new Field("blob", new Binary(), true)]);

/** One database page of `count` rows holding `bytes`-byte blobs (row i's blob is filled with i % 251). */
function blobPage(count: number, bytes: number, sizeOf: (row: number) => number = () => bytes): RecordBatch {
  const builder = new BatchBuilder(blobSchema);
  for (let i = 0; i < count; i++) builder.appendRow([i, new Uint8Array(sizeOf(i)).fill(i % 251)]);
  return builder.flush();
}

function batchOf(from: number, count: number): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (let i = from; i < from + count; i++) builder.appendRow([i, `row-${i}`]);
  return builder.flush();
}

interface FakeState {
  produced: number;
  written: RecordBatch[];
  readDelayMs: number;
}

function fakeConnector(state: FakeState): Connector {
  return {
    format: "fake",
    options: new OptionRegistry("fake", {}),
    async describe(input) {
      if (input.options.fail === "yes") throw invalidArgument("FAKE_FAILURE", "The fake was told to fail on option 'fail'.", { option: "fail" });
      return { schema: input.userSchema ?? schema, warnings: ["a warning"] };
    },
    async planRead() {
      return [new TextEncoder().encode("p0"), new TextEncoder().encode("p1")];
    },
    async *read(input: ReadInput) {
      if (input.options.blobs !== undefined) {
        // One page bigger than the message limit; `hugerow` makes one row alone bigger than it.
        const huge = input.options.hugerow === undefined ? -1 : Number(input.options.hugerow);
        const bytes = Number(input.options.blobbytes);
        yield blobPage(Number(input.options.blobs), bytes, (row) => (row === huge ? Number(input.options.hugebytes) : bytes));
        return;
      }
      const batches = Number(input.options.batches ?? "3");
      for (let i = 0; i < batches; i++) {
        if (input.signal.aborted) return;
        if (state.readDelayMs) await new Promise((r) => setTimeout(r, state.readDelayMs));
        state.produced++;
        yield batchOf(i * 1000, 1000);
      }
      if (input.options.failafter === "yes") throw new ConduitError({ code: "UNAVAILABLE", errorClass: "FAKE_DOWN", message: "The fake database went away." });
    },
    async planWrite() {
      return new TextEncoder().encode("plan");
    },
    async write(input: WriteInput) {
      let rows = 0;
      for await (const batch of input.batches) {
        state.written.push(batch);
        rows += batch.numRows;
      }
      return { rowsWritten: rows, rowsDeleted: 0, requests: input.task.partitionId, retries: 0 };
    },
    async commitWrite() {},
    async abortWrite() {
      return "nothing to undo";
    },
    async close() {},
  };
}

function clients(address: string, maxReceiveBytes = 64 * 1024 * 1024) {
  return serviceClients(address, { maxReceiveBytes });
}

/** The error's ErrorInfo, which must be the status's one detail. */
function decodeErrorInfo(error: grpc.ServiceError) {
  const details = errorDetails(error);
  expect(details.typeUrl).toBe("type.googleapis.com/google.rpc.ErrorInfo");
  return details;
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.shutdown(1000);
  server = undefined;
});

async function start(state: FakeState, token?: string, maxMessageBytes?: number) {
  server = await startServer({ listen: "127.0.0.1:0", connectors: new Map([["fake", fakeConnector(state)]]), logger: silentLogger, token, maxMessageBytes });
  expect(server.port).toBeGreaterThan(0);
  // The client accepts no more than the server may send, so an oversize message fails the call.
  return clients(`127.0.0.1:${server.port}`, maxMessageBytes);
}

async function readAll(conduit: Client, options: Record<string, string>): Promise<{ sizes: number[]; batches: RecordBatch[]; error?: grpc.ServiceError }> {
  const call = conduit.Read({ format: "fake", options, arrowSchema: encodeSchema(blobSchema), partition: Buffer.from("p0") }) as grpc.ClientReadableStream<{ arrowBatch: Buffer }>;
  const sizes: number[] = [];
  const batches: RecordBatch[] = [];
  try {
    for await (const message of call) {
      sizes.push(message.arrowBatch.length);
      batches.push(...decodeBatches(message.arrowBatch));
    }
  } catch (error) {
    return { sizes, batches, error: error as grpc.ServiceError };
  }
  return { sizes, batches };
}

const newState = (): FakeState => ({ produced: 0, written: [], readDelayMs: 0 });

describe("Conduit transport", () => {
  it("answers the health check", async () => {
    const { health } = await start(newState());
    await expect(unaryCall(health, "Check", { service: "" })).resolves.toEqual({ status: "SERVING" });
  });

  it("round-trips Describe with an Arrow schema and warnings", async () => {
    const { conduit } = await start(newState());
    const response = await unaryCall<{ arrowSchema: Buffer; warnings: string[] }>(conduit, "Describe", { format: "FAKE", options: {}, arrowSchema: encodeSchema(schema) });
    expect(decodeSchema(response.arrowSchema)!.fields.map((f) => f.name)).toEqual(["id", "name"]);
    expect(response.warnings).toEqual(["a warning"]);
  });

  it("returns the planned partitions as opaque bytes", async () => {
    const { conduit } = await start(newState());
    const response = await unaryCall<{ partitions: Buffer[] }>(conduit, "PlanRead", { format: "fake", options: {}, arrowSchema: encodeSchema(schema) });
    expect(response.partitions.map((p) => p.toString())).toEqual(["p0", "p1"]);
  });

  it("translates a ConduitError into a status with ErrorInfo", async () => {
    const { conduit } = await start(newState());
    const error = (await unaryCall(conduit, "Describe", { format: "fake", options: { fail: "yes" } }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe("The fake was told to fail on option 'fail'.");
    const info = decodeErrorInfo(error);
    expect(info).toMatchObject({ reason: "FAKE_FAILURE", domain: "spark-conduit", metadata: { option: "fail" } });
  });

  it("rejects an unknown format with a suggestion", async () => {
    const { conduit } = await start(newState());
    const error = (await unaryCall(conduit, "Describe", { format: "fak", options: {} }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain("Did you mean 'fake'?");
    expect(decodeErrorInfo(error).reason).toBe("FORMAT_UNKNOWN");
  });

  it("streams every batch of a read in order", async () => {
    const { conduit } = await start(newState());
    const call = conduit.Read({ format: "fake", options: { batches: "5" }, arrowSchema: encodeSchema(schema), partition: Buffer.from("p0") }) as grpc.ClientReadableStream<{ arrowBatch: Buffer }>;
    const ids: number[] = [];
    for await (const message of call) {
      for (const batch of decodeBatches(message.arrowBatch)) ids.push(readValue(batch.getChildAt(0)!, 0) as number, batch.numRows);
    }
    expect(ids).toEqual([0, 1000, 1000, 1000, 2000, 1000, 3000, 1000, 4000, 1000]);
  });

  it("splits a database page bigger than the message limit into messages under it, every row in order", async () => {
    const limit = 1024 * 1024;
    const { conduit } = await start(newState(), undefined, limit);
    // 40 rows of 100 KB: about 4 MB in one page, four times the limit.
    const { sizes, batches, error } = await readAll(conduit, { blobs: "40", blobbytes: "100000" });
    expect(error).toBeUndefined();
    expect(sizes.length).toBeGreaterThan(4);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(limit / 4 + 4096);
    const rows = batches.flatMap((batch) => Array.from({ length: batch.numRows }, (_, r) => [readValue(batch.getChildAt(0)!, r), readValue(batch.getChildAt(1)!, r)] as const));
    expect(rows.map(([id]) => id)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (const [id, blob] of rows) {
      const bytes = blob as Uint8Array;
      expect(bytes.length).toBe(100_000);
      expect(bytes[0]).toBe((id as number) % 251);
      expect(bytes[99_999]).toBe((id as number) % 251);
    }
  });

  it("sends a row between the budget and the limit alone, and fails a row over the limit naming the limit", async () => {
    const limit = 1024 * 1024;
    const { conduit } = await start(newState(), undefined, limit);
    // Row 5 is 600 KB: over the 256 KB budget but under the limit, so it goes alone.
    const fits = await readAll(conduit, { blobs: "10", blobbytes: "50000", hugerow: "5", hugebytes: "600000" });
    expect(fits.error).toBeUndefined();
    expect(fits.batches.reduce((n, b) => n + b.numRows, 0)).toBe(10);
    expect(Math.max(...fits.sizes)).toBeLessThanOrEqual(limit);
    // Row 7 is 2 MB: it cannot be sent at all.
    const { batches, error } = await readAll(conduit, { blobs: "10", blobbytes: "50000", hugerow: "7", hugebytes: "2000000" });
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const info = decodeErrorInfo(error!);
    expect(info.reason).toBe("READ_ROW_TOO_LARGE");
    expect(info.metadata).toMatchObject({ row: "7", limit: String(limit) });
    expect(error!.details).toContain(`message limit of ${limit} bytes`);
    expect(error!.details).toContain("--max-message-bytes");
    // The rows before it arrived, in order.
    const ids = batches.flatMap((batch) => Array.from({ length: batch.numRows }, (_, r) => readValue(batch.getChildAt(0)!, r)));
    expect(ids).toEqual(ids.map((_, i) => i));
  });

  it("applies backpressure: a slow client holds the producer back", async () => {
    const state = newState();
    const { conduit } = await start(state);
    const call = conduit.Read({ format: "fake", options: { batches: "100000" }, arrowSchema: encodeSchema(schema), partition: Buffer.from("p0") }) as grpc.ClientReadableStream<{
      arrowBatch: Buffer;
    }>;
    let consumed = 0;
    for await (const _message of call) {
      consumed++;
      await new Promise((r) => setTimeout(r, 20));
      if (consumed === 40) break;
    }
    await new Promise((r) => setTimeout(r, 300));
    // Each batch is ~15 KB: what is in flight is bounded by stream buffers and the HTTP/2
    // window, not by the partition's size.
    expect(state.produced - consumed).toBeLessThan(100);
    call.cancel();
  });

  it("sends an error raised mid-stream after the batches before it", async () => {
    const { conduit } = await start(newState());
    const call = conduit.Read({ format: "fake", options: { batches: "2", failafter: "yes" }, arrowSchema: encodeSchema(schema), partition: Buffer.from("p0") }) as grpc.ClientReadableStream<{
      arrowBatch: Buffer;
    }>;
    let received = 0;
    const error = await (async () => {
      try {
        for await (const _message of call) received++;
      } catch (e) {
        return e as grpc.ServiceError;
      }
      return undefined;
    })();
    expect(received).toBe(2);
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(decodeErrorInfo(error!).reason).toBe("FAKE_DOWN");
  });

  it("consumes a client-streamed write: header first, then Arrow batches", async () => {
    const state = newState();
    const { conduit } = await start(state);
    const result = await new Promise<{ rowsWritten: number; requests: number }>((resolve, reject) => {
      const call = (conduit.Write as (cb: (e: grpc.ServiceError | null, v: { rowsWritten: number; requests: number }) => void) => grpc.ClientWritableStream<object>)((e, v) =>
        e ? reject(e) : resolve(v),
      );
      call.write({ header: { format: "fake", options: {}, arrowSchema: encodeSchema(schema), writePlan: Buffer.from("plan"), partitionId: 7 } });
      for (let i = 0; i < 4; i++) call.write({ arrowBatch: encodeBatch(batchOf(i * 1000, 1000)) });
      call.end();
    });
    expect(result).toMatchObject({ rowsWritten: 4000, requests: 7 });
    expect(state.written.map((b) => b.numRows)).toEqual([1000, 1000, 1000, 1000]);
  });

  it("rejects a write stream without a header", async () => {
    const { conduit } = await start(newState());
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      const call = (conduit.Write as (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object>)((e) => resolve(e!));
      call.write({ arrowBatch: encodeBatch(batchOf(0, 1)) });
      call.end();
    });
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(decodeErrorInfo(error).reason).toBe("WRITE_HEADER_MISSING");
  });

  it("requires the bearer token when one is configured, but not for health", async () => {
    const { conduit, health } = await start(newState(), "s3cret-token");
    const denied = (await unaryCall(conduit, "Describe", { format: "fake", options: {} }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(denied.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(denied.details).not.toContain("s3cret");
    const wrong = new grpc.Metadata();
    wrong.set("authorization", "Bearer nope");
    await expect(unaryCall(conduit, "Describe", { format: "fake", options: {} }, wrong)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const right = new grpc.Metadata();
    right.set("authorization", "Bearer s3cret-token");
    await expect(unaryCall(conduit, "Describe", { format: "fake", options: {} }, right)).resolves.toMatchObject({ warnings: ["a warning"] });
    await expect(unaryCall(health, "Check", { service: "" })).resolves.toEqual({ status: "SERVING" });
  });

  it("lets an in-flight read finish during a graceful shutdown", async () => {
    const state = newState();
    state.readDelayMs = 200;
    const { conduit } = await start(state);
    const call = conduit.Read({ format: "fake", options: { batches: "5" }, arrowSchema: encodeSchema(schema), partition: Buffer.from("p0") }) as grpc.ClientReadableStream<{
      arrowBatch: Buffer;
    }>;
    const received = (async () => {
      let n = 0;
      for await (const _m of call) n++;
      return n;
    })();
    await new Promise((r) => setTimeout(r, 300));
    const stopped = server!.shutdown(10_000);
    server = undefined;
    expect(await received).toBe(5);
    await stopped;
  });

  it("refuses plaintext off loopback", async () => {
    expect(isLoopbackAddress("127.0.0.1:0")).toBe(true);
    expect(isLoopbackAddress("[::1]:5")).toBe(true);
    expect(isLoopbackAddress("unix:/tmp/x.sock")).toBe(true);
    expect(isLoopbackAddress("0.0.0.0:5")).toBe(false);
    await expect(startServer({ listen: "0.0.0.0:0", connectors: new Map(), logger: silentLogger })).rejects.toThrow(/requires --tls-cert/);
  });
});
