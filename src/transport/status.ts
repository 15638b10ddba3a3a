/**
 * The one place where service errors become gRPC statuses. A ConduitError keeps its code,
 * message and a google.rpc.ErrorInfo (reason = error class, metadata = parameters) in the
 * standard `grpc-status-details-bin` trailer; anything else becomes INTERNAL with a
 * message that names the operation, never a stack trace or a secret.
 */
import * as grpc from "@grpc/grpc-js";
import { ConduitError, type ErrorCode, toConduitError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
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

export function toServiceError(error: unknown, operation: string, logger?: Logger): grpc.ServiceError {
  const conduitError: ConduitError = toConduitError(error, operation);
  if (conduitError.code === "INTERNAL") {
    logger?.error("internal error", { operation, errorClass: conduitError.errorClass, message: conduitError.message, cause: describeCause(conduitError.cause) });
  }
  const code = GRPC_CODES[conduitError.code];
  const metadata = new grpc.Metadata();
  metadata.set(
    "grpc-status-details-bin",
    loadProtos().encodeStatus({
      code,
      message: conduitError.message,
      reason: conduitError.errorClass,
      domain: ERROR_DOMAIN,
      metadata: conduitError.parameters,
    }),
  );
  const serviceError = Object.assign(new Error(conduitError.message), {
    code,
    details: conduitError.message,
    metadata,
  }) as grpc.ServiceError;
  return serviceError;
}

function describeCause(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return `${cause.name}: ${cause.message}\n${cause.stack ?? ""}`;
  return String(cause);
}
