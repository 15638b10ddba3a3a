/**
 * The one place where service errors become gRPC statuses. A ConduitError keeps its code,
 * message and a google.rpc.ErrorInfo (reason = error class, metadata = parameters) in the
 * standard `grpc-status-details-bin` trailer; anything else becomes INTERNAL with a
 * message that names the operation, never a stack trace or a secret. Message, parameters
 * and the log line of an internal error pass through the one redaction (core/redact.ts),
 * with the secret values of the request's own options, which a driver may echo.
 */
import * as grpc from "@grpc/grpc-js";
import { ConduitError, type ErrorCode, toConduitError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { describeError, isSecretName, REDACTED, redactText, secretValuesOf } from "../core/redact.js";
import { loadProtos } from "./proto.js";

export const ERROR_DOMAIN = "spark-conduit";

const GRPC_CODES: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  CANCELLED: grpc.status.CANCELLED,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  INTERNAL: grpc.status.INTERNAL,
};

/**
 * `options` are the failing request's options (as the client sent them): their secret
 * values are scrubbed from everything this sends or logs.
 */
export function toServiceError(error: unknown, operation: string, logger?: Logger, options?: Readonly<Record<string, string>>): grpc.ServiceError {
  const conduitError: ConduitError = toConduitError(error, operation);
  const secrets = secretValuesOf(options);
  // Our own messages ("needs a bearer token: set ...") are not key=value text; foreign text
  // inside them was redacted where it was wrapped, and INTERNAL ones get every rule.
  const keyValues = conduitError.code === "INTERNAL";
  const message = redactText(conduitError.message, secrets, { keyValues });
  const parameters: Record<string, string> = {};
  for (const [key, value] of Object.entries(conduitError.parameters)) parameters[key] = isSecretName(key) && value !== "" ? REDACTED : redactText(value, secrets, { keyValues });
  if (conduitError.code === "INTERNAL") {
    logger?.error("internal error", { operation, errorClass: conduitError.errorClass, message, cause: describeError(conduitError.cause, secrets) });
  }
  const code = GRPC_CODES[conduitError.code];
  const metadata = new grpc.Metadata();
  metadata.set(
    "grpc-status-details-bin",
    loadProtos().encodeStatus({
      code,
      message,
      reason: conduitError.errorClass,
      domain: ERROR_DOMAIN,
      metadata: parameters,
    }),
  );
  const serviceError = Object.assign(new Error(message), {
    code,
    details: message,
    metadata,
  }) as grpc.ServiceError;
  return serviceError;
}
