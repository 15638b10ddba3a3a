/**
 * Arrow IPC framing for the wire. Every payload is one complete IPC *stream* (schema,
 * batches, end-of-stream), so any message decodes on its own in pyarrow or arrow-js.
 */
import { RecordBatch, RecordBatchReader, Schema, Table, tableFromIPC, tableToIPC } from "apache-arrow";
import { invalidArgument } from "../core/errors.js";
import { checkBatchBounds, verifyIpcStream } from "./ipc-verify.js";

/** Encodes a schema as an IPC stream with no batches. */
export function encodeSchema(schema: Schema): Uint8Array {
  return tableToIPC(new Table(schema), "stream");
}

/** Decodes the schema of an IPC stream; undefined for empty bytes (no schema given). */
export function decodeSchema(bytes: Uint8Array | undefined): Schema | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    verifyIpcStream(bytes);
    return tableFromIPC(bytes).schema;
  } catch (cause) {
    throw invalidArgument("ARROW_DECODE_FAILED", `The Arrow schema sent by the client could not be decoded: ${reason(cause)}.`, {}, cause);
  }
}

/** Encodes one batch as a self-contained IPC stream. */
export function encodeBatch(batch: RecordBatch): Uint8Array {
  return tableToIPC(new Table([batch]), "stream");
}

/** Decodes every batch of one IPC stream (zero or more). */
export function decodeBatches(bytes: Uint8Array): RecordBatch[] {
  try {
    verifyIpcStream(bytes);
    const reader = RecordBatchReader.from(bytes);
    const batches: RecordBatch[] = [];
    for (const batch of reader) {
      checkBatchBounds(batch, bytes.length);
      batches.push(batch);
    }
    return batches;
  } catch (cause) {
    throw invalidArgument("ARROW_DECODE_FAILED", `An Arrow record batch sent by the client could not be decoded: ${reason(cause)}.`, {}, cause);
  }
}

/** The decoder's own words, short, when they say which part of the bytes is wrong (not a JavaScript TypeError about `undefined`). */
function reason(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  if (!text || /undefined|null|NaN/.test(text)) return "the bytes are not a valid Arrow IPC stream";
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
