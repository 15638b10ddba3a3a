/**
 * The options of `format("pycassandra")`. PyCassandra's options keep their names, defaults
 * and meaning; the rest are what reads (which PyCassandra did not have) and a production
 * job need. Cross-option rules live in `parseCassandraOptions`, so every entry point gets
 * the same errors before any request.
 */
import { invalidArgument } from "../../core/errors.js";
import { commonOptions } from "../../options/common.js";
import { booleanOption, enumOption, integerOption, OptionRegistry, stringOption, type Operation, type ParsedOptions } from "../../options/registry.js";

export const CONSISTENCY_LEVELS = ["ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE", "ANY", "SERIAL", "LOCAL_SERIAL"] as const;
export type ConsistencyLevel = (typeof CONSISTENCY_LEVELS)[number];

export const DEFAULT_WRITE_CONSISTENCY: ConsistencyLevel = "LOCAL_QUORUM";
export const DEFAULT_READ_CONSISTENCY: ConsistencyLevel = "LOCAL_ONE";
export const DEFAULT_PORT = 9042;
export const STREAM_MODES = ["column", "writetime"] as const;
export type StreamMode = (typeof STREAM_MODES)[number];
export const DEFAULT_STREAM_LAG_MS = 5_000;

export const cassandraOptionSpecs = {
  ...commonOptions,
  host: stringOption({
    description: "Cassandra contact points, comma-separated (`10.0.0.1,10.0.0.2`). Each may carry its own port (`10.0.0.1:9043`, `[::1]:9042`); the others use `port`.",
    required: true,
  }),
  port: integerOption({ description: "Native protocol (CQL) port of the contact points.", default: DEFAULT_PORT, min: 1, max: 65_535 }),
  keyspace: stringOption({ description: "Keyspace of the table (case-sensitive, as in `DESCRIBE KEYSPACES`).", required: true }),
  table: stringOption({ description: "Table to read or write (case-sensitive, as in `DESCRIBE TABLES`).", required: true }),
  username: stringOption({ description: "User name for password authentication (PasswordAuthenticator). Requires `password`." }),
  password: stringOption({ description: "Password of `username`. Never logged or echoed in errors.", secret: true }),
  ssl_enabled: booleanOption({ description: "Connect with TLS (client-to-node encryption).", default: false }),
  ssl_ca_cert: stringOption({
    description: "Path (on the machine running the service) to a PEM file with the CA certificate(s) that signed the nodes' certificates. Default: the system's trusted roots. Requires `ssl_enabled`.",
  }),
  ssl_verify_hostname: booleanOption({
    description:
      "Check that a node's certificate names the address it was reached at (a certificate for `localhost` is accepted for a loopback address). The certificate chain is always verified against the CA.",
    default: true,
  }),
  local_datacenter: stringOption({
    description: "Data center whose nodes are queried first (and for LOCAL_* consistency levels). Default: the data center of the first contact point, read from its `system.local`.",
  }),
  consistency: enumOption<ConsistencyLevel>({
    description:
      "Consistency level of every request. ANY is for writes only; SERIAL and LOCAL_SERIAL for reads only (linearizable reads that see uncommitted lightweight transactions).",
    values: CONSISTENCY_LEVELS,
    defaultText: "`LOCAL_QUORUM` for writes and streaming reads, `LOCAL_ONE` for batch reads",
  }),
  connect_timeout_ms: integerOption({ description: "Timeout for opening a connection to a node, in milliseconds.", default: 10_000, min: 100, max: 600_000 }),
  request_timeout_ms: integerOption({
    description: "Client-side timeout of one request (a page of a read, a write), in milliseconds. Keep it above the server's own timeouts (`write_request_timeout`, `range_request_timeout`).",
    default: 30_000,
    min: 100,
    max: 3_600_000,
  }),
  concurrency: integerOption({ description: "Write requests in flight per Spark task.", scope: "write", default: 100, min: 1, max: 10_000 }),
  rows_per_batch: integerOption({
    description:
      "Rows buffered per Spark task before they are sent. Rows of one buffer that share a partition key are sent together as an UNLOGGED batch (one mutation for Cassandra); the others one statement each.",
    scope: "write",
    default: 1000,
    min: 1,
    max: 1_000_000,
  }),
  max_retries: integerOption({
    description:
      "How often a request (a write, a page of a read) that a node answered with a timeout, too few replicas alive or overloaded is retried (exponential backoff with jitter from 100 ms) before the task fails. Retrying is safe: writes are upserts with fixed write timestamps (statements that set a list take a new one), and a read resumes at the page that failed.",
    default: 5,
    min: 0,
    max: 100,
  }),
  max_retry_seconds: integerOption({
    description:
      "How long a request keeps being retried, from its first attempt. While no node can be reached (a lost connection, a node that stopped answering) the task waits for the driver to reconnect, up to this long, without counting against `max_retries`; 0 retries nothing.",
    default: 60,
    min: 0,
    max: 86_400,
  }),
  write_nulls: booleanOption({
    description:
      "Write null values of non-key columns as nulls, which deletes what the column held (and creates tombstones). By default they are left unset: the column keeps its current value and no tombstone is written.",
    scope: "write",
    default: false,
  }),
  delete_flag_column: stringOption({
    description:
      "Column marking rows to delete: a row whose value in this column equals `delete_flag_value` deletes the Cassandra row with its primary key instead of writing it. The column itself is never written. Must be used with `delete_flag_value`.",
    scope: "write",
  }),
  delete_flag_value: stringOption({
    description: "Value of `delete_flag_column` that triggers a delete, compared as text (a boolean `true` matches `true`). Must be used with `delete_flag_column`.",
    scope: "write",
  }),
  confirm_truncate: booleanOption({
    description:
      'Allow `mode("overwrite")`, which runs `TRUNCATE` on the table (every row of every node is removed) before any row is written. Without it an overwrite is refused; use `mode("append")` to upsert instead.',
    scope: "write",
    default: false,
  }),
  filter: stringOption({
    description:
      "CQL `WHERE` conditions added to every read query with `AND`, e.g. `age > 30 AND country = 'NO'`. Conditions on non-key columns need `allow_filtering` (or an index). Do not restrict the partition key here: reads already split the table by token range.",
    scope: "read",
  }),
  allow_filtering: booleanOption({ description: "Append `ALLOW FILTERING` to read queries (needed by `filter` conditions that Cassandra cannot answer from an index or the key).", scope: "read", default: false }),
  read_page_size: integerOption({ description: "Rows per page of a read (the driver's fetch size); each page becomes one Arrow batch.", scope: "read", default: 5000, min: 1, max: 1_000_000 }),
  split_size_mb: integerOption({
    description:
      "Target amount of table data per Spark partition, in MB, from the table's `system.size_estimates`. The table is split by token range into about size / split_size_mb partitions (at least 1 + 2 x nodes).",
    scope: "read",
    default: 64,
    min: 1,
    max: 1_000_000,
  }),
  read_partitions: integerOption({
    description: "Number of Spark partitions (token-range splits) of a read; overrides `split_size_mb`.",
    scope: "read",
    min: 1,
    max: 100_000,
  }),
  starting_position: stringOption({
    description:
      "Makes the read a stream (`spark.readStream`) of the rows whose `stream_column` (or write time) grows past a mark, and says where a new query starts: `earliest` (every row), `latest` (rows from now on) or a value: an ISO-8601 timestamp for timestamp and timeuuid columns and for write time, a timeuuid, or an integer for bigint columns (rows at or after it). A restarted query continues from its checkpoint instead.",
    scope: "stream",
  }),
  stream_mode: enumOption<StreamMode>({
    description:
      "`column`: micro-batches read the rows whose `stream_column` lies past the previous mark (an indexed range read). `writetime`: the rows whose newest write time (`WRITETIME` of the regular and static columns) does; for tables without such a column, at the cost of a full scan per micro-batch. Neither sees deletes.",
    scope: "stream",
    values: STREAM_MODES,
    default: "column",
  }),
  stream_column: stringOption({
    description:
      "The column a `column` stream follows: a `timestamp`, `timeuuid` or `bigint` whose value grows with time. It must be the first clustering column or carry an SAI index (`CREATE INDEX ON ks.t (col) USING 'sai'`); otherwise set `allow_filtering`.",
    scope: "stream",
  }),
  stream_lag_ms: integerOption({
    description:
      "How far the mark of a timestamp or timeuuid column, or of write time, trails the service's clock, in milliseconds, so that rows written with a slightly older value (clock skew, a slow or retried write) are still read. A row whose value is older than this when it becomes readable is missed.",
    scope: "stream",
    default: DEFAULT_STREAM_LAG_MS,
    min: 0,
    max: 86_400_000,
  }),
  max_rows_per_trigger: integerOption({
    description:
      "At most about this many rows per micro-batch (Spark 4.2+; Spark 4.0 and 4.1 read all that is available): the mark advances only as far as keeps the micro-batch under it (rows that share one value of the mark are never split, so more of them can come at once). `Trigger.AvailableNow` honours it too.",
    scope: "stream",
    min: 1,
    max: 10_000_000,
  }),
} as const;

export type CassandraOptionSpecs = typeof cassandraOptionSpecs;
type Parsed = ParsedOptions<CassandraOptionSpecs>;
/** Options without a default: absent unless given. */
type OptionalName =
  | "username"
  | "password"
  | "ssl_ca_cert"
  | "local_datacenter"
  | "delete_flag_column"
  | "delete_flag_value"
  | "filter"
  | "read_partitions"
  | "starting_position"
  | "stream_column"
  | "max_rows_per_trigger";
export type CassandraOptions = Omit<Parsed, "consistency" | OptionalName> & { [K in OptionalName]: Parsed[K] | undefined } & {
  /** Resolved: the option, else the default of the operation. */
  consistency: ConsistencyLevel;
  /** The contact points, each with its port. */
  contactPoints: ContactPoint[];
};

export interface ContactPoint {
  host: string;
  port: number;
}

export const cassandraOptions = new OptionRegistry("pycassandra", cassandraOptionSpecs);

function rule(errorClass: string, message: string, parameters: Record<string, string>): never {
  throw invalidArgument(errorClass, message, parameters);
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** Parses `host`: comma-separated contact points, each `name`, `name:port`, `ipv6`, or `[ipv6]:port`. */
export function parseContactPoints(raw: string, defaultPort: number): ContactPoint[] {
  const points: ContactPoint[] = [];
  for (const item of raw.split(",").map((s) => s.trim())) {
    if (item === "") continue;
    let host = item;
    let portText: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(item);
    if (bracketed) {
      host = bracketed[1]!;
      portText = bracketed[2];
    } else if ((item.match(/:/g) ?? []).length === 1) {
      [host, portText] = item.split(":") as [string, string];
    }
    const isIpv6 = host.includes(":");
    if (!isIpv6 && !HOST_NAME.test(host)) {
      rule("OPTION_INVALID_VALUE", `Option 'host' has the invalid contact point '${item}': expected a host name or IP address, optionally with ':port'.`, {
        option: "host",
        value: item,
      });
    }
    let port = defaultPort;
    if (portText !== undefined) {
      port = /^\d+$/.test(portText) ? Number(portText) : NaN;
      if (!Number.isInteger(port) || port < 1 || port > 65_535) {
        rule("OPTION_INVALID_VALUE", `Option 'host' has the invalid port in '${item}': expected a port from 1 to 65535.`, { option: "host", value: item });
      }
    }
    points.push({ host, port });
  }
  if (points.length === 0) rule("OPTION_INVALID_VALUE", "Option 'host' names no contact point: expected e.g. '127.0.0.1' or 'node1,node2'.", { option: "host", value: raw });
  return points;
}

/** Parses and cross-checks options for one operation; every rule names the options at fault. */
export function parseCassandraOptions(raw: Record<string, string>, operation: Operation): CassandraOptions {
  const parsed = cassandraOptions.parse(raw, operation);
  const contactPoints = parseContactPoints(parsed.host, parsed.port);

  if ((parsed.username === undefined) !== (parsed.password === undefined)) {
    const [present, missing] = parsed.username !== undefined ? ["username", "password"] : ["password", "username"];
    rule("OPTION_CONFLICT", `Option '${present}' is set but '${missing}' is not: password authentication needs both (or neither, for a cluster without authentication).`, {
      option: missing,
    });
  }
  if (parsed.ssl_ca_cert !== undefined && !parsed.ssl_enabled) {
    rule("OPTION_CONFLICT", "Option 'ssl_ca_cert' is set but 'ssl_enabled' is not true: set .option(\"ssl_enabled\", \"true\") to connect with TLS, or remove 'ssl_ca_cert'.", {
      option: "ssl_enabled",
    });
  }
  // A streaming read's mark must not pass a row a lagging replica has not got yet: read at the writes' default level.
  const streaming = operation === "read" && parsed.starting_position !== undefined;
  const consistency = parsed.consistency ?? (operation === "write" || streaming ? DEFAULT_WRITE_CONSISTENCY : DEFAULT_READ_CONSISTENCY);
  if (operation === "write" && (consistency === "SERIAL" || consistency === "LOCAL_SERIAL")) {
    rule("OPTION_INVALID_VALUE", `Option 'consistency' is ${consistency}, which only applies to reads (and to the Paxos phase of lightweight transactions). For writes use e.g. LOCAL_QUORUM or QUORUM.`, {
      option: "consistency",
      value: consistency,
    });
  }
  if (operation === "read" && consistency === "ANY") {
    rule("OPTION_INVALID_VALUE", "Option 'consistency' is ANY, which only applies to writes. For reads use e.g. LOCAL_ONE, ONE or LOCAL_QUORUM.", { option: "consistency", value: consistency });
  }
  if (operation === "write" && (parsed.delete_flag_column === undefined) !== (parsed.delete_flag_value === undefined)) {
    const [present, missing] = parsed.delete_flag_column !== undefined ? ["delete_flag_column", "delete_flag_value"] : ["delete_flag_value", "delete_flag_column"];
    rule("OPTION_CONFLICT", `Option '${present}' needs '${missing}': rows are deleted when the value of 'delete_flag_column' equals 'delete_flag_value'. Set both, or neither.`, {
      option: missing,
    });
  }
  if (operation === "read" && parsed.filter !== undefined) {
    const filter = parsed.filter.trim();
    if (/^where\b/i.test(filter)) {
      rule("OPTION_INVALID_VALUE", `Option 'filter' starts with WHERE: give only the conditions, e.g. "age > 30", which are added to the read query with AND.`, {
        option: "filter",
        value: parsed.filter,
      });
    }
    if (/;/.test(filter.replace(/'(?:[^']|'')*'/g, "''"))) {
      rule("OPTION_INVALID_VALUE", "Option 'filter' contains ';': give only WHERE conditions, not statements.", { option: "filter", value: parsed.filter });
    }
    if (/\ballow\s+filtering\s*$/i.test(filter)) {
      rule("OPTION_INVALID_VALUE", "Option 'filter' ends with ALLOW FILTERING: remove it there and set .option(\"allow_filtering\", \"true\") instead.", {
        option: "filter",
        value: parsed.filter,
      });
    }
  }
  return { ...parsed, consistency, contactPoints };
}
