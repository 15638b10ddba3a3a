/**
 * Cassandra clients. The rest of the backend talks to `CassandraApi`, a small slice of
 * what cassandra-driver offers (metadata, the ring, size estimates, prepared statements,
 * unlogged batches), so unit tests can substitute a fake without a cluster.
 *
 * Clients are pooled per (contact points, port, credentials, TLS settings, data center,
 * timeouts, connections per host): a client holds a control connection, schema metadata
 * and connection pools to every node, and Spark sends many tasks with the same options.
 * Credentials only enter the pool key as a hash; the CA file as a hash of its contents.
 *
 * - Authentication: PlainTextAuthProvider (PasswordAuthenticator) when `username` is set.
 * - TLS: `ssl_ca_cert` is read once per client (`ca: [pem]`); the chain is always verified
 *   (the driver's own default is not to), and the node's name is checked unless
 *   `ssl_verify_hostname` is false. A certificate issued for `localhost` is accepted for a
 *   loopback address, so a local test node with such a certificate works at 127.0.0.1.
 * - Data center: `local_datacenter`, else the one the first contact point reports in
 *   `system.local` (read once by a short-lived client).
 * - Values: bigint for bigint/counter/varint, ES Map and Set for maps and sets.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import cassandra from "cassandra-driver";
import { invalidArgument } from "../../core/errors.js";
import type { ConsistencyLevel, ContactPoint, CassandraOptions } from "./options.js";
import { fromDriverType, type CqlType, type DriverTypeInfo } from "./types.js";

const { types } = cassandra;

export interface ColumnDef {
  name: string;
  type: CqlType;
  /** A static column (one value per partition). */
  isStatic?: boolean;
}

export interface TableDef {
  keyspace: string;
  name: string;
  /** Partition key columns, in key order. */
  partitionKeys: string[];
  /** Clustering columns, in key order. */
  clusteringKeys: string[];
  /** Every column (keys included), any order. */
  columns: ColumnDef[];
  virtual: boolean;
  /** Secondary indexes on the table (absent: none known). */
  indexes?: IndexDef[];
}

export interface IndexDef {
  name: string;
  /** The indexed column (or an expression such as `values(tags)`). */
  target: string;
  /** `options.class_name` of a custom index: `sai` or `...StorageAttachedIndex` for SAI. */
  className: string | undefined;
}

export interface RingInfo {
  /** Partitioner class, e.g. `org.apache.cassandra.dht.Murmur3Partitioner`. */
  partitioner: string;
  /** Every node's tokens, as text, any order. */
  tokens: string[];
  /** Number of nodes. */
  nodes: number;
}

/** One row of `system.size_estimates`. */
export interface SizeEstimate {
  rangeStart: string;
  rangeEnd: string;
  partitionsCount: bigint;
  meanPartitionSize: bigint;
}

export interface ExecuteOptions {
  consistency: ConsistencyLevel;
  /** Page size; omit for statements without rows. */
  fetchSize?: number;
  /** Where the previous page ended. */
  pageState?: string;
  /** Safe to retry on another node (upserts and deletes are). */
  idempotent?: boolean;
  /** The request's write timestamp in microseconds (the protocol's default timestamp). */
  timestamp?: number;
}

export interface ResultPage {
  rowCount: number;
  /**
   * The values column by column: `values[c][r]` is row r's value of `columns[c]`. One
   * array per column rather than one per row: a page holds thousands of rows.
   */
  values: unknown[][];
  columns: ColumnDef[];
  /** Present when more pages follow. */
  pageState: string | undefined;
}

export interface Statement {
  query: string;
  params: unknown[];
}

/** The calls this backend makes; cassandra-driver's Client is adapted to it, tests fake it. */
export interface CassandraApi {
  /** The table's definition, or undefined when the keyspace or table does not exist. */
  getTable(keyspace: string, table: string): Promise<TableDef | undefined>;
  keyspaceNames(): Promise<string[]>;
  tableNames(keyspace: string): Promise<string[]>;
  ring(): Promise<RingInfo>;
  /** Size estimates of the table from every node that is up (each node knows its own ranges). */
  sizeEstimates(keyspace: string, table: string): Promise<SizeEstimate[]>;
  /** Runs one prepared statement and returns one page. */
  execute(query: string, params: unknown[], options: ExecuteOptions): Promise<ResultPage>;
  /** Runs prepared statements as one UNLOGGED batch. */
  batch(statements: Statement[], options: ExecuteOptions): Promise<void>;
  /**
   * Waits until the driver holds a node up (true at once when one is, or when no client is
   * connected yet: the next request connects), or `ms` passed (false). Rejects when `signal` aborts.
   */
  waitForHost(ms: number, signal: AbortSignal): Promise<boolean>;
  /** Closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * Reconnection to a node that went down: at once, then from 250 ms doubling up to 5 s. The
 * driver's default (1 s doubling up to 10 minutes) left a node that was down for half a
 * minute unused for another minute, longer than a write's retry budget.
 */
export const RECONNECT_BASE_MS = 250;
export const RECONNECT_MAX_MS = 5_000;

/** How often waitForHost looks at the hosts, besides the driver's hostUp event. */
const HOST_POLL_MS = 200;

export interface TlsConfig {
  /** PEM contents of `ssl_ca_cert`, or undefined for the system roots. */
  ca: Buffer | undefined;
  caPath: string | undefined;
  verifyHostname: boolean;
}

export interface ClientConfig {
  contactPoints: ContactPoint[];
  port: number;
  credentials: { username: string; password: string } | undefined;
  tls: TlsConfig | undefined;
  localDataCenter: string | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Connections per local node: enough streams for `concurrency` requests of several tasks. */
  connectionsPerHost: number;
}

/** One protocol v4/v5 connection carries up to 2048 requests; one per 512 requests in flight leaves room for several tasks. */
export function connectionsFor(concurrency: number): number {
  return Math.min(8, Math.max(1, Math.ceil(concurrency / 512)));
}

function readCaCert(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "the file does not exist" : (cause as Error).message;
    throw invalidArgument(
      "SSL_CA_CERT_UNREADABLE",
      `Option 'ssl_ca_cert' names '${path}', which cannot be read on the machine running the service: ${reason}. Give the path of a PEM file with the CA certificate.`,
      { option: "ssl_ca_cert", path },
      cause,
    );
  }
}

export function clientConfigFromOptions(options: CassandraOptions): ClientConfig {
  return {
    contactPoints: options.contactPoints,
    port: options.port,
    credentials: options.username !== undefined && options.password !== undefined ? { username: options.username, password: options.password } : undefined,
    tls: options.ssl_enabled
      ? { ca: options.ssl_ca_cert === undefined ? undefined : readCaCert(options.ssl_ca_cert), caPath: options.ssl_ca_cert, verifyHostname: options.ssl_verify_hostname }
      : undefined,
    localDataCenter: options.local_datacenter,
    connectTimeoutMs: options.connect_timeout_ms,
    requestTimeoutMs: options.request_timeout_ms,
    connectionsPerHost: connectionsFor(options.concurrency),
  };
}

function hash(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** `host:port` (IPv6 in brackets), as the driver takes contact points. */
export function endpointText(point: ContactPoint): string {
  return point.host.includes(":") ? `[${point.host}]:${point.port}` : `${point.host}:${point.port}`;
}

/** Pool key; credentials and the CA are hashed so no secret is kept in a map key or reaches a log. */
export function clientKey(config: ClientConfig): string {
  const points = config.contactPoints.map(endpointText).sort().join(",");
  const creds = config.credentials ? `${config.credentials.username}:${hash(`${config.credentials.username}\0${config.credentials.password}`)}` : "anonymous";
  const tls = config.tls ? `tls:${config.tls.ca ? hash(config.tls.ca) : "system"}:${config.tls.verifyHostname}` : "plain";
  return [points, config.port, creds, tls, config.localDataCenter ?? "", config.connectTimeoutMs, config.requestTimeoutMs, config.connectionsPerHost].join("|");
}

/** Where requests go, for error messages (never includes credentials). */
export function describeTarget(config: Pick<ClientConfig, "contactPoints" | "tls">): string {
  return `${config.contactPoints.map(endpointText).join(", ")}${config.tls ? " (TLS)" : ""}`;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

/** Node's own check, plus: a certificate for `localhost` is good for a loopback address. */
export function checkNodeIdentity(host: string, cert: PeerCertificate): Error | undefined {
  const error = checkServerIdentity(host, cert);
  if (error && isLoopback(host) && checkServerIdentity("localhost", cert) === undefined) return undefined;
  return error;
}

const CONSISTENCY_CODES: Record<ConsistencyLevel, number> = {
  ANY: types.consistencies.any,
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  SERIAL: types.consistencies.serial,
  LOCAL_SERIAL: types.consistencies.localSerial,
  LOCAL_ONE: types.consistencies.localOne,
};

type DriverClientOptions = ConstructorParameters<typeof cassandra.Client>[0];

function baseOptions(config: ClientConfig): DriverClientOptions {
  return {
    contactPoints: config.contactPoints.map(endpointText),
    protocolOptions: { port: config.port },
    ...(config.credentials ? { authProvider: new cassandra.auth.PlainTextAuthProvider(config.credentials.username, config.credentials.password) } : {}),
    ...(config.tls
      ? {
          sslOptions: {
            rejectUnauthorized: true,
            ...(config.tls.ca ? { ca: [config.tls.ca] } : {}),
            checkServerIdentity: config.tls.verifyHostname ? checkNodeIdentity : () => undefined,
          },
        }
      : {}),
    socketOptions: { connectTimeout: config.connectTimeoutMs, readTimeout: config.requestTimeoutMs },
  };
}

/** Asks the first contact point which data center it is in. */
async function detectDataCenter(config: ClientConfig): Promise<string> {
  const probe = new cassandra.Client({
    ...baseOptions({ ...config, contactPoints: config.contactPoints.slice(0, 1) }),
    policies: { loadBalancing: new cassandra.policies.loadBalancing.RoundRobinPolicy() },
    isMetadataSyncEnabled: false,
    pooling: { coreConnectionsPerHost: { [types.distance.local]: 1, [types.distance.remote]: 0 } },
  });
  try {
    await probe.connect();
    const result = await probe.execute("SELECT data_center FROM system.local");
    const dc = result.first()?.get("data_center") as string | undefined;
    if (!dc) throw new Error("system.local has no data_center");
    return dc;
  } finally {
    await probe.shutdown().catch(() => undefined);
  }
}

function toTableDef(keyspace: string, table: cassandra.metadata.TableMetadata): TableDef {
  const meta = table as unknown as {
    name: string;
    virtual?: boolean;
    columns: Array<{ name: string; type: DriverTypeInfo; isStatic?: boolean }>;
    partitionKeys: Array<{ name: string }>;
    clusteringKeys: Array<{ name: string }>;
    indexes?: Array<{ name: string; target: string; options?: Record<string, string> | null }>;
  };
  return {
    keyspace,
    name: meta.name,
    partitionKeys: meta.partitionKeys.map((c) => c.name),
    clusteringKeys: meta.clusteringKeys.map((c) => c.name),
    columns: meta.columns.map((c) => ({ name: c.name, type: fromDriverType(c.type), ...(c.isStatic ? { isStatic: true } : {}) })),
    virtual: meta.virtual === true,
    indexes: (meta.indexes ?? []).map((i) => ({ name: i.name, target: i.target, className: i.options?.class_name })),
  };
}

const NO_ROWS: ResultPage = Object.freeze({ rowCount: 0, values: [], columns: [], pageState: undefined });

/**
 * The rows' values column by column, read by name: the driver's `Row.values()` walks each
 * row with for-in (a sixth of a read's CPU in the service), and orders integer-like column
 * names such as "1" before the others.
 */
function columnValues(rows: readonly cassandra.types.Row[], columns: readonly ColumnDef[]): unknown[][] {
  return columns.map(({ name }) => {
    const values = new Array<unknown>(rows.length);
    for (let r = 0; r < rows.length; r++) values[r] = (rows[r] as unknown as Record<string, unknown>)[name];
    return values;
  });
}

/** Builds a real driver client (connected lazily) and wraps it as a CassandraApi. */
export function createDriverApi(config: ClientConfig): CassandraApi {
  let client: cassandra.Client | undefined;
  /** The client once connected: requests then skip waiting on `connecting`. */
  let ready: cassandra.Client | undefined;
  let connecting: Promise<cassandra.Client> | undefined;
  let closed = false;

  const connect = (): Promise<cassandra.Client> => {
    connecting ??= (async () => {
      const localDataCenter = config.localDataCenter ?? (await detectDataCenter(config));
      const created = new cassandra.Client({
        ...baseOptions(config),
        localDataCenter,
        encoding: { map: Map, set: Set, useBigIntAsLong: true, useBigIntAsVarint: true },
        pooling: { coreConnectionsPerHost: { [types.distance.local]: config.connectionsPerHost, [types.distance.remote]: 1 } },
        queryOptions: { captureStackTrace: false },
        policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(RECONNECT_BASE_MS, RECONNECT_MAX_MS, true) },
      });
      client = created;
      if (closed) throw new Error("the client was shut down");
      await created.connect();
      ready = created;
      return created;
    })();
    // A failed connection attempt is not cached: the next call tries again.
    connecting.catch(() => {
      connecting = undefined;
      const failed = client;
      client = undefined;
      ready = undefined;
      void failed?.shutdown().catch(() => undefined);
    });
    return connecting;
  };

  // A writer sends the same options object with every batch: build the driver's once per object.
  const unpagedOptions = new WeakMap<ExecuteOptions, cassandra.QueryOptions>();
  const queryOptions = (options: ExecuteOptions): cassandra.QueryOptions => {
    const build = (): cassandra.QueryOptions => ({
      prepare: true,
      consistency: CONSISTENCY_CODES[options.consistency],
      ...(options.fetchSize !== undefined ? { fetchSize: options.fetchSize, autoPage: false } : {}),
      ...(options.pageState !== undefined ? { pageState: options.pageState } : {}),
      ...(options.idempotent ? { isIdempotent: true } : {}),
      ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}),
    });
    if (options.fetchSize !== undefined || options.pageState !== undefined) return build();
    if (options.timestamp !== undefined) {
      // A write of one row carries its own timestamp: one object per request, so a literal rather than the spreads above.
      return { prepare: true, consistency: CONSISTENCY_CODES[options.consistency], isIdempotent: options.idempotent === true, timestamp: options.timestamp };
    }
    let cached = unpagedOptions.get(options);
    if (!cached) unpagedOptions.set(options, (cached = build()));
    return cached;
  };

  return {
    async getTable(keyspace, table) {
      const c = await connect();
      const meta = await c.metadata.getTable(keyspace, table);
      return meta ? toTableDef(keyspace, meta) : undefined;
    },

    async keyspaceNames() {
      const c = await connect();
      const result = await c.execute("SELECT keyspace_name FROM system_schema.keyspaces");
      return result.rows.map((r) => r.get("keyspace_name") as string);
    },

    async tableNames(keyspace) {
      const c = await connect();
      const result = await c.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", [keyspace], { prepare: true });
      return result.rows.map((r) => r.get("table_name") as string);
    },

    async ring() {
      const c = await connect();
      const local = await c.execute("SELECT partitioner FROM system.local");
      const partitioner = (local.first()?.get("partitioner") as string | undefined) ?? "";
      const tokens: string[] = [];
      const hosts = c.hosts.values();
      for (const host of hosts) tokens.push(...(host.tokens ?? []));
      return { partitioner, tokens, nodes: hosts.length };
    },

    async sizeEstimates(keyspace, table) {
      const c = await connect();
      const query = "SELECT range_start, range_end, partitions_count, mean_partition_size FROM system.size_estimates WHERE keyspace_name = ? AND table_name = ?";
      const perHost = await Promise.all(
        c.hosts.values().map(async (host) => {
          if (!host.isUp()) return [];
          try {
            const result = await c.execute(query, [keyspace, table], { prepare: true, host });
            return result.rows.map(
              (r): SizeEstimate => ({
                rangeStart: String(r.get("range_start")),
                rangeEnd: String(r.get("range_end")),
                partitionsCount: BigInt(r.get("partitions_count") as bigint),
                meanPartitionSize: BigInt(r.get("mean_partition_size") as bigint),
              }),
            );
          } catch {
            // A node that cannot answer only makes the estimate smaller.
            return [];
          }
        }),
      );
      return perHost.flat();
    },

    execute(query, params, options) {
      const run = async (c: cassandra.Client): Promise<ResultPage> => {
        const result = await c.execute(query, params, queryOptions(options));
        // Writes (one request per row) get no rows and no columns: skip the copying.
        if (!result.columns && !result.pageState && (result.rows ?? []).length === 0) return NO_ROWS;
        const columns = (result.columns ?? []).map((col) => ({ name: col.name, type: fromDriverType(col.type as DriverTypeInfo) }));
        const rows = result.rows ?? [];
        return { rowCount: rows.length, values: columnValues(rows, columns), columns, pageState: result.pageState ?? undefined };
      };
      return ready ? run(ready) : connect().then(run);
    },

    async batch(statements, options) {
      const c = await connect();
      await c.batch(statements, { ...queryOptions(options), logged: false });
    },

    waitForHost(ms, signal) {
      const c = ready;
      const anyUp = () => c === undefined || closed || c.hosts.values().some((h) => h.isUp());
      if (signal.aborted) return Promise.reject(signal.reason);
      if (anyUp()) return Promise.resolve(true);
      return new Promise<boolean>((resolve, reject) => {
        const finish = (up: boolean | undefined) => {
          clearTimeout(timer);
          clearInterval(poll);
          c!.removeListener("hostUp", onUp);
          signal.removeEventListener("abort", onAbort);
          if (up === undefined) reject(signal.reason);
          else resolve(up);
        };
        const onUp = () => finish(true);
        const onAbort = () => finish(undefined);
        const timer = setTimeout(() => finish(anyUp()), ms);
        const poll = setInterval(() => {
          if (anyUp()) finish(true);
        }, HOST_POLL_MS);
        c!.on("hostUp", onUp);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },

    async shutdown() {
      closed = true;
      ready = undefined;
      const pending = connecting;
      connecting = undefined;
      if (pending) await pending.catch(() => undefined);
      const c = client;
      client = undefined;
      if (c) await c.shutdown();
    },
  };
}

