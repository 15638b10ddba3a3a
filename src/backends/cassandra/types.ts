/**
 * CQL types <-> Arrow types, and cassandra-driver values <-> plain values (see
 * `arrow/values.ts`), both directions. Converters are built once per column at planning
 * time (a column that cannot be converted fails there, before any task runs) and then
 * applied to every value.
 *
 * Default read mapping (what `describe` reports when no schema is given):
 *
 *   ascii, text, varchar      -> string            tinyint -> tinyint (int8)
 *   uuid, timeuuid, inet      -> string            smallint -> smallint (int16)
 *   duration                  -> string ("1y2mo3d4h5m6s7ms8us9ns", Cassandra's text form)
 *   int -> int (int32)        bigint, counter -> bigint (int64)
 *   varint  -> decimal(38,0)  decimal -> decimal(38,18)
 *   float -> float            double -> double     boolean -> boolean
 *   timestamp -> timestamp (UTC, microseconds; Cassandra stores milliseconds)
 *   date -> date              time -> bigint (nanoseconds since midnight)
 *   blob -> binary            list<T>, set<T>, vector<T, n> -> array<T>
 *   map<K, V> -> map<K, V>    UDT -> struct (its fields)   tuple -> struct<_1, _2, ...>
 *   frozen<...> reads like the type it freezes.
 *
 * A user schema may ask for another type where the conversion is well defined: any
 * scalar as string (CQL text form; blobs as 0x-hex), wider or narrower integers and
 * decimals (range-checked per value), time as string ("HH:MM:SS.nnnnnnnnn"), date as
 * timestamp, and any decimal(p,s): a value with more digits than the schema allows fails
 * with VALUE_OUT_OF_RANGE rather than being rounded. Cassandra decimals are arbitrary
 * precision; decimal(38,18) holds 20 integer and 18 fractional digits, so give a schema
 * with a matching decimal(p,s), or string, for values outside it.
 *
 * Writes (DataFrame type -> CQL type):
 *   - integers widen to any wider integer, varint, decimal, and (exactly) to double/float
 *     where every value fits (int8/16/32 -> double, int8/16 -> float); narrowing to a
 *     smaller integer type is checked per value (VALUE_OUT_OF_RANGE names column, value, row);
 *   - double -> float rounds to the nearest float (a finite value too large is an error);
 *   - decimals are exact: into decimal as is, into varint/integers only when integral and in range;
 *   - strings into uuid, timeuuid (version 1 only), inet, duration, time, ascii (ASCII only),
 *     decimal and varint are validated per value (INVALID_UUID, INVALID_INET, ...);
 *   - timestamp -> timestamp keeps milliseconds: the sub-millisecond digits of Spark's
 *     microsecond timestamps are truncated (toward the past), as Cassandra cannot store them;
 *   - date -> date or timestamp (midnight UTC); bigint (nanoseconds) or string -> time;
 *   - arrays -> list, set, vector (exact dimension); maps -> map; structs -> UDT (by field
 *     name; UDT fields the struct lacks are written as null) or tuple (by position).
 *   Collections cannot hold nulls in Cassandra: a null element is NULL_IN_COLLECTION. An
 *   empty collection is written as one (a frozen one reads back empty; Cassandra stores an
 *   empty non-frozen collection as no value, so that reads back as null).
 */
import cassandra from "cassandra-driver";
import { isIP } from "node:net";
import {
  Binary,
  Bool,
  type Data,
  DataType,
  DateDay,
  DateUnit,
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
  Struct,
  TimestampMicrosecond,
  TimeUnit,
  Type,
  Utf8,
  type Vector,
} from "apache-arrow";
import { closestMatch } from "../../core/did-you-mean.js";
import { ConduitError, invalidArgument } from "../../core/errors.js";
import { withRoom } from "../../arrow/batch-builder.js";
import { validityOf } from "../../arrow/column-reader.js";
import { DecimalValue, describeType, type PlainValue } from "../../arrow/values.js";

const { types } = cassandra;
const { dataTypes } = types;
// The typings are narrower than the driver: BigDecimal takes an Integer, LocalDate days since the epoch.
const BigDecimal = types.BigDecimal as unknown as new (unscaled: unknown, scale: number) => unknown;
const LocalDate = types.LocalDate as unknown as new (days: number) => unknown;

export const SCALAR_TYPES = [
  "ascii",
  "bigint",
  "blob",
  "boolean",
  "counter",
  "date",
  "decimal",
  "double",
  "duration",
  "float",
  "inet",
  "int",
  "smallint",
  "text",
  "time",
  "timestamp",
  "timeuuid",
  "tinyint",
  "uuid",
  "varint",
] as const;
export type CqlScalar = (typeof SCALAR_TYPES)[number];

/** A CQL type, JSON-serializable (write plans carry it). */
export type CqlType =
  | { kind: "scalar"; name: CqlScalar }
  | { kind: "list" | "set"; element: CqlType; frozen: boolean }
  | { kind: "map"; key: CqlType; value: CqlType; frozen: boolean }
  | { kind: "udt"; keyspace: string; name: string; fields: Array<{ name: string; type: CqlType }>; frozen: boolean }
  | { kind: "tuple"; elements: CqlType[] }
  | { kind: "vector"; element: CqlType; dimension: number }
  | { kind: "unsupported"; name: string };

export const scalar = (name: CqlScalar): CqlType => ({ kind: "scalar", name });

/** The shape of cassandra-driver's column type info (table metadata and result metadata). */
export interface DriverTypeInfo {
  code: number;
  info?: unknown;
  options?: { frozen?: boolean };
  customTypeName?: string;
}

const SCALAR_BY_CODE = new Map<number, CqlScalar>([
  [dataTypes.ascii, "ascii"],
  [dataTypes.bigint, "bigint"],
  [dataTypes.blob, "blob"],
  [dataTypes.boolean, "boolean"],
  [dataTypes.counter, "counter"],
  [dataTypes.date, "date"],
  [dataTypes.decimal, "decimal"],
  [dataTypes.double, "double"],
  [dataTypes.duration, "duration"],
  [dataTypes.float, "float"],
  [dataTypes.inet, "inet"],
  [dataTypes.int, "int"],
  [dataTypes.smallint, "smallint"],
  [dataTypes.text, "text"],
  [dataTypes.varchar, "text"],
  [dataTypes.time, "time"],
  [dataTypes.timestamp, "timestamp"],
  [dataTypes.timeuuid, "timeuuid"],
  [dataTypes.tinyint, "tinyint"],
  [dataTypes.uuid, "uuid"],
  [dataTypes.varint, "varint"],
]);

const MARSHAL_SCALARS: Record<string, CqlScalar> = {
  AsciiType: "ascii",
  LongType: "bigint",
  BytesType: "blob",
  BooleanType: "boolean",
  CounterColumnType: "counter",
  SimpleDateType: "date",
  DecimalType: "decimal",
  DoubleType: "double",
  DurationType: "duration",
  FloatType: "float",
  InetAddressType: "inet",
  Int32Type: "int",
  ShortType: "smallint",
  UTF8Type: "text",
  TimeType: "time",
  TimestampType: "timestamp",
  TimeUUIDType: "timeuuid",
  ByteType: "tinyint",
  UUIDType: "uuid",
  IntegerType: "varint",
};

/** Parses a Cassandra marshal class name such as `org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType, 3)`. */
function fromMarshalName(text: string): CqlType {
  const name = text.trim();
  const vector = /^(?:org\.apache\.cassandra\.db\.marshal\.)?VectorType\((.+),\s*(\d+)\)$/.exec(name);
  if (vector) return { kind: "vector", element: fromMarshalName(vector[1]!), dimension: Number(vector[2]) };
  const simple = /^(?:org\.apache\.cassandra\.db\.marshal\.)?(\w+)$/.exec(name);
  const scalarName = simple ? MARSHAL_SCALARS[simple[1]!] : undefined;
  return scalarName ? scalar(scalarName) : { kind: "unsupported", name };
}

/** Converts the driver's type info into a CqlType. */
export function fromDriverType(info: DriverTypeInfo): CqlType {
  const frozen = info.options?.frozen === true;
  const known = SCALAR_BY_CODE.get(info.code);
  if (known) return scalar(known);
  switch (info.code) {
    case dataTypes.list:
    case dataTypes.set:
      return { kind: info.code === dataTypes.list ? "list" : "set", element: fromDriverType(info.info as DriverTypeInfo), frozen };
    case dataTypes.map: {
      const [key, value] = info.info as [DriverTypeInfo, DriverTypeInfo];
      return { kind: "map", key: fromDriverType(key), value: fromDriverType(value), frozen };
    }
    case dataTypes.udt: {
      const udt = info.info as { keyspace?: string; name?: string; fields?: Array<{ name: string; type: DriverTypeInfo }> };
      return {
        kind: "udt",
        keyspace: udt.keyspace ?? "",
        name: udt.name ?? "",
        fields: (udt.fields ?? []).map((f) => ({ name: f.name, type: fromDriverType(f.type) })),
        frozen,
      };
    }
    case dataTypes.tuple:
      return { kind: "tuple", elements: (info.info as DriverTypeInfo[]).map(fromDriverType) };
    case dataTypes.custom: {
      if (info.customTypeName === "vector") {
        const [element, dimension] = info.info as [DriverTypeInfo, number];
        return { kind: "vector", element: fromDriverType(element), dimension };
      }
      return typeof info.info === "string" ? fromMarshalName(info.info) : { kind: "unsupported", name: "custom" };
    }
    default:
      return { kind: "unsupported", name: `type code ${info.code}` };
  }
}

/** CQL text of a type, as in `DESCRIBE TABLE`. */
export function cqlTypeText(type: CqlType): string {
  switch (type.kind) {
    case "scalar":
      return type.name;
    case "list":
    case "set": {
      const text = `${type.kind}<${cqlTypeText(type.element)}>`;
      return type.frozen ? `frozen<${text}>` : text;
    }
    case "map": {
      const text = `map<${cqlTypeText(type.key)}, ${cqlTypeText(type.value)}>`;
      return type.frozen ? `frozen<${text}>` : text;
    }
    case "udt":
      return type.frozen ? `frozen<${type.name}>` : type.name;
    case "tuple":
      return `tuple<${type.elements.map(cqlTypeText).join(", ")}>`;
    case "vector":
      return `vector<${cqlTypeText(type.element)}, ${type.dimension}>`;
    case "unsupported":
      return type.name;
  }
}

/** Quotes a CQL identifier: keeps its case and allows reserved words and any character. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// ---------------------------------------------------------------------------------------
// Default Arrow types
// ---------------------------------------------------------------------------------------

/** Precision and scale Spark sees for CQL `decimal` unless the schema says otherwise. */
export const DEFAULT_DECIMAL = { precision: 38, scale: 18 } as const;

function unsupportedType(path: string, type: CqlType): ConduitError {
  return invalidArgument(
    "UNSUPPORTED_COLUMN_TYPE",
    `Column '${path}' has CQL type ${cqlTypeText(type)}, which format 'pycassandra' cannot read or write. Leave the column out (select the others, or give a schema without it).`,
    { column: path, cqlType: cqlTypeText(type) },
  );
}

const entriesField = (key: DataType, value: DataType) =>
  new Field("entries", new Struct([new Field("key", key, false), new Field("value", value, true)]), false);

/** The Arrow type a CQL column reads as by default (see the table at the top of this file). */
export function arrowTypeOf(type: CqlType, path: string): DataType {
  switch (type.kind) {
    case "scalar":
      switch (type.name) {
        case "ascii":
        case "text":
        case "uuid":
        case "timeuuid":
        case "inet":
        case "duration":
          return new Utf8();
        case "tinyint":
          return new Int8();
        case "smallint":
          return new Int16();
        case "int":
          return new Int32();
        case "bigint":
        case "counter":
        case "time":
          return new Int64();
        case "varint":
          return new Decimal(0, 38, 128);
        case "decimal":
          return new Decimal(DEFAULT_DECIMAL.scale, DEFAULT_DECIMAL.precision, 128);
        case "float":
          return new Float32();
        case "double":
          return new Float64();
        case "boolean":
          return new Bool();
        case "timestamp":
          return new TimestampMicrosecond("UTC");
        case "date":
          return new DateDay();
        case "blob":
          return new Binary();
      }
      break;
    case "list":
    case "set":
    case "vector":
      return new List(new Field("element", arrowTypeOf(type.element, `${path}[]`), true));
    case "map":
      return new Map_(entriesField(arrowTypeOf(type.key, `${path}{key}`), arrowTypeOf(type.value, `${path}{value}`)));
    case "udt":
      return new Struct(type.fields.map((f) => new Field(f.name, arrowTypeOf(f.type, `${path}.${f.name}`), true)));
    case "tuple":
      return new Struct(type.elements.map((e, i) => new Field(`_${i + 1}`, arrowTypeOf(e, `${path}._${i + 1}`), true)));
    case "unsupported":
      break;
  }
  throw unsupportedType(path, type);
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

const INT_BITS: Partial<Record<CqlScalar, number>> = { tinyint: 8, smallint: 16, int: 32, bigint: 64, counter: 64 };
const MILLIS_PER_DAY = 86_400_000;
const NANOS_PER_DAY = 86_400_000_000_000n;

function intRange(bits: number, signed = true): [bigint, bigint] {
  const b = BigInt(bits);
  return signed ? [-(1n << (b - 1n)), (1n << (b - 1n)) - 1n] : [0n, (1n << b) - 1n];
}

interface ArrowInt {
  bitWidth: number;
  isSigned: boolean;
}
interface ArrowDecimal {
  precision: number;
  scale: number;
}

function preview(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Short text of a plain value for error messages. */
export function plainText(value: PlainValue): string {
  if (value === null) return "null";
  if (typeof value === "string") return `'${preview(value)}'`;
  if (value instanceof DecimalValue) return value.toString();
  if (value instanceof Uint8Array) return preview(`0x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`);
  if (typeof value === "object") return preview(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
  return String(value);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

// ---------------------------------------------------------------------------------------
// Reads: driver value -> plain value
// ---------------------------------------------------------------------------------------

export type ReadConverter = (value: unknown) => PlainValue;

function notReadable(path: string, cql: CqlType, arrow: DataType, why = ""): ConduitError {
  const natural = (() => {
    try {
      return describeType(arrowTypeOf(cql, path));
    } catch {
      return undefined;
    }
  })();
  return invalidArgument(
    "COLUMN_TYPE_MISMATCH",
    `Column '${path}' has CQL type ${cqlTypeText(cql)}, which cannot be read as ${describeType(arrow)}${why}.${natural ? ` Read it as ${natural}${cql.kind === "scalar" && natural !== "string" ? " or string" : ""}.` : ""}`,
    { column: path, cqlType: cqlTypeText(cql), type: describeType(arrow) },
  );
}

function readOutOfRange(path: string, arrow: DataType, value: string, reason: string): ConduitError {
  return invalidArgument(
    "VALUE_OUT_OF_RANGE",
    `Column '${path}' is read as ${describeType(arrow)}, but the table holds ${preview(value)}, which ${reason}. Read the column with a wider type or as string.`,
    { column: path, type: describeType(arrow), value: preview(value) },
  );
}

function hex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}`;
}

function iterable(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  const elements = (value as { elements?: unknown[] }).elements; // Tuple, Vector
  if (Array.isArray(elements)) return elements;
  return [...(value as Iterable<unknown>)];
}

function mapEntries(value: unknown): Array<[unknown, unknown]> {
  if (value instanceof Map) return [...value.entries()];
  return Object.entries(value as Record<string, unknown>);
}

function durationText(value: unknown): string {
  const text = String(value);
  return text === "" || text === "-" ? "0s" : text;
}

function quoteCqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** CQL literal text of a driver value (strings are quoted inside collections). */
function cqlLiteral(value: unknown, type: CqlType, nested: boolean): string {
  if (value === null || value === undefined) return "null";
  switch (type.kind) {
    case "scalar":
      switch (type.name) {
        case "ascii":
        case "text":
          return nested ? quoteCqlString(value as string) : (value as string);
        case "blob":
          return hex(value as Uint8Array);
        case "timestamp": {
          const text = (value as Date).toISOString();
          return nested ? quoteCqlString(text) : text;
        }
        case "duration":
          return durationText(value);
        case "uuid":
        case "timeuuid":
        case "boolean":
        case "decimal":
        case "varint":
        case "bigint":
        case "counter":
        case "int":
        case "smallint":
        case "tinyint":
        case "float":
        case "double":
          return String(value);
        case "time": {
          const text = formatTime(timeNanos(value));
          return nested ? quoteCqlString(text) : text;
        }
        case "inet":
        case "date":
          return nested ? quoteCqlString(String(value)) : String(value);
      }
      break;
    case "list":
    case "vector":
      return `[${iterable(value)
        .map((v) => cqlLiteral(v, type.element, true))
        .join(", ")}]`;
    case "set":
      return `{${iterable(value)
        .map((v) => cqlLiteral(v, type.element, true))
        .join(", ")}}`;
    case "map":
      return `{${mapEntries(value)
        .map(([k, v]) => `${cqlLiteral(k, type.key, true)}: ${cqlLiteral(v, type.value, true)}`)
        .join(", ")}}`;
    case "udt": {
      const row = value as Record<string, unknown>;
      return `{${type.fields.map((f) => `${quoteIdentifier(f.name)}: ${cqlLiteral(row[f.name], f.type, true)}`).join(", ")}}`;
    }
    case "tuple": {
      const items = iterable(value);
      return `(${type.elements.map((t, i) => cqlLiteral(items[i], t, true)).join(", ")})`;
    }
    case "unsupported":
      break;
  }
  return String(value);
}

/** Nanoseconds since midnight as CQL's "HH:MM:SS.nnnnnnnnn". */
export function formatTime(nanos: bigint): string {
  const seconds = nanos / 1_000_000_000n;
  const pad = (n: bigint) => n.toString().padStart(2, "0");
  return `${pad(seconds / 3600n)}:${pad((seconds / 60n) % 60n)}:${pad(seconds % 60n)}.${(nanos % 1_000_000_000n).toString().padStart(9, "0")}`;
}

/** A driver integer-ish value (number, bigint) as bigint. */
function toBigInt(value: unknown): bigint {
  return typeof value === "bigint" ? value : BigInt(value as number);
}

/** The driver's BigDecimal and Integer as they hold their value (checked before use). */
interface DriverBigDecimal {
  _intVal?: { bits_?: unknown; sign_?: unknown };
  _scale?: unknown;
}

/**
 * The driver's BigDecimal as an exact DecimalValue, from the 32-bit words of its unscaled
 * Integer (little-endian, sign-extended by `sign_`): about ten times cheaper than parsing
 * its text. Falls back to the text if the driver ever holds it differently.
 */
export function decimalOfBigDecimal(value: unknown): DecimalValue {
  const { _intVal: integer, _scale: scale } = value as DriverBigDecimal;
  const bits = integer?.bits_;
  const sign = integer?.sign_;
  if (!Array.isArray(bits) || typeof scale !== "number" || (sign !== 0 && sign !== -1)) return DecimalValue.parse(String(value));
  if (bits.length <= 1) {
    const unsigned = bits.length === 0 ? 0 : (bits[0] as number) >>> 0;
    return new DecimalValue(BigInt(sign === -1 ? unsigned - 2 ** (32 * bits.length) : unsigned), scale);
  }
  let unscaled = 0n;
  for (let i = bits.length - 1; i >= 0; i--) unscaled = (unscaled << 32n) | BigInt((bits[i] as number) >>> 0);
  if (sign === -1) unscaled -= 1n << BigInt(32 * bits.length);
  return new DecimalValue(unscaled, scale);
}

function decimalOfDriver(value: unknown, cql: CqlScalar): DecimalValue {
  if (cql === "decimal") return decimalOfBigDecimal(value);
  return new DecimalValue(toBigInt(value), 0);
}

/** Converts driver decimals to `arrow`'s decimal(p,s), refusing values that do not fit. */
function decimalFitter(arrow: DataType, path: string): (value: DecimalValue) => DecimalValue {
  const d = arrow as unknown as ArrowDecimal;
  const limit = 10n ** BigInt(d.precision);
  return (value) => {
    let rescaled: DecimalValue;
    try {
      rescaled = value.rescale(d.scale);
    } catch {
      throw readOutOfRange(path, arrow, value.toString(), `has more than ${d.scale} digits after the decimal point`);
    }
    if (rescaled.unscaled >= limit || rescaled.unscaled <= -limit) throw readOutOfRange(path, arrow, value.toString(), `has more than ${d.precision - d.scale} digits before the decimal point`);
    return rescaled;
  };
}

function fitInt(value: bigint, arrow: DataType, path: string): number | bigint {
  const int = arrow as unknown as ArrowInt;
  const [min, max] = intRange(int.bitWidth, int.isSigned);
  if (value < min || value > max) throw readOutOfRange(path, arrow, value.toString(), `does not fit (range ${min} to ${max})`);
  return int.bitWidth === 64 ? value : Number(value);
}

function timeNanos(value: unknown): bigint {
  const local = value as { getTotalNanoseconds?: () => { toString(): string }; value?: { toString(): string } };
  const total = local.getTotalNanoseconds ? local.getTotalNanoseconds() : local.value;
  return BigInt(String(total));
}

function dateDays(value: unknown, path: string, arrow: DataType): number {
  const local = value as { date: Date; _value: number | null };
  const ms = local.date.getTime();
  if (Number.isNaN(ms)) {
    if (typeof local._value === "number") return local._value;
    throw readOutOfRange(path, arrow, String(value), "is outside the supported date range");
  }
  return Math.floor(ms / MILLIS_PER_DAY);
}

function scalarReader(cql: CqlScalar, arrow: DataType, path: string, type: CqlType): ReadConverter | undefined {
  const fail = () => notReadable(path, type, arrow);
  switch (arrow.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return (v) => cqlLiteral(v, type, false);
    case Type.Int: {
      const bits = INT_BITS[cql];
      const int = arrow as unknown as ArrowInt;
      // The driver gives numbers up to int and bigints for bigint and counter: where every
      // value fits, they are the plain value already.
      if (bits !== undefined && int.isSigned && int.bitWidth >= bits && (bits === 64) === (int.bitWidth === 64)) return (v) => v as number | bigint;
      if (bits !== undefined || cql === "varint") return (v) => fitInt(toBigInt(v), arrow, path);
      if (cql === "time" && (arrow as unknown as ArrowInt).bitWidth === 64) return (v) => timeNanos(v);
      throw fail();
    }
    case Type.Float: {
      const precision = (arrow as unknown as { precision: number }).precision;
      if (cql === "float" || cql === "double" || INT_BITS[cql] !== undefined || cql === "varint") {
        return precision === 1 ? (v) => Math.fround(Number(v)) : (v) => Number(v);
      }
      if (cql === "decimal") return (v) => (precision === 1 ? Math.fround(Number(String(v))) : Number(String(v)));
      throw fail();
    }
    case Type.Decimal:
      if (cql === "decimal" || cql === "varint" || INT_BITS[cql] !== undefined) {
        const fit = decimalFitter(arrow, path);
        return (v) => fit(decimalOfDriver(v, cql));
      }
      throw fail();
    case Type.Bool:
      if (cql === "boolean") return (v) => v as boolean;
      throw fail();
    case Type.Binary:
    case Type.LargeBinary:
      if (cql === "blob") return (v) => v as Uint8Array;
      throw fail();
    case Type.Date:
      if (cql === "date") return (v) => dateDays(v, path, arrow);
      if (cql === "timestamp") return (v) => Math.floor((v as Date).getTime() / MILLIS_PER_DAY);
      throw fail();
    case Type.Timestamp:
      if (cql === "timestamp") return (v) => BigInt((v as Date).getTime()) * 1000n;
      if (cql === "date") return (v) => BigInt(dateDays(v, path, arrow)) * BigInt(MILLIS_PER_DAY) * 1000n;
      throw fail();
    default:
      throw fail();
  }
}

/**
 * Builds the converter from driver values of `cql` to plain values of `arrow`; throws
 * COLUMN_TYPE_MISMATCH (at planning time) when the column cannot be read as that type.
 */
export function readConverter(cql: CqlType, arrow: DataType, path: string): ReadConverter {
  const wrapNull =
    (convert: ReadConverter): ReadConverter =>
    (v) =>
      v === null || v === undefined ? null : convert(v);
  if (cql.kind === "unsupported") throw unsupportedType(path, cql);
  if (arrow.typeId === Type.Utf8 || arrow.typeId === Type.LargeUtf8) {
    // Text reads as it is (the common case, so without the literal formatting).
    if (cql.kind === "scalar" && (cql.name === "text" || cql.name === "ascii")) return wrapNull((v) => v as string);
    return wrapNull((v) => cqlLiteral(v, cql, false));
  }
  switch (cql.kind) {
    case "scalar":
      return wrapNull(scalarReader(cql.name, arrow, path, cql)!);
    case "list":
    case "set":
    case "vector": {
      if (arrow.typeId !== Type.List && arrow.typeId !== Type.FixedSizeList) throw notReadable(path, cql, arrow);
      const element = readConverter(cql.element, arrow.children[0]!.type, `${path}[]`);
      return wrapNull((v) => iterable(v).map(element));
    }
    case "map": {
      if (arrow.typeId !== Type.Map) throw notReadable(path, cql, arrow);
      const entries = arrow.children[0]!.type as Struct;
      const key = readConverter(cql.key, entries.children[0]!.type, `${path}{key}`);
      const value = readConverter(cql.value, entries.children[1]!.type, `${path}{value}`);
      return wrapNull((v) => {
        const pairs: Array<[PlainValue, PlainValue]> = [];
        if (v instanceof Map) v.forEach((val, k) => pairs.push([key(k), value(val)]));
        else for (const [k, val] of mapEntries(v)) pairs.push([key(k), value(val)]);
        return pairs;
      });
    }
    case "udt": {
      if (arrow.typeId !== Type.Struct) throw notReadable(path, cql, arrow);
      const fields = (arrow.children as Field[]).map((child) => {
        const udtField = cql.fields.find((f) => f.name === child.name);
        if (!udtField) {
          const suggestion = closestMatch(child.name, cql.fields.map((f) => f.name));
          throw invalidArgument(
            "COLUMN_TYPE_MISMATCH",
            `Field '${child.name}' of column '${path}' is not a field of the user-defined type ${cql.name}.${suggestion ? ` Did you mean '${suggestion}'?` : ""} Its fields: ${cql.fields.map((f) => f.name).join(", ")}.`,
            { column: `${path}.${child.name}`, cqlType: cql.name, suggestion: suggestion ?? "" },
          );
        }
        return { name: child.name, convert: readConverter(udtField.type, child.type, `${path}.${child.name}`) };
      });
      return wrapNull((v) => {
        const row = v as Record<string, unknown>;
        const out: { [key: string]: PlainValue } = {};
        for (const f of fields) out[f.name] = f.convert(row[f.name]);
        return out;
      });
    }
    case "tuple": {
      if (arrow.typeId !== Type.Struct || arrow.children.length !== cql.elements.length) {
        throw notReadable(path, cql, arrow, ` (a tuple reads as a struct with one field per element, ${cql.elements.length} here)`);
      }
      const fields = (arrow.children as Field[]).map((child, i) => ({ name: child.name, convert: readConverter(cql.elements[i]!, child.type, `${path}.${child.name}`) }));
      return wrapNull((v) => {
        const items = iterable(v);
        const out: { [key: string]: PlainValue } = {};
        fields.forEach((f, i) => (out[f.name] = f.convert(items[i])));
        return out;
      });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Writes: plain value -> driver value
// ---------------------------------------------------------------------------------------

/** Where a value comes from, for error messages; the writer updates it as it goes. */
export interface RowPosition {
  /** Row index within the task. */
  row: number;
  /** Spark partition id of the task. */
  partition: number;
}

export type WriteConverter = (value: PlainValue, at: RowPosition) => unknown;

/** Converters that take every non-null value of their Arrow type (identities, widenings, exact rescalings). */
const infallibleConverters = new WeakSet<WriteConverter>();

function infallible(convert: WriteConverter): WriteConverter {
  infallibleConverters.add(convert);
  return convert;
}

/**
 * Whether `convert` may reject a non-null value. The writer checks a whole Arrow batch
 * before sending any of it, and skips the columns whose converter cannot reject.
 */
export function mayReject(convert: WriteConverter): boolean {
  return !infallibleConverters.has(convert);
}

function notWritable(path: string, arrow: DataType, cql: CqlType, why = ""): ConduitError {
  return invalidArgument(
    "COLUMN_TYPE_MISMATCH",
    `Column '${path}' is ${describeType(arrow)} in the DataFrame, but its CQL type is ${cqlTypeText(cql)}${why ? `: ${why}` : ""}. Cast the column to a type that converts (see the type mapping in the README), e.g. .withColumn("${path.split(/[.[{]/)[0]}", col("${path.split(/[.[{]/)[0]}").cast(...)).`,
    { column: path, type: describeType(arrow), cqlType: cqlTypeText(cql) },
  );
}

function badValue(errorClass: string, path: string, cql: CqlType, value: PlainValue, at: RowPosition, reason: string): ConduitError {
  return invalidArgument(
    errorClass,
    `Column '${path}' (${cqlTypeText(cql)}) cannot take the value ${plainText(value)} in row ${at.row} of task ${at.partition}: ${reason}.`,
    { column: path, cqlType: cqlTypeText(cql), value: plainText(value), row: String(at.row), partition: String(at.partition) },
  );
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME_PATTERN = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const DURATION_STANDARD = /^-?(\d+(y|mo|w|d|h|m|s|ms|us|µs|ns))+$/i;
const DURATION_ISO = /^-?P(?=.)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;
const DURATION_ISO_ALT = /^-?P\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

/** A bigint as the driver's Integer, from its 32-bit words (no text round trip). */
export function driverInteger(value: bigint): unknown {
  if (value >= -2_147_483_648n && value <= 2_147_483_647n) return types.Integer.fromInt(Number(value));
  const stop = value < 0n ? -1n : 0n;
  const bits: number[] = [];
  for (let v = value; v !== stop; v >>= 32n) bits.push(Number(BigInt.asIntN(32, v)));
  return new types.Integer(bits, value < 0n ? -1 : 0);
}

function toDriverBigDecimal(value: DecimalValue): unknown {
  return new BigDecimal(driverInteger(value.unscaled), value.scale);
}

function toLocalTime(nanos: bigint): unknown {
  return new types.LocalTime(types.Long.fromString(nanos.toString()));
}

/** Parses "HH:MM[:SS[.fffffffff]]" to nanoseconds since midnight, or undefined. */
export function parseTime(text: string): bigint | undefined {
  const m = TIME_PATTERN.exec(text.trim());
  if (!m) return undefined;
  const [h, min, s] = [Number(m[1]), Number(m[2]), Number(m[3] ?? "0")];
  if (h > 23 || min > 59 || s > 59) return undefined;
  const fraction = BigInt((m[4] ?? "").padEnd(9, "0") || "0");
  return (BigInt(h) * 3600n + BigInt(min) * 60n + BigInt(s)) * 1_000_000_000n + fraction;
}

/** Integer plain value (number or bigint) or integral decimal as bigint; undefined when it has a fraction. */
function integralOf(value: PlainValue): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(value);
  if (value instanceof DecimalValue) {
    try {
      return value.rescale(0).unscaled;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function integerWriter(target: CqlScalar, path: string, cql: CqlType): WriteConverter {
  const bits = INT_BITS[target];
  if (bits === undefined) {
    // varint: any integer
    return (v, at) => {
      const n = integralOf(v);
      if (n === undefined) throw badValue("VALUE_OUT_OF_RANGE", path, cql, v, at, "a varint holds whole numbers only");
      return n;
    };
  }
  const [min, max] = intRange(bits);
  return (v, at) => {
    const n = integralOf(v);
    if (n === undefined) throw badValue("VALUE_OUT_OF_RANGE", path, cql, v, at, `${target} holds whole numbers only`);
    if (n < min || n > max) throw badValue("VALUE_OUT_OF_RANGE", path, cql, v, at, `${target} holds ${min} to ${max}`);
    return bits === 64 ? n : Number(n);
  };
}

function stringScalarWriter(target: CqlScalar, path: string, cql: CqlType): WriteConverter | undefined {
  switch (target) {
    case "text":
      return infallible((v) => v as string);
    case "ascii":
      return (v, at) => {
        if (!/^[\x00-\x7f]*$/.test(v as string)) throw badValue("INVALID_ASCII", path, cql, v, at, "ascii columns hold only US-ASCII characters");
        return v;
      };
    case "uuid":
      return (v, at) => {
        const text = (v as string).trim();
        if (!UUID_PATTERN.test(text)) throw badValue("INVALID_UUID", path, cql, v, at, "expected a UUID such as '550e8400-e29b-41d4-a716-446655440000'");
        return types.Uuid.fromString(text.toLowerCase());
      };
    case "timeuuid":
      return (v, at) => {
        const text = (v as string).trim();
        if (!UUID_PATTERN.test(text)) throw badValue("INVALID_UUID", path, cql, v, at, "expected a time-based (version 1) UUID");
        if (text[14] !== "1") throw badValue("INVALID_UUID", path, cql, v, at, `a timeuuid must be a version 1 (time-based) UUID, this one is version ${text[14]}`);
        return types.TimeUuid.fromString(text.toLowerCase());
      };
    case "inet":
      return (v, at) => {
        const text = (v as string).trim();
        if (isIP(text) === 0) throw badValue("INVALID_INET", path, cql, v, at, "expected an IPv4 or IPv6 address such as '192.168.0.1' or '::1'");
        return types.InetAddress.fromString(text);
      };
    case "duration":
      return (v, at) => {
        const text = (v as string).trim();
        if (!DURATION_STANDARD.test(text) && !DURATION_ISO.test(text) && !DURATION_ISO_ALT.test(text)) {
          throw badValue("INVALID_DURATION", path, cql, v, at, "expected a duration such as '1h30m', '2d', 'P1DT2H' or 'P0001-00-02T03:00:00'");
        }
        try {
          return types.Duration.fromString(text);
        } catch (cause) {
          throw badValue("INVALID_DURATION", path, cql, v, at, `not a valid duration (${(cause as Error).message})`);
        }
      };
    case "time":
      return (v, at) => {
        const nanos = parseTime(v as string);
        if (nanos === undefined) throw badValue("INVALID_TIME", path, cql, v, at, "expected a time of day such as '13:45:00' or '13:45:00.123456789'");
        return toLocalTime(nanos);
      };
    case "decimal":
    case "varint":
      return (v, at) => {
        let parsed: DecimalValue;
        try {
          parsed = DecimalValue.parse(v as string);
        } catch {
          throw badValue("INVALID_NUMBER", path, cql, v, at, "expected a decimal number such as '12.50'");
        }
        if (target === "decimal") return toDriverBigDecimal(parsed);
        return integerWriter("varint", path, cql)(parsed, at);
      };
    default:
      return undefined;
  }
}

function scalarWriter(arrow: DataType, target: CqlScalar, path: string, cql: CqlType): WriteConverter {
  const fail = (why?: string) => notWritable(path, arrow, cql, why);
  switch (arrow.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8: {
      const writer = stringScalarWriter(target, path, cql);
      if (writer) return writer;
      throw fail();
    }
    case Type.Int: {
      const int = arrow as unknown as ArrowInt;
      if (target === "counter") throw fail("counter columns can only be incremented, which this connector does not do");
      const bits = INT_BITS[target];
      if (bits !== undefined && (int.isSigned ? int.bitWidth <= bits : int.bitWidth < bits)) {
        // Every value fits: numbers up to 32 bits, bigints for bigint columns.
        if (bits < 64) return infallible((v) => v);
        return infallible(int.bitWidth === 64 ? (v) => v : (v) => BigInt(v as number));
      }
      if (bits !== undefined || target === "varint") return integerWriter(target, path, cql);
      if (target === "decimal") return infallible((v) => new BigDecimal(driverInteger(BigInt(v as number | bigint)), 0));
      if (target === "double" && int.bitWidth <= 32) return infallible((v) => Number(v));
      if (target === "float" && int.bitWidth <= 16) return infallible((v) => Number(v));
      if (target === "time" && int.bitWidth === 64) {
        return (v, at) => {
          const n = v as bigint;
          if (n < 0n || n >= NANOS_PER_DAY) throw badValue("VALUE_OUT_OF_RANGE", path, cql, v, at, "time holds nanoseconds since midnight, 0 to 86399999999999");
          return toLocalTime(n);
        };
      }
      if (target === "double" || target === "float") throw fail(`a ${describeType(arrow)} does not always fit exactly; cast it to double or decimal first`);
      throw fail();
    }
    case Type.Float: {
      const precision = (arrow as unknown as { precision: number }).precision;
      if (target === "double") return infallible((v) => v as number);
      if (target === "float") {
        if (precision === 1) return infallible((v) => v as number);
        return (v, at) => {
          const n = v as number;
          const rounded = Math.fround(n);
          if (Number.isFinite(n) && !Number.isFinite(rounded)) throw badValue("VALUE_OUT_OF_RANGE", path, cql, v, at, "it is beyond the range of a float (about 3.4E38)");
          return rounded;
        };
      }
      if (target === "decimal") throw fail("floating-point values are not exact; cast the column to a decimal(p,s) first");
      throw fail();
    }
    case Type.Decimal: {
      if (target === "decimal") return infallible((v) => toDriverBigDecimal(v as DecimalValue));
      if (INT_BITS[target] !== undefined || target === "varint") {
        if (target === "counter") throw fail("counter columns can only be incremented, which this connector does not do");
        return integerWriter(target, path, cql);
      }
      throw fail();
    }
    case Type.Bool:
      if (target === "boolean") return infallible((v) => v as boolean);
      throw fail();
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      if (target === "blob") return infallible((v) => Buffer.from((v as Uint8Array).buffer, (v as Uint8Array).byteOffset, (v as Uint8Array).byteLength));
      throw fail();
    case Type.Date:
      if (target === "date") return infallible((v) => new LocalDate(v as number));
      if (target === "timestamp") return infallible((v) => new Date((v as number) * MILLIS_PER_DAY));
      throw fail();
    case Type.Timestamp:
      // Cassandra stores milliseconds: the microseconds are truncated toward the past.
      if (target === "timestamp") return infallible((v) => new Date(Number(floorDiv(v as bigint, 1000n))));
      throw fail();
    default:
      throw fail();
  }
}

/**
 * An empty collection, already serialized (element count 0). The driver would bind `[]`
 * as null, which would make an empty frozen collection read back as null.
 */
export function emptyCollection(): Buffer {
  return Buffer.alloc(4);
}

function nullInCollection(path: string, cql: CqlType, at: RowPosition): ConduitError {
  return invalidArgument(
    "NULL_IN_COLLECTION",
    `Column '${path}' (${cqlTypeText(cql)}) holds a null element in row ${at.row} of task ${at.partition}; Cassandra collections cannot contain nulls. Remove the nulls (e.g. array_compact) before writing.`,
    { column: path, cqlType: cqlTypeText(cql), row: String(at.row), partition: String(at.partition) },
  );
}

/**
 * Builds the converter from plain values of `arrow` to driver values for a column of
 * `cql`; throws COLUMN_TYPE_MISMATCH (at planning time) when no conversion exists.
 * Top-level nulls are the writer's business; nested nulls become null (UDT fields, tuple
 * elements) or fail (collection elements).
 */
export function writeConverter(arrow: DataType, cql: CqlType, path: string): WriteConverter {
  if (cql.kind === "unsupported") throw unsupportedType(path, cql);
  if (arrow.typeId === Type.Null) return infallible(() => null);
  const nested = (convert: WriteConverter, elementCql: CqlType): WriteConverter => {
    return (v, at) => {
      if (v === null) throw nullInCollection(path, elementCql, at);
      return convert(v, at);
    };
  };
  const nullable =
    (convert: WriteConverter): WriteConverter =>
    (v, at) =>
      v === null ? null : convert(v, at);
  switch (cql.kind) {
    case "scalar":
      return scalarWriter(arrow, cql.name, path, cql);
    case "list":
    case "set":
    case "vector": {
      if (arrow.typeId !== Type.List && arrow.typeId !== Type.FixedSizeList) throw notWritable(path, arrow, cql);
      const element = nested(writeConverter(arrow.children[0]!.type, cql.element, `${path}[]`), cql);
      if (cql.kind === "vector") {
        const elementType = cqlTypeText(cql.element);
        return (v, at) => {
          const items = v as PlainValue[];
          if (items.length !== cql.dimension) throw badValue("VECTOR_DIMENSION_MISMATCH", path, cql, v, at, `it has ${items.length} elements, the vector ${cql.dimension}`);
          return new types.Vector(
            items.map((item) => element(item, at)),
            elementType,
          );
        };
      }
      return (v, at) => ((v as PlainValue[]).length === 0 ? emptyCollection() : (v as PlainValue[]).map((item) => element(item, at)));
    }
    case "map": {
      if (arrow.typeId !== Type.Map) throw notWritable(path, arrow, cql);
      const entries = arrow.children[0]!.type as Struct;
      const key = nested(writeConverter(entries.children[0]!.type, cql.key, `${path}{key}`), cql);
      const value = nested(writeConverter(entries.children[1]!.type, cql.value, `${path}{value}`), cql);
      return (v, at) => {
        if ((v as Array<[PlainValue, PlainValue]>).length === 0) return emptyCollection();
        const out = new Map<unknown, unknown>();
        for (const [k, val] of v as Array<[PlainValue, PlainValue]>) out.set(key(k, at), value(val, at));
        return out;
      };
    }
    case "udt": {
      if (arrow.typeId !== Type.Struct) throw notWritable(path, arrow, cql, "a user-defined type is written from a struct with the same field names");
      const fields = (arrow.children as Field[]).map((child) => {
        const udtField = cql.fields.find((f) => f.name === child.name);
        if (!udtField) {
          const suggestion = closestMatch(child.name, cql.fields.map((f) => f.name));
          throw invalidArgument(
            "UDT_FIELD_UNKNOWN",
            `Field '${child.name}' of column '${path}' is not a field of the user-defined type ${cql.name}.${suggestion ? ` Did you mean '${suggestion}'?` : ""} Its fields: ${cql.fields.map((f) => f.name).join(", ")}.`,
            { column: `${path}.${child.name}`, cqlType: cql.name, suggestion: suggestion ?? "" },
          );
        }
        return { name: child.name, convert: nullable(writeConverter(child.type, udtField.type, `${path}.${child.name}`)) };
      });
      return (v, at) => {
        const row = v as { [key: string]: PlainValue };
        const out: Record<string, unknown> = {};
        for (const f of fields) out[f.name] = f.convert(row[f.name] ?? null, at);
        return out;
      };
    }
    case "tuple": {
      if (arrow.typeId !== Type.Struct || arrow.children.length !== cql.elements.length) {
        throw notWritable(path, arrow, cql, `a tuple is written from a struct with ${cql.elements.length} fields, taken in order`);
      }
      const fields = (arrow.children as Field[]).map((child, i) => ({ name: child.name, convert: nullable(writeConverter(child.type, cql.elements[i]!, `${path}.${child.name}`)) }));
      return (v, at) => {
        const row = v as { [key: string]: PlainValue };
        return types.Tuple.fromArray(fields.map((f) => f.convert(row[f.name] ?? null, at)));
      };
    }
  }
}

// ---------------------------------------------------------------------------------------
// Arrow -> CQL native-protocol bytes (the writer's fast path)
// ---------------------------------------------------------------------------------------

/** Row `i` of the Arrow chunk it was bound to, as the serialized CQL value; null for a null. */
export type CellSerializer = (i: number) => Buffer | null;

/** A growable byte buffer that values are serialized into, one Arrow chunk at a time. */
class ByteArena {
  bytes: Buffer;
  used = 0;

  constructor(capacity: number) {
    this.bytes = Buffer.allocUnsafe(Math.max(capacity, 64));
  }

  reserve(extra: number): void {
    this.bytes = withRoom(this.bytes, this.used, extra);
  }
}

/** Writes the (non-null) value at index `i` of a chunk's buffers; the caller has written its length prefix, if any. */
type ValueWriter = (i: number, arena: ByteArena) => void;

/** A writer of values `size` bytes long: `put` writes value `i` at `at` (room reserved). */
function fixedWidth(size: number, put: (bytes: Buffer, at: number, i: number) => void): ValueWriter {
  return (i, arena) => {
    arena.reserve(size);
    put(arena.bytes, arena.used, i);
    arena.used += size;
  };
}

const DATE_EPOCH_DAY = 2 ** 31;
const TWO_POW_32 = 4_294_967_296;

/** An integer given as a (safe) number, as a 64-bit big-endian two's complement. */
function putInt64(bytes: Buffer, at: number, value: number): void {
  bytes.writeInt32BE(Math.floor(value / TWO_POW_32), at);
  bytes.writeUInt32BE(value >>> 0, at + 4);
}

/** Copies bytes [start, end) of `source` (short values byte by byte, which is faster than a native copy). */
function copyBytes(arena: ByteArena, source: Buffer, start: number, end: number): void {
  const length = end - start;
  arena.reserve(length);
  const target = arena.bytes;
  let at = arena.used;
  if (length < 32) for (let k = start; k < end; k++) target[at++] = source[k]!;
  else source.copy(target, at, start, end);
  arena.used += length;
}

/** A decimal's unscaled value (little-endian 32-bit words) as a minimal big-endian two's-complement varint. */
function writeDecimal(arena: ByteArena, scale: number, words: Uint32Array, at: number, stride: number): void {
  const size = stride * 4;
  arena.reserve(4 + size);
  const bytes = arena.bytes;
  bytes.writeInt32BE(scale, arena.used);
  const start = arena.used + 4;
  for (let w = 0; w < stride; w++) bytes.writeUInt32BE(words[at + stride - 1 - w]!, start + w * 4);
  // Drop leading bytes that only repeat the sign (Cassandra needs at least one byte).
  let skip = 0;
  while (skip < size - 1) {
    const lead = bytes[start + skip]!;
    const nextNegative = (bytes[start + skip + 1]! & 0x80) !== 0;
    if ((lead === 0x00 && !nextNegative) || (lead === 0xff && nextNegative)) skip++;
    else break;
  }
  if (skip > 0) bytes.copyWithin(start, start + skip, start + size);
  arena.used = start + size - skip;
}

/** Whether every value of Arrow integer type `arrow` fits CQL integer type `bits` wide. */
function intFits(arrow: DataType, bits: number): boolean {
  const int = arrow as unknown as ArrowInt;
  return int.isSigned ? int.bitWidth <= bits : int.bitWidth < bits;
}

function bytesOf(values: Uint8Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * The writer of one scalar value of `data` as CQL type `target`, for the conversions that
 * send a value unchanged (see `cellSerializer`); undefined for any other.
 */
function scalarValueWriter(data: Data, target: CqlScalar): ValueWriter | undefined {
  const arrow: DataType = data.type;
  switch (arrow.typeId) {
    case Type.Utf8:
    case Type.Binary: {
      if (target !== (arrow.typeId === Type.Utf8 ? "text" : "blob")) return undefined;
      const bytes = bytesOf(data.values as Uint8Array);
      const offsets = data.valueOffsets as Int32Array;
      return (i, arena) => copyBytes(arena, bytes, offsets[i]!, offsets[i + 1]!);
    }
    case Type.Int: {
      const { bitWidth } = arrow as unknown as ArrowInt;
      const bits = INT_BITS[target];
      const fits = target !== "counter" && bits !== undefined && intFits(arrow, bits);
      const exactFloat = (target === "double" && bitWidth <= 32) || (target === "float" && bitWidth <= 16);
      if (!fits && !exactFloat) return undefined;
      if (bitWidth === 64) {
        // Only a signed 64-bit source gets here, into bigint.
        const values = data.values as BigInt64Array;
        return fixedWidth(8, (bytes, at, i) => bytes.writeBigInt64BE(values[i]!, at));
      }
      const values = data.values as Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;
      switch (target) {
        case "tinyint":
          return fixedWidth(1, (bytes, at, i) => bytes.writeInt8(values[i]!, at));
        case "smallint":
          return fixedWidth(2, (bytes, at, i) => bytes.writeInt16BE(values[i]!, at));
        case "int":
          return fixedWidth(4, (bytes, at, i) => bytes.writeInt32BE(values[i]!, at));
        case "bigint":
          return fixedWidth(8, (bytes, at, i) => putInt64(bytes, at, values[i]!));
        case "double":
          return fixedWidth(8, (bytes, at, i) => bytes.writeDoubleBE(values[i]!, at));
        case "float":
          return fixedWidth(4, (bytes, at, i) => bytes.writeFloatBE(values[i]!, at));
        default:
          return undefined;
      }
    }
    case Type.Float: {
      const precision = (arrow as unknown as { precision: number }).precision;
      const values = data.values as Float32Array | Float64Array;
      if (precision !== 0 && target === "double") return fixedWidth(8, (bytes, at, i) => bytes.writeDoubleBE(values[i]!, at));
      if (precision === 1 && target === "float") return fixedWidth(4, (bytes, at, i) => bytes.writeFloatBE(values[i]!, at));
      return undefined;
    }
    case Type.Decimal: {
      if (target !== "decimal") return undefined;
      const { scale, bitWidth } = arrow as unknown as ArrowDecimal & { bitWidth: number };
      const stride = bitWidth / 32;
      const words = data.values as Uint32Array;
      return (i, arena) => writeDecimal(arena, scale, words, i * stride, stride);
    }
    case Type.Bool: {
      if (target !== "boolean") return undefined;
      const bits = data.values as Uint8Array;
      const offset = data.offset;
      return fixedWidth(1, (bytes, at, i) => (bytes[at] = (bits[(offset + i) >> 3]! >> ((offset + i) & 7)) & 1));
    }
    case Type.Date: {
      if ((arrow as unknown as { unit: DateUnit }).unit !== DateUnit.DAY) return undefined;
      const days = data.values as Int32Array;
      if (target === "date") return fixedWidth(4, (bytes, at, i) => bytes.writeUInt32BE(days[i]! + DATE_EPOCH_DAY, at));
      if (target === "timestamp") return fixedWidth(8, (bytes, at, i) => putInt64(bytes, at, days[i]! * MILLIS_PER_DAY));
      return undefined;
    }
    case Type.Timestamp: {
      if (target !== "timestamp") return undefined;
      const values = data.values as BigInt64Array;
      // Cassandra stores milliseconds: finer units are truncated toward the past.
      const perMilli = { [TimeUnit.SECOND]: 0n, [TimeUnit.MILLISECOND]: 1n, [TimeUnit.MICROSECOND]: 1000n, [TimeUnit.NANOSECOND]: 1_000_000n }[(arrow as unknown as { unit: TimeUnit }).unit];
      const toMillis = perMilli === 0n ? (v: bigint) => v * 1000n : perMilli === 1n ? (v: bigint) => v : (v: bigint) => floorDiv(v, perMilli);
      return fixedWidth(8, (bytes, at, i) => bytes.writeBigInt64BE(BigInt.asIntN(64, toMillis(values[i]!)), at));
    }
    default:
      return undefined;
  }
}

/** Whether a nested chunk holds a null (which a CQL collection cannot), making the fast path inapplicable. */
function holdsNull(data: Data): boolean {
  return data.nullCount > 0;
}

/** A collection's element count. */
function writeCount(arena: ByteArena, count: number): void {
  arena.reserve(4);
  arena.bytes.writeInt32BE(count, arena.used);
  arena.used += 4;
}

/** Writes `[length][bytes]` of value `i` through `write`. */
function writeSized(write: ValueWriter, i: number, arena: ByteArena): void {
  arena.reserve(4);
  const lengthAt = arena.used;
  arena.used += 4;
  write(i, arena);
  arena.bytes.writeInt32BE(arena.used - lengthAt - 4, lengthAt);
}

/** The writer of one value of `data` as `cql` (scalars, and lists, sets and maps of them), or undefined. */
function valueWriter(data: Data, cql: CqlType): ValueWriter | undefined {
  switch (cql.kind) {
    case "scalar":
      return scalarValueWriter(data, cql.name);
    case "list":
    case "set": {
      if (data.typeId !== Type.List) return undefined;
      const child = data.children[0]!;
      const element = holdsNull(child) ? undefined : valueWriter(child, cql.element);
      if (!element) return undefined;
      const offsets = data.valueOffsets as Int32Array;
      return (i, arena) => {
        writeCount(arena, offsets[i + 1]! - offsets[i]!);
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) writeSized(element, j, arena);
      };
    }
    case "map": {
      if (data.typeId !== Type.Map) return undefined;
      const entries = data.children[0]!;
      const [keys, values] = [entries.children[0]!, entries.children[1]!];
      const key = holdsNull(keys) ? undefined : valueWriter(keys, cql.key);
      const value = holdsNull(values) ? undefined : valueWriter(values, cql.value);
      if (!key || !value) return undefined;
      const offsets = data.valueOffsets as Int32Array;
      return (i, arena) => {
        writeCount(arena, offsets[i + 1]! - offsets[i]!);
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) {
          writeSized(key, j, arena);
          writeSized(value, j, arena);
        }
      };
    }
    default:
      return undefined;
  }
}

/**
 * Serializes one Arrow chunk of a column to CQL's native-protocol form of `cql`, where
 * the value goes to Cassandra unchanged: text from strings, blob from binary, integers
 * and floats into types that hold every value, decimals, dates, timestamps, booleans, and
 * lists, sets and maps of these without null elements. Undefined for every other case,
 * which the writer converts with `writeConverter` (and checks) instead.
 *
 * cassandra-driver sends a Buffer parameter as it is, so these values skip decoding into
 * JavaScript strings, decimals and Maps and the driver's encoding of them again. Strings
 * and binary values are views of the Arrow buffer; everything else is serialized for the
 * whole chunk into one buffer when the serializer is bound.
 */
export function cellSerializer(data: Data, cql: CqlType): CellSerializer | undefined {
  if (data.typeId === Type.Null) return undefined;
  const valid = validityOf(data);
  if (cql.kind === "scalar" && ((data.typeId === Type.Utf8 && cql.name === "text") || (data.typeId === Type.Binary && cql.name === "blob"))) {
    const bytes = bytesOf(data.values as Uint8Array);
    const offsets = data.valueOffsets as Int32Array;
    if (valid) return (i) => (valid(i) ? bytes.subarray(offsets[i]!, offsets[i + 1]!) : null);
    return (i) => bytes.subarray(offsets[i]!, offsets[i + 1]!);
  }
  const write = valueWriter(data, cql);
  if (!write) return undefined;
  const arena = new ByteArena(data.length * 8);
  const ends = new Int32Array(data.length + 1);
  for (let i = 0; i < data.length; i++) {
    if (!valid || valid(i)) write(i, arena);
    ends[i + 1] = arena.used;
  }
  const bytes = arena.bytes;
  if (valid) return (i) => (valid(i) ? bytes.subarray(ends[i]!, ends[i + 1]!) : null);
  return (i) => bytes.subarray(ends[i]!, ends[i + 1]!);
}

// ---------------------------------------------------------------------------------------
// Value size: Cassandra refuses a request over 16 MiB (native_transport_max_request_data
// and half of the default commitlog segment, the largest mutation) only once it arrives,
// after other rows of the batch were written; finding such a value first names it.
// ---------------------------------------------------------------------------------------

/** The largest text or blob value the writer sends: Cassandra's default request and mutation limit. */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;

/** Throws VALUE_TOO_LARGE for the first top-level text or blob value of `vector` over MAX_VALUE_BYTES. */
export function checkValueSizes(vector: Vector, column: string, table: string, partition: number, firstRow: number): void {
  const typeId = vector.type.typeId;
  if (typeId !== Type.Utf8 && typeId !== Type.Binary && typeId !== Type.LargeUtf8 && typeId !== Type.LargeBinary) return;
  let base = 0;
  for (const data of vector.data) {
    const offsets = data.valueOffsets as Int32Array | BigInt64Array;
    // Nothing in this chunk can be over the limit when all its values together are not.
    if (Number(offsets[data.length]) - Number(offsets[0]) > MAX_VALUE_BYTES) {
      for (let i = 0; i < data.length; i++) {
        const bytes = Number(offsets[i + 1]) - Number(offsets[i]);
        if (bytes > MAX_VALUE_BYTES) {
          const row = firstRow + base + i;
          throw invalidArgument(
            "VALUE_TOO_LARGE",
            `Column '${column}' holds a value of ${bytes} bytes in row ${row} of task ${partition}, over the ${MAX_VALUE_BYTES} bytes (16 MiB) Cassandra accepts in one request by default, so ${table} cannot take it. No row of this Arrow batch was written. Store large objects elsewhere and keep a reference, or split the value.`,
            { column, table, row: String(row), partition: String(partition), bytes: String(bytes) },
          );
        }
      }
    }
    base += data.length;
  }
}
