/**
 * Translates AWS SDK failures into ConduitErrors in one place, so every call site gets the
 * same codes and messages that name the table and where it was looked for. The SDK error
 * stays as `cause` for logs; messages pass through `redactSecrets` because an SDK message
 * can quote a request.
 */
import { ConduitError, redactSecrets, toConduitError } from "../../core/errors.js";
import { describeTarget } from "./client.js";

export interface ErrorContext {
  table: string;
  region: string;
  endpoint: string | undefined;
  /** What was being done, e.g. "Scan", "BatchWriteItem". */
  operation: string;
  /** True on the write path, where create_table is a possible fix. */
  writing?: boolean;
}

const AUTH_ERRORS = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "MissingAuthenticationToken",
  "MissingAuthenticationTokenException",
  "IncompleteSignature",
  "IncompleteSignatureException",
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "CredentialsProviderError",
  "TokenProviderError",
]);

const PERMISSION_ERRORS = new Set(["AccessDeniedException", "AccessDenied", "UnauthorizedOperation"]);

/** Errors that mean "slow down"; the SDK already retried them when they reach us. */
export const THROTTLING_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "Throttling",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "LimitExceededException",
]);

const SERVER_ERRORS = new Set(["InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException"]);

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED"]);

function errorName(error: unknown): string {
  if (typeof error !== "object" || error === null) return "";
  const e = error as { name?: unknown; code?: unknown; Code?: unknown };
  if (typeof e.name === "string" && e.name !== "Error") return e.name;
  if (typeof e.Code === "string") return e.Code;
  return typeof e.name === "string" ? e.name : "";
}

/** The socket error code of a network failure (also inside an AggregateError), if any. */
export function networkCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested)) {
    for (const inner of nested) {
      const found = networkCode(inner);
      if (found) return found;
    }
  }
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error ? networkCode(cause) : undefined;
}

function sdkMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactSecrets(text).trim() || "(no message)";
}

/** True for failures worth retrying in the writer's own loop (throttling, 5xx, dropped connections). */
export function isRetryable(error: unknown): boolean {
  const name = errorName(error);
  if (THROTTLING_ERRORS.has(name) || SERVER_ERRORS.has(name)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  if (typeof status === "number" && status >= 500) return true;
  const code = networkCode(error);
  return code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT";
}

export function isAbort(error: unknown): boolean {
  const name = errorName(error);
  return name === "AbortError" || name === "RequestAbortedError";
}

export function cancelled(context: string, cause?: unknown): ConduitError {
  return new ConduitError({ code: "CANCELLED", errorClass: "CANCELLED", message: `${context}: the request was cancelled.`, cause });
}

/** Maps any error thrown by the SDK (or passed through it) to a ConduitError. */
export function translateDynamoDbError(error: unknown, context: ErrorContext): ConduitError {
  if (error instanceof ConduitError) return error;
  const where = describeTarget(context);
  const parameters = { table: context.table, region: context.region, endpoint: context.endpoint ?? "", operation: context.operation };
  if (isAbort(error)) return cancelled(`DynamoDB ${context.operation} on table '${context.table}'`, error);
  const name = errorName(error);
  const message = sdkMessage(error);

  if (name === "ResourceNotFoundException") {
    return new ConduitError({
      code: "NOT_FOUND",
      errorClass: "TABLE_NOT_FOUND",
      message: `DynamoDB table '${context.table}' does not exist in ${where}. Check 'table_name', 'aws_region' and 'endpoint_url'${context.writing ? ", or set create_table to true (with hash_key) to create it" : ""}.`,
      parameters,
      cause: error,
    });
  }
  if (name === "ValidationException" || name === "SerializationException") {
    return new ConduitError({
      code: "INVALID_ARGUMENT",
      errorClass: "DYNAMODB_VALIDATION",
      message: `DynamoDB rejected the ${context.operation} request for table '${context.table}': ${message}`,
      parameters: { ...parameters, reason: message },
      cause: error,
    });
  }
  if (AUTH_ERRORS.has(name)) {
    return new ConduitError({
      code: "UNAUTHENTICATED",
      errorClass: "DYNAMODB_UNAUTHENTICATED",
      message: `DynamoDB did not accept the credentials for ${context.operation} on table '${context.table}' in ${where}: ${message}. Set 'aws_access_key_id' and 'aws_secret_access_key' (and 'aws_session_token' for temporary credentials), or configure the default AWS credential chain where the service runs. DynamoDB Local accepts any non-empty values.`,
      parameters,
      cause: error,
    });
  }
  if (PERMISSION_ERRORS.has(name)) {
    return new ConduitError({
      code: "PERMISSION_DENIED",
      errorClass: "DYNAMODB_ACCESS_DENIED",
      message: `The credentials are not allowed to run ${context.operation} on DynamoDB table '${context.table}' in ${where}: ${message}`,
      parameters,
      cause: error,
    });
  }
  if (THROTTLING_ERRORS.has(name)) {
    return new ConduitError({
      code: "RESOURCE_EXHAUSTED",
      errorClass: "DYNAMODB_THROTTLED",
      message: `DynamoDB kept throttling ${context.operation} on table '${context.table}' after retries (${name}): ${message}. Lower the parallelism (total_segments, write_concurrency, Spark partitions) or raise the table's capacity.`,
      parameters,
      cause: error,
    });
  }
  if (name === "ResourceInUseException") {
    return new ConduitError({
      code: "FAILED_PRECONDITION",
      errorClass: "TABLE_IN_USE",
      message: `DynamoDB table '${context.table}' in ${where} is busy (being created, updated or deleted): ${message}`,
      parameters,
      cause: error,
    });
  }
  const code = networkCode(error);
  if (code !== undefined || name === "TimeoutError" || name === "RequestTimeout") {
    const target = context.endpoint ?? `the DynamoDB endpoint of region ${context.region}`;
    return new ConduitError({
      code: "UNAVAILABLE",
      errorClass: "DYNAMODB_UNAVAILABLE",
      message: `Could not reach ${target} for ${context.operation} on table '${context.table}' (${code ?? name}). Check 'endpoint_url' and 'aws_region', and that DynamoDB is reachable from the service.`,
      parameters: { ...parameters, reason: code ?? name },
      cause: error,
    });
  }
  if (SERVER_ERRORS.has(name)) {
    return new ConduitError({
      code: "UNAVAILABLE",
      errorClass: "DYNAMODB_UNAVAILABLE",
      message: `DynamoDB failed ${context.operation} on table '${context.table}' in ${where} with a server error (${name}): ${message}`,
      parameters: { ...parameters, reason: name },
      cause: error,
    });
  }
  return toConduitError(error, `DynamoDB ${context.operation} on table '${context.table}' in ${where}`);
}
