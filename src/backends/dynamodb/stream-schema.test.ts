import { describe, expect, it } from "vitest";
import { thrown } from "../../../tests/support/conduit-error.js";
import {
  Binary,
  Bool,
  Decimal,
  Field,
  Float64,
  Int32,
  Int64,
  LargeUtf8,
  Null,
  List,
  Map_,
  Schema,
  Struct,
  TimestampMicrosecond,
  Type,
  Utf8,
  type DataType,
  type RecordBatch,
} from "apache-arrow";
import { decodeBatches, encodeBatch } from "../../arrow/ipc.js";
import { DecimalValue, readValue, type PlainValue } from "../../arrow/values.js";
import type { ChangeRecord } from "./stream.js";
import { CHANGE_COLUMNS, ChangeBatchBuilder, changeEventSchema, checkChangeEventSchema } from "./stream-schema.js";
import { fakeSeq } from "./test-fakes.js";
import type { Item } from "./types.js";

const list = (t: DataType) => new List(new Field("element", t, true));
const mapOf = (t: DataType) => new Map_(new Field("entries", new Struct<{ key: Utf8; value: DataType }>([new Field("key", new Utf8(), false), new Field("value", t, true)]), false));
const struct = (fields: Record<string, DataType>) => new Struct(Object.entries(fields).map(([n, t]) => new Field(n, t, true)) as Field[]);

/** Every DynamoDB type an image can hold, typed as a batch read types it. */
const itemSchema = new Schema([
  new Field("pk", new Utf8(), true),
  new Field("sk", new Int64(), true),
  new Field("s", new Utf8(), true),
  new Field("n_long", new Int64(), true),
  new Field("n_double", new Float64(), true),
  new Field("n_decimal", new Decimal(4, 30, 128), true),
  new Field("flag", new Bool(), true),
  new Field("blob", new Binary(), true),
  new Field("list", list(new Float64()), true),
  new Field("string_set", list(new Utf8()), true),
  new Field("number_set", list(new Int64()), true),
  new Field("binary_set", list(new Binary()), true),
  new Field("attrs", mapOf(new Int64()), true),
  new Field("nested", struct({ name: new Utf8(), inner: struct({ x: new Int64(), ys: list(new Utf8()) }) }), true),
  new Field("nothing", new Utf8(), true),
  new Field("when", new TimestampMicrosecond("UTC"), true),
]);

const bytes = (...b: number[]) => new Uint8Array(b);

const fullImage: Item = {
  pk: { S: "user#1" },
  sk: { N: "9007199254740993" },
  s: { S: "héllo" },
  n_long: { N: "-42" },
  n_double: { N: "0.1" },
  n_decimal: { N: "12345678901234567890.1234" },
  flag: { BOOL: true },
  blob: { B: bytes(0, 1, 255) },
  list: { L: [{ N: "1.5" }, { NULL: true }, { N: "-2" }] },
  string_set: { SS: ["a", "b"] },
  number_set: { NS: ["1", "12345678901234"] },
  binary_set: { BS: [bytes(1), bytes(2, 3)] },
  attrs: { M: { x: { N: "1" }, y: { N: "2" } } },
  nested: { M: { name: { S: "n" }, inner: { M: { x: { N: "7" }, ys: { L: [{ S: "p" }, { S: "q" }] } } } } },
  nothing: { NULL: true },
  when: { S: "2026-01-02T03:04:05.123456Z" },
};

const keys: Item = { pk: { S: "user#1" }, sk: { N: "9007199254740993" } };
const created = new Date("2026-01-02T03:04:00Z");

const records: ChangeRecord[] = [
  { eventName: "INSERT", eventId: "e1", shardId: "s1", sequenceNumber: fakeSeq(1), approximateCreationTime: created, keys, newImage: fullImage, oldImage: null },
  {
    eventName: "MODIFY",
    eventId: "e2",
    shardId: "s1",
    sequenceNumber: fakeSeq(2),
    approximateCreationTime: null,
    keys,
    newImage: { ...keys, n_long: { N: "43" } },
    oldImage: fullImage,
  },
  { eventName: "REMOVE", eventId: "e3", shardId: "s1", sequenceNumber: fakeSeq(3), approximateCreationTime: created, keys, newImage: null, oldImage: { ...keys, n_long: { N: "43" } } },
];

/** A batch through Arrow IPC, as it crosses to Python. */
function roundTrip(batch: RecordBatch, schema: Schema): RecordBatch {
  const [decoded, ...rest] = decodeBatches(encodeBatch(batch), schema);
  expect(rest).toHaveLength(0);
  return decoded!;
}

function rows(batch: RecordBatch): Record<string, PlainValue>[] {
  return Array.from({ length: batch.numRows }, (_, r) => Object.fromEntries(batch.schema.fields.map((f, c) => [f.name, readValue(batch.getChildAt(c)!, r)])));
}

const errorOf = thrown;

describe("changeEventSchema", () => {
  it("has the event columns, keys typed from the item schema, and nullable images of every item column", () => {
    const schema = changeEventSchema(itemSchema, ["pk", "sk"]);
    expect(schema.fields.map((f) => f.name)).toEqual([...CHANGE_COLUMNS]);
    const byName = Object.fromEntries(schema.fields.map((f) => [f.name, f]));
    for (const name of ["event_name", "event_id", "shard_id", "sequence_number"]) expect(byName[name]).toMatchObject({ nullable: false, type: { typeId: Type.Utf8 } });
    expect(byName.approximate_creation_time!.type).toBeInstanceOf(TimestampMicrosecond);
    expect((byName.approximate_creation_time!.type as TimestampMicrosecond).timezone).toBe("UTC");
    const keyFields = (byName.keys!.type as Struct).children;
    expect(byName.keys!.nullable).toBe(false);
    expect(keyFields.map((f) => [f.name, f.type.typeId, f.nullable])).toEqual([
      ["pk", Type.Utf8, false],
      ["sk", Type.Int, false],
    ]);
    for (const image of ["new_image", "old_image"]) {
      expect(byName[image]!.nullable).toBe(true);
      const children = (byName[image]!.type as Struct).children;
      expect(children.map((f) => f.name)).toEqual(itemSchema.fields.map((f) => f.name));
      expect(children.every((f) => f.nullable)).toBe(true);
      expect(children.map((f) => String(f.type))).toEqual(itemSchema.fields.map((f) => String(f.type)));
    }
    expect(() => checkChangeEventSchema(schema)).not.toThrow();
  });

  it("types a key the item schema lacks as a string", () => {
    const schema = changeEventSchema(new Schema([new Field("other", new Int64(), true)]), ["id"]);
    const keyFields = (schema.fields.find((f) => f.name === "keys")!.type as Struct).children;
    expect(keyFields.map((f) => [f.name, f.type.typeId])).toEqual([["id", Type.Utf8]]);
  });
});

describe("checkChangeEventSchema", () => {
  it("accepts any subset of the event columns in any order, and large strings", () => {
    expect(() => checkChangeEventSchema(new Schema([]))).not.toThrow();
    expect(() =>
      checkChangeEventSchema(new Schema([new Field("sequence_number", new LargeUtf8()), new Field("new_image", struct({ a: new Int64() })), new Field("event_name", new Utf8())])),
    ).not.toThrow();
  });

  it.each([
    ["an item-shaped schema", [new Field("pk", new Utf8()), new Field("name", new Utf8())], "pk", "look like an item's"],
    ["an unknown column", [new Field("event_name", new Utf8()), new Field("extra", new Utf8())], "extra", "not a change event column"],
    ["a number event_id", [new Field("event_id", new Int64())], "event_id", "must be a string"],
    ["a string creation time", [new Field("approximate_creation_time", new Utf8())], "approximate_creation_time", "must be a timestamp"],
    ["keys that are not a struct", [new Field("keys", new Utf8())], "keys", "must be a struct"],
    ["an old_image that is a map", [new Field("old_image", mapOf(new Utf8()))], "old_image", "must be a struct"],
  ])("refuses %s, naming the column", (_what, fields, column, fragment) => {
    const error = errorOf(() => checkChangeEventSchema(new Schema(fields)));
    expect(error.errorClass).toBe("STREAM_SCHEMA_INVALID");
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.parameters.column).toBe(column);
    expect(error.message).toContain(column);
    expect(error.message).toContain(fragment);
    expect(error.message).toContain("dynamodb_change_schema");
  });

  it("refuses an image attribute of a type a read cannot produce, naming it inside the image", () => {
    const error = errorOf(() => checkChangeEventSchema(new Schema([new Field("new_image", struct({ ok: new Utf8(), bad: new Null() }))])));
    expect(error.errorClass).toBe("UNSUPPORTED_COLUMN_TYPE");
    expect(error.parameters.column).toBe("new_image.bad");
  });
});

describe("ChangeBatchBuilder", () => {
  const schema = changeEventSchema(itemSchema, ["pk", "sk"]);

  function build(target: Schema, input: ChangeRecord[]): Record<string, PlainValue>[] {
    const builder = new ChangeBatchBuilder(target);
    for (const record of input) builder.append(record);
    expect(builder.length).toBe(input.length);
    const batch = roundTrip(builder.flush(), target);
    expect(builder.length).toBe(0);
    expect(batch.schema.fields.map((f) => f.name)).toEqual(target.fields.map((f) => f.name));
    return rows(batch);
  }

  it("round-trips every DynamoDB type of the images through Arrow IPC", () => {
    const [insert, modify, remove] = build(schema, records);
    expect(insert).toMatchObject({ event_name: "INSERT", event_id: "e1", shard_id: "s1", sequence_number: fakeSeq(1), old_image: null });
    expect(insert!.keys).toEqual({ pk: "user#1", sk: 9007199254740993n });
    const image = insert!.new_image as Record<string, PlainValue>;
    expect(image).toEqual({
      pk: "user#1",
      sk: 9007199254740993n,
      s: "héllo",
      n_long: -42n,
      n_double: 0.1,
      n_decimal: expect.any(DecimalValue),
      flag: true,
      blob: bytes(0, 1, 255),
      list: [1.5, null, -2],
      string_set: ["a", "b"],
      number_set: [1n, 12345678901234n],
      binary_set: [bytes(1), bytes(2, 3)],
      attrs: [
        ["x", 1n],
        ["y", 2n],
      ],
      nested: { name: "n", inner: { x: 7n, ys: ["p", "q"] } },
      nothing: null,
      when: BigInt(Date.parse("2026-01-02T03:04:05.123Z")) * 1000n + 456n,
    });
    expect((image.n_decimal as DecimalValue).toString()).toBe("12345678901234567890.1234");

    // MODIFY: both images; attributes an image lacks are null.
    expect(modify).toMatchObject({ event_name: "MODIFY", approximate_creation_time: null });
    expect(modify!.new_image).toMatchObject({ pk: "user#1", n_long: 43n, s: null, flag: null, nested: null });
    expect(modify!.old_image).toEqual(image);
    // REMOVE: no new image.
    expect(remove).toMatchObject({ event_name: "REMOVE", new_image: null, keys: { pk: "user#1", sk: 9007199254740993n } });
    expect(remove!.old_image).toMatchObject({ n_long: 43n });
  });

  it("writes the creation time as UTC microseconds", () => {
    const [row] = build(schema, [records[0]!]);
    expect(row!.approximate_creation_time).toBe(BigInt(created.getTime()) * 1000n);
  });

  it("fills a subset of the columns in the schema's order, images with only the attributes asked for", () => {
    const subset = new Schema([
      new Field("new_image", struct({ n_long: new Int32(), pk: new Utf8() }), true),
      new Field("sequence_number", new Utf8(), false),
      new Field("event_name", new Utf8(), false),
    ]);
    checkChangeEventSchema(subset);
    expect(build(subset, records)).toEqual([
      { new_image: { n_long: -42, pk: "user#1" }, sequence_number: fakeSeq(1), event_name: "INSERT" },
      { new_image: { n_long: 43, pk: "user#1" }, sequence_number: fakeSeq(2), event_name: "MODIFY" },
      { new_image: null, sequence_number: fakeSeq(3), event_name: "REMOVE" },
    ]);
  });

  it("names the image attribute whose value does not fit its type", () => {
    const builder = new ChangeBatchBuilder(schema);
    const error = errorOf(() => builder.append({ ...records[0]!, newImage: { ...fullImage, n_long: { S: "many" } } }));
    expect(error.errorClass).toBe("TYPE_MISMATCH");
    expect(error.parameters.column).toBe("new_image.n_long");
  });
});
