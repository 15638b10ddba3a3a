/**
 * The one error type of the service. Every failure a user can cause or see is a
 * ConduitError: a gRPC-aligned code, a stable error class (what tests and callers match
 * on, never the message), a message that names what is wrong and how to fix it, and
 * parameters (the option, column, value or table at fault). The transport translates it
 * to a gRPC status in one place; the shim turns it back into a Python exception.
 */

import { redactText } from "./redact.js";

/** gRPC status codes we use, by name (numbers live in the transport). */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED"
  | "RESOURCE_EXHAUSTED"
  | "DEADLINE_EXCEEDED"
  | "UNAVAILABLE"
  | "CANCELLED"
  | "UNIMPLEMENTED"
  | "INTERNAL";

export type ErrorParameters = Record<string, string>;

export interface ConduitErrorInit {
  code: ErrorCode;
  errorClass: string;
  message: string;
  parameters?: ErrorParameters;
  cause?: unknown;
}

export class ConduitError extends Error {
  readonly code: ErrorCode;
  readonly errorClass: string;
  readonly parameters: ErrorParameters;

  constructor(init: ConduitErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ConduitError";
    this.code = init.code;
    this.errorClass = init.errorClass;
    this.parameters = init.parameters ?? {};
  }
}

export function isConduitError(error: unknown): error is ConduitError {
  return error instanceof ConduitError;
}

/** Shorthand constructors for the common shapes; the error class stays explicit. */
export function invalidArgument(errorClass: string, message: string, parameters?: ErrorParameters, cause?: unknown): ConduitError {
  return new ConduitError({ code: "INVALID_ARGUMENT", errorClass, message, parameters, cause });
}

export function notFound(errorClass: string, message: string, parameters?: ErrorParameters, cause?: unknown): ConduitError {
  return new ConduitError({ code: "NOT_FOUND", errorClass, message, parameters, cause });
}

export function failedPrecondition(errorClass: string, message: string, parameters?: ErrorParameters, cause?: unknown): ConduitError {
  return new ConduitError({ code: "FAILED_PRECONDITION", errorClass, message, parameters, cause });
}

/**
 * Wraps anything thrown by a driver or SDK that was not already classified. The message
 * keeps the original text (minus anything that looks like a secret) so users can act on it.
 */
export function toConduitError(error: unknown, context: string): ConduitError {
  if (error instanceof ConduitError) return error;
  if (error instanceof Error && error.name === "AbortError") {
    return new ConduitError({ code: "CANCELLED", errorClass: "CANCELLED", message: `${context}: the request was cancelled.`, cause: error });
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new ConduitError({
    code: "INTERNAL",
    errorClass: "INTERNAL_ERROR",
    message: `${context} failed: ${redactSecrets(text)}`,
    cause: error,
  });
}

/** Removes things that look like credentials from text that may reach a user or a log (the rules live in redact.ts). */
export function redactSecrets(text: string): string {
  return redactText(text);
}

/**
 * Client-supplied text (a format, an option name or value) as it may appear in a message:
 * control characters escaped, and cut to `max` characters so a corrupt request cannot
 * make a megabyte-long error.
 */
export function clip(text: string, max = 100): string {
  const escaped = text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return escaped.length > max ? `${escaped.slice(0, max)}... (${text.length} characters)` : escaped;
}
