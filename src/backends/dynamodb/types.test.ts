import { describe, expect, it } from "vitest";
import { thrown } from "../../../tests/support/conduit-error.js";
import {
  Binary,
  Bool,
  DataType,
  DateDay,
  Decimal,
  Field,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  Map_,
  Null,
  Schema,
  Struct,
  TimestampMicrosecond,
  Utf8,
  Interval,
  IntervalUnit,
} from "apache-arrow";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ConduitError } from "../../core/errors.js";
import { DecimalValue, readValue, type PlainValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { checkItemSize, MAX_ITEM_BYTES } from "./types.js";
import {
  attributeToPlain,
  checkReadSchema,
  checkWriteSchema,
  doubleText,
  float32Text,
  formatTimestamp,
  itemToRow,
  keyAttributeTypeOf,
  parseIsoTimestamp,
  plainToAttribute,
  SchemaInferrer,
} from "./types.js";

const utf8 = new Utf8();
const list = (t: DataType) => new List(new Field("element", t, true));
const mapOf = (t: DataType) => new Map_(new Field("entries", new Struct<{ key: Utf8; value: DataType }>([new Field("key", new Utf8(), false), new Field("value", t, true)]), false));
const struct = (fields: Record<string, DataType>) => new Struct(Object.entries(fields).map(([n, t]) => new Field(n, t, true)) as Field[]);

const errorOf = thrown;

describe("attributeToPlain (reads)", () => {
  it("reads scalars into their column types", () => {
    expect(attributeToPlain({ S: "hi" }, utf8, "c")).toBe("hi");
    expect(attributeToPlain({ N: "9223372036854775807" }, new Int64(), "c")).toBe(9223372036854775807n);
    expect(attributeToPlain({ N: "-2147483648" }, new Int32(), "c")).toBe(-2147483648);
    expect(attributeToPlain({ N: "32767" }, new Int16(), "c")).toBe(32767);
    expect(attributeToPlain({ N: "-128" }, new Int8(), "c")).toBe(-128);
    expect(attributeToPlain({ N: "0.1" }, new Float64(), "c")).toBe(0.1);
    expect(attributeToPlain({ N: "1.5" }, new Float32(), "c")).toBe(1.5);
    expect(attributeToPlain({ BOOL: false }, new Bool(), "c")).toBe(false);
    expect(attributeToPlain({ B: new Uint8Array([1, 2]) }, new Binary(), "c")).toEqual(new Uint8Array([1, 2]));
    expect(attributeToPlain({ NULL: true }, new Int32(), "c")).toBeNull();
    expect(attributeToPlain({ NULL: true }, utf8, "c")).toBeNull();
  });

  it("reads decimals exactly, with many digits", () => {
    const value = attributeToPlain({ N: "12345678901234567890.123456789012345678" }, new Decimal(18, 38, 128), "amount") as DecimalValue;
    expect(value).toBeInstanceOf(DecimalValue);
    expect(value.toString()).toBe("12345678901234567890.123456789012345678");
    expect((attributeToPlain({ N: "1.5" }, new Decimal(3, 10, 128), "c") as DecimalValue).toString()).toBe("1.500");
    expect((attributeToPlain({ N: "-0.001" }, new Decimal(3, 10, 128), "c") as DecimalValue).toString()).toBe("-0.001");
  });

  it("rejects decimals that do not fit, naming column and value", () => {
    const places = errorOf(() => attributeToPlain({ N: "1.2345" }, new Decimal(2, 10, 128), "price"));
    expect(places.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(places.message).toContain("'price'");
    expect(places.message).toContain("1.2345");
    const digits = errorOf(() => attributeToPlain({ N: "123456" }, new Decimal(2, 5, 128), "price"));
    expect(digits.errorClass).toBe("VALUE_OUT_OF_RANGE");
  });

  it("range-checks integers, naming column and value", () => {
    const e = errorOf(() => attributeToPlain({ N: "2147483648" }, new Int32(), "age"));
    expect(e.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("'age'");
    expect(e.message).toContain("2147483648");
    expect(e.parameters).toMatchObject({ column: "age", value: "2147483648", type: "int" });
    expect(errorOf(() => attributeToPlain({ N: "128" }, new Int8(), "c")).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(errorOf(() => attributeToPlain({ N: "-32769" }, new Int16(), "c")).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(errorOf(() => attributeToPlain({ N: "9223372036854775808" }, new Int64(), "c")).errorClass).toBe("VALUE_OUT_OF_RANGE");
    const fraction = errorOf(() => attributeToPlain({ N: "1.5" }, new Int64(), "qty"));
    expect(fraction.message).toContain("not a whole number");
  });

  it("rejects an attribute of another type with TYPE_MISMATCH", () => {
    const e = errorOf(() => attributeToPlain({ S: "abc" }, new Int64(), "age"));
    expect(e.errorClass).toBe("TYPE_MISMATCH");
    expect(e.message).toContain("'age'");
    expect(e.message).toContain("DynamoDB S");
    expect(errorOf(() => attributeToPlain({ N: "1" }, new Bool(), "b")).errorClass).toBe("TYPE_MISMATCH");
    expect(errorOf(() => attributeToPlain({ S: "x" }, struct({ a: utf8 }), "s")).errorClass).toBe("TYPE_MISMATCH");
  });

  it("coerces anything into a string column as JSON-like text", () => {
    expect(attributeToPlain({ N: "42.50" }, utf8, "c")).toBe("42.50");
    expect(attributeToPlain({ BOOL: true }, utf8, "c")).toBe("true");
    expect(attributeToPlain({ B: new Uint8Array([255, 0]) }, utf8, "c")).toBe("/wA=");
    expect(attributeToPlain({ SS: ["a", "b"] }, utf8, "c")).toBe('["a","b"]');
    expect(attributeToPlain({ NS: ["1", "2.5"] }, utf8, "c")).toBe("[1,2.5]");
    expect(
      attributeToPlain({ M: { z: { N: "1" }, a: { L: [{ S: "x" }, { NULL: true }, { BOOL: false }] } } }, utf8, "c"),
    ).toBe('{"a":["x",null,false],"z":1}');
  });

  it("reads lists, sets, maps and structs, nested, with nulls", () => {
    expect(attributeToPlain({ L: [{ N: "1" }, { NULL: true }, { N: "3" }] }, list(new Int64()), "c")).toEqual([1n, null, 3n]);
    expect(attributeToPlain({ SS: ["a", "b"] }, list(utf8), "c")).toEqual(["a", "b"]);
    expect(attributeToPlain({ NS: ["1.5", "2"] }, list(new Float64()), "c")).toEqual([1.5, 2]);
    expect(attributeToPlain({ BS: [new Uint8Array([1])] }, list(new Binary()), "c")).toEqual([new Uint8Array([1])]);
    expect(attributeToPlain({ M: { a: { N: "1" }, b: { NULL: true } } }, mapOf(new Int32()), "c")).toEqual([
      ["a", 1],
      ["b", null],
    ]);
    const nested = struct({ city: utf8, geo: struct({ lat: new Float64(), tags: list(utf8) }), zip: new Int32() });
    expect(attributeToPlain({ M: { city: { S: "Oslo" }, geo: { M: { lat: { N: "59.9" }, tags: { L: [{ S: "n" }] } } } } }, nested, "addr")).toEqual({
      city: "Oslo",
      geo: { lat: 59.9, tags: ["n"] },
      zip: null,
    });
    const e = errorOf(() => attributeToPlain({ M: { geo: { M: { lat: { S: "north" } } } } }, nested, "addr"));
    expect(e.message).toContain("'addr.geo.lat'");
  });

  it("reads dates and timestamps from ISO text and epoch seconds", () => {
    expect(attributeToPlain({ S: "2024-02-29" }, new DateDay(), "d")).toBe(19782);
    expect(attributeToPlain({ S: "2024-02-29T10:00:00Z" }, new DateDay(), "d")).toBe(19782);
    expect(attributeToPlain({ S: "2024-01-02T03:04:05.123456Z" }, new TimestampMicrosecond("UTC"), "t")).toBe(1704164645123456n);
    expect(attributeToPlain({ S: "2024-01-02T05:04:05.123456+02:00" }, new TimestampMicrosecond("UTC"), "t")).toBe(1704164645123456n);
    expect(attributeToPlain({ N: "1704164645.5" }, new TimestampMicrosecond("UTC"), "t")).toBe(1704164645500000n);
    expect(attributeToPlain({ N: "-1.5" }, new TimestampMicrosecond("UTC"), "t")).toBe(-1500000n);
    expect(errorOf(() => attributeToPlain({ S: "2024-02-30" }, new DateDay(), "d")).errorClass).toBe("TYPE_MISMATCH");
    expect(parseIsoTimestamp("not a date")).toBeUndefined();
  });

  it("maps an item to a row with missing attributes as null", () => {
    const fields = [new Field("id", utf8), new Field("age", new Int32()), new Field("name", utf8)];
    expect(itemToRow({ id: { S: "a" }, name: { S: "n" }, other: { N: "1" } }, fields)).toEqual(["a", null, "n"]);
  });
});

describe("plainToAttribute (writes)", () => {
  it("writes scalars", () => {
    expect(plainToAttribute("x", utf8, "c")).toEqual({ S: "x" });
    expect(plainToAttribute("", utf8, "c")).toEqual({ S: "" });
    expect(plainToAttribute(42, new Int32(), "c")).toEqual({ N: "42" });
    expect(plainToAttribute(-9223372036854775808n, new Int64(), "c")).toEqual({ N: "-9223372036854775808" });
    expect(plainToAttribute(true, new Bool(), "c")).toEqual({ BOOL: true });
    expect(plainToAttribute(new Uint8Array([7]), new Binary(), "c")).toEqual({ B: new Uint8Array([7]) });
    expect(plainToAttribute(null, utf8, "c")).toEqual({ NULL: true });
  });

  it("writes doubles with the shortest round-trip text", () => {
    expect(plainToAttribute(0.1, new Float64(), "c")).toEqual({ N: "0.1" });
    expect(doubleText(0.1 + 0.2)).toBe("0.30000000000000004");
    expect(doubleText(1e21)).toBe("1000000000000000000000");
    expect(doubleText(1.5e-7)).toBe("0.00000015");
    expect(doubleText(-0)).toBe("0");
    expect(Number(doubleText(123456.789e10))).toBe(123456.789e10);
  });

  it("writes float32 with the shortest text that round-trips through Math.fround", () => {
    const f = Math.fround(0.1);
    expect(f).not.toBe(0.1);
    expect(float32Text(f)).toBe("0.1");
    expect(plainToAttribute(f, new Float32(), "c")).toEqual({ N: "0.1" });
    expect(float32Text(Math.fround(3.14159))).toBe("3.14159");
    expect(float32Text(Math.fround(16777217))).toBe("16777216");
    for (const v of [1 / 3, 1e-30, 123456789, -2.5e20]) {
      const x = Math.fround(v);
      const text = float32Text(x);
      expect(Math.fround(Number(text))).toBe(x);
      expect(text).not.toMatch(/e/i);
    }
  });

  it("writes decimals with every digit", () => {
    const d = DecimalValue.parse("12345678901234567890.123456789012345678");
    expect(plainToAttribute(d, new Decimal(18, 38, 128), "c")).toEqual({ N: "12345678901234567890.123456789012345678" });
    expect(plainToAttribute(new DecimalValue(150n, 2), new Decimal(2, 10, 128), "c")).toEqual({ N: "1.5" });
    expect(plainToAttribute(new DecimalValue(-5n, 0), new Decimal(0, 10, 128), "c")).toEqual({ N: "-5" });
  });

  it("rejects NaN, infinities and out-of-range doubles naming the column", () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const e = errorOf(() => plainToAttribute(v, new Float64(), "score"));
      expect(e.errorClass).toBe("VALUE_NOT_REPRESENTABLE");
      expect(e.message).toContain("'score'");
      expect(e.parameters.column).toBe("score");
    }
    expect(errorOf(() => plainToAttribute([1, NaN], list(new Float64()), "xs")).message).toContain("'xs[]'");
    expect(errorOf(() => plainToAttribute(1e200, new Float64(), "big")).errorClass).toBe("VALUE_NOT_REPRESENTABLE");
    expect(errorOf(() => plainToAttribute(1e-200, new Float64(), "tiny")).errorClass).toBe("VALUE_NOT_REPRESENTABLE");
  });

  it("writes dates and timestamps as ISO-8601 UTC text with microseconds", () => {
    expect(plainToAttribute(19782, new DateDay(), "d")).toEqual({ S: "2024-02-29" });
    expect(plainToAttribute(-1, new DateDay(), "d")).toEqual({ S: "1969-12-31" });
    expect(plainToAttribute(1704164645123456n, new TimestampMicrosecond("UTC"), "t")).toEqual({ S: "2024-01-02T03:04:05.123456Z" });
    expect(formatTimestamp(-1n)).toBe("1969-12-31T23:59:59.999999Z");
    expect(formatTimestamp(0n)).toBe("1970-01-01T00:00:00.000000Z");
    expect(parseIsoTimestamp(formatTimestamp(-1n))).toBe(-1n);
  });

  it("writes lists as L, maps and structs as M, nested nulls as NULL", () => {
    expect(plainToAttribute(["a", null], list(utf8), "c")).toEqual({ L: [{ S: "a" }, { NULL: true }] });
    expect(
      plainToAttribute(
        [
          ["k", 1],
          ["n", null],
        ],
        mapOf(new Int32()),
        "c",
      ),
    ).toEqual({ M: { k: { N: "1" }, n: { NULL: true } } });
    const type = struct({ city: utf8, geo: struct({ lat: new Float64() }), tags: list(utf8) });
    expect(plainToAttribute({ city: "Oslo", geo: { lat: 0.1 }, tags: null }, type, "addr")).toEqual({
      M: { city: { S: "Oslo" }, geo: { M: { lat: { N: "0.1" } } }, tags: { NULL: true } },
    });
  });

  it("round-trips every type through Arrow both ways", () => {
    const fields = [
      new Field("s", utf8),
      new Field("i8", new Int8()),
      new Field("i16", new Int16()),
      new Field("i32", new Int32()),
      new Field("i64", new Int64()),
      new Field("f32", new Float32()),
      new Field("f64", new Float64()),
      new Field("dec", new Decimal(10, 38, 128)),
      new Field("b", new Bool()),
      new Field("bin", new Binary()),
      new Field("d", new DateDay()),
      new Field("ts", new TimestampMicrosecond("UTC")),
      new Field("l", list(new Int64())),
      new Field("m", mapOf(new Float64())),
      new Field("st", struct({ a: utf8, inner: struct({ x: new Decimal(2, 10, 128) }) })),
    ];
    const item: Record<string, AttributeValue> = {
      s: { S: "text" },
      i8: { N: "-7" },
      i16: { N: "1234" },
      i32: { N: "-123456" },
      i64: { N: "9007199254740993" },
      f32: { N: "0.1" },
      f64: { N: "0.1" },
      dec: { N: "1234567890123456789012345678.0123456789" },
      b: { BOOL: true },
      bin: { B: new Uint8Array([0, 1, 254]) },
      d: { S: "2000-01-01" },
      ts: { S: "2000-01-01T00:00:00.000001Z" },
      l: { L: [{ N: "1" }, { NULL: true }] },
      m: { M: { x: { N: "2.5" } } },
      st: { M: { a: { S: "z" }, inner: { M: { x: { N: "0.01" } } } } },
    };
    const builder = new BatchBuilder(new Schema(fields));
    builder.appendRow(itemToRow(item, fields));
    builder.appendRow(itemToRow({}, fields));
    const batch = builder.flush();
    const back: Record<string, AttributeValue> = {};
    fields.forEach((field, i) => {
      const value = readValue(batch.getChildAt(i)!, 0);
      back[field.name] = plainToAttribute(value, field.type, field.name);
      expect(readValue(batch.getChildAt(i)!, 1)).toBeNull();
    });
    expect(back).toEqual(item);
  });
});

describe("schema checks", () => {
  it("accepts every supported type and rejects others naming the column", () => {
    checkReadSchema(new Schema([new Field("a", mapOf(list(struct({ x: new Decimal(2, 10, 128) }))))]));
    const e = errorOf(() => checkReadSchema(new Schema([new Field("span", new Interval(IntervalUnit.DAY_TIME))])));
    expect(e.errorClass).toBe("UNSUPPORTED_COLUMN_TYPE");
    expect(e.message).toContain("'span'");
    const badMap = new Map_(new Field("entries", new Struct<{ key: Int32; value: Utf8 }>([new Field("key", new Int32(), false), new Field("value", utf8, true)]), false));
    expect(errorOf(() => checkWriteSchema(new Schema([new Field("m", badMap)]))).message).toContain("map keys are strings");
    checkWriteSchema(new Schema([new Field("nothing", new Null())]));
    checkWriteSchema(new Schema([new Field("flag", new Interval(IntervalUnit.DAY_TIME))]), new Set(["flag"]));
  });

  it("maps column types to key attribute types", () => {
    expect(keyAttributeTypeOf(utf8)).toBe("S");
    expect(keyAttributeTypeOf(new Int64())).toBe("N");
    expect(keyAttributeTypeOf(new Decimal(0, 10, 128))).toBe("N");
    expect(keyAttributeTypeOf(new Binary())).toBe("B");
    expect(keyAttributeTypeOf(new Bool())).toBeUndefined();
    expect(keyAttributeTypeOf(list(utf8))).toBeUndefined();
  });
});

describe("SchemaInferrer", () => {
  const describeSchema = (schema: Schema) => Object.fromEntries(schema.fields.map((f) => [f.name, String(f.type)]));

  it("infers alphabetical columns from the union of sampled attributes, keys always present", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addKey("pk", "S");
    inferrer.addKey("sk", "N");
    inferrer.addItem({ pk: { S: "a" }, sk: { N: "1" }, zeta: { S: "z" } });
    inferrer.addItem({ pk: { S: "b" }, sk: { N: "2" }, alpha: { BOOL: true }, blob: { B: new Uint8Array() } });
    const { schema, warnings } = inferrer.result();
    expect(schema.fields.map((f) => f.name)).toEqual(["alpha", "blob", "pk", "sk", "zeta"]);
    expect(describeSchema(schema)).toEqual({ alpha: "Bool", blob: "Binary", pk: "Utf8", sk: "Int64", zeta: "Utf8" });
    expect(warnings).toEqual([]);
    expect(inferrer.sampled).toBe(2);
  });

  it("keeps key columns of an empty table with their definition types", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addKey("id", "N");
    inferrer.addKey("raw", "B");
    expect(describeSchema(inferrer.result().schema)).toEqual({ id: "Int64", raw: "Binary" });
  });

  it("widens numbers: int64 when integral and in range, else double", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addItem({ a: { N: "1" }, b: { N: "1" }, c: { N: "99999999999999999999" }, d: { N: "-9223372036854775808" } });
    inferrer.addItem({ a: { N: "2" }, b: { N: "2.5" } });
    expect(describeSchema(inferrer.result().schema)).toEqual({ a: "Int64", b: "Float64", c: "Float64", d: "Int64" });
  });

  it("infers sets, lists and maps with widened element and field types", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addItem({
      ss: { SS: ["a"] },
      ns: { NS: ["1", "2"] },
      nsd: { NS: ["1", "2.5"] },
      bs: { BS: [new Uint8Array([1])] },
      l: { L: [{ N: "1" }, { N: "1.5" }] },
      m: { M: { z: { N: "1" }, a: { S: "x" } } },
      e: { L: [] },
    });
    inferrer.addItem({ m: { M: { b: { BOOL: true }, z: { N: "2.5" } } }, e: { L: [{ NULL: true }] } });
    const { schema, warnings } = inferrer.result();
    expect(describeSchema(schema)).toEqual({
      bs: "List<Binary>",
      e: "List<Utf8>",
      l: "List<Float64>",
      m: "Struct<{a:Utf8, b:Bool, z:Float64}>",
      ns: "List<Int64>",
      nsd: "List<Float64>",
      ss: "List<Utf8>",
    });
    expect(warnings).toEqual([]);
  });

  it("falls back to string with a warning on conflicting types, also nested", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addItem({ id: { S: "1" }, v: { N: "1" }, m: { M: { x: { S: "a" } } } });
    inferrer.addItem({ id: { S: "2" }, v: { S: "one" }, m: { M: { x: { BOOL: true } } } });
    inferrer.addItem({ id: { S: "3" }, v: { BOOL: true } });
    const { schema, warnings } = inferrer.result();
    expect(describeSchema(schema)).toEqual({ id: "Utf8", m: "Struct<{x:Utf8}>", v: "Utf8" });
    expect(warnings).toHaveLength(2);
    expect(warnings.find((w) => w.includes("'v'"))).toMatch(/bigint, string, boolean.*string column/);
    expect(warnings.find((w) => w.includes("'m.x'"))).toBeDefined();
  });

  it("types attributes only ever seen as NULL as string, without a warning", () => {
    const inferrer = new SchemaInferrer();
    inferrer.addItem({ n: { NULL: true } });
    inferrer.addItem({ n: { NULL: true }, em: { M: {} } });
    const { schema, warnings } = inferrer.result();
    expect(describeSchema(schema)).toEqual({ em: "Map<{key:Utf8, value:Utf8}>", n: "Utf8" });
    expect(warnings).toEqual([]);
  });

  it("reads every sampled item in its inferred schema", () => {
    const inferrer = new SchemaInferrer();
    const items: Record<string, AttributeValue>[] = [
      { id: { S: "a" }, n: { N: "1" }, v: { N: "3" }, tags: { SS: ["x"] } },
      { id: { S: "b" }, n: { N: "1.25" }, v: { S: "three" }, nested: { M: { k: { L: [{ N: "1" }] } } } },
    ];
    for (const item of items) inferrer.addItem(item);
    const { schema } = inferrer.result();
    const rows = items.map((item) => itemToRow(item, schema.fields));
    const plain: PlainValue[][] = [
      ["a", 1, null, ["x"], "3"],
      ["b", 1.25, { k: [1n] }, null, "three"],
    ];
    expect(schema.fields.map((f) => f.name)).toEqual(["id", "n", "nested", "tags", "v"]);
    expect(rows).toEqual(plain);
  });
});

describe("checkItemSize", () => {
  it("refuses an item certainly over 400 KB, naming its key and largest attribute", () => {
    const item = { id: { S: "big-1" }, name: { S: "Alice" }, bio: { S: "x".repeat(MAX_ITEM_BYTES) } };
    expect(() => checkItemSize(item, ["id"], "users", 7)).toThrow(ConduitError);
    try {
      checkItemSize(item, ["id"], "users", 7);
    } catch (error) {
      expect(error).toMatchObject({ errorClass: "ITEM_TOO_LARGE", parameters: { table: "users", column: "bio", key: "id=big-1", row: "7" } });
      expect((error as Error).message).toContain("'bio'");
    }
  });

  it("counts multi-byte characters, attribute names and nested values", () => {
    expect(() => checkItemSize({ id: { S: "a" }, s: { S: "é".repeat(MAX_ITEM_BYTES / 2 + 1) } }, ["id"], "t", 0)).toThrow(/ITEM_TOO_LARGE|at least/);
    const nested = { id: { S: "a" }, l: { L: [{ B: new Uint8Array(MAX_ITEM_BYTES / 2) }, { M: { k: { B: new Uint8Array(MAX_ITEM_BYTES / 2) } } }] } };
    expect(() => checkItemSize(nested, ["id"], "t", 0)).toThrow(/400 KB/);
  });

  it("lets items up to the limit through", () => {
    expect(() => checkItemSize({ id: { S: "a" }, n: { N: "12345" }, b: { BOOL: true }, s: { S: "x".repeat(MAX_ITEM_BYTES - 100) } }, ["id"], "t", 0)).not.toThrow();
  });
});
