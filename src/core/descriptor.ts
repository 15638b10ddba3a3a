/**
 * Partition descriptors and write plans are small JSON documents, UTF-8 encoded. The shim
 * carries them as opaque bytes; each backend documents the shape of its own (see
 * `planner.ts` in each backend). A version field lets a newer service refuse an older plan
 * cleanly instead of misreading it.
 */
import { invalidArgument } from "./errors.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeDescriptor(kind: string, body: object): Uint8Array {
  return encoder.encode(JSON.stringify({ kind, v: 1, ...body }));
}

export function decodeDescriptor<T>(kind: string, bytes: Uint8Array): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw invalidArgument("DESCRIPTOR_INVALID", `The ${kind} descriptor is not valid JSON; it must come from this service's planning call.`, { kind }, cause);
  }
  const doc = parsed as { kind?: unknown; v?: unknown };
  if (typeof parsed !== "object" || parsed === null || doc.kind !== kind || doc.v !== 1) {
    throw invalidArgument("DESCRIPTOR_INVALID", `Expected a version 1 '${kind}' descriptor from this service's planning call.`, { kind });
  }
  return parsed as T;
}

/** The kind of a descriptor, so a connector can route it; undefined when the bytes are not one. */
export function descriptorKind(bytes: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(decoder.decode(bytes));
    const kind = typeof parsed === "object" && parsed !== null ? (parsed as { kind?: unknown }).kind : undefined;
    return typeof kind === "string" ? kind : undefined;
  } catch {
    return undefined;
  }
}
