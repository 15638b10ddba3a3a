import { describe, expect, it } from "vitest";
import { Binary, Field, Int32, Int64, Schema, TimestampMicrosecond, Utf8, type DataType } from "apache-arrow";
import { silentLogger } from "../../core/logger.js";
import { decodeDescriptor } from "../../core/descriptor.js";
import { rejection } from "../../../tests/support/conduit-error.js";
import { parseCassandraOptions } from "./options.js";
import {
  columnsInSelectOrder,
  decodeReadPartition,
  decodeWritePlan,
  describeSource,
  estimatedBytes,
  MURMUR3_BOUNDS,
  partitionCount,
  planReadPartitions,
  planWriteTarget,
  RANDOM_BOUNDS,
  splitRing,
  type PlanContext,
  type ReadPartition,
  type TokenBounds,
  type WritePlan,
} from "./planner.js";
import { FakeCassandra, responseError } from "./test-fakes.js";
import { scalar, type CqlType } from "./types.js";
import cassandra from "cassandra-driver";
import { seededRandom } from "../../../tests/support/seeded-random.js";

const codes = cassandra.types.responseErrorCodes;

/** Deterministic PRNG (mulberry32) so a failing ring can be reproduced. */

function randomToken(random: () => number, bounds: TokenBounds): bigint {
  const width = bounds.max - bounds.min;
  let value = 0n;
  for (let i = 0; i < 5; i++) value = (value << 32n) | BigInt(Math.floor(random() * 2 ** 32));
  return bounds.min + (value % (width + 1n));
}

/** Asserts the groups' ranges tile (min, max] exactly: sorted, each starts where the previous ended. */
function expectExactCover(groups: Array<Array<[bigint, bigint]>>, bounds: TokenBounds): void {
  const ranges = groups.flat().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  expect(ranges.length).toBeGreaterThan(0);
  expect(ranges[0]![0]).toBe(bounds.min);
  expect(ranges.at(-1)![1]).toBe(bounds.max);
  for (let i = 0; i < ranges.length; i++) {
    expect(ranges[i]![0] < ranges[i]![1]).toBe(true);
    if (i > 0) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
  }
}

/** The partition holding a token: exactly one range of all groups contains it. */
function owners(groups: Array<Array<[bigint, bigint]>>, token: bigint): number[] {
  const found: number[] = [];
  groups.forEach((g, i) => g.forEach(([s, e]) => token > s && token <= e && found.push(i)));
  return found;
}

describe("splitRing", () => {
  it("covers the ring exactly once for random rings, partition counts and both partitioners", () => {
    const random = seededRandom(42);
    for (let trial = 0; trial < 300; trial++) {
      const bounds = trial % 3 === 0 ? RANDOM_BOUNDS : MURMUR3_BOUNDS;
      const tokenCount = Math.floor(random() * 200);
      const tokens = Array.from({ length: tokenCount }, () => randomToken(random, bounds));
      if (trial % 7 === 0 && tokens.length > 0) tokens.push(tokens[0]!, bounds.min, bounds.max); // duplicates and the extremes
      const partitions = 1 + Math.floor(random() * 40);
      const groups = splitRing(tokens, bounds, partitions);
      expect(groups).toHaveLength(partitions);
      expectExactCover(groups, bounds);
      // No range crosses a node token: each node token is the end of some range (or the minimum).
      for (const t of tokens) {
        if (t <= bounds.min || t >= bounds.max) continue;
        expect(groups.flat().some(([s, e]) => s < t && t < e)).toBe(false);
      }
      for (let probe = 0; probe < 20; probe++) expect(owners(groups, randomToken(random, bounds) === bounds.min ? bounds.max : randomToken(random, bounds))).toHaveLength(1);
    }
  });

  it("reads the wrap-around range as (last token, max] and (min, first token]", () => {
    const tokens = [-100n, 0n, 100n];
    const groups = splitRing(tokens, MURMUR3_BOUNDS, 1);
    expect(groups).toEqual([
      [
        [MURMUR3_BOUNDS.min, -100n],
        [-100n, 0n],
        [0n, 100n],
        [100n, MURMUR3_BOUNDS.max],
      ],
    ]);
    // The tokens next to the ring's ends belong to the wrap-around pieces.
    expect(owners(groups, MURMUR3_BOUNDS.max)).toEqual([0]);
    expect(owners(groups, MURMUR3_BOUNDS.min + 1n)).toEqual([0]);
  });

  it("splits into groups of equal token width", () => {
    const groups = splitRing([], MURMUR3_BOUNDS, 4);
    const widths = groups.map((g) => g.reduce((sum, [s, e]) => sum + (e - s), 0n));
    const quarter = (MURMUR3_BOUNDS.max - MURMUR3_BOUNDS.min) / 4n;
    for (const w of widths) expect(w - quarter <= 1n && quarter - w <= 1n).toBe(true);
    expect(groups.map((g) => g.length)).toEqual([1, 1, 1, 1]);
  });

  it("handles a single-token ring and one partition", () => {
    expectExactCover(splitRing([42n], MURMUR3_BOUNDS, 1), MURMUR3_BOUNDS);
    expect(splitRing([42n], MURMUR3_BOUNDS, 1)[0]).toEqual([
      [MURMUR3_BOUNDS.min, 42n],
      [42n, MURMUR3_BOUNDS.max],
    ]);
    expect(splitRing([], MURMUR3_BOUNDS, 1)).toEqual([[[MURMUR3_BOUNDS.min, MURMUR3_BOUNDS.max]]]);
  });
});

describe("partition count", () => {
  it("sums size estimates", () => {
    expect(
      estimatedBytes([
        { partitionsCount: 10n, meanPartitionSize: 100n },
        { partitionsCount: 5n, meanPartitionSize: 0n },
        { partitionsCount: 3n, meanPartitionSize: 1000n },
      ]),
    ).toBe(4000n);
  });

  it("uses read_partitions, else size / split size, at least 1 + 2 x nodes", () => {
    const mb = 1024n * 1024n;
    expect(partitionCount({ read_partitions: 7, split_size_mb: 64 }, 10_000n * mb, 3)).toBe(7);
    expect(partitionCount({ read_partitions: undefined, split_size_mb: 64 }, 640n * mb, 1)).toBe(10);
    expect(partitionCount({ read_partitions: undefined, split_size_mb: 64 }, 641n * mb, 1)).toBe(11);
    expect(partitionCount({ read_partitions: undefined, split_size_mb: 64 }, 0n, 1)).toBe(3);
    expect(partitionCount({ read_partitions: undefined, split_size_mb: 64 }, 64n * mb, 4)).toBe(9);
  });
});

const KS = "ks";
const columns: Array<[string, CqlType]> = [
  ["zeta", scalar("text")],
  ["id", scalar("uuid")],
  ["name", scalar("text")],
  ["ts", scalar("timestamp")],
  ["age", scalar("int")],
  ["region", scalar("text")],
  ["shared", scalar("text")],
];

function setup() {
  const api = new FakeCassandra();
  api.addTable(KS, "users", columns, ["region", "id"], ["ts"], ["shared"]);
  api.addTable(KS, "simple", [["id", scalar("text")], ["n", scalar("int")]], ["id"]);
  api.addTable(KS, "hits", [["id", scalar("text")], ["hits", scalar("counter")]], ["id"]);
  const ctx: PlanContext = {
    api,
    config: { contactPoints: [{ host: "127.0.0.1", port: 9042 }], tls: undefined },
    username: undefined,
    logger: silentLogger,
    signal: new AbortController().signal,
  };
  return { api, ctx };
}

const readOptions = (extra: Record<string, string> = {}) => parseCassandraOptions({ host: "127.0.0.1", keyspace: KS, table: "users", ...extra }, "read");
const writeOptions = (extra: Record<string, string> = {}) => parseCassandraOptions({ host: "127.0.0.1", keyspace: KS, table: "users", ...extra }, "write");
const schemaOf = (...fields: Array<[string, DataType]>) => new Schema(fields.map(([n, t]) => new Field(n, t, true)));

describe("describeSource", () => {
  it("reports the table's columns in SELECT * order", async () => {
    const { ctx, api } = setup();
    expect(columnsInSelectOrder(api.tables.get("ks.users")!.def).map((c) => c.name)).toEqual(["region", "id", "ts", "shared", "age", "name", "zeta"]);
    const { schema, warnings } = await describeSource(ctx, readOptions(), undefined);
    expect(schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
      "region:Utf8",
      "id:Utf8",
      "ts:Timestamp<MICROSECOND, UTC>",
      "shared:Utf8",
      "age:Int32",
      "name:Utf8",
      "zeta:Utf8",
    ]);
    expect(warnings).toEqual([]);
  });

  it("leaves out columns of unsupported types with a warning", async () => {
    const { ctx, api } = setup();
    api.addTable(KS, "odd", [["id", scalar("text")], ["x", { kind: "unsupported", name: "org.example.Custom" }]], ["id"]);
    const { schema, warnings } = await describeSource(ctx, readOptions({ table: "odd" }), undefined);
    expect(schema.fields.map((f) => f.name)).toEqual(["id"]);
    expect(warnings[0]).toContain("org.example.Custom");
  });

  it("checks a user schema against the table", async () => {
    const { ctx } = setup();
    const user = schemaOf(["id", new Utf8()], ["age", new Int64()]);
    expect((await describeSource(ctx, readOptions(), user)).schema).toBe(user);
    const unknown = await rejection(describeSource(ctx, readOptions(), schemaOf(["agee", new Int32()])));
    expect(unknown.errorClass).toBe("COLUMN_UNKNOWN");
    expect(unknown.parameters.suggestion).toBe("age");
    const mismatch = await rejection(describeSource(ctx, readOptions(), schemaOf(["age", new Binary()])));
    expect(mismatch.errorClass).toBe("COLUMN_TYPE_MISMATCH");
  });

  it("names a missing keyspace or table with a did-you-mean", async () => {
    const { ctx } = setup();
    const keyspace = await rejection(describeSource(ctx, readOptions({ keyspace: "kz" }), undefined));
    expect(keyspace.code).toBe("NOT_FOUND");
    expect(keyspace.errorClass).toBe("KEYSPACE_NOT_FOUND");
    expect(keyspace.message).toContain("Did you mean 'ks'?");
    const table = await rejection(describeSource(ctx, readOptions({ table: "user" }), undefined));
    expect(table.errorClass).toBe("TABLE_NOT_FOUND");
    expect(table.parameters).toMatchObject({ option: "table", suggestion: "users" });
    expect(table.message).toContain("127.0.0.1:9042");
  });
});

describe("planReadPartitions", () => {
  it("checks the query on an empty range, then splits the ring", async () => {
    const { ctx, api } = setup();
    api.tokens = ["-3", "5", "9000"];
    const schema = schemaOf(["id", new Utf8()], ["age", new Int32()]);
    const partitions = await planReadPartitions(ctx, readOptions({ read_partitions: "4", filter: "age > 3", allow_filtering: "true" }), schema);
    expect(partitions).toHaveLength(4);
    expect(api.executes).toHaveLength(1);
    expect(api.executes[0]!.query).toBe(
      'SELECT "id", "age" FROM "ks"."users" WHERE token("region", "id") > ? AND token("region", "id") <= ? AND age > 3 ALLOW FILTERING',
    );
    expect(api.executes[0]!.params).toEqual([0n, 0n]);
    expect(api.executes[0]!.options.consistency).toBe("LOCAL_ONE");
    const decoded = partitions.map(decodeReadPartition);
    expect(decoded.every((p) => p.partitionKey.join() === "region,id")).toBe(true);
    expectExactCover(
      decoded.map((p) => p.ranges.map(([s, e]): [bigint, bigint] => [BigInt(s), BigInt(e)])),
      MURMUR3_BOUNDS,
    );
    const raw = decodeDescriptor<ReadPartition & { kind: string }>("cassandra-token-ranges", partitions[0]!);
    // Four partitions of equal width: the first ends at the first quarter of the ring.
    expect(raw.ranges[0]).toEqual(["-9223372036854775808", "-4611686018427387905"]);
    expect(decoded[1]!.ranges).toEqual([
      ["-4611686018427387905", "-3"],
      ["-3", "-1"],
    ]);
  });

  it("sizes the split from size estimates, at least 1 + 2 x nodes", async () => {
    const { ctx, api } = setup();
    api.nodes = 2;
    expect(await planReadPartitions(ctx, readOptions(), schemaOf(["id", new Utf8()]))).toHaveLength(5);
    api.estimates = [{ rangeStart: "0", rangeEnd: "1", partitionsCount: 1000n, meanPartitionSize: 1024n * 1024n }];
    expect(await planReadPartitions(ctx, readOptions({ split_size_mb: "100" }), schemaOf(["id", new Utf8()]))).toHaveLength(10);
  });

  it("translates a bad filter into an error naming the option", async () => {
    const { ctx, api } = setup();
    api.fail = () => {
      throw responseError(codes.syntaxError, "line 1:84 no viable alternative at input '>'");
    };
    const error = await rejection(planReadPartitions(ctx, readOptions({ filter: "age >> 3" }), schemaOf(["id", new Utf8()])));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.errorClass).toBe("FILTER_INVALID");
    expect(error.parameters.option).toBe("filter");
    expect(error.message).toContain("age >> 3");
  });

  it("reads in one partition without token restriction for partitioners without numeric tokens", async () => {
    const { ctx, api } = setup();
    api.partitioner = "org.apache.cassandra.dht.ByteOrderedPartitioner";
    const partitions = await planReadPartitions(ctx, readOptions(), schemaOf());
    expect(partitions.map(decodeReadPartition)).toEqual([{ partitionKey: ["region", "id"], ranges: [], whole: true }]);
    expect(api.executes[0]!.query).toBe('SELECT "region" FROM "ks"."users"');
  });

  it("rejects malformed descriptors", () => {
    const encode = (body: object) => new TextEncoder().encode(JSON.stringify({ kind: "cassandra-token-ranges", v: 1, ...body }));
    for (const body of [{ partitionKey: ["id"], ranges: [["5", "1"]] }, { partitionKey: [], ranges: [["1", "5"]] }, { partitionKey: ["id"], ranges: [] }, { partitionKey: ["id"], ranges: [["a", "5"]] }]) {
      expect(() => decodeReadPartition(encode(body))).toThrow(/malformed/);
    }
  });
});

describe("planWriteTarget", () => {
  const full = schemaOf(["id", new Utf8()], ["region", new Utf8()], ["ts", new Int64()], ["age", new Int32()]);

  it("checks that every column converts, naming column, DataFrame type and CQL type", async () => {
    const { ctx } = setup();
    const schema = schemaOf(["region", new Utf8()], ["id", new Utf8()], ["ts", new Utf8()], ["age", new Int64()]);
    const error = await rejection(planWriteTarget(ctx, writeOptions(), schema, false, false));
    expect(error.errorClass).toBe("COLUMN_TYPE_MISMATCH");
    expect(error.parameters).toMatchObject({ column: "ts", type: "string", cqlType: "timestamp" });
    const flagged = schemaOf(["region", new Utf8()], ["id", new Utf8()], ["ts", new Int64()], ["is_deleted", new Utf8()]);
    const other = await rejection(planWriteTarget(ctx, writeOptions({ delete_flag_column: "is_deleted", delete_flag_value: "yes" }), flagged, false, false));
    expect(other.parameters).toMatchObject({ column: "ts", type: "bigint", cqlType: "timestamp" });
  });

  it("plans a write with a delete flag", async () => {
    const { ctx } = setup();
    const schema = new Schema([
      new Field("name", new Utf8()),
      new Field("region", new Utf8()),
      new Field("id", new Utf8()),
      new Field("ts", new TimestampMicrosecond("UTC")),
      new Field("gone", new Utf8()),
    ]);
    const bytes = await planWriteTarget(ctx, writeOptions({ delete_flag_column: "gone", delete_flag_value: "Y" }), schema, false, false);
    const plan: WritePlan = decodeWritePlan(bytes);
    expect(plan).toMatchObject({
      keyspace: KS,
      table: "users",
      partitionKey: ["region", "id"],
      clusteringKey: ["ts"],
      columns: [
        { name: "name", type: scalar("text") },
        { name: "region", type: scalar("text") },
        { name: "id", type: scalar("uuid") },
        { name: "ts", type: scalar("timestamp") },
      ],
      deleteFlag: { column: "gone", value: "Y" },
    });
  });

  it("names every missing primary-key column and the columns present", async () => {
    const { ctx } = setup();
    const error = await rejection(planWriteTarget(ctx, writeOptions(), schemaOf(["Id", new Utf8()], ["age", new Int32()]), false, false));
    expect(error.errorClass).toBe("KEY_COLUMN_MISSING");
    expect(error.parameters).toMatchObject({ columns: "region, id, ts", present: "Id, age" });
    expect(error.message).toContain("'Id' for 'id'?");
  });

  it("rejects DataFrame columns the table lacks, with a did-you-mean", async () => {
    const { ctx } = setup();
    const error = await rejection(planWriteTarget(ctx, writeOptions({ table: "simple" }), schemaOf(["id", new Utf8()], ["nn", new Int32()]), false, false));
    expect(error.errorClass).toBe("COLUMN_UNKNOWN");
    expect(error.parameters).toMatchObject({ column: "nn", suggestion: "n" });
  });

  it("checks the delete flag column", async () => {
    const { ctx } = setup();
    const missing = await rejection(planWriteTarget(ctx, writeOptions({ table: "simple", delete_flag_column: "deleted", delete_flag_value: "true" }), schemaOf(["id", new Utf8()]), false, false));
    expect(missing.errorClass).toBe("DELETE_FLAG_COLUMN_MISSING");
    const key = await rejection(planWriteTarget(ctx, writeOptions({ table: "simple", delete_flag_column: "id", delete_flag_value: "x" }), schemaOf(["id", new Utf8()]), false, false));
    expect(key.errorClass).toBe("DELETE_FLAG_COLUMN_IS_KEY");
  });

  it("refuses an unconfirmed overwrite before touching the table, and truncates a confirmed one", async () => {
    const { ctx, api } = setup();
    api.put(KS, "simple", { id: "old", n: 1 });
    const refused = await rejection(planWriteTarget(ctx, writeOptions({ table: "simple" }), schemaOf(["id", new Utf8()]), true, false));
    expect(refused.code).toBe("FAILED_PRECONDITION");
    expect(refused.errorClass).toBe("OVERWRITE_NOT_CONFIRMED");
    expect(refused.parameters.option).toBe("confirm_truncate");
    expect(api.rowsOf(KS, "simple")).toHaveLength(1);
    expect(api.executes).toHaveLength(0);

    await planWriteTarget(ctx, writeOptions({ table: "simple", confirm_truncate: "true" }), schemaOf(["id", new Utf8()]), true, false);
    expect(api.executes.map((e) => e.query)).toEqual(['TRUNCATE "ks"."simple"']);
    expect(api.rowsOf(KS, "simple")).toHaveLength(0);

    const streaming = await rejection(planWriteTarget(ctx, writeOptions({ table: "simple", confirm_truncate: "true" }), schemaOf(["id", new Utf8()]), true, true));
    expect(streaming.errorClass).toBe("STREAMING_OVERWRITE_UNSUPPORTED");
  });

  it("does not truncate when validation fails", async () => {
    const { ctx, api } = setup();
    await rejection(planWriteTarget(ctx, writeOptions({ confirm_truncate: "true" }), full.select(["id"]), true, false));
    expect(api.executes).toHaveLength(0);
  });

  it("refuses counter tables", async () => {
    const { ctx } = setup();
    const error = await rejection(planWriteTarget(ctx, writeOptions({ table: "hits" }), schemaOf(["id", new Utf8()], ["hits", new Int64()]), false, false));
    expect(error.errorClass).toBe("COUNTER_TABLE_UNSUPPORTED");
  });

  it("names a missing table with a did-you-mean", async () => {
    const { ctx } = setup();
    const error = await rejection(planWriteTarget(ctx, writeOptions({ table: "simpel" }), schemaOf(["id", new Utf8()]), false, false));
    expect(error.errorClass).toBe("TABLE_NOT_FOUND");
    expect(error.parameters.suggestion).toBe("simple");
  });
});
