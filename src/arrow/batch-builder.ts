/**
 * Builds Arrow record batches row by row from plain values (see values.ts), writing each
 * value straight into growable typed arrays that become the batch's buffers.
 *
 * arrow-js's own builders go through a visitor, an intermediate value and (for strings) a
 * TextEncoder allocation per cell; on a Cassandra read they were the largest cost after
 * the driver itself. The types the connectors produce have builders here; any other type
 * (unsigned 64-bit, half floats, intervals, fixed-size lists, ...) falls back to arrow-js.
 */
import {
  type Data,
  DataType,
  Field,
  makeBuilder,
  makeData,
  type RecordBatch,
  RecordBatch as RecordBatchClass,
  type Schema,
  Struct,
  DateUnit,
  TimeUnit,
  Type,
} from "apache-arrow";
import { bigIntToWords, DecimalValue, MICROS_PER_MILLI, MILLIS_PER_DAY, type PlainValue } from "./values.js";

/** One column's values in the making. */
interface Appender {
  append(value: PlainValue): void;
  /** The values appended since the last finish, as Data; starts over. */
  finish(): Data;
}


/** A copy of `array` with room for at least `needed` elements. */
function grow<T extends FixedWidthArray>(array: T, needed: number): T {
  let capacity = Math.max(array.length * 2, 64);
  while (capacity < needed) capacity *= 2;
  const larger = new (array.constructor as new (n: number) => T)(capacity);
  larger.set(array as never);
  return larger;
}

/** The validity bitmap of a column; omitted from the Data when nothing is null. */
class Validity {
  private bits = new Uint8Array(8);
  private length = 0;
  nulls = 0;

  push(valid: boolean): void {
    const byte = this.length >> 3;
    if (byte >= this.bits.length) this.bits = grow(this.bits, byte + 1);
    if (valid) this.bits[byte]! |= 1 << (this.length & 7);
    else this.nulls++;
    this.length++;
  }

  finish(): { nullCount: number; nullBitmap: Uint8Array | undefined } {
    const result = { nullCount: this.nulls, nullBitmap: this.nulls > 0 ? this.bits.subarray(0, (this.length + 7) >> 3) : undefined };
    this.bits = new Uint8Array(this.bits.length);
    this.length = 0;
    this.nulls = 0;
    return result;
  }
}

type FixedWidthArray = Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array | Float32Array | Float64Array | BigInt64Array;

/** Fixed-width values (integers, floats, days, timestamps): one typed-array slot per value. */
class FixedWidthAppender implements Appender {
  private values: FixedWidthArray;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly type: DataType,
    private readonly make: (n: number) => FixedWidthArray,
    /** A non-null plain value as the slot stores it (a number, or a bigint for 64-bit slots). */
    private readonly convert: (value: PlainValue) => number | bigint,
    /** What a null's slot holds. */
    private readonly zero: number | bigint,
  ) {
    this.values = make(64);
  }

  append(value: PlainValue): void {
    if (this.length >= this.values.length) this.values = grow(this.values, this.length + 1);
    this.validity.push(value !== null);
    this.values[this.length++] = (value === null ? this.zero : this.convert(value)) as never;
  }

  finish(): Data {
    const data = makeData({ type: this.type as never, length: this.length, ...this.validity.finish(), data: this.values.subarray(0, this.length) as never });
    this.values = this.make(this.values.length);
    this.length = 0;
    return data;
  }
}

/** Numbers in 8- to 32-bit integer or float slots. */
const numberAppender = (type: DataType, make: (n: number) => FixedWidthArray) => new FixedWidthAppender(type, make, (v) => Number(v), 0);

/** 64-bit integers and timestamps; `fromPlain` maps the plain bigint to the stored one. */
const bigIntAppender = (type: DataType, fromPlain: (value: bigint) => bigint) =>
  new FixedWidthAppender(type, (n) => new BigInt64Array(n), (v) => fromPlain(typeof v === "bigint" ? v : BigInt(v as number)), 0n);

class BoolAppender implements Appender {
  private bits = new Uint8Array(8);
  private length = 0;
  private readonly validity = new Validity();

  constructor(private readonly type: DataType) {}

  append(value: PlainValue): void {
    const byte = this.length >> 3;
    if (byte >= this.bits.length) this.bits = grow(this.bits, byte + 1);
    this.validity.push(value !== null);
    if (value === true) this.bits[byte]! |= 1 << (this.length & 7);
    this.length++;
  }

  finish(): Data {
    const data = makeData({ type: this.type as never, length: this.length, ...this.validity.finish(), data: this.bits.subarray(0, (this.length + 7) >> 3) as never });
    this.bits = new Uint8Array(this.bits.length);
    this.length = 0;
    return data;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Decimal128/256: two's-complement little-endian 32-bit words, `stride` per value. */
class DecimalAppender implements Appender {
  private words: Uint32Array;
  private length = 0;
  private readonly validity = new Validity();
  private readonly stride: number;
  private readonly scale: number;

  constructor(private readonly type: DataType) {
    const decimal = type as DataType & { scale: number; bitWidth: number };
    this.stride = decimal.bitWidth / 32;
    this.scale = decimal.scale;
    this.words = new Uint32Array(64 * this.stride);
  }

  append(value: PlainValue): void {
    const at = this.length * this.stride;
    if (at + this.stride > this.words.length) this.words = grow(this.words, at + this.stride);
    this.validity.push(value !== null);
    this.length++;
    if (value === null) return;
    const decimal = value instanceof DecimalValue ? value : DecimalValue.parse(String(value));
    const unscaled = decimal.rescale(this.scale).unscaled;
    if (unscaled >= INT64_MIN && unscaled <= INT64_MAX) {
      const low = BigInt.asUintN(64, unscaled);
      this.words[at] = Number(low & 0xffff_ffffn);
      this.words[at + 1] = Number(low >> 32n);
      const extension = unscaled < 0n ? 0xffff_ffff : 0;
      for (let i = 2; i < this.stride; i++) this.words[at + i] = extension;
    } else {
      this.words.set(bigIntToWords(unscaled, this.stride), at);
    }
  }

  finish(): Data {
    const data = makeData({ type: this.type as never, length: this.length, ...this.validity.finish(), data: this.words.subarray(0, this.length * this.stride) as never });
    this.words = new Uint32Array(this.words.length);
    this.length = 0;
    return data;
  }
}

/** `bytes` if it has room for `extra` bytes after the first `used`, else a larger copy of them. */
export function withRoom(bytes: Buffer, used: number, extra: number): Buffer {
  if (used + extra <= bytes.length) return bytes;
  let capacity = bytes.length * 2;
  while (capacity < used + extra) capacity *= 2;
  const larger = Buffer.allocUnsafe(capacity);
  bytes.copy(larger, 0, 0, used);
  return larger;
}

/** Strings up to this length are encoded in JavaScript when ASCII: cheaper than a native call. */
const SHORT_TEXT = 32;

/** Writes `text` at `at` (room reserved); returns the end. ASCII byte by byte, anything else natively. */
function writeShortText(bytes: Buffer, at: number, text: string): number {
  let end = at;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return at + bytes.write(text, at);
    bytes[end++] = code;
  }
  return end;
}

/** Utf8 and Binary: int32 offsets and the bytes. Strings are encoded in place. */
class VariableWidthAppender implements Appender {
  private bytes: Buffer = Buffer.allocUnsafe(1024);
  private used = 0;
  private offsets = new Int32Array(64);
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly type: DataType,
    private readonly text: boolean,
  ) {}

  private reserve(extra: number): void {
    this.bytes = withRoom(this.bytes, this.used, extra);
  }

  append(value: PlainValue): void {
    if (this.length + 1 >= this.offsets.length) this.offsets = grow(this.offsets, this.length + 2);
    this.validity.push(value !== null);
    if (value !== null) {
      if (this.text || typeof value === "string") {
        const text = typeof value === "string" ? value : String(value);
        // UTF-8 takes at most 3 bytes per UTF-16 code unit.
        this.reserve(text.length * 3);
        this.used = text.length <= SHORT_TEXT ? writeShortText(this.bytes, this.used, text) : this.used + this.bytes.write(text, this.used);
      } else {
        const bytes = value as Uint8Array;
        this.reserve(bytes.length);
        this.bytes.set(bytes, this.used);
        this.used += bytes.length;
      }
    }
    this.offsets[++this.length] = this.used;
  }

  finish(): Data {
    const bytes = new Uint8Array(this.used);
    bytes.set(this.bytes.subarray(0, this.used));
    const data = makeData({
      type: this.type as never,
      length: this.length,
      ...this.validity.finish(),
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      data: bytes,
    } as never);
    this.offsets = new Int32Array(this.offsets.length);
    this.used = 0;
    this.length = 0;
    return data;
  }
}

/** List and Map: int32 offsets into one child (the element, or the key/value entries). */
class ListAppender implements Appender {
  private offsets = new Int32Array(64);
  private length = 0;
  private entries = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly type: DataType,
    private readonly child: Appender,
    /** Appends one list's (or map's) items to the child; returns how many. */
    private readonly appendItems: (child: Appender, value: PlainValue) => number,
  ) {}

  append(value: PlainValue): void {
    if (this.length + 1 >= this.offsets.length) this.offsets = grow(this.offsets, this.length + 2);
    this.validity.push(value !== null);
    if (value !== null) this.entries += this.appendItems(this.child, value);
    this.offsets[++this.length] = this.entries;
  }

  finish(): Data {
    const data = makeData({
      type: this.type as never,
      length: this.length,
      ...this.validity.finish(),
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      child: this.child.finish(),
    } as never);
    this.offsets = new Int32Array(this.offsets.length);
    this.length = 0;
    this.entries = 0;
    return data;
  }
}

/** Struct: one child per field; a null struct appends nulls to every child. */
class StructAppender implements Appender {
  private length = 0;
  private readonly validity = new Validity();
  private readonly names: string[];
  private readonly children: Appender[];

  constructor(private readonly type: DataType) {
    this.names = type.children.map((f: Field) => f.name);
    this.children = type.children.map((f: Field) => makeAppender(f.type));
  }

  /** Appends a row given column by column (the record batch's top-level struct). */
  appendValues(values: readonly PlainValue[]): void {
    this.validity.push(true);
    for (let i = 0; i < this.children.length; i++) this.children[i]!.append(values[i] ?? null);
    this.length++;
  }

  append(value: PlainValue): void {
    this.validity.push(value !== null);
    const row = value as { [key: string]: PlainValue } | null;
    for (let i = 0; i < this.children.length; i++) this.children[i]!.append(row === null ? null : (row[this.names[i]!] ?? null));
    this.length++;
  }

  get rows(): number {
    return this.length;
  }

  finish(): Data {
    const data = makeData({ type: this.type as never, length: this.length, ...this.validity.finish(), children: this.children.map((c) => c.finish()) } as never);
    this.length = 0;
    return data;
  }
}

class NullAppender implements Appender {
  private length = 0;

  constructor(private readonly type: DataType) {}

  append(): void {
    this.length++;
  }

  finish(): Data {
    const data = makeData({ type: this.type as never, length: this.length });
    this.length = 0;
    return data;
  }
}

/** Any other type, through arrow-js's builder (slower, complete). */
class FallbackAppender implements Appender {
  private builder;

  constructor(private readonly type: DataType) {
    this.builder = makeBuilder({ type, nullValues: [null, undefined] });
  }

  append(value: PlainValue): void {
    this.builder.append(toBuilderInput(this.type, value));
  }

  finish(): Data {
    const data = this.builder.finish().toVector().data[0]!;
    this.builder = makeBuilder({ type: this.type, nullValues: [null, undefined] });
    return data;
  }
}

/** Division rounding toward negative infinity (toward the past, for times). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

const TIMESTAMP_FROM_MICROS: Record<TimeUnit, (micros: bigint) => bigint> = {
  [TimeUnit.SECOND]: (v) => floorDiv(v, 1_000_000n),
  [TimeUnit.MILLISECOND]: (v) => floorDiv(v, 1000n),
  [TimeUnit.MICROSECOND]: (v) => v,
  [TimeUnit.NANOSECOND]: (v) => v * 1000n,
};

function makeAppender(type: DataType): Appender {
  switch (type.typeId) {
    case Type.Utf8:
      return new VariableWidthAppender(type, true);
    case Type.Binary:
      return new VariableWidthAppender(type, false);
    case Type.Int: {
      const { bitWidth, isSigned } = type as DataType & { bitWidth: number; isSigned: boolean };
      if (bitWidth === 64) return isSigned ? bigIntAppender(type, (v) => v) : new FallbackAppender(type);
      const arrays = isSigned ? { 8: Int8Array, 16: Int16Array, 32: Int32Array } : { 8: Uint8Array, 16: Uint16Array, 32: Uint32Array };
      const ArrayType = arrays[bitWidth as 8 | 16 | 32];
      return numberAppender(type, (n) => new ArrayType(n));
    }
    case Type.Float: {
      const precision = (type as DataType & { precision: number }).precision;
      if (precision === 1) return numberAppender(type, (n) => new Float32Array(n));
      if (precision === 2) return numberAppender(type, (n) => new Float64Array(n));
      return new FallbackAppender(type);
    }
    case Type.Date:
      // DateDay stores days since the epoch in 32 bits; DateMillisecond goes through arrow-js.
      return (type as DataType & { unit: DateUnit }).unit === DateUnit.DAY ? numberAppender(type, (n) => new Int32Array(n)) : new FallbackAppender(type);
    case Type.Timestamp:
      return bigIntAppender(type, TIMESTAMP_FROM_MICROS[(type as DataType & { unit: TimeUnit }).unit]);
    case Type.Bool:
      return new BoolAppender(type);
    case Type.Decimal:
      return new DecimalAppender(type);
    case Type.List:
      return new ListAppender(type, makeAppender(type.children[0]!.type), (child, value) => {
        const items = value as PlainValue[];
        for (const item of items) child.append(item);
        return items.length;
      });
    case Type.Map: {
      const entries = new StructAppender(type.children[0]!.type);
      return new ListAppender(type, entries, (child, value) => {
        const pairs = value as Array<[PlainValue, PlainValue]>;
        for (const pair of pairs) (child as StructAppender).appendValues(pair);
        return pairs.length;
      });
    }
    case Type.Struct:
      return new StructAppender(type);
    case Type.Null:
      return new NullAppender(type);
    default:
      return new FallbackAppender(type);
  }
}

/** Converts a plain value into what arrow-js builders accept for `type` (the fallback path). */
function toBuilderInput(type: DataType, value: PlainValue): unknown {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case Type.Decimal: {
      const decimalType = type as DataType<Type.Decimal> & { scale: number; bitWidth: number };
      const decimal = value instanceof DecimalValue ? value : DecimalValue.parse(String(value));
      return bigIntToWords(decimal.rescale(decimalType.scale).unscaled, decimalType.bitWidth / 32);
    }
    case Type.Timestamp:
      return Number(value as bigint) / MICROS_PER_MILLI;
    case Type.Date:
      return new Date(Number(value) * MILLIS_PER_DAY);
    case Type.Int: {
      const intType = type as DataType<Type.Int> & { bitWidth: number };
      return intType.bitWidth === 64 ? BigInt(value as bigint | number) : Number(value);
    }
    case Type.List:
    case Type.FixedSizeList: {
      const child = type.children[0]!.type;
      return (value as PlainValue[]).map((item) => toBuilderInput(child, item));
    }
    case Type.Map: {
      const entries = type.children[0]!.type as Struct;
      const keyType = entries.children[0]!.type;
      const valueType = entries.children[1]!.type;
      const map = new Map<unknown, unknown>();
      for (const [key, item] of value as Array<[PlainValue, PlainValue]>) map.set(toBuilderInput(keyType, key), toBuilderInput(valueType, item));
      return map;
    }
    case Type.Struct: {
      const row = value as { [key: string]: PlainValue };
      const out: Record<string, unknown> = {};
      for (const child of type.children) out[child.name] = toBuilderInput(child.type, row[child.name] ?? null);
      return out;
    }
    default:
      return value;
  }
}

/** Builds record batches row by row in a fixed schema. */
export class BatchBuilder {
  private readonly rows: StructAppender;

  constructor(readonly schema: Schema) {
    this.rows = new StructAppender(new Struct(schema.fields));
  }

  get length(): number {
    return this.rows.rows;
  }

  /** Appends one row; `values[i]` belongs to `schema.fields[i]`. */
  appendRow(values: readonly PlainValue[]): void {
    this.rows.appendValues(values);
  }

  /** Returns the rows appended so far as one batch and starts a new one. */
  flush(): RecordBatch {
    return new RecordBatchClass(this.schema, this.rows.finish() as Data<Struct>);
  }
}
