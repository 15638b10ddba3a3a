import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import {
  Binary,
  Bool,
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
  Struct,
  LargeUtf8,
  Schema,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Uint16,
  Uint32,
  Utf8,
  type DataType,
} from "apache-arrow";
import { ConduitError } from "../../core/errors.js";
import { DecimalValue, describeType, type PlainValue } from "../../arrow/values.js";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { columnReader } from "../../arrow/column-reader.js";
import { driverType, encoder } from "./test-fakes.js";
import { arrowTypeOf, cellSerializer, cqlTypeText, decimalOfBigDecimal, driverInteger, fromDriverType, mayReject, parseTime, quoteIdentifier, readConverter, scalar, writeConverter, type CqlType, type RowPosition } from "./types.js";
import { checkValueSizes, MAX_VALUE_BYTES } from "./types.js";

const { types } = cassandra;
const dt = types.dataTypes;
const at: RowPosition = { row: 7, partition: 2 };

const list = (element: CqlType, frozen = false): CqlType => ({ kind: "list", element, frozen });
const set = (element: CqlType, frozen = false): CqlType => ({ kind: "set", element, frozen });
const map = (key: CqlType, value: CqlType, frozen = false): CqlType => ({ kind: "map", key, value, frozen });
const address: CqlType = {
  kind: "udt",
  keyspace: "ks",
  name: "address",
  fields: [
    { name: "street", type: scalar("text") },
    { name: "zip", type: scalar("int") },
  ],
  frozen: true,
};
const person: CqlType = { kind: "udt", keyspace: "ks", name: "person", fields: [{ name: "name", type: scalar("text") }, { name: "home", type: address }], frozen: true };
const tuple: CqlType = { kind: "tuple", elements: [scalar("int"), scalar("text")] };
const arrowList = (t: DataType) => new List(new Field("element", t, true));
const entries = (k: DataType, v: DataType) => new Field("entries", new Struct([new Field("key", k, false), new Field("value", v, true)]), false);
const arrowMap = (k: DataType, v: DataType) => new Map_(entries(k, v));

function error(fn: () => unknown): ConduitError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConduitError);
    return e as ConduitError;
  }
  throw new Error("expected a ConduitError");
}

describe("CQL type metadata", () => {
  it("converts the driver's type info, frozen and nested", () => {
    expect(fromDriverType({ code: dt.varchar })).toEqual(scalar("text"));
    expect(fromDriverType({ code: dt.custom, info: "org.apache.cassandra.db.marshal.DurationType" })).toEqual(scalar("duration"));
    expect(fromDriverType({ code: dt.duration })).toEqual(scalar("duration"));
    expect(fromDriverType({ code: dt.map, info: [{ code: dt.text }, { code: dt.list, info: { code: dt.int } }], options: { frozen: true } })).toEqual(
      map(scalar("text"), list(scalar("int")), true),
    );
    expect(fromDriverType({ code: dt.tuple, info: [{ code: dt.int }, { code: dt.text }] })).toEqual(tuple);
    expect(fromDriverType({ code: dt.udt, info: { keyspace: "ks", name: "address", fields: [{ name: "street", type: { code: dt.text } }, { name: "zip", type: { code: dt.int } }] }, options: { frozen: true } })).toEqual(address);
    expect(fromDriverType({ code: dt.custom, customTypeName: "vector", info: [{ code: dt.float }, 3] })).toEqual({ kind: "vector", element: scalar("float"), dimension: 3 });
    expect(fromDriverType({ code: dt.custom, info: "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 4)" })).toEqual({
      kind: "vector",
      element: scalar("float"),
      dimension: 4,
    });
    expect(fromDriverType({ code: dt.custom, info: "com.example.MyType" })).toEqual({ kind: "unsupported", name: "com.example.MyType" });
  });

  it("writes CQL type text", () => {
    expect(cqlTypeText(map(scalar("text"), list(scalar("int")), true))).toBe("frozen<map<text, list<int>>>");
    expect(cqlTypeText(person)).toBe("frozen<person>");
    expect(cqlTypeText(tuple)).toBe("tuple<int, text>");
    expect(cqlTypeText({ kind: "vector", element: scalar("float"), dimension: 3 })).toBe("vector<float, 3>");
  });

  it("quotes identifiers, keeping case and escaping quotes", () => {
    expect(quoteIdentifier("Name")).toBe('"Name"');
    expect(quoteIdentifier('we"ird')).toBe('"we""ird"');
  });

  it("maps every CQL type to its default Arrow type", () => {
    const expected: Array<[CqlType, string]> = [
      [scalar("text"), "string"],
      [scalar("ascii"), "string"],
      [scalar("uuid"), "string"],
      [scalar("timeuuid"), "string"],
      [scalar("inet"), "string"],
      [scalar("duration"), "string"],
      [scalar("tinyint"), "tinyint"],
      [scalar("smallint"), "smallint"],
      [scalar("int"), "int"],
      [scalar("bigint"), "bigint"],
      [scalar("counter"), "bigint"],
      [scalar("time"), "bigint"],
      [scalar("varint"), "decimal(38,0)"],
      [scalar("decimal"), "decimal(38,18)"],
      [scalar("float"), "float"],
      [scalar("double"), "double"],
      [scalar("boolean"), "boolean"],
      [scalar("timestamp"), "timestamp"],
      [scalar("date"), "date"],
      [scalar("blob"), "binary"],
      [set(scalar("int"), true), "array<int>"],
      [map(scalar("text"), list(scalar("bigint"))), "map<string,array<bigint>>"],
      [person, "struct<name:string,home:struct<street:string,zip:int>>"],
      [tuple, "struct<_1:int,_2:string>"],
      [{ kind: "vector", element: scalar("float"), dimension: 3 }, "array<float>"],
    ];
    for (const [cql, text] of expected) expect(describeType(arrowTypeOf(cql, "c"))).toBe(text);
    expect(error(() => arrowTypeOf({ kind: "unsupported", name: "x.Y" }, "c")).errorClass).toBe("UNSUPPORTED_COLUMN_TYPE");
  });
});

describe("decimals without a text round trip", () => {
  const samples = ["0", "1", "-1", "0.01", "-0.01", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296", "-4294967296", "-4294967297",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "12345678901234567890123456789012.123456", "-98765432109876543210987654321.5", "1e-30", "-7e40"];

  it("reads the driver's BigDecimal exactly", () => {
    for (const text of samples) expect(decimalOfBigDecimal(types.BigDecimal.fromString(DecimalValue.parse(text).toString())).toString(), text).toBe(DecimalValue.parse(text).toString());
    // What the driver decodes from the wire (its Integer built from bytes) reads the same.
    for (const text of samples) {
      const decoded = types.BigDecimal.fromBuffer(types.BigDecimal.toBuffer(types.BigDecimal.fromString(DecimalValue.parse(text).toString())));
      expect(decimalOfBigDecimal(decoded).toString(), text).toBe(DecimalValue.parse(text).toString());
    }
  });

  it("builds the driver's Integer that serializes to the same bytes as its own parser", () => {
    for (const text of samples) {
      const unscaled = DecimalValue.parse(text).unscaled;
      const ours = types.Integer.toBuffer(driverInteger(unscaled) as never);
      expect(ours.toString("hex"), text).toBe(types.Integer.toBuffer(types.Integer.fromString(unscaled.toString())).toString("hex"));
    }
  });
});

describe("reads: driver value -> plain value", () => {
  const read = (cql: CqlType, value: unknown, arrow: DataType = arrowTypeOf(cql, "c")) => readConverter(cql, arrow, "c")(value);

  it("reads every scalar in its default type", () => {
    expect(read(scalar("text"), "héllo")).toBe("héllo");
    expect(read(scalar("uuid"), types.Uuid.fromString("550e8400-e29b-41d4-a716-446655440000"))).toBe("550e8400-e29b-41d4-a716-446655440000");
    expect(read(scalar("inet"), types.InetAddress.fromString("10.1.2.3"))).toBe("10.1.2.3");
    expect(read(scalar("duration"), types.Duration.fromString("1h30m"))).toBe("1h30m");
    expect(read(scalar("duration"), new types.Duration(0, 0, types.Long.ZERO))).toBe("0s");
    expect(read(scalar("tinyint"), -128)).toBe(-128);
    expect(read(scalar("int"), 2147483647)).toBe(2147483647);
    expect(read(scalar("bigint"), 9007199254740993n)).toBe(9007199254740993n);
    expect(read(scalar("varint"), 123456789012345678901234567890n)).toEqual(new DecimalValue(123456789012345678901234567890n, 0));
    expect(read(scalar("decimal"), types.BigDecimal.fromString("-12.345"))).toEqual(DecimalValue.parse("-12.345").rescale(18));
    expect(read(scalar("float"), 1.5)).toBe(1.5);
    expect(read(scalar("boolean"), false)).toBe(false);
    expect(read(scalar("timestamp"), new Date(1704067200123))).toBe(1704067200123000n);
    expect(read(scalar("date"), types.LocalDate.fromString("2024-01-02"))).toBe(19724);
    expect(read(scalar("date"), types.LocalDate.fromString("1969-12-31"))).toBe(-1);
    expect(read(scalar("time"), types.LocalTime.fromString("13:45:00.000000123"))).toBe(49500000000123n);
    expect(read(scalar("blob"), Buffer.from([1, 2]))).toEqual(Buffer.from([1, 2]));
    expect(read(scalar("int"), null)).toBeNull();
  });

  it("reads collections, UDTs and tuples", () => {
    expect(read(list(scalar("int")), [1, 2])).toEqual([1, 2]);
    expect(read(set(scalar("text")), new Set(["a", "b"]))).toEqual(["a", "b"]);
    expect(read(map(scalar("int"), scalar("text")), new Map([[1, "x"]]))).toEqual([[1, "x"]]);
    expect(read(person, { name: "Ann", home: { street: "Main", zip: null } })).toEqual({ name: "Ann", home: { street: "Main", zip: null } });
    expect(read(tuple, types.Tuple.fromArray([1, null]))).toEqual({ _1: 1, _2: null });
    expect(read({ kind: "vector", element: scalar("float"), dimension: 2 }, new types.Vector(new Float32Array([0.5, 1]), "float"))).toEqual([0.5, 1]);
  });

  it("reads any scalar or collection as string when the schema asks", () => {
    const utf8 = new Utf8();
    expect(read(scalar("int"), 5, utf8)).toBe("5");
    expect(read(scalar("blob"), Buffer.from([0xca, 0xfe]), utf8)).toBe("0xcafe");
    expect(read(scalar("timestamp"), new Date(0), utf8)).toBe("1970-01-01T00:00:00.000Z");
    expect(read(scalar("time"), types.LocalTime.fromString("01:02:03.5"), utf8)).toBe("01:02:03.500000000");
    expect(read(scalar("decimal"), types.BigDecimal.fromString("1.50"), utf8)).toBe("1.50");
    expect(read(list(scalar("text")), ["a'b"], utf8)).toBe("['a''b']");
    expect(read(map(scalar("text"), scalar("int")), new Map([["k", 1]]), utf8)).toBe("{'k': 1}");
  });

  it("narrows and widens numbers with range checks", () => {
    expect(read(scalar("bigint"), 100n, new Int32())).toBe(100);
    const tooBig = error(() => read(scalar("bigint"), 3000000000n, new Int32()));
    expect(tooBig.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(tooBig.parameters).toMatchObject({ column: "c", value: "3000000000" });
    expect(read(scalar("int"), 5, new Int64())).toBe(5n);
    expect(read(scalar("int"), 5, new Decimal(2, 10, 128))).toEqual(DecimalValue.parse("5.00"));
    expect(read(scalar("decimal"), types.BigDecimal.fromString("1.5"), new Decimal(1, 5, 128))).toEqual(DecimalValue.parse("1.5"));
    expect(error(() => read(scalar("decimal"), types.BigDecimal.fromString("1.25"), new Decimal(1, 5, 128))).message).toContain("more than 1 digits after the decimal point");
    expect(error(() => read(scalar("decimal"), types.BigDecimal.fromString("123456.5"), new Decimal(1, 5, 128))).message).toContain("more than 4 digits before");
    expect(error(() => read(scalar("decimal"), types.BigDecimal.fromString("0.0000000000000000001"))).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(read(scalar("float"), 1.5, new Float64())).toBe(1.5);
    expect(read(scalar("timestamp"), new Date(86_400_000 * 3 + 5), new DateDay())).toBe(3);
    expect(read(scalar("date"), types.LocalDate.fromString("1970-01-02"), new TimestampMicrosecond("UTC"))).toBe(86_400_000_000n);
  });

  it("refuses conversions that are not defined, naming the column and types", () => {
    const e = error(() => readConverter(scalar("uuid"), new Int32(), "id"));
    expect(e.errorClass).toBe("COLUMN_TYPE_MISMATCH");
    expect(e.parameters).toMatchObject({ column: "id", cqlType: "uuid", type: "int" });
    expect(e.message).toContain("Read it as string");
    expect(error(() => readConverter(scalar("text"), new Int32(), "c")).errorClass).toBe("COLUMN_TYPE_MISMATCH");
    expect(error(() => readConverter(list(scalar("int")), new Int32(), "c")).errorClass).toBe("COLUMN_TYPE_MISMATCH");
    expect(error(() => readConverter(tuple, new Struct([new Field("_1", new Int32())]), "c")).message).toContain("one field per element");
    const udt = error(() => readConverter(address, new Struct([new Field("zipp", new Int32())]), "home"));
    expect(udt.message).toContain("Did you mean 'zip'?");
    expect(udt.parameters.column).toBe("home.zipp");
  });
});

describe("writes: plain value -> driver value", () => {
  const read = (cql: CqlType, value: unknown) => readConverter(cql, arrowTypeOf(cql, "c"), "c")(value);
  const write = (arrow: DataType, cql: CqlType, value: PlainValue, path = "c") => writeConverter(arrow, cql, path)(value, at);

  it("writes every scalar from its natural Spark type", () => {
    expect(write(new Utf8(), scalar("text"), "x")).toBe("x");
    expect(write(new Int8(), scalar("tinyint"), -1)).toBe(-1);
    expect(write(new Int64(), scalar("bigint"), 1n << 62n)).toBe(1n << 62n);
    expect(write(new Float64(), scalar("double"), 0.1)).toBe(0.1);
    expect(write(new Bool(), scalar("boolean"), true)).toBe(true);
    expect(write(new Binary(), scalar("blob"), new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
    const decimal = write(new Decimal(2, 10, 128), scalar("decimal"), DecimalValue.parse("-123456789012345678901234567890.12")) as { toString(): string };
    expect(decimal).toBeInstanceOf(types.BigDecimal);
    expect(decimal.toString()).toBe("-123456789012345678901234567890.12");
    expect(write(new Decimal(0, 38, 128), scalar("varint"), DecimalValue.parse("123456789012345678901234567890"))).toBe(123456789012345678901234567890n);
    const date = write(new DateDay(), scalar("date"), 19724) as { toString(): string };
    expect(date.toString()).toBe("2024-01-02");
    expect((write(new DateDay(), scalar("timestamp"), 1) as Date).getTime()).toBe(86_400_000);
  });

  it("truncates timestamps to milliseconds, toward the past", () => {
    expect((write(new TimestampMicrosecond("UTC"), scalar("timestamp"), 1704067200123456n) as Date).getTime()).toBe(1704067200123);
    expect((write(new TimestampMicrosecond("UTC"), scalar("timestamp"), -1n) as Date).getTime()).toBe(-1);
  });

  it("widens integers to any wider type", () => {
    expect(write(new Int32(), scalar("bigint"), 7)).toBe(7n);
    expect(write(new Int8(), scalar("varint"), -3)).toBe(-3n);
    expect((write(new Int64(), scalar("decimal"), 12n) as { toString(): string }).toString()).toBe("12");
    expect(write(new Int32(), scalar("double"), 2147483647)).toBe(2147483647);
    expect(write(new Int16(), scalar("float"), 300)).toBe(300);
    expect(write(new Float32(), scalar("double"), 0.5)).toBe(0.5);
  });

  it("narrows integers with a range check naming column, value and row", () => {
    expect(write(new Int64(), scalar("int"), 5n)).toBe(5);
    const e = error(() => write(new Int64(), scalar("int"), 2147483648n, "age"));
    expect(e.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(e.parameters).toMatchObject({ column: "age", value: "2147483648", row: "7", partition: "2", cqlType: "int" });
    expect(e.message).toContain("-2147483648 to 2147483647");
    expect(error(() => write(new Int32(), scalar("smallint"), -32769)).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(error(() => write(new Int16(), scalar("tinyint"), 128)).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(write(new Decimal(2, 10, 128), scalar("int"), DecimalValue.parse("12.00"))).toBe(12);
    expect(error(() => write(new Decimal(2, 10, 128), scalar("bigint"), DecimalValue.parse("12.50"))).message).toContain("whole numbers");
  });

  it("knows which conversions can reject a value, so a batch is checked only for those", () => {
    const cannot: Array<[DataType, CqlType]> = [
      [new Utf8(), scalar("text")],
      [new Int32(), scalar("int")],
      [new Int8(), scalar("smallint")],
      [new Int32(), scalar("bigint")],
      [new Int64(), scalar("bigint")],
      [new Uint16(), scalar("int")],
      [new Int64(), scalar("decimal")],
      [new Float64(), scalar("double")],
      [new Float32(), scalar("float")],
      [new Decimal(2, 18, 128), scalar("decimal")],
      [new Bool(), scalar("boolean")],
      [new Binary(), scalar("blob")],
      [new DateDay(), scalar("date")],
      [new TimestampMicrosecond("UTC"), scalar("timestamp")],
    ];
    for (const [arrow, cql] of cannot) expect(mayReject(writeConverter(arrow, cql, "c")), `${describeType(arrow)} -> ${cqlTypeText(cql)}`).toBe(false);
    const can: Array<[DataType, CqlType]> = [
      [new Int64(), scalar("int")],
      [new Uint32(), scalar("int")],
      [new Int32(), scalar("varint")],
      [new Float64(), scalar("float")],
      [new Decimal(2, 18, 128), scalar("bigint")],
      [new Utf8(), scalar("ascii")],
      [new Utf8(), scalar("uuid")],
      [new Utf8(), scalar("inet")],
      [arrowList(new Int32()), list(scalar("int"))],
      [arrowMap(new Utf8(), new Utf8()), map(scalar("text"), scalar("text"))],
    ];
    for (const [arrow, cql] of can) expect(mayReject(writeConverter(arrow, cql, "c")), `${describeType(arrow)} -> ${cqlTypeText(cql)}`).toBe(true);
    // The conversions that cannot reject still convert: unsigned widening, the largest values.
    expect(write(new Uint16(), scalar("int"), 65535)).toBe(65535);
    expect(write(new Int32(), scalar("int"), -2147483648)).toBe(-2147483648);
    expect(write(new Int64(), scalar("bigint"), -(2n ** 63n))).toBe(-(2n ** 63n));
    expect(error(() => write(new Uint32(), scalar("int"), 4294967295)).errorClass).toBe("VALUE_OUT_OF_RANGE");
  });

  it("rounds doubles into float columns, refusing values beyond the float range", () => {
    expect(write(new Float64(), scalar("float"), 0.1)).toBe(Math.fround(0.1));
    expect(error(() => write(new Float64(), scalar("float"), 1e300)).errorClass).toBe("VALUE_OUT_OF_RANGE");
  });

  it("validates UUIDs, naming column, value and row", () => {
    const uuid = write(new Utf8(), scalar("uuid"), "550E8400-E29B-41D4-A716-446655440000");
    expect(uuid).toBeInstanceOf(types.Uuid);
    expect(String(uuid)).toBe("550e8400-e29b-41d4-a716-446655440000");
    const e = error(() => write(new Utf8(), scalar("uuid"), "not-a-uuid", "id"));
    expect(e.errorClass).toBe("INVALID_UUID");
    expect(e.parameters).toMatchObject({ column: "id", value: "'not-a-uuid'", row: "7" });
    expect(e.message).toContain("'not-a-uuid'");
    expect(e.message).toContain("row 7");
  });

  it("accepts only version 1 UUIDs for timeuuid", () => {
    expect(write(new Utf8(), scalar("timeuuid"), "d2177dd0-eaa2-11de-a572-001b779c76e3")).toBeInstanceOf(types.TimeUuid);
    expect(error(() => write(new Utf8(), scalar("timeuuid"), "550e8400-e29b-41d4-a716-446655440000")).message).toContain("version 4");
  });

  it("validates inet, duration, time, ascii and numeric strings", () => {
    expect(String(write(new Utf8(), scalar("inet"), "::1"))).toBe("::1");
    expect(String(write(new Utf8(), scalar("inet"), "192.168.0.1"))).toBe("192.168.0.1");
    expect(error(() => write(new Utf8(), scalar("inet"), "300.1.1.1")).errorClass).toBe("INVALID_INET");
    expect(String(write(new Utf8(), scalar("duration"), "1h30m"))).toBe("1h30m");
    expect(String(write(new Utf8(), scalar("duration"), "P1DT2H"))).toBe("1d2h");
    expect(error(() => write(new Utf8(), scalar("duration"), "soon")).errorClass).toBe("INVALID_DURATION");
    expect(String(write(new Utf8(), scalar("time"), "13:45:00.5"))).toBe("13:45:00.5");
    expect(error(() => write(new Utf8(), scalar("time"), "25:00")).errorClass).toBe("INVALID_TIME");
    expect(String(write(new Int64(), scalar("time"), 1_000_000_000n))).toBe("00:00:01");
    expect(read(scalar("time"), write(new Utf8(), scalar("time"), "13:45:00.5"))).toBe(49_500_500_000_000n);
    expect(error(() => write(new Int64(), scalar("time"), 86_400_000_000_000n)).errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(write(new Utf8(), scalar("ascii"), "plain")).toBe("plain");
    expect(error(() => write(new Utf8(), scalar("ascii"), "héllo")).errorClass).toBe("INVALID_ASCII");
    expect(String(write(new Utf8(), scalar("decimal"), "12.50"))).toBe("12.50");
    expect(write(new Utf8(), scalar("varint"), "-42")).toBe(-42n);
    expect(error(() => write(new Utf8(), scalar("decimal"), "twelve")).errorClass).toBe("INVALID_NUMBER");
  });

  it("parses times of day", () => {
    expect(parseTime("00:00")).toBe(0n);
    expect(parseTime("23:59:59.999999999")).toBe(86_399_999_999_999n);
    expect(parseTime("12:60")).toBeUndefined();
  });

  it("writes collections, UDTs, tuples and vectors", () => {
    expect(write(arrowList(new Int32()), list(scalar("bigint")), [1, 2])).toEqual([1n, 2n]);
    expect(write(arrowList(new Utf8()), set(scalar("uuid")), ["550e8400-e29b-41d4-a716-446655440000"])).toEqual([types.Uuid.fromString("550e8400-e29b-41d4-a716-446655440000")]);
    expect(write(arrowMap(new Utf8(), new Int64()), map(scalar("text"), scalar("int")), [["a", 1n]])).toEqual(new Map([["a", 1]]));
    const personType = arrowTypeOf(person, "p");
    expect(write(personType, person, { name: "Ann", home: { street: null, zip: 7 } })).toEqual({ name: "Ann", home: { street: null, zip: 7 } });
    // UDT fields the struct lacks are written as null.
    expect(write(new Struct([new Field("zip", new Int32())]), address, { zip: 1 })).toEqual({ zip: 1 });
    const t = write(new Struct([new Field("a", new Int64()), new Field("b", new Utf8())]), tuple, { a: 1n, b: null }) as { elements: unknown[] };
    expect(t).toBeInstanceOf(types.Tuple);
    expect(t.elements).toEqual([1, null]);
    const vector = write(arrowList(new Float64()), { kind: "vector", element: scalar("float"), dimension: 2 }, [0.5, 1]) as { elements: unknown[] };
    expect(vector).toBeInstanceOf(types.Vector);
    expect(vector.elements).toEqual([0.5, 1]);
    expect(error(() => write(arrowList(new Float64()), { kind: "vector", element: scalar("float"), dimension: 3 }, [0.5])).errorClass).toBe("VECTOR_DIMENSION_MISMATCH");
    expect(write(new Null(), scalar("int"), null)).toBeNull();
    // Empty collections are bound pre-serialized (the driver would bind [] as null).
    expect(write(arrowList(new Int32()), list(scalar("int"), true), [])).toEqual(Buffer.alloc(4));
    expect(write(arrowMap(new Utf8(), new Int64()), map(scalar("text"), scalar("int")), [])).toEqual(Buffer.alloc(4));
    expect(write(arrowList(arrowList(new Int32())), list(list(scalar("int"), true)), [[]])).toEqual([Buffer.alloc(4)]);
  });

  it("refuses nulls inside collections and unknown UDT fields", () => {
    const e = error(() => write(arrowList(new Int32()), list(scalar("int")), [1, null], "tags"));
    expect(e.errorClass).toBe("NULL_IN_COLLECTION");
    expect(e.parameters).toMatchObject({ column: "tags", row: "7" });
    expect(error(() => write(arrowMap(new Utf8(), new Int32()), map(scalar("text"), scalar("int")), [["a", null]])).errorClass).toBe("NULL_IN_COLLECTION");
    const udt = error(() => writeConverter(new Struct([new Field("strete", new Utf8())]), address, "home"));
    expect(udt.errorClass).toBe("UDT_FIELD_UNKNOWN");
    expect(udt.message).toContain("Did you mean 'street'?");
  });

  it("refuses conversions that are not defined, naming column, DataFrame type and CQL type", () => {
    const cases: Array<[DataType, CqlType]> = [
      [new Int32(), scalar("uuid")],
      [new Utf8(), scalar("int")],
      [new Float64(), scalar("decimal")],
      [new Int64(), scalar("double")],
      [new Int32(), scalar("float")],
      [new Bool(), scalar("text")],
      [new TimestampMicrosecond("UTC"), scalar("date")],
      [new Int64(), scalar("counter")],
      [arrowList(new Int32()), map(scalar("int"), scalar("int"))],
      [new Struct([new Field("a", new Int32())]), tuple],
      [new Utf8(), { kind: "unsupported", name: "x.Y" }],
    ];
    for (const [arrow, cql] of cases) {
      const e = error(() => writeConverter(arrow, cql, "col"));
      expect(["COLUMN_TYPE_MISMATCH", "UNSUPPORTED_COLUMN_TYPE"]).toContain(e.errorClass);
      expect(e.parameters.column).toBe("col");
      expect(e.message).toContain(cqlTypeText(cql));
    }
    const e = error(() => writeConverter(new Float64(), scalar("decimal"), "price"));
    expect(e.parameters).toMatchObject({ column: "price", type: "double", cqlType: "decimal" });
  });
});

describe("writes: Arrow values serialized straight to CQL bytes", () => {
  const column = (arrow: DataType, values: PlainValue[]) => {
    const builder = new BatchBuilder(new Schema([new Field("c", arrow, true)]));
    for (const value of values) builder.appendRow([value]);
    return builder.flush().getChildAt(0)!;
  };
  /** What the driver sent for the same value before: the converter's value, encoded by the driver. */
  const viaDriver = (arrow: DataType, cql: CqlType, value: PlainValue): Buffer | null =>
    value === null ? null : encoder.encode(writeConverter(arrow, cql, "c")(value, at), driverType(cql));
  const dec = (text: string) => DecimalValue.parse(text);

  const cases: Array<[DataType, CqlType, PlainValue[]]> = [
    [new Utf8(), scalar("text"), ["", "x", "héllo ☃ 😀", "a".repeat(100), null]],
    [new Binary(), scalar("blob"), [new Uint8Array([]), new Uint8Array([0, 255, 7]), null]],
    [new Int8(), scalar("tinyint"), [-128, 0, 127, null]],
    [new Int8(), scalar("smallint"), [-128, 127]],
    [new Int16(), scalar("smallint"), [-32768, 32767, -1]],
    [new Int32(), scalar("int"), [-2147483648, 2147483647, 0, null]],
    [new Uint16(), scalar("int"), [0, 65535]],
    [new Int32(), scalar("bigint"), [-2147483648, 2147483647, -1]],
    [new Uint32(), scalar("bigint"), [0, 4294967295]],
    [new Int64(), scalar("bigint"), [-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n, null]],
    [new Int32(), scalar("double"), [-2147483648, 7]],
    [new Int16(), scalar("float"), [-32768, 300]],
    [new Float64(), scalar("double"), [0.1, -0, Infinity, -Infinity, 1e308, 5e-324, null]],
    [new Float32(), scalar("double"), [0.5, Math.fround(3.4e38)]],
    [new Float32(), scalar("float"), [Math.fround(0.1), -1, null]],
    [new Bool(), scalar("boolean"), [true, false, null, true, true, false, true, false, true, null]],
    [new Decimal(2, 18, 128), scalar("decimal"), [dec("0.00"), dec("-0.01"), dec("1.50"), dec("-123456789012345.67"), dec("9999999999999999.99"), null]],
    [new Decimal(0, 38, 128), scalar("decimal"), [dec("127"), dec("128"), dec("-128"), dec("-129"), dec("255"), dec("-256"), dec("99999999999999999999999999999999999999"), dec("-99999999999999999999999999999999999999"), dec("41538374868278621028243970633760768"), dec("-41538374868278621028243970633760769")]],
    [new Decimal(4, 60, 256), scalar("decimal"), [dec("12345678901234567890123456789012345678901234567890.1234"), dec("-1.0000")]],
    [new DateDay(), scalar("date"), [0, -1, 19724, -2147483648, 2147483647, null]],
    [new DateDay(), scalar("timestamp"), [0, -1, 19724]],
    [new TimestampMicrosecond("UTC"), scalar("timestamp"), [1704067200123456n, -1n, 0n, -1001n, null]],
    [new TimestampMillisecond("UTC"), scalar("timestamp"), [1704067200123000n, -1000n]],
    [new TimestampSecond("UTC"), scalar("timestamp"), [1704067200000000n, -86400000000n]],
    [new TimestampNanosecond("UTC"), scalar("timestamp"), [1704067200123456n, -1n]],
    [arrowList(new Int32()), list(scalar("int")), [[1, 2, 3], [], null, [-1]]],
    [arrowList(new Utf8()), set(scalar("text"), true), [["a", "b"], []]],
    [arrowMap(new Utf8(), new Utf8()), map(scalar("text"), scalar("text")), [[["city", "c1"], ["é", "☃"]], [], null]],
    [arrowMap(new Utf8(), arrowList(new Int64())), map(scalar("text"), list(scalar("bigint")), true), [[["a", [1n, -2n]], ["b", []]]]],
  ];

  it("gives the bytes the driver gave for the converted value, for every type it serializes", () => {
    for (const [arrow, cql, values] of cases) {
      const vector = column(arrow, values);
      const serialize = cellSerializer(vector.data[0]!, cql);
      expect(serialize, `${describeType(arrow)} -> ${cqlTypeText(cql)}`).toBeDefined();
      const read = columnReader(vector);
      values.forEach((_, i) => {
        const expected = viaDriver(arrow, cql, read(i));
        expect(serialize!(i), `${describeType(arrow)} -> ${cqlTypeText(cql)}, row ${i}`).toEqual(expected);
      });
    }
  });

  it("reads a sliced chunk at its offset", () => {
    const vector = column(new Bool(), [true, null, false, true, true, null, false, false, true, true, false]);
    const sliced = vector.slice(3, 11);
    const serialize = cellSerializer(sliced.data[0]!, scalar("boolean"))!;
    for (let i = 0; i < sliced.length; i++) expect(serialize(i)).toEqual(viaDriver(new Bool(), scalar("boolean"), columnReader(vector)(i + 3)));
    const text = column(new Utf8(), ["a", null, "bc", "", "d"]).slice(1, 5);
    const serializeText = cellSerializer(text.data[0]!, scalar("text"))!;
    expect([0, 1, 2, 3].map(serializeText)).toEqual([null, Buffer.from("bc"), Buffer.from(""), Buffer.from("d")]);
  });

  it("leaves conversions that may reject a value, or need one, to the converters", () => {
    const none: Array<[DataType, CqlType, PlainValue[]]> = [
      [new Utf8(), scalar("uuid"), ["550e8400-e29b-41d4-a716-446655440000"]],
      [new Utf8(), scalar("ascii"), ["a"]],
      [new Utf8(), scalar("inet"), ["::1"]],
      [new Int64(), scalar("int"), [1n]],
      [new Uint32(), scalar("int"), [1]],
      [new Int64(), scalar("decimal"), [1n]],
      [new Float64(), scalar("float"), [0.5]],
      [new Decimal(2, 18, 128), scalar("bigint"), [dec("1.00")]],
      [new LargeUtf8(), scalar("text"), ["a"]],
      [new Int32(), scalar("varint"), [1]],
      // Collections that hold a null are refused by the converter, naming the row.
      [arrowList(new Int32()), list(scalar("int")), [[1, null]]],
      [arrowMap(new Utf8(), new Utf8()), map(scalar("text"), scalar("text")), [[["k", null]]]],
      [new Struct([new Field("a", new Int32(), true), new Field("b", new Utf8(), true)]), tuple, [{ a: 1, b: "x" }]],
    ];
    for (const [arrow, cql, values] of none) expect(cellSerializer(column(arrow, values).data[0]!, cql), `${describeType(arrow)} -> ${cqlTypeText(cql)}`).toBeUndefined();
  });
});

describe("checkValueSizes", () => {
  it("refuses a text or blob value over 16 MiB, naming the column and row", () => {
    const builder = new BatchBuilder(new Schema([new Field("data", new Binary(), true)]));
    builder.appendRow([new Uint8Array(3)]);
    builder.appendRow([new Uint8Array(MAX_VALUE_BYTES + 1)]);
    const vector = builder.flush().getChildAt(0)!;
    expect(() => checkValueSizes(vector, "data", "ks.t", 2, 10)).toThrow(expect.objectContaining({ errorClass: "VALUE_TOO_LARGE", parameters: expect.objectContaining({ column: "data", row: "11" }) }));
  });

  it("lets values up to the limit through", () => {
    const builder = new BatchBuilder(new Schema([new Field("s", new Utf8(), true)]));
    builder.appendRow(["x".repeat(1000)]);
    builder.appendRow([null]);
    expect(() => checkValueSizes(builder.flush().getChildAt(0)!, "s", "ks.t", 0, 0)).not.toThrow();
  });
});
