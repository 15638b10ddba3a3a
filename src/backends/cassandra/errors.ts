/**
 * Translates cassandra-driver failures into ConduitErrors in one place, so every call site
 * gets the same codes and messages naming the nodes, keyspace, table and option at fault.
 * The driver error stays as `cause` for logs; messages pass through `redactSecrets`, and
 * the password never appears (authentication errors name the user only).
 */
import cassandra from "cassandra-driver";
import { closestMatch } from "../../core/did-you-mean.js";
import type { Clock } from "../../core/clock.js";
import { ConduitError, redactSecrets, toConduitError } from "../../core/errors.js";

const codes = cassandra.types.responseErrorCodes;

export interface ErrorContext {
  /** Contact points as `host:port`, for messages. */
  target: string;
  tls: boolean;
  keyspace: string;
  table: string;
  /** What was being done, e.g. "read", "write", "TRUNCATE". */
  operation: string;
  username: string | undefined;
  /** The read's `filter` option, when the failing query carried it. */
  filter?: string;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED"]);
const CERTIFICATE_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

function nameOf(error: unknown): string {
  return typeof error === "object" && error !== null && typeof (error as { name?: unknown }).name === "string" ? (error as { name: string }).name : "";
}

function codeOf(error: unknown): unknown {
  return typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactSecrets(text).trim() || "(no message)";
}

/** The errors a NoHostAvailableError collected per node (and their causes). */
function innerErrors(error: unknown): unknown[] {
  const inner = typeof error === "object" && error !== null ? (error as { innerErrors?: unknown }).innerErrors : undefined;
  if (!inner || typeof inner !== "object") return [];
  return Object.values(inner as Record<string, unknown>);
}

function flatten(error: unknown, depth = 0): unknown[] {
  if (depth > 4 || error === undefined || error === null) return [];
  const out: unknown[] = [error];
  for (const inner of innerErrors(error)) out.push(...flatten(inner, depth + 1));
  const cause = (error as { cause?: unknown; additionalInfo?: unknown }).cause;
  if (cause !== undefined && cause !== error) out.push(...flatten(cause, depth + 1));
  const additional = (error as { additionalInfo?: unknown }).additionalInfo;
  if (additional instanceof Error) out.push(...flatten(additional, depth + 1));
  return out;
}

export function isAuthenticationError(error: unknown): boolean {
  return flatten(error).some((e) => nameOf(e) === "AuthenticationError" || (nameOf(e) === "ResponseError" && codeOf(e) === codes.badCredentials));
}

function tlsProblem(errors: unknown[]): "certificate" | "handshake" | undefined {
  for (const e of errors) {
    const code = codeOf(e);
    if (typeof code === "string" && CERTIFICATE_CODES.has(code)) return "certificate";
    const message = e instanceof Error ? e.message : "";
    if (/certificate|self[- ]signed|altnames|Hostname\/IP does not match/i.test(message)) return "certificate";
  }
  for (const e of errors) {
    const code = codeOf(e);
    const message = e instanceof Error ? e.message : "";
    if (code === "EPROTO" || (typeof code === "string" && code.startsWith("ERR_SSL")) || /before secure TLS connection|wrong version number|SSL routines|packet length too long|tlsv1 alert|handshake/i.test(message)) {
      return "handshake";
    }
  }
  return undefined;
}

function networkCode(errors: unknown[]): string | undefined {
  for (const e of errors) {
    const code = codeOf(e);
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    const match = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)\b/.exec(e instanceof Error ? e.message : "");
    if (match) return match[1];
  }
  return undefined;
}

export function isTimeout(error: unknown): boolean {
  const name = nameOf(error);
  const code = codeOf(error);
  return name === "OperationTimedOutError" || (name === "ResponseError" && (code === codes.writeTimeout || code === codes.readTimeout));
}

/**
 * What a node answered, when the driver wrapped it: its default retry policy retries an
 * Overloaded answer, a server error or a lost connection on the next host, and when no
 * host is left it throws a NoHostAvailableError holding each host's error. The first
 * answer (a ResponseError) inside says more than "no host available"; else the error itself.
 */
export function nodeAnswer(error: unknown): unknown {
  if (nameOf(error) !== "NoHostAvailableError") return error;
  return innerErrors(error).find((e) => nameOf(e) === "ResponseError") ?? error;
}

/** A lost connection: the driver's socket errors carry `isSocketError` (and `requestNotWritten` when nothing was sent). */
function isSocketError(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { isSocketError?: unknown }).isSocketError === true;
}

/** A failure that certainly did not reach a node: a host known to be down, a busy pool, a request never written. */
function certainlyNotSent(error: unknown): boolean {
  if (typeof error === "string") return true; // the driver's "Host considered as DOWN"
  if (nameOf(error) === "BusyConnectionError") return true;
  return isSocketError(error) && (error as { requestNotWritten?: unknown }).requestNotWritten === true;
}

/**
 * How a failed request may be retried:
 * - "answered": a node answered with an error a retry can fix (timeout, too few replicas,
 *   overloaded, starting, server error); retries of these are counted (`max_retries`).
 * - "unreachable": no node answered (connection lost, no host up, client-side timeout):
 *   retried for as long as the time budget lasts, waiting for the driver to reconnect.
 * - "fatal": anything else (bad query, permissions, credentials, TLS, cancelled).
 * `mayHaveApplied` is false only when the request certainly did not change anything, so a
 * retry of a statement that is not idempotent must take a new write timestamp.
 */
export interface FailureKind {
  kind: "answered" | "unreachable" | "fatal";
  mayHaveApplied: boolean;
}

export function classifyFailure(error: unknown): FailureKind {
  const fatal: FailureKind = { kind: "fatal", mayHaveApplied: true };
  if (error instanceof ConduitError || nameOf(error) === "AbortError") return fatal;
  const answer = nodeAnswer(error);
  if (nameOf(answer) === "ResponseError") {
    const code = codeOf(answer);
    if (code === codes.writeTimeout || code === codes.readTimeout || code === codes.serverError) return { kind: "answered", mayHaveApplied: true };
    if (code === codes.unavailableException || code === codes.overloaded || code === codes.isBootstrapping) return { kind: "answered", mayHaveApplied: false };
    return fatal;
  }
  const name = nameOf(error);
  if (name === "NoHostAvailableError") {
    if (isAuthenticationError(error) || tlsProblem(flatten(error)) !== undefined) return fatal;
    const inner = innerErrors(error);
    return { kind: "unreachable", mayHaveApplied: !inner.every(certainlyNotSent) };
  }
  if (name === "OperationTimedOutError") return { kind: "unreachable", mayHaveApplied: true };
  if (name === "BusyConnectionError" || isSocketError(error)) return { kind: "unreachable", mayHaveApplied: !certainlyNotSent(error) };
  if (networkCode([error]) !== undefined && tlsProblem([error]) === undefined) return { kind: "unreachable", mayHaveApplied: true };
  return fatal;
}

/** Failures worth retrying: timeouts, too few replicas, an overloaded or starting node, no node reachable right now. */
export function isRetryable(error: unknown): boolean {
  return classifyFailure(error).kind !== "fatal";
}

export interface RetryLimits {
  /** Retries of errors a node answered with (`max_retries`). */
  maxRetries: number;
  /** Time from a request's first attempt after which no retry starts (`max_retry_seconds`). */
  maxRetrySeconds: number;
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5_000;
/** The longest single wait for the driver to bring a node back before the next attempt. */
const HOST_WAIT_CAP_MS = 10_000;

/**
 * The retries of one request (a write statement or batch, a page of a read). A node's error
 * answer is retried `maxRetries` times with exponential backoff and jitter; a node that
 * cannot be reached (connection lost, every host down, no reply in time) is waited for —
 * until the driver reports a node up again, then a short backoff — without counting against
 * `maxRetries`, since a reconnection takes the driver a second or more. Either way no retry
 * starts once `maxRetrySeconds` have passed since the first attempt, so it is always bounded.
 */
export class RequestRetries {
  /** Attempts made so far (1 after the first). */
  attempts = 0;
  /** Retries after an answered error. */
  answered = 0;
  /** Failed attempts that may have been applied (a statement that is not idempotent needs a new write timestamp after each). */
  mayHaveApplied = 0;
  private unreachable = 0;
  private readonly started: number;
  /** Why retrying ended: "max_retries", "max_retry_seconds", or "fatal". */
  stoppedBy: "max_retries" | "max_retry_seconds" | "fatal" | undefined;

  constructor(
    private readonly limits: RetryLimits,
    private readonly clock: Clock,
    private readonly waitForHost: (ms: number, signal: AbortSignal) => Promise<boolean>,
  ) {
    this.started = clock.now();
  }

  get seconds(): number {
    return (this.clock.now() - this.started) / 1000;
  }

  /**
   * After a failed attempt: waits as the failure needs and returns true to try again, or
   * returns false (with `stoppedBy` set) when the failure is fatal or the budget is spent.
   * Waits end when `signal` aborts (the wait rejects).
   */
  async retryAfter(error: unknown, signal: AbortSignal): Promise<boolean> {
    const failure = classifyFailure(error);
    if (failure.mayHaveApplied) this.mayHaveApplied++;
    if (failure.kind === "fatal") return this.stop("fatal");
    if (failure.kind === "answered" && this.answered >= this.limits.maxRetries) return this.stop("max_retries");
    const deadline = this.started + this.limits.maxRetrySeconds * 1000;
    let left = deadline - this.clock.now();
    if (left <= 0) return this.stop("max_retry_seconds");
    let exponent: number;
    if (failure.kind === "answered") {
      exponent = this.answered++;
    } else {
      exponent = this.unreachable++;
      await this.waitForHost(Math.min(left, HOST_WAIT_CAP_MS), signal);
      left = deadline - this.clock.now();
      if (left <= 0) return this.stop("max_retry_seconds");
    }
    const delay = Math.min(left, this.clock.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(exponent, 16)));
    await this.clock.sleep(delay, signal);
    return true;
  }

  private stop(reason: "max_retries" | "max_retry_seconds" | "fatal"): false {
    this.stoppedBy = reason;
    return false;
  }

  /** "after 3 retries over 1.2 s, max_retries=3", for messages; empty when nothing was retried. */
  describe(): string {
    const retries = this.attempts - 1;
    if (retries <= 0 && this.stoppedBy !== "max_retry_seconds") return "";
    const limit = this.stoppedBy === "max_retries" ? `max_retries=${this.limits.maxRetries}` : this.stoppedBy === "max_retry_seconds" ? `max_retry_seconds=${this.limits.maxRetrySeconds}` : "";
    return `after ${retries} retries over ${this.seconds.toFixed(1)} s${limit ? `, ${limit}` : ""}`;
  }
}

/** A short name of a driver failure for logs, e.g. "NoHostAvailableError(ResponseError 4097)", never a message (no values, no secrets). */
export function errorName(error: unknown): string {
  const answer = nodeAnswer(error);
  const describe = (e: unknown) => (nameOf(e) === "ResponseError" ? `ResponseError ${String(codeOf(e))}` : nameOf(e) || typeof e);
  return answer === error ? describe(error) : `${nameOf(error)}(${describe(answer)})`;
}

export function cancelled(context: string, cause?: unknown): ConduitError {
  return new ConduitError({ code: "CANCELLED", errorClass: "CANCELLED", message: `${context}: the request was cancelled.`, cause });
}

function names(list: readonly string[]): string {
  return list.length === 0 ? "(none)" : list.join(", ");
}

export function keyspaceNotFound(keyspace: string, existing: readonly string[], target: string): ConduitError {
  const suggestion = closestMatch(keyspace, existing);
  return new ConduitError({
    code: "NOT_FOUND",
    errorClass: "KEYSPACE_NOT_FOUND",
    message: `Keyspace '${keyspace}' does not exist on the Cassandra cluster at ${target}.${suggestion ? ` Did you mean '${suggestion}'? (names are case-sensitive)` : ""} Check option 'keyspace'. Keyspaces: ${names(existing.filter((k) => !k.startsWith("system")))}.`,
    parameters: { option: "keyspace", keyspace, suggestion: suggestion ?? "" },
  });
}

export function tableNotFound(keyspace: string, table: string, existing: readonly string[], target: string): ConduitError {
  const suggestion = closestMatch(table, existing);
  return new ConduitError({
    code: "NOT_FOUND",
    errorClass: "TABLE_NOT_FOUND",
    message: `Table '${table}' does not exist in keyspace '${keyspace}' on the Cassandra cluster at ${target}.${suggestion ? ` Did you mean '${suggestion}'? (names are case-sensitive)` : ""} Check option 'table'. Tables in '${keyspace}': ${names(existing)}.`,
    parameters: { option: "table", keyspace, table, suggestion: suggestion ?? "" },
  });
}

/** Maps any error thrown by the driver (or passed through it) to a ConduitError. */
export function translateCassandraError(error: unknown, context: ErrorContext): ConduitError {
  if (error instanceof ConduitError) return error;
  if (nameOf(error) === "AbortError") return cancelled(`Cassandra ${context.operation} on ${context.keyspace}.${context.table}`, error);
  const where = `${context.keyspace}.${context.table}`;
  const parameters = { keyspace: context.keyspace, table: context.table, hosts: context.target, operation: context.operation };
  const name = nameOf(error);
  const code = codeOf(error);
  const message = messageOf(error);
  const all = flatten(error);

  if (isAuthenticationError(error)) {
    if (context.username === undefined) {
      return new ConduitError({
        code: "UNAUTHENTICATED",
        errorClass: "AUTHENTICATION_REQUIRED",
        message: `The Cassandra cluster at ${context.target} requires authentication. Set options 'username' and 'password'.`,
        parameters,
        cause: error,
      });
    }
    return new ConduitError({
      code: "UNAUTHENTICATED",
      errorClass: "AUTHENTICATION_FAILED",
      message: `The Cassandra cluster at ${context.target} rejected the credentials of user '${context.username}': the user does not exist or the password is wrong. Check options 'username' and 'password'.`,
      parameters: { ...parameters, username: context.username },
      cause: error,
    });
  }

  // A node's answer that the driver wrapped (see nodeAnswer) is translated as that answer.
  const answer = nodeAnswer(error);
  if (answer !== error) return translateCassandraError(answer, context);

  if (name === "NoHostAvailableError" || name === "OperationTimedOutError" || networkCode(all) !== undefined) {
    const tls = tlsProblem(all);
    if (tls === "certificate") {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "TLS_CERTIFICATE_REJECTED",
        message: `The TLS certificate of the Cassandra node at ${context.target} was not accepted (${firstMessage(all)}). Check that 'ssl_ca_cert' names the CA that signed the nodes' certificates, and that the certificates name the addresses in 'host' (or set 'ssl_verify_hostname' to false).`,
        parameters: { ...parameters, reason: firstMessage(all) },
        cause: error,
      });
    }
    if (tls === "handshake" || (context.tls && networkCode(all) === "ECONNRESET")) {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "TLS_HANDSHAKE_FAILED",
        message: context.tls
          ? `The TLS handshake with the Cassandra node at ${context.target} failed (${firstMessage(all)}): the port may not accept TLS. Check 'ssl_enabled' (set it to false for a node without client encryption) and 'port'.`
          : `The connection to the Cassandra node at ${context.target} failed during the handshake (${firstMessage(all)}): the node may require TLS. Check 'ssl_enabled' and 'port'.`,
        parameters: { ...parameters, reason: firstMessage(all) },
        cause: error,
      });
    }
    const net = networkCode(all);
    if (net === "ENOTFOUND" || net === "EAI_AGAIN") {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "CASSANDRA_UNAVAILABLE",
        message: `The Cassandra contact point name in ${context.target} could not be resolved (${net}). Check option 'host'.`,
        parameters: { ...parameters, reason: net },
        cause: error,
      });
    }
    if (net !== undefined || name === "NoHostAvailableError") {
      const reason = net ?? firstMessage(all);
      const hint =
        !context.tls && (net === "ECONNRESET" || /closed|timeout|did not reply/i.test(reason))
          ? " Check options 'host' and 'port' and that the nodes are up; if no connection ever succeeded and the nodes require client encryption, set 'ssl_enabled' to true."
          : net === "ECONNREFUSED"
            ? " Nothing accepted the connection: check options 'host' and 'port', and that Cassandra is running and listening there (native_transport_port)."
            : " Check options 'host' and 'port', and that the nodes are up and reachable from the service.";
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "CASSANDRA_UNAVAILABLE",
        message: `No Cassandra node could be reached at ${context.target} for the ${context.operation} of ${where} (${reason}).${hint}`,
        parameters: { ...parameters, reason },
        cause: error,
      });
    }
  }

  if (isTimeout(error)) {
    return new ConduitError({
      code: "DEADLINE_EXCEEDED",
      errorClass: "CASSANDRA_TIMEOUT",
      message: `Cassandra timed out during the ${context.operation} of ${where} at ${context.target}: ${message}. The cluster may be overloaded: lower 'concurrency' or the number of Spark partitions, use a lower consistency level, or raise 'request_timeout_ms'.`,
      parameters,
      cause: error,
    });
  }

  if (name === "ResponseError") {
    if (code === codes.syntaxError || code === codes.invalid) {
      if (/unconfigured table|table .* does not exist|keyspace .* does not exist|undefined keyspace/i.test(message)) {
        return new ConduitError({
          code: "NOT_FOUND",
          errorClass: /keyspace/i.test(message) && !/table/i.test(message) ? "KEYSPACE_NOT_FOUND" : "TABLE_NOT_FOUND",
          message: `Cassandra reports that ${where} does not exist (${message}); it may have been dropped since the job was planned. Check options 'keyspace' and 'table'.`,
          parameters,
          cause: error,
        });
      }
      if (context.filter !== undefined) {
        const needsAllow = /ALLOW FILTERING/i.test(message);
        return new ConduitError({
          code: "INVALID_ARGUMENT",
          errorClass: needsAllow ? "FILTER_NEEDS_ALLOW_FILTERING" : "FILTER_INVALID",
          message: needsAllow
            ? `Option 'filter' ("${context.filter}") restricts columns Cassandra can only check by reading and filtering rows of ${where}. Set .option("allow_filtering", "true") to do so, or filter on key or indexed columns.`
            : `Option 'filter' ("${context.filter}") is not a valid CQL condition for ${where}: ${message}`,
          parameters: { ...parameters, option: needsAllow ? "allow_filtering" : "filter", filter: context.filter, reason: message },
          cause: error,
        });
      }
      return new ConduitError({
        code: "INVALID_ARGUMENT",
        errorClass: "CASSANDRA_INVALID_QUERY",
        message: `Cassandra rejected the ${context.operation} of ${where}: ${message}`,
        parameters: { ...parameters, reason: message },
        cause: error,
      });
    }
    if (code === codes.unauthorized) {
      return new ConduitError({
        code: "PERMISSION_DENIED",
        errorClass: "CASSANDRA_PERMISSION_DENIED",
        message: `User '${context.username ?? "(anonymous)"}' may not run the ${context.operation} of ${where}: ${message}. Grant the permission (e.g. GRANT SELECT/MODIFY ON TABLE) or use another user.`,
        parameters,
        cause: error,
      });
    }
    if (code === codes.overloaded || code === codes.isBootstrapping) {
      const overloaded = code === codes.overloaded;
      const fix =
        context.operation === "write"
          ? "lower 'concurrency' (requests in flight per Spark task) or the number of Spark tasks writing at once, or retry later"
          : "lower the number of Spark tasks reading at once or 'read_page_size', or retry later";
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: overloaded ? "CASSANDRA_OVERLOADED" : "CASSANDRA_BOOTSTRAPPING",
        message: overloaded
          ? `The Cassandra node at ${context.target} refused the ${context.operation} of ${where} because it is overloaded (${message}): ${fix}.`
          : `The Cassandra node at ${context.target} refused the ${context.operation} of ${where} because it is still joining the cluster (${message}): retry once it has finished bootstrapping.`,
        parameters: { ...parameters, reason: message },
        cause: error,
      });
    }
    if (code === codes.unavailableException) {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "CASSANDRA_UNAVAILABLE",
        message: `Cassandra could not serve the ${context.operation} of ${where} at ${context.target}: ${message}. Too few replicas are up for the consistency level: check the cluster, or use a lower 'consistency'.`,
        parameters: { ...parameters, reason: message },
        cause: error,
      });
    }
    if (code === codes.truncateError) {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "TRUNCATE_FAILED",
        message: `TRUNCATE of ${where} failed: ${message}. Truncation needs every node of the cluster up.`,
        parameters,
        cause: error,
      });
    }
    if (code === codes.readFailure || code === codes.writeFailure) {
      return new ConduitError({
        code: "UNAVAILABLE",
        errorClass: "CASSANDRA_REQUEST_FAILED",
        message: `Replicas failed the ${context.operation} of ${where}: ${message}. Check the nodes' logs (e.g. too many tombstones scanned).`,
        parameters: { ...parameters, reason: message },
        cause: error,
      });
    }
  }
  return toConduitError(error, `Cassandra ${context.operation} of ${where} at ${context.target}`);
}

/** The most specific message among nested errors; OpenSSL's long lines shortened to their reason. */
function firstMessage(errors: unknown[]): string {
  const clean = (text: string) => {
    const ssl = /SSL routines:[^:]*:([^:\n]+)/.exec(text);
    return redactSecrets(ssl ? ssl[1]!.trim() : text.trim());
  };
  for (const e of errors.slice(1)) if (e instanceof Error && e.message) return clean(e.message);
  return clean(messageOf(errors[0]));
}
