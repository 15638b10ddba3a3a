/**
 * DynamoDB AttributeValues <-> plain values (see `arrow/values.ts`), driven by the Arrow
 * field type, plus schema inference from sampled items.
 *
 * Reads accept what a DynamoDB attribute can faithfully become in the column's type and
 * fail loudly (naming the column and value) otherwise, rather than reading a silent null:
 * a string column accepts anything (numbers as their text, the rest as JSON-like text),
 * numeric columns accept N with range and precision checks, a timestamp accepts an
 * ISO-8601 S or epoch seconds in N.
 *
 * Writes never lose digits: doubles are written with the shortest text that reads back as
 * the same double (0.1 -> "0.1"), floats with the shortest text that reads back as the same
 * float32, decimals with every digit. Lists are always L (never SS/NS/BS: sets cannot hold
 * duplicates or be empty). Top-level nulls are omitted by the writer; nested nulls are NULL.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Binary, Bool, DataType, Field, Float64, Int64, List, Map_, Schema, Struct, Type, Utf8 } from "apache-arrow";
import { invalidArgument } from "../../core/errors.js";
import { checkDistinctColumnNames } from "../../arrow/schema-checks.js";
import { DecimalValue, describeType, type PlainValue } from "../../arrow/values.js";

export type Item = Record<string, AttributeValue>;
export type KeyAttributeType = "S" | "N" | "B";

const MICROS_PER_SECOND = 1_000_000n;
const MILLIS_PER_DAY = 86_400_000;

// ---------------------------------------------------------------------------------------
// Type support checks (run at planning time so a bad schema fails before any task runs)
// ---------------------------------------------------------------------------------------

function unsupported(path: string, type: DataType, direction: "read" | "write", why = ""): never {
  throw invalidArgument(
    "UNSUPPORTED_COLUMN_TYPE",
    `Column '${path}' has type ${describeType(type)}, which format 'dynamodb' cannot ${direction}${why}. Supported: string, tinyint, smallint, int, bigint, float, double, decimal, boolean, binary, date, timestamp, and arrays, maps with string keys and structs of these.`,
    { column: path, type: describeType(type) },
  );
}

function checkType(type: DataType, path: string, direction: "read" | "write"): void {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Int:
    case Type.Float:
    case Type.Decimal:
    case Type.Bool:
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
    case Type.Date:
    case Type.Timestamp:
      return;
    case Type.Null:
      if (direction === "write") return; // an all-null column writes nothing
      return unsupported(path, type, direction);
    case Type.List:
    case Type.FixedSizeList:
      return checkType(type.children[0]!.type, `${path}[]`, direction);
    case Type.Map: {
      const entries = type.children[0]!.type as Struct;
      const keyType = entries.children[0]!.type;
      if (keyType.typeId !== Type.Utf8 && keyType.typeId !== Type.LargeUtf8) unsupported(path, type, direction, " (DynamoDB map keys are strings)");
      return checkType(entries.children[1]!.type, `${path}{}`, direction);
    }
    case Type.Struct:
      for (const child of type.children) checkType(child.type, `${path}.${child.name}`, direction);
      return;
    default:
      return unsupported(path, type, direction);
  }
}

/** Throws UNSUPPORTED_COLUMN_TYPE for the first column that cannot be read. */
export function checkReadSchema(schema: Schema): void {
  for (const field of schema.fields) checkType(field.type, field.name, "read");
}

/** Throws UNSUPPORTED_COLUMN_TYPE for the first column that cannot be written. */
export function checkWriteSchema(schema: Schema, skip: ReadonlySet<string> = new Set()): void {
  checkDistinctColumnNames(schema, "a DynamoDB table");
  for (const field of schema.fields) if (!skip.has(field.name)) checkType(field.type, field.name, "write");
}

/** The key attribute type a column's values are written as, or undefined if none fits. */
export function keyAttributeTypeOf(type: DataType): KeyAttributeType | undefined {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Date:
    case Type.Timestamp:
      return "S";
    case Type.Int:
    case Type.Decimal:
    case Type.Float:
      return "N";
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      return "B";
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Reads: AttributeValue -> PlainValue
// ---------------------------------------------------------------------------------------

function tagOf(av: AttributeValue): string {
  for (const tag of ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"] as const) {
    if ((av as unknown as Record<string, unknown>)[tag] !== undefined) return tag;
  }
  return "unknown";
}

function preview(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function mismatch(av: AttributeValue, type: DataType, path: string): never {
  const tag = tagOf(av);
  throw invalidArgument(
    "TYPE_MISMATCH",
    `Column '${path}' is ${describeType(type)} but an item holds a DynamoDB ${tag} value ${preview(attributeText(av))} there. Read the column as string, or give a schema that matches the data.`,
    { column: path, type: describeType(type), attributeType: tag, value: preview(attributeText(av)) },
  );
}

function outOfRange(path: string, type: DataType, value: string, reason: string): never {
  throw invalidArgument("VALUE_OUT_OF_RANGE", `Column '${path}' is ${describeType(type)} but an item holds the number ${preview(value)}, which ${reason}.`, {
    column: path,
    type: describeType(type),
    value: preview(value),
  });
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** JSON-like text of an attribute: numbers as their digits, binary as base64, map keys sorted. */
export function attributeText(av: AttributeValue): string {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return av.N;
  if (av.B !== undefined) return base64(av.B);
  return jsonText(av);
}

function jsonText(av: AttributeValue): string {
  if (av.S !== undefined) return JSON.stringify(av.S);
  if (av.N !== undefined) return av.N;
  if (av.BOOL !== undefined) return av.BOOL ? "true" : "false";
  if (av.NULL !== undefined) return "null";
  if (av.B !== undefined) return JSON.stringify(base64(av.B));
  if (av.L !== undefined) return `[${av.L.map(jsonText).join(",")}]`;
  if (av.SS !== undefined) return `[${av.SS.map((s) => JSON.stringify(s)).join(",")}]`;
  if (av.NS !== undefined) return `[${av.NS.join(",")}]`;
  if (av.BS !== undefined) return `[${av.BS.map((b) => JSON.stringify(base64(b))).join(",")}]`;
  if (av.M !== undefined) {
    const keys = Object.keys(av.M).sort(compareNames);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jsonText(av.M![k]!)}`).join(",")}}`;
  }
  return "null";
}

/** Code-point order, as Python's sorted() (the seed's column order). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseNumber(text: string, type: DataType, path: string): DecimalValue {
  try {
    return DecimalValue.parse(text);
  } catch {
    return outOfRange(path, type, text, "is not a number");
  }
}

function integerFromNumber(text: string, type: DataType, path: string): bigint {
  const decimal = parseNumber(text, type, path);
  let integral: DecimalValue;
  try {
    integral = decimal.rescale(0);
  } catch {
    return outOfRange(path, type, text, "is not a whole number");
  }
  const int = type as DataType<Type.Int> & { bitWidth: number; isSigned: boolean };
  const bits = BigInt(int.bitWidth);
  const min = int.isSigned ? -(1n << (bits - 1n)) : 0n;
  const max = int.isSigned ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (integral.unscaled < min || integral.unscaled > max) outOfRange(path, type, text, `does not fit (range ${min} to ${max})`);
  return integral.unscaled;
}

function decimalFromNumber(text: string, type: DataType, path: string): DecimalValue {
  const d = type as DataType<Type.Decimal> & { precision: number; scale: number };
  let value: DecimalValue;
  try {
    value = parseNumber(text, type, path).rescale(d.scale);
  } catch (error) {
    if ((error as { errorClass?: string }).errorClass) throw error;
    return outOfRange(path, type, text, `has more than ${d.scale} digits after the decimal point`);
  }
  if (value.digits() > d.precision) outOfRange(path, type, text, `has more than ${d.precision - d.scale} digits before the decimal point`);
  return value;
}

const ISO_TIMESTAMP = /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses ISO-8601 text (zone optional, UTC assumed) to microseconds since the epoch. */
export function parseIsoTimestamp(text: string): bigint | undefined {
  const m = ISO_TIMESTAMP.exec(text.trim());
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4] ?? "0", m[5] ?? "0", m[6] ?? "0"].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCDate() !== day) return undefined; // e.g. February 30
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0"));
  }
  const fraction = BigInt((m[7] ?? "").padEnd(6, "0").slice(0, 6) || "0");
  return BigInt(date.getTime() - offsetMinutes * 60_000) * 1000n + fraction;
}

function parseIsoDate(text: string): number | undefined {
  const m = /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[Tt ].*)?$/.exec(text.trim());
  if (!m) return undefined;
  const micros = parseIsoTimestamp(`${m[1]}-${m[2]}-${m[3]}`);
  return micros === undefined ? undefined : Number(micros / 1000n) / MILLIS_PER_DAY;
}

function epochSecondsToMicros(value: DecimalValue): bigint {
  const scaled = value.unscaled * MICROS_PER_SECOND;
  const divisor = 10n ** BigInt(value.scale);
  const quotient = scaled / divisor;
  // Floor toward negative infinity for sub-microsecond digits.
  return scaled % divisor !== 0n && scaled < 0n ? quotient - 1n : quotient;
}

/** Converts one attribute to the plain value of `type`; `path` names the column for errors. */
export function attributeToPlain(av: AttributeValue, type: DataType, path: string): PlainValue {
  if (av.NULL !== undefined) return null;
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return attributeText(av);
    case Type.Int: {
      if (av.N === undefined) return mismatch(av, type, path);
      const value = integerFromNumber(av.N, type, path);
      return (type as DataType<Type.Int> & { bitWidth: number }).bitWidth === 64 ? value : Number(value);
    }
    case Type.Float: {
      if (av.N === undefined) return mismatch(av, type, path);
      const value = Number(av.N);
      if (!Number.isFinite(value)) outOfRange(path, type, av.N, "is too large for a floating-point column");
      return value;
    }
    case Type.Decimal:
      if (av.N === undefined) return mismatch(av, type, path);
      return decimalFromNumber(av.N, type, path);
    case Type.Bool:
      if (av.BOOL === undefined) return mismatch(av, type, path);
      return av.BOOL;
    case Type.Binary:
    case Type.LargeBinary:
      if (av.B === undefined) return mismatch(av, type, path);
      return av.B;
    case Type.FixedSizeBinary: {
      if (av.B === undefined) return mismatch(av, type, path);
      const width = (type as DataType<Type.FixedSizeBinary> & { byteWidth: number }).byteWidth;
      if (av.B.length !== width) return mismatch(av, type, path);
      return av.B;
    }
    case Type.Date: {
      const days = av.S === undefined ? undefined : parseIsoDate(av.S);
      if (days === undefined) return mismatch(av, type, path);
      return days;
    }
    case Type.Timestamp: {
      if (av.N !== undefined) return epochSecondsToMicros(parseNumber(av.N, type, path));
      const micros = av.S === undefined ? undefined : parseIsoTimestamp(av.S);
      if (micros === undefined) return mismatch(av, type, path);
      return micros;
    }
    case Type.List:
    case Type.FixedSizeList: {
      const child = type.children[0]!.type;
      const itemPath = `${path}[]`;
      if (av.L !== undefined) return av.L.map((item) => attributeToPlain(item, child, itemPath));
      if (av.SS !== undefined) return av.SS.map((s) => attributeToPlain({ S: s }, child, itemPath));
      if (av.NS !== undefined) return av.NS.map((n) => attributeToPlain({ N: n }, child, itemPath));
      if (av.BS !== undefined) return av.BS.map((b) => attributeToPlain({ B: b }, child, itemPath));
      return mismatch(av, type, path);
    }
    case Type.Map: {
      if (av.M === undefined) return mismatch(av, type, path);
      const valueType = (type.children[0]!.type as Struct).children[1]!.type;
      return Object.entries(av.M).map(([key, value]): [PlainValue, PlainValue] => [key, attributeToPlain(value, valueType, `${path}.${key}`)]);
    }
    case Type.Struct: {
      if (av.M === undefined) return mismatch(av, type, path);
      const out: { [key: string]: PlainValue } = {};
      for (const child of type.children as Field[]) {
        const value = av.M[child.name];
        out[child.name] = value === undefined ? null : attributeToPlain(value, child.type, `${path}.${child.name}`);
      }
      return out;
    }
    default:
      return unsupported(path, type, "read");
  }
}

/** One row of `fields` from an item; missing attributes are null. */
export function itemToRow(item: Item, fields: readonly Field[]): PlainValue[] {
  const row = new Array<PlainValue>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const av = item[field.name];
    row[i] = av === undefined ? null : attributeToPlain(av, field.type, field.name);
  }
  return row;
}

// ---------------------------------------------------------------------------------------
// Writes: PlainValue -> AttributeValue
// ---------------------------------------------------------------------------------------

function notRepresentable(path: string, type: DataType, value: string, reason: string): never {
  throw invalidArgument("VALUE_NOT_REPRESENTABLE", `Column '${path}' (${describeType(type)}) holds ${value}, which DynamoDB cannot store: ${reason}.`, {
    column: path,
    type: describeType(type),
    value,
  });
}

/** Plain decimal notation (DynamoDB accepts exponents too, but plain text is unambiguous everywhere). */
function plainNumberText(text: string): string {
  return /e/i.test(text) ? DecimalValue.parse(text).toNormalizedString() : text;
}

function checkNumberRange(value: number, path: string, type: DataType): void {
  if (!Number.isFinite(value)) notRepresentable(path, type, String(value), "NaN and infinities are not numbers in DynamoDB");
  const abs = Math.abs(value);
  if (abs >= 1e126) notRepresentable(path, type, String(value), "DynamoDB numbers must be below 1E+126 in magnitude");
  if (abs !== 0 && abs < 1e-130) notRepresentable(path, type, String(value), "DynamoDB numbers must be 0 or at least 1E-130 in magnitude");
}

/** Shortest decimal text that parses back to the same double (JavaScript's own algorithm). */
export function doubleText(value: number): string {
  return plainNumberText(String(value === 0 ? 0 : value));
}

/** Shortest decimal text that parses back to the same float32 (0.1f -> "0.1", not "0.10000000149011612"). */
export function float32Text(value: number): string {
  if (value === 0) return "0";
  for (let precision = 1; precision <= 9; precision++) {
    const text = value.toPrecision(precision);
    if (Math.fround(Number(text)) === value) return DecimalValue.parse(text).toNormalizedString();
  }
  return doubleText(value);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Days since the epoch to "YYYY-MM-DD". */
export function formatDate(days: number): string {
  return new Date(days * MILLIS_PER_DAY).toISOString().split("T")[0]!;
}

/** Microseconds since the epoch to ISO-8601 UTC with six fractional digits. */
export function formatTimestamp(micros: bigint): string {
  let seconds = micros / MICROS_PER_SECOND;
  let fraction = micros % MICROS_PER_SECOND;
  if (fraction < 0n) {
    fraction += MICROS_PER_SECOND;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString(); // "...THH:MM:SS.000Z"
  return `${iso.slice(0, iso.lastIndexOf("."))}.${pad(Number(fraction), 6)}Z`;
}

/** Converts a plain value of `type` to an AttributeValue; null becomes NULL (callers omit top-level nulls). */
export function plainToAttribute(value: PlainValue, type: DataType, path: string): AttributeValue {
  if (value === null || value === undefined) return { NULL: true };
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return { S: value as string };
    case Type.Int:
      return { N: String(value as number | bigint) };
    case Type.Float: {
      const n = value as number;
      checkNumberRange(n, path, type);
      const precision = (type as DataType<Type.Float> & { precision: number }).precision;
      return { N: precision === 1 ? float32Text(n) : doubleText(n) };
    }
    case Type.Decimal:
      return { N: (value as DecimalValue).toNormalizedString() };
    case Type.Bool:
      return { BOOL: value as boolean };
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      return { B: value as Uint8Array };
    case Type.Date:
      return { S: formatDate(value as number) };
    case Type.Timestamp:
      return { S: formatTimestamp(value as bigint) };
    case Type.List:
    case Type.FixedSizeList: {
      const child = type.children[0]!.type;
      return { L: (value as PlainValue[]).map((item) => plainToAttribute(item, child, `${path}[]`)) };
    }
    case Type.Map: {
      const valueType = (type.children[0]!.type as Struct).children[1]!.type;
      const out: Record<string, AttributeValue> = {};
      for (const [key, item] of value as Array<[PlainValue, PlainValue]>) {
        if (typeof key !== "string") notRepresentable(path, type, String(key), "DynamoDB map keys are strings");
        out[key] = plainToAttribute(item, valueType, `${path}.${key}`);
      }
      return { M: out };
    }
    case Type.Struct: {
      const row = value as { [key: string]: PlainValue };
      const out: Record<string, AttributeValue> = {};
      for (const child of type.children as Field[]) out[child.name] = plainToAttribute(row[child.name] ?? null, child.type, `${path}.${child.name}`);
      return { M: out };
    }
    case Type.Null:
      return { NULL: true };
    default:
      return unsupported(path, type, "write");
  }
}

// ---------------------------------------------------------------------------------------
// Schema inference
// ---------------------------------------------------------------------------------------

type Shape =
  | { k: "null" }
  | { k: "string" }
  | { k: "int64" }
  | { k: "double" }
  | { k: "bool" }
  | { k: "binary" }
  | { k: "list"; element: Shape }
  | { k: "struct"; fields: Map<string, Shape> }
  | { k: "conflict"; seen: Set<string> };

const NULL: Shape = { k: "null" };
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function numberShape(text: string): Shape {
  if (/^[+-]?\d+$/.test(text)) {
    const value = BigInt(text);
    if (value >= INT64_MIN && value <= INT64_MAX) return { k: "int64" };
  }
  return { k: "double" };
}

function shapeOf(av: AttributeValue): Shape {
  if (av.S !== undefined) return { k: "string" };
  if (av.N !== undefined) return numberShape(av.N);
  if (av.BOOL !== undefined) return { k: "bool" };
  if (av.B !== undefined) return { k: "binary" };
  if (av.NULL !== undefined) return NULL;
  if (av.SS !== undefined) return { k: "list", element: { k: "string" } };
  if (av.BS !== undefined) return { k: "list", element: { k: "binary" } };
  if (av.NS !== undefined) return { k: "list", element: av.NS.map(numberShape).reduce((a, b) => merge(a, b), NULL) };
  if (av.L !== undefined) return { k: "list", element: av.L.map(shapeOf).reduce((a, b) => merge(a, b), NULL) };
  if (av.M !== undefined) {
    const fields = new Map<string, Shape>();
    for (const [name, value] of Object.entries(av.M)) fields.set(name, shapeOf(value));
    return { k: "struct", fields };
  }
  return { k: "string" };
}

function shapeName(shape: Shape): string {
  switch (shape.k) {
    case "int64":
      return "bigint";
    case "bool":
      return "boolean";
    case "list":
      return "array";
    case "struct":
      return "map";
    case "conflict":
      return [...shape.seen].join(" and ");
    default:
      return shape.k;
  }
}

/** Widens two shapes: null yields, int64+double is double, lists and structs merge inside; anything else conflicts. */
function merge(a: Shape, b: Shape): Shape {
  if (a.k === "null") return b;
  if (b.k === "null") return a;
  if (a.k === "conflict" || b.k === "conflict") {
    const seen = new Set<string>();
    for (const s of [a, b]) {
      if (s.k === "conflict") for (const name of s.seen) seen.add(name);
      else seen.add(shapeName(s));
    }
    return { k: "conflict", seen };
  }
  if (a.k === b.k) {
    if (a.k === "list" && b.k === "list") return { k: "list", element: merge(a.element, b.element) };
    if (a.k === "struct" && b.k === "struct") {
      const fields = new Map(a.fields);
      for (const [name, shape] of b.fields) fields.set(name, merge(fields.get(name) ?? NULL, shape));
      return { k: "struct", fields };
    }
    return a;
  }
  if ((a.k === "int64" && b.k === "double") || (a.k === "double" && b.k === "int64")) return { k: "double" };
  return { k: "conflict", seen: new Set([shapeName(a), shapeName(b)]) };
}

function toArrowType(shape: Shape, path: string, warnings: string[]): DataType {
  switch (shape.k) {
    case "null":
    case "string":
      return new Utf8();
    case "int64":
      return new Int64();
    case "double":
      return new Float64();
    case "bool":
      return new Bool();
    case "binary":
      return new Binary();
    case "conflict":
      warnings.push(
        `Attribute '${path}' has conflicting types in the sampled items (${[...shape.seen].join(", ")}); it is read as a string column. Give an explicit schema to read it as another type.`,
      );
      return new Utf8();
    case "list":
      return new List(new Field("element", toArrowType(shape.element, `${path}[]`, warnings), true));
    case "struct": {
      if (shape.fields.size === 0) {
        // Only empty maps were seen: a map keeps whatever keys later items have.
        return new Map_(new Field("entries", new Struct<{ key: Utf8; value: Utf8 }>([new Field("key", new Utf8(), false), new Field("value", new Utf8(), true)]), false));
      }
      const names = [...shape.fields.keys()].sort(compareNames);
      return new Struct(names.map((name) => new Field(name, toArrowType(shape.fields.get(name)!, `${path}.${name}`, warnings), true)));
    }
  }
}

/**
 * Accumulates sampled items into a schema: the union of attributes seen, alphabetical,
 * key attributes always present. Attributes only ever NULL become strings.
 */
export class SchemaInferrer {
  private readonly columns = new Map<string, Shape>();
  private items = 0;

  addKey(name: string, type: KeyAttributeType): void {
    const shape: Shape = type === "S" ? { k: "string" } : type === "B" ? { k: "binary" } : { k: "int64" };
    this.columns.set(name, merge(this.columns.get(name) ?? NULL, shape));
  }

  addItem(item: Item): void {
    this.items++;
    for (const [name, value] of Object.entries(item)) this.columns.set(name, merge(this.columns.get(name) ?? NULL, shapeOf(value)));
  }

  get sampled(): number {
    return this.items;
  }

  result(): { schema: Schema; warnings: string[] } {
    const warnings: string[] = [];
    const names = [...this.columns.keys()].sort(compareNames);
    const fields = names.map((name) => new Field(name, toArrowType(this.columns.get(name)!, name, warnings), true));
    return { schema: new Schema(fields), warnings };
  }
}

// ---------------------------------------------------------------------------------------
// Item size (DynamoDB refuses items over 400 KB; finding them before sending keeps a
// bad row from failing a request that carries good rows, and lets the error name it)
// ---------------------------------------------------------------------------------------

/** DynamoDB's item size limit: 400 KB, attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;

const utf8 = new TextEncoder();

function utf8Length(text: string): number {
  // Cheap bounds first: every UTF-16 unit is 1 to 3 UTF-8 bytes.
  return text.length * 3 <= MAX_ITEM_BYTES ? text.length : utf8.encode(text).length;
}

/**
 * A lower bound of an attribute value's size as DynamoDB counts it (strings and binaries
 * exactly, numbers as one byte per two digits plus one, 3 bytes per list or map), so an
 * item it finds too large is certainly refused.
 */
function valueSize(av: AttributeValue): number {
  if (av.S !== undefined) return utf8Length(av.S);
  if (av.B !== undefined) return av.B.length;
  if (av.N !== undefined) return Math.ceil(av.N.replace(/[^0-9]/g, "").replace(/^0+/, "").length / 2) + 1;
  if (av.BOOL !== undefined || av.NULL !== undefined) return 1;
  if (av.L !== undefined) return av.L.reduce((sum, v) => sum + valueSize(v), 3);
  if (av.M !== undefined) return Object.entries(av.M).reduce((sum, [k, v]) => sum + utf8Length(k) + valueSize(v), 3);
  if (av.SS !== undefined) return av.SS.reduce((sum, v) => sum + utf8Length(v), 0);
  if (av.NS !== undefined) return av.NS.reduce((sum, v) => sum + Math.ceil(v.length / 2) + 1, 0);
  if (av.BS !== undefined) return av.BS.reduce((sum, v) => sum + v.length, 0);
  return 0;
}

/** Throws ITEM_TOO_LARGE naming the item's key and its largest attribute when the item is certainly over 400 KB. */
export function checkItemSize(item: Item, keyNames: readonly string[], table: string, row: number): void {
  let total = 0;
  let largest = "";
  let largestSize = -1;
  for (const [name, av] of Object.entries(item)) {
    const size = utf8Length(name) + valueSize(av);
    total += size;
    if (size > largestSize) {
      largest = name;
      largestSize = size;
    }
  }
  if (total <= MAX_ITEM_BYTES) return;
  const key = keyNames.map((k) => `${k}=${preview(attributeText(item[k] ?? { NULL: true }))}`).join(", ");
  throw invalidArgument(
    "ITEM_TOO_LARGE",
    `The item ${key} (row ${row}) for table '${table}' is at least ${total} bytes; DynamoDB items are limited to ${MAX_ITEM_BYTES} bytes (400 KB), attribute names included. Its largest attribute is '${largest}' (${largestSize} bytes): shorten it or store it elsewhere (e.g. S3) and keep a reference.`,
    { table, column: largest, key, row: String(row), bytes: String(total) },
  );
}
