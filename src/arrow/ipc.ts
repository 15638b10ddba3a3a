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

/**
 * Decodes every batch of one IPC stream (zero or more). With `expected` (the schema a
 * write's header announced), a batch whose columns differ is refused: connectors convert
 * by the planned types and must not meet others.
 */
export function decodeBatches(bytes: Uint8Array, expected?: Schema): RecordBatch[] {
  let batches: RecordBatch[];
  try {
    verifyIpcStream(bytes);
    const reader = RecordBatchReader.from(bytes);
    batches = [];
    for (const batch of reader) {
      checkBatchBounds(batch, bytes.length);
      batches.push(batch);
    }
  } catch (cause) {
    throw invalidArgument("ARROW_DECODE_FAILED", `An Arrow record batch sent by the client could not be decoded: ${reason(cause)}.`, {}, cause);
  }
  if (expected) for (const batch of batches) checkSameColumns(batch.schema, expected);
  return batches;
}

function columnsText(schema: Schema): string {
  return schema.fields.map((f) => `${f.name} ${String(f.type)}`).join(", ");
}

function checkSameColumns(actual: Schema, expected: Schema): void {
  // Names and kinds of type only: time zones and child field names may be spelled differently by Spark and pyarrow.
  const same = actual.fields.length === expected.fields.length && actual.fields.every((f, i) => f.name === expected.fields[i]!.name && f.typeId === expected.fields[i]!.typeId);
  if (same) return;
  throw invalidArgument(
    "BATCH_SCHEMA_MISMATCH",
    `A record batch has the columns (${columnsText(actual)}) but the write's header announced (${columnsText(expected)}); every batch of a write must have the schema its header carries.`,
    { expected: columnsText(expected), actual: columnsText(actual) },
  );
}

/** The decoder's own words, short, when they say which part of the bytes is wrong (not a JavaScript TypeError about `undefined`). */
function reason(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  if (!text || /undefined|null|NaN/.test(text)) return "the bytes are not a valid Arrow IPC stream";
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
