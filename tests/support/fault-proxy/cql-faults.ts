/**
 * Fault plug-in for the CQL native protocol (v4 frames, what cassandra-driver 4.10 speaks
 * with Cassandra 5: it never offers v5, and compresses nothing unless told to). Requests
 * are cut into frames; each matching request may get an ERROR frame a real node would send
 * (write/read timeout, unavailable, overloaded), a dropped connection, or a stall of all
 * traffic, by a JSON plan. Errors are built per native_protocol_v4.spec sections 4.2.1 and 9.
 *
 * Why both write-timeout variants: a WriteTimeout from a real coordinator means the write
 * MAY have been applied. `write_timeout` forwards the request and swaps Cassandra's answer
 * for the error (applied, reported as failed: a retry replays it); `write_timeout_not_applied`
 * answers without forwarding (a writer that does not retry loses the row).
 *
 * Plan: `{ "seed"?: n, "rules": [ { "fault", "opcodes"?, "match"?, "probability"?, "every"?,
 * "after"?, "max"?, ...fault parameters } ] }`; the first rule that fires on a request wins.
 * `match` is a substring of the CQL text (EXECUTE finds it through the PREPARE that made the
 * statement id), so faults hit the table under test and not the driver's system queries.
 * A frame whose header is not v3-v5 or DSE v1-v2 (or a compressed body) turns that connection into a
 * plain pipe, counted in `unparsed_connections`.
 */
import type { ProtocolFaults, RelayConnection } from "./relay.js";
import { seededRandom } from "../seeded-random.js";

export const OPCODES = {
  ERROR: 0x00,
  STARTUP: 0x01,
  READY: 0x02,
  AUTHENTICATE: 0x03,
  OPTIONS: 0x05,
  SUPPORTED: 0x06,
  QUERY: 0x07,
  RESULT: 0x08,
  PREPARE: 0x09,
  EXECUTE: 0x0a,
  REGISTER: 0x0b,
  EVENT: 0x0c,
  BATCH: 0x0d,
  AUTH_CHALLENGE: 0x0e,
  AUTH_RESPONSE: 0x0f,
  AUTH_SUCCESS: 0x10,
} as const;
type OpcodeName = keyof typeof OPCODES;
const OPCODE_NAMES = new Map<number, OpcodeName>(Object.entries(OPCODES).map(([name, code]) => [code, name as OpcodeName]));

export const ERROR_CODES = { unavailable: 0x1000, overloaded: 0x1001, write_timeout: 0x1100, read_timeout: 0x1200 } as const;

const CONSISTENCIES = ["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"] as const;
const WRITE_TYPES = ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"] as const;

export const FAULTS = [
  /** Forwarded; Cassandra's answer is replaced by a WriteTimeout (applied, reported as failed). */
  "write_timeout",
  /** Answered with a WriteTimeout without forwarding. */
  "write_timeout_not_applied",
  /** Answered with a ReadTimeout without forwarding. */
  "read_timeout",
  /** Answered with Unavailable without forwarding (a coordinator checks replicas before writing). */
  "unavailable",
  /** Answered with Overloaded without forwarding. */
  "overloaded",
  /** The connection is destroyed instead of forwarding the request (not applied). */
  "drop_unsent",
  /** Forwarded; the connection is destroyed when Cassandra's answer comes, which the client never sees (applied, fate unknown to it). */
  "drop_before_answer",
  /** Forwarded and answered; the connection is destroyed right after (other requests in flight on it are lost). */
  "drop_after_answer",
  /** Forwarded, then no frame moves either way on any connection for `ms` (a stopped node). */
  "pause",
] as const;
export type FaultName = (typeof FAULTS)[number];

export interface FaultRule {
  fault: FaultName;
  /** Request opcodes the rule looks at (default EXECUTE and BATCH: the writes and reads of data). */
  opcodes: OpcodeName[];
  /** Substring of the statement's CQL text; absent: every request of those opcodes. */
  match: string | undefined;
  probability: number;
  /** Fire on every Nth matching request (1: every one). */
  every: number;
  /** Skip this many matching requests first. */
  after: number;
  /** Fire at most this many times. */
  max: number;
  /** Consistency reported in the error; default: the request's own. */
  consistency: (typeof CONSISTENCIES)[number] | undefined;
  received: number;
  blockfor: number;
  /** WriteTimeout's write type; default from the request (SIMPLE, or the batch's type). */
  writeType: (typeof WRITE_TYPES)[number] | undefined;
  /** `pause` only. */
  ms: number;
  // Running state.
  seen: number;
  fired: number;
}

export interface CqlPlan {
  seed: number;
  rules: FaultRule[];
}

function fail(message: string): never {
  throw new Error(`cql fault plan: ${message}`);
}

function numberField(rule: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = rule[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) fail(`'${name}' must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

const RULE_KEYS = new Set(["fault", "opcodes", "match", "probability", "every", "after", "max", "consistency", "received", "blockfor", "writeType", "ms"]);

/** Validates a plan; throws naming the field at fault. */
export function parsePlan(plan: unknown): CqlPlan {
  if (plan === null || typeof plan !== "object" || Array.isArray(plan)) fail("expected an object with 'rules'");
  const { seed, rules, ...rest } = plan as Record<string, unknown>;
  if (Object.keys(rest).length > 0) fail(`unknown field(s) ${Object.keys(rest).join(", ")}`);
  if (!Array.isArray(rules)) fail("'rules' must be an array");
  const parsedSeed = numberField({ seed }, "seed", 1, 0, 2 ** 31);
  return {
    seed: parsedSeed,
    rules: rules.map((raw, i): FaultRule => {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(`rule ${i} must be an object`);
      const rule = raw as Record<string, unknown>;
      for (const key of Object.keys(rule)) if (!RULE_KEYS.has(key)) fail(`rule ${i} has the unknown field '${key}'`);
      const fault = rule.fault;
      if (!FAULTS.includes(fault as FaultName)) fail(`rule ${i} has the unknown fault ${JSON.stringify(fault)}; known: ${FAULTS.join(", ")}`);
      const opcodes = rule.opcodes ?? ["EXECUTE", "BATCH"];
      if (!Array.isArray(opcodes) || opcodes.length === 0 || !opcodes.every((o) => ["QUERY", "PREPARE", "EXECUTE", "BATCH"].includes(o as string))) {
        fail(`rule ${i}: 'opcodes' must be a non-empty list of QUERY, PREPARE, EXECUTE, BATCH`);
      }
      if (rule.match !== undefined && (typeof rule.match !== "string" || rule.match === "")) fail(`rule ${i}: 'match' must be a non-empty string`);
      if (rule.consistency !== undefined && !CONSISTENCIES.includes(rule.consistency as never)) fail(`rule ${i}: unknown consistency ${JSON.stringify(rule.consistency)}`);
      if (rule.writeType !== undefined && !WRITE_TYPES.includes(rule.writeType as never)) fail(`rule ${i}: unknown writeType ${JSON.stringify(rule.writeType)}`);
      if (fault === "pause" && rule.ms === undefined) fail(`rule ${i}: a pause needs 'ms'`);
      return {
        fault: fault as FaultName,
        opcodes: opcodes as OpcodeName[],
        match: rule.match as string | undefined,
        probability: numberField(rule, "probability", 1, 0, 1),
        every: numberField(rule, "every", 1, 1, 1e9),
        after: numberField(rule, "after", 0, 0, 1e12),
        max: numberField(rule, "max", Number.MAX_SAFE_INTEGER, 0, Number.MAX_SAFE_INTEGER),
        consistency: rule.consistency as FaultRule["consistency"],
        received: numberField(rule, "received", 0, 0, 1000),
        blockfor: numberField(rule, "blockfor", 1, 0, 1000),
        writeType: rule.writeType as FaultRule["writeType"],
        ms: numberField(rule, "ms", 0, 0, 600_000),
        seen: 0,
        fired: 0,
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

export const HEADER_LENGTH = 9;
/**
 * Versions whose frames have the 9-byte header: Cassandra's v3-v5 and DSE's v1-v2 (0x41,
 * 0x42), which cassandra-driver offers first and Cassandra refuses before the driver
 * falls back to v4.
 */
const HEADER_VERSIONS = new Set([3, 4, 5, 0x41, 0x42]);
/** The spec's limit on a frame body. */
const MAX_BODY = 256 * 1024 * 1024;

export interface Frame {
  version: number;
  flags: number;
  stream: number;
  opcode: number;
  /** The whole frame, header included. */
  bytes: Buffer;
  body: Buffer;
}

/** Cuts complete frames off the front of `buffer`; `rest` is an incomplete tail, `invalid` a header that is not v3-v5. */
export function splitFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer; invalid: boolean } {
  const frames: Frame[] = [];
  let offset = 0;
  while (buffer.length - offset >= HEADER_LENGTH) {
    const version = buffer[offset]! & 0x7f;
    const length = buffer.readInt32BE(offset + 5);
    if (!HEADER_VERSIONS.has(version) || length < 0 || length > MAX_BODY) return { frames, rest: buffer.subarray(offset), invalid: true };
    if (buffer.length - offset < HEADER_LENGTH + length) break;
    const bytes = buffer.subarray(offset, offset + HEADER_LENGTH + length);
    frames.push({ version: buffer[offset]!, flags: buffer[offset + 1]!, stream: buffer.readInt16BE(offset + 2), opcode: buffer[offset + 4]!, bytes, body: bytes.subarray(HEADER_LENGTH) });
    offset += HEADER_LENGTH + length;
  }
  return { frames, rest: offset === buffer.length ? EMPTY : buffer.subarray(offset), invalid: false };
}

const EMPTY = Buffer.alloc(0);

/** A [string]: [short] length then UTF-8. */
function stringBytes(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

export interface ErrorDetails {
  consistency: number;
  received: number;
  blockfor: number;
  writeType: string;
}

/** An ERROR response frame (spec 4.2.1: [int] code, [string] message, then the code's fields from section 9). */
export function errorFrame(version: number, stream: number, fault: "write_timeout" | "read_timeout" | "unavailable" | "overloaded", details: ErrorDetails): Buffer {
  const parts: Buffer[] = [];
  const int = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n, 0);
    parts.push(b);
  };
  const short = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n, 0);
    parts.push(b);
  };
  const cl = CONSISTENCIES[details.consistency] ?? String(details.consistency);
  int(ERROR_CODES[fault]);
  switch (fault) {
    case "write_timeout":
      parts.push(stringBytes(`Operation timed out - received only ${details.received} responses. (fault proxy)`));
      short(details.consistency);
      int(details.received);
      int(details.blockfor);
      parts.push(stringBytes(details.writeType));
      break;
    case "read_timeout":
      parts.push(stringBytes(`Operation timed out - received only ${details.received} responses. (fault proxy)`));
      short(details.consistency);
      int(details.received);
      int(details.blockfor);
      parts.push(Buffer.from([0])); // data_present: the data replica did not answer
      break;
    case "unavailable":
      parts.push(stringBytes(`Cannot achieve consistency level ${cl} (fault proxy)`));
      short(details.consistency);
      int(details.blockfor); // required
      int(Math.min(details.received, Math.max(0, details.blockfor - 1))); // alive < required
      break;
    case "overloaded":
      parts.push(stringBytes("Server is in overloaded state. Cannot accept more requests at this point (fault proxy)"));
      break;
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(HEADER_LENGTH);
  header[0] = (version & 0x7f) | 0x80;
  header[1] = 0;
  header.writeInt16BE(stream, 2);
  header[4] = OPCODES.ERROR;
  header.writeInt32BE(body.length, 5);
  return Buffer.concat([header, body]);
}

/** What a request says about itself: its consistency, CQL text or statement ids, batch type. */
export interface RequestInfo {
  consistency: number | undefined;
  /** CQL of QUERY and PREPARE, and of a BATCH's unprepared statements. */
  texts: string[];
  /** Statement ids (hex) of EXECUTE and of a BATCH's prepared statements. */
  ids: string[];
  /** 0 LOGGED, 1 UNLOGGED, 2 COUNTER. */
  batchType: number | undefined;
}

/** Reads the fields the faults need from a request body (spec 4.1.4-4.1.7); a body cut short gives what was read. */
export function describeRequest(opcode: number, body: Buffer): RequestInfo {
  const info: RequestInfo = { consistency: undefined, texts: [], ids: [], batchType: undefined };
  try {
    let at = 0;
    const need = (n: number) => {
      if (n < 0 || at + n > body.length) throw new RangeError("body cut short");
    };
    const longString = () => {
      const n = body.readInt32BE(at);
      need(4 + n);
      const text = body.toString("utf8", at + 4, at + 4 + n);
      at += 4 + n;
      return text;
    };
    const shortBytes = () => {
      const n = body.readUInt16BE(at);
      need(2 + n);
      const hex = body.toString("hex", at + 2, at + 2 + n);
      at += 2 + n;
      return hex;
    };
    if (opcode === OPCODES.QUERY || opcode === OPCODES.PREPARE) {
      info.texts.push(longString());
      if (opcode === OPCODES.QUERY) info.consistency = body.readUInt16BE(at);
    } else if (opcode === OPCODES.EXECUTE) {
      info.ids.push(shortBytes());
      info.consistency = body.readUInt16BE(at);
    } else if (opcode === OPCODES.BATCH) {
      info.batchType = body[at]!;
      at += 1;
      const n = body.readUInt16BE(at);
      at += 2;
      for (let q = 0; q < n; q++) {
        const kind = body[at]!;
        at += 1;
        if (kind === 0) info.texts.push(longString());
        else info.ids.push(shortBytes());
        const values = body.readUInt16BE(at);
        at += 2;
        for (let v = 0; v < values; v++) {
          const length = body.readInt32BE(at);
          at += 4 + Math.max(0, length);
        }
      }
      info.consistency = body.readUInt16BE(at);
    }
  } catch {
    // A malformed request is Cassandra's to reject; the proxy only loses the details.
  }
  return info;
}

/** The statement id of a RESULT of kind Prepared (spec 4.2.5.4), else undefined. */
export function preparedId(body: Buffer, flags: number): string | undefined {
  try {
    let at = 0;
    if (flags & 0x02) at += 16; // tracing id
    if (flags & 0x08) {
      // warnings: [string list]
      const n = body.readUInt16BE(at);
      at += 2;
      for (let i = 0; i < n; i++) at += 2 + body.readUInt16BE(at);
    }
    if (flags & 0x04) {
      // custom payload: [bytes map]
      const n = body.readUInt16BE(at);
      at += 2;
      for (let i = 0; i < n; i++) {
        at += 2 + body.readUInt16BE(at);
        at += 4 + Math.max(0, body.readInt32BE(at));
      }
    }
    if (body.readInt32BE(at) !== 0x0004) return undefined;
    at += 4;
    const n = body.readUInt16BE(at);
    return body.toString("hex", at + 2, at + 2 + n);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// The plug-in
// ---------------------------------------------------------------------------------------

type Pending = { kind: "replace"; frame: Buffer; fault: FaultName } | { kind: "drop_before_answer" } | { kind: "drop_after_answer" } | { kind: "prepare"; text: string };

interface ConnState {
  fromClient: Buffer;
  fromServer: Buffer;
  /** Frames are not parsed any more (not v3-v5, or compressed). */
  raw: boolean;
  version: number | undefined;
  /** What to do with the answer on a stream. */
  pending: Map<number, Pending>;
}


export interface CqlFaults extends ProtocolFaults {
  /** True while a `pause` fault holds traffic. */
  readonly paused: boolean;
}

export function cqlFaults(): CqlFaults {
  let plan: CqlPlan = { seed: 1, rules: [] };
  let rand = seededRandom(plan.seed);
  const counts: Record<string, number> = {};
  const bump = (key: string, by = 1) => {
    counts[key] = (counts[key] ?? 0) + by;
  };
  const states = new Map<RelayConnection, ConnState>();
  /** Statement id (hex) -> CQL text, from PREPARE answers on any connection (ids are the same on every connection). */
  const statements = new Map<string, string>();
  /** While a `pause` runs: sends held back, in order, across connections. */
  let held: Array<() => void> | undefined;

  const send = (action: () => void) => {
    if (held) held.push(action);
    else action();
  };
  const toServer = (conn: RelayConnection, bytes: Buffer) => send(() => conn.destroyed || conn.sendToServer(bytes));
  const toClient = (conn: RelayConnection, bytes: Buffer) => send(() => conn.destroyed || conn.sendToClient(bytes));
  const destroyLater = (conn: RelayConnection) => send(() => conn.destroy());

  const stateOf = (conn: RelayConnection): ConnState => {
    let state = states.get(conn);
    if (!state) {
      state = { fromClient: EMPTY, fromServer: EMPTY, raw: false, version: undefined, pending: new Map() };
      states.set(conn, state);
      bump("connections");
    }
    return state;
  };

  const goRaw = (conn: RelayConnection, state: ConnState) => {
    state.raw = true;
    bump("unparsed_connections");
    if (state.fromClient.length > 0) toServer(conn, state.fromClient);
    if (state.fromServer.length > 0) toClient(conn, state.fromServer);
    state.fromClient = EMPTY;
    state.fromServer = EMPTY;
  };

  const matches = (rule: FaultRule, opcodeName: OpcodeName, info: RequestInfo): boolean => {
    if (!rule.opcodes.includes(opcodeName)) return false;
    if (rule.match === undefined) return true;
    const needle = rule.match;
    return info.texts.some((t) => t.includes(needle)) || info.ids.some((id) => statements.get(id)?.includes(needle) === true);
  };

  /** The first rule that fires for this request, counting it as seen by every matching rule. */
  const choose = (opcodeName: OpcodeName, info: RequestInfo): FaultRule | undefined => {
    let chosen: FaultRule | undefined;
    for (const rule of plan.rules) {
      if (!matches(rule, opcodeName, info)) continue;
      rule.seen++;
      if (chosen || rule.fired >= rule.max || rule.seen <= rule.after) continue;
      if ((rule.seen - rule.after) % rule.every !== 0) continue;
      if (rule.probability < 1 && rand() >= rule.probability) continue;
      rule.fired++;
      chosen = rule;
    }
    return chosen;
  };

  const details = (rule: FaultRule, info: RequestInfo, opcode: number): ErrorDetails => ({
    consistency: rule.consistency !== undefined ? CONSISTENCIES.indexOf(rule.consistency) : (info.consistency ?? CONSISTENCIES.indexOf("LOCAL_QUORUM")),
    received: rule.received,
    blockfor: rule.blockfor,
    writeType: rule.writeType ?? (opcode === OPCODES.BATCH ? (["BATCH", "UNLOGGED_BATCH", "COUNTER"][info.batchType ?? 1] ?? "UNLOGGED_BATCH") : "SIMPLE"),
  });

  const startPause = (ms: number) => {
    if (held) return;
    held = [];
    bump("pause_ms", ms);
    // Unref'd: the relay's own lifetime bounds the process, a pause must not extend it.
    setTimeout(() => {
      const queue = held ?? [];
      held = undefined;
      for (const action of queue) action();
    }, ms).unref();
  };

  /** Decides one client frame; returns true when it was handled (not to be forwarded as is). */
  const onRequest = (conn: RelayConnection, state: ConnState, frame: Frame): boolean => {
    bump("requests");
    const name = OPCODE_NAMES.get(frame.opcode);
    if (name) bump(`requests_${name}`);
    state.version ??= frame.version & 0x7f;
    if (frame.opcode === OPCODES.STARTUP) bump(`protocol_v${frame.version & 0x7f}`);
    if (name !== "QUERY" && name !== "PREPARE" && name !== "EXECUTE" && name !== "BATCH") return false;
    const info = describeRequest(frame.opcode, frame.body);
    if (name === "PREPARE") state.pending.set(frame.stream, { kind: "prepare", text: info.texts[0] ?? "" });
    const rule = choose(name, info);
    if (!rule) return false;
    bump(rule.fault);
    switch (rule.fault) {
      case "write_timeout":
        state.pending.set(frame.stream, { kind: "replace", fault: rule.fault, frame: errorFrame(frame.version, frame.stream, "write_timeout", details(rule, info, frame.opcode)) });
        return false;
      case "write_timeout_not_applied":
        toClient(conn, errorFrame(frame.version, frame.stream, "write_timeout", details(rule, info, frame.opcode)));
        return true;
      case "read_timeout":
      case "unavailable":
      case "overloaded":
        toClient(conn, errorFrame(frame.version, frame.stream, rule.fault, details(rule, info, frame.opcode)));
        return true;
      case "drop_unsent":
        destroyLater(conn);
        return true;
      case "drop_before_answer":
      case "drop_after_answer":
        state.pending.set(frame.stream, { kind: rule.fault });
        return false;
      case "pause":
        // The request goes first, then everything stops (as if the node froze while holding it).
        toServer(conn, frame.bytes);
        startPause(rule.ms);
        return true;
    }
  };

  const onAnswer = (conn: RelayConnection, state: ConnState, frame: Frame): boolean => {
    // The version a node accepts a STARTUP in is the connection's protocol.
    if (frame.opcode === OPCODES.READY || frame.opcode === OPCODES.AUTHENTICATE) bump(`negotiated_v${frame.version & 0x7f}`);
    if (frame.stream < 0) return false; // events
    const pending = state.pending.get(frame.stream);
    if (!pending) return false;
    state.pending.delete(frame.stream);
    switch (pending.kind) {
      case "prepare": {
        if (frame.opcode === OPCODES.RESULT) {
          const id = preparedId(frame.body, frame.flags);
          if (id !== undefined) statements.set(id, pending.text);
        }
        return false;
      }
      case "replace":
        toClient(conn, pending.frame);
        bump(`${pending.fault}_applied_answers_replaced`);
        return true;
      case "drop_before_answer":
        destroyLater(conn);
        return true;
      case "drop_after_answer":
        toClient(conn, frame.bytes);
        // A moment later, so the answer leaves the socket before the reset.
        send(() => setTimeout(() => conn.destroy(), 20).unref());
        return true;
    }
  };

  /** Parses what arrived and forwards unhandled frames in runs (one write per run, not per frame). */
  const process = (conn: RelayConnection, chunk: Buffer, fromClient: boolean) => {
    const state = stateOf(conn);
    const forward = fromClient ? toServer : toClient;
    if (state.raw) return forward(conn, chunk);
    const buffered = fromClient ? state.fromClient : state.fromServer;
    const input = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const { frames, rest, invalid } = splitFrames(input);
    let runStart = -1;
    let runEnd = -1;
    const flush = () => {
      if (runStart >= 0) forward(conn, input.subarray(runStart, runEnd));
      runStart = -1;
    };
    let offset = 0;
    for (const frame of frames) {
      const start = frame.bytes.byteOffset - input.byteOffset;
      offset = start + frame.bytes.length;
      if (fromClient && frame.flags & 0x01) {
        // A compressed body cannot be read here: from now on this connection is a plain pipe.
        flush();
        state.raw = true;
        bump("unparsed_connections");
        forward(conn, input.subarray(start));
        return;
      }
      const handled = fromClient ? onRequest(conn, state, frame) : onAnswer(conn, state, frame);
      if (handled) {
        flush();
      } else {
        if (runStart < 0) runStart = start;
        runEnd = offset;
      }
    }
    flush();
    if (fromClient) state.fromClient = rest;
    else state.fromServer = rest;
    if (invalid) goRaw(conn, state);
  };

  return {
    get paused() {
      return held !== undefined;
    },
    onClientData: (conn, chunk) => process(conn, chunk, true),
    onServerData: (conn, chunk) => process(conn, chunk, false),
    onClose: (conn) => {
      states.delete(conn);
    },
    configure(raw) {
      plan = parsePlan(raw);
      rand = seededRandom(plan.seed);
    },
    stats() {
      const out: Record<string, number> = { requests: 0, ...counts };
      for (const fault of FAULTS) out[fault] ??= 0;
      out.prepared_statements = statements.size;
      out.open_connections = states.size;
      return out;
    },
  };
}
