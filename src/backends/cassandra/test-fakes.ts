/**
 * An in-memory Cassandra for unit tests (not used by the service): enough of the
 * metadata calls, the reader's token-range SELECT (with paging, and a streaming window's
 * conditions and WRITETIME selectors), the writer's INSERT and
 * DELETE (with write timestamps: the highest timestamp wins, as in Cassandra), UNLOGGED
 * batches and TRUNCATE to exercise planning, reads and writes, with hooks to fail or hold
 * requests open. Values are stored as the driver values the writer bound; a value bound
 * already serialized (a Buffer, for any column type but blob) is decoded by the driver's
 * own decoder, as Cassandra would read it.
 */
import { createHash } from "node:crypto";
import cassandra from "cassandra-driver";
import type { CassandraApi, ExecuteOptions, ResultPage, RingInfo, SizeEstimate, Statement, TableDef } from "./client.js";
import { scalar, type CqlType } from "./types.js";

const unset = cassandra.types.unset;
const { dataTypes } = cassandra.types;
export const encoder = new (cassandra as unknown as { Encoder: new (version: number, options: unknown) => unknown }).Encoder(4, { encoding: { map: Map, useBigIntAsLong: true, useBigIntAsVarint: true } }) as { decode(bytes: Buffer, type: unknown): unknown; encode(value: unknown, type: unknown): Buffer | null };

/** The driver's type info for the scalars, lists, sets and maps the writer serializes. */
export function driverType(type: CqlType): unknown {
  switch (type.kind) {
    case "scalar":
      return { code: dataTypes[type.name] };
    case "list":
    case "set":
      return { code: dataTypes[type.kind], info: driverType(type.element) };
    case "map":
      return { code: dataTypes.map, info: [driverType(type.key), driverType(type.value)] };
    default:
      throw new Error(`the fake cannot decode a serialized ${type.kind}`);
  }
}

/** What Cassandra would store for a bound value of `type`. */
function bound(value: unknown, type: CqlType | undefined): unknown {
  if (!(value instanceof Buffer) || !type || (type.kind === "scalar" && type.name === "blob")) return value;
  return encoder.decode(value, driverType(type));
}

/** A driver ResponseError with a CQL error code (see cassandra.types.responseErrorCodes). */
export function responseError(code: number, message: string): Error {
  return new cassandra.errors.ResponseError(code, message);
}

/** A NoHostAvailableError whose nodes failed with `inner`. */
export function noHostAvailable(inner: Record<string, Error>): Error {
  return new cassandra.errors.NoHostAvailableError(inner);
}

interface Cell {
  value: unknown;
  ts: bigint;
}

/**
 * A clock whose backoff sleeps really wait (`sleepMillis`) unless their signal aborts,
 * with `sleeping` resolved once the first sleep starts: for tests that cancel during a backoff.
 */
export function abortableSleepClock(sleepMillis: number): { clock: { now: () => number; random: () => number; sleep: (ms: number, signal?: AbortSignal) => Promise<void> }; sleeping: Promise<void> } {
  let asleep!: () => void;
  const sleeping = new Promise<void>((resolve) => (asleep = resolve));
  const clock = {
    now: () => Date.now(),
    random: () => 1,
    sleep: (_ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, sleepMillis);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
        });
        asleep();
      }),
  };
  return { clock, sleeping };
}

export interface FakeRow {
  cells: Map<string, Cell>;
  /** Timestamp of the latest row deletion. */
  deletedAt: bigint;
}

export interface FakeTable {
  def: TableDef;
  rows: Map<string, FakeRow>;
}

export interface ExecuteCall {
  query: string;
  params: unknown[];
  options: ExecuteOptions;
}

/** A Murmur3-range token for a partition key (never the minimum token). */
export function fakeToken(values: unknown[]): bigint {
  const digest = createHash("sha256").update(JSON.stringify(values.map((v) => String(v)))).digest();
  const token = digest.readBigInt64BE(0);
  return token === -(1n << 63n) ? 0n : token;
}

function unquote(name: string): string {
  return name.trim().replace(/^"(.*)"$/, "$1").replace(/""/g, '"');
}

/**
 * What a window condition's bound value compares as: a bigint column's value as the driver
 * encodes it (a bigint outside 64 bits wraps, as cassandra-driver 4.10 writes it), a
 * timestamp's milliseconds, and for `maxTimeuuid(?)` the milliseconds of the Date (the
 * largest timeuuid of that millisecond). Anything else is a query Cassandra would refuse.
 */
function windowKey(type: CqlType, maxTimeuuid: boolean, param: unknown, query: string): bigint {
  const name = type.kind === "scalar" ? type.name : type.kind;
  if (name === "bigint" && !maxTimeuuid && typeof param === "bigint") return BigInt.asIntN(64, param);
  if (name === "timestamp" && !maxTimeuuid && param instanceof Date) return BigInt(param.getTime());
  if (name === "timeuuid" && maxTimeuuid && param instanceof Date) return BigInt(param.getTime());
  throw new Error(`the fake cannot compare a ${name} column with ${maxTimeuuid ? "maxTimeuuid" : ""}(${typeof param} ${String(param)}) in ${query}`);
}

/** A stored value as windowKey compares it (a timeuuid by its millisecond). */
function cellKey(type: CqlType, value: unknown): bigint {
  const name = type.kind === "scalar" ? type.name : type.kind;
  if (name === "bigint") return value as bigint;
  if (name === "timestamp") return BigInt((value as Date).getTime());
  return BigInt((value as InstanceType<typeof cassandra.types.TimeUuid>).getDate().getTime());
}

export class FakeCassandra implements CassandraApi {
  readonly tables = new Map<string, FakeTable>();
  readonly keyspaces = new Set<string>();
  partitioner = "org.apache.cassandra.dht.Murmur3Partitioner";
  tokens: string[] = ["-6148914691236517206", "0", "6148914691236517205"];
  nodes = 1;
  estimates: SizeEstimate[] = [];
  readonly executes: ExecuteCall[] = [];
  readonly batches: Array<{ statements: Statement[]; options: ExecuteOptions }> = [];
  inFlight = 0;
  maxInFlight = 0;
  shutdownCalls = 0;
  /** Throws to fail a request (execute or batch) before it applies anything; `call` counts both. */
  fail: (query: string, call: number) => void = () => {};
  /** Awaited before a request is answered (hold requests open). */
  gate: (query: string, call: number) => Promise<void> = async () => {};
  private calls = 0;

  addTable(keyspace: string, name: string, columns: Array<[string, CqlType]>, partitionKeys: string[], clusteringKeys: string[] = [], statics: string[] = []): FakeTable {
    this.keyspaces.add(keyspace);
    const table: FakeTable = {
      def: {
        keyspace,
        name,
        partitionKeys,
        clusteringKeys,
        columns: columns.map(([n, type]) => ({ name: n, type, ...(statics.includes(n) ? { isStatic: true } : {}) })),
        virtual: false,
      },
      rows: new Map(),
    };
    this.tables.set(`${keyspace}.${name}`, table);
    return table;
  }

  /** Puts a row of driver values directly, every cell with write timestamp `ts` (microseconds; default 0). */
  put(keyspace: string, name: string, values: Record<string, unknown>, ts = 0n): void {
    const table = this.tables.get(`${keyspace}.${name}`)!;
    this.upsert(table, values, ts);
  }

  /** The live rows of a table as column -> driver value, ordered by token. */
  rowsOf(keyspace: string, name: string): Array<Record<string, unknown>> {
    const table = this.tables.get(`${keyspace}.${name}`)!;
    return this.liveRows(table).map(([, row]) => Object.fromEntries([...row.cells.entries()].map(([k, c]) => [k, c.value])));
  }

  private keyOf(table: FakeTable, values: Record<string, unknown>): { key: string; token: bigint } {
    const pk = table.def.partitionKeys.map((k) => values[k]);
    const ck = table.def.clusteringKeys.map((k) => values[k]);
    return { key: JSON.stringify([...pk, ...ck].map((v) => String(v))), token: fakeToken(pk) };
  }

  private tokenOf(table: FakeTable, row: FakeRow): bigint {
    return fakeToken(table.def.partitionKeys.map((k) => row.cells.get(k)?.value));
  }

  private liveRows(table: FakeTable): Array<[bigint, FakeRow]> {
    return [...table.rows.values()]
      .filter((row) => row.cells.size > 0)
      .map((row): [bigint, FakeRow] => [this.tokenOf(table, row), row])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  private upsert(table: FakeTable, values: Record<string, unknown>, ts: bigint): void {
    const { key } = this.keyOf(table, values);
    let row = table.rows.get(key);
    if (!row) {
      row = { cells: new Map(), deletedAt: -1n };
      table.rows.set(key, row);
    }
    if (ts <= row.deletedAt) return;
    for (const [name, value] of Object.entries(values)) {
      if (value === unset) continue;
      const current = row.cells.get(name);
      if (current && current.ts > ts) continue;
      if (value === null || value === undefined) row.cells.delete(name);
      else row.cells.set(name, { value, ts });
    }
  }

  private remove(table: FakeTable, keys: Record<string, unknown>, ts: bigint): void {
    const { key } = this.keyOf(table, keys);
    const row = table.rows.get(key);
    if (!row) {
      table.rows.set(key, { cells: new Map(), deletedAt: ts });
      return;
    }
    row.deletedAt = row.deletedAt > ts ? row.deletedAt : ts;
    for (const [name, cell] of row.cells) if (cell.ts <= ts) row.cells.delete(name);
  }

  private columnType(table: FakeTable, column: string): CqlType | undefined {
    return table.def.columns.find((c) => c.name === column)?.type;
  }

  private table(keyspace: string, name: string): FakeTable {
    const table = this.tables.get(`${keyspace}.${name}`);
    if (!table) throw responseError(cassandra.types.responseErrorCodes.invalid, `table ${name} does not exist`);
    return table;
  }

  /**
   * Applies one write statement; returns false for statements that are not writes. The
   * write timestamp is bound (`USING TIMESTAMP ?`) or the request's (`timestamp`).
   */
  private apply(query: string, params: unknown[], timestamp?: number): boolean {
    const requestTimestamp = () => {
      if (timestamp === undefined) throw new Error(`the fake needs a write timestamp for ${query}`);
      return BigInt(timestamp);
    };
    const insert = /^INSERT INTO "((?:[^"]|"")+)"\."((?:[^"]|"")+)" \((.*)\) VALUES \((.*)\)( USING TIMESTAMP \?)?$/.exec(query);
    if (insert) {
      const table = this.table(unquote(insert[1]!), unquote(insert[2]!));
      const columns = insert[3]!.split(/, (?=")/).map(unquote);
      const values: Record<string, unknown> = {};
      columns.forEach((c, i) => (values[c] = bound(params[i], this.columnType(table, c))));
      this.upsert(table, values, insert[5] ? (params[columns.length] as bigint) : requestTimestamp());
      return true;
    }
    const del = /^DELETE FROM "((?:[^"]|"")+)"\."((?:[^"]|"")+)"( USING TIMESTAMP \?)? WHERE (.*)$/.exec(query);
    if (del) {
      const table = this.table(unquote(del[1]!), unquote(del[2]!));
      const columns = del[4]!.split(" AND ").map((c) => unquote(c.replace(/ = \?$/, "")));
      const first = del[3] ? 1 : 0;
      const keys: Record<string, unknown> = {};
      columns.forEach((c, i) => (keys[c] = bound(params[i + first], this.columnType(table, c))));
      this.remove(table, keys, del[3] ? (params[0] as bigint) : requestTimestamp());
      return true;
    }
    const truncate = /^TRUNCATE "((?:[^"]|"")+)"\."((?:[^"]|"")+)"$/.exec(query);
    if (truncate) {
      this.table(unquote(truncate[1]!), unquote(truncate[2]!)).rows.clear();
      return true;
    }
    return false;
  }

  private select(query: string, params: unknown[], options: ExecuteOptions): ResultPage {
    const m = /^SELECT (.*) FROM "((?:[^"]|"")+)"\."((?:[^"]|"")+)"(?: WHERE (.*?))?( ALLOW FILTERING)?$/.exec(query);
    if (!m) throw responseError(cassandra.types.responseErrorCodes.syntaxError, `line 1:0 no viable alternative at input '${query.slice(0, 20)}'`);
    const table = this.table(unquote(m[2]!), unquote(m[3]!));
    const selectors = m[1]!.split(/, (?="|WRITETIME\()/).map((text) => {
      const writetime = /^WRITETIME\((.*)\)$/.exec(text);
      return { column: unquote(writetime ? writetime[1]! : text), writetime: writetime !== null };
    });
    const byName = new Map(table.def.columns.map((c) => [c.name, c]));
    const keys = new Set([...table.def.partitionKeys, ...table.def.clusteringKeys]);
    for (const { column, writetime } of selectors) {
      if (!byName.has(column)) throw responseError(cassandra.types.responseErrorCodes.invalid, `Undefined column name ${column}`);
      if (writetime && keys.has(column)) throw responseError(cassandra.types.responseErrorCodes.invalid, `Cannot use selection function writeTime on PRIMARY KEY part ${column}`);
    }
    let rows = this.liveRows(table);
    let bound = 0;
    if (m[4]?.startsWith("token(")) {
      const [start, end] = params as [bigint, bigint];
      if (!(start === end && start !== -(1n << 63n))) rows = rows.filter(([token]) => token > start && token <= end);
      else rows = [];
      bound = 2;
    }
    // A streaming window's conditions: `"col" > ?`, `"col" <= ?`, or with maxTimeuuid(?) for a timeuuid.
    // Other conditions (a user's filter) are not evaluated, as before.
    for (const condition of m[4]?.split(" AND ") ?? []) {
      const w = /^"((?:[^"]|"")+)" (>|<=) (\?|maxTimeuuid\(\?\))$/.exec(condition);
      if (!w) continue;
      const column = unquote(`"${w[1]!}"`);
      const type = byName.get(column)?.type;
      if (!type) throw responseError(cassandra.types.responseErrorCodes.invalid, `Undefined column name ${column}`);
      const indexed = (table.def.indexes ?? []).some((i) => i.className !== undefined && /^(sai|(.*\.)?StorageAttachedIndex)$/i.test(i.className) && unquote(i.target) === column);
      if (!indexed && !m[5]) {
        throw responseError(
          cassandra.types.responseErrorCodes.invalid,
          "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING",
        );
      }
      const key = windowKey(type, w[3] !== "?", params[bound++], query);
      const above = w[2] === ">";
      rows = rows.filter(([, row]) => {
        const value = row.cells.get(column)?.value;
        if (value === null || value === undefined) return false;
        const v = cellKey(type, value);
        return above ? v > key : v <= key;
      });
    }
    if (bound !== params.length) throw new Error(`the fake bound ${bound} of the ${params.length} parameters of ${query}`);
    const offset = options.pageState === undefined ? 0 : Number(options.pageState);
    const size = options.fetchSize ?? 5000;
    const page = rows.slice(offset, offset + size);
    const more = offset + size < rows.length;
    return {
      rowCount: page.length,
      values: selectors.map(({ column, writetime }) => page.map(([, row]) => (writetime ? row.cells.get(column)?.ts : row.cells.get(column)?.value) ?? null)),
      columns: selectors.map(({ column, writetime }) => (writetime ? { name: `writetime(${column})`, type: scalar("bigint") } : byName.get(column)!)),
      pageState: more ? String(offset + size) : undefined,
    };
  }

  private async request<T>(query: string, fn: () => T): Promise<T> {
    const call = this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.gate(query, call);
      this.fail(query, call);
      return fn();
    } finally {
      this.inFlight--;
    }
  }

  async getTable(keyspace: string, table: string): Promise<TableDef | undefined> {
    return this.tables.get(`${keyspace}.${table}`)?.def;
  }

  async keyspaceNames(): Promise<string[]> {
    return ["system", "system_schema", ...this.keyspaces];
  }

  async tableNames(keyspace: string): Promise<string[]> {
    return [...this.tables.values()].filter((t) => t.def.keyspace === keyspace).map((t) => t.def.name);
  }

  async ring(): Promise<RingInfo> {
    return { partitioner: this.partitioner, tokens: this.tokens, nodes: this.nodes };
  }

  async sizeEstimates(): Promise<SizeEstimate[]> {
    return this.estimates;
  }

  async execute(query: string, params: unknown[], options: ExecuteOptions): Promise<ResultPage> {
    this.executes.push({ query, params, options });
    return this.request(query, () => (this.apply(query, params, options.timestamp) ? { rowCount: 0, values: [], columns: [], pageState: undefined } : this.select(query, params, options)));
  }

  async batch(statements: Statement[], options: ExecuteOptions): Promise<void> {
    this.batches.push({ statements, options });
    await this.request(statements[0]?.query ?? "BATCH", () => {
      for (const s of statements) this.apply(s.query, s.params);
    });
  }

  /** Whether a node is up for waitForHost; each call records the time it was given. */
  hostUp = true;
  readonly hostWaits: number[] = [];

  async waitForHost(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) throw signal.reason;
    this.hostWaits.push(ms);
    return this.hostUp;
  }

  async shutdown(): Promise<void> {
    this.shutdownCalls++;
  }
}
