/** Fixtures shared by the Cassandra stream unit tests (stream.test.ts, stream-planning.test.ts). */
import cassandra from "cassandra-driver";
import { silentLogger } from "../../core/logger.js";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import type { CassandraApi, IndexDef, TableDef } from "./client.js";
import { parseCassandraOptions, type CassandraOptions } from "./options.js";
import {
  resolveStreamSpec,
  type StreamContext,
  type StreamOffset,
  type StreamSpec,
} from "./stream.js";
import { FakeCassandra } from "./test-fakes.js";
import { scalar, type CqlType } from "./types.js";

/** The fake "now" of the service: 2026-03-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 2, 1);
export const LAG = 5_000;
export const MIN_BIGINT = -(1n << 63n);
export const MAX_BIGINT = (1n << 63n) - 1n;
export const MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner";
export const micros = (ms: number) => BigInt(ms) * 1000n;

export const base = { host: "127.0.0.1", keyspace: "ks", table: "events" };

/** Streaming read options as the connector parses them (starting_position makes the read a stream). */
export function streamOptions(extra: Record<string, string> = {}): CassandraOptions {
  return parseCassandraOptions({ ...base, starting_position: "earliest", stream_lag_ms: String(LAG), ...extra }, "read");
}

export const sai = (target: string, className = "org.apache.cassandra.index.sai.StorageAttachedIndex"): IndexDef => ({ name: `${target}_idx`, target, className });

export function tableDef(columns: Array<[string, CqlType]>, partitionKeys: string[], clusteringKeys: string[] = [], indexes?: IndexDef[]): TableDef {
  return {
    keyspace: "ks",
    name: "events",
    partitionKeys,
    clusteringKeys,
    columns: columns.map(([name, type]) => ({ name, type })),
    virtual: false,
    ...(indexes ? { indexes } : {}),
  };
}

export function streamContext(api: CassandraApi, clock: FakeClock): StreamContext {
  return { api, config: { contactPoints: [{ host: "127.0.0.1", port: 9042 }], tls: undefined }, username: undefined, logger: silentLogger, signal: new AbortController().signal, clock };
}

/**
 * A fake ks.events (id int PRIMARY KEY, ts timestamp, n bigint, at timeuuid, v text) with
 * SAI indexes on ts, n and at, and the stream of `extra`'s options over it.
 */
export function eventsStream(extra: Record<string, string>, indexes: IndexDef[] = [sai("ts"), sai("n"), sai("at")]) {
  const api = new FakeCassandra();
  const table = api.addTable(
    "ks",
    "events",
    [
      ["id", scalar("int")],
      ["ts", scalar("timestamp")],
      ["n", scalar("bigint")],
      ["at", scalar("timeuuid")],
      ["v", scalar("text")],
    ],
    ["id"],
  );
  table.def.indexes = indexes;
  const clock = new FakeClock();
  clock.time = T0;
  const options = streamOptions(extra);
  const spec = resolveStreamSpec(table.def, options);
  return { api, clock, ctx: streamContext(api, clock), options, spec };
}

export function offsetOf(spec: StreamSpec, mark: bigint | null, rows = 0): StreamOffset {
  return { table: spec.table, mode: spec.mode, ...(spec.column !== undefined ? { column: spec.column } : {}), type: spec.type, mark, rows };
}

export const noLimits = { maxRows: undefined, bound: undefined };
export const timeuuidAt = (ms: number, ticks = 0) => cassandra.types.TimeUuid.fromDate(new Date(ms), ticks, "node01", "cl");
