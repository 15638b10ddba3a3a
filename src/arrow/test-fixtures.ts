/** Test data shared by the Arrow tests: one column of every type the connectors produce, and rows with values, nulls and empties. */
import { Binary, Bool, DateDay, Decimal, Field, Float32, Float64, Int16, Int32, Int64, Int8, List, Map_, Schema, Struct, TimestampMicrosecond, Utf8 } from "apache-arrow";
import { DecimalValue, type PlainValue } from "./values.js";

const mapType = new Map_<Utf8, Int64>(new Field("entries", new Struct<{ key: Utf8; value: Int64 }>([new Field("key", new Utf8(), false), new Field("value", new Int64(), true)])));
const structType = new Struct([new Field("city", new Utf8(), true), new Field("tags", new List(new Field("element", new Utf8(), true)), true)]);

export const schema = new Schema([
  new Field("s", new Utf8(), true),
  new Field("i8", new Int8(), true),
  new Field("i16", new Int16(), true),
  new Field("i32", new Int32(), true),
  new Field("i64", new Int64(), true),
  new Field("f32", new Float32(), true),
  new Field("f64", new Float64(), true),
  new Field("dec", new Decimal(6, 38, 128), true),
  new Field("b", new Bool(), true),
  new Field("bin", new Binary(), true),
  new Field("d", new DateDay(), true),
  new Field("ts", new TimestampMicrosecond("UTC"), true),
  new Field("list", new List(new Field("element", new Decimal(2, 10, 128), true)), true),
  new Field("map", mapType, true),
  new Field("struct", structType, true),
]);

export const rows: PlainValue[][] = [
  [
    "héllo ✓",
    -128,
    32767,
    -2147483648,
    9007199254740993n,
    Math.fround(0.1),
    0.1,
    DecimalValue.parse("-12345678901234567890123456789012.123456"),
    true,
    new Uint8Array([0, 1, 255]),
    19723,
    1704067200123456n,
    [DecimalValue.parse("1.50"), null, DecimalValue.parse("-0.01")],
    [
      ["a", 1n],
      ["b", null],
    ],
    { city: "Oslo", tags: ["x", null] },
  ],
  new Array(15).fill(null),
  ["", 0, 0, 0, 0n, 0, -0, DecimalValue.parse("0"), false, new Uint8Array([]), -1, -1n, [], [], { city: null, tags: [] }],
];
