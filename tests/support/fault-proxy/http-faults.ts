/**
 * Fault plug-in for DynamoDB's HTTP/1.1 JSON API: parses the SDK's keep-alive requests (the
 * X-Amz-Target header names the operation) and, by a JSON plan, answers some of them itself
 * the way DynamoDB does when it throttles or fails, hides part of a BatchWriteItem as
 * UnprocessedItems, cuts a connection in the middle of a response, or slows a response.
 *
 * The plan (PUT /faults):
 *   { "seed": 7, "faults": [ { "kind": "throttling", "probability": 0.05, "every": 10,
 *       "operation": "BatchWriteItem", "max": 100, "delayMs": 300, "fraction": 0.5 } ] }
 * Per request the faults are tried in order and the first that fires wins: a fault fires on
 * every `every`-th request it matches and/or with `probability`, until it fired `max` times.
 * `operation` matches the X-Amz-Target's operation, for DynamoDB Streams too
 * (`DynamoDBStreams_20120810.GetRecords` is "GetRecords").
 *
 * Requests are not pipelined by the SDK (one request per connection at a time), but answers
 * are still kept in request order per connection.
 */
import zlib from "node:zlib";
import type { ProtocolFaults, RelayConnection } from "./relay.js";
import { seededRandom } from "../seeded-random.js";

export const HTTP_FAULT_KINDS = [
  /** 400 ProvisionedThroughputExceededException, not forwarded. */
  "provisioned_throughput_exceeded",
  /** 400 ThrottlingException, not forwarded. */
  "throttling",
  /** 500 InternalServerError, not forwarded. */
  "internal_server_error",
  /** 503 ServiceUnavailable, not forwarded. */
  "service_unavailable",
  /** DynamoDB Streams: 400 ExpiredIteratorException (a shard iterator past its 15 minutes), not forwarded. */
  "expired_iterator",
  /** DynamoDB Streams: 400 LimitExceededException (too many GetRecords on a shard), not forwarded. */
  "limit_exceeded",
  /** DynamoDB Streams: 400 TrimmedDataAccessException (records older than 24 hours), not forwarded. */
  "trimmed_data_access",
  /** BatchWriteItem only: a random subset is withheld and returned as UnprocessedItems. */
  "unprocessed_items",
  /** Forwarded (so applied), then the connection is reset after part of the response. */
  "reset_mid_response",
  /** Forwarded; the response is held back delayMs. */
  "slow_response",
] as const;
export type HttpFaultKind = (typeof HTTP_FAULT_KINDS)[number];

export interface HttpFaultRule {
  kind: HttpFaultKind;
  probability?: number;
  every?: number;
  /** Operation name without the service prefix, e.g. "BatchWriteItem", "Scan". */
  operation?: string;
  max?: number;
  /** slow_response: how long the response is held back (default 500 ms). */
  delayMs?: number;
  /** unprocessed_items: the largest share of items withheld (default 0.5; at least one item). */
  fraction?: number;
  /** Only requests whose JSON body contains this text, e.g. "AFTER_SEQUENCE_NUMBER" for one kind of GetShardIterator. */
  bodyContains?: string;
}

interface Rule extends HttpFaultRule {
  matched: number;
  fired: number;
}

interface Request {
  head: string;
  body: Buffer;
  operation: string;
}

interface Response {
  head: string;
  body: Buffer;
}

/** What the connection owes the client next, in request order. */
type Pending =
  | { type: "local"; bytes: Buffer }
  | { type: "server"; kind: HttpFaultKind | undefined; withheld?: { table: string; items: unknown[] }; delayMs?: number };

interface ConnState {
  client: Buffer;
  server: Buffer;
  pending: Pending[];
  /** A delayed response is being held: later answers wait behind it. */
  holding: boolean;
  ready: Response[];
  /** The client sent something this parser cannot frame (e.g. chunked): relay it unchanged from here on. */
  passthrough: boolean;
}

const HEAD_END = Buffer.from("\r\n\r\n");


export function parseHttpPlan(plan: unknown): { seed: number; rules: HttpFaultRule[] } {
  if (plan === null || typeof plan !== "object" || Array.isArray(plan)) throw new Error('a fault plan is a JSON object {"faults": [...]}');
  const { seed = 1, faults = [], ...rest } = plan as { seed?: unknown; faults?: unknown };
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) throw new Error(`unknown plan keys: ${unknownKeys.join(", ")} (expected seed, faults)`);
  if (typeof seed !== "number" || !Number.isInteger(seed)) throw new Error("seed must be an integer");
  if (!Array.isArray(faults)) throw new Error("faults must be an array");
  const allowed = new Set(["kind", "probability", "every", "operation", "max", "delayMs", "fraction", "bodyContains"]);
  const rules = faults.map((fault: unknown, i): HttpFaultRule => {
    if (fault === null || typeof fault !== "object") throw new Error(`faults[${i}] must be an object`);
    const rule = fault as Record<string, unknown>;
    for (const key of Object.keys(rule)) if (!allowed.has(key)) throw new Error(`faults[${i}]: unknown key "${key}"`);
    if (!HTTP_FAULT_KINDS.includes(rule.kind as HttpFaultKind)) {
      throw new Error(`faults[${i}]: unknown fault kind "${String(rule.kind)}" (one of ${HTTP_FAULT_KINDS.join(", ")})`);
    }
    const number = (key: string, ok: (n: number) => boolean) => {
      const value = rule[key];
      if (value !== undefined && (typeof value !== "number" || !ok(value))) throw new Error(`faults[${i}].${key} is out of range: ${String(value)}`);
    };
    number("probability", (n) => n >= 0 && n <= 1);
    number("every", (n) => Number.isInteger(n) && n >= 1);
    number("max", (n) => Number.isInteger(n) && n >= 0);
    number("delayMs", (n) => n >= 0);
    number("fraction", (n) => n > 0 && n <= 1);
    if (rule.probability === undefined && rule.every === undefined) throw new Error(`faults[${i}] needs probability and/or every`);
    if (rule.operation !== undefined && typeof rule.operation !== "string") throw new Error(`faults[${i}].operation must be a string`);
    if (rule.bodyContains !== undefined && (typeof rule.bodyContains !== "string" || rule.bodyContains === "")) throw new Error(`faults[${i}].bodyContains must be a non-empty string`);
    if (rule.kind === "unprocessed_items" && rule.operation !== undefined && rule.operation !== "BatchWriteItem") {
      throw new Error(`faults[${i}]: unprocessed_items applies to BatchWriteItem only`);
    }
    return rule as unknown as HttpFaultRule;
  });
  return { seed, rules };
}

export function httpFaults(): ProtocolFaults {
  let rules: Rule[] = [];
  let random = seededRandom(1);
  const counts: Record<string, number> = {};
  const bump = (key: string, by = 1) => (counts[key] = (counts[key] ?? 0) + by);
  const states = new Map<number, ConnState>();

  const stateOf = (conn: RelayConnection): ConnState => {
    let state = states.get(conn.id);
    if (!state) {
      state = { client: Buffer.alloc(0), server: Buffer.alloc(0), pending: [], holding: false, ready: [], passthrough: false };
      states.set(conn.id, state);
    }
    return state;
  };

  const choose = (operation: string, body: Buffer): Rule | undefined => {
    for (const rule of rules) {
      if (rule.operation !== undefined && rule.operation !== operation) continue;
      if (rule.bodyContains !== undefined && !body.includes(rule.bodyContains)) continue;
      if (rule.kind === "unprocessed_items" && operation !== "BatchWriteItem") continue;
      if (rule.max !== undefined && rule.fired >= rule.max) continue;
      rule.matched++;
      const byCount = rule.every !== undefined && rule.matched % rule.every === 0;
      const byChance = rule.probability !== undefined && random() < rule.probability;
      if (byCount || byChance) {
        rule.fired++;
        return rule;
      }
    }
    return undefined;
  };

  const onRequest = (conn: RelayConnection, state: ConnState, request: Request) => {
    bump("requests");
    bump(`requests_${request.operation}`);
    const rule = choose(request.operation, request.body);
    const kind = rule?.kind;
    switch (kind) {
      case "provisioned_throughput_exceeded":
      case "throttling":
      case "internal_server_error":
      case "service_unavailable":
      case "expired_iterator":
      case "limit_exceeded":
      case "trimmed_data_access":
        bump(kind);
        state.pending.push({ type: "local", bytes: errorResponse(kind) });
        break;
      case "unprocessed_items": {
        const split = withhold(request.body, rule!.fraction ?? 0.5, random);
        if (!split) {
          // Not a shape we can split (e.g. several tables): forward it unchanged.
          forward(conn, state, request, undefined);
          return flush(conn, state);
        }
        bump(kind);
        bump("unprocessed_items_withheld", split.withheld.items.length);
        if (split.body === undefined) {
          // Every item withheld: DynamoDB answers 200 with all of them unprocessed.
          state.pending.push({ type: "local", bytes: jsonResponse(200, { UnprocessedItems: { [split.withheld.table]: split.withheld.items } }) });
        } else {
          forward(conn, state, { ...request, body: split.body }, { type: "server", kind, withheld: split.withheld });
        }
        break;
      }
      case "slow_response":
        bump(kind);
        forward(conn, state, request, { type: "server", kind, delayMs: rule!.delayMs ?? 500 });
        break;
      case "reset_mid_response":
        forward(conn, state, request, { type: "server", kind });
        break;
      case undefined:
        forward(conn, state, request, undefined);
        break;
    }
    flush(conn, state);
  };

  const forward = (conn: RelayConnection, state: ConnState, request: Request, pending: Pending | undefined) => {
    state.pending.push(pending ?? { type: "server", kind: undefined });
    conn.sendToServer(Buffer.concat([Buffer.from(withContentLength(request.head, request.body.length)), request.body]));
  };

  /** Sends what is owed to the client, in order, until something must wait for the server or a delay. */
  const flush = (conn: RelayConnection, state: ConnState) => {
    while (!state.holding && state.pending.length > 0 && !conn.destroyed) {
      const next = state.pending[0]!;
      if (next.type === "local") {
        state.pending.shift();
        conn.sendToClient(next.bytes);
        continue;
      }
      const response = state.ready.shift();
      if (!response) return;
      state.pending.shift();
      switch (next.kind) {
        case "unprocessed_items":
          conn.sendToClient(mergeUnprocessed(response, next.withheld!));
          break;
        case "reset_mid_response": {
          // Head and half the body reach the client, then the link dies: the write WAS applied.
          const bytes = encode(response);
          const cut = Math.max(1, Math.floor(response.head.length + response.body.length / 2));
          conn.sendToClient(bytes.subarray(0, cut));
          bump("reset_mid_response");
          // Let the partial bytes leave before the reset.
          setTimeout(() => conn.destroy(), 20);
          state.holding = true;
          return;
        }
        case "slow_response":
          state.holding = true;
          setTimeout(() => {
            state.holding = false;
            conn.sendToClient(encode(response));
            flush(conn, state);
          }, next.delayMs ?? 0);
          return;
        default:
          conn.sendToClient(encode(response));
      }
    }
  };

  return {
    onClientData(conn, chunk) {
      const state = stateOf(conn);
      if (state.passthrough) return conn.sendToServer(chunk);
      state.client = state.client.length === 0 ? chunk : Buffer.concat([state.client, chunk]);
      for (;;) {
        const headEnd = state.client.indexOf(HEAD_END);
        if (headEnd < 0) return;
        const head = state.client.subarray(0, headEnd + 4).toString("latin1");
        const length = headerValue(head, "content-length");
        if (length === undefined && /^transfer-encoding:/im.test(head)) {
          // Not framed by Content-Length: stop interpreting this connection.
          state.passthrough = true;
          bump("passthrough_connections");
          conn.sendToServer(state.client);
          state.client = Buffer.alloc(0);
          return;
        }
        const total = headEnd + 4 + Number(length ?? 0);
        if (state.client.length < total) return;
        const body = Buffer.from(state.client.subarray(headEnd + 4, total));
        state.client = state.client.subarray(total);
        const target = headerValue(head, "x-amz-target") ?? "";
        onRequest(conn, state, { head, body, operation: target.slice(target.lastIndexOf(".") + 1) || "unknown" });
      }
    },
    onServerData(conn, chunk) {
      const state = stateOf(conn);
      if (state.passthrough) return conn.sendToClient(chunk);
      state.server = state.server.length === 0 ? chunk : Buffer.concat([state.server, chunk]);
      for (;;) {
        const parsed = takeResponse(state.server);
        if (!parsed) return;
        state.server = state.server.subarray(parsed.consumed);
        state.ready.push(parsed.response);
        flush(conn, state);
      }
    },
    configure(plan) {
      const parsed = parseHttpPlan(plan);
      rules = parsed.rules.map((rule) => ({ ...rule, matched: 0, fired: 0 }));
      random = seededRandom(parsed.seed);
    },
    stats: () => ({ ...counts }),
    onClose(conn) {
      states.delete(conn.id);
    },
  };
}

function headerValue(head: string, name: string): string | undefined {
  const match = new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, "im").exec(head);
  return match?.[1];
}

function withContentLength(head: string, length: number): string {
  return head.replace(/^content-length:.*$/im, `Content-Length: ${length}`);
}

/** One complete response at the start of `buffer` (Content-Length or chunked body), or undefined. */
function takeResponse(buffer: Buffer): { response: Response; consumed: number } | undefined {
  const headEnd = buffer.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const head = buffer.subarray(0, headEnd + 4).toString("latin1");
  const start = headEnd + 4;
  const length = headerValue(head, "content-length");
  if (length !== undefined) {
    const end = start + Number(length);
    if (buffer.length < end) return undefined;
    return { response: { head, body: Buffer.from(buffer.subarray(start, end)) }, consumed: end };
  }
  if (/^transfer-encoding:.*chunked/im.test(head)) {
    // Re-framed with Content-Length so the fault code sees whole bodies.
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = buffer.indexOf("\r\n", at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16);
      const dataStart = lineEnd + 2;
      if (size === 0) {
        const trailerEnd = buffer.indexOf("\r\n", dataStart);
        if (trailerEnd < 0) return undefined;
        const body = Buffer.concat(parts);
        const newHead = head.replace(/^transfer-encoding:.*\r\n/im, "").replace(/\r\n\r\n$/, `\r\nContent-Length: ${body.length}\r\n\r\n`);
        return { response: { head: newHead, body }, consumed: trailerEnd + 2 };
      }
      if (buffer.length < dataStart + size + 2) return undefined;
      parts.push(buffer.subarray(dataStart, dataStart + size));
      at = dataStart + size + 2;
    }
  }
  // No body framing (e.g. 204): the head is the whole response.
  return { response: { head, body: Buffer.alloc(0) }, consumed: start };
}

function encode(response: Response): Buffer {
  return Buffer.concat([Buffer.from(response.head, "latin1"), response.body]);
}

function crc32(body: Buffer): string {
  return String((zlib as unknown as { crc32(data: Buffer): number }).crc32(body) >>> 0);
}

function jsonResponse(status: number, payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload));
  const reason = { 200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable" }[status] ?? "Error";
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    "x-amzn-RequestId: fault-proxy",
    "Content-Type: application/x-amz-json-1.0",
    `x-amz-crc32: ${crc32(body)}`,
    `Content-Length: ${body.length}`,
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head), body]);
}

/** The answers DynamoDB gives when it throttles or fails (the SDK classifies them by __type and status). */
type ErrorKind = "provisioned_throughput_exceeded" | "throttling" | "internal_server_error" | "service_unavailable" | "expired_iterator" | "limit_exceeded" | "trimmed_data_access";

function errorResponse(kind: ErrorKind): Buffer {
  const prefix = "com.amazonaws.dynamodb.v20120810#";
  switch (kind) {
    case "provisioned_throughput_exceeded":
      return jsonResponse(400, {
        __type: `${prefix}ProvisionedThroughputExceededException`,
        message: "The level of configured provisioned throughput for the table was exceeded. (injected by fault-proxy)",
      });
    case "throttling":
      return jsonResponse(400, { __type: `${prefix}ThrottlingException`, message: "Rate of requests exceeds the allowed throughput. (injected by fault-proxy)" });
    case "internal_server_error":
      return jsonResponse(500, { __type: `${prefix}InternalServerError`, message: "Internal server error (injected by fault-proxy)" });
    case "service_unavailable":
      return jsonResponse(503, { __type: `${prefix}ServiceUnavailable`, message: "Service unavailable (injected by fault-proxy)" });
    // Streams answers carry the same JSON protocol prefix; the SDK keeps the name after '#'.
    case "expired_iterator":
      return jsonResponse(400, { __type: `${prefix}ExpiredIteratorException`, message: "Iterator expired. The iterator was created over 15 minutes ago. (injected by fault-proxy)" });
    case "limit_exceeded":
      return jsonResponse(400, { __type: `${prefix}LimitExceededException`, message: "Too many requests for this shard. (injected by fault-proxy)" });
    case "trimmed_data_access":
      return jsonResponse(400, {
        __type: `${prefix}TrimmedDataAccessException`,
        message: "The operation attempted to read past the oldest stream record in a shard. (injected by fault-proxy)",
      });
  }
}

/**
 * Splits a BatchWriteItem body: a random non-empty subset of its items is withheld. Returns the
 * body to forward (undefined when every item is withheld), or undefined for a shape it cannot split.
 */
function withhold(body: Buffer, fraction: number, random: () => number): { body: Buffer | undefined; withheld: { table: string; items: unknown[] } } | undefined {
  let parsed: { RequestItems?: Record<string, unknown[]> };
  try {
    parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
  } catch {
    return undefined;
  }
  const tables = Object.keys(parsed.RequestItems ?? {});
  if (tables.length !== 1) return undefined;
  const table = tables[0]!;
  const items = parsed.RequestItems![table]!;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const count = Math.max(1, Math.floor(random() * fraction * items.length));
  const order = items.map((_, i) => i).sort(() => random() - 0.5);
  const out = new Set(order.slice(0, count));
  const kept = items.filter((_, i) => !out.has(i));
  const withheld = items.filter((_, i) => out.has(i));
  const forwardBody = kept.length === 0 ? undefined : Buffer.from(JSON.stringify({ ...parsed, RequestItems: { [table]: kept } }));
  return { body: forwardBody, withheld: { table, items: withheld } };
}

/** Adds the withheld items to a real BatchWriteItem answer's UnprocessedItems. */
function mergeUnprocessed(response: Response, withheld: { table: string; items: unknown[] }): Buffer {
  if (!/^HTTP\/1\.1 200/.test(response.head)) {
    // The real request failed (e.g. throttled): the client retries all it sent, and the
    // withheld items were never acknowledged either, so they must be retried too. An error
    // answer already makes the SDK retry the whole request it sent, which includes them.
    return encode(response);
  }
  const payload = JSON.parse(response.body.toString("utf8")) as { UnprocessedItems?: Record<string, unknown[]> };
  const unprocessed = payload.UnprocessedItems ?? {};
  unprocessed[withheld.table] = [...(unprocessed[withheld.table] ?? []), ...withheld.items];
  payload.UnprocessedItems = unprocessed;
  const body = Buffer.from(JSON.stringify(payload));
  let head = withContentLength(response.head, body.length);
  head = head.replace(/^x-amz-crc32:.*$/im, `x-amz-crc32: ${crc32(body)}`);
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}
